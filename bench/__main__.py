"""``make bench``: run every benchmark in this folder, one after the other, and keep what each
printed in ``bench/results/<name>.txt`` with the command, the machine and the date, so results
are committed next to the code they measured. Run as root from the repository root.

``python -m bench`` runs them all; ``python -m bench NAME [OPTIONS...] [NAME [OPTIONS...]]``
runs the named ones, each with the options that follow its name, e.g.
``python -m bench scale --sizes 10,50 up_down``. Each benchmark's output is shown as it
runs and written to its result file when it succeeds."""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
RESULTS = HERE / "results"
BENCHMARKS = [
    "cni_overhead",
    "multus_attach",
    "canal_attach",
    "calico_start",
    "dhcp_attach",
    "whereabouts_attach",
    "lab_primitives",
    "up_down",
    "scale",
    "plugins_floor",
    "scale_dhcp",
    "verify",
    "neighbours",
    "kube_get",
    "kube_api",
    "verify_live",
    "verify_probes",
    "mininet",
    "kube_write",
    "apply",
]
HELPERS = {"labcli", "nsfile"}  # modules the benchmarks share, not benchmarks
# what a plain `make bench` passes: the DHCP bench also waits for a lease renewal on the wire
DEFAULT_ARGS = {"dhcp_attach": ["--renewal"]}


def _parse(argv: list[str]) -> list[tuple[str, list[str]]]:
    """``NAME [OPTIONS...]`` groups; every word that is not a benchmark's name belongs to
    the benchmark named before it."""
    known = {p.stem for p in HERE.glob("*.py") if not p.stem.startswith("_")} - HELPERS
    chosen: list[tuple[str, list[str]]] = []
    for word in argv:
        if word in known:
            chosen.append((word, []))
        elif chosen:
            chosen[-1][1].append(word)
        else:
            raise SystemExit(
                f"python -m bench: unknown benchmark {word!r} (known: {sorted(known)})"
            )
    return chosen


def _run(name: str, args: list[str]) -> tuple[int, str]:
    """Run ``bench.NAME`` with ``args``, showing its stdout as it comes; returns its exit
    code and everything it printed on stdout."""
    proc = subprocess.Popen(
        [sys.executable, "-m", f"bench.{name}", *args],
        stdout=subprocess.PIPE,
        text=True,
        bufsize=1,
    )
    assert proc.stdout is not None
    lines = []
    shown = True
    for line in proc.stdout:
        lines.append(line)
        if shown:
            try:
                sys.stdout.write(line)
                sys.stdout.flush()
            except OSError:  # the console went away (e.g. | head): keep the result anyway
                shown = False
    return proc.wait(), "".join(lines)


def main(argv: list[str]) -> int:
    chosen = _parse(argv) or [
        (b, DEFAULT_ARGS.get(b, [])) for b in BENCHMARKS if (HERE / f"{b}.py").exists()
    ]
    RESULTS.mkdir(exist_ok=True)
    failed = 0
    for name, args in chosen:
        print(f"== bench.{name} {shlex.join(args)}".rstrip(), flush=True)
        started = time.strftime("%Y-%m-%d %H:%M:%S %Z")
        code, output = _run(name, args)
        if code != 0:
            failed += 1
            continue
        header = (
            f"# bench.{name}, {started}\n"
            f"# command: python -m bench.{name} {shlex.join(args)}".rstrip()
            + "\n"
            + f"# {platform.node()}: {platform.platform()}, nproc {os.cpu_count()}, "
            f"kernel {platform.release()}, Python {platform.python_version()}\n"
        )
        (RESULTS / f"{name}.txt").write_text(header + output)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
