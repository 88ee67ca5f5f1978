"""What every check family shares: the plan and the running lab side by side, the targets on
a network, and the words for routes, addresses and byte counts.

A family is a function ``derive(ctx, work) -> judge``: it adds the probes, streams, routes
and namespaces it needs to ``work`` and returns the function that turns the evidence into
its results. Probe keys are prefixed with the family's id, so families never collide.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from multihome.lab.faults import Fault
from multihome.plan import InterfacePlan, NADPlan, NetworkPlan, NodePlan, Plan, PodPlan

from ..collect import Evidence, RouteTo, Work
from ..probes import Probe, Proto
from ..report import CheckResult
from ..view import LabView, MachineView, PodView

T = TypeVar("T")

Judge = Callable[[Evidence], list[CheckResult]]
Derive = Callable[["Context", Work], Judge]

ALLOW_DEADLINE = 2.0
ALLOW_ATTEMPTS = 4
DENY_DEADLINE = 0.5
"""A path that exists in the lab answers in milliseconds; silence this long means none."""
STREAM_SIZE = 256 * 1024
NOT_MEASURED = "not measured: "
"""How evidence a collector could not gather starts its text (a probe's detail, a
namespace's error). A check judges what was measured: it fails on what failed there, and
when nothing measured failed but some of it could not be measured, its cause is that text
(no verdict: ``verify.live`` makes it a skip with that reason)."""


def unmeasured(text: str | None) -> bool:
    """Whether a probe's detail (or an error) says the evidence could not be gathered."""
    return text is not None and NOT_MEASURED in text


@dataclass(frozen=True)
class Target:
    """Something on a network a probe can aim at: a host's service, a DHCP server."""

    label: str
    address: str
    proto: Proto
    port: int | None


@dataclass
class Context:
    plan: Plan
    lab: LabView

    @property
    def management(self) -> str:
        return self.plan.cluster.management_network

    def network(self, name: str | None) -> NetworkPlan | None:
        return next((n for n in self.plan.networks if n.name == name), None)

    def bridge(self, network: str) -> str | None:
        net = self.lab.networks.get(network)
        return net.bridge if net else None

    def node(self, name: str | None) -> NodePlan | None:
        return next((n for n in self.plan.nodes if n.name == name), None)

    def pods(self) -> Iterator[tuple[PodPlan, PodView | None]]:
        """Pods with interfaces (not hostNetwork), in plan order, with their view (None:
        not in the lab: Pending)."""
        for pod in self.plan.pods:
            if not pod.host_network:
                yield pod, self.lab.pods.get(pod.ref)

    def running(self) -> Iterator[tuple[PodPlan, PodView]]:
        for pod, view in self.pods():
            if view is not None and view.running:
                yield pod, view

    def nic_network(self, node: str | None, nic: str | None) -> str | None:
        """The network a node's NIC (or the node bridge it is enslaved to) is on."""
        plan = self.node(node)
        if plan is None or nic is None:
            return None
        return next((c.network for c in plan.nics if nic in (c.name, c.bridge)), None)

    def targets_on(self, network: str, *, service: bool = True) -> list[Target]:
        """The hosts on ``network`` (their service when ``service``, else ping) and its DHCP
        server, in lab order."""
        found = []
        for host in self.plan.hosts:
            view = self.lab.hosts.get(host.name)
            address = view.address_on(network) if view else None
            if view is None or address is None:
                continue
            proto, port = _service(view, address) if service else ("icmp", None)
            found.append(Target(f"host {host.name}", address, proto, port))
        net = self.lab.networks.get(network)
        if net is not None and net.dhcp_server:
            found.append(Target(f"{network}'s DHCP server", net.dhcp_server, "icmp", None))
        return found


def _service(host: MachineView, address: str) -> tuple[Proto, int | None]:
    serves = host.serves
    if serves.address not in (None, address):
        return "icmp", None
    if serves.http:
        return "http", serves.http[0]
    if serves.tcp:
        return "tcp", serves.tcp[0]
    if serves.udp:
        return "udp", serves.udp[0]
    return "icmp", None


def allow(netns: str, dst: str, proto: Proto = "icmp", port: int | None = None) -> Probe:
    return Probe(netns, dst, proto, port, "allow", ALLOW_DEADLINE, ALLOW_ATTEMPTS)


def deny(netns: str, dst: str) -> Probe:
    return Probe(netns, dst, "icmp", None, "deny", DENY_DEADLINE, 1)


# -- words ----------------------------------------------------------------------------------
def size_text(count: int) -> str:
    if count >= 1024 * 1024:
        return f"{count / (1024 * 1024):.1f} MiB"
    if count >= 1024:
        return f"{count / 1024:.0f} KiB"
    return f"{count} B"


def route_text(route: RouteTo | None) -> str:
    if route is None or route.dev is None:
        return "no route"
    return f"out of {route.dev}" + (f" via {route.via}" if route.via else "")


def segments_text(ctx: Context, grown: dict[str, int]) -> str:
    """``vlan40 +262 KiB, vlan50 +0 B`` in network order, from bridge -> bytes."""
    names = ctx.lab.bridges
    return ", ".join(f"{names.get(b, b)} +{size_text(n)}" for b, n in grown.items())


def short(ref: str) -> str:
    """A pod's name without its namespace (for evidence lines)."""
    return ref.rsplit("/", 1)[-1]


def at(pod: PodPlan, view: PodView) -> str:
    """``net-tools on wrk-1``; just the name when it already says the node."""
    name = short(pod.ref)
    return name if name.endswith(view.node) else f"{name} on {view.node}"


def addresses_in(addresses: tuple[str, ...], subnet: Any) -> list[str]:
    return [a for a in addresses if ipaddress.ip_interface(a).ip in subnet]


def nad_default_routes(nad: NADPlan | None) -> bool:
    """Whether the NAD's config routes 0.0.0.0/0 (or ::/0) itself, or asks the bridge plugin
    to be the default gateway."""
    if nad is None:
        return False
    try:
        raw = json.loads(nad.config)
    except json.JSONDecodeError:
        return False
    plugins = raw.get("plugins", [raw]) if isinstance(raw, dict) else []
    for plugin in plugins if isinstance(plugins, list) else []:
        if not isinstance(plugin, dict):
            continue
        if plugin.get("isDefaultGateway") is True:
            return True
        ipam = plugin.get("ipam")
        routes = ipam.get("routes") if isinstance(ipam, dict) else None
        for route in routes if isinstance(routes, list) else []:
            if isinstance(route, dict) and route.get("dst") in ("0.0.0.0/0", "::/0"):
                return True
    return False


def address_source(ctx: Context, pod: PodPlan, iface: InterfacePlan) -> str:
    """Where an interface's address comes from, in a user's words."""
    if iface.cluster:
        return f"Canal's IPAM (the pod CIDR of {pod.node})"
    if iface.ips:
        return f"the annotation's ips {', '.join(iface.ips)}"
    ipam = "/".join(iface.ipam_types) or "no"
    if "dhcp" in iface.ipam_types and iface.lab_network:
        return f"the DHCP server on {iface.lab_network} (NAD {iface.network}, ipam dhcp)"
    return f"NAD {iface.network}'s {ipam} IPAM"


def attach_cause(ctx: Context, pod: PodPlan, error: str | None) -> str:
    """Why a pod's attachment failed, from the plan (a missing master) or the error."""
    node = ctx.node(pod.node)
    for iface in pod.interfaces:
        if iface.cluster:
            continue
        nad = ctx.plan.nad(iface.network)
        if nad is None:
            return (
                f"the annotation names {iface.network}, which is not a "
                "NetworkAttachmentDefinition of the lab: define it or fix the name"
            )
        if nad.master and node is not None and ctx.nic_network(node.name, nad.master) is None:
            return (
                f"NAD {nad.key} is a {nad.cni_type} on {nad.master}, which {node.name} does "
                f"not have, so Multus can't make {iface.name} there ('Link not found', "
                f"multus-cni#871): give {node.name} a NIC named {nad.master}, or keep the pod "
                "off it (nodeSelector)"
            )
    return f"the CNI plugin failed: {error}" if error else "the attachment failed"


FULL_MESH_UP_TO = 16
"""Members; beyond this, pairwise checks (node-ip, pod to pod) pair each member with
``SPREAD`` others around the ring (each is probed from as many), not with all N-1: N
squared probes would take minutes at 100 nodes."""
SPREAD = 3


def spread_pairs(items: Sequence[T], ordered: bool = True) -> list[tuple[T, T]]:
    """Pairs to probe among ``items``: all of them (both ways when ``ordered``) for a
    small lab, else each item with ``SPREAD`` others spread around the ring."""
    count = len(items)
    if count <= FULL_MESH_UP_TO:
        return [
            (items[i], items[j])
            for i in range(count)
            for j in range(count)
            if i != j and (ordered or i < j)
        ]
    steps = sorted({max(1, (count * k) // (SPREAD + 1)) for k in range(1, SPREAD + 1)})
    return [(items[i], items[(i + step) % count]) for i in range(count) for step in steps]


def keeps_cluster_route(pod: PodPlan) -> bool:
    """The design leaves the pod's default route on eth0: no other interface sets
    default-route (one that does takes it off eth0, which keeps only its link route and
    reaches no pod on another node, as on a real cluster: not a failure to look for)."""
    return not any(i.default_route is not None and not i.cluster for i in pod.interfaces)


# -- faults ---------------------------------------------------------------------------------
def _names_in(text: str, name: str) -> bool:
    """Whether ``name`` (a network, node or NIC) is a whole word of ``text``."""
    return re.search(rf"(?<![\w-]){re.escape(name)}(?![\w-])", text) is not None


def faults_behind(ctx: Context, result: CheckResult) -> list[Fault]:
    """The lab's faults that likely explain a failed check: a cut network or a stopped DHCP
    server the check is about (named in it, or a network its pod, NAD or machine is on), a
    stopped machine or a NIC down or shaped on a machine it names (or its pod's node)."""
    text = " ".join((result.subject, *result.evidence, result.cause or ""))
    networks = {n for n in ctx.lab.networks if _names_in(text, n)}
    machines = {m for m in (*ctx.lab.nodes, *ctx.lab.hosts) if _names_in(text, m)}
    pod = ctx.lab.pods.get(result.subject.split(" ", 1)[0])
    if pod is not None:
        machines.add(pod.node)
        for plan in (p for p in ctx.plan.pods if p.ref == pod.ref):
            networks.update(i.lab_network for i in plan.interfaces if i.lab_network)
    nad = ctx.plan.nad(result.subject) if "/" in result.subject else None
    if nad is not None and nad.master:
        networks.update(c.network for n in ctx.plan.nodes for c in n.nics if c.name == nad.master)
    for name in list(machines):
        machine = ctx.lab.machine(name)
        if machine is not None and result.subject == name:
            networks.update(c.network for c in machine.nics)
    found = []
    for fault in ctx.lab.faults:
        if fault.network is not None:
            if fault.network in networks:
                found.append(fault)
        elif fault.machine in machines:
            found.append(fault)
    return found


def explain(ctx: Context, result: CheckResult) -> CheckResult:
    """A failed check whose likely cause is a fault of the lab says so first: ``vlan50 is
    cut (fault 1)``, then what the check itself read."""
    if result.status != "fail" or not ctx.lab.faults:
        return result
    behind = faults_behind(ctx, result)
    if not behind:
        return result
    said = "; ".join(f.cause() for f in behind)
    cause = f"{said}; what the check read: {result.cause}" if result.cause else said
    return dataclasses.replace(result, cause=cause)
