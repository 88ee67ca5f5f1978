"""Field ownership: ``metadata.managedFields`` and server-side apply, as the API server's field
manager (structured-merge-diff) keeps them.

A field set is a set of paths; a path's steps are ``("f", name)`` for a map field and
``("k", '{"name":"x"}')`` for an element of an associative list (the built-in kinds' lists
with a merge key, see ``patch.MERGE_KEYS``); other lists are atomic (one leaf). An element's
own path is in the set too (FieldsV1 writes it as ``".": {}``). Server-set metadata, ``kind``,
``apiVersion`` and ``status`` are not owned, as the field manager strips them.

``apply`` merges an applied configuration into the live object for its manager: a field
another manager owns with a different value is a conflict (409, unless ``force``, which takes
it over), fields the manager applied before and no longer applies are removed unless someone
else owns them. ``track_update`` gives the manager of a create, update or patch the fields it
changed, and takes them from the others.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from .patch import MERGE_KEYS

Step = tuple[str, str]
Path = tuple[Step, ...]
STRIPPED_META = (
    "name", "namespace", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields", "selfLink",
)  # fmt: skip


@dataclass
class Conflict:
    manager: str
    path: Path


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[tuple[str, Path]], entries: list[dict[str, Any]]) -> None:
        self.conflicts = conflicts
        self.entries = entries
        super().__init__(self.message())

    def message(self) -> str:
        if len(self.conflicts) == 1:
            manager, path = self.conflicts[0]
            return f"Apply failed with 1 conflict: conflict with {manager}: {path_text(path)}"
        by: dict[str, list[Path]] = {}
        for manager, path in self.conflicts:
            by.setdefault(manager, []).append(path)
        lines = []
        for manager in sorted(by):
            lines.append(f"conflicts with {manager}:")
            lines += [f"- {path_text(p)}" for p in by[manager]]
        return f"Apply failed with {len(self.conflicts)} conflicts: " + "\n".join(lines)

    def causes(self) -> list[dict[str, str]]:
        return [
            {
                "reason": "FieldManagerConflict",
                "message": f"conflict with {m}",
                "field": path_text(p),
            }
            for m, p in self.conflicts
        ]


def described(entry: dict[str, Any]) -> str:
    """A manager as the conflict message names it (Update ones with their version)."""
    text = json.dumps(entry["manager"])
    if entry.get("operation") == "Update":
        text += f" using {entry.get('apiVersion', '')}"
    return text


def path_text(path: Path) -> str:
    text = ""
    for kind, value in path:
        if kind == "f":
            text += f".{value}"
        else:
            keys = json.loads(value)
            text += "[" + ",".join(f"{k}={json.dumps(v)}" for k, v in keys.items()) + "]"
    return text


def _owned_body(obj: dict[str, Any]) -> dict[str, Any]:
    body = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion", "status")}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in STRIPPED_META}
    if meta:
        body["metadata"] = meta
    else:
        body.pop("metadata", None)
    return body


def fields_of(obj: dict[str, Any], associative: bool = True) -> set[Path]:
    """The paths an object sets (``associative``: the built-in kinds' merge keys apply)."""
    found: set[Path] = set()
    _walk(_owned_body(obj), (), found, associative)
    return found


def _element_key(field: str, item: Any, associative: bool) -> str | None:
    key = MERGE_KEYS.get(field) if associative else None
    if key is None or not isinstance(item, dict) or key not in item:
        return None
    return json.dumps({key: item[key]}, separators=(",", ":"))


def _walk(value: Any, path: Path, found: set[Path], associative: bool) -> None:
    if isinstance(value, dict) and value:
        for key, child in value.items():
            child_path = (*path, ("f", key))
            if (
                isinstance(child, list)
                and child
                and all(_element_key(key, item, associative) for item in child)
            ):
                for item in child:
                    element = (*child_path, ("k", str(_element_key(key, item, associative))))
                    found.add(element)
                    _walk(item, element, found, associative)
            elif isinstance(child, dict) and child:
                _walk(child, child_path, found, associative)
            else:
                found.add(child_path)
    elif path:
        found.add(path)


def value_at(obj: Any, path: Path) -> tuple[bool, Any]:
    node = obj
    for kind, step in path:
        if kind == "f":
            if not isinstance(node, dict) or step not in node:
                return False, None
            node = node[step]
        else:
            if not isinstance(node, list):
                return False, None
            (key, want), *_ = json.loads(step).items()
            node = next((x for x in node if isinstance(x, dict) and x.get(key) == want), None)
            if node is None:
                return False, None
    return True, node


def _remove(obj: Any, path: Path) -> None:
    *head, (kind, last) = path
    found, parent = value_at(obj, tuple(head))
    if not found:
        return
    if kind == "f" and isinstance(parent, dict):
        parent.pop(last, None)
    elif kind == "k" and isinstance(parent, list):
        (key, want), *_ = json.loads(last).items()
        parent[:] = [x for x in parent if not (isinstance(x, dict) and x.get(key) == want)]


def _prune_empty(obj: Any, path: Path) -> None:
    """Drop the maps along ``path`` that removing a field left empty (not list elements)."""
    while path and path[-1][0] == "f":
        found, value = value_at(obj, path)
        if not found or value not in ({}, []):
            return
        _remove(obj, path)
        path = path[:-1]


def merge(live: Any, applied: Any, field: str = "", associative: bool = True) -> Any:
    """``applied`` merged into ``live``: maps field by field, associative lists by key."""
    if isinstance(live, dict) and isinstance(applied, dict):
        result = dict(live)
        for key, value in applied.items():
            result[key] = merge(live.get(key), value, key, associative)
        return result
    if (
        isinstance(live, list)
        and isinstance(applied, list)
        and applied
        and all(_element_key(field, x, associative) for x in [*live, *applied])
    ):
        result_list = [copy.deepcopy(x) for x in live]
        for item in applied:
            k = _element_key(field, item, associative)
            at = next(
                (i for i, x in enumerate(result_list) if _element_key(field, x, associative) == k),
                None,
            )
            if at is None:
                result_list.append(copy.deepcopy(item))
            else:
                result_list[at] = merge(result_list[at], item, field, associative)
        return result_list
    return copy.deepcopy(applied)


# -- managedFields (FieldsV1) ---------------------------------------------------------------
def encode(fields: set[Path]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for path in sorted(fields):
        node = tree
        for kind, step in path:
            node = node.setdefault(f"{kind}:{step}", {})
        if path and path[-1][0] == "k":
            node["."] = {}
    return tree


def decode(tree: Any, prefix: Path = ()) -> set[Path]:
    found: set[Path] = set()
    if not isinstance(tree, dict):
        return found
    if not tree and prefix:
        found.add(prefix)
    for key, child in tree.items():
        if key == ".":
            found.add(prefix)
            continue
        kind, _, step = key.partition(":")
        if kind in ("f", "k") and step:
            found |= decode(child, (*prefix, (kind, step)))
    return found


@dataclass
class Entry:
    manager: str
    operation: str
    api_version: str
    time: str
    fields: set[Path]

    def to_json(self) -> dict[str, Any]:
        return {
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": encode(self.fields),
        }


def entries(managed: Any) -> list[Entry]:
    found = []
    for e in managed if isinstance(managed, list) else []:
        if isinstance(e, dict) and e.get("manager") is not None:
            found.append(
                Entry(str(e["manager"]), str(e.get("operation", "Update")),
                      str(e.get("apiVersion", "")), str(e.get("time", "")),
                      decode(e.get("fieldsV1")))
            )  # fmt: skip
    return found


def _prune(found: list[Entry]) -> list[dict[str, Any]]:
    return [e.to_json() for e in found if e.fields]


def apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    managed: list[Entry],
    manager: str,
    api_version: str,
    now: str,
    *,
    force: bool,
    associative: bool,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The object after ``manager`` applies ``applied``, and its new managedFields;
    ``ApplyConflict`` when another manager owns a field it would change."""
    wanted = fields_of(applied, associative)
    base = copy.deepcopy(live) if live is not None else {}
    others = [e for e in managed if not (e.manager == manager and e.operation == "Apply")]
    mine = next((e for e in managed if e.manager == manager and e.operation == "Apply"), None)
    conflicts: list[tuple[str, Path]] = []
    for e in others:
        for path in sorted(e.fields & wanted):
            had, old = value_at(base, path)
            _, new = value_at(applied, path)
            if path[-1][0] == "k" or not had or old == new:
                continue
            conflicts.append((described(e.to_json()), path))
    if conflicts and not force:
        raise ApplyConflict(conflicts, [e.to_json() for e in managed])
    taken = {p for _, p in conflicts}
    for e in others:
        e.fields -= taken
    result = merge(base, applied, associative=associative)
    if mine is not None:
        owned_by_others = set().union(*(e.fields for e in others)) if others else set()
        removed: list[Path] = []
        for path in sorted(mine.fields - wanted - owned_by_others, key=len):
            if any(path[: len(r)] == r for r in removed):
                continue  # its element or map went already
            _remove(result, path)
            removed.append(path)
            _prune_empty(result, path[:-1])
    entry = Entry(manager, "Apply", api_version, now, wanted)
    new = [e if e is not mine else entry for e in managed]
    if mine is None:
        new.append(entry)
    return result, _prune(new)


def track_update(
    old: dict[str, Any] | None,
    new: dict[str, Any],
    managed: list[Entry],
    manager: str,
    api_version: str,
    now: str,
    *,
    associative: bool,
) -> list[dict[str, Any]]:
    """managedFields after ``manager`` changed ``old`` to ``new`` (create: ``old`` None)."""
    after = fields_of(new, associative)
    before = fields_of(old, associative) if old is not None else set()
    changed = {p for p in after if value_at(old or {}, p) != value_at(new, p)}
    gone = before - after
    for e in managed:
        if not (e.manager == manager and e.operation == "Update"):
            e.fields -= changed | gone
    mine = next((e for e in managed if e.manager == manager and e.operation == "Update"), None)
    if mine is None:
        if changed:
            managed.append(Entry(manager, "Update", api_version, now, changed))
    else:
        mine.fields = (mine.fields - gone) | changed
        mine.time = now
    return _prune(managed)
