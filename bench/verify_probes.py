"""Benchmark: ``verify --kubeconfig --probes`` against the lab's own API on the seed (six
nodes, seven pods), next to the same command without ``--probes`` (the exec tier), rounds
interleaved so the machine's load falls on both alike. The probes' share is split by the
run's own timings: making the namespace and waiting for its pods (``probes up``), gathering
(``collect``: exec, the probes, two streams with the nodes' counters around each) and
deleting the namespace until it is gone (``cleanup``).

Run as ``python -m bench.verify_probes [--rounds N]`` from the repository root, as root.
The issue's target: a whole run with probes on a six-node cluster under 60 s. On the lab a
write's pods are attached by a reconcile of the lab (real CNI plugins), where a real
cluster's kubelets start containers: the ``probes up`` share is the lab's, not a cluster's.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.labcli import MULTIHOME, Stats, code, leftovers, machine, run, state_dir
from multihome.verify.report import Report

LAB = "multi-homed"
PHASES = ("read", "probes up", "collect", "cleanup")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.verify_probes")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(machine())
    print(code())
    kinds = {"verify --kubeconfig (exec)": [], "verify --kubeconfig --probes": ["--probes"]}
    wall = {k: Stats() for k in kinds}
    inner = {k: Stats() for k in kinds}
    phases = {p: Stats() for p in PHASES}
    counts: dict[str, str] = {}
    with state_dir("mh-bench-probes-") as env:
        run([MULTIHOME, "up"], env).check()
        kubeconfig = run([MULTIHOME, "kubeconfig", LAB], env).check().stdout.strip()
        for _ in range(args.rounds):
            for label, extra in kinds.items():
                argv_ = [MULTIHOME, "verify", "-o", "json", "--kubeconfig", kubeconfig, *extra]
                done = run(argv_, env).check()
                report = json.loads(done.stdout)
                wall[label].values.append(done.wall)
                inner[label].values.append(report["elapsed"])
                counts[label] = (
                    f"{report['passed']} pass, {report['failed']} fail, {report['skipped']} skip"
                )
            timings = _timings(kubeconfig)
            for p in PHASES:
                phases[p].values.append(timings.get(p, 0.0))
        run([MULTIHOME, "down", LAB], env).check()
        left = leftovers(env, LAB)
        if left:
            raise SystemExit(f"bench.verify_probes: left behind: {left}")
    print(f"seed lab (6 nodes, 7 pods), {args.rounds} rounds interleaved, median (min-max), s")
    print(f"{'command':<30} {'whole command':>18} {'report elapsed':>18}  checks")
    for label in kinds:
        print(
            f"{label:<30} {wall[label].fmt(1, 2):>18} {inner[label].fmt(1, 2):>18}  {counts[label]}"
        )
    print("--probes by phase (a run in-process after each round), s")
    for p in PHASES:
        print(f"  {p:<12} {phases[p].fmt(1, 2):>18}")
    return 0


def _timings(kubeconfig: str) -> dict[str, float]:
    """The phases of one ``--probes`` run, in this process (the JSON has no timings)."""
    from multihome.plan import build_plan
    from multihome.spec import load_lab_text, seed_path
    from multihome.verify import live

    plan = build_plan(load_lab_text(seed_path().read_text(), "seed.yaml"))
    report: Report = live.run(plan, kubeconfig, probes=True)
    return report.timings


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
