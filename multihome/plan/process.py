"""What runs in a pod's namespace, decided from its manifest alone: only what the lab can
vouch for.

- ``sleep N`` (directly, or as ``sh|bash -c "sleep N"``) runs as such;
- a server the lab stands in for answers on its ports: an nginx/httpd/caddy image (HTTP on
  80), ``agnhost netexec`` (``--http-port``, ``--udp-port``), ``python -m http.server``;
- a container the lab can't run gets echo listeners on its declared ``containerPort``s, so
  reachability to it can be tested;
- a Longhorn instance-manager that serves replicas listens for replication on its storage
  interface.

Anything else (a script, a pipeline, a binary of the image) is not run: the pod's namespace
stays, without a process.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from multihome.plan.instance_managers import REPLICA_DATA_PORT, REPLICA_PORTS
from multihome.plan.model import ProcessPlan

LONGHORN_REPLICA_PORT = REPLICA_DATA_PORT
"""Where the engine streams a replica's blocks to: the data port of the first replica
process in a replica-serving instance-manager (``instance_managers.py``)."""

_HTTP_IMAGES = ("nginx", "httpd", "caddy")
_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?")


def port_number(value: object) -> int | None:
    """A TCP/UDP port number (1-65535) from a manifest or a flag, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
    else:
        return None
    return number if 1 <= number <= 65535 else None


def _image_name(image: object) -> str:
    """``registry/path/nginx:1.27@sha...`` -> ``nginx``."""
    text = str(image or "").split("@", 1)[0]
    last = text.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def _sleep_seconds(argv: Sequence[str]) -> str | None:
    words = list(argv)
    if os.path.basename(argv[0]) in ("sh", "bash") and len(argv) == 3 and argv[1] == "-c":
        try:
            words = shlex.split(argv[2])
        except ValueError:
            return None
    if len(words) == 2 and os.path.basename(words[0]) == "sleep":
        value = words[1]
        if value == "infinity" or _SECONDS.fullmatch(value):
            return value
    return None


def _flag(argv: Sequence[str], name: str, default: int) -> int | None:
    """A port flag (``--http-port=8080`` or ``--http-port 8080``): its value, ``default``
    when absent, None when it is no port."""
    for i, word in enumerate(argv):
        if word.startswith(f"{name}="):
            return port_number(word.split("=", 1)[1])
        if word == name and i + 1 < len(argv):
            return port_number(argv[i + 1])
    return default


def _known_server(image: str, argv: Sequence[str]) -> ProcessPlan | None:
    if image == "agnhost" and "netexec" in argv[:2]:
        http, udp = _flag(argv, "--http-port", 8080), _flag(argv, "--udp-port", 8081)
        return ProcessPlan(http=http, udp=(udp,) if udp else ())
    python_http = list(argv[1:3]) == ["-m", "http.server"]
    if len(argv) >= 3 and os.path.basename(argv[0]).startswith("python") and python_http:
        given = argv[3] if len(argv) > 3 and not argv[3].startswith("-") else "8000"
        return ProcessPlan(http=port_number(given))
    if image in _HTTP_IMAGES and (not argv or os.path.basename(argv[0]) in _HTTP_IMAGES):
        return ProcessPlan(http=80)
    return None


def _declared_ports(containers: list[Mapping[str, Any]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    tcp: set[int] = set()
    udp: set[int] = set()
    for container in containers:
        for port in container.get("ports") or []:
            number = port_number(port.get("containerPort")) if isinstance(port, Mapping) else None
            if number is not None:
                (udp if str(port.get("protocol", "TCP")).upper() == "UDP" else tcp).add(number)
    return tuple(sorted(tcp)), tuple(sorted(udp))


def longhorn_process(interface: str) -> ProcessPlan:
    """A replica-serving instance-manager: its first replica process's control, data and
    sync ports on its storage interface's address (Longhorn's listen on every address;
    the lab binds them to lhnet1 so that a stream routed elsewhere finds nothing)."""
    return ProcessPlan(tcp=REPLICA_PORTS, bind_interface=interface)


def pod_process(pod_spec: Mapping[str, Any]) -> ProcessPlan | None:
    """What runs for a pod whose spec (as written in its manifest) is ``pod_spec``."""
    containers = [c for c in pod_spec.get("containers") or [] if isinstance(c, Mapping)]
    if not containers:
        return None
    first = containers[0]
    argv = [str(a) for a in (first.get("command") or [])] + [
        str(a) for a in (first.get("args") or [])
    ]
    if argv and (seconds := _sleep_seconds(argv)) is not None:
        return ProcessPlan(sleep=seconds)
    server = _known_server(_image_name(first.get("image")), argv)
    tcp, udp = _declared_ports(containers)
    if server is not None:
        merged = ProcessPlan(
            http=server.http,
            tcp=tuple(sorted({*server.tcp, *(p for p in tcp if p != server.http)})),
            udp=tuple(sorted({*server.udp, *udp})),
        )
        return merged if merged.serves else None
    if tcp or udp:
        return ProcessPlan(tcp=tcp, udp=udp)
    return None
