"""What verify asks of the running lab (``Work``) and what it found (``Evidence``), and the
one function that gathers it inside the sandbox (``collect``, run through ``Sandbox.call``).

Two forked workers at once: one runs every probe concurrently; the other reads the
kernel's view of each namespace asked for (links, addresses, routes) and the routes the
kernel would take to given addresses (``ip route get``), then sends the streams one by one
with the switch's counters. Everything here is data: the checks decide what it means.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from multihome.lab import forkpool, neighbours, netlink
from multihome.lab.daemons import socket_answers

from .counters import Stream, StreamResult, measure
from .probes import Probe, ProbeResult, run_probes

if TYPE_CHECKING:
    from multihome.cluster import Objects


@dataclass(frozen=True)
class Iface:
    name: str
    mac: str | None
    up: bool
    kind: str | None
    addresses: tuple[str, ...]
    """``ip/prefix``, without IPv6 link-local addresses."""
    master: str | None = None
    """The bridge it is a port of."""


@dataclass(frozen=True)
class Route:
    dst: str
    """``default`` or a CIDR."""
    via: str | None
    dev: str | None


@dataclass(frozen=True)
class NetnsFacts:
    """A namespace as its kernel sees it (IPv4 routes of the main table)."""

    ifaces: dict[str, Iface] = field(default_factory=dict)
    routes: tuple[Route, ...] = ()
    error: str | None = None
    """Why it could not be read (the namespace is gone, ...)."""
    origin: str = "kernel"
    """Where the facts come from: ``kernel`` (netlink, or ``ip`` run in the pod), or
    ``network-status`` (what Multus recorded: a read-only run against a cluster's API)."""

    @property
    def defaults(self) -> tuple[Route, ...]:
        return tuple(r for r in self.routes if r.dst == "default")


@dataclass(frozen=True)
class RouteTo:
    """The route the kernel takes to an address: out of ``dev``, via ``via``."""

    dev: str | None
    via: str | None
    src: str | None


SWITCH = "/proc/self/ns/net"
"""For ``Work.facts``: the sandbox's own network namespace, where the segments' bridges and
the machines' switch ports are (the collector runs there)."""


@dataclass
class Work:
    """What the checks need measured. Keys are the checks' own."""

    facts: set[str] = field(default_factory=set)
    sockets: set[str] = field(default_factory=set)
    """Unix sockets (paths on the host, e.g. a node's dhcp daemon's) to connect to."""
    leases: set[str] = field(default_factory=set)
    """Networks whose DHCP server's lease file is wanted (read outside the sandbox)."""
    routes: set[tuple[str, str]] = field(default_factory=set)
    probes: dict[str, Probe] = field(default_factory=dict)
    streams: dict[str, Stream] = field(default_factory=dict)
    bridges: tuple[str, ...] = ()

    def probe(self, key: str, probe: Probe) -> str:
        self.probes[key] = probe
        return key

    def route(self, netns: str, dst: str) -> tuple[str, str]:
        self.routes.add((netns, dst))
        return netns, dst


@dataclass
class Evidence:
    facts: dict[str, NetnsFacts] = field(default_factory=dict)
    routes: dict[tuple[str, str], RouteTo | None] = field(default_factory=dict)
    probes: dict[str, ProbeResult] = field(default_factory=dict)
    streams: dict[str, StreamResult] = field(default_factory=dict)
    sockets: dict[str, str | None] = field(default_factory=dict)
    """Path -> None when something accepted the connection, else why not."""
    leases: dict[str, Any] = field(default_factory=dict)
    """Network -> its DHCP server's leases (``checks.leases.read_leases``)."""
    cluster: Objects | None = None
    """The objects a cluster's API returned (``verify --kubeconfig``); None for the lab's
    own collector, which reads the kernel, not the API."""


def _link_local(cidr: str) -> bool:
    return ipaddress.ip_interface(cidr).ip.is_link_local


def read_netns(nl: netlink.Netlink, path: str) -> NetnsFacts:
    try:
        target = nl.ns(path)
        links = target.links()
        routes = target.routes(4)
    except (OSError, netlink.NetlinkError) as exc:
        return NetnsFacts(error=str(exc))
    ifaces = {
        link.name: Iface(
            name=link.name,
            mac=link.mac,
            up=link.up,
            kind=link.kind,
            addresses=tuple(a for a in link.addresses if not _link_local(a)),
            master=link.master,
        )
        for link in links
    }
    return NetnsFacts(
        ifaces=ifaces,
        routes=tuple(Route(str(r["dst"]), r["via"], r["dev"]) for r in routes),
    )


def _route_to(nl: netlink.Netlink, path: str, dst: str) -> RouteTo | None:
    try:
        found = nl.ns(path).route_to(dst)
    except (OSError, netlink.NetlinkError, ValueError):
        return None
    if found is None:
        return None
    return RouteTo(dev=found["dev"], via=found["via"], src=found["src"])


def _kernel(work: Work) -> Evidence:
    """The namespaces' state and the routes."""
    found = Evidence()
    with netlink.Netlink() as nl:
        for path in sorted(work.facts):
            found.facts[path] = read_netns(nl, path)
        for path, dst in sorted(work.routes):
            found.routes[(path, dst)] = _route_to(nl, path, dst)
    for path in sorted(work.sockets):
        found.sockets[path] = socket_answers(path)
    return found


def _probes(work: Work) -> Evidence:
    keys = list(work.probes)
    ends = {s.netns for s in work.streams.values()}
    ends |= {s.sink_netns for s in work.streams.values() if s.sink_netns}
    results = run_probes([work.probes[k] for k in keys], keep=ends)
    return Evidence(probes=dict(zip(keys, results, strict=True)))


def collect(work: Work) -> Evidence:
    """Gather the evidence ``work`` asks for. Runs inside the lab's sandbox.

    The probes (bounded below by the isolation probes' silence window) run in one forked
    worker while another reads the kernel; then the streams, one after the other, with
    nothing else on the wire (in a large lab the probes' packets add up to what would blur
    which segment a stream crossed)."""
    jobs = (_probes, _kernel)
    probed, kernel = forkpool.fork_map(lambda job: job(work), jobs, len(jobs))
    kernel.probes = probed.probes
    for key, stream in work.streams.items():
        kernel.streams[key] = measure(stream, work.bridges)
    neighbours.forget_learnt()
    return kernel
