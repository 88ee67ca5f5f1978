"""What a lab needs from this machine, checked before anything is built: the system
packages (CNI plugins, dnsmasq, nsenter) and the kernel's link kinds its NADs use (this
kernel, for one, has no ipvlan, 802.1q vlan or bond).

Link kinds are probed by really creating one of each in a throwaway user + network
namespace of a forked child, so the answer is the kernel's own, and nothing of the host is
touched. The answer is kept for the life of the process.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pickle
import shutil
import signal
from typing import NoReturn

from multihome.plan import Plan

from . import netlink, ns
from .daemons import DNSMASQ
from .nodes import CNI_BIN_DIR

# CNI plugin type -> the kernel link kind it makes.
LINK_KIND = {
    "bridge": "bridge",
    "macvlan": "macvlan",
    "ipvlan": "ipvlan",
    "vlan": "vlan",
    "bond": "bond",
    "vrf": "vrf",
}
_WHY = {
    "vlan": "802.1q VLAN devices (CONFIG_VLAN_8021Q)",
    "ipvlan": "ipvlan (CONFIG_IPVLAN)",
    "bond": "bonding (CONFIG_BONDING)",
    "vrf": "VRF devices (CONFIG_NET_VRF)",
    "macvlan": "macvlan (CONFIG_MACVLAN)",
    "bridge": "bridges (CONFIG_BRIDGE)",
}


class PreflightError(RuntimeError):
    """The machine lacks what the lab needs; the message says what and how to get it."""


def missing_packages() -> list[str]:
    """Debian packages the lab needs and this machine lacks."""
    missing = []
    if not os.path.isdir(CNI_BIN_DIR):
        missing.append("containernetworking-plugins")
    if not os.path.exists(DNSMASQ):
        missing.append("dnsmasq-base")
    if shutil.which("nsenter") is None:
        missing.append("util-linux")
    if shutil.which("ip") is None:  # host-gw routes of larger labs go in one ip -batch
        missing.append("iproute2")
    return missing


@functools.cache
def link_kinds_unavailable(kinds: tuple[str, ...]) -> dict[str, str]:
    """The kinds among ``kinds`` this kernel can't create, with the kernel's reason."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        _probe_child(kinds, reader, writer)
    try:
        os.close(writer)
        with open(reader, "rb") as fh:
            data = fh.read()
    except BaseException:  # Ctrl-C: the probe is of no use any more
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.waitpid(pid, 0)
    found = pickle.loads(data) if data else "the probe died"
    if isinstance(found, str):
        raise PreflightError(f"cannot check the kernel's link kinds: {found}")
    return {kind: why for kind, why in found.items() if why is not None}


def _probe_child(kinds: tuple[str, ...], reader: int, writer: int) -> NoReturn:
    """The forked probe: answer over ``writer`` and leave with ``os._exit`` whatever
    happens (Ctrl-C, ``up`` killed so the pipe is broken), never returning into the
    caller's stack: a child that did would run on as a second copy of the CLI."""
    code = 1
    try:
        ns.die_with_parent()
        os.close(reader)
        try:
            ns.unshare(ns.CLONE_NEWUSER | ns.CLONE_NEWNET)
            result: object = netlink.probe_link_kinds(list(kinds))
        except Exception as exc:
            result = f"cannot probe: {exc}"
        with open(writer, "wb") as out:
            out.write(pickle.dumps(result))
        code = 0
    finally:
        os._exit(code)


def check(plan: Plan) -> None:
    """Raise PreflightError when the machine can't build ``plan``."""
    packages = missing_packages()
    if packages:
        raise PreflightError(
            f"missing system packages: {', '.join(packages)} "
            f"(install them: apt-get install {' '.join(packages)})"
        )
    users: dict[str, list[str]] = {"bridge": [f"lab {plan.name} (its VLAN segments)"]}
    for pod in plan.pods:
        if pod.node is None or pod.host_network:
            continue
        for iface in pod.interfaces:
            kind = LINK_KIND.get(iface.cni_type or "")
            if kind is not None:
                users.setdefault(kind, []).append(
                    f"pod {pod.ref} ({iface.name}, NAD {iface.network})"
                )
    lacking = link_kinds_unavailable(tuple(sorted(users)))
    if lacking:
        lines = [
            f"this kernel has no {_WHY.get(kind, kind)}, needed by {_first(users[kind])} ({why})"
            for kind, why in sorted(lacking.items())
        ]
        raise PreflightError("; ".join(lines) + ". Nothing was built.")


def _first(users: list[str]) -> str:
    if len(users) == 1:
        return users[0]
    return f"{users[0]} and {len(users) - 1} more"
