"""Benchmark: ``multihome verify`` of the built-in seed lab (target: <= 2 s).

Run as ``python -m bench.verify [--rounds N]`` from the repository root, as root. Brings the
seed lab up once (``MULTIHOME_STATE_DIR`` set to a fresh temporary directory), then
measures N rounds of each:

- ``verify.run()``: the verification itself, in this process (what ``up --verify`` calls):
  reading the lab, deriving the checks, one call into the sandbox where one worker runs
  every probe at once while another reads the kernel's view of the pods and measures the
  two streams, and judging;
- ``multihome verify``: the whole command as a user runs it (Python start-up, imports,
  printing the table), as a subprocess.

Prints the median, min and max of each, the phases of the last in-process run, and whether
every check passed (the bench fails if one did not). The lab is taken down at the end, also
on failure.
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

TARGET = 2.0
MULTIHOME = str(Path(sys.executable).with_name("multihome"))


def _stats(values: list[float]) -> str:
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.verify")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    root = tempfile.mkdtemp(
        prefix="mh-bench-verify-", dir="/run" if os.access("/run", os.W_OK) else None
    )
    os.environ["MULTIHOME_STATE_DIR"] = root
    from multihome import verify
    from multihome.lab import api
    from multihome.spec import load_lab

    inside: list[float] = []
    whole: list[float] = []
    report = None
    try:
        api.up(load_lab(None))
        verify.run()  # warm-up, not counted
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            report = verify.run()
            inside.append(time.perf_counter() - t0)
            if not report.ok:
                print(report.json_text(), file=sys.stderr)
                print("bench.verify: FAILED: a check failed on the seed", file=sys.stderr)
                return 1
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            done = subprocess.run(
                [MULTIHOME, "verify"], capture_output=True, text=True, check=False
            )
            whole.append(time.perf_counter() - t0)
            if done.returncode != 0:
                print(done.stdout + done.stderr, file=sys.stderr)
                print(
                    f"bench.verify: FAILED: multihome verify exited {done.returncode}",
                    file=sys.stderr,
                )
                return 1
    finally:
        api.down("multi-homed")
        os.environ.pop("MULTIHOME_STATE_DIR", None)
        shutil.rmtree(root, ignore_errors=True)
    assert report is not None
    print(
        f"seed lab (built-in rke2-multihomed: 6 nodes, 3 VLANs, 7 pods): {len(report.checks)} "
        f"checks, median (min-max) of {args.rounds} rounds, s"
    )
    print(f"{'':24}{'median (min-max)':>24}{'target':>9}  result")
    verdict = "ok" if statistics.median(whole) <= TARGET else "OVER TARGET"
    print(f"{'verify.run()':24}{_stats(inside):>24}{'':>9}")
    print(f"{'multihome verify':24}{_stats(whole):>24}{TARGET:>9.1f}  {verdict}")
    phases = ", ".join(f"{k} {v:.3f}" for k, v in report.timings.items())
    print(f"phases of the last verify.run(), s: {phases}")
    print(
        "the collect phase is bounded below by the isolation probes' silence window "
        "(0.5 s: a path that exists in the lab answers in milliseconds)"
    )
    return 0 if verdict == "ok" else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
