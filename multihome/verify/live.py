"""``verify --kubeconfig``: the second collector. The lab file says what should be; a real
cluster (or the lab's own API) is read through the Kubernetes API and judged by the same
checks as the lab, into the same ``Report``.

Tiers, each saying on its results which it needs:
- read-only (always): the API's objects (``cluster.read``). They make the running view the
  checks walk (``LabView``: nodes with their InternalIP, the design's pods as the cluster
  runs them, with phase, network-status and the sandbox error of a pod stuck
  ContainerCreating) and feed ``checks.api``. Without exec, a pod's interfaces are what its
  network-status records.
- exec (default; ``--no-exec`` skips it): ``ip addr``/``ip route`` and the probes (ping,
  wget or curl, nc) run in the design's pods through ``pods/exec``, with what the pod's
  image has: a tool it lacks makes the check a skip that says so.
- probes (a later ``--probes``): what needs a node's NICs or a segment's counters (the
  nics, node-ip, dhcp-server and *-segment checks) is a skip here.

Evidence a tier can't gather is written as ``NOT_MEASURED`` text: a check that fails on
it becomes a skip with that reason, never a failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import re
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx2

from multihome.cluster import ClusterError, Objects, read
from multihome.cluster.podexec import Exec, ExecResult
from multihome.cluster.read import SANDBOX_FAILED
from multihome.multus import NETWORK_STATUS_ANNOTATION
from multihome.plan import Plan, PodPlan

from .checks import FAMILIES, Context
from .checks.base import NOT_MEASURED
from .collect import Evidence, Iface, NetnsFacts, Route, RouteTo, Work
from .counters import StreamResult
from .probes import Probe, ProbeResult
from .report import CheckResult, Report
from .view import LabView, MachineView, NetworkView, NicView, PodView, Serves

READ_ONLY, EXEC, PROBES = "read-only", "exec", "probes"
TIERS = {
    "node-address": READ_ONLY,
    "canal-nic": READ_ONLY,
    "nad": READ_ONLY,
    "multus": READ_ONLY,
    "dhcp-daemon": READ_ONLY,
    "longhorn-setting": READ_ONLY,
    "default-route": EXEC,
    "pod-to-pod": EXEC,
    "reach": EXEC,
    "isolation": EXEC,
    "expect": EXEC,
    "longhorn-reach": EXEC,
    "nics": PROBES,
    "dhcp-server": PROBES,
    "node-ip": PROBES,
    "canal-segment": PROBES,
    "longhorn-segment": PROBES,
    "dhcp-lease": PROBES,
}
NEEDS_PROBES = f"{NOT_MEASURED}needs the probes tier: a node's NICs and a segment's counters"
NEEDS_EXEC = f"{NOT_MEASURED}needs exec into the pod: drop --no-exec"
IM_COMPONENT = ("longhorn.io/component", "instance-manager")


@dataclass(frozen=True)
class Target:
    """Where a key of the view (``pod:ns/name``) runs in the cluster."""

    namespace: str
    name: str
    container: str | None


@dataclass
class Live:
    """The view built from the API, and where each of its pods is in the cluster."""

    view: LabView
    pods: dict[str, Target] = field(default_factory=dict)
    """netns key -> the pod's name in the cluster."""


# -- the view -----------------------------------------------------------------------------------


def _nics(nics: Iterable[Any]) -> tuple[NicView, ...]:
    return tuple(
        NicView(c.name, c.network, str(c.address.ip) if c.address is not None else None)
        for c in nics
    )


def _network_status(pod: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    raw = (pod["metadata"].get("annotations") or {}).get(NETWORK_STATUS_ANNOTATION)
    try:
        entries = json.loads(raw) if raw else []
    except json.JSONDecodeError:
        return ()
    return tuple(e for e in entries if isinstance(e, dict)) if isinstance(entries, list) else ()


def _phase(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    if phase != "Pending":
        return phase
    for c in status.get("containerStatuses") or ():
        reason = ((c.get("state") or {}).get("waiting") or {}).get("reason")
        if reason:
            return str(reason)
    return phase


def _sandbox_error(pod: dict[str, Any], events: list[dict[str, Any]]) -> str | None:
    """The newest FailedCreatePodSandBox message of the pod (the CNI plugin's words)."""
    meta = pod["metadata"]
    mine = [
        e
        for e in events
        if e.get("reason") == SANDBOX_FAILED
        and (e.get("involvedObject") or {}).get("name") == meta["name"]
        and (e.get("involvedObject") or {}).get("namespace") == meta.get("namespace")
    ]
    if not mine:
        return None
    newest = max(mine, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return str(newest.get("message") or "")


def _owner_name(pod: dict[str, Any]) -> tuple[str, str] | None:
    for ref in pod["metadata"].get("ownerReferences") or ():
        kind, name = str(ref.get("kind")), str(ref.get("name"))
        if kind == "ReplicaSet":  # a Deployment's: <deployment>-<pod-template-hash>
            return "Deployment", name.rsplit("-", 1)[0]
        return kind, name
    return None


def _match(plan: PodPlan, pods: list[dict[str, Any]], taken: set[str]) -> dict[str, Any] | None:
    """The cluster's pod for a design pod: by name; else a pod of the same workload on the
    design's node (a Deployment's replicas get random names); else, for Longhorn's
    instance-managers, the one of that type on that node (their names hash the image)."""
    free = [
        p
        for p in pods
        if p["metadata"].get("namespace") == plan.namespace and p["metadata"]["uid"] not in taken
    ]
    named = next((p for p in free if p["metadata"]["name"] == plan.name), None)
    if named is not None or plan.owner is None:
        return named
    on_node = [p for p in free if (p.get("spec") or {}).get("nodeName") == plan.node]
    if plan.owner.kind == "Longhorn":
        labels = dict(plan.labels)
        for p in on_node:
            have = p["metadata"].get("labels") or {}
            if have.get(IM_COMPONENT[0]) == IM_COMPONENT[1] and all(
                have.get(k) == v for k, v in labels.items() if k.endswith("-type")
            ):
                return p
        return None
    return next((p for p in on_node if _owner_name(p) == (plan.owner.kind, plan.owner.name)), None)


def _pod_key(pod: dict[str, Any]) -> str:
    return f"pod:{pod['metadata'].get('namespace')}/{pod['metadata']['name']}"


def build_view(plan: Plan, objects: Objects) -> Live:
    """The running view the checks walk, from the design and the cluster's objects."""
    internal = {
        n["metadata"]["name"]: next(
            (
                str(a["address"])
                for a in (n.get("status") or {}).get("addresses") or ()
                if a.get("type") == "InternalIP"
            ),
            None,
        )
        for n in objects.nodes
    }
    nodes = {
        n.name: MachineView(
            n.name, "node", f"node:{n.name}", _nics(n.nics), node_ip=internal[n.name]
        )
        for n in plan.nodes
        if n.name in internal
    }
    hosts = {
        h.name: MachineView(
            h.name,
            "host",
            f"host:{h.name}",
            _nics(h.nics),
            Serves(http=(h.http,) if h.http else (), tcp=h.tcp, udp=h.udp),
        )
        for h in plan.hosts
    }
    networks = {
        n.name: NetworkView(
            n.name,
            n.subnet,
            f"segment:{n.name}",
            str(n.dhcp.server) if n.dhcp else None,
            str(n.dhcp.router) if n.dhcp and n.dhcp.router else None,
        )
        for n in plan.networks
    }
    live = Live(view=LabView(plan.name, True, {}, nodes, hosts, networks, {}, (), source="cluster"))
    taken: set[str] = set()
    pending = []
    for pod in plan.pods:
        if pod.host_network:
            continue
        found = _match(pod, objects.pods, taken)
        if found is None or not (found.get("spec") or {}).get("nodeName"):
            pending.append(pod.ref)
            continue
        taken.add(found["metadata"]["uid"])
        key = _pod_key(found)
        process = pod.process
        serves = Serves(
            http=(process.http,) if process and process.http else (),
            tcp=process.tcp if process else (),
            udp=process.udp if process else (),
        )
        live.view.pods[pod.ref] = PodView(
            namespace=pod.namespace,
            name=pod.name,
            node=str(found["spec"]["nodeName"]),
            netns=key,
            phase=_phase(found),
            error=_sandbox_error(found, objects.events),
            network_status=_network_status(found),
            serves=serves,
        )
        containers = (found.get("spec") or {}).get("containers") or [{}]
        live.pods[key] = Target(pod.namespace, found["metadata"]["name"], containers[0].get("name"))
    live.view = dataclasses.replace(live.view, pending=tuple(pending))
    return live


# -- reading a pod through exec -----------------------------------------------------------------

_LINK = re.compile(r"^\d+:\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>")
_ADDR = re.compile(r"^\s+inet\s+(\S+)")
_MAC = re.compile(r"^\s+link/\S+\s+([0-9a-fA-F:]{17})")


def parse_addr(text: str) -> dict[str, Iface]:
    """``ip addr show`` (iproute2's or busybox's) -> interfaces with their IPv4 addresses."""
    found: dict[str, Iface] = {}
    current: Iface | None = None
    for line in text.splitlines():
        if m := _LINK.match(line):
            current = Iface(m.group(1), None, "UP" in m.group(2).split(","), None, ())
            found[current.name] = current
        elif current is not None and (m := _MAC.match(line)):
            current = dataclasses.replace(current, mac=m.group(1).lower())
            found[current.name] = current
        elif current is not None and (m := _ADDR.match(line)):
            current = dataclasses.replace(current, addresses=(*current.addresses, m.group(1)))
            found[current.name] = current
    return found


def _word(words: list[str], key: str) -> str | None:
    return words[words.index(key) + 1] if key in words[:-1] else None


def parse_routes(text: str) -> tuple[Route, ...]:
    """``ip route show`` -> the main table's routes."""
    routes = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] in ("broadcast", "local", "unreachable", "prohibit"):
            continue
        routes.append(Route(words[0], _word(words, "via"), _word(words, "dev")))
    return tuple(routes)


def parse_route_get(text: str) -> RouteTo | None:
    words = text.split()
    if "dev" not in words:
        return None
    return RouteTo(_word(words, "dev"), _word(words, "via"), _word(words, "src"))


def _status_facts(view: PodView) -> NetnsFacts:
    """A pod's interfaces as its network-status records them (no exec)."""
    ifaces = {
        str(e.get("interface")): Iface(
            str(e.get("interface")),
            e.get("mac"),
            True,
            "network-status",
            tuple(str(ip) for ip in e.get("ips") or ()),
        )
        for e in view.network_status
        if e.get("interface")
    }
    return NetnsFacts(ifaces=ifaces, origin="network-status")


class Runner(Protocol):
    """What runs a command in a pod: ``podexec.Exec`` (or a test's stand-in)."""

    async def run(
        self, namespace: str, pod: str, command: list[str], container: str | None, timeout: float
    ) -> ExecResult: ...


class PodReader:
    """Runs the collector's commands in the design's pods (a ``Runner``)."""

    def __init__(self, live: Live, runner: Runner) -> None:
        self.live = live
        self.runner = runner

    async def run(self, key: str, command: list[str], timeout: float = 10.0) -> ExecResult:
        t = self.live.pods[key]
        return await self.runner.run(t.namespace, t.name, command, t.container, timeout)

    def _who(self, key: str) -> str:
        t = self.live.pods[key]
        return f"{t.namespace}/{t.name}"

    async def facts(self, key: str) -> NetnsFacts:
        addr, route = await asyncio.gather(
            self.run(key, ["ip", "addr", "show"]), self.run(key, ["ip", "route", "show"])
        )
        for result in (addr, route):
            if result.missing:
                return NetnsFacts(error=f"{NOT_MEASURED}{self._who(key)}'s image has no ip")
            if not result.ok:
                why = result.error or result.stderr.strip() or f"exit code {result.code}"
                return NetnsFacts(error=f"ip in {self._who(key)}: {why}")
        return NetnsFacts(ifaces=parse_addr(addr.stdout), routes=parse_routes(route.stdout))

    async def route(self, key: str, dst: str) -> RouteTo | None:
        result = await self.run(key, ["ip", "route", "get", dst])
        return parse_route_get(result.stdout) if result.ok else None

    async def probe(self, probe: Probe) -> ProbeResult:
        """Up to ``attempts`` tries (one for ``deny``), each waiting whole seconds (what
        ping's and busybox's ``-W`` take): an allowed path that needs a moment (a neighbour
        being resolved, a dead gateway given up on) answers a later try, as in the lab's
        own probes."""
        started = time.monotonic()
        attempts = probe.attempts if probe.want == "allow" else 1
        seconds = max(1, math.ceil(probe.deadline / max(1, attempts)))
        result: ProbeResult | None = None
        for tries in range(1, attempts + 1):
            result = await self._once(probe, seconds, tries, started)
            if result.outcome in ("answered", "refused", "error"):
                break
        assert result is not None
        return result

    async def _once(self, probe: Probe, seconds: int, tries: int, started: float) -> ProbeResult:
        host = f"[{probe.dst}]" if ":" in probe.dst else probe.dst
        port = str(probe.port or 80)
        if probe.proto == "icmp":
            choices = [["ping", "-c", "1", "-W", str(seconds), probe.dst]]
        elif probe.proto == "http":
            url = f"http://{host}:{port}/"
            choices = [
                ["wget", "-q", "-O", "/dev/null", "-T", str(seconds), url],
                ["curl", "-s", "-o", "/dev/null", "-m", str(seconds), url],
            ]
        elif probe.proto == "tcp":
            choices = [["nc", "-z", "-w", str(seconds), probe.dst, port]]
        else:
            return ProbeResult(
                "error", f"{NOT_MEASURED}a {probe.proto} probe needs the probes tier", tries, 0.0
            )
        missing = []
        for argv in choices:
            done = await self.run(probe.netns, argv, timeout=seconds + 5)
            if done.missing:
                missing.append(argv[0])
                continue
            elapsed = time.monotonic() - started
            text = (done.stdout + done.stderr).strip()
            if done.ok:
                return ProbeResult("answered", f"{argv[0]}: answered", tries, elapsed)
            if done.code is None:
                return ProbeResult("error", f"{argv[0]}: {done.error}", tries, elapsed)
            if re.search(r"refused", text, re.IGNORECASE):
                return ProbeResult("refused", f"{argv[0]}: connection refused", tries, elapsed)
            if re.search(r"unreachable", text, re.IGNORECASE):
                return ProbeResult("unreachable", f"{argv[0]}: unreachable", tries, elapsed)
            return ProbeResult("timeout", f"{argv[0]}: no answer in {seconds} s", tries, elapsed)
        tools = " or ".join(missing)
        return ProbeResult(
            "error",
            f"{NOT_MEASURED}the image of {self._who(probe.netns)} has no {tools}",
            tries,
            0.0,
        )


# -- collecting ---------------------------------------------------------------------------------


async def gather(live: Live, work: Work, runner: Runner | None) -> Evidence:
    """The evidence ``work`` asks for that the API and exec can give; the rest as
    ``NOT_MEASURED``."""
    ev = Evidence()
    reader = PodReader(live, runner) if runner is not None else None
    pods = live.view.pods.values()
    by_key = {v.netns: v for v in pods}

    async def facts(key: str) -> tuple[str, NetnsFacts]:
        if key not in live.pods:
            return key, NetnsFacts(error=NEEDS_PROBES)
        if reader is None:
            return key, _status_facts(by_key[key])
        return key, await reader.facts(key)

    async def route(key: str, dst: str) -> tuple[tuple[str, str], RouteTo | None]:
        if reader is None or key not in live.pods:
            return (key, dst), None
        return (key, dst), await reader.route(key, dst)

    async def probe(name: str, p: Probe) -> tuple[str, ProbeResult]:
        if p.netns not in live.pods:
            return name, ProbeResult("error", NEEDS_PROBES, 0, 0.0)
        if reader is None:
            return name, ProbeResult("error", NEEDS_EXEC, 0, 0.0)
        return name, await reader.probe(p)

    found_facts, found_routes, found_probes = await asyncio.gather(
        asyncio.gather(*(facts(k) for k in sorted(work.facts))),
        asyncio.gather(*(route(k, d) for k, d in sorted(work.routes))),
        asyncio.gather(*(probe(n, p) for n, p in work.probes.items())),
    )
    ev.facts = dict(found_facts)
    ev.routes = {k: v for k, v in found_routes if v is not None}
    ev.probes = dict(found_probes)
    ev.streams = {k: StreamResult(0, 0, False, 0.0, NEEDS_PROBES) for k in work.streams}
    return ev


def _tiered(result: CheckResult, exec_: bool) -> CheckResult:
    """The tier a result needs; a failure on evidence this run could not gather is a skip
    with that reason."""
    tier = TIERS.get(result.id)
    if tier is None:  # interfaces, network-status: exec when it ran, else the annotation
        tier = EXEC if exec_ else READ_ONLY
    # a check puts the text in its cause when nothing it measured failed (``unmeasured``);
    # one with no cause of its own (a namespace it could not read) in its evidence
    texts = (result.cause,) if result.cause else result.evidence
    unmeasured = next((t for t in texts if NOT_MEASURED in t), None)
    if result.status == "fail" and unmeasured is not None:
        reason = unmeasured[unmeasured.index(NOT_MEASURED) + len(NOT_MEASURED) :]
        reason = re.split(r", | \(", reason, maxsplit=1)[0]  # the line goes on after it
        return dataclasses.replace(result, status="skip", cause=reason, tier=tier)
    return dataclasses.replace(result, tier=tier)


async def _run(
    plan: Plan,
    kubeconfig: str,
    context: str | None,
    exec_: bool,
    transport: httpx2.AsyncBaseTransport | None,
    runner: Runner | None,
) -> Report:
    started = time.monotonic()
    config = read.load_config(kubeconfig, context)
    client = read.connect(kubeconfig, context, transport)
    try:
        objects = await read.read_objects(client)
    finally:
        await client.close()
    read_done = time.monotonic()
    live = build_view(plan, objects)
    ctx = Context(plan, live.view)
    work = Work()
    judges = [derive(ctx, work) for derive in FAMILIES]
    if exec_ and runner is None:
        async with Exec(config, context) as ws:
            ev = await gather(live, work, ws)
    else:
        ev = await gather(live, work, runner if exec_ else None)
    ev.cluster = objects
    collected = time.monotonic()
    results = [_tiered(r, exec_) for judge in judges for r in judge(ev)]
    done = time.monotonic()
    timings = {
        "read": read_done - started,
        "collect": collected - read_done,
        "judge": done - collected,
    }
    return Report(
        lab=f"{plan.name} (cluster)", checks=tuple(results), elapsed=done - started, timings=timings
    )


def run(
    plan: Plan,
    kubeconfig: str,
    context: str | None = None,
    *,
    exec_: bool = True,
    transport: httpx2.AsyncBaseTransport | None = None,
    runner: Runner | None = None,
) -> Report:
    """Verify the cluster of ``kubeconfig`` against ``plan``; raises ``ClusterError`` when
    it can't be read. ``transport`` (the reads) and ``runner`` (exec): tests' stand-ins."""
    return asyncio.run(_run(plan, kubeconfig, context, exec_, transport, runner))


__all__ = ["ClusterError", "build_view", "run"]
