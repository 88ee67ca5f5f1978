"""Benchmark: the start-up of the lab's calico CNI plugin (``lab/plugins/calico.py``), which
runs once per pod: one whole plugin process answering ``CNI_COMMAND=VERSION`` (Python
start-up, the plugin's imports, its answer), against a bare ``python -I -S -c pass``, and,
with ``--baseline CHECKOUT``, against another checkout's plugin, rounds interleaved.

Run as ``python -m bench.calico_start [--rounds 40] [--baseline CHECKOUT]`` from the
repository root; ``python -m bench calico_start`` keeps the result in
bench/results/calico_start.txt. The plugin is started as its launcher starts it (this
Python, ``-I -S``, the package put first on ``sys.path``).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.labcli import code, machine

ROOT = Path(__file__).resolve().parents[1]


def _once(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - t0) * 1000


def _plugin(root: Path) -> list[str]:
    run = (
        f"import sys; sys.path[:0] = [{str(root)!r}]; "
        "from multihome.lab.plugins.calico import main; sys.exit(main())"
    )
    return [sys.executable, "-I", "-S", "-c", run]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calico_start")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--baseline", metavar="CHECKOUT", help="another checkout of multihome")
    args = parser.parse_args(argv)
    print(machine())
    print(code())
    env = dict(os.environ, CNI_COMMAND="VERSION")
    runs = {
        "this checkout": _plugin(ROOT),
        "bare python -I -S -c pass": [sys.executable, "-I", "-S", "-c", "pass"],
    }
    if args.baseline:
        runs["baseline " + args.baseline] = _plugin(Path(args.baseline).resolve())
    times: dict[str, list[float]] = {k: [] for k in runs}
    for argv_ in runs.values():  # warm the page cache and the .pyc files
        _once(argv_, env)
    for _ in range(args.rounds):
        for label, argv_ in runs.items():
            times[label].append(_once(argv_, env))
    print(
        f"calico plugin, CNI_COMMAND=VERSION, whole process, {args.rounds} rounds interleaved, ms"
    )
    print(f"{'':40}{'p50':>8}{'min':>8}{'p90':>8}")
    for label, values in times.items():
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
        print(f"{label:40}{statistics.median(values):>8.1f}{min(values):>8.1f}{p90:>8.1f}")
    bare = statistics.median(times["bare python -I -S -c pass"])
    for label in times:
        if label.startswith(("this", "baseline")):
            print(f"  {label}: {statistics.median(times[label]) - bare:.1f} ms over bare Python")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
