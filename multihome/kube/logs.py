"""``pods/log`` (``kubectl logs POD [-c C] [--tail N] [--limit-bytes B] [-f]``): the output of
the process the lab runs in the pod, which ``lab/pods.py`` starts with its stdout and stderr
appended to ``LABDIR/pod-NAMESPACE.NAME.log`` (the name fitted as the lab fits names).

A pod the lab runs nothing in, a pod not running, ``--previous`` (no container of the lab ever
restarts) and ``--timestamps`` (the lab's logs carry none) are 400s that say why, in the
kubelet's words where it has some. ``-f`` follows the file until the client goes, the pod goes
or the lab stops."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from aiohttp import web

from multihome.lab import safefs
from multihome.lab.names import fit

from .objects import LabView
from .state import LabSource

FOLLOW_POLL = 0.2  # seconds between looks at a followed log
CHUNK = 64 * 1024


def log_path(source: LabSource, namespace: str, name: str) -> str:
    """Where ``lab/pods.py`` sends the output of the pod's process."""
    return str(source.state.dir / (fit(f"pod-{fit(f'{namespace}.{name}')}") + ".log"))


def _bad(message: str, code: int = 400, reason: str = "BadRequest") -> web.Response:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip
    return web.json_response(body, status=code)


def _int(request: web.Request, key: str) -> int | None:
    raw = request.query.get(key)
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{key}: Invalid value: {raw!r}: must be an integer") from None
    if value < (1 if key == "limitBytes" else 0):
        raise ValueError(f"{key}: Invalid value: {value}: must be greater than or equal to 0")
    return value


def _tail(data: bytes, lines: int | None) -> bytes:
    if lines is None:
        return data
    if lines == 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


async def serve(
    request: web.Request, source: LabSource, namespace: str, name: str
) -> web.StreamResponse:
    view = source.view()
    pod = next(
        (p for p in view.objects("lab/pods", LabView.pods)
         if p["metadata"]["namespace"] == namespace and p["metadata"]["name"] == name),
        None,
    )  # fmt: skip
    if pod is None:
        return _bad(f'pods "{name}" not found', 404, "NotFound")
    containers = [c.get("name", "") for c in pod["spec"].get("containers", [])]
    container = request.query.get("container") or (containers[0] if len(containers) == 1 else "")
    if not container:
        return _bad(
            f"a container name must be specified for pod {name}, choose one of: {containers}"
        )
    if container not in containers:
        return _bad(f"container {container} is not valid for pod {name}")
    try:
        tail = _int(request, "tailLines")
        limit = _int(request, "limitBytes")
    except ValueError as exc:
        return _bad(str(exc), 422, "Invalid")
    if request.query.get("previous") in ("1", "true"):
        return _bad(f'previous terminated container "{container}" in pod "{name}" not found')
    if request.query.get("timestamps") in ("1", "true"):
        return _bad("the lab's pod logs carry no timestamps: use kubectl logs without --timestamps")
    if pod["status"].get("phase") != "Running":
        return _bad(f'container "{container}" in pod "{name}" is waiting to start: '
                    "ContainerCreating")  # fmt: skip
    lab_pod: dict[str, Any] = next(
        (p for p in view.status["pods"] if p["namespace"] == namespace and p["name"] == name), {}
    )
    if not lab_pod.get("process"):
        return _bad(
            f'pod "{name}" runs no process in the lab (its container\'s command is not one the '
            "lab emulates: a sleep or a server), so it has no log"
        )
    path = log_path(source, namespace, name)
    base = str(source.state.root)
    try:
        data = safefs.read_bytes(path, base=base)
    except (OSError, safefs.StateError) as exc:
        return _bad(f"cannot read the log of pod {namespace}/{name}: {exc}", 500, "InternalError")
    data = _tail(data, tail)
    if limit is not None:
        data = data[:limit]
    follow = request.query.get("follow") in ("1", "true")
    if not follow:
        return web.Response(body=data, content_type="text/plain")
    response = web.StreamResponse(headers={"Content-Type": "text/plain"})
    response.enable_chunked_encoding()
    await response.prepare(request)
    sent = len(data)
    try:
        await response.write(data)
        offset = os.stat(path).st_size
        while limit is None or sent < limit:
            await asyncio.sleep(FOLLOW_POLL)
            transport = request.transport
            if transport is None or transport.is_closing():
                break
            size = os.stat(path).st_size
            if size > offset:
                fd = safefs.open_file(path, os.O_RDONLY, base=base)
                with open(fd, "rb") as fh:
                    fh.seek(offset)
                    more = fh.read(min(size - offset, CHUNK))
                offset += len(more)
                if limit is not None:
                    more = more[: limit - sent]
                sent += len(more)
                await response.write(more)
            elif not _pod_alive(source, namespace, name):
                break
        await response.write_eof()
    except (ConnectionResetError, FileNotFoundError):
        pass  # the client went, or the pod did
    return response


def _pod_alive(source: LabSource, namespace: str, name: str) -> bool:
    try:
        view = source.view()
    except FileNotFoundError:
        return False
    status: dict[str, Any] = view.status
    return bool(status.get("running")) and any(
        p["namespace"] == namespace and p["name"] == name for p in status["pods"]
    )
