"""``python -m multihome.kube serve LABDIR``: the lab's API server process (started by ``up``).

Makes the credentials, listens on a free port of 127.0.0.1, writes ``LABDIR/kubeconfig``
(mode 0600, through the lab's safefs), then serves until SIGTERM (``down``).

``up`` starts it first and waits for its kubeconfig last: its start-up (imports of aiohttp
and cryptography, the keys: ~0.5 s of CPU) runs while ``up`` attaches the pods, on the same
few cores. So that start-up runs in a thread of lower priority (``START_NICE``: a Linux nice
value is a thread's own), which uses the CPU the attach leaves; the thread that then serves,
and the processes it starts (``exec``), keep the priority ``up`` gave the process."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from multihome.lab.api import status_path
from multihome.lab.state import ENV_STATE_DIR

from . import KUBECONFIG_FILE

if TYPE_CHECKING:
    from . import tls
    from .state import LabSource

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


def prepare(lab_dir: Path) -> Prepared:
    """The server's start-up: its modules imported, the plan read, the credentials made."""
    import aiohttp.web  # noqa: F401  (imported here, in the start-up thread)

    from . import server, tls  # noqa: F401
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


def prepare_niced(lab_dir: Path) -> Prepared:
    """``prepare`` in a thread whose nice value is ``START_NICE`` more than this one's."""
    done: list[Prepared] = []
    failed: list[BaseException] = []

    def run() -> None:
        _lower_priority()
        try:
            done.append(prepare(lab_dir))
        except BaseException as exc:  # re-raised in the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=run, name="start-up")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return done[0]


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


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "serve":
        sys.stderr.write("usage: python -m multihome.kube serve LABDIR\n")
        return 2
    lab_dir = Path(argv[1]).absolute()
    # lab.api's helpers (exec_argv) find the lab under the state root it is in
    os.environ[ENV_STATE_DIR] = str(lab_dir.parent)
    level = logging.DEBUG if os.environ.get("MULTIHOME_KUBE_DEBUG") else logging.INFO
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(lab_dir, prepare_niced(lab_dir)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
