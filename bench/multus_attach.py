"""Benchmark: attach and detach pods with eth0 (ptp + host-local) and two macvlan networks.

Run as ``python -m bench.multus_attach [PODS]`` from the repository root, as root. Builds a
node namespace with two NICs, then for each pod: a fresh pod namespace, build the delegates,
attach (3 delegates, real plugins), detach. Prints p50/p95/max of each phase; the target is
attach p50 <= 60 ms. Everything it makes is removed at the end, also on failure.
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
from multihome.multus import NETWORKS_ANNOTATION, build_delegates
from multihome.multus.attach import PodSandbox, attach_pod, detach_pod

CNI_BIN = "/usr/lib/cni"
TARGET_ATTACH_P50_MS = 60.0


def _ip(ns: str, *argv: str) -> None:
    subprocess.run(["nsenter", f"--net={ns}", "ip", *argv], check=True, capture_output=True)


def _macvlan(master: str, address: str) -> str:
    return json.dumps(
        {
            "cniVersion": "0.4.0",
            "type": "macvlan",
            "master": master,
            "mode": "bridge",
            "ipam": {"type": "static", "addresses": [{"address": address}]},
        }
    )


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def run(pods: int) -> dict[str, list[float]]:
    timings: dict[str, list[float]] = {"build": [], "attach": [], "detach": []}
    with tempfile.TemporaryDirectory(prefix="mhbench-") as tmp, netns_file(tmp, "node") as node:
        for nic in ("ens224", "ens256"):
            _ip(node, "link", "add", nic, "type", "veth", "peer", f"p{nic}")
            _ip(node, "link", "set", nic, "up")
            _ip(node, "link", "set", f"p{nic}", "up")
        cluster: dict[str, Any] = {
            "cniVersion": "0.4.0",
            "name": "k8s-pod-network",
            "plugins": [
                {
                    "type": "ptp",
                    "ipam": {
                        "type": "host-local",
                        "subnet": "10.42.0.0/16",
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(Path(tmp) / "ipam"),
                    },
                }
            ],
        }
        nads = {
            ("bench", "lan50"): _macvlan("ens224", "172.16.50.10/24"),
            ("bench", "lan60"): _macvlan("ens256", "172.16.60.10/24"),
        }
        runtime = CNIRuntime([CNI_BIN], Path(tmp) / "cache", node=NodeNamespaces(netns=node))
        with runtime:
            for n in range(pods):
                with netns_file(tmp, "pod") as pod_ns:
                    name = f"pod{n}"
                    started = time.perf_counter()
                    delegates = build_delegates(
                        "bench",
                        name,
                        {NETWORKS_ANNOTATION: "lan50, lan60"},
                        cluster,
                        lambda ns, nad: nads.get((ns, nad)),
                    )
                    built = time.perf_counter()
                    pod = PodSandbox("bench", name, f"uid-{n}", f"c{n:06d}", pod_ns)
                    try:
                        attach_pod(runtime, pod, delegates)
                        attached = time.perf_counter()
                    finally:
                        detach_pod(runtime, pod, delegates)
                    detached = time.perf_counter()
                    timings["build"].append((built - started) * 1000)
                    timings["attach"].append((attached - built) * 1000)
                    timings["detach"].append((detached - attached) * 1000)
    return timings


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("bench.multus_attach: needs root (network namespaces)", file=sys.stderr)
        return 2
    if not os.path.exists(os.path.join(CNI_BIN, "macvlan")):
        print(f"bench.multus_attach: no CNI plugins in {CNI_BIN}", file=sys.stderr)
        return 2
    pods = int(argv[0]) if argv else 200
    timings = run(pods)
    print(f"multus attach/detach: {pods} pods, eth0 (ptp + host-local) + 2 x macvlan (static)")
    print(f"{'phase':<8} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'mean ms':>8}")
    for phase, values in timings.items():
        print(
            f"{phase:<8} {_percentile(values, 50):8.2f} {_percentile(values, 95):8.2f} "
            f"{max(values):8.2f} {statistics.fmean(values):8.2f}"
        )
    p50 = _percentile(timings["attach"], 50)
    verdict = "OK" if p50 <= TARGET_ATTACH_P50_MS else "OVER"
    print(f"attach p50 {p50:.2f} ms, target <= {TARGET_ATTACH_P50_MS:.0f} ms: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
