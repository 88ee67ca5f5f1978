"""Benchmark: ``multihome up`` and ``down`` of generated labs with 10, 50 and 100 agents and
10 pods per agent, side by side with the floor: the same kernel objects made with ``ip -batch``.

Run as ``python -m bench.scale [--sizes 10,50,100] [--rounds N] [--pods-per-agent K]`` from
the repository root, as root; ``python -m bench scale --sizes 10,50`` keeps the result in
bench/results/scale.txt. Where the time goes inside ``up``: bench.scale_profile.

The lab (``generate``): one server and N agents on VLAN40 (node <-> node, Canal pinned to
ens192, host-gw), each agent with ens224 on VLAN50 (storage) and ens256 on VLAN60 (data);
K Pods per agent (``nodeName``, running ``sleep infinity``), each with two extra networks
after eth0: net1 from one macvlan NAD on ens224 with static IPAM, the address from the
annotation's ``ips``; net2 from a macvlan NAD on ens256 with host-local IPAM, one NAD per
agent with its own range (the usual cure for multus-cni#640: host-local allocates per node).
``multihome validate`` must pass it with no finding before anything is measured.

multihome is measured as a user runs it: the CLI (``.venv/bin/multihome up FILE``, then
``multihome down NAME``) as a subprocess, so Python start-up, loading and planning the file,
building and printing the summary are all in the figures; ``MULTIHOME_STATE_DIR`` is a
fresh temporary directory (on /run when writable, where root's labs live by default). While
``up`` runs, the memory of multihome's own processes is sampled from /proc every 0.1 s: the
sum of the RSS (and PSS) of the ``up`` process, its descendants that are Python, and the
sandbox's supervisor; ``wait4`` gives the largest single RSS among ``up`` and the
descendants it waited for (RUSAGE_CHILDREN semantics). The time of each phase comes from
the moment ``up`` printed its progress line (stderr, read as it comes). After ``up`` the
bench checks the lab's status: every pod attached, with eth0, net1 and net2 addressed.

The floor (``floor_build``): in a private sandbox (user + mount + network + PID namespaces,
as bench.lab_primitives makes it: the host is never touched) the same network objects for
the same lab: a bridge per VLAN; a namespace per node with its NICs (veths into the
bridges), node-ip, a default route and the host-gw route to every other node's pod CIDR; a
namespace per pod with eth0 (a veth from its node, ptp's addresses and routes on both
sides), and net1/net2 (macvlans on ens224/ens256 made straight into the pod) with their
addresses. One ``ip -batch`` for the sandbox's own namespace (bridges, all namespaces, node
NICs), then ``ip -n NS -batch`` per node namespace and per pod namespace. Teardown is
destroying the sandbox, as ``multihome down`` does. What the floor does not make (and
multihome does): node mount namespaces and files, the CNI plugin processes and their
result cache, the journal, the pods' processes, the per-pod link-up watcher.

``--dhcp`` (``python -m bench scale_dhcp``: issue 13.2 and 13.6): the seed's style instead,
``generate(..., dhcp=True)``: net1 and net2 are macvlans with DHCP IPAM on VLAN50 and
VLAN60, real dnsmasq on each, the CNI dhcp daemon on every agent. There is no ``ip -batch``
floor (it makes static addresses); after ``up`` the bench runs ``multihome verify NAME -o
json`` as a subprocess (timed, memory sampled as for ``up``) and reports its checks and
those not passed, how many probes it derives (derived in this process from the running
lab: nothing is run), the IPv4 neighbour entries left learnt in the lab's namespaces
afterwards, and the host's ARP and NDP ``table_fulls`` (``ip -s ntable``, read only) before
``up`` and after ``verify``; the targets at 100 agents are ``up`` <= 60 s, ``verify`` <= 20 s
with every check passing, ``down`` <= 5 s, the per-pod ``up`` within 1.3x of the smallest
size's, and ``verify``'s per-pod time no more than the smallest size's times 1.3.

Rounds alternate floor and multihome; before each measurement the bench waits for the
machine to be idle (the kernel frees a removed lab's namespaces in the background). Prints
medians (min-max with several rounds), time per pod, ratios to the floor, memory, phases.
Everything is removed at the end, also on failure; the bench fails if anything is left.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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
from multihome.lab import sandbox

NAMESPACE = "scale"
UP_TARGET = (100, 60.0)  # agents, seconds
DOWN_TARGET = (100, 15.0)
OBJECTS = {
    "netns": "network namespaces",
    "bridge": "bridges",
    "veth": "veth pairs",
    "macvlan": "macvlans",
    "address": "addresses",
    "route": "routes",
}
PHASES = ("sandbox", "segments", "nodes", "hosts", "dhcp servers", "dhcp daemons", "pods")
STEP = re.compile(r"^\s*(?P<name>[a-z][a-z ]*?)(?: \d+/\d+)? \((?P<secs>[0-9.]+) s\)\s*$")


# -- the lab -------------------------------------------------------------------------------
def lab_name(agents: int) -> str:
    return f"scale-{agents}"


def node_ip(index: int) -> str:
    """node-ip of node ``index`` (0: the server, 1..N: the agents)."""
    return f"172.16.40.{10 + index}"


def generate(agents: int, per_agent: int, dhcp: bool = False) -> str:
    """The lab file (Lab, Namespace, NADs, Pods) as multi-document YAML. ``dhcp``: the
    seed's style instead, both extra networks macvlan with DHCP IPAM (dnsmasq on VLAN50
    and VLAN60, the CNI dhcp daemon on every agent)."""
    if not 1 <= agents <= 200 or not 1 <= per_agent <= 200:
        raise ValueError("1..200 agents with 1..200 pods each")
    nodes: list[dict[str, Any]] = [
        {
            "name": "scale-cpl-1",
            "role": "server",
            "nics": [{"name": "ens192", "network": "vlan40", "address": node_ip(0)}],
        }
    ]
    for i in range(1, agents + 1):
        nodes.append(
            {
                "name": f"scale-wrk-{i}",
                "role": "agent",
                "nodeIP": node_ip(i),
                "nics": [
                    {"name": "ens192", "network": "vlan40", "address": node_ip(i)},
                    {"name": "ens224", "network": "vlan50"},
                    {"name": "ens256", "network": "vlan60"},
                ],
            }
        )
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "multihome.dev/v1alpha1",
            "kind": "Lab",
            "metadata": {"name": lab_name(agents)},
            "spec": {
                "networks": [
                    {
                        "name": "vlan40",
                        "vlan": 40,
                        "subnet": "172.16.40.0/24",
                        "gateway": "172.16.40.1",
                    },
                    {"name": "vlan50", "vlan": 50, "subnet": "10.50.0.0/16", **_dhcp(50, dhcp)},
                    {"name": "vlan60", "vlan": 60, "subnet": "10.60.0.0/16", **_dhcp(60, dhcp)},
                ],
                "nodes": nodes,
                "cluster": {
                    "distribution": "rke2",
                    "version": "v1.30.0+rke2r1" if dhcp else "v1.25.9+rke2r1",
                    "cni": ["multus", "canal"],
                    "canal": {"iface": "ens192", "backend": "host-gw"},
                },
            },
        },
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
        _nad(
            "storage-static",
            {
                "type": "macvlan",
                "master": "ens224",
                "mode": "bridge",
                "capabilities": {"ips": True},
                "ipam": {"type": "static"},
            },
        ),
    ]
    if dhcp:
        docs.extend(_dhcp_pods(agents, per_agent))
        return yaml.safe_dump_all(docs, sort_keys=False, width=200)
    for i in range(1, agents + 1):
        ipam = {
            "type": "host-local",
            "ranges": [
                [{"subnet": "10.60.0.0/16", "rangeStart": f"10.60.{i}.10",
                  "rangeEnd": f"10.60.{i}.250"}]
            ],
        }  # fmt: skip
        docs.append(
            _nad(
                f"data-{i}", {"type": "macvlan", "master": "ens256", "mode": "bridge", "ipam": ipam}
            )
        )
    for i in range(1, agents + 1):
        for k in range(per_agent):
            networks = [
                {"name": "storage-static", "ips": [f"10.50.{i}.{10 + k}/16"]},
                {"name": f"data-{i}"},
            ]
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": f"app-{i}-{k}",
                        "namespace": NAMESPACE,
                        "annotations": {"k8s.v1.cni.cncf.io/networks": json.dumps(networks)},
                    },
                    "spec": {
                        "nodeName": f"scale-wrk-{i}",
                        "containers": [
                            {"name": "app", "image": "busybox", "command": ["sleep", "infinity"]}
                        ],
                    },
                }
            )
    return yaml.safe_dump_all(docs, sort_keys=False, width=200)


def _dhcp(vlan: int, on: bool) -> dict[str, Any]:
    if not on:
        return {}
    dhcp = {"range": f"10.{vlan}.1.1-10.{vlan}.200.254", "leaseTime": "12h", "router": False}
    return {"dhcp": dhcp}


def _dhcp_pods(agents: int, per_agent: int) -> list[dict[str, Any]]:
    """The seed's style: two macvlan NADs with DHCP IPAM, every pod on both."""
    ipam = {"type": "dhcp"}
    docs = [
        _nad(name, {"type": "macvlan", "master": master, "mode": "bridge", "ipam": ipam})
        for name, master in (("storage-dhcp", "ens224"), ("data-dhcp", "ens256"))
    ]
    for i in range(1, agents + 1):
        for k in range(per_agent):
            docs.append(
                {
                    "apiVersion": "v1",
                    "kind": "Pod",
                    "metadata": {
                        "name": f"app-{i}-{k}",
                        "namespace": NAMESPACE,
                        "annotations": {"k8s.v1.cni.cncf.io/networks": "storage-dhcp,data-dhcp"},
                    },
                    "spec": {
                        "nodeName": f"scale-wrk-{i}",
                        "containers": [
                            {"name": "app", "image": "busybox", "command": ["sleep", "infinity"]}
                        ],
                    },
                }
            )
    return docs


def _nad(name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"config": json.dumps({"cniVersion": "0.3.1", **config})},
    }


# -- the floor: the same kernel objects with ip -batch -------------------------------------
def _ip_batch(lines: list[str], netns: str | None = None) -> None:
    argv = ["ip", *(["-n", netns] if netns else []), "-batch", "-"]
    done = subprocess.run(
        argv, input="\n".join(lines) + "\n", text=True, capture_output=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: {done.stderr.strip()}")


def floor_build(agents: int, per_agent: int) -> dict[str, float]:
    """Inside a sandbox: make the lab's network objects; returns the seconds it took and the
    count of each kind of object."""
    nodes = range(agents + 1)  # 0: the server
    nics = {0: ["ens192"], **{j: ["ens192", "ens224", "ens256"] for j in range(1, agents + 1)}}
    bridge = {"ens192": "br40", "ens224": "br50", "ens256": "br60"}
    pods = {j: range(per_agent if j else 0) for j in nodes}
    count = dict.fromkeys(("netns", "bridge", "veth", "macvlan", "address", "route"), 0)
    t0 = time.perf_counter()
    lines = []
    for br in ("br40", "br50", "br60"):
        lines += [f"link add {br} type bridge", f"link set {br} up"]
        count["bridge"] += 1
    for j in nodes:
        lines.append(f"netns add n{j}")
        lines += [f"netns add p{j}-{k}" for k in pods[j]]
        count["netns"] += 1 + len(pods[j])
        for nic in nics[j]:
            port = f"s{j}-{nic}"
            lines += [
                f"link add {port} mtu 1500 type veth peer name {nic} mtu 1500 netns n{j}",
                f"link set {port} master {bridge[nic]} up",
            ]
            count["veth"] += 1
    _ip_batch(lines)
    for j in nodes:
        lines = ["link set lo up"]
        lines += [f"link set {nic} up" for nic in nics[j]]
        lines += [
            f"addr add {node_ip(j)}/24 dev ens192",
            "route add default via 172.16.40.1 dev ens192",
        ]
        lines += [f"route add 10.42.{m}.0/24 via {node_ip(m)} dev ens192" for m in nodes if m != j]
        count["address"] += 1
        count["route"] += 1 + agents
        for k in pods[j]:
            pod = f"p{j}-{k}"
            lines += [
                f"link add veth{k} mtu 1450 type veth peer name eth0 mtu 1450 netns {pod}",
                f"link set veth{k} up",
                f"addr add 10.42.{j}.1/32 dev veth{k}",
                f"route add 10.42.{j}.{k + 2}/32 dev veth{k}",
                f"link add link ens224 name net1 netns {pod} type macvlan mode bridge",
                f"link add link ens256 name net2 netns {pod} type macvlan mode bridge",
            ]
            count["veth"] += 1
            count["macvlan"] += 2
            count["address"] += 1
            count["route"] += 1
        _ip_batch(lines, f"n{j}")
    for j in nodes:
        for k in pods[j]:
            ip = f"10.42.{j}.{k + 2}"
            _ip_batch(
                [
                    "link set lo up",
                    "link set eth0 up",
                    f"addr add {ip}/24 dev eth0 noprefixroute",
                    f"route add 10.42.{j}.1/32 dev eth0 scope link src {ip}",
                    f"route add 10.42.{j}.0/24 via 10.42.{j}.1 dev eth0 src {ip}",
                    f"route add default via 10.42.{j}.1 dev eth0",
                    "link set net1 up",
                    f"addr add 10.50.{j}.{10 + k}/16 dev net1",
                    "link set net2 up",
                    f"addr add 10.60.{j}.{10 + k}/16 dev net2",
                ],
                f"p{j}-{k}",
            )
            count["address"] += 3
            count["route"] += 3
    return {"seconds": time.perf_counter() - t0, **{k: float(v) for k, v in count.items()}}


@dataclass
class FloorRound:
    create: float
    build: float
    destroy: float
    objects: dict[str, int]

    @property
    def total(self) -> float:
        return self.create + self.build + self.destroy


def floor_round(agents: int, per_agent: int) -> FloorRound:
    scratch = tempfile.mkdtemp(prefix="mh-bench-floor-")
    try:
        t0 = time.perf_counter()
        sb = sandbox.create("bench-floor", scratch)
        t1 = time.perf_counter()
        try:
            made = sb.call(floor_build, agents, per_agent)
        finally:
            t2 = time.perf_counter()
            sb.destroy()
        t3 = time.perf_counter()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    objects = {k: int(v) for k, v in made.items() if k != "seconds"}
    return FloorRound(t1 - t0, made["seconds"], t3 - t2, objects)


# -- multihome -----------------------------------------------------------------------------
@dataclass
class LabRound:
    up: Run
    down: Run
    phases: dict[str, float]  # step of up -> seconds it took (see _phase_times)
    elapsed: float | None  # what up reports (plan built -> last pod attached)
    verify: Run | None = None  # multihome verify NAME -o json (--verify)
    checks: int = 0  # verify's checks, and how many did not pass
    failed: int = 0
    probes: int = 0  # the probes verify derives (run MAX_PROBES_AT_ONCE at a time)
    learnt: int = -1  # IPv4 neighbour entries the kernel learnt in the lab, after verify
    fulls: int = 0  # the host's ARP + NDP table_fulls during up and verify


@dataclass
class SizeResult:
    agents: int
    pods: int
    floors: list[FloorRound] = field(default_factory=list)
    labs: list[LabRound] = field(default_factory=list)
    validate_s: float = 0.0
    file_kib: float = 0.0


def _phase_times(stamped: list[tuple[float, str]], wall: float) -> dict[str, float]:
    """Seconds spent in each step of up, from its progress lines (stderr): ``start``
    (before the first step: Python start-up, imports, loading and planning the file), each
    step, and ``end`` (after the last step: status written, summary printed). up prints a
    step when it ends, with its duration (``  nodes (0.09 s)``); an older up printed each
    step's name as it began and ``pod NS/NAME`` per pod, which is read too."""
    found: dict[str, float] = {}
    ended = [(at, m) for at, line in stamped if (m := STEP.match(line))]
    if ended:
        for _, m in ended:
            found[m["name"]] = found.get(m["name"], 0.0) + float(m["secs"])
        found["start"] = ended[0][0] - float(ended[0][1]["secs"])
        found["end"] = wall - ended[-1][0]
        return found
    begun = [
        (at, line.strip())
        for at, line in stamped
        if line.strip() in PHASES or line.strip().startswith("pod ")
    ]
    steps = [(at, name) for at, name in begun if not name.startswith("pod ")]
    if not steps:
        return found
    last = max(at for at, _ in begun)
    for (at, name), nxt in zip(steps, [*steps[1:], (last, "")], strict=True):
        found[name] = nxt[0] - at
    found["start"] = steps[0][0]
    found["end"] = wall - last
    return found


def _check_status(env: dict[str, str], lab: str, pods: int) -> None:
    path = Path(env["MULTIHOME_STATE_DIR"]) / lab / "status.json"
    status = json.loads(path.read_text())
    got = status["pods"]
    if len(got) != pods or status.get("pending"):
        raise RuntimeError(
            f"{lab}: {len(got)} pods attached of {pods}, pending {status['pending']}"
        )
    for pod in got:
        nets = pod.get("network_status") or []
        names = [n.get("interface") for n in nets]
        if names != ["eth0", "net1", "net2"] or not all(n.get("ips") for n in nets):
            raise RuntimeError(f"{lab}: pod {pod['name']}: network-status {nets}")


def lab_round(
    path: Path, env: dict[str, str], agents: int, pods: int, verify: bool = False
) -> LabRound:
    lab = lab_name(agents)
    fulls = _table_fulls()
    up = run(
        [MULTIHOME, "up", str(path)], env, sample_lab=lab, stamp_stderr=True, timeout=900
    ).check()
    checked: Run | None = None
    counts = {"checks": 0, "failed": 0, "probes": 0, "learnt": -1}
    try:
        _check_status(env, lab, pods)
        if verify:
            counts["probes"] = _probes(env, lab)
            checked = run([MULTIHOME, "verify", lab, "-o", "json"], env, sample_lab=lab)
            report = json.loads(checked.stdout or "{}")
            if checked.code not in (0, 1) or "checks" not in report:  # it could not run
                said = (checked.stderr or checked.stdout).strip().splitlines()[-1:]
                print(f"  verify {lab} exited {checked.code}: {' '.join(said)}", flush=True)
                counts["failed"] = -1
            else:
                counts["checks"] = len(report["checks"])
                counts["failed"] = sum(1 for c in report["checks"] if c["status"] != "pass")
            counts["learnt"] = _learnt(env, lab)
    finally:
        down = run([MULTIHOME, "down", lab], env, timeout=300).check()
    if found := leftovers(env, lab, [up.token]):
        raise RuntimeError(f"down left: {', '.join(found)}")
    elapsed = None
    for line in up.stdout.splitlines():
        if " up in " in line:
            elapsed = float(line.split(" up in ")[1].split()[0])
    return LabRound(
        up,
        down,
        _phase_times(up.stamped, up.wall),
        elapsed,
        checked,
        fulls=_table_fulls() - fulls,
        **counts,
    )


def _table_fulls() -> int:
    from bench.neighbours import table_stats

    return sum(t.get("table_fulls", 0) for t in table_stats().values())


@contextlib.contextmanager
def _state(env: dict[str, str]) -> Iterator[None]:
    """This process reads the labs of ``env``'s state dir (for multihome's API calls)."""
    saved = os.environ.get("MULTIHOME_STATE_DIR")
    os.environ["MULTIHOME_STATE_DIR"] = env["MULTIHOME_STATE_DIR"]
    try:
        yield
    finally:
        if saved is None:
            del os.environ["MULTIHOME_STATE_DIR"]
        else:
            os.environ["MULTIHOME_STATE_DIR"] = saved


def _probes(env: dict[str, str], lab: str) -> int:
    """How many probes verify derives for the running lab (derived only, nothing run)."""
    from multihome import verify
    from multihome.verify.checks import FAMILIES
    from multihome.verify.collect import Work

    with _state(env):
        ctx, _ = verify.load(lab)
    work = Work(bridges=tuple(n.bridge for n in ctx.lab.networks.values()))
    for derive in FAMILIES:
        derive(ctx, work)
    return len(work.probes)


def _learnt(env: dict[str, str], lab: str) -> int:
    from bench.neighbours import _learnt_and_permanent

    with _state(env):
        return _learnt_and_permanent(lab)[0]


def measure(
    agents: int,
    per_agent: int,
    rounds: int,
    env: dict[str, str],
    tmp: Path,
    dhcp: bool = False,
    verify: bool = False,
) -> SizeResult:
    pods = agents * per_agent
    result = SizeResult(agents, pods)
    path = tmp / f"{lab_name(agents)}.yaml"
    path.write_text(generate(agents, per_agent, dhcp=dhcp))
    result.file_kib = path.stat().st_size / 1024
    checked = run([MULTIHOME, "validate", str(path), "-o", "json"], env)
    report = json.loads(checked.stdout or "{}")
    if checked.code != 0 or report.get("findings"):
        raise RuntimeError(f"validate {path}: exit {checked.code}, {report.get('findings')}")
    result.validate_s = checked.wall
    for r in range(rounds):
        if not dhcp:  # the floor makes static addresses: no DHCP floor to compare with
            settle()
            result.floors.append(floor_round(agents, per_agent))
        settle()
        result.labs.append(lab_round(path, env, agents, pods, verify))
        one = result.labs[-1]
        floor = f"floor {result.floors[-1].total:.2f} s, " if result.floors else ""
        verified = (
            f", verify {one.verify.wall:.2f} s ({one.checks} checks, {one.failed} not passed)"
            if one.verify
            else ""
        )
        print(
            f"  {agents} agents, round {r + 1}/{rounds}: {floor}"
            f"up {one.up.wall:.2f} s, down {one.down.wall:.2f} s{verified}",
            flush=True,
        )
    return result


# -- report --------------------------------------------------------------------------------
def _stats(values: list[float]) -> Stats:
    return Stats(list(values))


def report(results: list[SizeResult], rounds: int, per_agent: int, dhcp: bool = False) -> None:
    if dhcp:
        print(
            f"scale, the seed's style: 1 server + N agents, {per_agent} pods per agent (Pods "
            "with nodeName, sleep infinity), each pod eth0 (Canal: calico + host-local) + "
            "net1 and net2 (macvlan + DHCP IPAM: the CNI dhcp daemon on every agent, "
            "dnsmasq on VLAN50 and VLAN60: a real lease each)"
        )
    else:
        print(
            f"scale: 1 server + N agents, {per_agent} pods per agent (Pods with nodeName, "
            "sleep infinity), each pod eth0 (Canal: calico + host-local) + net1 (macvlan, "
            "static IPAM from the annotation's ips) + net2 (macvlan, host-local, a NAD per "
            "agent)"
        )
    floor = "; floor: ip -batch in a private sandbox" if not dhcp else " (no ip -batch floor)"
    print(
        f"multihome measured through the CLI (subprocess: {MULTIHOME} up FILE / verify NAME / "
        f"down NAME), {rounds} round(s) per size, median (min-max){floor}"
    )
    if dhcp:
        _report_dhcp(results)
        return
    print()
    print("wall time, s")
    head = (
        f"{'agents':>6}{'pods':>6}  {'up':>22}{'down':>22}  {'floor build':>22}"
        f"{'floor destroy':>16}{'floor total':>14}"
    )
    print(head)
    for r in results:
        up = _stats([x.up.wall for x in r.labs])
        down = _stats([x.down.wall for x in r.labs])
        fb = _stats([f.build for f in r.floors])
        fd = _stats([f.destroy for f in r.floors])
        ft = _stats([f.total for f in r.floors])
        print(
            f"{r.agents:>6}{r.pods:>6}  {up.fmt():>22}{down.fmt():>22}  {fb.fmt():>22}"
            f"{fd.median:>16.2f}{ft.median:>14.2f}"
        )
    print()
    print("per pod (median wall / pods, ms) and ratio to the smallest size; multihome / floor")
    print(
        f"{'agents':>6}{'up/pod':>9}{'x':>6}{'down/pod':>10}{'x':>6}{'floor/pod':>11}"
        f"{'up/floor build':>16}{'(up+down)/floor total':>23}"
    )
    base: tuple[float, float] | None = None
    for r in results:
        up_s = statistics.median(x.up.wall for x in r.labs)
        down_s = statistics.median(x.down.wall for x in r.labs)
        build_s = statistics.median(f.build for f in r.floors)
        total_s = statistics.median(f.total for f in r.floors)
        per_up, per_down = up_s / r.pods * 1000, down_s / r.pods * 1000
        base = base or (per_up, per_down)
        print(
            f"{r.agents:>6}{per_up:>9.1f}{per_up / base[0]:>6.2f}{per_down:>10.2f}"
            f"{per_down / base[1]:>6.2f}{build_s / r.pods * 1000:>11.2f}{up_s / build_s:>16.1f}"
            f"{(up_s + down_s) / total_s:>23.1f}"
        )
    print()
    print(
        "memory of multihome's own processes during up, MiB (peak of the sampled sum over "
        "up + its Python descendants + the sandbox supervisor; wait4 maxrss: the largest "
        "single process up waited for)"
    )
    print(
        f"{'agents':>6}{'sum RSS':>10}{'sum PSS':>10}{'procs':>7}{'maxrss':>9}"
        f"{'CPU up s':>10}{'CPU down s':>12}{'samples':>9}"
    )
    for r in results:

        def med(get: Callable[[LabRound], float], labs: list[LabRound] = r.labs) -> float:
            return statistics.median(get(x) for x in labs)

        print(
            f"{r.agents:>6}{med(lambda x: x.up.peak_rss_kib) / 1024:>10.1f}"
            f"{med(lambda x: x.up.peak_pss_kib) / 1024:>10.1f}"
            f"{med(lambda x: x.up.peak_procs):>7.0f}{med(lambda x: x.up.maxrss_kib) / 1024:>9.1f}"
            f"{med(lambda x: x.up.cpu):>10.2f}{med(lambda x: x.down.cpu):>12.2f}"
            f"{med(lambda x: x.up.samples):>9.0f}"
        )
    print()
    print(
        "where up's time goes: median s per step, from up's progress lines (start: Python "
        "start-up, imports, loading + planning the file; end: status written, summary "
        "printed; reported: up's own 'up in' figure)"
    )
    cols = ["start", *PHASES, "end"]
    short = {"dhcp servers": "dhcp-srv", "dhcp daemons": "dhcp-dmn"}
    print(
        f"{'agents':>6}"
        + "".join(f"{short.get(c, c):>10}" for c in cols)
        + f"{'total':>9}{'reported':>10}"
    )
    for r in results:
        cells = ""
        for c in cols:
            vals = [x.phases[c] for x in r.labs if c in x.phases]
            cells += f"{statistics.median(vals):>10.2f}" if vals else f"{'-':>10}"
        rep = [x.elapsed for x in r.labs if x.elapsed is not None]
        reported = f"{statistics.median(rep):>10.2f}" if rep else f"{'-':>10}"
        total = statistics.median(x.up.wall for x in r.labs)
        print(f"{r.agents:>6}{cells}{total:>9.2f}{reported}")
    print(
        "  nodes: every node's namespaces, NICs, files and Canal routes; pods: every pod's "
        "namespace, attachment (CNI), process"
    )
    if results:
        biggest = results[-1]
        objects = biggest.floors[0].objects
        print(
            f"floor objects at {biggest.agents} agents: "
            + ", ".join(f"{v} {OBJECTS[k]}" for k, v in objects.items())
        )
        print(
            "lab files: "
            + ", ".join(f"{r.agents} agents {r.file_kib:.0f} KiB" for r in results)
            + "; validate (whole command): "
            + ", ".join(f"{r.validate_s:.2f} s" for r in results)
        )
        checks: list[tuple[tuple[int, float], str, Callable[[LabRound], float]]] = [
            (UP_TARGET, "up", lambda x: x.up.wall),
            (DOWN_TARGET, "down", lambda x: x.down.wall),
        ]
        for (agents, target), label, get in checks:
            at = [r for r in results if r.agents == agents and r.pods == agents * 10]
            if at:
                value = statistics.median(get(x) for x in at[0].labs)
                verdict = "ok" if value <= target else "OVER TARGET"
                print(f"target {label} <= {target:.0f} s at {agents} agents / {agents * 10} pods: "
                      f"{value:.1f} s, {verdict}")  # fmt: skip
            else:
                print(f"target {label} <= {target:.0f} s at {agents} agents: not measured")


DHCP_TARGETS = {"up": 60.0, "verify": 20.0, "down": 5.0}  # at 100 agents / 1000 pods
FLAT = 1.3  # per-pod cost, the largest size over the smallest


def _report_dhcp(results: list[SizeResult]) -> None:
    """Issue 13.2 and 13.6: up, verify (every check passing), down and memory per size; the
    per-pod cost from the smallest size to the largest; verify's probes, the neighbour
    entries left learnt and the host's table_fulls."""

    def med(r: SizeResult, get: Callable[[LabRound], float]) -> float:
        return statistics.median(get(x) for x in r.labs)

    def verify_s(x: LabRound) -> float:
        return x.verify.wall if x.verify else float("nan")

    print()
    print("wall time, s, median (min-max)")
    print(f"{'agents':>6}{'pods':>6}  {'up':>22}{'verify':>22}{'down':>22}")
    for r in results:
        up = _stats([x.up.wall for x in r.labs])
        ver = _stats([verify_s(x) for x in r.labs])
        down = _stats([x.down.wall for x in r.labs])
        print(f"{r.agents:>6}{r.pods:>6}  {up.fmt():>22}{ver.fmt():>22}{down.fmt():>22}")
    print()
    print(
        "per pod (median wall / pods, ms) and ratio to the smallest size; up's CPU per pod "
        "too (on a shared machine the wall ratio moves with the others' load, the CPU's less)"
    )
    print(
        f"{'agents':>6}{'up/pod':>9}{'x':>6}{'verify/pod':>12}{'x':>6}{'down/pod':>10}{'x':>6}"
        f"{'CPU up/pod':>12}{'x':>6}"
    )
    base: tuple[float, float, float, float] | None = None
    for r in results:
        per = (
            med(r, lambda x: x.up.wall) / r.pods * 1000,
            med(r, verify_s) / r.pods * 1000,
            med(r, lambda x: x.down.wall) / r.pods * 1000,
            med(r, lambda x: x.up.cpu) / r.pods * 1000,
        )
        base = base or per
        print(
            f"{r.agents:>6}{per[0]:>9.1f}{per[0] / base[0]:>6.2f}{per[1]:>12.2f}"
            f"{per[1] / base[1]:>6.2f}{per[2]:>10.2f}{per[2] / base[2]:>6.2f}"
            f"{per[3]:>12.1f}{per[3] / base[3]:>6.2f}"
        )
    print()
    print(
        "verify: checks (not passed), the probes it derives (run 64 at once, each probing "
        "namespace's neighbours flushed after), IPv4 entries left learnt in the lab after "
        "verify, the host's ARP+NDP table_fulls during up + verify"
    )
    print(
        f"{'agents':>6}{'pods':>6}{'checks':>8}{'failed':>8}{'probes':>8}{'probes/pod':>12}"
        f"{'learnt':>8}{'fulls':>7}"
    )
    for r in results:
        x = r.labs[-1]
        print(
            f"{r.agents:>6}{r.pods:>6}{x.checks:>8}{x.failed:>8}{x.probes:>8}"
            f"{x.probes / r.pods:>12.2f}{x.learnt:>8}{max(y.fulls for y in r.labs):>7}"
        )
    print()
    print(
        "memory of multihome's own processes, MiB (peak of the sampled sum over the command "
        "+ its Python descendants + the sandbox supervisor); CPU s of the commands"
    )
    print(
        f"{'agents':>6}{'up RSS':>9}{'up PSS':>9}{'verify RSS':>12}{'verify PSS':>12}"
        f"{'CPU up':>8}{'CPU verify':>12}{'CPU down':>10}"
    )
    for r in results:
        v = [x.verify for x in r.labs if x.verify]
        vr = statistics.median(y.peak_rss_kib for y in v) / 1024 if v else float("nan")
        vp = statistics.median(y.peak_pss_kib for y in v) / 1024 if v else float("nan")
        vc = statistics.median(y.cpu for y in v) if v else float("nan")
        print(
            f"{r.agents:>6}{med(r, lambda x: x.up.peak_rss_kib) / 1024:>9.1f}"
            f"{med(r, lambda x: x.up.peak_pss_kib) / 1024:>9.1f}{vr:>12.1f}{vp:>12.1f}"
            f"{med(r, lambda x: x.up.cpu):>8.2f}{vc:>12.2f}{med(r, lambda x: x.down.cpu):>10.2f}"
        )
    print()
    print("where up's time goes: median s per step (as in the static table)")
    cols = ["start", *PHASES, "end"]
    short = {"dhcp servers": "dhcp-srv", "dhcp daemons": "dhcp-dmn"}
    print(f"{'agents':>6}" + "".join(f"{short.get(c, c):>10}" for c in cols))
    for r in results:
        cells = ""
        for c in cols:
            vals = [x.phases[c] for x in r.labs if c in x.phases]
            cells += f"{statistics.median(vals):>10.2f}" if vals else f"{'-':>10}"
        print(f"{r.agents:>6}{cells}")
    biggest = results[-1] if results else None
    if biggest is None or biggest.agents != 100:
        print("targets at 100 agents / 1000 pods: not measured")
        return
    got = {
        "up": med(biggest, lambda x: x.up.wall),
        "verify": med(biggest, verify_s),
        "down": med(biggest, lambda x: x.down.wall),
    }
    for label, target in DHCP_TARGETS.items():
        verdict = "ok" if got[label] <= target else "OVER TARGET"
        print(f"target {label} <= {target:.0f} s at 100 agents / 1000 pods: {got[label]:.1f} s, "
              f"{verdict}")  # fmt: skip
    failed = max(x.failed for x in biggest.labs)
    said = "ok" if not failed else "verify could not run" if failed < 0 else f"{failed} did not"
    print(f"target every verify check passing: {said}")
    small = results[0]
    ratio = (got["up"] / biggest.pods) / (med(small, lambda x: x.up.wall) / small.pods)
    verdict = "ok" if ratio <= FLAT else "OVER TARGET"
    print(f"target up per pod flat within {FLAT}x from {small.agents} to 100 agents: "
          f"{ratio:.2f}x, {verdict}")  # fmt: skip
    vratio = (got["verify"] / biggest.pods) / (med(small, verify_s) / small.pods)
    verdict = "ok" if vratio <= FLAT else "OVER TARGET"
    print(f"target verify grows no faster than pods ({small.agents} -> 100 agents): per pod "
          f"{vratio:.2f}x, {verdict}")  # fmt: skip


# -- main ----------------------------------------------------------------------------------
def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--sizes: {text!r} is not a list of numbers") from exc
    if not sizes or any(not 1 <= s <= 200 for s in sizes):
        raise argparse.ArgumentTypeError("--sizes: numbers of agents from 1 to 200")
    return sizes


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--sizes", type=_sizes, default=[10, 50, 100], help="agents, e.g. 10,50")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--pods-per-agent", type=int, default=10)
    parser.add_argument(
        "--dhcp",
        action="store_true",
        help="the seed's style: two macvlan + DHCP attachments a pod; also runs verify",
    )
    args = parser.parse_args(argv)
    if shutil.which("ip") is None:
        print("bench.scale: iproute2 (ip) is not installed", file=sys.stderr)
        return 2
    print(machine())
    print(code())
    results = []
    started = time.monotonic()
    with state_dir("mh-bench-scale-") as env, tempfile.TemporaryDirectory() as tmp:
        try:
            for agents in args.sizes:
                results.append(
                    measure(
                        agents,
                        args.pods_per_agent,
                        args.rounds,
                        env,
                        Path(tmp),
                        dhcp=args.dhcp,
                        verify=args.dhcp,
                    )
                )
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            print(f"bench.scale: FAILED: {exc}", file=sys.stderr)
            if results:
                report(results, args.rounds, args.pods_per_agent, args.dhcp)
            return 1
    report(results, args.rounds, args.pods_per_agent, args.dhcp)
    print(f"bench time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
