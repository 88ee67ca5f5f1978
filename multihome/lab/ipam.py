"""whereabouts as the lab installs it: the plugin in every node's ``/opt/cni/bin``, the flat
file its DaemonSet writes on each node, and the one allocation store of the lab.

The store (``<scratch>/whereabouts``) is on the sandbox's scratch tmpfs, which every node's
mount namespace shares: the plugin on any node sees the same pools, as whereabouts' IPPools
are one per cluster. It lives as long as the sandbox (across reconciles). Its path reaches the
plugin through the launcher's environment, so the IPAM config stays what users write.
``pools()`` reads it back for ``multihome get pools`` (inside the sandbox).
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Sequence
from typing import Any

from . import launchers
from .nodes import Node
from .plugins import whereabouts

STORE_DIR = "whereabouts"
FLAT_FILE = "whereabouts.d/whereabouts.conf"  # under the node's /etc/cni/net.d
KUBECONFIG = "/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig"


def store_dir(scratch: str) -> str:
    return os.path.join(scratch, STORE_DIR)


def write_launcher(bin_dir: str, store: str, node_names: Sequence[str]) -> str:
    """Write the ``whereabouts`` launcher into ``bin_dir`` (scratch tmpfs) and prepare the
    store (the cluster's nodes, in order, for node slices); returns the launcher's path."""
    os.makedirs(store, mode=0o755, exist_ok=True)
    with open(os.path.join(store, "nodes.json"), "w") as fh:
        json.dump(list(node_names), fh)
    return launchers.write_launcher(bin_dir, "whereabouts", {whereabouts.STORE_ENV: store})


def install_plugin(launcher: str, where: Node) -> None:
    """Put ``whereabouts`` in the node's ``/opt/cni/bin`` and the flat file in its
    ``/etc/cni/net.d/whereabouts.d`` (as the whereabouts DaemonSet's install-cni does)."""
    launchers.link_plugin(launcher, where)
    flat = os.path.join(where.dir("/etc/cni/net.d"), FLAT_FILE)
    os.makedirs(os.path.dirname(flat), exist_ok=True)
    with open(flat, "w") as fh:
        json.dump(
            {
                "datastore": "kubernetes",
                "kubernetes": {"kubeconfig": KUBECONFIG},
                "reconciler_cron_expression": "30 4 * * *",
            },
            fh,
            indent=2,
        )


def pools(store: str) -> list[dict[str, Any]]:
    """Every pool of the store: its name, range and allocations (ip, podref, containerID,
    ifName), addresses in order. Empty when the lab never used whereabouts."""
    found = []
    pool_dir = os.path.join(store, "pools")
    try:
        names = sorted(n[:-5] for n in os.listdir(pool_dir) if n.endswith(".json"))
    except FileNotFoundError:
        return []
    reader = whereabouts.Store(store)
    for name in names:
        data = reader.read("pools", name) or {}
        try:
            cidr = ipaddress.ip_network(str(data.get("range", "")))
        except ValueError:
            continue
        held = sorted(reader.allocations(name, cidr), key=lambda a: a["ip"])
        found.append(
            {
                "name": name,
                "range": str(cidr),
                "allocations": [
                    {
                        "ip": str(a["ip"]),
                        "podref": a["podref"],
                        "id": a["id"],
                        "ifName": a["ifName"],
                    }
                    for a in held
                ],
            }
        )
    return found


def lab_pools(status: dict[str, Any]) -> list[dict[str, Any]]:
    """The running lab's pools (see ``pools``), each allocation with the ``node`` its pod
    runs on; read inside the lab's sandbox, where the store is."""
    from .sandbox import Sandbox

    sb = Sandbox.from_dict(status["sandbox"])
    found: list[dict[str, Any]] = sb.call(pools, store_dir(sb.scratch))
    node_of = {f"{p['namespace']}/{p['name']}": p.get("node") for p in status.get("pods", [])}
    for pool in found:
        for held in pool["allocations"]:
            held["node"] = node_of.get(held["podref"]) or "-"
    return found
