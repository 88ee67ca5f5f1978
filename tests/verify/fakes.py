"""A made-up running lab for judging without a kernel: the status ``up`` would write for a
plan, and the evidence a healthy lab would give for what the checks ask (``Work``).

Addresses are handed out in plan order (eth0 from the node's pod CIDR, attachments from the
network's DHCP range); each namespace gets a route table, and ``ip route get`` is a longest
prefix match over it, as the kernel's would be.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

from multihome.lab.dhcpdiscover import Offer
from multihome.lab.names import switch_port
from multihome.plan import NetworkPlan, NICPlan, NodePlan, Plan, PodPlan
from multihome.verify.checks import FAMILIES, Context, Judge
from multihome.verify.checks.base import STREAM_SIZE
from multihome.verify.collect import SWITCH, Evidence, Iface, NetnsFacts, Route, RouteTo, Work
from multihome.verify.counters import StreamResult
from multihome.verify.probes import Probe, ProbeResult
from multihome.verify.report import CheckResult
from multihome.verify.view import lab_view

OVERHEAD = 20_000
"""Bytes of headers and ACKs a stream adds on the segment it crosses."""


def _netns(name: str) -> str:
    return f"/run/netns/{name}"


def _leases(net: NetworkPlan) -> Iterator[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    """The addresses pods get on ``net``: from the start of its DHCP range (if any) on."""
    start = int(net.dhcp.start) if net.dhcp else 0
    return (ip for ip in net.subnet.hosts() if int(ip) >= start)


def _nics(nics: Iterable[NICPlan]) -> list[dict[str, Any]]:
    return [
        {"name": c.name, "network": c.network, "address": str(c.address) if c.address else None}
        for c in nics
    ]


def _node(plan: Plan, node: NodePlan) -> tuple[dict[str, Any], NetnsFacts]:
    """A node's status entry, and its routes: host-gw to the other nodes' pod CIDRs."""
    mgmt = next(n for n in plan.networks if n.name == plan.cluster.management_network)
    routes = [
        Route(str(n.pod_cidr), str(n.node_ip), node.management_nic)
        for n in plan.nodes
        if n.name != node.name
    ]
    routes.append(Route(str(node.pod_cidr), None, "cni0"))
    routes += [Route(str(c.address.network), None, c.name) for c in node.nics if c.address]
    routes.append(Route("default", str(mgmt.gateway), node.management_nic))
    entry = {
        "name": node.name,
        "netns": _netns(node.name),
        "nics": _nics(node.nics),
        "internal_ip": str(node.node_ip),
    }
    ifaces = {
        c.name: Iface(c.name, None, True, "veth", (str(c.address),) if c.address else ())
        for c in node.nics
    }
    return entry, NetnsFacts(ifaces=ifaces, routes=tuple(routes))


def _switch(plan: Plan) -> NetnsFacts:
    """The sandbox's namespace: every node NIC's switch port on its network's bridge."""
    bridges = {n.name: n.bridge for n in plan.networks}
    ports = {
        switch_port("n", node.index, c.name): Iface(
            switch_port("n", node.index, c.name), None, True, "veth", (), bridges[c.network]
        )
        for node in plan.nodes
        for c in node.nics
    }
    return NetnsFacts(ifaces=ports)


def _pod(pod: PodPlan, index: int, addresses: Iterator[Any]) -> tuple[dict[str, Any], NetnsFacts]:
    """A Running pod's status entry and namespace: each interface takes the next of
    ``addresses``; the default route is via eth0 (the cluster network)."""
    ifaces = {"lo": Iface("lo", None, True, None, ("127.0.0.1/8",))}
    routes: list[Route] = []
    entries: list[dict[str, Any]] = []
    for j, iface in enumerate(pod.interfaces):
        assert iface.subnet is not None
        ip = next(addresses)
        if iface.cluster:
            routes.append(Route("default", str(iface.subnet[1]), iface.name))
        routes.append(Route(str(iface.subnet), None, iface.name))
        mac = f"0a:58:00:00:{index:02x}:{j:02x}"
        kind = "veth" if iface.cluster else "macvlan"
        ifaces[iface.name] = Iface(iface.name, mac, True, kind, (f"{ip}/{iface.subnet.prefixlen}",))
        entries.append(
            {"name": iface.network, "interface": iface.name, "ips": [str(ip)], "mac": mac,
             "default": iface.cluster}
        )  # fmt: skip
    serves = None
    if pod.process is not None and (pod.process.http or pod.process.tcp):
        bind = next(
            (e["ips"][0] for e in entries if e["interface"] == pod.process.bind_interface), None
        )
        http = [pod.process.http] if pod.process.http else []
        serves = {"address": bind, "http": http, "tcp": list(pod.process.tcp)}
    entry = {
        "namespace": pod.namespace,
        "name": pod.name,
        "node": pod.node,
        "netns": _netns(f"pod-{pod.name}"),
        "phase": "Running",
        "network_status": entries,
        "serves": serves,
    }
    return entry, NetnsFacts(ifaces=ifaces, routes=tuple(routes))


def status(plan: Plan) -> tuple[dict[str, Any], dict[str, NetnsFacts]]:
    """A status.json for ``plan`` with every placed pod Running, and the kernel's view of
    each pod's and node's namespace (by path)."""
    facts: dict[str, NetnsFacts] = {}
    nodes = []
    for node in plan.nodes:
        entry, facts[_netns(node.name)] = _node(plan, node)
        nodes.append(entry)
    facts[SWITCH] = _switch(plan)
    networks = [
        {
            "name": n.name,
            "subnet": str(n.subnet),
            "bridge": n.bridge,
            "dhcp": n.dhcp and {"server": str(n.dhcp.server), "router": None},
        }
        for n in plan.networks
    ]
    hosts = [
        {
            "name": h.name,
            "netns": _netns(f"host-{h.name}"),
            "nics": _nics(h.nics),
            "serves": {"address": None, "http": [h.http] if h.http else []},
        }
        for h in plan.hosts
    ]
    leases = {n.name: _leases(n) for n in plan.networks}
    pod_ips = {n.name: islice(n.pod_cidr.hosts(), 10, None) for n in plan.nodes}
    pods = []
    for i, pod in enumerate(p for p in plan.pods if p.node is not None and not p.host_network):
        ips = (
            next(pod_ips[pod.node or ""]) if f.cluster else next(leases[f.lab_network or ""])
            for f in pod.interfaces
        )
        entry, facts[_netns(f"pod-{pod.name}")] = _pod(pod, i, ips)
        pods.append(entry)
    pending = [p.ref for p in plan.pods if p.node is None]
    doc = {
        "name": plan.name,
        "running": True,
        "sandbox": {},
        "nodes": nodes,
        "networks": networks,
        "hosts": hosts,
        "pods": pods,
        "pending": pending,
    }
    return doc, facts


def route_to(facts: NetnsFacts, dst: str) -> RouteTo | None:
    """``ip route get dst``: the longest prefix that matches, ``default`` last."""
    ip = ipaddress.ip_address(dst)
    found = [
        (0 if r.dst == "default" else ipaddress.ip_network(r.dst).prefixlen, r)
        for r in facts.routes
        if r.dst == "default" or ip in ipaddress.ip_network(r.dst)
    ]
    if not found:
        return None
    route = max(found, key=lambda f: f[0])[1]
    return RouteTo(dev=route.dev, via=route.via, src=None)


@dataclass
class Verify:
    """A plan's checks derived as ``verify.run`` derives them, over a made-up lab."""

    plan: Plan
    ctx: Context = field(init=False)
    work: Work = field(init=False)
    judges: list[Judge] = field(init=False)
    kernel: dict[str, NetnsFacts] = field(init=False)

    def __post_init__(self) -> None:
        doc, self.kernel = status(self.plan)
        view = lab_view(doc)
        dirs = {name: f"/fake/state/nodes/{name}" for name in view.nodes}
        self.ctx = Context(self.plan, replace(view, node_dirs=dirs))
        self.work = Work(bridges=tuple(n.bridge for n in self.ctx.lab.networks.values()))
        self.judges = [derive(self.ctx, self.work) for derive in FAMILIES]

    def bridge(self, network: str) -> str:
        return self.ctx.lab.networks[network].bridge

    def crossing(self, network: str, *, echo: bool = False) -> StreamResult:
        """A stream's measurement: its bytes (twice when echoed) entered ``network`` only."""
        grown = dict.fromkeys(self.work.bridges, 0)
        grown[self.bridge(network)] = STREAM_SIZE * (2 if echo else 1) + OVERHEAD
        received = STREAM_SIZE if echo else 0
        return StreamResult(STREAM_SIZE, received, echo, 0.01, None, grown)

    def healthy(self) -> Evidence:
        """What a lab built as designed gives for the work asked."""
        segment = {"canal-segment": self.ctx.management, "longhorn-segment": self.storage()}
        streams = {k: self.crossing(segment[k], echo=s.echo) for k, s in self.work.streams.items()}
        return Evidence(
            facts={path: self.kernel[path] for path in self.work.facts},
            routes={(ns, dst): route_to(self.kernel[ns], dst) for ns, dst in self.work.routes},
            probes={key: _answer(p) for key, p in self.work.probes.items()},
            streams=streams,
            sockets=dict.fromkeys(self.work.sockets),
            leases=self._leases(),
        )

    def _leases(self) -> dict[str, Any]:
        """Every DHCP attachment's address leased to its MAC for another hour."""
        found: dict[str, dict[str, tuple[int, str]]] = {n: {} for n in self.work.leases}
        for pod, view in self.ctx.running():
            for iface in pod.interfaces:
                address = view.address(iface.name)
                if iface.lab_network in found and address:
                    mac = str((view.entry(iface.name) or {}).get("mac") or "").lower()
                    found[iface.lab_network][address] = (int(time.time()) + 3600, mac)
        return dict(found)

    def storage(self) -> str:
        """The network Longhorn's storage NAD lands on ("" without Longhorn)."""
        key = self.plan.longhorn.storage_network if self.plan.longhorn else None
        for pod in self.plan.pods:
            for iface in pod.interfaces:
                if iface.network == key and iface.lab_network:
                    return iface.lab_network
        return ""

    def judge(self, ev: Evidence) -> list[CheckResult]:
        return [r for judge in self.judges for r in judge(ev)]


def _answer(probe: Probe) -> ProbeResult:
    if probe.proto == "dhcp":
        offer = Offer("192.0.2.10", probe.dst, (), 3600)
        return ProbeResult("answered", offer.describe(), 1, 0.001, offer)
    return answer(probe.want == "allow")


def answer(answered: bool = True) -> ProbeResult:
    if answered:
        return ProbeResult("answered", "reply in 0.1 ms", 1, 0.0001)
    return ProbeResult("timeout", "no reply in 0.5 s", 1, 0.5)
