"""Benchmark: a whole ``multihome apply --kubeconfig`` of the seed's own design against the
lab's own API (six nodes, seven pods), next to ``apply --dry-run`` and ``verify --kubeconfig
--no-exec`` (the read-only verify that ends every apply), interleaved round by round so the
machine's load falls on all three alike.

Run as ``python -m bench.apply [--rounds N]`` from the repository root, as root.
``multihome up`` (not measured), then N rounds of the three whole commands (Python's
start-up, rendering, the served-kind checks, a GET and a server-side apply per object, the
wait for the pods, the read-only verify, printing). Then ``multihome down``; the bench fails
if anything of the lab is left.
"""

from __future__ import annotations

import argparse
import sys

from bench.labcli import MULTIHOME, Stats, code, leftovers, machine, run, state_dir

LAB = "multi-homed"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.apply")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    print(machine())
    print(code())
    kinds = {
        "apply (whole, with wait and verify)": ["apply"],
        "apply --dry-run": ["apply", "--dry-run"],
        "verify --kubeconfig --no-exec": ["verify", "--no-exec"],
    }
    wall = {k: Stats() for k in kinds}
    with state_dir("mh-bench-apply-") as env:
        run([MULTIHOME, "up"], env).check()
        kubeconfig = run([MULTIHOME, "kubeconfig", LAB], env).check().stdout.strip()
        for _ in range(args.rounds):
            for label, words in kinds.items():
                argv_ = [MULTIHOME, words[0], "--kubeconfig", kubeconfig, *words[1:]]
                done = run(argv_, env).check()
                wall[label].values.append(done.wall)
        run([MULTIHOME, "down", LAB], env).check()
        left = leftovers(env, LAB)
        if left:
            raise SystemExit(f"bench.apply: left behind: {left}")
    print(f"seed lab (6 nodes, 7 pods), {args.rounds} rounds interleaved, median (min-max), s")
    base = wall["verify --kubeconfig --no-exec"].median
    for label in kinds:
        ratio = wall[label].median / base
        print(f"{label:<38} {wall[label].fmt(1, 2):>18}  {ratio:.2f}x verify --no-exec")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
