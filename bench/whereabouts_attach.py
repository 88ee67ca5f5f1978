"""Benchmark: attach pods to a macvlan network with whereabouts IPAM (the lab's plugin, run
by the real macvlan over CNI) next to the same network with static IPAM.

Run as ``python -m bench.whereabouts_attach [PODS]`` from the repository root, as root. One
node namespace with a NIC; for each IPAM, PODS pods are attached one after the other and kept
(so whereabouts' pool fills up as on a cluster), then all detached. Each pod has eth0 (ptp +
host-local) and net1 (macvlan): the difference between the two rows is what whereabouts costs
per attachment (a Python process, the store read and written under its lock). The store and
the flat file live in a temporary directory (``configuration_path``, ``$WHEREABOUTS_STORE``).
Everything it makes is removed at the end, also on failure.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.nsfile import netns_file
from multihome.cni import CNIRuntime, NodeNamespaces
from multihome.lab import ipam
from multihome.multus import NETWORKS_ANNOTATION, build_delegates
from multihome.multus.attach import PodSandbox, attach_pod, detach_pod

CNI_BIN = "/usr/lib/cni"


def _ip(ns: str, *argv: str) -> None:
    subprocess.run(["nsenter", f"--net={ns}", "ip", *argv], check=True, capture_output=True)


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _nad(kind: str, tmp: str) -> str:
    if kind == "static":
        ipam_conf: dict[str, Any] = {
            "type": "static",
            "addresses": [{"address": "172.16.50.10/24"}],
        }
    else:
        ipam_conf = {
            "type": "whereabouts",
            "range": "172.16.50.0/22",
            "exclude": ["172.16.50.0/28"],
            "configuration_path": os.path.join(tmp, "whereabouts.conf"),
        }
    nad = {"cniVersion": "0.3.1", "type": "macvlan", "master": "ens224", "mode": "bridge"}
    return json.dumps(dict(nad, ipam=ipam_conf))


def run(pods: int, kind: str) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"attach": [], "detach": []}
    with tempfile.TemporaryDirectory(prefix="mhbench-") as tmp, netns_file(tmp, "node") as node:
        _ip(node, "link", "add", "ens224", "type", "veth", "peer", "pens224")
        _ip(node, "link", "set", "ens224", "up")
        bin_dir = os.path.join(tmp, "bin")
        os.mkdir(bin_dir)
        for plugin in ("ptp", "host-local", "macvlan", "static"):
            os.symlink(os.path.join(CNI_BIN, plugin), os.path.join(bin_dir, plugin))
        ipam.write_launcher(bin_dir, os.path.join(tmp, "store"), ["node"])
        Path(tmp, "whereabouts.conf").write_text(
            json.dumps({"kubernetes": {"kubeconfig": "/etc/cni/net.d/whereabouts.kubeconfig"}})
        )
        cluster: dict[str, Any] = {
            "cniVersion": "0.3.1",
            "name": "k8s-pod-network",
            "plugins": [
                {
                    "type": "ptp",
                    "ipam": {
                        "type": "host-local",
                        "subnet": "10.42.0.0/16",
                        "dataDir": str(Path(tmp) / "ipam"),
                    },
                }
            ],
        }
        nad = _nad(kind, tmp)
        runtime = CNIRuntime([bin_dir], Path(tmp) / "cache", node=NodeNamespaces(netns=node))
        held: list[tuple[PodSandbox, Any, Any]] = []
        with runtime:
            try:
                for n in range(pods):
                    ctx = netns_file(tmp, "pod")
                    pod_ns = ctx.__enter__()
                    name = f"pod{n}"
                    delegates = build_delegates(
                        "bench", name, {NETWORKS_ANNOTATION: "lan50"}, cluster,
                        lambda ns, name: nad if name == "lan50" else None,
                    )  # fmt: skip
                    pod = PodSandbox("bench", name, f"uid-{n}", f"c{n:06d}", pod_ns)
                    held.append((pod, delegates, ctx))
                    started = time.perf_counter()
                    attach_pod(runtime, pod, delegates)
                    timings["attach"].append((time.perf_counter() - started) * 1000)
            finally:
                for pod, delegates, ctx in held:
                    started = time.perf_counter()
                    detach_pod(runtime, pod, delegates)
                    timings["detach"].append((time.perf_counter() - started) * 1000)
                    ctx.__exit__(None, None, None)
        if kind == "whereabouts":
            left = ipam.pools(os.path.join(tmp, "store"))
            assert all(not p["allocations"] for p in left), "DEL left addresses in the pool"
    return timings


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("bench.whereabouts_attach: needs root (network namespaces)", file=sys.stderr)
        return 2
    if not os.path.exists(os.path.join(CNI_BIN, "macvlan")):
        print(f"bench.whereabouts_attach: no CNI plugins in {CNI_BIN}", file=sys.stderr)
        return 2
    pods = int(argv[0]) if argv else 200
    print(f"attach/detach: {pods} pods kept attached, eth0 (ptp + host-local) + net1 (macvlan)")
    heads = ("p50 ms", "p95 ms", "max ms", "mean ms")
    print(f"{'net1 IPAM':<12} {'phase':<7} " + " ".join(f"{h:>8}" for h in heads))
    p50: dict[str, float] = {}
    for kind in ("static", "whereabouts"):
        timings = run(pods, kind)
        for phase, values in timings.items():
            print(
                f"{kind:<12} {phase:<7} {_percentile(values, 50):8.2f} "
                f"{_percentile(values, 95):8.2f} {max(values):8.2f} {statistics.fmean(values):8.2f}"
            )
        p50[kind] = _percentile(timings["attach"], 50)
    print(f"whereabouts adds {p50['whereabouts'] - p50['static']:.2f} ms to an attach (p50)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
