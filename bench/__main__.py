"""``make bench``: run every benchmark in this folder, one after the other, and keep what each
printed in ``bench/results/<name>.txt`` with the machine and date, so results are committed
next to the code they measured. Run as root from the repository root."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
BENCHMARKS = ["cni_overhead", "multus_attach", "dhcp_attach", "lab_primitives"]


def main(argv: list[str]) -> int:
    chosen = argv or [b for b in BENCHMARKS if (HERE / f"{b}.py").exists()]
    RESULTS.mkdir(exist_ok=True)
    failed = 0
    for name in chosen:
        print(f"== bench.{name}", flush=True)
        started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        done = subprocess.run(
            [sys.executable, "-m", f"bench.{name}"],
            capture_output=True,
            text=True,
            check=False,
        )
        sys.stdout.write(done.stdout)
        sys.stderr.write(done.stderr)
        if done.returncode != 0:
            failed += 1
            continue
        header = (
            f"# bench.{name}, {started}\n# {platform.node()}: {platform.platform()}, "
            f"{os.cpu_count()} CPUs, Python {platform.python_version()}\n"
        )
        (RESULTS / f"{name}.txt").write_text(header + done.stdout)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
