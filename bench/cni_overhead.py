"""Benchmark: the CNI runtime's own overhead per plugin call, with ptp + host-local.

Run as ``python -m bench.cni_overhead [CALLS]`` from the repository root, as root. For each
call it measures the whole ``add_network_list`` / ``check_network_list`` / ``del_network_list``
and the wall time of every plugin process it ran (spawn to exit, from ``on_exec``); the
overhead is the difference: config building, version negotiation (cached), result parsing and
conversion, the result cache. Target: overhead p50 <= 5 ms. The namespaces are bind-mounted on
files in a temp directory (not /run/netns, so test sessions running meanwhile don't see them)
and removed at the end, also on failure.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable

from bench.nsfile import netns_file
from multihome.cni import (
    CNIRuntime,
    ExecEvent,
    NodeNamespaces,
    RuntimeConf,
    load_network_config,
)

CNI_BIN = "/usr/lib/cni"
TARGET_OVERHEAD_MS = 5.0


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main(argv: list[str]) -> int:
    calls = int(argv[0]) if argv else 200
    if os.geteuid() != 0:
        print("cni_overhead: needs root (network namespaces)", file=sys.stderr)
        return 2
    if not os.path.exists(os.path.join(CNI_BIN, "ptp")):
        print(f"cni_overhead: no CNI plugins in {CNI_BIN}", file=sys.stderr)
        return 2
    plugin_time: list[float] = []

    def observe(event: ExecEvent) -> None:
        plugin_time.append(event.seconds)

    rows: dict[str, list[tuple[float, float]]] = {"ADD": [], "CHECK": [], "DEL": []}
    with tempfile.TemporaryDirectory(prefix="mhbench-cni-") as tmp:
        net = load_network_config(
            {
                "cniVersion": "1.0.0",
                "name": "bench",
                "plugins": [
                    {
                        "type": "ptp",
                        "ipam": {
                            "type": "host-local",
                            "subnet": "10.99.0.0/16",
                            "dataDir": f"{tmp}/ipam",
                        },
                    }
                ],
            }
        )
        with (
            netns_file(tmp, "node", lo_up=False) as node,
            netns_file(tmp, "pod", lo_up=False) as pod,
        ):
            runtime = CNIRuntime(
                [CNI_BIN], f"{tmp}/cache", node=NodeNamespaces(netns=node), on_exec=observe
            )
            with runtime:
                cold_rt = RuntimeConf("cold", pod, "eth0")
                started = time.perf_counter()
                runtime.add_network_list(net, cold_rt)  # first call: asks VERSION
                cold = (time.perf_counter() - started, sum(plugin_time))
                runtime.del_network_list(net, cold_rt)
                ops: list[tuple[str, Callable[[RuntimeConf], object]]] = [
                    ("ADD", lambda rt: runtime.add_network_list(net, rt)),
                    ("CHECK", lambda rt: runtime.check_network_list(net, rt)),
                    ("DEL", lambda rt: runtime.del_network_list(net, rt)),
                ]
                for n in range(calls):
                    rt = RuntimeConf(f"bench{n}", pod, "eth0")
                    for name, op in ops:
                        plugin_time.clear()
                        started = time.perf_counter()
                        op(rt)
                        total = time.perf_counter() - started
                        rows[name].append((total, sum(plugin_time)))

    print(f"CNI runtime overhead, ptp + host-local, {calls} calls each (ms)")
    print(f"{'op':<6}{'total p50':>11}{'plugin p50':>12}{'overhead p50':>14}{'p95':>8}{'max':>8}")
    worst = 0.0
    for name, samples in rows.items():
        overhead = [(t - p) * 1000 for t, p in samples]
        total = statistics.median(t * 1000 for t, _ in samples)
        plugin = statistics.median(p * 1000 for _, p in samples)
        p50 = statistics.median(overhead)
        worst = max(worst, p50)
        print(
            f"{name:<6}{total:>11.2f}{plugin:>12.2f}{p50:>14.2f}"
            f"{_pct(overhead, 0.95):>8.2f}{max(overhead):>8.2f}"
        )
    print(
        f"cold first ADD (includes the VERSION call): total {cold[0] * 1000:.1f}, "
        f"plugin processes {cold[1] * 1000:.1f}"
    )
    verdict = "ok" if worst <= TARGET_OVERHEAD_MS else "OVER TARGET"
    print(f"target: overhead p50 <= {TARGET_OVERHEAD_MS:g} ms: {verdict}")
    return 0 if worst <= TARGET_OVERHEAD_MS else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
