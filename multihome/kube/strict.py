"""``fieldValidation`` of writes: the fields of a body that its kind's schema (the OpenAPI
definitions ``openapi`` serves) does not declare, and what the API server does with them.

As the API server's decoder: ``Strict`` refuses a body with unknown fields (a create or an
update: 400 ``<Kind> in version "<v>" cannot be handled as a <Kind>: strict decoding error:
unknown field "spec.x"``; a patch, whose result is decoded: 422 ``patch: Invalid value``),
``Warn`` (the default) answers with one ``Warning`` header per field, ``Ignore`` says nothing;
both leave the unknown fields out of what is stored, as the decoder does.
The paths are the decoder's: dotted, list items as ``[i]``, map values as ``[key]``. A CRD
schema's ``x-kubernetes-preserve-unknown-fields`` and an untyped object end the walk."""

from __future__ import annotations

import functools
import json
from typing import TYPE_CHECKING, Any

from . import openapi
from .requests import WriteError

if TYPE_CHECKING:
    from .server import Resource

DIRECTIVES = ("Ignore", "Warn", "Strict")


def directive(query: Any) -> str:
    """The request's ``fieldValidation`` (400 for a value the API server does not know)."""
    given = query.get("fieldValidation", "") or "Warn"
    for d in DIRECTIVES:
        if given.lower() == d.lower():
            return d
    raise WriteError(
        400, "BadRequest",
        f'fieldValidation: Unsupported value: "{given}": supported values: "Ignore", "Strict", '
        '"Warn"',
    )  # fmt: skip


@functools.cache
def _schemas(k8s_version: str, group: str, version: str, kind: str) -> tuple[Any, str | None]:
    served = openapi.Served(group, version, (("", kind, True),))
    defs, names = openapi._gv_definitions(k8s_version, served)
    return defs, names.get(kind)


def unknown_fields(
    resource: Resource, k8s_version: str, body: Any, drop: frozenset[str] = frozenset()
) -> list[str]:
    """The paths of the fields of ``body`` that the kind's schema does not declare; those in
    ``drop`` are removed from it (as the decoder leaves them out of the object)."""
    try:
        defs, name = _schemas(k8s_version, resource.group, resource.version, resource.kind)
    except (OSError, KeyError, ValueError):  # no bundle: nothing to check against
        return []
    if name is None:
        return []
    found: list[str] = []
    _walk(defs, defs[name], body, "", found, drop)
    return found


def _resolve(defs: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = defs.get(schema["$ref"].rpartition("/")[2], {})
    for part in schema.get("allOf", ()):
        schema = {**_resolve(defs, part), **{k: v for k, v in schema.items() if k != "allOf"}}
    return schema


def _walk(
    defs: dict[str, Any],
    schema: dict[str, Any],
    value: Any,
    path: str,
    found: list[str],
    drop: frozenset[str] = frozenset(),
) -> None:
    """Collect the unknown fields' paths in ``found``; remove those in ``drop``."""
    schema = _resolve(defs, schema)
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        if props is not None:
            for key, item in list(value.items()):
                where = f"{path}.{key}" if path else str(key)
                if key in props:
                    _walk(defs, props[key], item, where, found, drop)
                else:
                    found.append(where)
                    if where in drop:
                        del value[key]
        elif isinstance(extra, dict):
            for key, item in value.items():
                _walk(defs, extra, item, f"{path}[{key}]", found, drop)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, item in enumerate(value):
            _walk(defs, schema["items"], item, f"{path}[{i}]", found, drop)


def _message(fields: list[str]) -> str:
    return "strict decoding error: " + ", ".join(f'unknown field "{f}"' for f in fields)


def check_body(resource: Resource, k8s_version: str, body: Any, mode: str) -> list[str]:
    """A create's or an update's body: the warnings to send (Warn), or the 400 (Strict)."""
    if mode == "Ignore":
        return []
    fields = unknown_fields(resource, k8s_version, body)
    if fields and mode != "Strict":
        unknown_fields(resource, k8s_version, body, frozenset(fields))  # left out, as decoded
    if fields and mode == "Strict":
        raise WriteError(
            400, "BadRequest",
            f'{resource.kind} in version "{resource.version}" cannot be handled as a '
            f"{resource.kind}: {_message(fields)}",
        )  # fmt: skip
    return [f'unknown field "{f}"' for f in fields]


def check_patched(
    resource: Resource, k8s_version: str, patch: Any, live: Any, result: Any, mode: str
) -> list[str]:
    """A patch's result (or an update's body, ``patch`` None): the warnings (Warn), or the
    422 (400 for an update) the API server words (Strict).
    What the live object already has is not the patch's doing (the lab serves some status
    fields newer than its version's schema, as ``status.hostIPs``)."""
    if mode == "Ignore":
        return []
    had = set(unknown_fields(resource, k8s_version, live))
    fields = [f for f in unknown_fields(resource, k8s_version, result) if f not in had]
    if fields and mode != "Strict":
        unknown_fields(resource, k8s_version, result, frozenset(fields))
    if fields and mode == "Strict" and patch is None:  # an update: its body is decoded
        raise WriteError(
            400, "BadRequest",
            f'{resource.kind} in version "{resource.version}" cannot be handled as a '
            f"{resource.kind}: {_message(fields)}",
        )  # fmt: skip
    if fields and mode == "Strict":
        given = json.dumps(patch, separators=(",", ":"))
        raise WriteError(
            422, "Invalid",
            f' "" is invalid: patch: Invalid value: "{given}": {_message(fields)}',
            {"causes": [{"reason": "FieldValueInvalid",
                         "message": f'Invalid value: "{given}": {_message(fields)}',
                         "field": "patch"}]},
        )  # fmt: skip
    return [f'unknown field "{f}"' for f in fields]
