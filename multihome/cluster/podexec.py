"""Run a command in a pod's container through the API (``pods/exec``) over a websocket, as
kubectl 1.30+ does: subprotocol ``v5.channel.k8s.io`` (``v4`` accepted), binary messages
whose first byte is the channel (1 stdout, 2 stderr, 3 the final ``metav1.Status``).

lightkube has no exec, so this speaks it with aiohttp, with the TLS context and credentials
lightkube made from the kubeconfig. ``Exec.run`` never raises for what the pod answers: an
``ExecResult`` says the exit code, the output, and whether the command is missing from the
image (``missing``).
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import aiohttp
import httpx2
from lightkube import KubeConfig
from lightkube.config.client_adapter import user_auth, verify_cluster

PROTOCOLS = ("v5.channel.k8s.io", "v4.channel.k8s.io")
STDOUT, STDERR, ERROR = 1, 2, 3
_MISSING = re.compile(
    r"executable file not found|no such file or directory|not found|failed to execute",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class ExecResult:
    code: int | None
    """The command's exit code; None when it did not run (``error`` says why)."""
    stdout: str
    stderr: str
    error: str | None = None
    missing: bool = False
    """The image has no such command."""

    @property
    def ok(self) -> bool:
        return self.code == 0


def _exit_code(status: dict[str, Any]) -> int | None:
    if status.get("status") == "Success":
        return 0
    for cause in (status.get("details") or {}).get("causes") or ():
        if cause.get("reason") == "ExitCode":
            try:
                return int(cause.get("message", ""))
            except ValueError:
                return None
    return None


class Exec:
    """Exec into pods of one cluster; one aiohttp session, ``limit`` commands at once."""

    def __init__(self, config: KubeConfig, context: str | None, limit: int = 16) -> None:
        single = config.get(context)
        assert single is not None and single.user is not None
        self.server = single.cluster.server.rstrip("/")
        ctx: ssl.SSLContext | bool = False
        if self.server.startswith("https:"):
            ctx = verify_cluster(single.cluster, single.user, single.abs_file)
        self._ssl = ctx
        self._headers = _auth_headers(single.user, self.server)
        self._limit = asyncio.Semaphore(limit)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Exec:
        self._session = aiohttp.ClientSession(headers=self._headers)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def run(
        self,
        namespace: str,
        pod: str,
        command: list[str],
        container: str | None = None,
        timeout: float = 10.0,
    ) -> ExecResult:
        assert self._session is not None
        query: list[tuple[str, str]] = [("command", c) for c in command]
        query += [("stdout", "true"), ("stderr", "true")]
        if container:
            query.append(("container", container))
        url = f"{self.server}/api/v1/namespaces/{namespace}/pods/{pod}/exec?{urlencode(query)}"
        out, err = bytearray(), bytearray()
        status: dict[str, Any] | None = None
        async with self._limit:
            try:
                async with asyncio.timeout(timeout):
                    async with self._session.ws_connect(
                        url, protocols=PROTOCOLS, ssl=self._ssl, max_msg_size=0
                    ) as ws:
                        async for msg in ws:
                            if msg.type != aiohttp.WSMsgType.BINARY or not msg.data:
                                continue
                            channel, data = msg.data[0], msg.data[1:]
                            if channel == STDOUT:
                                out += data
                            elif channel == STDERR:
                                err += data
                            elif channel == ERROR:
                                status = json.loads(data or b"{}")
            except TimeoutError:
                return ExecResult(
                    None, out.decode(errors="replace"), "", f"no end in {timeout:g} s"
                )
            except aiohttp.WSServerHandshakeError as exc:
                return ExecResult(None, "", "", f"exec refused: {exc.status} {exc.message}")
            except (aiohttp.ClientError, OSError, ValueError) as exc:
                return ExecResult(None, "", "", f"exec failed: {exc}")
        stdout, stderr = out.decode(errors="replace"), err.decode(errors="replace")
        if status is None:
            return ExecResult(None, stdout, stderr, "the exec stream ended without a status")
        code = _exit_code(status)
        message = str(status.get("message") or "")
        missing = (code in (126, 127) or code is None) and bool(
            _MISSING.search(message + " " + stderr)
        )
        error = None if code is not None else message or "the command did not run"
        return ExecResult(code, stdout, stderr, error, missing)


def _auth_headers(user: Any, server: str) -> dict[str, str]:
    """The credentials' HTTP headers (a bearer token, basic auth, an exec plugin's token)
    as lightkube's auth flow sets them; client certificates go in the TLS context."""
    auth = user_auth(user)
    if auth is None:
        return {}
    request = httpx2.Request("GET", server)
    flow = auth.sync_auth_flow(request)
    sent = next(flow)
    value = sent.headers.get("Authorization")
    return {"Authorization": value} if value else {}
