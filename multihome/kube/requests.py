"""Reading a write request the way the API server does: its body (JSON or YAML; a Namespace
in protobuf, as ``kubectl create namespace`` sends it) bounded in size (413), depth and
expanded size (400), its options (``dryRun``, ``fieldManager``, DeleteOptions), and the
``Status`` errors a write answers with (``WriteError``: 400, 404, 405, 409, 415, 422)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import hdrs, web

from . import protowire

if TYPE_CHECKING:
    from .server import Resource

MAX_BODY = 1024 * 1024
BODY_TYPES = ("application/json", "application/yaml")


@dataclass
class WriteError(Exception):
    code: int
    reason: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


def json_response(obj: Any, status: int = 200) -> web.Response:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return web.Response(body=body, status=status, content_type="application/json")


def details(resource: Resource, name: str, **more: Any) -> dict[str, Any]:
    found: dict[str, Any] = {"name": name, "kind": resource.name}
    if resource.group:
        found["group"] = resource.group
    found.update(more)
    return found


def invalid(resource: Resource, name: str, causes: list[tuple[str, str]]) -> WriteError:
    """The API server's 422: ``Kind "name" is invalid: field: message, ...``."""
    text = ", ".join(f"{f}: {m}" if f else m for f, m in causes)
    listed = [
        {"reason": "FieldValueInvalid", "message": m, **({"field": f} if f else {})}
        for f, m in causes
    ]
    return WriteError(
        422, "Invalid", f'{resource.kind} "{name}" is invalid: {text}',
        {"name": name, "group": resource.group, "kind": resource.kind, "causes": listed},
    )  # fmt: skip


def not_found(resource: Resource, name: str) -> WriteError:
    return WriteError(
        404, "NotFound", f'{resource.qualified} "{name}" not found', details(resource, name)
    )


def refused(message: str) -> WriteError:
    return WriteError(405, "MethodNotAllowed", message)


async def read_raw(request: web.Request) -> bytes:
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise WriteError(
            413, "RequestEntityTooLarge", f"Request entity too large: limit is {MAX_BODY}"
        ) from None


async def read_object(request: web.Request) -> dict[str, Any]:
    ctype = request.content_type
    if ctype == protowire.MEDIA_TYPE:
        try:
            return protowire.decode(await read_raw(request), ("Namespace",))
        except (protowire.ProtoError, UnicodeDecodeError) as exc:
            raise WriteError(
                415, "UnsupportedMediaType",
                f"{exc}: send it as application/json (kubectl create -f FILE does)",
            ) from None  # fmt: skip
    if ctype not in BODY_TYPES:
        raise WriteError(
            415, "UnsupportedMediaType",
            "the body of the request was in an unknown format - accepted media types include: "
            + ", ".join(BODY_TYPES),
        )  # fmt: skip
    raw = await read_raw(request)
    try:
        if ctype in ("application/yaml", "application/apply-patch+yaml"):
            value = bounded(yaml.safe_load(raw))
        else:
            value = bounded(json.loads(raw))
    except (ValueError, UnicodeDecodeError, RecursionError, yaml.YAMLError) as exc:
        what = "YAML" if "yaml" in ctype else "JSON"
        raise WriteError(
            400, "BadRequest", f"the body of the request is not valid {what}: {one_line(exc)}"
        ) from None
    if not isinstance(value, dict):
        raise WriteError(400, "BadRequest", "the body of the request is not an object")
    return value


async def delete_options(request: web.Request) -> tuple[bool, dict[str, str]]:
    """The ``dryRun`` and ``preconditions`` (uid, resourceVersion) of the DeleteOptions a
    DELETE may carry as its body (kubectl sends it so)."""
    raw = await read_raw(request)
    if not raw.strip():
        return False, {}
    try:
        options = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise WriteError(400, "BadRequest", f"invalid DeleteOptions: {one_line(exc)}") from None
    if not isinstance(options, dict):
        raise WriteError(400, "BadRequest", "invalid DeleteOptions: not an object")
    given = options.get("preconditions") or {}
    pre = {k: str(v) for k, v in given.items() if k in ("uid", "resourceVersion") and v}
    values = options.get("dryRun")
    if not values:
        return False, pre
    if values != ["All"]:
        raise WriteError(400, "BadRequest", f"Invalid dry run value: {values}")
    return True, pre


MAX_DEPTH = 64
MAX_NODES = 200_000


def bounded(value: Any) -> Any:
    """``value`` when it is nested at most ``MAX_DEPTH`` deep and has at most ``MAX_NODES``
    values once YAML's aliases are expanded (walked without recursion); else a 400."""
    stack = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if depth > MAX_DEPTH or seen > MAX_NODES:
            raise WriteError(
                400, "BadRequest",
                f"the body of the request is nested deeper than {MAX_DEPTH} levels or holds "
                f"more than {MAX_NODES} values (YAML aliases expanded)",
            )  # fmt: skip
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return value


def one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def check_kind(resource: Resource, body: dict[str, Any], required: bool = False) -> None:
    kind, api_version = body.get("kind"), body.get("apiVersion")
    if (required or kind) and kind != resource.kind:
        raise WriteError(
            400, "BadRequest",
            f"the kind of the object ({kind}) does not match the resource on the URL "
            f"({resource.qualified}, kind {resource.kind})",
        )  # fmt: skip
    if (required or api_version) and api_version != resource.group_version:
        raise WriteError(
            400, "BadRequest",
            f"the API version in the data ({api_version}) does not match the expected API "
            f"version ({resource.group_version})",
        )  # fmt: skip


def dry_run_of(request: web.Request) -> bool:
    values = request.query.getall("dryRun", [])
    for v in values:
        if v != "All":
            raise WriteError(
                400, "BadRequest", f'Invalid dry run value: "{v}" (only "All" is supported)'
            )
    return bool(values)


def field_manager(request: web.Request, operation: str) -> str:
    given = request.query.get("fieldManager")
    if given:
        return given
    agent = request.headers.get(hdrs.USER_AGENT, "")
    return agent.split("/", 1)[0] or "unknown"
