"""Label and field selectors as the API server reads them (``labelSelector``,
``fieldSelector`` query parameters). A selector that does not parse, or a field the resource
does not index, is a ``SelectorError`` (a 400 with the API server's words)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Match = Callable[[dict[str, Any]], bool]

# the fields the API server indexes for field selectors, per resource
FIELDS: dict[str, dict[str, Callable[[dict[str, Any]], str]]] = {
    "pods": {
        "spec.nodeName": lambda o: o["spec"].get("nodeName", ""),
        "spec.restartPolicy": lambda o: o["spec"].get("restartPolicy", ""),
        "spec.schedulerName": lambda o: o["spec"].get("schedulerName", ""),
        "spec.serviceAccountName": lambda o: o["spec"].get("serviceAccountName", ""),
        "spec.hostNetwork": lambda o: str(bool(o["spec"].get("hostNetwork"))).lower(),
        "status.phase": lambda o: o["status"].get("phase", ""),
        "status.podIP": lambda o: o["status"].get("podIP", ""),
        "status.nominatedNodeName": lambda o: o["status"].get("nominatedNodeName", ""),
    },
    "events": {
        "involvedObject.kind": lambda o: o["involvedObject"].get("kind", ""),
        "involvedObject.namespace": lambda o: o["involvedObject"].get("namespace", ""),
        "involvedObject.name": lambda o: o["involvedObject"].get("name", ""),
        "involvedObject.uid": lambda o: o["involvedObject"].get("uid", ""),
        "involvedObject.apiVersion": lambda o: o["involvedObject"].get("apiVersion", ""),
        "involvedObject.resourceVersion": lambda o: o["involvedObject"].get("resourceVersion", ""),
        "involvedObject.fieldPath": lambda o: o["involvedObject"].get("fieldPath", ""),
        "reason": lambda o: o.get("reason", ""),
        "reportingComponent": lambda o: o.get("reportingComponent", ""),
        "source": lambda o: o.get("source", {}).get("component", ""),
        "type": lambda o: o.get("type", ""),
    },
    "nodes": {"spec.unschedulable": lambda o: str(bool(o["spec"].get("unschedulable"))).lower()},
    "namespaces": {"status.phase": lambda o: o["status"].get("phase", "")},
}
_META: dict[str, Callable[[dict[str, Any]], str]] = {
    "metadata.name": lambda o: o["metadata"]["name"],
    "metadata.namespace": lambda o: o["metadata"].get("namespace", ""),
}


class SelectorError(ValueError):
    """A selector the API server would refuse (400 BadRequest)."""


_KEY = re.compile(
    r"^([a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?/)?[a-z0-9A-Z]([-a-z0-9A-Z_.]*[a-z0-9A-Z])?$"
)
_SET = re.compile(r"^\s*(!?)\s*([^\s!=()]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_OP = re.compile(r"^\s*([^\s!=()]+)\s*(==|!=|=)\s*([^\s!=()]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([^\s!=()]+)\s*$")


def _split(text: str) -> list[str]:
    """Split at commas outside parentheses."""
    parts, depth, cur = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return [p for p in parts if p.strip()]


def label_selector(text: str | None) -> Match:
    """``a=b,c!=d,e in (x,y),f notin (z),g,!h``."""
    if not text or not text.strip():
        return lambda _: True
    tests: list[Match] = []
    for part in _split(text):
        tests.append(_label_term(part))
    return lambda obj: all(t(obj) for t in tests)


def _label_term(part: str) -> Match:
    def labels(o: dict[str, Any]) -> dict[str, str]:
        return o["metadata"].get("labels") or {}

    if m := _SET.match(part):
        neg, key, op, values = m.groups()
        if neg:
            raise SelectorError("unable to parse requirement: found '!', expected: in, notin")
        _check_key(key)
        vals = {v.strip() for v in values.split(",") if v.strip()}
        if op == "in":
            return lambda o: labels(o).get(key) in vals
        return lambda o: labels(o).get(key) not in vals
    if m := _OP.match(part):
        key, op, value = m.groups()
        _check_key(key)
        if op == "!=":
            return lambda o: labels(o).get(key) != value
        return lambda o: key in labels(o) and labels(o)[key] == value
    if m := _EXISTS.match(part):
        neg, key = m.groups()
        _check_key(key)
        if neg:
            return lambda o: key not in labels(o)
        return lambda o: key in labels(o)
    raise SelectorError(f"unable to parse requirement: {part.strip()!r}")


def _check_key(key: str) -> None:
    if not _KEY.match(key) or len(key.rpartition("/")[2]) > 63:
        raise SelectorError(
            f'unable to parse requirement: invalid label key "{key}": name part must consist '
            "of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character"
        )


def field_selector(text: str | None, resource: str) -> Match:
    """``metadata.name=x,spec.nodeName!=y``: only the fields the resource indexes."""
    if not text or not text.strip():
        return lambda _: True
    fields = {**_META, **FIELDS.get(resource, {})}
    tests: list[Match] = []
    for part in text.split(","):
        m = re.match(r"^\s*([^=!\s]+)\s*(==|!=|=)\s*(.*?)\s*$", part)
        if not m:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{part}'")
        field, op, value = m.groups()
        if field not in fields:
            raise SelectorError(f"field label not supported: {field}")
        get = fields[field]
        if op == "!=":
            tests.append(lambda o, g=get, v=value: g(o) != v)  # type: ignore[misc]
        else:
            tests.append(lambda o, g=get, v=value: g(o) == v)  # type: ignore[misc]
    return lambda obj: all(t(obj) for t in tests)
