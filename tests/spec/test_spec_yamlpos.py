"""The YAML layer: values, positions, merge keys, aliases and their limits."""

from __future__ import annotations

import pytest

from multihome.spec import Location, SpecError
from multihome.spec.yamlpos import MAX_NODES, compose


def test_values_are_json_like() -> None:
    [doc] = compose(
        "a: 1\nb: 1.5\nc: true\nd: ~\ne: 2001-12-14\nf: '7'\n80: port\nyes: word\n", "f"
    )
    assert doc.value == {
        "a": 1,
        "b": 1.5,
        "c": True,
        "d": None,
        "e": "2001-12-14",  # timestamps stay text, as Kubernetes reads them
        "f": "7",
        "80": "port",  # keys are their text
        "yes": "word",
    }


def test_positions() -> None:
    [doc] = compose("top:\n  list:\n    - x\n    - {k: v}\n", "f.yaml")
    assert doc.locate() == Location("f.yaml", 1, 1)
    assert doc.locate("top") == Location("f.yaml", 2, 3)
    assert doc.locate_key("top") == Location("f.yaml", 1, 1)
    assert doc.locate("top", "list") == Location("f.yaml", 3, 5)
    assert doc.locate("top", "list", 0) == Location("f.yaml", 3, 7)
    assert doc.locate("top", "list", 1, "k") == Location("f.yaml", 4, 11)
    assert doc.locate_key("top", "list", 1, "k") == Location("f.yaml", 4, 8)
    # missing steps: the nearest existing ancestor
    assert doc.locate("top", "list", 7) == Location("f.yaml", 3, 5)
    assert doc.locate("top", "nope", "deeper") == Location("f.yaml", 2, 3)
    assert doc.locate_key("top", "nope") == Location("f.yaml", 2, 3)
    assert doc.pos.has(("top", "list", 1)) and not doc.pos.has(("top", "list", 2))


def test_documents_and_indexes() -> None:
    docs = compose("---\n---\na: 1\n---\n# c\n---\nb: 2\n", "f")
    assert [(d.index, d.value) for d in docs] == [(0, {"a": 1}), (1, {"b": 2})]
    assert docs[1].locate("b") == Location("f", 7, 4)


def test_merge_keys() -> None:
    [doc] = compose("base: &b {x: 1, y: 2}\nm:\n  <<: *b\n  y: 3\n", "f")
    assert doc.value["m"] == {"x": 1, "y": 3}
    assert doc.locate("m", "x") == Location("f", 1, 14)
    assert doc.locate("m", "y") == Location("f", 4, 6)
    [doc] = compose("a: &a {x: 1}\nb: &b {x: 2, z: 3}\nm: {<<: [*a, *b]}\n", "f")
    assert doc.value["m"] == {"x": 1, "z": 3}
    with pytest.raises(SpecError, match="merge key"):
        compose("m: {<<: 3}\n", "f")
    [doc] = compose("a: <<\nb: ['<<']\n", "f")
    assert doc.value == {"a": "<<", "b": ["<<"]}


def test_alias_values_are_copies() -> None:
    [doc] = compose("a: &x {k: [1]}\nb: *x\n", "f")
    assert doc.value["a"] == doc.value["b"]
    assert doc.value["a"] is not doc.value["b"]
    doc.value["b"]["k"].append(2)
    assert doc.value["a"]["k"] == [1]


def test_alias_budget_is_per_document() -> None:
    line = "x: [" + ", ".join(["1"] * 999) + "]\n"
    text = "".join(f"---\n{line}" for _ in range(MAX_NODES // 1000 + 5))
    assert len(compose(text, "f")) == MAX_NODES // 1000 + 5


def test_complex_key() -> None:
    with pytest.raises(SpecError) as info:
        compose("? [1, 2]\n: x\n", "f")
    assert info.value.location == Location("f", 1, 3)


def test_explicit_tags() -> None:
    [doc] = compose("a: !!str 12\nb: !!int '12'\nc: !!binary aGk=\n", "f")
    assert doc.value == {"a": "12", "b": 12, "c": "aGk="}
    with pytest.raises(SpecError, match="not a valid bool"):
        compose("a: !!bool maybe\n", "f")
    with pytest.raises(SpecError, match="unsupported YAML tag"):
        compose("a: !Thing {x: 1}\n", "f")


def test_non_ascii_columns() -> None:
    [doc] = compose("ä: ö\nb: [é, x]\n", "f")
    assert doc.locate("b", 1) == Location("f", 2, 8)
    with pytest.raises(SpecError) as info:
        compose("éé: \x07\n", "f")
    assert info.value.location == Location("f", 1, 5)
