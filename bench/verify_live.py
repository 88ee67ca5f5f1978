"""Benchmark: ``verify --kubeconfig`` against the lab's own API on the seed (six nodes, seven
pods), next to the lab's own ``verify``: the read-only tier (``--no-exec``), the exec tier
(the default), and the lab's verify, interleaved round by round so the machine's load
falls on all three alike.

Run as ``python -m bench.verify_live [--rounds N]`` from the repository root, as root.
``multihome up`` (not measured), then N rounds of the three whole commands (Python's
start-up, reading the API, exec, judging, printing JSON) and the time each report gives
for itself (``elapsed``: from loading to the verdict, no interpreter start-up). Then
``multihome down``; the bench fails if anything of the lab is left.
"""

from __future__ import annotations

import argparse
import json
import sys

from bench.labcli import MULTIHOME, Stats, code, leftovers, machine, run, state_dir

LAB = "multi-homed"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.verify_live")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    print(machine())
    print(code())
    kinds = {
        "verify --kubeconfig --no-exec": ["--no-exec"],
        "verify --kubeconfig (exec)": [],
        "verify (the lab's own)": None,
    }
    wall = {k: Stats() for k in kinds}
    inner = {k: Stats() for k in kinds}
    counts: dict[str, str] = {}
    with state_dir("mh-bench-live-") as env:
        run([MULTIHOME, "up"], env).check()
        kubeconfig = run([MULTIHOME, "kubeconfig", LAB], env).check().stdout.strip()
        for _ in range(args.rounds):
            for label, extra in kinds.items():
                argv_ = [MULTIHOME, "verify", "-o", "json"]
                if extra is not None:
                    argv_ += ["--kubeconfig", kubeconfig, *extra]
                done = run(argv_, env).check()
                report = json.loads(done.stdout)
                wall[label].values.append(done.wall)
                inner[label].values.append(report["elapsed"])
                counts[label] = (
                    f"{report['passed']} pass, {report['failed']} fail, {report['skipped']} skip"
                )
        run([MULTIHOME, "down", LAB], env).check()
        left = leftovers(env, LAB)
        if left:
            raise SystemExit(f"bench.verify_live: left behind: {left}")
    print(f"seed lab (6 nodes, 7 pods), {args.rounds} rounds interleaved, median (min-max), s")
    print(f"{'command':<32} {'whole command':>18} {'report elapsed':>18}  checks")
    for label in kinds:
        print(
            f"{label:<32} {wall[label].fmt(1, 2):>18} {inner[label].fmt(1, 2):>18}  {counts[label]}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
