"""``python -m multihome.kube serve LABDIR|-``: the lab's API server process (started by ``up``).

Makes the credentials, listens on a free port of 127.0.0.1, writes ``LABDIR/kubeconfig``
(mode 0600, through the lab's safefs), then serves until SIGTERM (``down``). With ``-`` it
starts up before its lab exists and is handed the lab on its standard input
(``multihome.lab.apiserver``: the CLI's ``up`` starts it first of all, on the core its own
start-up leaves idle).

``up`` waits for its kubeconfig last: its start-up (imports of aiohttp and cryptography, the
keys: ~0.4 s of CPU) may run while ``up`` attaches the pods, on the same few cores. So that
start-up runs in a thread of lower priority (``START_NICE``: a Linux nice value is a
thread's own), which uses the CPU the attach leaves; the thread that then serves, and the
processes it starts (``exec``), keep the priority ``up`` gave the process."""

from __future__ import annotations

import asyncio
import base64
import functools
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import yaml

from multihome.lab.api import status_path
from multihome.lab.state import ENV_STATE_DIR

from . import KUBECONFIG_FILE

if TYPE_CHECKING:
    from . import tls
    from .state import LabSource

T = TypeVar("T")
WARM_UP_AFTER = 120.0  # s: the longest the warm-up waits for up to finish
START_NICE = 10  # added to the start-up thread's nice value (weight ~1/10 of up's threads)


def kubeconfig(lab: str, port: int, creds: tls.Credentials) -> str:
    name = f"multihome-{lab}"
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {
                    "server": f"https://127.0.0.1:{port}",
                    "certificate-authority-data": base64.b64encode(creds.ca_pem).decode(),
                },
            }
        ],
        "users": [{"name": f"{name}-admin", "user": {"token": creds.token}}],
        "contexts": [{"name": name, "context": {"cluster": name, "user": f"{name}-admin"}}],
        "current-context": name,
        "preferences": {},
    }
    return yaml.safe_dump(doc, sort_keys=False)


@dataclass
class Prepared:
    """What the start-up thread made: the lab's source, its RKE2 version, the credentials."""

    source: LabSource
    version: str
    creds: tls.Credentials


def _import_aiohttp() -> None:
    """aiohttp, whose client module builds its default verified SSL context at import:
    the system's CA bundle parsed, ~45-80 ms of CPU here. This server makes no client
    connection (it serves, with its own context: ``tls.server_context``), so that context
    is built with an empty trust store: OpenSSL's ``SSL_CERT_FILE``/``SSL_CERT_DIR``
    point at nothing for the moment of the import, then are put back, before this process
    starts anything (the commands of ``exec`` get the environment it was given). A client
    connection made with that context would fail to verify, never pass unverified."""
    saved = {key: os.environ.get(key) for key in _CA_ENV}
    os.environ.update(dict.fromkeys(_CA_ENV, os.devnull))
    try:
        import aiohttp.web  # noqa: F401
    finally:
        for key, value in saved.items():
            if value is None:
                del os.environ[key]
            else:
                os.environ[key] = value


_CA_ENV = ("SSL_CERT_FILE", "SSL_CERT_DIR")


def start_up() -> None:
    """The server's modules imported (most of its start-up)."""
    _import_aiohttp()

    from . import server, state, tls  # noqa: F401


def prepare(lab_dir: Path) -> Prepared:
    """The server's start-up: its modules imported, the plan read, the credentials made."""
    start_up()
    return for_lab(lab_dir)


def for_lab(lab_dir: Path) -> Prepared:
    """The lab's part of the start-up (``start_up`` done): the plan read, the credentials
    made."""
    from . import tls
    from .state import LabSource

    source = LabSource(lab_dir)
    plan = json.loads(source.state.read_text(lab_dir / "plan.json"))
    return Prepared(source, plan["cluster"]["version"], tls.make(source.state.name))


def _lower_priority() -> None:
    """This thread's nice value ``START_NICE`` higher (Linux: the other threads keep theirs)."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + START_NICE)
    except OSError:  # pragma: no cover - raising a nice value is always allowed; still serve
        pass


def warm_up(source: LabSource) -> None:
    """The planner imported ahead, in a thread of lower priority, once ``up`` is done (it
    wrote the lab's status): the first request that needs the lab's system objects does not
    wait ~0.3 s for it, and ``up`` does not share the CPU with it."""

    def run() -> None:
        _lower_priority()
        status = status_path(source.state)
        deadline = time.monotonic() + WARM_UP_AFTER
        while not source.state.has(status) and time.monotonic() < deadline:
            time.sleep(0.05)
        from . import system

        system.import_planner()

    threading.Thread(target=run, name="warm-up", daemon=True).start()


def _niced(work: Callable[[], T]) -> Callable[[], T]:
    """``work()`` started in a thread whose nice value is ``START_NICE`` more than this
    one's; returns what waits for its result (its exception raised in the caller)."""
    done: list[T] = []
    failed: list[BaseException] = []

    def run() -> None:
        _lower_priority()
        try:
            done.append(work())
        except BaseException as exc:  # re-raised in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=run, name="start-up")
    thread.start()

    def result() -> T:
        thread.join()
        if failed:
            raise failed[0]
        return done[0]

    return result


async def serve(lab_dir: Path, prepared: Prepared | None = None) -> None:
    from aiohttp import web

    from . import tls
    from .server import Api

    ready = prepared if prepared is not None else prepare(lab_dir)
    source, creds = ready.source, ready.creds
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    api = Api(source, creds.token, ready.version, port)
    runner = web.AppRunner(api.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.SockSite(runner, sock, ssl_context=tls.server_context(creds))
    await site.start()
    source.state.write_atomic(lab_dir / KUBECONFIG_FILE, kubeconfig(source.state.name, port, creds))
    if prepared is not None:
        warm_up(source)
    logging.getLogger("multihome.kube").info(
        "serving lab %s on https://127.0.0.1:%d", source.state.name, port
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await api.writer.stop()
    await runner.cleanup()


def _handed_over() -> Path | None:
    """``serve -``: the lab ``up`` hands this server over on its standard input (a line of
    JSON: the lab's directory and the log), once it recorded it in the lab's journal; None
    when the input ends first (``up`` ended without it). Its output then goes to the log,
    its input is /dev/null, as for a server started with its lab."""
    line = sys.stdin.buffer.readline()
    if not line.endswith(b"\n"):
        return None
    given = json.loads(line)
    from multihome.lab import safefs

    log = safefs.append_fd(str(given["log"]), mode=0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    for fd, target in ((log, 1), (log, 2), (null, 0)):
        os.dup2(fd, target)
    os.close(log)
    os.close(null)
    return Path(given["lab_dir"])


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "serve":
        sys.stderr.write("usage: python -m multihome.kube serve LABDIR|-\n")
        return 2
    if argv[1] == "-":
        started = _niced(start_up)  # before the lab exists: most of the start-up
        handed = _handed_over()  # meanwhile: the input may end before the start-up does
        if handed is None:
            os._exit(0)  # up ended without it: at once (not when the imports are done)
        started()
        lab_dir = handed
        rest = functools.partial(for_lab, handed)
    else:
        lab_dir = Path(argv[1]).absolute()
        rest = functools.partial(prepare, lab_dir)
    # lab.api's helpers (exec_argv) find the lab under the state root it is in
    os.environ[ENV_STATE_DIR] = str(lab_dir.parent)
    level = logging.DEBUG if os.environ.get("MULTIHOME_KUBE_DEBUG") else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(lab_dir, _niced(rest)()))  # the rest of the start-up, niced too
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
