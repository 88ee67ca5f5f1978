"""The three patch types of ``PATCH`` besides apply: JSON merge patch (RFC 7386), JSON patch
(RFC 6902, through ``jsonpatch``) and strategic merge patch, as apimachinery's
``strategicpatch`` applies it to the built-in kinds: lists of objects merged by their patch
merge key (``containers`` by ``name``, ``ports`` by ``containerPort``, ...), the directives
``$patch`` (replace, delete, merge), ``$setElementOrder/``, ``$deleteFromPrimitiveList/`` and
``$retainKeys``; lists without a merge key are replaced, as the Go types' tags say."""

from __future__ import annotations

import copy
import re
from typing import Any

import jsonpatch

MERGE = "application/merge-patch+json"
JSON = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
APPLY_CBOR = "application/apply-patch+cbor"
TYPES = (MERGE, JSON, STRATEGIC, APPLY)

# patchMergeKey of the list fields of the built-in kinds served (core/v1 and apps/v1 types)
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "conditions": "type",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
# patchStrategy "merge" on a list of scalars
MERGED_SCALAR_LISTS = ("finalizers",)


class PatchError(ValueError):
    """A patch that can't be applied (the API server's 422), or can't be read (400)."""

    def __init__(self, message: str, code: int = 422) -> None:
        super().__init__(message)
        self.code = code


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch", 400)
    try:
        result = jsonpatch.JsonPatch(patch).apply(target)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
        raise PatchError(
            "the server rejected our request due to an error in our request: "
            + re.sub(r" \(<class '\w+'>\)", "", str(exc))
        ) from None
    except (TypeError, KeyError, AttributeError) as exc:
        raise PatchError(f"invalid JSON patch: {exc}", 400) from exc
    if not isinstance(result, dict):
        raise PatchError("the patch does not leave an object")
    return result


def strategic_patch(target: dict[str, Any], patch: Any) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise PatchError("strategic merge patch: the patch must be a JSON object", 400)
    result = _strategic_map(target, patch)
    if not isinstance(result, dict):
        raise PatchError("the patch does not leave an object")
    return result


def _strategic_map(target: Any, patch: dict[str, Any]) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: v for k, v in patch.items() if k != "$patch"}
    if directive not in (None, "merge"):
        raise PatchError(f"Unknown patch type: {directive} in map: {patch}")
    result = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            drop = value if isinstance(value, list) else []
            if isinstance(result.get(field), list):
                result[field] = [x for x in result[field] if x not in drop]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _strategic_map(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _strategic_list(key, result.get(key), value)
        else:
            result[key] = copy.deepcopy(value)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    for key, order in patch.items():
        if key.startswith("$setElementOrder/") and isinstance(order, list):
            field = key.split("/", 1)[1]
            if isinstance(result.get(field), list):
                result[field] = _ordered(field, result[field], order)
    return result


def _strategic_list(field: str, target: Any, patch: list[Any]) -> list[Any]:
    current = list(target) if isinstance(target, list) else []
    key = MERGE_KEYS.get(field)
    if field in MERGED_SCALAR_LISTS:
        return current + [x for x in patch if x not in current]
    if key is None or not all(isinstance(x, dict) for x in patch):
        if any(isinstance(x, dict) and x.get("$patch") == "replace" for x in patch):
            return [x for x in patch if not (isinstance(x, dict) and "$patch" in x)]
        return copy.deepcopy(patch)
    if any(x.get("$patch") == "replace" for x in patch):
        return [x for x in patch if "$patch" not in x]
    for item in patch:
        if key not in item:
            raise PatchError(f"map: {item} does not contain declared merge key: {key}")
        at = next(
            (i for i, x in enumerate(current) if isinstance(x, dict) and x.get(key) == item[key]),
            None,
        )
        if item.get("$patch") == "delete":
            if at is not None:
                del current[at]
            continue
        merged = _strategic_map(current[at] if at is not None else {}, item)
        if at is None:
            current.append(merged)
        else:
            current[at] = merged
    return current


def _ordered(field: str, items: list[Any], order: list[Any]) -> list[Any]:
    key = MERGE_KEYS.get(field)
    if key is None:
        return items
    ids = [o.get(key) if isinstance(o, dict) else o for o in order]

    def rank(item: Any) -> int:
        value = item.get(key) if isinstance(item, dict) else item
        return ids.index(value) if value in ids else len(ids)

    return sorted(items, key=rank)
