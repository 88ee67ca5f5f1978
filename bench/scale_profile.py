"""Profile: where ``multihome up`` and ``down`` spend their time on a generated lab
(bench.scale's, default 50 agents with 10 pods each), with cProfile.

Run as ``python -m bench.scale_profile [--agents 50] [--pods-per-agent 10] [--top 30] [--dhcp]``
from the repository root, as root; ``python -m bench scale_profile`` keeps the output in
bench/results/scale_profile.txt (not part of a plain ``make bench``: it is a diagnosis,
not a figure to hold a target to).

One ``up`` and one ``down`` run in this process through the API (``multihome.lab.api``),
so there is no CLI start-up. Profiled: the command's own process (load, plan, sandbox,
status) and the child that builds the lab inside the sandbox (``realize.realize`` is
wrapped with a profiler there), with nodes made and pods attached one at a time
(``MULTIHOME_NODE_WORKERS=1``, ``MULTIHOME_ATTACH_WORKERS=1``: they then run in that
child, not in forked workers a profiler in the child can't see). The times are therefore
those of a sequential ``up``: with workers the same work is spread over the CPUs. Prints
a table of named costs per pod and per node (cumulative time of the function that does
each), then the top functions of each process by own time and by cumulative time.
``MULTIHOME_STATE_DIR`` is a fresh temporary directory; everything is removed at the end.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import sys
import sysconfig
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.labcli import code, machine, state_dir
from bench.scale import generate, lab_name

# (label, file suffix, function, per): what a named cost is, found in the realize profile
COSTS = [
    ("all pods (attach, process, watcher, journal)", "lab/realize.py", "attach_pods", "pod"),
    ("  CNI: the 3 attachments of a pod", "cni/runtime.py", "add_network_list", "pod"),
    ("    plugin processes (fork+exec+wait)", "cni/invoke.py", "_exec", "pod"),
    ("      starting processes (Popen, all here)", "subprocess.py", "__init__", "pod"),
    ("    plugin lookup in the node's fs", "cni/invoke.py", "find", "pod"),
    ("    result cache written", "cni/runtime.py", "_cache_write", "pod"),
    ("  the pod's process (sleep) started", "lab/processes.py", "start", "pod"),
    ("  link-up watcher started", "lab/linkup.py", "start", "pod"),
    ("  link-up watcher stopped", "lab/linkup.py", "stop", "pod"),
    ("  pod network namespace made", "lab/netlink.py", "create_netns", "pod"),
    ("  journal entries (fsync each)", "lab/state.py", "record", "pod"),
    ("a node, whole (nodeup)", "lab/nodeup.py", "make_node", "node"),
    ("  node namespaces and directories", "lab/nodes.py", "create_node", "node"),
    ("  node NICs (veths into bridges, batched)", "lab/wiring.py", "wire_machine", "node"),
    ("  host-gw routes (every other node)", "lab/canal.py", "route_changes", "node"),
    ("  its dhcp daemon started", "lab/daemons.py", "launch_dhcp_daemon", "node"),
    ("neighbour entries between nodes", "lab/neighbours.py", "between_nodes", "node"),
    ("netlink calls (pyroute2), all", "lab/netlink.py", "_call", "pod"),
]


def _short(line: str, prefixes: list[str]) -> str:
    for prefix in prefixes:
        line = line.replace(prefix, "")
    return line


def _cumulative(stats: pstats.Stats, suffix: str, func: str) -> tuple[float, int] | None:
    """Cumulative seconds and calls of ``func`` defined in a file ending with ``suffix``
    (summed when several match, e.g. subprocess.Popen.__init__ and others: the first
    with the most time is taken)."""
    best: tuple[float, int] | None = None
    table: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (filename, _, name), (_, calls, _, cumtime, _) in table.items():
        if name == func and filename.endswith(suffix) and (best is None or cumtime > best[0]):
            best = (cumtime, calls)
    return best


def profile(agents: int, per_agent: int, top: int, out_dir: Path, dhcp: bool = False) -> None:
    import multihome
    from multihome.lab import api, realize
    from multihome.spec import load_lab

    prefixes = sorted(
        {
            os.path.dirname(os.path.dirname(multihome.__file__)) + "/",
            sysconfig.get_paths()["purelib"] + "/",
            sysconfig.get_paths()["stdlib"] + "/",
        },
        key=len,
        reverse=True,
    )
    os.environ["MULTIHOME_ATTACH_WORKERS"] = "1"
    os.environ["MULTIHOME_NODE_WORKERS"] = "1"  # nodes made in the profiled child too
    original = realize.realize
    child_prof = out_dir / "realize.prof"

    def profiled(*args: Any, **kwargs: Any) -> Any:  # runs in the forked child
        prof = cProfile.Profile()
        try:
            return prof.runcall(original, *args, **kwargs)
        finally:
            prof.dump_stats(child_prof)

    realize.realize = profiled
    path = out_dir / f"{lab_name(agents)}.yaml"
    path.write_text(generate(agents, per_agent, dhcp=dhcp))
    parent = cProfile.Profile()
    t0 = time.perf_counter()
    parent.enable()
    try:
        status = api.up(load_lab(path))
    finally:
        parent.disable()
        t1 = time.perf_counter()
        down = cProfile.Profile()
        down.runcall(api.down, lab_name(agents))
        t2 = time.perf_counter()
        realize.realize = original
    parent.dump_stats(out_dir / "up.prof")
    down.dump_stats(out_dir / "down.prof")
    pods = len(status["pods"])
    nodes = agents + 1
    print(
        f"profile (cProfile): {agents} agents + 1 server, {pods} pods, nodes and pods one at a "
        f"time; up {t1 - t0:.2f} s (through the API: no CLI start-up), down {t2 - t1:.2f} s"
    )
    child = pstats.Stats(str(child_prof))
    print(
        f"named costs in the child building the lab (cumulative; per pod = / {pods}, "
        f"per node = / {nodes})"
    )
    print(f"{'':48}{'total s':>9}{'calls':>8}{'ms each':>9}{'ms per':>8}")
    for label, suffix, func, per in COSTS:
        found = _cumulative(child, suffix, func)
        if found is None:
            print(f"{label:48}{'-':>9}")
            continue
        seconds, calls = found
        count = pods if per == "pod" else nodes
        print(
            f"{label:48}{seconds:>9.2f}{calls:>8}{seconds / max(calls, 1) * 1000:>9.2f}"
            f"{seconds / count * 1000:>8.1f} {per}"
        )
    for title, prof_path in (
        ("realize (the child building the lab in the sandbox)", child_prof),
        ("up (the command's process: load, plan, sandbox, status)", out_dir / "up.prof"),
        ("down", out_dir / "down.prof"),
    ):
        for order in ("tottime", "cumulative"):
            text = io.StringIO()
            stats = pstats.Stats(str(prof_path), stream=text)
            stats.sort_stats(order).print_stats(top)
            print(f"--- {title}, top {top} by {order}")
            lines = text.getvalue().splitlines()
            start = next((i for i, ln in enumerate(lines) if "ncalls" in ln), 0)
            print("\n".join(_short(ln, prefixes) for ln in lines[start:] if ln.strip()))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale_profile")
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--pods-per-agent", type=int, default=10)
    parser.add_argument("--top", type=int, default=30, help="rows per table")
    parser.add_argument("--dhcp", action="store_true", help="bench.scale's --dhcp pods")
    args = parser.parse_args(argv)
    print(machine())
    print(code())
    with state_dir("mh-bench-profile-") as env:
        os.environ["MULTIHOME_STATE_DIR"] = env["MULTIHOME_STATE_DIR"]
        with tempfile.TemporaryDirectory(prefix="mh-bench-prof-") as out:
            profile(args.agents, args.pods_per_agent, args.top, Path(out), dhcp=args.dhcp)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
