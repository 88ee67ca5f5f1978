"""Deterministic YAML text: key order as built (no sorting behind the caller's back), no
anchors or aliases, block style, multi-line strings as literal blocks, no line folding."""

from __future__ import annotations

import textwrap
from collections.abc import Iterable, Sequence
from typing import Any

import yaml

WIDTH = 1 << 16
"""Long enough that no string is ever folded over lines."""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_Dumper.add_representer(str, _str)


def dump(value: Any) -> str:
    """One YAML document, without the ``---`` marker."""
    text = yaml.dump(
        value,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=WIDTH,
    )
    return str(text)


def wrap(*paragraphs: str, width: int = 88) -> list[str]:
    """Each paragraph as lines of at most ``width`` characters (words never split)."""
    return [
        line
        for text in paragraphs
        for line in textwrap.wrap(text, width, break_long_words=False, break_on_hyphens=False)
    ]


def comment(lines: Iterable[str]) -> str:
    """``# line`` for each line (``#`` alone for an empty one)."""
    return "".join(f"# {line}\n" if line else "#\n" for line in lines)


def documents(values: Sequence[Any], header: Sequence[str] = ()) -> str:
    """A multi-document stream: the header as comments, then each document after ``---``."""
    return comment(header) + "".join(f"---\n{dump(v)}" for v in values)
