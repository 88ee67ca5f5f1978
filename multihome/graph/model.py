"""What a picture shows, decided once for every output format (DOT, Mermaid, the HTML report):
segments, machines with their NICs, pods inside their node with their interfaces, and what
verify found failing. Built from a plan (the design) and, for a running lab, its status (what
was built: addresses, leases, pods' nodes).

Large labs stay readable: alike nodes (same role, NICs and kinds of pods) fold into one group
when there are more than ``GROUP_AT`` of them, and alike pods on a node (same owner or name
stem and the same networks) fold into one box with a count from ``FOLD_AT`` on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from typing import Any

from multihome.plan import Plan
from multihome.plan.model import InterfacePlan, NodePlan, PodPlan

GROUP_AT = 3
"""More alike nodes than this fold into one group."""
FOLD_AT = 3
"""This many alike pods on a node fold into one box."""

PALETTE = (
    "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b",
    "#e377c2", "#17becf", "#bcbd22", "#7f7f7f", "#d62728",
)  # fmt: skip
CLUSTER_COLOUR = "#555555"
FAIL_COLOUR = "#d62728"


@dataclass
class Segment:
    """A network (a VLAN's L2 segment), drawn as a bus."""

    name: str
    lines: list[str]
    colour: str
    storage: bool = False
    """Longhorn's storage network lands here."""
    failed: bool = False


@dataclass
class Port:
    """A NIC of a machine, or an interface of a pod; ``segment`` is the bus it is wired to
    (None: not wired to one, e.g. a pod's eth0, which rides the node's Canal NIC)."""

    key: str
    name: str
    lines: list[str]
    segment: str | None
    colour: str
    pinned: bool = False
    """Canal's NIC (the node <-> node network that the cluster network rides on)."""
    to_port: str | None = None
    """Wired to this port of the machine instead (a pod's eth0 to the Canal NIC)."""
    failed: bool = False


@dataclass
class PodBox:
    key: str
    title: str
    lines: list[str]
    ports: list[Port]
    count: int = 1
    failed: bool = False


@dataclass
class Machine:
    """A node, a group of alike nodes, or a host."""

    key: str
    kind: str
    """``server``, ``agent`` or ``host``."""
    title: str
    lines: list[str]
    ports: list[Port]
    pods: list[PodBox] = field(default_factory=list)
    count: int = 1
    failed: bool = False


@dataclass
class Picture:
    name: str
    subtitle: str
    segments: list[Segment]
    machines: list[Machine]
    live: bool
    legend: list[tuple[str, str]]
    """(colour, what it means)."""


def _ident(*parts: str) -> str:
    """A DOT/Mermaid-safe identifier (lab names are DNS-1123, but refs have ``/`` and ``:``)."""
    return "_".join(re.sub(r"[^A-Za-z0-9]", "_", p) for p in parts)


@dataclass(frozen=True)
class Failures:
    """What failed verify checks concern: pods (``ns/name``), nodes, networks, NAD keys,
    and ``cluster network``."""

    subjects: frozenset[str] = frozenset()

    @classmethod
    def from_checks(cls, checks: Iterable[Any]) -> Failures:
        return cls(frozenset(c.subject for c in checks if c.status == "fail"))

    def __contains__(self, item: str) -> bool:
        return item in self.subjects


def picture(
    plan: Plan,
    status: Mapping[str, Any] | None = None,
    failures: Failures | None = None,
    *,
    group_at: int = GROUP_AT,
    fold_at: int = FOLD_AT,
) -> Picture:
    """The picture of ``plan``; with ``status`` (a running lab's), what was built."""
    failures = failures or Failures()
    colours = {n.name: PALETTE[i % len(PALETTE)] for i, n in enumerate(plan.networks)}
    storage_nad = plan.longhorn.storage_network if plan.longhorn else None
    storage_segment = None
    if storage_nad:
        storage_segment = next(
            (
                i.lab_network
                for p in plan.pods
                for i in p.interfaces
                if i.network == storage_nad and i.lab_network
            ),
            None,
        )
    segments = []
    for net in plan.networks:
        lines = [f"{net.name}" + (f" · VLAN {net.vlan}" if net.vlan else ""), str(net.subnet)]
        if net.gateway:
            lines.append(f"gateway {net.gateway}")
        if net.dhcp:
            lines.append(f"DHCP {net.dhcp.start}-{net.dhcp.end}")
        if net.name == plan.cluster.management_network:
            lines.append(f"node <-> node (Canal {plan.cluster.canal_backend})")
        if net.name == storage_segment:
            lines.append(f"Longhorn storage network ({storage_nad})")
        segments.append(
            Segment(
                _ident("net", net.name),
                lines,
                colours[net.name],
                storage=net.name == storage_segment,
                failed=net.name in failures,
            )
        )
    live = _Live(status) if status else None
    pods_by_node: dict[str, list[PodPlan]] = {}
    for pod in plan.pods:
        where = live.node_of(pod) if live else pod.node
        pods_by_node.setdefault(where or "", []).append(pod)

    ctx = _Ctx(plan, colours, failures, live, storage_nad, fold_at)
    machines: list[Machine] = []
    groups: dict[tuple[Any, ...], list[NodePlan]] = {}
    for node in plan.nodes:
        groups.setdefault(ctx.likeness(node, pods_by_node.get(node.name, [])), []).append(node)
    for members in groups.values():
        if len(members) > group_at:
            machines.append(ctx.group(members, pods_by_node))
        else:
            machines += [ctx.node(n, pods_by_node.get(n.name, [])) for n in members]
    machines.sort(key=lambda m: _order(plan, m))
    for host in plan.hosts:
        serves = [f"http:{host.http}"] if host.http else []
        serves += [f"tcp:{p}" for p in host.tcp] + [f"udp:{p}" for p in host.udp]
        machines.append(
            Machine(
                _ident("host", host.name),
                "host",
                host.name,
                ["host"] + ([f"serves {', '.join(serves)}"] if serves else []),
                [
                    Port(
                        _ident("host", host.name, nic.name),
                        nic.name,
                        [nic.name, str(nic.address.ip) if nic.address else "no address"],
                        _ident("net", nic.network),
                        colours.get(nic.network, CLUSTER_COLOUR),
                    )
                    for nic in host.nics
                ],
                failed=host.name in failures,
            )
        )
    if pods_by_node.get(""):
        pending = Machine(
            "pending",
            "pending",
            "Pending (no node fits)",
            [],
            [],
            [ctx.pod_box(p, [p], "pending") for p in pods_by_node[""]],
        )
        machines.append(pending)
    cluster = plan.cluster
    subtitle = (
        f"{cluster.distribution} {cluster.version or '(no version set)'}, "
        f"CNI {' + '.join(cluster.cni)}, clusterCIDR {cluster.cluster_cidr}"
        + (f", Canal pinned to {cluster.canal_iface}" if cluster.canal_iface else "")
        + (f", Longhorn {plan.longhorn.version}" if plan.longhorn else "")
    )
    legend = [(colours[n.name], n.name) for n in plan.networks]
    legend.append((CLUSTER_COLOUR, "cluster network (Canal eth0)"))
    if failures.subjects:
        legend.append((FAIL_COLOUR, "failed in verify"))
    return Picture(plan.name, subtitle, segments, machines, live is not None, legend)


def _order(plan: Plan, machine: Machine) -> tuple[int, int]:
    names = [n.name for n in plan.nodes]
    first = machine.title.split(" ")[0]
    return (0 if machine.kind == "server" else 1, names.index(first) if first in names else 0)


class _Live:
    """What a running lab's status says was built."""

    def __init__(self, status: Mapping[str, Any]) -> None:
        self.pods = {f"{p['namespace']}/{p['name']}": p for p in status.get("pods", [])}
        self.nodes = {n["name"]: n for n in status.get("nodes", [])}

    def node_of(self, pod: PodPlan) -> str | None:
        built = self.pods.get(pod.ref)
        return built["node"] if built else None

    def ips(self, pod: PodPlan, iface: str) -> list[str] | None:
        built = self.pods.get(pod.ref)
        if built is None:
            return None
        for entry in built.get("network_status", []):
            if entry.get("interface") == iface or (iface == "eth0" and entry.get("default")):
                return list(entry.get("ips", []))
        return []

    def phase(self, pod: PodPlan) -> str:
        built = self.pods.get(pod.ref)
        return str(built.get("phase", "Running")) if built else "Pending"


_STEM = re.compile(r"^(.*?)(?:[-.][0-9a-f]*[0-9][0-9a-f]*)+$")


def short(name: str, keep: int = 36) -> str:
    """A long name (a hash in it) shortened in the middle for a picture; the full name is
    in the SVG's tooltip and in every table."""
    if len(name) <= keep:
        return name
    return name[: keep - 9] + "…" + name[-8:]


def _stem(pod: PodPlan) -> str:
    """What alike pods share: their owner, else their name without a trailing number."""
    if pod.owner:
        return f"{pod.owner.kind}/{pod.owner.name}"
    match = _STEM.match(pod.name)
    return match.group(1) if match and match.group(1) else pod.name


@dataclass
class _Ctx:
    plan: Plan
    colours: dict[str, str]
    failures: Failures
    live: _Live | None
    storage_nad: str | None
    fold_at: int

    def likeness(self, node: NodePlan, pods: list[PodPlan]) -> tuple[Any, ...]:
        nics = tuple((c.name, c.network, c.address is None) for c in node.nics)
        kinds = tuple(sorted({self.pod_kind(p) for p in pods}))
        return (node.role, nics, kinds, node.name in self.failures)

    def pod_kind(self, pod: PodPlan) -> tuple[Any, ...]:
        return (
            _stem(pod),
            tuple((i.name, i.lab_network or i.network) for i in pod.interfaces),
            pod.ref in self.failures,
        )

    def nic_ports(self, node: NodePlan, key: str, addresses: list[str] | None = None) -> list[Port]:
        ports = []
        for i, nic in enumerate(node.nics):
            pinned = nic.name == (self.plan.cluster.canal_iface or node.management_nic)
            address = addresses[i] if addresses else (str(nic.address) if nic.address else "")
            lines = [nic.name + (" (Canal)" if pinned else "")]
            lines.append(address or "no address")
            if nic.bridge:
                lines.append(f"in bridge {nic.bridge}")
            ports.append(
                Port(
                    _ident(key, nic.name),
                    nic.name,
                    lines,
                    _ident("net", nic.network),
                    self.colours.get(nic.network, CLUSTER_COLOUR),
                    pinned=pinned,
                )
            )
        return ports

    def node(self, node: NodePlan, pods: list[PodPlan]) -> Machine:
        key = _ident("node", node.name)
        lines = [f"{node.role} · node-ip {node.node_ip}", f"pods {node.pod_cidr}"]
        if node.taints:
            lines.append("taint " + ", ".join(node.taints))
        return Machine(
            key,
            node.role,
            node.name,
            lines,
            self.nic_ports(node, key),
            self.pod_boxes(pods, key),
            failed=node.name in self.failures,
        )

    def group(self, members: list[NodePlan], pods_by_node: Mapping[str, list[PodPlan]]) -> Machine:
        first, last = members[0], members[-1]
        key = _ident("group", first.name)
        addresses = []
        for i, nic in enumerate(first.nics):
            if nic.address is None:
                addresses.append("no address")
                continue
            ips = sorted(int(a.ip) for n in members if (a := n.nics[i].address) is not None)
            addresses.append(f"{ip_address(ips[0])}..{ip_address(ips[-1])}")
        pods = [p for n in members for p in pods_by_node.get(n.name, [])]
        lines = [
            f"{len(members)} {first.role}s alike",
            f"node-ips {first.node_ip}..{last.node_ip}",
            f"{len(pods)} pods, about {len(pods) // len(members)} per node",
        ]
        boxes = self.pod_boxes(pods, key, per=len(members))
        return Machine(
            key,
            first.role,
            f"{first.name} .. {last.name}",
            lines,
            self.nic_ports(first, key, addresses),
            boxes,
            count=len(members),
        )

    def pod_boxes(self, pods: list[PodPlan], key: str, per: int = 1) -> list[PodBox]:
        kinds: dict[tuple[Any, ...], list[PodPlan]] = {}
        for pod in pods:
            kinds.setdefault(self.pod_kind(pod), []).append(pod)
        boxes = []
        for members in kinds.values():
            if len(members) >= self.fold_at or per > 1:
                boxes.append(self.pod_box(members[0], members, key))
            else:
                boxes += [self.pod_box(p, [p], key) for p in members]
        return boxes

    def pod_box(self, pod: PodPlan, members: list[PodPlan], key: str) -> PodBox:
        box_key = _ident(key, "pod", pod.ref) if len(members) == 1 else _ident(key, "fold", pod.ref)
        if len(members) == 1:
            title = short(pod.name, 32)
            lines = [pod.namespace] + ([f"{pod.owner.kind} {pod.owner.name}"] if pod.owner else [])
            if self.live:
                phase = self.live.phase(pod)
                if phase != "Running":
                    lines.append(phase)
        else:
            title = f"{_stem(pod)} ×{len(members)}"
            lines = [f"{members[0].name} .. {members[-1].name}"]
        if pod.host_network:
            lines.append("hostNetwork")
        failed = any(p.ref in self.failures for p in members)
        ports = [self.pod_port(pod, i, box_key, members) for i in pod.interfaces]
        return PodBox(box_key, title, lines, ports, len(members), failed)

    def pod_port(
        self, pod: PodPlan, iface: InterfacePlan, box_key: str, members: list[PodPlan]
    ) -> Port:
        count = len(members)
        lines = [iface.name]
        if count == 1 and self.live:
            ips = self.live.ips(pod, iface.name)
            lines.append(", ".join(ips) if ips else "no address")
        elif iface.cluster:
            lines.append(
                "from each node's pod CIDR"
                if count > 1
                else (f"from {iface.subnet}" if iface.subnet else "Canal")
            )
        else:
            ipam = "+".join(iface.ipam_types) or "no IPAM"
            asked = f" {iface.ips[0]}" if iface.ips and count == 1 else ""
            lines.append(f"{iface.cni_type or '?'} {ipam}{asked}")
        nads = sorted({i.network for p in members for i in p.interfaces if i.name == iface.name})
        if not iface.cluster and len(nads) > 1:
            lines.append(f"{len(nads)} NADs")
        elif not iface.cluster:
            lines.append(iface.network.partition("/")[2] or iface.network)
        failed = (
            (iface.cluster and "cluster network" in self.failures)
            or (iface.network == self.storage_nad and iface.network in self.failures)
            or pod.ref in self.failures
        )
        node = self.plan.node(pod.node) if pod.node else None
        canal = (self.plan.cluster.canal_iface or node.management_nic) if node else None
        if iface.cluster:
            return Port(
                _ident(box_key, iface.name),
                iface.name,
                lines,
                None,
                CLUSTER_COLOUR,
                to_port=canal,
                failed=failed,
            )
        segment = iface.lab_network
        return Port(
            _ident(box_key, iface.name),
            iface.name,
            lines,
            _ident("net", segment) if segment else None,
            self.colours.get(segment or "", CLUSTER_COLOUR),
            failed=failed,
        )


__all__ = ["Failures", "Machine", "Picture", "PodBox", "Port", "Segment", "picture"]
