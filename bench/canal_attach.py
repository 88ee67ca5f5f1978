"""Benchmark: a pod's eth0 as the lab makes it now (Canal's conflist: the lab's calico plugin
with host-local over the node's pod CIDR, then portmap and bandwidth) against how it made it
before (the reference ptp plugin with host-local), side by side in one run.

Run as ``python -m bench.canal_attach [PODS] [--baseline CHECKOUT]`` from the repository
root, as root. Builds a lab sandbox with one node (a NIC on a bridge, a default route, as a
lab node has), then attaches and detaches PODS pods through Multus's delegates and the CNI
runtime, alternating the conflists pod by pod so all see the same machine; with
``--baseline``, a third conflist runs another checkout's calico plugin (installed in the
node's ``/opt/cni/bin`` as ``calico-base``). Prints p50/p95 of attach and detach for each,
the CPU an attachment's plugin processes used (theirs and their children's: IPAM, ``ip``),
each plugin process's time, and the ratios. Everything is removed at the end, also on
failure.
"""

from __future__ import annotations

import argparse
import copy
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.calico_start import checkout_plugin
from bench.labcli import code, machine
from multihome.cni import CNIRuntime, ExecEvent, NodeNamespaces, spawn
from multihome.lab import canal, netlink, nodes, sandbox
from multihome.multus import PodSandbox, attach_pod, build_delegates, detach_pod
from multihome.plan import build_plan
from multihome.spec import load_lab


def _ptp(pod_cidr: str) -> dict[str, Any]:
    """The cluster network as the lab made it before Canal's calico: ptp + host-local."""
    return {
        "cniVersion": "0.3.1",
        "name": "ptp-pod-network",
        "plugins": [
            {
                "type": "ptp",
                "mtu": 1450,
                "ipam": {
                    "type": "host-local",
                    "subnet": pod_cidr,
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            }
        ],
    }


def _percentile(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _work(
    sb: sandbox.Sandbox, root: str, pods: int, baseline: str | None
) -> dict[str, dict[str, list[float]]]:
    """Attach and detach ``pods`` pods with each conflist, interleaved; times in ms by
    conflist and phase (``cpu``: the attachment's plugin processes), and by ``plugin
    COMMAND`` (under ``"plugins"``: each process's own time, spawn to exit)."""
    plan = build_plan(load_lab(None))
    node_plan = plan.node("multi-homed-wrk-1")
    node = nodes.create_node(node_plan.name, root=root, ns_dir=sb.ns_dir, cpu=sb.cpu)
    try:
        conf = canal.write_conflist(node_plan, node)
        canal.install_plugin(canal.write_launcher(os.path.join(sb.scratch, "cni-bin")), node)
        with netlink.Netlink() as nl:
            nl.here().add_bridge("vlan40")
            nl.here().add_veth("n-ens192", "ens192", peer_ns=nl.ns(node.netns))
            inside = nl.ns(node.netns)
            inside.set_link("lo", up=True)
            inside.set_link("ens192", up=True)
            inside.add_address("ens192", "172.16.40.47/24")
            inside.add_route("default", via="172.16.40.1", dev="ens192")
        confs = {"canal (calico)": conf}
        if baseline:
            launcher = checkout_plugin(
                Path(baseline).resolve(), os.path.join(sb.scratch, "cni-bin-base"), "calico-base"
            )
            canal.install_plugin(launcher, node)
            confs["canal (baseline)"] = copy.deepcopy(conf)
            confs["canal (baseline)"]["plugins"][0]["type"] = "calico-base"
        confs["ptp (before)"] = _ptp(str(node_plan.pod_cidr))
        timings: dict[str, dict[str, list[float]]] = {
            k: {"attach": [], "detach": [], "cpu": []} for k in confs
        }
        per_plugin: dict[str, list[float]] = {}

        def seen(event: ExecEvent) -> None:
            key = f"{event.plugin} {event.command}"
            per_plugin.setdefault(key, []).append(event.seconds * 1000)

        runtime = CNIRuntime(
            ["/opt/cni/bin"],
            node.dir("/var/lib/cni"),
            node=NodeNamespaces(netns=node.netns, mntns=node.mntns),
            timeout=30,
            on_exec=seen,
        )
        for n in range(pods):
            for kind, cluster in confs.items():
                name = f"p{n}-{kind.split()[-1].strip('()')[:4]}"
                path = netlink.create_netns(name)
                pod = PodSandbox("bench", name, f"uid-{name}", f"c-{name}", path)
                delegates = build_delegates("bench", name, {}, cluster, lambda *_: None)
                try:
                    spawn.reap_ended(everything=True)  # the runtime reaps plugins late
                    cpu = _children_cpu()
                    started = time.perf_counter()
                    attach_pod(runtime, pod, delegates)
                    attached = time.perf_counter()
                    spawn.reap_ended(everything=True)  # a process's CPU counts once reaped
                    cpu = _children_cpu() - cpu
                    undo = time.perf_counter()
                    detach_pod(runtime, pod, delegates)
                    detached = time.perf_counter()
                finally:
                    netlink.delete_netns(name)
                timings[kind]["attach"].append((attached - started) * 1000)
                timings[kind]["detach"].append((detached - undo) * 1000)
                timings[kind]["cpu"].append(cpu * 1000)
        timings["plugins"] = per_plugin
        return timings
    finally:
        nodes.delete_node(node)


def main(argv: list[str]) -> int:
    if os.geteuid() != 0:
        print("bench.canal_attach: needs root", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m bench.canal_attach")
    parser.add_argument("pods", type=int, nargs="?", default=100)
    parser.add_argument("--baseline", metavar="CHECKOUT", help="another checkout of multihome")
    args = parser.parse_args(argv)
    pods = args.pods
    baseline = os.path.abspath(args.baseline) if args.baseline else None
    with tempfile.TemporaryDirectory(prefix="mhbench-canal-") as tmp:
        scratch = os.path.join(tmp, "scratch")
        os.mkdir(scratch)
        sb = sandbox.create("bench-canal", scratch, mountpoints=nodes.NODE_MOUNTPOINTS)
        try:
            timings = sb.call(
                _work, sb, os.path.join(tmp, "node"), pods, baseline, timeout=max(600, pods * 3)
            )
        finally:
            sb.destroy()
    plugins = timings.pop("plugins")
    print(machine())
    print(code())
    if baseline:
        print(f"baseline: {baseline} (calico-base)")
    print(f"a pod's eth0 (cluster network only), {pods} pods each, interleaved, ms")
    print(
        f"{'conflist':<18} {'attach p50':>10} {'p95':>8} {'detach p50':>11} {'p95':>8} "
        f"{'mean':>8} {'CPU p50':>8}"
    )
    for kind, phases in timings.items():
        a, d, c = phases["attach"], phases["detach"], phases["cpu"]
        print(
            f"{kind:<18} {_percentile(a, 50):10.2f} {_percentile(a, 95):8.2f} "
            f"{_percentile(d, 50):11.2f} {_percentile(d, 95):8.2f} {statistics.fmean(a):8.2f} "
            f"{_percentile(c, 50):8.2f}"
        )
    print("each plugin process, spawn to exit (p50 ms; VERSION once per plugin and process):")
    for key in sorted(plugins):
        print(f"  {key:<22} {_percentile(plugins[key], 50):8.2f}  ({len(plugins[key])} runs)")
    new, old = (timings[k]["attach"] for k in ("canal (calico)", "ptp (before)"))
    print(f"attach p50 ratio canal / ptp: {_percentile(new, 50) / _percentile(old, 50):.2f}")
    if baseline:
        base = timings["canal (baseline)"]
        ours = timings["canal (calico)"]
        for label, mine, theirs in (
            ("attach p50", ours["attach"], base["attach"]),
            ("detach p50", ours["detach"], base["detach"]),
            ("attach CPU p50", ours["cpu"], base["cpu"]),
            ("calico ADD p50", plugins["calico ADD"], plugins["calico-base ADD"]),
            ("calico DEL p50", plugins["calico DEL"], plugins["calico-base DEL"]),
        ):
            ratio = _percentile(mine, 50) / _percentile(theirs, 50)
            print(f"{label} ratio this / baseline: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
