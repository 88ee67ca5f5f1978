"""YAML text -> plain Python values plus a tree of file:line:column positions.

The documents are built from libyaml's event stream (the C parser when PyYAML has it), not
from PyYAML's constructor, so that this module controls everything that can go wrong:
duplicate keys are errors, nesting depth and alias expansion are bounded (no "billion
laughs"), merge keys (``<<``) work, keys are always strings (their text), timestamps and
binaries stay the strings they were written as (as Kubernetes reads them), and every
problem is a :class:`SpecError` at its place. Values are JSON-like: dict, list, str, int,
float, bool, None; an alias is a deep copy of its anchor's value, never a shared object.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from .errors import Location, SpecError

try:
    _Loader: type[Any] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - PyYAML without libyaml
    _Loader = yaml.SafeLoader

MAX_DEPTH = 100
"""Deepest nesting of mappings and sequences accepted."""
MAX_NODES = 100_000
"""Most values (scalars and collections, aliases expanded) in one document."""

INT_MIN, INT_MAX = -(2**63), 2**64 - 1
"""The integers a YAML value may hold: what Kubernetes (Go) reads, int64 or uint64."""

PathItem = str | int
"""One step of a key path: a mapping key or a sequence index."""

_TAG = "tag:yaml.org,2002:"
_MERGE = object()


def _short(text: str) -> str:
    """A scalar as written, cut short for a message (a number may have thousands of digits)."""
    return text if len(text) <= 40 else f"{text[:24]}... ({len(text)} characters)"


@dataclass(slots=True)
class Pos:
    """Positions of one value: where it starts, and of its keys and items."""

    loc: Location
    keys: dict[str, tuple[Location, Pos]] | None = None
    items: list[Pos] | None = None

    def walk(self, path: Sequence[PathItem]) -> tuple[Pos, int]:
        """The deepest node along ``path`` and how many steps of it exist."""
        node = self
        for depth, step in enumerate(path):
            if node.keys is not None and isinstance(step, str) and step in node.keys:
                node = node.keys[step][1]
            elif (
                node.items is not None
                and isinstance(step, int)
                and not isinstance(step, bool)
                and 0 <= step < len(node.items)
            ):
                node = node.items[step]
            else:
                return node, depth
        return node, len(path)

    def locate(self, path: Sequence[PathItem]) -> Location:
        """Where the value at ``path`` starts, or its nearest existing ancestor."""
        return self.walk(path)[0].loc

    def locate_key(self, path: Sequence[PathItem]) -> Location:
        """Where the key that ends ``path`` is written (for an unknown or duplicate key);
        the value's place when the last step is an index, the ancestor's when missing."""
        if path:
            parent, depth = self.walk(path[:-1])
            last = path[-1]
            if depth == len(path) - 1 and parent.keys is not None and isinstance(last, str):
                hit = parent.keys.get(last)
                if hit is not None:
                    return hit[0]
        return self.locate(path)

    def has(self, path: Sequence[PathItem]) -> bool:
        """Whether every step of ``path`` exists."""
        return self.walk(path)[1] == len(path)


@dataclass(frozen=True, slots=True)
class Document:
    """One YAML document of a file: its value and positions."""

    value: Any
    pos: Pos
    index: int
    """0-based position of the document among the file's non-empty documents."""
    file: str

    def locate(self, *path: PathItem) -> Location:
        return self.pos.locate(path)

    def locate_key(self, *path: PathItem) -> Location:
        return self.pos.locate_key(path)


@dataclass(slots=True)
class _Frame:
    pos: Pos
    anchor: str | None
    is_map: bool
    value: Any
    size: int = 1
    # mappings only: the key waiting for its value, the explicit entries, the merges
    key: str | None = None
    key_loc: Location | None = None
    merge_pending: bool = False
    merges: list[tuple[dict[str, Any], Pos]] = field(default_factory=list)


_HINTS = (
    (
        "cannot start any token",
        "YAML indents with spaces, never tabs; quote values that start with @ or `",
    ),
    ("mapping values are not allowed", "check the indentation, and quote values that contain ': '"),
    ("expected <block end>", "check the indentation of this line against the lines above"),
    ("could not find expected ':'", "a key needs ': ' after it; check quoting and indentation"),
    ("did not find expected key", "check the indentation of this line against the lines above"),
    ("did not find expected '-'", "items of a list must all start at the same column"),
    ("found unexpected end of stream", "a quote or bracket is not closed"),
    ("control characters are not allowed", "a lab file is YAML text; is this the right file?"),
)


def _hint_for(problem: str) -> str:
    for needle, hint in _HINTS:
        if needle in problem:
            return hint
    return "check the YAML syntax here"


def _offset_location(text: str, offset: int, file: str, *, in_bytes: bool) -> Location:
    before = (
        text.encode("utf-8", "surrogatepass")[:offset].decode("utf-8", "ignore")
        if in_bytes
        else text[:offset]
    )
    line = before.count("\n") + 1
    column = len(before) - (before.rfind("\n") + 1) + 1
    return Location(file, line, column)


def decode(data: bytes, file: str) -> str:
    """The text of a file's bytes: UTF-8 (a BOM is dropped) or UTF-16/32 with a BOM."""
    for bom, codec in (
        (b"\xff\xfe\x00\x00", "utf-32"),
        (b"\x00\x00\xfe\xff", "utf-32"),
        (b"\xff\xfe", "utf-16"),
        (b"\xfe\xff", "utf-16"),
    ):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError:
                break
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        text = data[: exc.start].decode("utf-8", "ignore")
        loc = _offset_location(text, len(text), file, in_bytes=False)
        raise SpecError(
            f"not UTF-8 text: byte 0x{data[exc.start]:02x} cannot be decoded",
            loc,
            "a lab file is YAML text in UTF-8; is this the right file?",
        ) from None


def _check_text(text: str, file: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise SpecError(
            f"invalid character U+{ord(text[exc.start]):04X} (a lone surrogate)",
            _offset_location(text, exc.start, file, in_bytes=False),
            "a lab file is YAML text in UTF-8",
        ) from None


class _Composer:
    def __init__(self, text: str, file: str) -> None:
        self.text = text
        self.file = file
        self.loader = _Loader(text)
        self.constructor = SafeConstructor()

    def loc(self, event: Any) -> Location:
        mark = event.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)

    def yaml_error(self, exc: yaml.YAMLError) -> SpecError:
        if isinstance(exc, yaml.MarkedYAMLError):
            problem = exc.problem or "invalid YAML"
            parts = [exc.context, problem] if exc.context else [problem]
            mark = exc.problem_mark or exc.context_mark
            loc = Location(self.file, mark.line + 1, mark.column + 1) if mark else None
            return SpecError("invalid YAML: " + ": ".join(parts), loc, _hint_for(problem))
        if isinstance(exc, yaml.reader.ReaderError):
            loc = _offset_location(
                self.text,
                exc.position,
                self.file,
                in_bytes=self.loader.__class__ is not yaml.SafeLoader,
            )
            if isinstance(exc.character, int):
                what = f"unacceptable character #x{exc.character:04x}: {exc.reason}"
            else:
                what = f"unacceptable byte: {exc.reason}"
            return SpecError(f"invalid YAML: {what}", loc, _hint_for(exc.reason))
        return SpecError(f"invalid YAML: {exc}", None, "check the YAML syntax")

    def events(self) -> Iterator[Any]:
        try:
            while self.loader.check_event():
                yield self.loader.get_event()
        except yaml.YAMLError as exc:
            raise self.yaml_error(exc) from None
        finally:
            self.loader.dispose()

    def scalar(self, event: Any) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag in (_TAG + "str", _TAG + "timestamp", _TAG + "binary", _TAG + "value"):
            return event.value
        if tag == _TAG + "merge":
            return _MERGE
        if tag in (_TAG + "null", _TAG + "bool", _TAG + "int", _TAG + "float"):
            node = yaml.ScalarNode(tag, event.value, event.start_mark, event.end_mark, event.style)
            is_int = tag == _TAG + "int"
            if is_int and len(event.value.lstrip("+-").replace("_", "")) > 66:  # 0b + 64 bits
                value = None  # out of range: not converted (Python refuses > 4300 digits)
            else:
                try:
                    value = self.constructor.construct_object(node)
                except Exception:
                    raise SpecError(
                        f"{_short(event.value)!r} is not a valid {tag.removeprefix(_TAG)}",
                        self.loc(event),
                        "remove the explicit tag or fix the value",
                    ) from None
            if isinstance(value, float) and not math.isfinite(value):
                raise SpecError(
                    f"{event.value} is not a number Kubernetes accepts",
                    self.loc(event),
                    "JSON, which Kubernetes reads manifests as, has no NaN or Infinity",
                )
            if is_int and not (isinstance(value, int) and INT_MIN <= value <= INT_MAX):
                raise SpecError(
                    f"the integer {_short(event.value)} is out of range",
                    self.loc(event),
                    "Kubernetes reads integers of at most 64 bits; write a smaller number",
                )
            return value
        raise SpecError(
            f"unsupported YAML tag {tag!r}",
            self.loc(event),
            "plain YAML only: remove the tag (!!str, !!int, ... are fine)",
        )

    def documents(self) -> list[Document]:
        docs: list[Document] = []
        stack: list[_Frame] = []
        anchors: dict[str, tuple[Any, Pos, int]] = {}
        open_anchors: set[str] = set()
        root: tuple[Any, Pos] | None = None
        total = 0

        def budget(size: int, event: Any) -> None:
            nonlocal total
            total += size
            if total > MAX_NODES:
                raise SpecError(
                    f"document too large: more than {MAX_NODES} values (aliases expanded)",
                    self.loc(event),
                    "a lab file is small; is an alias expanding recursively (a 'billion laughs')?",
                )

        def attach(value: Any, pos: Pos, size: int, event: Any) -> None:
            nonlocal root
            if value is _MERGE and (
                not stack
                or not stack[-1].is_map
                or stack[-1].key is not None
                or stack[-1].merge_pending
            ):
                value = "<<"
            if not stack:
                root = (value, pos)
                return
            top = stack[-1]
            top.size += size
            if not top.is_map:
                top.value.append(value)
                assert top.pos.items is not None
                top.pos.items.append(pos)
                return
            if top.key is None and not top.merge_pending:
                if value is _MERGE:
                    top.merge_pending = True
                    top.key_loc = pos.loc
                    return
                if isinstance(value, dict | list):
                    raise SpecError(
                        "a mapping key must be a plain value, not a mapping or list",
                        pos.loc,
                        "check the indentation: is a ':' missing after a key?",
                    )
                key = event.value if event.__class__ is yaml.ScalarEvent else str(value)
                assert top.pos.keys is not None
                if key in top.pos.keys:
                    first = top.pos.keys[key][0]
                    raise SpecError(
                        f"duplicate key {key!r} (first at line {first.line})",
                        pos.loc,
                        "a key may appear once in a mapping: remove or merge one of them",
                    )
                top.key = key
                top.key_loc = pos.loc
                return
            if top.merge_pending:
                top.merge_pending = False
                sources = value if isinstance(value, list) else [value]
                source_pos = (
                    pos.items if isinstance(value, list) and pos.items is not None else [pos]
                )
                for item, item_pos in zip(sources, source_pos, strict=True):
                    if not isinstance(item, dict):
                        raise SpecError(
                            "a merge key '<<' needs a mapping or a list of mappings",
                            item_pos.loc,
                            "write '<<: *anchor' where the anchor names a mapping",
                        )
                    top.merges.append((item, item_pos))
                return
            assert top.key is not None and top.key_loc is not None and top.pos.keys is not None
            top.value[top.key] = value
            top.pos.keys[top.key] = (top.key_loc, pos)
            top.key = None

        def close_mapping(frame: _Frame) -> None:
            if not frame.merges:
                return
            assert frame.pos.keys is not None
            value: dict[str, Any] = {}
            keys: dict[str, tuple[Location, Pos]] = {}
            for source, source_pos in frame.merges:
                for key, item in source.items():
                    if key not in value:
                        value[key] = item
                        assert source_pos.keys is not None
                        keys[key] = source_pos.keys[key]
            value.update(frame.value)
            keys.update(frame.pos.keys)
            frame.value = value
            frame.pos.keys = keys

        for event in self.events():
            kind = event.__class__
            if kind is yaml.ScalarEvent:
                budget(1, event)
                value = self.scalar(event)
                pos = Pos(self.loc(event))
                if event.anchor is not None:
                    anchors[event.anchor] = ("<<" if value is _MERGE else value, pos, 1)
                attach(value, pos, 1, event)
            elif kind is yaml.MappingStartEvent or kind is yaml.SequenceStartEvent:
                budget(1, event)
                if len(stack) >= MAX_DEPTH:
                    raise SpecError(
                        f"nesting deeper than {MAX_DEPTH} levels",
                        self.loc(event),
                        "a lab file is shallow; is this the right file?",
                    )
                if event.tag not in (None, "!", _TAG + "map", _TAG + "seq", _TAG + "omap"):
                    raise SpecError(
                        f"unsupported YAML tag {event.tag!r}",
                        self.loc(event),
                        "plain YAML only: remove the tag",
                    )
                is_map = kind is yaml.MappingStartEvent
                pos = Pos(self.loc(event), {} if is_map else None, None if is_map else [])
                frame = _Frame(pos, event.anchor, is_map, {} if is_map else [])
                if event.anchor is not None:
                    open_anchors.add(event.anchor)
                stack.append(frame)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                frame = stack.pop()
                if frame.is_map:
                    close_mapping(frame)
                if frame.anchor is not None:
                    open_anchors.discard(frame.anchor)
                    anchors[frame.anchor] = (frame.value, frame.pos, frame.size)
                attach(frame.value, frame.pos, frame.size, event)
            elif kind is yaml.AliasEvent:
                if event.anchor in open_anchors:
                    raise SpecError(
                        f"alias *{event.anchor} refers to a value that contains it",
                        self.loc(event),
                        "recursive aliases are not allowed",
                    )
                if event.anchor not in anchors:
                    raise SpecError(
                        f"alias *{event.anchor} names no anchor defined before it",
                        self.loc(event),
                        f"define '&{event.anchor}' on a value above this line",
                    )
                value, pos, size = anchors[event.anchor]
                budget(size, event)
                attach(copy.deepcopy(value), pos, size, event)
            elif kind is yaml.DocumentStartEvent:
                root = None
                anchors.clear()
                total = 0
            elif kind is yaml.DocumentEndEvent and root is not None and root[0] is not None:
                docs.append(Document(root[0], root[1], len(docs), self.file))
        return docs


def compose(text: str, file: str) -> list[Document]:
    """The non-empty documents of ``text`` (``file`` names it in locations).

    Raises :class:`SpecError` for anything that is not well-formed YAML.
    """
    _check_text(text, file)
    return _Composer(text, file).documents()
