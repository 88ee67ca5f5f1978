"""Go's ``encoding/json`` decoding rules, for the values Multus decodes (facts, not code, from Go).

What differs from Python's ``json`` and matters for Multus's annotation:

- syntax is checked over the whole text before anything is decoded (a syntax error wins);
- a value of the wrong JSON type for its Go type is a ``*json.UnmarshalTypeError`` that is
  saved (the first one) while decoding goes on; an error of a ``TextUnmarshaler`` (``net.IP``)
  stops decoding at once and wins over a saved one;
- object keys match struct fields exactly, else case-insensitively (Go's fold: ASCII upper,
  and ``ToUpper(ToLower(r))`` for other runes, so ``ſ`` matches ``s`` and ``K`` matches ``k``);
- ``null`` leaves strings and numbers unchanged and sets pointers, slices and maps to nil;
- a repeated key decodes into the value already there: a map keeps its keys, a pointer its
  struct, a slice its backing array (elements past the new length stay for the next decode);
- numbers decode with ``strconv``: into ``int`` only integer literals within int64, into
  ``interface{}`` as float64, where a value out of range (``1e400``) is an error;
- escaped lone surrogates (``"\\ud800"``) decode to U+FFFD.

:func:`loads` reads the text into :class:`Pairs` (objects, keys in order, duplicates kept) and
:class:`Num` (numbers as written); :class:`Decoder` carries the saved error and the helpers.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
_INT = re.compile(r"-?(0|[1-9][0-9]*)")
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Pairs(list[tuple[str, Any]]):
    """A JSON object: its key/value pairs in order, duplicates kept."""


class Num(str):
    """A JSON number, as written."""


def _text(value: str) -> str:
    return _SURROGATE.sub("\ufffd", value)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[0]!r} looking for beginning of value")


def _fix(value: Any) -> Any:
    if isinstance(value, Pairs):
        return Pairs((_text(k), _fix(v)) for k, v in value)
    if isinstance(value, list):
        return [_fix(v) for v in value]
    if isinstance(value, str) and not isinstance(value, Num):
        return _text(value)
    return value


def loads(text: str) -> Any:
    """The JSON value in ``text``; ValueError (JSONDecodeError) on a syntax error."""
    decoded = json.loads(
        text,
        object_pairs_hook=Pairs,
        parse_int=Num,
        parse_float=Num,
        parse_constant=_reject_constant,
    )
    return _fix(decoded)


def kind(value: Any) -> str:
    """The JSON type's name as Go's UnmarshalTypeError writes it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, Num):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Pairs):
        return "object"
    return "array"


@functools.lru_cache(maxsize=4096)  # keys repeat: the same few field names, pod after pod
def fold(name: str) -> str:
    """Go's ``foldName``: keys equal under it match a field case-insensitively."""
    out = []
    for ch in name:
        if ch.isascii():
            out.append(ch.upper())
            continue
        low = "i" if ch == "\u0130" else ch.lower()  # Go: ToLower('İ') = 'i'
        low = low if len(low) == 1 else ch
        up = low.upper()
        out.append(up if len(up) == 1 else low)
    return "".join(out)


def match_fields(pairs: Pairs, fields: tuple[str, ...]) -> list[tuple[str, Any]]:
    """``(field, value)`` for each pair whose key names a field (exactly, else folded), in
    order; other keys are dropped (Go ignores unknown keys)."""
    folded: dict[str, str] = {}
    for f in fields:
        folded.setdefault(fold(f), f)
    out = []
    for key, value in pairs:
        field = key if key in fields else folded.get(fold(key))
        if field is not None:
            out.append((field, value))
    return out


@dataclass
class TypeError_:
    """A ``*json.UnmarshalTypeError``: JSON ``value`` kind into Go type ``gotype`` at
    ``struct``.``field`` (both empty at the top level)."""

    value: str
    gotype: str
    struct: str = ""
    field: str = ""

    def __str__(self) -> str:
        if self.struct or self.field:
            return (
                f"json: cannot unmarshal {self.value} into Go struct field "
                f"{self.struct}.{self.field} of type {self.gotype}"
            )
        return f"json: cannot unmarshal {self.value} into Go value of type {self.gotype}"


class HardError(Exception):
    """An error that stops Go's decoder at once (a TextUnmarshaler's)."""


Where = tuple[str, str]
"""``(Go struct name, dotted JSON field path)`` for error messages; ``("", "")`` at the top."""


class Decoder:
    """Decoding state: the first saved UnmarshalTypeError, and Go's rules for leaves."""

    def __init__(self) -> None:
        self.saved: TypeError_ | None = None
        self.saved_at: Any = None  # the caller's marker of where the saved error happened

    def save(self, value: Any, gotype: str, where: Where, at: Any = None, text: str = "") -> None:
        if self.saved is None:
            shown = f"{kind(value)} {text}" if text else kind(value)
            self.saved = TypeError_(shown, gotype, *where)
            self.saved_at = at

    def string(self, value: Any, current: str, where: Where, at: Any = None) -> str:
        if value is None:
            return current
        if isinstance(value, str) and not isinstance(value, Num):
            return value
        self.save(value, "string", where, at)
        return current

    def int(self, value: Any, current: int, where: Where, at: Any = None) -> int:
        if value is None:
            return current
        if isinstance(value, Num):
            # the length test first: int() refuses more than 4300 digits
            if _INT.fullmatch(value) and len(value) <= 20 and INT64_MIN <= int(value) <= INT64_MAX:
                return int(value)
            self.save(value, "int", where, at, text=str(value))
            return current
        self.save(value, "int", where, at)
        return current

    def any(self, value: Any, where: Where, at: Any = None) -> Any:
        """A value decoded into ``interface{}``: objects are maps (the last duplicate wins),
        numbers float64 (written back as integers when they are whole)."""
        if isinstance(value, Pairs):
            return {k: self.any(v, where, at) for k, v in value}
        if isinstance(value, list):
            return [self.any(v, where, at) for v in value]
        if isinstance(value, Num):
            number = float(value)
            if number in (float("inf"), float("-inf")):
                self.save(value, "float64", where, at, text=str(value))
                return None
            if number.is_integer() and abs(number) < 2**53:
                return int(number)
            return number
        return value


@dataclass
class GoSlice:
    """A Go slice: ``items`` is its backing array (kept across repeated keys), ``length``
    how much of it is the slice."""

    items: list[Any]
    length: int

    @property
    def value(self) -> list[Any]:
        return self.items[: self.length]


def decode_slice(
    dec: Decoder,
    value: Any,
    current: GoSlice | None,
    gotype: str,
    where: Where,
    element: Any,
    zero: Any,
    at: Any = None,
) -> GoSlice | None:
    """Go's ``array()`` into a slice: null -> nil, ``[]`` -> a fresh empty slice, otherwise
    each item decoded by ``element(item, old)`` into the backing array's slot."""
    if value is None:
        return None
    if not isinstance(value, list) or isinstance(value, Pairs):
        dec.save(value, gotype, where, at)
        return current
    if not value:
        return GoSlice([], 0)
    items = current.items if current is not None else []
    for index, item in enumerate(value):
        old = items[index] if index < len(items) else zero
        new = element(item, old)
        if index < len(items):
            items[index] = new
        else:
            items.append(new)
    return GoSlice(items, len(value))
