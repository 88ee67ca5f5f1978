"""A NAD's ``spec.config`` read as JSON the one way validate, render and up all read it.

The reader is Go's ``encoding/json``, as in Multus and the CNI plugins: ``NaN`` and
``Infinity`` are not JSON; an integer of any length is valid JSON, but no CNI field holds
one beyond 64 bits (Go's ``int``/``uint64``), nor a number beyond float64's range; and the
config must be a JSON object (``null``, a list or a string is not a CNI config).
"""

from __future__ import annotations

import json
from typing import Any

INT64_MIN = -(2**63)
UINT64_MAX = 2**64 - 1
_MAX_INT_DIGITS = 20
"""Digits of the longest integer that can be in range (2**64 - 1); longer text is out of
range without converting it (Python refuses to convert more than 4300 digits)."""


class ConfigJSONError(ValueError):
    """Why a ``spec.config`` is not a JSON object a CNI plugin can read: one line that
    follows the words ``spec.config``."""


class _OutOfRange:
    """A number no CNI field can hold, kept as written until the reader reports its path."""

    def __init__(self, text: str) -> None:
        self.text = text

    def shown(self) -> str:
        if len(self.text) <= 24:
            return self.text
        digits = sum(c.isdigit() for c in self.text)
        return f"{self.text[:12]}... ({digits} digits)"


def _int(text: str) -> Any:
    if len(text.lstrip("-")) > _MAX_INT_DIGITS:
        return _OutOfRange(text)
    value = int(text)
    return value if INT64_MIN <= value <= UINT64_MAX else _OutOfRange(text)


def _float(text: str) -> Any:
    value = float(text)
    return _OutOfRange(text) if value in (float("inf"), float("-inf")) else value


def _constant(name: str) -> Any:
    raise ConfigJSONError(f"is not valid JSON: {name} is not a JSON value")


def _where(path: tuple[str | int, ...]) -> str:
    text = ""
    for step in path:
        text += f"[{step}]" if isinstance(step, int) else ("." if text else "") + step
    return text


def _first_out_of_range(value: Any, path: tuple[str | int, ...] = ()) -> str | None:
    if isinstance(value, _OutOfRange):
        return (
            f"has a number out of range at {_where(path)}: {value.shown()} (CNI plugins read "
            "numbers as 64-bit integers or floats)"
        )
    if isinstance(value, dict):
        items: Any = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return None
    for key, item in items:
        found = _first_out_of_range(item, (*path, key))
        if found:
            return found
    return None


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float | _OutOfRange):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list"


def parse_cni_json(text: str) -> dict[str, Any]:
    """The JSON object in ``text``; :class:`ConfigJSONError` says why it is not one."""
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise ConfigJSONError(
            f"is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except RecursionError:
        raise ConfigJSONError("is not valid JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise ConfigJSONError(f"must be a JSON object (a CNI conf or conflist), not {_kind(value)}")
    problem = _first_out_of_range(value)
    if problem:
        raise ConfigJSONError(problem)
    return value
