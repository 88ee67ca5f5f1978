"""Property: whatever the input, the loader returns a LabFile or raises SpecError.

Inputs: YAML-ish random text, arbitrary text and bytes, and random mutations of the
shipped examples (a key deleted, a value's type changed, a line duplicated so a key
repeats, the text truncated, bytes spliced in). ``SPEC_FUZZ_EXAMPLES=5000`` runs longer.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spec_helpers import EXAMPLES, MINIMAL

from multihome.spec import LabFile, SpecError, load_lab_text
from multihome.spec.yamlpos import compose

EXAMPLE_TEXTS = [p.read_text() for p in sorted(EXAMPLES.glob("*.yaml"))]
EXAMPLE_VALUES = [[d.value for d in compose(t, "x")] for t in EXAMPLE_TEXTS]

SETTINGS = settings(
    max_examples=int(os.environ.get("SPEC_FUZZ_EXAMPLES", "150")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

TOKENS = [
    *"abcdekmnsv019 -:{}[],&*!|>'\"#%@`?~./\\\t\x00",
    "\n",
    "  ",
    "kind: Lab\n",
    "apiVersion: multihome.dev/v1alpha1\n",
    "spec:\n  ",
    "nodes:",
    "metadata: {name: x}\n",
    "<<: ",
    "&a ",
    "*a",
    "---\n",
    "- ",
    "resources: ",
    "[x.yaml]",
    '"a\\0b"',
    "!!int ",
    "!!binary ",
]
YAMLISH = st.lists(st.sampled_from(TOKENS), max_size=120).map("".join)

ODD_SCALARS = [None, 0, -1, 2**64, 1.5, float("nan"), True, "", "x", "../../x", "a\0b"]
ODD_VALUES = st.sampled_from([*ODD_SCALARS, "10.0.0.0/8", [], [1], {}, {"a": 1}])


@pytest.fixture(scope="module")
def empty_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("empty")


def check(data: str | bytes, base_dir: Path) -> None:
    try:
        result = load_lab_text(data, "fuzz.yaml", base_dir=base_dir)
    except SpecError as exc:
        text = str(exc)
        assert "\n" not in text
        assert exc.message
        if exc.location is not None:
            assert exc.location.line >= 1 and exc.location.column >= 1
        return
    assert isinstance(result, LabFile)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(value, dict):
        for key, item in value.items():
            found += _paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _paths(item, (*prefix, index))
    return found


def _mutate(docs: list[Any], choice: int, action: str, replacement: Any) -> list[Any]:
    docs = copy.deepcopy(docs)
    paths = [(i, p) for i, d in enumerate(docs) for p in _paths(d) if p]
    index, path = paths[choice % len(paths)]
    parent = docs[index]
    for step in path[:-1]:
        parent = parent[step]
    last = path[-1]
    if action == "delete":
        del parent[last]
    else:
        parent[last] = replacement
    return docs


@SETTINGS
@given(text=YAMLISH)
def test_yamlish_text(text: str, empty_dir: Path) -> None:
    check(text, empty_dir)


@SETTINGS
@given(text=st.text(max_size=200))
def test_any_text(text: str, empty_dir: Path) -> None:
    check(text, empty_dir)


@SETTINGS
@given(data=st.binary(max_size=300))
def test_any_bytes(data: bytes, empty_dir: Path) -> None:
    check(data, empty_dir)


@SETTINGS
@given(
    example=st.integers(0, len(EXAMPLE_VALUES) - 1),
    choice=st.integers(0, 10_000),
    action=st.sampled_from(["delete", "replace"]),
    replacement=ODD_VALUES,
)
def test_structural_mutations(
    example: int, choice: int, action: str, replacement: Any, empty_dir: Path
) -> None:
    docs = _mutate(EXAMPLE_VALUES[example], choice, action, replacement)
    check(yaml.safe_dump_all(docs, sort_keys=False), empty_dir)


@SETTINGS
@given(
    example=st.integers(0, len(EXAMPLE_TEXTS) - 1),
    line=st.integers(0, 10_000),
    cut=st.integers(0, 100_000),
    how=st.sampled_from(["duplicate-line", "truncate", "delete-line", "splice-bytes"]),
    junk=st.binary(min_size=1, max_size=8),
)
def test_text_mutations(
    example: int, line: int, cut: int, how: str, junk: bytes, empty_dir: Path
) -> None:
    text = EXAMPLE_TEXTS[example]
    lines = text.splitlines(keepends=True)
    at = line % len(lines)
    if how == "duplicate-line":
        check("".join(lines[: at + 1] + lines[at:]), empty_dir)
    elif how == "delete-line":
        check("".join(lines[:at] + lines[at + 1 :]), empty_dir)
    elif how == "truncate":
        check(text[: cut % (len(text) + 1)], empty_dir)
    else:
        raw = text.encode()
        where = cut % (len(raw) + 1)
        check(raw[:where] + junk + raw[where:], empty_dir)


HUGE = ["9" * 5000, "-" + "9" * 5000, "0x" + "f" * 5000, str(2**64), "!!int 0b" + "1" * 70]


@pytest.mark.parametrize("number", [*HUGE, "1e999", ".nan", ".inf", "-.Inf", "1.0e+999"])
def test_huge_numbers_are_errors_at_their_place(number: str, empty_dir: Path) -> None:
    """Every integer of every example replaced by a number no Kubernetes field holds (beyond
    64 bits, NaN, infinite): a SpecError at that line, with the number cut short (Python
    refuses to print more than 4300 digits)."""
    for text in EXAMPLE_TEXTS:
        lines = text.splitlines(keepends=True)
        for at, line in enumerate(lines):
            key, sep, value = line.partition(": ")
            if not sep or not value.strip().isdigit():
                continue
            mutated = "".join([*lines[:at], f"{key}: {number}\n", *lines[at + 1 :]])
            try:
                load_lab_text(mutated, "fuzz.yaml", base_dir=empty_dir)
            except SpecError as exc:
                assert exc.location is not None and exc.location.line == at + 1, exc
                assert len(str(exc)) < 400
                continue
            assert number == "1e999", f"line {at + 1}: {number[:20]} accepted"


def test_duplicating_a_key_line_is_an_error(empty_dir: Path) -> None:
    text = EXAMPLE_TEXTS[0]
    lines = text.splitlines(keepends=True)
    at = next(i for i, ln in enumerate(lines) if ln.startswith("kind: Lab"))
    with pytest.raises(SpecError, match="duplicate key 'kind'"):
        load_lab_text("".join(lines[: at + 1] + lines[at:]), base_dir=empty_dir)


@SETTINGS
@given(entry=st.text(max_size=40))
def test_resource_entries(entry: str, empty_dir: Path) -> None:
    text = MINIMAL.replace("spec:\n", f"spec:\n  resources: [{json.dumps(entry)}]\n", 1)
    check(text, empty_dir)
