"""JSON for the lab's plugins without importing :mod:`json`.

A plugin process runs once per pod, and ``import json`` costs it more than the rest of its
start-up together (``json.decoder`` imports ``re``, which imports ``enum``, ``functools`` and
the regex compiler). The standard library's C accelerator ``_json`` does the actual work of
``json.loads``/``json.dumps`` in CPython; this module calls it directly, with the settings
``json``'s defaults give it, so the text read and written is the same. Where the accelerator
is missing or its call signature differs (another interpreter or Python version), it falls
back to :mod:`json` itself.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_WHITESPACE = " \t\n\r"


class _Settings:
    """What ``_json``'s scanner reads from a ``json.JSONDecoder()`` with default arguments."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int

    @staticmethod
    def parse_constant(name: str) -> float:
        return float(name)  # NaN, Infinity, -Infinity: what json.loads accepts


def _accelerated() -> tuple[Any, Any] | None:
    try:
        import _json as accelerator

        c: Any = accelerator  # typeshed's stubs type the C calls narrower than they take
        scanner = c.make_scanner(_Settings())
        # json.dumps()'s defaults: no indent, ", " and ": ", ensure_ascii, allow_nan
        encoder = c.make_encoder(
            None, None, c.encode_basestring_ascii, None, ": ", ", ", False, False, True
        )
        if "".join(encoder({"a": [1, "\xe9", None]}, 0)) != '{"a": [1, "\\u00e9", null]}':
            return None
        return scanner, encoder
    except (ImportError, AttributeError, TypeError, ValueError):
        return None


_FAST = _accelerated()


def loads(data: bytes | str) -> Any:
    """``json.loads(data)``; raises ``ValueError`` on text that is not one JSON value."""
    text = data.decode() if isinstance(data, bytes) else data  # CNI speaks UTF-8
    if _FAST is None:
        import json

        return json.loads(text)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _FAST[0](text, start)
    except StopIteration as exc:
        raise ValueError(f"Expecting value: {_where(text, exc.value)}") from None
    rest = text[end:]
    if rest.strip(_WHITESPACE):
        extra = end + len(rest) - len(rest.lstrip(_WHITESPACE))
        raise ValueError(f"Extra data: {_where(text, extra)}")
    return value


def _where(text: str, pos: int) -> str:
    """A position as json's errors give it."""
    line = text.count("\n", 0, pos) + 1
    return f"line {line} column {pos - text.rfind(chr(10), 0, pos)} (char {pos})"


def dumps(value: Any) -> str:
    """``json.dumps(value)``."""
    if _FAST is None:
        import json

        return json.dumps(value)
    return "".join(_FAST[1](value, 0))
