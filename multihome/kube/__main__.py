"""``python -m multihome.kube serve LABDIR``: the lab's API server process (started by ``up``).

Makes the credentials, listens on a free port of 127.0.0.1, writes ``LABDIR/kubeconfig``
(mode 0600, through the lab's safefs), then serves until SIGTERM (``down``)."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import signal
import socket
import sys
from pathlib import Path

import yaml
from aiohttp import web

from multihome.lab.state import ENV_STATE_DIR

from . import KUBECONFIG_FILE, tls
from .server import Api
from .state import LabSource


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


async def serve(lab_dir: Path) -> None:
    source = LabSource(lab_dir)
    plan = json.loads(source.state.read_text(lab_dir / "plan.json"))
    creds = tls.make(source.state.name)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    api = Api(source, creds.token, plan["cluster"]["version"], port)
    runner = web.AppRunner(api.app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.SockSite(runner, sock, ssl_context=tls.server_context(creds))
    await site.start()
    source.state.write_atomic(lab_dir / KUBECONFIG_FILE, kubeconfig(source.state.name, port, creds))
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
    asyncio.run(serve(lab_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
