"""Benchmark and check: the neighbour budget (issue 13.1). A lab in the seed's style at scale
(``bench.scale.generate(..., dhcp=True)``: one server and N agents, 10 pods an agent, each pod
with two macvlan + DHCP attachments) goes up, is verified and goes down, while the kernel's
``table_fulls`` counter of the host's ARP and NDP tables (``ip -s ntable``, read only: the
bench changes no sysctl) must not move.

Run as ``python -m bench.neighbours [--agents 30] [--small 5]`` from the repository root, as
root; ``python -m bench neighbours`` keeps the result in bench/results/neighbours.txt.

Side by side in one run, for each lab: how many ARP entries the kernel learnt in the lab's
namespaces (they count toward the host's gc_thresh1/2/3, shared by every namespace) after
``up`` and after ``verify``, how many are the lab's permanent ones (they do not count), the
verify result and the times. The lab without the budget (the permanent entries and the
probes' flushing patched out in this process, as main had it before) is run only at the
small size: at the large one it would overflow the host's table, which a bench must not do
to the machine it runs on (on main, 50 agents overflowed it: issue 13).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from bench.scale import generate

TABLES = ("arp_cache", "ndisc_cache")


def table_stats() -> dict[str, dict[str, int]]:
    """``ip -s ntable``'s counters of the host's ARP and NDP tables (read only)."""
    found: dict[str, dict[str, int]] = {}
    for table in TABLES:
        text = subprocess.run(
            ["ip", "-s", "ntable", "show", "name", table],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        block = text.split("\n\n", 1)[0].split()
        values: dict[str, int] = {}
        for key in ("entries", "table_fulls", "forced_gc_runs", "thresh3"):
            if key in block:
                values[key] = int(block[block.index(key) + 1])
        found[table] = values
    return found


@dataclass
class Result:
    label: str
    pods: int
    up: float
    verify: float
    down: float
    learnt_up: int
    learnt_verify: int
    permanent: int
    checks: int
    failed: int
    fulls: dict[str, int]


def _learnt_and_permanent(name: str) -> tuple[int, int]:
    from multihome.lab import api, neighbours, netlink, sandbox

    sb = sandbox.Sandbox.from_dict(api.status(name)["sandbox"])
    census = sb.call(neighbours.census)
    learnt = permanent = 0
    for entries in census.values():
        for e in entries:
            if ":" in e.dst:
                continue
            if e.permanent:
                permanent += 1
            elif not e.state & netlink.NUD_NOARP:
                learnt += 1
    return learnt, permanent


@contextlib.contextmanager
def _without_budget() -> Iterator[None]:
    """main before the budget: no permanent entries, probes that flush nothing."""
    from multihome.lab import neighbours
    from multihome.verify import probes

    saved = (neighbours.after_attach, neighbours.between_nodes, neighbours.forget_learnt)
    saved_flush = probes._flush

    def no_flush(netns: str) -> None:
        return None

    neighbours.after_attach = lambda *a, **k: 0
    neighbours.between_nodes = lambda *a, **k: 0
    neighbours.forget_learnt = lambda *a, **k: 0
    probes._flush = no_flush
    try:
        yield
    finally:
        neighbours.after_attach, neighbours.between_nodes, neighbours.forget_learnt = saved
        probes._flush = saved_flush


def one(label: str, agents: int, per_agent: int, budget: bool) -> Result:
    from multihome import verify
    from multihome.lab import api
    from multihome.spec import load_lab_text

    root = tempfile.mkdtemp(
        prefix="mh-bench-neigh-", dir="/run" if os.access("/run", os.W_OK) else None
    )
    os.environ["MULTIHOME_STATE_DIR"] = root
    lab = load_lab_text(generate(agents, per_agent, dhcp=True), "neighbours.yaml")
    name = f"scale-{agents}"
    before = table_stats()
    times: dict[str, float] = {}
    report: Any = None
    with contextlib.ExitStack() as stack:
        if not budget:
            stack.enter_context(_without_budget())
        try:
            t0 = time.perf_counter()
            api.up(lab)
            times["up"] = time.perf_counter() - t0
            learnt_up, permanent = _learnt_and_permanent(name)
            t0 = time.perf_counter()
            report = verify.run(name)
            times["verify"] = time.perf_counter() - t0
            learnt_verify, _ = _learnt_and_permanent(name)
        finally:
            t0 = time.perf_counter()
            api.down(name)
            times["down"] = time.perf_counter() - t0
            os.environ.pop("MULTIHOME_STATE_DIR", None)
            shutil.rmtree(root, ignore_errors=True)
    after = table_stats()
    return Result(
        label=label,
        pods=agents * per_agent,
        up=times["up"],
        verify=times["verify"],
        down=times["down"],
        learnt_up=learnt_up,
        learnt_verify=learnt_verify,
        permanent=permanent,
        checks=len(report.checks),
        failed=len(report.failed),
        fulls={t: after[t]["table_fulls"] - before[t]["table_fulls"] for t in TABLES},
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.neighbours")
    parser.add_argument("--agents", type=int, default=30)
    parser.add_argument("--small", type=int, default=5, help="agents of the side-by-side lab")
    parser.add_argument("--pods-per-agent", type=int, default=10)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.neighbours: run as root", file=sys.stderr)
        return 2
    stats = table_stats()
    print(
        "host's neighbour tables (read only): "
        + "; ".join(
            f"{t} entries {v.get('entries')} thresh3 {v.get('thresh3')} "
            f"table_fulls {v.get('table_fulls')}"
            for t, v in stats.items()
        )
    )
    k = args.pods_per_agent
    runs = [
        ("without budget", args.small, False),
        ("with budget", args.small, True),
        ("with budget", args.agents, True),
    ]
    results = [one(f"{label}, {a} agents", a, k, budget) for label, a, budget in runs]
    print(
        f"labs in the seed's style: 1 server + N agents, {k} pods an agent, "
        "2 macvlan+DHCP attachments a pod; learnt = IPv4 entries the kernel learnt in the "
        "lab's namespaces (they count toward the host's gc_thresh), permanent = the lab's"
    )
    head = (
        f"{'lab':28}{'pods':>6}{'up s':>8}{'verify s':>10}{'down s':>8}{'learnt':>8}"
        f"{'(verify)':>10}{'permanent':>11}{'checks':>8}{'failed':>8}{'fulls arp/nd':>14}"
    )
    print(head)
    for r in results:
        print(
            f"{r.label:28}{r.pods:>6}{r.up:>8.2f}{r.verify:>10.2f}{r.down:>8.2f}"
            f"{r.learnt_up:>8}{r.learnt_verify:>10}{r.permanent:>11}{r.checks:>8}"
            f"{r.failed:>8}{r.fulls['arp_cache']:>7}/{r.fulls['ndisc_cache']}"
        )
    small_without, small_with = results[0], results[1]
    if small_without.pods:
        per_pod = small_without.learnt_verify / small_without.pods
        print(
            f"without the budget the kernel learnt {per_pod:.1f} ARP entries a pod by the end "
            f"of verify: {per_pod * args.agents * k:.0f} for {args.agents * k} pods, against "
            f"gc_thresh3 {stats['arp_cache'].get('thresh3')} for the whole machine"
        )
    bad = [r for r in results[1:] if r.failed or r.fulls["arp_cache"] or r.learnt_verify]
    if bad or small_with.learnt_up:
        print("bench.neighbours: FAILED: " + ", ".join(r.label for r in bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
