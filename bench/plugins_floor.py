"""Benchmark: multihome's own overhead over the plugins it must run (issue 13, item 3).

Run as ``python -m bench.plugins_floor [--sizes 10,100] [--rounds N] [--pods-per-agent K]``
from the repository root, as root; ``python -m bench plugins_floor`` keeps the result in
bench/results/plugins_floor.txt.

The lab is bench.scale's (``generate``): 1 server + N agents, K pods per agent, each pod
eth0 from Canal's ``k8s-pod-network`` (the lab's calico plugin with host-local over the
node's pod CIDR, then portmap and bandwidth, as rke2-canal's 10-canal.conflist), net1 a
macvlan with static IPAM (the annotation's ``ips``), net2 a macvlan with host-local (a NAD
per agent). Side by side, rounds interleaved, each after the machine settled:

- **ip -batch floor** (bench.scale's ``floor_round``): the same kernel objects made with
  ``ip -batch``, no plugin at all;
- **plugins floor**, once with one worker and once with as many workers as multihome
  attaches with (``forkpool.attach_workers()``: 2 per CPU): in a private sandbox (as the
  lab's), the same namespaces (a network + mount namespace per node with its own
  ``/var/lib/cni``, ``/opt/cni/bin``; a network namespace per pod), the nodes' NICs,
  addresses and host-gw routes made with ``ip -batch``, the Node object the calico plugin
  reads; then every pod's plugins executed directly with the CNI protocol (``CNI_*``
  environment, the config on stdin, the result on stdout, ``prevResult`` down the chain):
  ``calico`` (the lab's, which runs ``host-local``), ``portmap``, ``bandwidth`` for eth0,
  ``macvlan`` (+ ``static``) for net1, ``macvlan`` (+ ``host-local``) for net2, from
  /usr/lib/cni, inside the pod's node (its network and mount namespace). The configs are
  the very ones multihome sends (its plan and Multus delegates, computed before the clock
  starts); each pod's ``lo`` is set up with one netlink message. Teardown: destroying the
  sandbox, as ``multihome down`` does. What it leaves out (and multihome does): loading and
  planning the file, the journal, the CNI result cache and VERSION calls, the pods'
  processes, Multus's network-status, node files other than the Node object, the permanent
  neighbour entries, the lab's API server;
- **multihome**: ``multihome up FILE`` / ``down NAME`` through the CLI, as bench.scale
  measures it (whole commands, Python start-up included).

Reports per size: medians (min-max), per pod, ``up / plugins floor`` (goal <= 1.5x, with
the floor at multihome's concurrency), ``up / ip -batch floor`` (goal <= 3x), and the
``pods`` step of up against the floor's pods alone. Everything is removed at the end,
also on failure; the bench fails if anything is left.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import shutil
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.labcli import MULTIHOME, Stats, code, machine, run, settle, state_dir
from bench.scale import (
    FloorRound,
    LabRound,
    floor_round,
    generate,
    lab_name,
    lab_round,
)

UP_RATIO_GOAL = 1.5  # multihome up / plugins floor (same concurrency)
BATCH_RATIO_GOAL = 3.0  # multihome up / ip -batch floor, per pod
CNI_BIN = "/usr/lib/cni"
NODE_CNI_PATH = "/opt/cni/bin"
CLONE_NEWNET = 0x40000000
CLONE_NEWNS = 0x00020000


# -- what the floor builds: prepared from multihome's own plan, before the clock starts -----
@dataclass
class NodeSpec:
    name: str
    nics: list[tuple[str, str, str | None]]  # (nic, bridge, address/prefix)
    gateway: tuple[str, str] | None  # (via, dev)
    routes: list[tuple[str, str, str, bool]]  # host-gw: (pod CIDR, via, dev, onlink)
    node_object: dict[str, Any]


@dataclass
class Call:
    """One delegate of a pod: a conf or a conflist, as Multus hands it to the runtime."""

    ifname: str
    name: str
    version: str
    plugins: list[dict[str, Any]]
    capability_args: dict[str, Any]
    add_args: list[tuple[str, str]]


@dataclass
class PodSpec:
    node: str
    netns: str
    container_id: str
    cni_args: list[tuple[str, str]]
    calls: list[Call]


@dataclass
class FloorSpec:
    bridges: list[str]
    nodes: list[NodeSpec]
    pods: list[PodSpec]


def prepare(lab_file: Path) -> FloorSpec:
    """The floor's inputs from the lab file: bridges, nodes, and every pod's plugin calls
    with the configs multihome's plan and Multus delegates give them."""
    from multihome.lab import canal, pods, realize
    from multihome.multus import build_delegates, cni_args
    from multihome.plan import build_plan
    from multihome.spec import load_lab

    plan = build_plan(load_lab(lab_file))
    bridge = {n.name: n.bridge for n in plan.networks}
    nodes = []
    for node in plan.nodes:
        nodes.append(
            NodeSpec(
                name=node.name,
                nics=[
                    (nic.name, bridge[nic.network], str(nic.address) if nic.address else None)
                    for nic in node.nics
                ],
                gateway=(str(node.default_gateway), node.management_nic)
                if node.default_gateway
                else None,
                routes=canal.host_gw_routes(plan, node),
                node_object=canal.node_object(node),
            )
        )
    nads = {(n.namespace, n.name): n.config for n in plan.nads}
    specs = []
    for pod in realize.placed_pods(plan):
        assert pod.node is not None
        annotations = {}
        if pod.networks_annotation:
            annotations["k8s.v1.cni.cncf.io/networks"] = pod.networks_annotation
        delegates = build_delegates(
            pod.namespace,
            pod.name,
            annotations,
            canal.conflist(plan.node(pod.node)),
            lambda namespace, nad: nads.get((namespace, nad)),
        )
        calls = []
        for d in delegates:
            conf = dict(d.config)
            plugins = conf.get("plugins", [conf])
            calls.append(
                Call(
                    ifname=d.ifname,
                    name=str(conf["name"]),
                    version=str(conf.get("cniVersion", "0.3.1")),
                    plugins=[dict(p) for p in plugins],
                    capability_args=dict(d.capability_args),
                    add_args=list(d.add_args),
                )
            )
        cid = pods.container_id(pod)
        specs.append(
            PodSpec(
                node=pod.node,
                netns=pods.netns_name(pod),
                container_id=cid,
                cni_args=cni_args(pod.namespace, pod.name, pods.pod_uid(pod), cid),
                calls=calls,
            )
        )
    return FloorSpec(sorted(set(bridge.values())), nodes, specs)


# -- the plugins floor, inside a sandbox ---------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int, kind: int) -> None:
    if _libc.setns(fd, kind) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def _ip_batch(lines: list[str], netns: str | None = None) -> None:
    argv = ["ip", *(["-n", netns] if netns else []), "-batch", "-"]
    done = subprocess.run(
        argv, input="\n".join(lines) + "\n", text=True, capture_output=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


def _lo_up(pod_path: str, home_net: int) -> None:
    """``ip link set lo up`` in the pod: one RTM_NEWLINK on a socket made in its namespace."""
    fd = os.open(pod_path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(fd, CLONE_NEWNET)
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)
        finally:
            _setns(home_net, CLONE_NEWNET)
    finally:
        os.close(fd)
    with sock:
        # nlmsghdr (RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK) + ifinfomsg (index 1, IFF_UP)
        sock.send(struct.pack("=IHHII", 32, 16, 5, 1, 0) + struct.pack("=BxHiII", 0, 0, 1, 1, 1))
        error = struct.unpack_from("=i", sock.recv(4096), 16)[0]
    if error:
        raise OSError(-error, f"lo up in {pod_path}: {os.strerror(-error)}")


def _exec(plugin: str, command: str, conf: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """Run one plugin with the CNI protocol; its result (ADD)."""
    done = subprocess.run(
        [os.path.join(NODE_CNI_PATH, plugin)],
        input=json.dumps(conf).encode(),
        capture_output=True,
        env=dict(env, CNI_COMMAND=command),
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"{plugin} {command} ({env['CNI_IFNAME']} in {env['CNI_NETNS']}) exited "
            f"{done.returncode}: {done.stdout.decode(errors='replace').strip()} "
            f"{done.stderr.decode(errors='replace').strip()}"
        )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def _attach(pod: PodSpec, base_env: dict[str, str]) -> int:
    """Every delegate of ``pod``, plugin after plugin (the caller is in the pod's node);
    returns how many plugins ran (top-level processes)."""
    netns = os.path.join("/run/netns", pod.netns)
    ran = 0
    for call in pod.calls:
        args = ";".join(f"{k}={v}" for k, v in [*pod.cni_args, *call.add_args])
        env = dict(
            base_env,
            CNI_CONTAINERID=pod.container_id,
            CNI_NETNS=netns,
            CNI_IFNAME=call.ifname,
            CNI_ARGS=args,
        )
        prev: dict[str, Any] | None = None
        for plugin in call.plugins:
            conf = dict(plugin, name=call.name, cniVersion=call.version)
            caps = plugin.get("capabilities") or {}
            runtime = {c: call.capability_args[c] for c in caps if c in call.capability_args}
            if runtime:
                conf["runtimeConfig"] = runtime
            if prev is not None:
                conf["prevResult"] = prev
            prev = _exec(str(plugin["type"]), "ADD", conf, env)
            ran += 1
        if not prev or not prev.get("ips"):
            raise RuntimeError(f"{pod.netns} {call.ifname}: no address in {prev}")
    return ran


def _worker(
    spec: FloorSpec, indexes: list[int], fds: dict[str, tuple[int, int]], out: list[Any]
) -> None:
    base_env = dict(os.environ, CNI_PATH=NODE_CNI_PATH)
    current = None
    for i in indexes:
        pod = spec.pods[i]
        t0 = time.perf_counter()
        if pod.node != current:
            net, mnt = fds[pod.node]
            _setns(net, CLONE_NEWNET)
            _setns(mnt, CLONE_NEWNS)
            current = pod.node
        _lo_up(os.path.join("/run/netns", pod.netns), fds[pod.node][0])
        ran = _attach(pod, base_env)
        out.append((i, time.perf_counter() - t0, ran))


def _run_pool(spec: FloorSpec, workers: int, fds: dict[str, tuple[int, int]]) -> list[Any]:
    """Attach every pod with ``workers`` forked processes taking the next pod from a shared
    pipe (as multihome's forkpool does); (index, seconds, plugins) per pod."""
    count = len(spec.pods)
    if workers <= 1:
        out: list[Any] = []
        _worker(spec, list(range(count)), fds, out)
        return out
    queue_r, queue_w = os.pipe()
    os.write(queue_w, b"".join(struct.pack("=I", i) for i in range(count)))  # < 64 KiB
    os.close(queue_w)
    children = []
    for _ in range(workers):
        res_r, res_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the worker
            os.close(res_r)
            status = 0
            done: list[Any] = []
            try:
                while len(raw := os.read(queue_r, 4)) == 4:
                    _worker(spec, [struct.unpack("=I", raw)[0]], fds, done)
                payload = json.dumps({"ok": done})
            except BaseException as exc:
                status = 1
                payload = json.dumps({"error": f"{type(exc).__name__}: {exc}"})
            with open(res_w, "w") as fh:
                fh.write(payload)
            os._exit(status)
        os.close(res_w)
        children.append((pid, res_r))
    os.close(queue_r)
    results: list[Any] = []
    errors = []
    for pid, res_r in children:
        with open(res_r) as fh:
            got = json.loads(fh.read() or '{"error": "worker died"}')
        os.waitpid(pid, 0)
        if "error" in got:
            errors.append(got["error"])
        else:
            results.extend(got["ok"])
    if errors:
        raise RuntimeError(errors[0])
    return results


def floor_build(
    spec: FloorSpec, workers: int, scratch: str, ns_dir: str, cpu: int
) -> dict[str, Any]:
    """Inside the sandbox: the nodes, then every pod through its plugins; seconds taken."""
    from multihome.lab import canal, nodes

    t0 = time.perf_counter()
    lines = []
    for br in spec.bridges:
        lines += [f"link add {br} type bridge", f"link set {br} up"]
    made = {}
    for j, node in enumerate(spec.nodes):
        made[node.name] = nodes.create_node(
            node.name, root=os.path.join(scratch, "nodes", node.name), ns_dir=ns_dir, cpu=cpu
        )
        for k, (nic, bridge, _) in enumerate(node.nics):
            port = f"v{j}-{k}"
            lines += [
                f"link add {port} type veth peer name {nic} netns {node.name}",
                f"link set {port} master {bridge} up",
            ]
    _ip_batch(lines)
    calico = canal.write_launcher(os.path.join(scratch, "cni-bin"))
    for node in spec.nodes:
        lines = ["link set lo up"]
        for nic, _, address in node.nics:
            lines.append(f"link set {nic} up")
            if address:
                lines.append(f"addr add {address} dev {nic}")
        if node.gateway:
            lines.append(f"route add default via {node.gateway[0]} dev {node.gateway[1]}")
        for cidr, via, dev, onlink in node.routes:
            lines.append(f"route add {cidr} via {via} dev {dev}" + (" onlink" if onlink else ""))
        _ip_batch(lines, node.name)
        where = made[node.name]
        obj = os.path.join(where.dir("/var/lib/cni"), "multihome", "node.json")
        os.makedirs(os.path.dirname(obj), exist_ok=True)
        with open(obj, "w") as fh:
            json.dump(node.node_object, fh)
        os.symlink(calico, os.path.join(where.dir("/opt/cni/bin"), "calico"))
    t1 = time.perf_counter()
    _ip_batch([f"netns add {pod.netns}" for pod in spec.pods])
    t2 = time.perf_counter()
    fds = {
        name: (
            os.open(node.netns, os.O_RDONLY | os.O_CLOEXEC),
            os.open(node.mntns, os.O_RDONLY | os.O_CLOEXEC),
        )
        for name, node in made.items()
    }
    attached = _run_pool(spec, workers, fds)
    t3 = time.perf_counter()
    if len(attached) != len(spec.pods):
        raise RuntimeError(f"{len(attached)} pods attached of {len(spec.pods)}")
    return {
        "nodes": t1 - t0,
        "netns": t2 - t1,
        "pods": t3 - t2,
        "build": t3 - t0,
        "per_pod": [s for _, s, _ in attached],
        "plugins": sum(n for _, _, n in attached),
    }


@dataclass
class PluginRound:
    workers: int
    create: float
    made: dict[str, Any]
    destroy: float

    @property
    def build(self) -> float:
        return float(self.made["build"])


def plugins_round(spec: FloorSpec, workers: int) -> PluginRound:
    from multihome.lab import nodes, sandbox

    scratch = tempfile.mkdtemp(prefix="mh-bench-pfloor-")
    try:
        t0 = time.perf_counter()
        sb = sandbox.create("bench-pfloor", scratch, mountpoints=nodes.NODE_MOUNTPOINTS)
        t1 = time.perf_counter()
        try:
            made = sb.call(floor_build, spec, workers, sb.scratch, sb.ns_dir, sb.cpu)
        finally:
            t2 = time.perf_counter()
            sb.destroy()
        t3 = time.perf_counter()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return PluginRound(workers, t1 - t0, made, t3 - t2)


# -- rounds and report -----------------------------------------------------------------------
@dataclass
class SizeResult:
    agents: int
    pods: int
    workers: int
    batch: list[FloorRound] = field(default_factory=list)
    seq: list[PluginRound] = field(default_factory=list)
    conc: list[PluginRound] = field(default_factory=list)
    labs: list[LabRound] = field(default_factory=list)


def measure(
    agents: int, per_agent: int, rounds: int, workers: int, env: dict[str, str], tmp: Path
) -> SizeResult:
    pods = agents * per_agent
    path = tmp / f"{lab_name(agents)}.yaml"
    path.write_text(generate(agents, per_agent))
    checked = run([MULTIHOME, "validate", str(path), "-o", "json"], env)
    if checked.code != 0 or json.loads(checked.stdout or "{}").get("findings"):
        raise RuntimeError(f"validate {path}: exit {checked.code}: {checked.stdout[:500]}")
    spec = prepare(path)
    result = SizeResult(agents, pods, workers)
    for r in range(rounds):
        settle()
        result.batch.append(floor_round(agents, per_agent))
        settle()
        result.seq.append(plugins_round(spec, 1))
        settle()
        result.conc.append(plugins_round(spec, workers))
        settle()
        result.labs.append(lab_round(path, env, agents, pods))
        print(
            f"  {agents} agents, round {r + 1}/{rounds}: ip -batch floor "
            f"{result.batch[-1].build:.2f} s, plugins floor x1 {result.seq[-1].build:.2f} s, "
            f"x{workers} {result.conc[-1].build:.2f} s, up {result.labs[-1].up.wall:.2f} s, "
            f"down {result.labs[-1].down.wall:.2f} s",
            flush=True,
        )
    return result


def _med(values: list[float]) -> float:
    return statistics.median(values)


def report(results: list[SizeResult], rounds: int, per_agent: int) -> None:
    workers = results[0].workers if results else 0
    print(
        f"plugins_floor: bench.scale's lab, 1 server + N agents, {per_agent} pods per agent, "
        "each pod eth0 (Canal: calico + host-local, portmap, bandwidth) + net1 (macvlan, "
        "static) + net2 (macvlan, host-local)"
    )
    print(
        f"{rounds} round(s) per size, interleaved; median (min-max). up: the whole CLI "
        f"command; ip -batch floor: bench.scale's; plugins floor: the same plugins run "
        f"directly (CNI env + stdin) with 1 worker and with {workers} (multihome's "
        "attach concurrency)"
    )
    print()
    print("wall time, s (floors: build inside the sandbox; sandbox create/destroy apart)")
    print(
        f"{'agents':>6}{'pods':>6}{'up':>26}{'down':>8}{'ip-batch':>22}"
        f"{'plugins x1':>26}{f'plugins x{workers}':>26}"
    )
    for r in results:
        print(
            f"{r.agents:>6}{r.pods:>6}{Stats([x.up.wall for x in r.labs]).fmt():>26}"
            f"{_med([x.down.wall for x in r.labs]):>8.2f}"
            f"{Stats([f.build for f in r.batch]).fmt():>22}"
            f"{Stats([f.build for f in r.seq]).fmt():>26}"
            f"{Stats([f.build for f in r.conc]).fmt():>26}"
        )
    print()
    print(
        "where the plugins floor's time goes, median s: nodes (namespaces, NICs, routes, "
        "Node object), netns (every pod's namespace, one ip -batch), pods (every plugin); "
        "per pod: one pod's plugins, median ms; plugins: processes started directly per pod"
    )
    print(
        f"{'agents':>6}{'workers':>8}{'nodes':>8}{'netns':>8}{'pods':>8}{'ms/pod':>8}"
        f"{'plugins':>8}{'create':>8}{'destroy':>8}"
    )
    for r in results:
        for rows in (r.seq, r.conc):
            per_pod = _med([_med(x.made["per_pod"]) for x in rows]) * 1000
            print(
                f"{r.agents:>6}{rows[0].workers:>8}{_med([x.made['nodes'] for x in rows]):>8.2f}"
                f"{_med([x.made['netns'] for x in rows]):>8.2f}"
                f"{_med([x.made['pods'] for x in rows]):>8.2f}{per_pod:>8.1f}"
                f"{rows[0].made['plugins'] / r.pods:>8.1f}"
                f"{_med([x.create for x in rows]):>8.2f}{_med([x.destroy for x in rows]):>8.2f}"
            )
    print()
    print(
        f"ratios (medians): up / plugins floor x{workers} (goal <= {UP_RATIO_GOAL}); "
        "up / plugins floor x1; up's pods step / the floor's pods; per pod: up, ip -batch "
        f"floor, up / ip -batch floor (goal <= {BATCH_RATIO_GOAL})"
    )
    print(
        f"{'agents':>6}{f'up/x{workers}':>9}{'':>5}{'up/x1':>8}{'pods/pods':>11}"
        f"{'up ms/pod':>11}{'ip-batch ms/pod':>17}{'up/ip-batch':>13}{'':>5}"
    )
    verdicts = []
    for r in results:
        up = _med([x.up.wall for x in r.labs])
        conc = _med([f.build for f in r.conc])
        seq = _med([f.build for f in r.seq])
        batch = _med([f.build for f in r.batch])
        steps = [x.phases["pods"] for x in r.labs if "pods" in x.phases]
        pods_ratio = (
            f"{_med(steps) / _med([f.made['pods'] for f in r.conc]):>11.2f}"
            if steps
            else f"{'-':>11}"
        )
        ok1 = up / conc <= UP_RATIO_GOAL
        ok2 = up / batch <= BATCH_RATIO_GOAL
        print(
            f"{r.agents:>6}{up / conc:>9.2f}{'ok' if ok1 else 'OVER':>5}{up / seq:>8.2f}"
            f"{pods_ratio}{up / r.pods * 1000:>11.1f}{batch / r.pods * 1000:>17.2f}"
            f"{up / batch:>13.1f}{'ok' if ok2 else 'OVER':>5}"
        )
        verdicts.append(
            f"target up <= {UP_RATIO_GOAL}x the plugins floor at {r.agents} agents: "
            f"{up / conc:.2f}x, {'ok' if ok1 else 'OVER TARGET'}; up per pod <= "
            f"{BATCH_RATIO_GOAL:.0f}x the ip -batch floor: {up / batch:.1f}x, "
            f"{'ok' if ok2 else 'OVER TARGET'}"
        )
    print()
    for line in verdicts:
        print(line)


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--sizes: {text!r} is not a list of numbers") from exc
    if not sizes or any(not 1 <= s <= 200 for s in sizes):
        raise argparse.ArgumentTypeError("--sizes: numbers of agents from 1 to 200")
    return sizes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.plugins_floor")
    parser.add_argument("--sizes", type=_sizes, default=[10, 100], help="agents, e.g. 10,100")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pods-per-agent", type=int, default=10)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.plugins_floor: run as root (namespaces)", file=sys.stderr)
        return 2
    if shutil.which("ip") is None or not os.path.exists(os.path.join(CNI_BIN, "macvlan")):
        print("bench.plugins_floor: needs iproute2 and the CNI plugins in /usr/lib/cni",
              file=sys.stderr)  # fmt: skip
        return 2
    from multihome.lab.forkpool import attach_workers

    workers = attach_workers()
    print(machine())
    print(code())
    results: list[SizeResult] = []
    started = time.monotonic()
    with state_dir("mh-bench-pfloor-") as env, tempfile.TemporaryDirectory() as tmp:
        try:
            for agents in args.sizes:
                results.append(
                    measure(agents, args.pods_per_agent, args.rounds, workers, env, Path(tmp))
                )
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            print(f"bench.plugins_floor: FAILED: {exc}", file=sys.stderr)
            if results:
                report(results, args.rounds, args.pods_per_agent)
            return 1
    report(results, args.rounds, args.pods_per_agent)
    print(f"bench time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
