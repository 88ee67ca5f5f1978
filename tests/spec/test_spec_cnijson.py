"""A NAD's spec.config is read as Go's encoding/json reads it: one reader for validate,
render and the plan."""

from __future__ import annotations

import pytest

from multihome.spec import ConfigJSONError, parse_cni_json


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("null", "must be a JSON object (a CNI conf or conflist), not null"),
        ("[]", "not a list"),
        ('"x"', "not a string"),
        ("1", "not a number"),
        ("true", "not a boolean"),
        ('{"mtu": NaN}', "is not valid JSON: NaN is not a JSON value"),
        ('{"mtu": -Infinity}', "-Infinity is not a JSON value"),
        ('{"mtu": ' + "9" * 5000 + "}", "out of range at mtu: 999999999999... (5000 digits)"),
        ('{"a": [1, {"b": 18446744073709551616}]}', "out of range at a[1].b: 18446744073709551616"),
        ('{"a": -9223372036854775809}', "out of range at a"),
        ('{"a": 1e999}', "out of range at a: 1e999"),
        ("{", "is not valid JSON: Expecting property name"),
        ("[" * 100_000, "is not valid JSON"),
    ],
)
def test_what_go_would_refuse(text: str, problem: str) -> None:
    with pytest.raises(ConfigJSONError) as caught:
        parse_cni_json(text)
    assert problem in str(caught.value)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300


def test_what_go_reads() -> None:
    text = '{"a": 18446744073709551615, "b": -9223372036854775808, "c": 1.5e308, "a": 2}'
    assert parse_cni_json(text) == {"a": 2, "b": -(2**63), "c": 1.5e308}
    big = parse_cni_json('{"x": 18446744073709551615}')["x"]
    assert big == 2**64 - 1
