"""Benchmark: the CPU of verify's kernel reads of a namespace with lab/netlink.py as it is
in this tree and as it was at other commits (``--before``, default: 833390d, messages decoded
by hand; 4bb277e, whole messages decoded by pyroute2), side by side in one run.

Run as ``python -m bench.netlink_codec [N] [--rounds R] [--before COMMIT:LABEL,...]`` from
the repository root, as root. In a sandbox, N namespaces shaped like a DHCP pod of the seed's
lab (lo, eth0 and two more veths into bridges, an IPv4 address on each, a default route,
two permanent neighbour entries); then, in the same child, each round runs over every
namespace what ``verify`` reads there (``links()``: a dump of links and one of addresses;
``routes(4)``: routes and links; ``flush_neighbours()``, the probes' flush (there is
nothing learnt to remove); one ``route_to``) with each module in turn, on sockets opened
beforehand, and what ``up`` writes in a pod with the plain socket (lo up, two permanent
neighbour entries). Prints the median CPU (``time.process_time``) per namespace of each
read and of the whole, the ratios, whether every module read the same, and what this
tree projects for verify at 1000 pods (1100 namespaces read) against the first module.
Everything is removed at the end (destroying the sandbox removes its namespaces).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from types import ModuleType
from typing import Any

from multihome.lab import netlink, sandbox

READS = ("links", "routes", "flush", "route_to")
NEIGHBOURS = [("10.0.0.1", "02:00:00:00:00:01", "eth0"), ("10.1.0.1", "02:00:00:00:01:01", "net1")]
NAMESPACES_AT_1000_PODS = 1100
VERIFY_AT_1000_PODS = 3.5  # s, bench/results/scale_dhcp.txt (with the hand codec)


def load_at(commit: str) -> ModuleType:
    """lab/netlink.py as it was at ``commit``, as a module of the multihome.lab package."""
    source = subprocess.run(
        ["git", "show", f"{commit}:multihome/lab/netlink.py"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(source)
    try:
        name = f"multihome.lab._netlink_{commit}"
        spec = importlib.util.spec_from_file_location(name, f.name)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        os.unlink(f.name)
    return module


def build(n: int) -> list[str]:
    """N pod-like namespaces; their paths."""
    paths = []
    with netlink.Netlink() as nl:
        top = nl.here()
        for b in range(3):
            top.add_bridge(f"br{b}")
        for i in range(n):
            pod = nl.ns(netlink.create_netns(f"pod{i}"))
            pod.set_link("lo", up=True)
            for b, dev in enumerate(("eth0", "net1", "net2")):
                top.add_veth(f"p{i}-{b}", dev, peer_ns=pod, master=f"br{b}")
                pod.set_link(dev, up=True)
                pod.add_address(dev, f"10.{b}.{i // 250}.{i % 250 + 2}/16")
            pod.add_route("default", via="10.0.0.1", dev="eth0")
            pod.set_neighbours(NEIGHBOURS)
            paths.append(pod.path)
    return paths


def read_all(module: Any, namespaces: list[Any]) -> dict[str, float]:
    """CPU seconds of each of verify's reads over every namespace, and of what ``up``
    writes with the plain socket in a pod (lo up, its permanent neighbour entries)."""
    spent = dict.fromkeys((*READS, "up writes"), 0.0)
    for target in namespaces:
        t0 = time.process_time()
        module.set_lo_up(target.path)
        target.set_neighbours(NEIGHBOURS)
        spent["up writes"] += time.process_time() - t0
        t0 = time.process_time()
        target.links()
        t1 = time.process_time()
        target.routes(4)
        t2 = time.process_time()
        target.flush_neighbours()
        t3 = time.process_time()
        target.route_to("10.9.9.9")
        t4 = time.process_time()
        for read, took in zip(READS, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            spent[read] += took
    return spent


def measure(paths: list[str], rounds: int, modules: dict[str, ModuleType]) -> dict[str, Any]:
    """In the sandbox: the rounds, each module in turn, with their sockets opened first."""
    opened = {label: [m.NetNS(p) for p in paths] for label, m in modules.items()}
    try:
        differ = []  # what the two read of the same namespace, where they disagree
        for same in zip(*opened.values(), strict=True):
            found = [read_links(target) for target in same]
            if len(set(found)) > 1:
                differ.append(found)
        results: dict[str, list[dict[str, float]]] = {label: [] for label in modules}
        for label, m in modules.items():
            read_all(m, opened[label][:2])  # warm up
        for _ in range(rounds):
            for label, m in modules.items():
                results[label].append(read_all(m, opened[label]))
        return {"results": results, "differ": differ}
    finally:
        for targets in opened.values():
            for target in targets:
                target.close()


def read_links(target: Any) -> str:
    """What every read found (but the links' counters, which traffic may move, and the
    multicast entries the kernel adds as the new links join their groups)."""
    links = [(x.name, x.index, x.mac, x.up, x.mtu, x.kind, x.master, x.addresses)
             for x in target.links()]  # fmt: skip
    neighbours = [n for n in target.neighbours() if not n.state & netlink.NUD_NOARP]
    return repr((links, target.routes(4), neighbours, target.route_to("10.9.9.9")))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=50, help="pod namespaces")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--before",
        default="833390d:by hand,4bb277e:pyroute2 whole",
        help="COMMIT:LABEL,... whose lab/netlink.py to measure beside this tree's",
    )
    args = parser.parse_args()
    modules = {}
    for item in args.before.split(","):
        commit, _, label = item.partition(":")
        modules[f"{label or commit} ({commit})"] = load_at(commit)
    modules["this tree"] = netlink
    base = tempfile.mkdtemp(prefix="mh-bench-nlcodec-")
    load = os.getloadavg()
    sb = sandbox.create("bench", base)
    try:
        paths = sb.call(build, args.n)
        found = sb.call(measure, paths, args.rounds, modules)
    finally:
        sb.destroy()
        shutil.rmtree(base, ignore_errors=True)
    results = found["results"]

    def per_ns(label: str, read: str | None = None) -> float:
        """Median over rounds of the CPU ms per namespace (of one read, or all)."""
        reads = READS if read is None else (read,)
        cpu = statistics.median(sum(r[x] for x in reads) for r in results[label])
        return float(cpu / args.n * 1e3)

    print(
        f"verify's kernel reads of {args.n} pod-like namespaces, median of {args.rounds} rounds, "
        f"CPU ms per namespace; load average {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
    )
    print(f"{'':28}" + "".join(f"{r:>11}" for r in READS) + f"{'all':>9}{'up writes':>11}")
    for label in results:
        cells = "".join(f"{per_ns(label, r):11.3f}" for r in READS)
        print(f"{label:28}{cells}{per_ns(label):9.3f}{per_ns(label, 'up writes'):11.3f}")
    first = next(iter(results))
    old, new = per_ns(first), per_ns("this tree")
    for label in results:
        print(f"ratio {label} / {first}: {per_ns(label) / old:.2f}x")
    print(f"all read the same links, routes, neighbours and route: {not found['differ']}")
    for reads in found["differ"]:
        for label, read in zip(results, reads, strict=True):
            print(f"  {label}: {read}")
    extra = (new - old) * NAMESPACES_AT_1000_PODS / 1e3
    print(
        f"projection at 1000 pods ({NAMESPACES_AT_1000_PODS} namespaces): +{extra:.2f} s of CPU; "
        f"verify {VERIFY_AT_1000_PODS} s -> {VERIFY_AT_1000_PODS + extra / 2:.1f} s on 2 workers, "
        f"{VERIFY_AT_1000_PODS + extra:.1f} s if they were not split (target 20 s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
