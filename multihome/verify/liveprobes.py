"""The probes tier of ``verify --kubeconfig`` (``--probes``): what the checks ask of a node
or a segment, measured from the probes' own pods (``cluster.probes``). A node's key
(``node:NAME``) is its host-network DaemonSet pod: ``ip`` there reads the node's NICs and
routes, the node-ip probes leave from there. A design pod's key has a probe pod standing in
for it (same node, same NADs): its probes and routes when the design pod can't run them
(no exec, or a tool its image lacks). A stream is ICMP echoes of the stream's size from
the source's probe pod, with every node's NIC byte counters (``/sys/class/net/NIC/
statistics``) read before and after: a segment's growth is what the nodes' NICs on it sent,
as the lab's switch counts what its ports received."""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from dataclasses import dataclass, field

from multihome.cluster.probes import CONTAINER, Mirror, Placed
from multihome.plan import Plan, PodPlan

from .checks.base import NOT_MEASURED, unmeasured
from .counters import Stream, StreamResult
from .liveview import Live, Target
from .podread import PodReader, Runner
from .probes import Probe, ProbeResult

MIRROR = "probe:"
"""A probe pod's key: ``probe:`` and the key of the design pod it stands in for."""
ECHO_SIZE = 60000
"""Bytes of an echo's payload: a few echoes make a stream (fragmented on the wire)."""
STATS = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets")
_COUNTERS = (
    'for n; do for f in rx_bytes tx_bytes rx_packets tx_packets; do printf "%s %s %s\\n" '
    '"$n" "$f" "$(cat /sys/class/net/$n/statistics/$f 2>/dev/null || echo -)"; done; done'
)
_PING = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")


_CONNECT = 'exec 3<>"/dev/tcp/$0/$1"'
_GET = _CONNECT + ' && printf "GET / HTTP/1.0\\r\\nHost: %s\\r\\n\\r\\n" "$0" >&3 && head -c 64 <&3'


class ProbeReader(PodReader):
    """A ``PodReader`` for the probes' own pods: a TCP or HTTP probe the image has no
    ``nc``, ``wget`` or ``curl`` for is made with bash's ``/dev/tcp`` (the default image
    has bash)."""

    async def _once(self, probe: Probe, seconds: int, tries: int, started: float) -> ProbeResult:
        first = await super()._once(probe, seconds, tries, started)
        if probe.proto not in ("tcp", "http") or not unmeasured(first.detail):
            return first
        script = _GET if probe.proto == "http" else _CONNECT
        argv = ["timeout", str(seconds), "bash", "-c", script, probe.dst, str(probe.port or 80)]
        done = await self.run(probe.netns, argv, timeout=seconds + 5)
        elapsed = time.monotonic() - started
        if done.missing:
            return first
        text = (done.stdout + done.stderr).strip()
        if done.ok and (probe.proto == "tcp" or done.stdout.startswith("HTTP/")):
            said = done.stdout.splitlines()[0] if probe.proto == "http" else "connected"
            return ProbeResult("answered", f"bash /dev/tcp: {said}", tries, elapsed)
        if done.code is None:
            return ProbeResult("error", f"bash /dev/tcp: {done.error}", tries, elapsed)
        if re.search(r"refused", text, re.IGNORECASE):
            return ProbeResult("refused", "bash /dev/tcp: connection refused", tries, elapsed)
        if re.search(r"unreachable|no route", text, re.IGNORECASE):
            return ProbeResult("unreachable", "bash /dev/tcp: unreachable", tries, elapsed)
        said = "connected, no HTTP answer" if done.ok else f"no answer in {seconds} s"
        return ProbeResult("timeout", f"bash /dev/tcp: {said}", tries, elapsed)


def segment(network: str) -> str:
    """A network's segment key in the cluster's view (``liveview``: ``segment:NAME``)."""
    return f"segment:{network}"


def selection(pod: PodPlan) -> str | None:
    """The networks annotation of a probe pod for ``pod``: its NADs with its interface
    names and default-route, without ``mac``. None: no NAD, or one it asks ``ips`` of (a
    static address the design pod holds: a second pod can't have it, and a probe pod
    without that interface would route as the design pod does not)."""
    if any(i.ips for i in pod.interfaces if not i.cluster):
        return None
    entries: list[dict[str, object]] = []
    for iface in pod.interfaces:
        if iface.cluster:
            continue
        namespace, _, name = iface.network.rpartition("/")
        entry: dict[str, object] = {
            "name": name,
            "namespace": namespace or pod.namespace,
            "interface": iface.name,
        }
        if iface.default_route is not None:
            entry["default-route"] = list(iface.default_route)
        entries.append(entry)
    return json.dumps(entries, separators=(",", ":")) if entries else None


def mirrors(plan: Plan, live: Live) -> dict[str, Mirror]:
    """Probe pods to make: one per running design pod that asks no NAD for a static
    address, by name (``probe-N``)."""
    found: dict[str, Mirror] = {}
    for pod in plan.pods:
        view = live.view.pods.get(pod.ref)
        if pod.host_network or view is None or not view.running:
            continue
        if any(i.ips for i in pod.interfaces if not i.cluster):
            continue  # no probe pod can stand in for it (``selection``)
        found[f"probe-{len(found) + 1}"] = Mirror(view.netns, view.node, selection(pod))
    return found


@dataclass
class ProbePods:
    """Where the probes' keys run: node keys and probe-pod keys -> their pods."""

    live: Live
    mirror_of: dict[str, str] = field(default_factory=dict)
    """A design pod's key -> its probe pod's key."""
    problems: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, live: Live, namespace: str, placed: Placed, made: dict[str, Mirror]) -> ProbePods:
        own = Live(view=live.view)
        found = cls(own, problems=dict(placed.problems))
        for node, pod in placed.nodes.items():
            own.pods[f"node:{node}"] = Target(namespace, pod, CONTAINER)
        for name, mirror in made.items():
            if name in placed.mirrors:
                key = MIRROR + mirror.key
                own.pods[key] = Target(namespace, name, CONTAINER)
                found.mirror_of[mirror.key] = key
        return found

    def why_not(self, key: str) -> str:
        """Why ``key`` has no probe pod, as NOT_MEASURED text."""
        name = key.split(":", 1)[-1]
        if key.startswith("host:"):
            return f"{NOT_MEASURED}host {name} is outside the cluster: no probe pod runs there"
        said = self.problems.get(key)
        return f"{NOT_MEASURED}no probe pod runs for {name}" + (f" ({said})" if said else "")


async def node_counters(
    reader: PodReader, plan: Plan, nodes: list[str]
) -> dict[str, dict[str, dict[str, int]] | str]:
    """Node -> NIC -> counter -> value (``/sys/class/net``), or why it could not be read."""

    async def one(name: str) -> tuple[str, dict[str, dict[str, int]] | str]:
        node = plan.node(name)
        key = f"node:{name}"
        if node is None or key not in reader.live.pods:
            return name, f"no probe pod on {name}"
        nics = [n.name for n in node.nics]
        done = await reader.run(key, ["sh", "-c", _COUNTERS, "sh", *nics])
        if not done.ok:
            return name, done.error or done.stderr.strip() or f"exit code {done.code}"
        found: dict[str, dict[str, int]] = {}
        for line in done.stdout.splitlines():
            nic, stat, value = [*line.split(), "", "", ""][:3]
            if value.isdigit():
                found.setdefault(nic, {})[stat] = int(value)
        return name, found

    return dict(await asyncio.gather(*(one(n) for n in nodes)))


def grown(
    plan: Plan,
    before: dict[str, dict[str, dict[str, int]] | str],
    after: dict[str, dict[str, dict[str, int]] | str],
) -> dict[str, int] | str:
    """Segment -> bytes the nodes' NICs on it sent between the two readings (a trunk NIC's
    own share: what its VLAN sub-interfaces sent is theirs); or why not measured."""
    totals = {segment(n.name): 0 for n in plan.networks}
    for node in plan.nodes:
        b, a = before.get(node.name), after.get(node.name)
        if not isinstance(b, dict) or not isinstance(a, dict):
            why = b if isinstance(b, str) else a if isinstance(a, str) else "not read"
            return f"{NOT_MEASURED}{node.name}'s NIC counters: {why}"
        sent = {
            nic.name: max(0, a.get(nic.name, {}).get("tx_bytes", 0)
                          - b.get(nic.name, {}).get("tx_bytes", 0))
            for nic in node.nics
        }  # fmt: skip
        for nic in node.nics:
            children = sum(sent[c.name] for c in node.nics if c.parent == nic.name)
            key = segment(nic.network)
            if key in totals:
                totals[key] += max(0, sent[nic.name] - children)
    return totals


async def stream(
    reader: PodReader,
    pods: ProbePods,
    plan: Plan,
    nodes: list[str],
    s: Stream,
    design: PodReader | None = None,
) -> StreamResult:
    """``s`` as ICMP echoes from the source's probe pod (else, by exec, from the source
    itself: ``design``), with the counters around it."""
    source, sender = pods.mirror_of.get(s.netns), reader
    how = "as ICMP echoes, from a probe pod beside"
    if source is None and design is not None and s.netns in design.live.pods:
        source, sender, how = s.netns, design, "as ICMP echoes from"
    if source is None:
        return StreamResult(0, 0, True, 0.0, pods.why_not(s.netns), how=how)
    count = max(1, math.ceil(s.size / ECHO_SIZE))
    before = await node_counters(reader, plan, nodes)
    started = time.monotonic()
    wait = max(2, math.ceil(s.timeout))
    argv = ["ping", "-q", "-c", str(count), "-s", str(ECHO_SIZE), "-i", "0.2", "-w", str(wait),
            s.dst]  # fmt: skip
    done = await sender.run(source, argv, timeout=wait + 5)
    elapsed = time.monotonic() - started
    after = await node_counters(reader, plan, nodes)
    if done.missing:
        who = sender.live.pods[source].name
        return StreamResult(
            0, 0, True, elapsed, f"{NOT_MEASURED}the image of {who} has no ping", how=how
        )
    m = _PING.search(done.stdout + done.stderr)
    if m is None:  # it did not run as asked (no summary): nothing was measured
        why = done.error or (done.stdout + done.stderr).strip()[-200:] or f"exit {done.code}"
        who = sender.live.pods[source].name
        return StreamResult(0, 0, True, elapsed, f"{NOT_MEASURED}ping in {who}: {why}", how=how)
    sent, got = int(m.group(1)) * ECHO_SIZE, int(m.group(2)) * ECHO_SIZE
    segments = grown(plan, before, after)
    if isinstance(segments, str):
        return StreamResult(sent, got, True, elapsed, segments, how=how)
    error = None if got else f"no echo of {count} came back in {wait} s"
    return StreamResult(sent, got, True, elapsed, error, segments, how)


__all__ = ["MIRROR", "ProbePods", "ProbeReader", "Runner", "mirrors", "stream"]
