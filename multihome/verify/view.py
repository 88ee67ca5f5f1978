"""The running lab as the verifier reads it: ``status.json`` (what ``up`` built) as typed,
read-only views, next to the plan it was built from.

Only what verify needs is kept. Older status files (no ``phase``/``serves``) read as pods
Running and machines serving nothing but their ``http`` port.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any, Literal

from multihome.lab.faults import Fault

MachineKind = Literal["node", "host"]


@dataclass(frozen=True)
class Serves:
    """What a pod or host answers on (the lab's listeners)."""

    address: str | None = None
    http: tuple[int, ...] = ()
    tcp: tuple[int, ...] = ()
    udp: tuple[int, ...] = ()

    @classmethod
    def from_dict(cls, data: Any, http: Any = None) -> Serves:
        if not isinstance(data, dict):
            return cls(http=(int(http),) if isinstance(http, int) else ())
        address = data.get("address")
        return cls(
            address=str(address) if address and address != "0.0.0.0" else None,
            http=tuple(int(p) for p in data.get("http") or ()),
            tcp=tuple(int(p) for p in data.get("tcp") or ()),
            udp=tuple(int(p) for p in data.get("udp") or ()),
        )

    def __bool__(self) -> bool:
        return bool(self.http or self.tcp or self.udp)


@dataclass(frozen=True)
class NicView:
    name: str
    network: str
    address: str | None
    """The IP alone, or None for a NIC without an address."""


@dataclass(frozen=True)
class MachineView:
    """A node or a host: its network namespace and NICs."""

    name: str
    kind: MachineKind
    netns: str
    nics: tuple[NicView, ...]
    serves: Serves = field(default_factory=Serves)
    node_ip: str | None = None

    def nic(self, name: str) -> NicView | None:
        return next((n for n in self.nics if n.name == name), None)

    def on(self, network: str) -> NicView | None:
        """Its NIC on ``network`` (the first), or None."""
        return next((n for n in self.nics if n.network == network), None)

    def address_on(self, network: str) -> str | None:
        return next((n.address for n in self.nics if n.network == network and n.address), None)

    @property
    def first_address(self) -> str | None:
        return self.node_ip or next((n.address for n in self.nics if n.address), None)


@dataclass(frozen=True)
class NetworkView:
    name: str
    subnet: ipaddress.IPv4Network | ipaddress.IPv6Network
    bridge: str
    dhcp_server: str | None
    dhcp_router: str | None


@dataclass(frozen=True)
class PodView:
    """A pod as ``up`` left it."""

    namespace: str
    name: str
    node: str
    netns: str
    phase: str
    error: str | None
    network_status: tuple[dict[str, Any], ...]
    serves: Serves

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    @property
    def running(self) -> bool:
        return self.phase == "Running"

    def entry(self, ifname: str) -> dict[str, Any] | None:
        """Its network-status entry for ``ifname``."""
        return next((e for e in self.network_status if e.get("interface") == ifname), None)

    def address(self, ifname: str) -> str | None:
        """The first IP network-status gives ``ifname``."""
        entry = self.entry(ifname)
        ips = entry.get("ips") if entry else None
        return str(ips[0]) if ips else None


@dataclass(frozen=True)
class LabView:
    name: str
    running: bool
    sandbox: dict[str, Any]
    nodes: dict[str, MachineView]
    hosts: dict[str, MachineView]
    networks: dict[str, NetworkView]
    pods: dict[str, PodView]
    pending: tuple[str, ...]
    node_dirs: dict[str, str] = field(default_factory=dict)
    """Node -> its directory in the lab's state (behind its /run/cni, /etc/cni/net.d, ...)."""
    faults: tuple[Fault, ...] = ()
    """The faults applied to the lab (``multihome fault``), by number."""
    source: Literal["lab", "cluster"] = "lab"
    """What was read: the running lab, or a cluster through its API (``verify.live``)."""

    def machine(self, name: str) -> MachineView | None:
        return self.nodes.get(name) or self.hosts.get(name)

    @property
    def bridges(self) -> dict[str, str]:
        """Bridge name -> network name."""
        return {n.bridge: n.name for n in self.networks.values()}


def _nics(raw: Any) -> tuple[NicView, ...]:
    return tuple(
        NicView(
            name=str(c["name"]),
            network=str(c["network"]),
            address=str(ipaddress.ip_interface(c["address"]).ip) if c.get("address") else None,
        )
        for c in raw or ()
    )


def lab_view(status: dict[str, Any]) -> LabView:
    """The view of a status dict as ``lab.api.status()`` returns it."""
    nodes = {
        n["name"]: MachineView(
            name=n["name"],
            kind="node",
            netns=n["netns"],
            nics=_nics(n.get("nics")),
            node_ip=n.get("internal_ip"),
        )
        for n in status.get("nodes", ())
    }
    hosts = {
        h["name"]: MachineView(
            name=h["name"],
            kind="host",
            netns=h["netns"],
            nics=_nics(h.get("nics")),
            serves=Serves.from_dict(h.get("serves"), h.get("http")),
        )
        for h in status.get("hosts", ())
    }
    networks = {}
    for n in status.get("networks", ()):
        dhcp = n.get("dhcp") or {}
        networks[n["name"]] = NetworkView(
            name=n["name"],
            subnet=ipaddress.ip_network(n["subnet"]),
            bridge=n["bridge"],
            dhcp_server=dhcp.get("server"),
            dhcp_router=dhcp.get("router"),
        )
    pods = {}
    for p in status.get("pods", ()):
        view = PodView(
            namespace=p["namespace"],
            name=p["name"],
            node=p["node"],
            netns=p["netns"],
            phase=str(p.get("phase") or "Running"),
            error=p.get("error"),
            network_status=tuple(p.get("network_status") or ()),
            serves=Serves.from_dict(p.get("serves")),
        )
        pods[view.ref] = view
    return LabView(
        name=status["name"],
        running=bool(status.get("running", True)),
        sandbox=dict(status.get("sandbox") or {}),
        nodes=nodes,
        hosts=hosts,
        networks=networks,
        pods=pods,
        pending=tuple(status.get("pending") or ()),
    )
