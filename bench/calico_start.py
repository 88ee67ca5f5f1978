"""Benchmark: the start-up of the lab's calico CNI plugin (``lab/plugins/calico``, a Go
binary built by ``make calico``), which runs once per pod: one whole plugin process answering
``CNI_COMMAND=VERSION``, against the floor of any process (``/bin/true``) and a bare ``python
-I -S -c pass`` (what the Python plugin it replaced paid before its first line), and, with
``--baseline CHECKOUT``, against another checkout's plugin (its Go build, or its Python
plugin started as that checkout's launcher did), rounds interleaved.

Run as ``python -m bench.calico_start [--rounds 40] [--baseline CHECKOUT]`` from the
repository root; ``python -m bench calico_start`` keeps the result in
bench/results/calico_start.txt.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.labcli import code, machine

ROOT = Path(__file__).resolve().parents[1]


def _once(argv: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
    return (time.perf_counter() - t0) * 1000


def checkout_plugin(checkout: Path, bin_dir: str, name: str) -> str:
    """An executable ``bin_dir/name`` that runs ``checkout``'s calico plugin: a copy of its
    Go build, or, for a checkout from before it, a launcher of its Python plugin as that
    checkout's lab wrote it."""
    os.makedirs(bin_dir, exist_ok=True)
    path = os.path.join(bin_dir, name)
    built = checkout / "multihome/lab/plugins/calico/build/calico"
    if built.exists():
        shutil.copyfile(built, path)
    elif (checkout / "multihome/lab/plugins/calico.py").exists():
        with open(path, "w") as fh:
            fh.write(
                f"#!{sys.executable} -IS\nimport sys\nsys.path[:0] = [{str(checkout)!r}]\n"
                "from multihome.lab.plugins.calico import main\nsys.exit(main())\n"
            )
    else:
        raise SystemExit(f"{checkout}: no calico plugin built (make calico)")
    os.chmod(path, 0o755)
    return path


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.calico_start")
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--baseline", metavar="CHECKOUT", help="another checkout of multihome")
    args = parser.parse_args(argv)
    print(machine())
    print(code())
    env = dict(os.environ, CNI_COMMAND="VERSION")
    scratch = tempfile.mkdtemp(prefix="calico-start-")
    try:
        runs = {
            "this checkout": [checkout_plugin(ROOT, scratch, "calico")],
            "/bin/true": ["/bin/true"],
            "bare python -I -S -c pass": [sys.executable, "-I", "-S", "-c", "pass"],
        }
        if args.baseline:
            base = checkout_plugin(Path(args.baseline).resolve(), scratch, "calico-base")
            runs["baseline " + args.baseline] = [base]
        _measure(runs, env, args.rounds)
    finally:
        shutil.rmtree(scratch)
    return 0


def _measure(runs: dict[str, list[str]], env: dict[str, str], rounds: int) -> None:
    times: dict[str, list[float]] = {k: [] for k in runs}
    for argv_ in runs.values():  # warm the page cache and the .pyc files
        _once(argv_, env)
    for _ in range(rounds):
        for label, argv_ in runs.items():
            times[label].append(_once(argv_, env))
    print(f"calico plugin, CNI_COMMAND=VERSION, whole process, {rounds} rounds interleaved, ms")
    print(f"{'':40}{'p50':>8}{'min':>8}{'p90':>8}")
    for label, values in times.items():
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]
        print(f"{label:40}{statistics.median(values):>8.1f}{min(values):>8.1f}{p90:>8.1f}")
    floor = statistics.median(times["/bin/true"])
    for label in times:
        if label.startswith(("this", "baseline")):
            print(f"  {label}: {statistics.median(times[label]) - floor:.1f} ms over /bin/true")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
