"""``pods/exec`` over a websocket, as kubectl 1.30+ speaks it (``v5.channel.k8s.io``, and
``v4.channel.k8s.io`` for older clients that enable websockets): each binary message starts
with its channel, 0 stdin, 1 stdout, 2 stderr, 3 the status (a ``metav1.Status`` with the exit
code), 4 terminal resize; v5 adds 255, the client closing a channel (stdin's EOF). The command
runs in the pod's namespaces as ``multihome exec`` runs it (``lab.api.exec_argv``)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
from collections.abc import Sequence
from typing import Any

from aiohttp import WSMsgType, web

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDIN, STDOUT, STDERR, ERROR, RESIZE, CLOSE = 0, 1, 2, 3, 4, 255
_CHUNK = 32 * 1024
log = logging.getLogger("multihome.kube")


def exit_status(code: int, argv: Sequence[str]) -> dict[str, Any]:
    """What the kubelet writes on the error channel (v4+) when the command ends."""
    if code == 0:
        return {"metadata": {}, "status": "Success"}
    return {
        "metadata": {},
        "status": "Failure",
        "message": "command terminated with non-zero exit code: error executing command "
        f"[{' '.join(argv)}], exit code {code}",
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": str(code)}]},
    }


def failure(message: str) -> dict[str, Any]:
    return {"metadata": {}, "status": "Failure", "message": message, "reason": "InternalError"}


async def run(
    request: web.Request, argv: list[str], command: list[str], *, stdin: bool, tty: bool
) -> web.WebSocketResponse:
    """Upgrade the request, run ``argv`` (the nsenter argv of ``command``), relay the
    channels, send the exit status, close."""
    ws = web.WebSocketResponse(protocols=PROTOCOLS, max_msg_size=4 * 1024 * 1024)
    await ws.prepare(request)
    log.info("exec %s over %s", command, ws.ws_protocol)
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT if tty else asyncio.subprocess.PIPE,
            start_new_session=True,  # nsenter forks the command: stop them as a group
        )
    except OSError as exc:
        await ws.send_bytes(bytes([ERROR]) + json.dumps(failure(str(exc))).encode())
        await ws.close()
        return ws

    async def pump(stream: asyncio.StreamReader | None, channel: int) -> None:
        if stream is None:
            return
        while chunk := await stream.read(_CHUNK):
            if ws.closed:
                return
            await ws.send_bytes(bytes([channel]) + chunk)

    async def feed() -> None:
        async for msg in ws:
            if msg.type != WSMsgType.BINARY or not msg.data:
                continue
            channel, data = msg.data[0], msg.data[1:]
            if channel == STDIN and proc.stdin is not None and data:
                proc.stdin.write(data)
                with contextlib.suppress(ConnectionError):
                    await proc.stdin.drain()
            elif channel == CLOSE and data[:1] == bytes([STDIN]) and proc.stdin is not None:
                proc.stdin.close()
        # the client went away: the command goes too
        _kill(proc)

    feeder = asyncio.create_task(feed())
    try:
        await asyncio.gather(pump(proc.stdout, STDOUT), pump(proc.stderr, STDERR))
        code = await proc.wait()
        if not ws.closed:
            status = exit_status(code, command)
            await ws.send_bytes(bytes([ERROR]) + json.dumps(status).encode())
            await ws.close()
    finally:
        feeder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await feeder
        if proc.returncode is None:
            _kill(proc)
            await proc.wait()
    return ws


def _kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the command's process group (nsenter and the command it forked), if it runs."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
