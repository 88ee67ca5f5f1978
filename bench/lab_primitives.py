"""Benchmark: the lab's kernel primitives against ``ip -batch``, side by side in one run.

Run as ``python -m bench.lab_primitives [N] [--rounds R]`` from the repository root (root or
an unprivileged user with user namespaces). Each round builds, then tears down, a sandbox
with N node namespaces, each with one veth into a bridge (its peer the node's ``ens224``,
up) and an address, twice: with multihome.lab (one netlink socket per namespace, no
subprocess) and with ``ip -batch`` (one batch for the sandbox's side, one per node
namespace). Teardown is destroying the sandbox. Prints medians per phase and per
namespace, and multihome's time as a ratio to ``ip -batch``. Everything is removed at the
end, also on failure.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable

from multihome.lab import netlink, sandbox


def build_multihome(n: int) -> float:
    t0 = time.perf_counter()
    with netlink.Netlink() as nl:
        top = nl.here()
        top.add_bridge("br0", mtu=1500)
        for i in range(n):
            node = nl.ns(netlink.create_netns(f"node{i}"))
            top.add_veth(f"v{i}", "ens224", peer_ns=node, master="br0")
            node.set_link("lo", up=True)
            node.set_link("ens224", up=True)
            node.add_address("ens224", f"10.{i // 250}.{i % 250}.1/16")
    return time.perf_counter() - t0


def _ip_batch(lines: list[str], netns: str | None = None) -> None:
    argv = ["ip", *(["-n", netns] if netns else []), "-batch", "-"]
    subprocess.run(argv, input="\n".join(lines) + "\n", text=True, check=True)


def build_ip_batch(n: int) -> float:
    t0 = time.perf_counter()
    lines = ["link add br0 type bridge", "link set br0 mtu 1500 up"]
    for i in range(n):
        lines += [
            f"netns add node{i}",
            f"link add v{i} type veth peer name ens224 netns node{i}",
            f"link set v{i} master br0 up",
        ]
    _ip_batch(lines)
    for i in range(n):
        _ip_batch(
            [
                "link set lo up",
                "link set ens224 up",
                f"addr add 10.{i // 250}.{i % 250}.1/16 dev ens224",
            ],
            f"node{i}",
        )
    return time.perf_counter() - t0


def one_round(base: str, label: str, n: int, build: Callable[[int], float]) -> dict[str, float]:
    scratch = tempfile.mkdtemp(prefix=f"{label}-", dir=base)
    t0 = time.perf_counter()
    sb = sandbox.create("bench", scratch)
    t1 = time.perf_counter()
    try:
        inside = sb.call(build, n)
        t2 = time.perf_counter()
    finally:
        sb.destroy()
    t3 = time.perf_counter()
    shutil.rmtree(scratch, ignore_errors=True)
    return {
        "create": t1 - t0,
        "build": inside,
        "call": t2 - t1,
        "destroy": t3 - t2,
        "total": t3 - t0,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n", nargs="?", type=int, default=20, help="node namespaces")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("ip") is None:
        print("iproute2 (ip) is not installed")
        return 2
    base = tempfile.mkdtemp(prefix="mh-bench-lab-")
    results: dict[str, list[dict[str, float]]] = {"multihome": [], "ip -batch": []}
    try:
        one_round(base, "warm", 2, build_multihome)
        for _ in range(args.rounds):  # interleaved, so both see the same machine state
            results["multihome"].append(one_round(base, "mh", args.n, build_multihome))
            results["ip -batch"].append(one_round(base, "ip", args.n, build_ip_batch))
    finally:
        shutil.rmtree(base, ignore_errors=True)

    def med(label: str, key: str) -> float:
        return statistics.median(r[key] for r in results[label]) * 1000

    print(
        f"lab primitives: {args.n} node namespaces (veth into a bridge + address each), "
        f"median of {args.rounds} rounds, uid {os.geteuid()}, {os.cpu_count()} CPUs"
    )
    print(f"{'':12} {'create':>8} {'build':>8} {'destroy':>8} {'total':>8} {'per ns':>8}  (ms)")
    for label in results:
        print(
            f"{label:12} {med(label, 'create'):8.1f} {med(label, 'build'):8.1f} "
            f"{med(label, 'destroy'):8.1f} {med(label, 'total'):8.1f} "
            f"{med(label, 'total') / args.n:8.2f}"
        )
    build_ratio = med("multihome", "build") / med("ip -batch", "build")
    total_ratio = med("multihome", "total") / med("ip -batch", "total")
    print(f"ratio multihome / ip -batch: build {build_ratio:.2f}, build+teardown {total_ratio:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
