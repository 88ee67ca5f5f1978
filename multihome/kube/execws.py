"""``pods/exec`` over a websocket, as kubectl 1.30+ speaks it (``v5.channel.k8s.io``, and
``v4.channel.k8s.io`` for older clients that enable websockets): each binary message starts
with its channel, 0 stdin, 1 stdout, 2 stderr, 3 the status (a ``metav1.Status`` with the exit
code), 4 terminal resize; v5 adds 255, the client closing a channel (stdin's EOF). The command
runs in the pod's namespaces as ``multihome exec`` runs it (``lab.api.exec_argv``); with
``tty`` it gets a pseudo-terminal as its controlling terminal (stdout and stderr both on it,
as the kubelet gives a container), sized by the client's resize messages."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import signal
import struct
import termios
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
    terminal = _Terminal() if tty else None
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=terminal.child
            if terminal
            else (asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL),
            stdout=terminal.child if terminal else asyncio.subprocess.PIPE,
            stderr=terminal.child if terminal else asyncio.subprocess.PIPE,
            start_new_session=True,  # nsenter forks the command: stop them as a group
            preexec_fn=_take_terminal if terminal else None,
        )
    except OSError as exc:
        if terminal:
            terminal.close()
        await ws.send_bytes(bytes([ERROR]) + json.dumps(failure(str(exc))).encode())
        await ws.close()
        return ws
    if terminal:
        os.close(terminal.child)
        terminal.child = -1

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
            if channel == STDIN and terminal and data:
                await terminal.write(data)
            elif channel == STDIN and proc.stdin is not None and data:
                proc.stdin.write(data)
                with contextlib.suppress(ConnectionError):
                    await proc.stdin.drain()
            elif channel == RESIZE and terminal:
                terminal.resize(data)
            elif channel == CLOSE and data[:1] == bytes([STDIN]) and proc.stdin is not None:
                proc.stdin.close()
        # the client went away: the command goes too
        _kill(proc)

    feeder = asyncio.create_task(feed())
    try:
        if terminal:
            await terminal.relay(ws)
        else:
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
        if terminal:
            terminal.close()
    return ws


def _take_terminal() -> None:
    """In the child, after ``setsid``: the pseudo-terminal on stdin becomes its controlling
    terminal (so a shell gets job control and ^C reaches it, as in a container with a tty)."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


class _Terminal:
    """A pseudo-terminal pair: the child's end for the command, ours relayed to stdout."""

    def __init__(self) -> None:
        self.ours, self.child = os.openpty()
        os.set_blocking(self.ours, False)

    def resize(self, data: bytes) -> None:
        """A resize message: ``{"Width": W, "Height": H}`` (kubectl's TerminalSize)."""
        try:
            size = json.loads(data)
            cols, rows = int(size.get("Width", 0)), int(size.get("Height", 0))
        except (ValueError, TypeError, AttributeError):
            return
        if 0 < cols < 65536 and 0 < rows < 65536:
            with contextlib.suppress(OSError):
                fcntl.ioctl(self.ours, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                view = view[os.write(self.ours, view) :]
            except BlockingIOError:
                await asyncio.sleep(0.01)
            except OSError:
                return

    async def relay(self, ws: web.WebSocketResponse) -> None:
        """Send what the command writes until every holder of its end has closed it (EIO)."""
        loop = asyncio.get_running_loop()
        readable = asyncio.Event()
        loop.add_reader(self.ours, readable.set)
        try:
            while True:
                await readable.wait()
                readable.clear()
                try:
                    chunk = os.read(self.ours, _CHUNK)
                except BlockingIOError:
                    continue
                except OSError:  # EIO: the command and its children closed the terminal
                    return
                if not chunk or ws.closed:
                    return
                await ws.send_bytes(bytes([STDOUT]) + chunk)
        finally:
            loop.remove_reader(self.ours)

    def close(self) -> None:
        for fd in (self.ours, self.child):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.ours = self.child = -1


def _kill(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the command's process group (nsenter and the command it forked), if it runs."""
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
