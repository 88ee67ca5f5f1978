"""Pydantic validation errors -> :class:`SpecError` at the YAML position they concern.

Error locations from pydantic use the keys as written (aliases), so they are key paths
into the YAML document. Unknown keys get difflib suggestions against the keys the model
accepts there; enumerations list their values.
"""

from __future__ import annotations

import difflib
import types
from collections.abc import Sequence
from typing import Annotated, Any, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, ValidationError

from .errors import SpecError
from .yamlpos import Document, PathItem

M = TypeVar("M", bound=BaseModel)

_EXAMPLES = {
    "name": "name: vlan40",
    "subnet": "subnet: 172.16.40.0/24",
    "range": "range: 172.16.50.30-172.16.50.99",
    "role": "role: agent (or server)",
    "nics": "nics: [{name: ens192, network: vlan40, address: 172.16.40.47}]",
    "network": "network: vlan40",
    "networks": "networks: [{name: vlan40, subnet: 172.16.40.0/24}]",
    "nodes": "nodes: [{name: node-1, role: server, nics: [...]}]",
    "effect": "effect: NoSchedule",
    "from": "from: namespace/pod",
    "to": 'to: "172.16.60.31:80"',
    "containers": "containers: [{name: main, image: ubuntu}]",
    "template": "template: {metadata: {labels: ...}, spec: {containers: [...]}}",
    "value": "value: the setting's value as a string",
    "metadata": "metadata: {name: ...}",
    "spec": "spec: {...}",
}

_EXPECTED = {
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}


def describe(value: Any) -> str:
    """How a YAML value reads to a user: its type and (short) text."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def dotted(path: Sequence[PathItem]) -> str:
    """``spec.networks[0].subnet`` for a key path."""
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        else:
            text += ("." if text else "") + step
    return text or "(document)"


def _flatten(tp: Any) -> list[Any]:
    origin = get_origin(tp)
    if origin is Annotated:
        return _flatten(get_args(tp)[0])
    if origin is Union or origin is types.UnionType:
        return [t for arg in get_args(tp) for t in _flatten(arg)]
    return [tp]


def _field_type(model: type[BaseModel], key: str) -> Any | None:
    for name, info in model.model_fields.items():
        if (info.alias or name) == key:
            return info.annotation
    return None


def types_at(root: type[BaseModel], path: Sequence[PathItem]) -> list[Any]:
    """The types the model accepts at ``path`` (empty when the path leaves the model)."""
    current: list[Any] = [root]
    for step in path:
        following: list[Any] = []
        for tp in (t for c in current for t in _flatten(c)):
            origin = get_origin(tp)
            if isinstance(tp, type) and issubclass(tp, BaseModel) and isinstance(step, str):
                found = _field_type(tp, step)
                if found is not None:
                    following.append(found)
            elif origin is list and isinstance(step, int):
                following.append(get_args(tp)[0])
            elif origin is dict and isinstance(step, str):
                following.append(get_args(tp)[1])
        current = following
    return [t for c in current for t in _flatten(c)]


def allowed_keys(root: type[BaseModel], path: Sequence[PathItem]) -> list[str]:
    """The keys the model accepts in the mapping at ``path``."""
    for tp in types_at(root, path):
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return [info.alias or name for name, info in tp.model_fields.items()]
    return []


def choices_at(root: type[BaseModel], path: Sequence[PathItem]) -> list[str]:
    """The values of the enumeration (Literal) at ``path``."""
    return [
        str(v) for tp in types_at(root, path) if get_origin(tp) is Literal for v in get_args(tp)
    ]


def did_you_mean(word: str, options: Sequence[str]) -> str | None:
    """``"did you mean 'x'?"`` for the closest option, if one is close."""
    lowered = {o.lower(): o for o in options}
    if word.lower() in lowered and lowered[word.lower()] != word:
        return f"did you mean {lowered[word.lower()]!r}?"
    close = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    if not close:
        close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
        close = [lowered[c] for c in close]
    return f"did you mean {close[0]!r}?" if close else None


def _clean_loc(root: type[BaseModel], loc: tuple[int | str, ...]) -> tuple[PathItem, ...]:
    """Drop the steps pydantic adds that are not keys (``[key]``, validator names)."""
    path: list[PathItem] = []
    for step in loc:
        if isinstance(step, str) and (step == "[key]" or ("[" in step and step.endswith("]"))):
            break
        path.append(step)
    return tuple(path)


_SYNONYMS = {
    "master": "server",
    "control-plane": "server",
    "controlplane": "server",
    "etcd": "server",
    "worker": "agent",
    "node": "agent",
}
"""Words from other tools that mean one of our enumeration values."""


def _where(label: str, path: Sequence[PathItem]) -> str:
    parts = [p for p in (label, dotted(path) if path else "") if p]
    return ": ".join(parts)


def _say(where: str, message: str) -> str:
    return f"{where}: {message}" if where else message


def _one(root: type[BaseModel], doc: Document, error: Any, label: str) -> tuple[SpecError, Any]:
    """The SpecError for one pydantic error, and its sort key (file order; a missing key
    sorts right after an unknown key in the same mapping, which is likely its misspelling)."""
    kind: str = error["type"]
    loc = _clean_loc(root, tuple(error["loc"]))
    value = error.get("input")
    ctx = error.get("ctx") or {}
    where = _where(label, loc)
    if kind == "missing":
        key = str(loc[-1]) if loc else "?"
        parent = loc[:-1]
        example = _EXAMPLES.get(key)
        found = SpecError(
            _say(_where(label, parent), f"missing required key {key!r}"),
            doc.locate(*parent),
            f"add {example}" if example else f"add '{key}: ...'",
        )
        return found, ("missing", tuple(parent))
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else "?"
        options = allowed_keys(root, loc[:-1])
        hint = did_you_mean(key, options)
        if hint is None and options:
            hint = "allowed keys here: " + ", ".join(options)
        message = _say(_where(label, loc[:-1]), f"unknown key {key!r}")
        return SpecError(message, doc.locate_key(*loc), hint), ("extra", tuple(loc[:-1]))
    location = doc.locate(*loc)
    if kind in ("literal_error", "enum"):
        options = choices_at(root, loc)
        shown = ", ".join(repr(o) for o in options) or str(ctx.get("expected", "?"))
        hint = None
        if isinstance(value, str):
            synonym = _SYNONYMS.get(value.lower())
            if synonym in options:
                hint = f"did you mean {synonym!r}?"
            else:
                hint = did_you_mean(value, options)
        shown_value = repr(value) if isinstance(value, str) else describe(value)
        return SpecError(_say(where, f"{shown_value} is not one of {shown}"), location, hint), None
    if kind in _EXPECTED:
        expected = _EXPECTED[kind]
        hint = None
        if isinstance(value, str) and kind.startswith(("int", "float", "bool")):
            hint = "remove the quotes"
        elif kind == "string_type" and isinstance(value, bool | int | float):
            what = "boolean" if isinstance(value, bool) else "number"
            hint = f"YAML read this as a {what}; put it in quotes"
        elif kind == "string_type" and value is None:
            hint = "write a value after the ':'"
        elif kind == "list_type" and isinstance(value, dict | str):
            hint = "write a list: '- item' lines or [a, b]"
        message = _say(where, f"expected {expected}, got {describe(value)}")
        return SpecError(message, location, hint), None
    if "hint" in ctx:
        return SpecError(_say(where, str(error["msg"])), location, str(ctx["hint"])), None
    message = str(error["msg"]).removeprefix("Value error, ")
    if message.startswith("Input should be "):
        message = "must be " + message.removeprefix("Input should be ")
        if isinstance(value, int | float | str):
            message += f", not {value!r}"
    return SpecError(_say(where, message), location, None), None


def _position(error: SpecError) -> tuple[int, int]:
    return (error.location.line, error.location.column) if error.location else (0, 0)


def errors_of(
    model: type[BaseModel], doc: Document, exc: ValidationError, label: str = ""
) -> list[SpecError]:
    """Every error of ``exc`` as a SpecError, in file order."""
    found = [_one(model, doc, e, label) for e in exc.errors()]
    extras = {tag[1]: _position(err) for err, tag in found if tag and tag[0] == "extra"}
    keyed: list[tuple[tuple[int, int, int], SpecError]] = []
    for err, tag in found:
        if tag and tag[0] == "missing" and tag[1] in extras:
            keyed.append(((*extras[tag[1]], 1), err))
        else:
            keyed.append(((*_position(err), 0), err))
    keyed.sort(key=lambda item: item[0])
    return [err for _, err in keyed]


def validate(model: type[M], doc: Document, label: str = "") -> M:
    """``model`` validated from the document's value; else a SpecError for the first
    problem in file order, with the others in its ``more``. ``label`` starts messages."""
    try:
        return model.model_validate(doc.value)
    except ValidationError as exc:
        first, *others = errors_of(model, doc, exc, label)
        raise SpecError(first.message, first.location, first.hint, others) from None
