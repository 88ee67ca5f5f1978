"""Benchmark: ``multihome up`` (no file: the built-in seed lab) and ``multihome down``, the
whole commands as a user runs them.

Run as ``python -m bench.up_down [--rounds N]`` from the repository root, as root (or an
unprivileged user where user namespaces are allowed). Each round runs ``.venv/bin/multihome
up`` and then ``.venv/bin/multihome down`` as subprocesses (Python start-up, imports,
loading and planning the lab, building it, printing the summary: everything), with
``MULTIHOME_STATE_DIR`` set to a fresh temporary directory (on /run when writable, where
root's labs live by default). One unmeasured round warms the page cache first. Between
rounds the bench waits for the machine to be idle (the kernel frees a removed lab's
namespaces in the background). Prints the median, min and max of the rounds against the
targets (up <= 1 s: issue 13.4; down <= 1 s), and, to see where the time goes, what ``up``
itself reports (from the plan to the last pod attached), each of its steps (from its progress
lines, beside the baseline's), the CPU time of the commands, and how long Python takes to
start and to import the command line. Everything is removed at the
end, also on failure; the bench fails if anything of the lab is left.

The checkouts measured get their bytecode compiled first (``compileall``), as an installed
package has it: with ``PYTHONDONTWRITEBYTECODE`` set (as in some containers) an editable
checkout would compile every multihome module from source on every command (~0.15 s of
CPU per command); ``--bytecode source`` measures that case instead.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from bench.labcli import (
    MULTIHOME,
    Run,
    Stats,
    code,
    leftovers,
    machine,
    run,
    settle,
    state_dir,
)
from bench.scale import _phase_times

LAB = "multi-homed"
UP_TARGET = 1.0  # issue 13.4 (it was 2.0)
DOWN_TARGET = 1.0
ELAPSED = re.compile(r"up in ([0-9.]+) s")


def _import_time(rounds: int) -> tuple[Stats, Stats]:
    """Python start-up alone, and start-up + ``import multihome.cli`` (what every command
    pays before doing anything)."""
    bare, cli = Stats(), Stats()
    env = dict(os.environ)
    for _ in range(rounds):
        bare.values.append(run([sys.executable, "-c", "pass"], env).check().wall)
        cli.values.append(run([sys.executable, "-c", "import multihome.cli"], env).check().wall)
    return bare, cli


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.up_down")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--baseline",
        metavar="CHECKOUT",
        help="another checkout of multihome (with its .venv) to measure in the same run, "
        "its rounds interleaved with these: before/after a change, side by side",
    )
    parser.add_argument(
        "--bytecode",
        choices=("cached", "source"),
        default="cached",
        help="cached (default): compile the checkouts' bytecode first, as an installed "
        "package has it; source: leave it as it is",
    )
    args = parser.parse_args(argv)
    up, down, inside, up_cpu, down_cpu = Stats(), Stats(), Stats(), Stats(), Stats()
    peak_rss, peak_pss = Stats(), Stats()
    base_up, base_down, base_cpu = Stats(), Stats(), Stats()
    steps: dict[str, list[dict[str, float]]] = {"this": [], "baseline": []}
    baseline = (
        str(Path(args.baseline).resolve() / ".venv" / "bin" / "multihome")
        if args.baseline
        else None
    )
    print(machine())
    print(code())
    if args.bytecode == "cached":
        checkouts = [(sys.executable, Path(__file__).resolve().parents[1])]
        if baseline is not None:
            checkouts.append((str(Path(baseline).with_name("python")), Path(args.baseline)))
        for python, checkout in checkouts:
            subprocess.run(
                [python, "-m", "compileall", "-q", str(checkout / "multihome")], check=True
            )
        print("bytecode: compiled (compileall) for each checkout measured, as installed")
    else:
        print(
            "bytecode: as found (PYTHONDONTWRITEBYTECODE="
            f"{os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r})"
        )
    with state_dir("mh-bench-updown-") as env:
        up_argv, down_argv = [MULTIHOME, "up"], [MULTIHOME, "down"]
        try:
            for cli in (MULTIHOME, baseline):
                if cli is not None:
                    run([cli, "up"], env, timeout=120).check()  # warm-up, not counted
                    run([cli, "down"], env, timeout=60).check()
            for _ in range(args.rounds):
                if baseline is not None:
                    settle()
                    bu = run(
                        [baseline, "up"], env, sample_lab=LAB, stamp_stderr=True, timeout=120
                    ).check()
                    steps["baseline"].append(_phase_times(bu.stamped, bu.wall))
                    bd = run([baseline, "down"], env, timeout=60).check()
                    if found := leftovers(env, LAB, [bu.token]):
                        raise RuntimeError(f"the baseline's down left: {', '.join(found)}")
                    base_up.values.append(bu.wall)
                    base_cpu.values.append(bu.cpu)
                    base_down.values.append(bd.wall)
                settle()
                u: Run = run(
                    up_argv, env, sample_lab=LAB, interval=0.05, stamp_stderr=True, timeout=120
                ).check()
                steps["this"].append(_phase_times(u.stamped, u.wall))
                d: Run = run(down_argv, env, timeout=60).check()
                if found := leftovers(env, LAB, [u.token]):
                    raise RuntimeError(f"down left: {', '.join(found)}")
                up.values.append(u.wall)
                down.values.append(d.wall)
                up_cpu.values.append(u.cpu)
                down_cpu.values.append(d.cpu)
                peak_rss.values.append(u.peak_rss_kib / 1024)
                peak_pss.values.append(u.peak_pss_kib / 1024)
                match = ELAPSED.search(u.stdout)
                if match:
                    inside.values.append(float(match.group(1)))
        except (RuntimeError, subprocess.SubprocessError) as exc:
            print(f"bench.up_down: FAILED: {exc}", file=sys.stderr)
            return 1
    python_start, cli_import = _import_time(args.rounds)
    print(
        f"seed lab (built-in rke2-multihomed: 6 nodes, 3 VLANs, 2 dnsmasq, 3 dhcp daemons, "
        f"web host, 7 pods: net-tools and Longhorn 1.4's engine and replica instance-managers "
        f"on each agent), whole commands, median (min-max) of {args.rounds} rounds, s"
    )
    print(f"command: MULTIHOME_STATE_DIR=<tmp> {MULTIHOME} up; {MULTIHOME} down")
    print(f"{'':22}{'median (min-max)':>24}{'target':>9}  result")
    for label, stats, target in (
        ("multihome up", up, UP_TARGET),
        ("multihome down", down, DOWN_TARGET),
    ):
        verdict = "ok" if stats.median <= target else "OVER TARGET"
        print(f"{label:22}{stats.fmt(digits=3):>24}{target:>9.1f}  {verdict}")
    if baseline is not None:
        print(f"baseline, rounds interleaved with the above: {baseline}")
        for label, stats, ours in (("up", base_up, up), ("down", base_down, down)):
            ratio = ours.median / stats.median if stats.median else float("nan")
            print(f"  baseline {label:6}{stats.fmt(digits=3):>24}   this / baseline: {ratio:.2f}")
        ratio = up_cpu.median / base_cpu.median if base_cpu.median else float("nan")
        print(
            f"  baseline up CPU {base_cpu.fmt(digits=3)} s (user+sys, the command and the "
            f"children it waited for), this {up_cpu.fmt(digits=3)}: this / baseline {ratio:.2f}"
        )
    print("where the time goes (median, s):")
    if inside.values:
        print(
            f"  up as it reports itself (plan built -> last pod attached): {inside.fmt(digits=3)};"
            f" the rest of the command (start-up, imports, load + plan, summary): "
            f"{up.median - inside.median:.3f}"
        )
    _print_steps(steps)
    print(
        f"  Python start-up {python_start.fmt(digits=3)}; start-up + import multihome.cli "
        f"{cli_import.fmt(digits=3)}"
    )
    print(
        f"  CPU (user+sys, the command and the children it waited for): up "
        f"{up_cpu.fmt(digits=3)}, down {down_cpu.fmt(digits=3)}"
    )
    print(
        f"  memory of multihome's Python processes during up (sampled every 50 ms: up, its "
        f"Python descendants, the sandbox supervisor), peak of the sum: RSS "
        f"{peak_rss.fmt(digits=1)} MiB, PSS {peak_pss.fmt(digits=1)} MiB (RSS counts the "
        "pages forked workers share with their parent once per process; PSS splits them)"
    )
    return 0


def _print_steps(steps: dict[str, list[dict[str, float]]]) -> None:
    """up's steps from its progress lines, median s, this and the baseline side by side
    (start: Python start-up, imports, loading, validate's gate, planning; end: after the
    last step: status written, summary printed, interpreter exit)."""
    names: list[str] = []
    for rounds in steps.values():
        for found in rounds:
            names += [n for n in found if n not in names]
    order = ["start", *[n for n in names if n not in ("start", "end")], "end"]
    shown = [k for k, v in steps.items() if v]
    print("  up's steps (median s, from its progress lines): " + ", ".join(shown))
    print(f"  {'step':16}" + "".join(f"{k:>11}" for k in shown))
    for name in order:
        cells = ""
        for key in shown:
            values = [r[name] for r in steps[key] if name in r]
            cells += f"{statistics.median(values):>11.3f}" if values else f"{'-':>11}"
        print(f"  {name:16}{cells}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
