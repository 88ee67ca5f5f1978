"""The ``kind: Lab`` document as pydantic models (camelCase keys, unknown keys rejected).

The models check structure only: types, required keys, unknown keys and enumerations.
Whether names are valid (DNS-1123, Linux interface names), addresses lie inside subnets,
networks exist, and so on, is for the design checks, which point back here with
``LabFile.locate``. A key written as ``null`` counts as absent when the key has a default.
"""

from __future__ import annotations

from ipaddress import IPv4Network, ip_address
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, Strict, field_validator
from pydantic_core import PydanticCustomError

from .base import CamelModel
from .longhorn import LONGHORN_RELEASES, known_ranges
from .types import (
    DHCPRange,
    IPAddr,
    IPAddress,
    IPNetwork,
    LeaseTime,
    Port,
    lease_seconds,
)

API_VERSION = "multihome.dev/v1alpha1"
KIND = "Lab"

StrictInt = Annotated[int, Strict()]
StrictBool = Annotated[bool, Strict()]
Seconds = Annotated[float, Strict(), Field(gt=0)]
VLANId = Annotated[int, Strict(), Field(ge=1, le=4094)]
CNIName = Literal["multus", "canal", "calico", "cilium", "flannel", "none"]
DEFAULT_CNI: tuple[CNIName, ...] = ("multus", "canal")


class SpecModel(CamelModel):
    """Base of the lab models: camelCase aliases, no unknown keys, immutable."""

    model_config = ConfigDict(extra="forbid")


class LabMetadata(SpecModel):
    name: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class DHCP(SpecModel):
    """A DHCP server (dnsmasq) on a network."""

    range: DHCPRange
    lease_time: LeaseTime = "1h"
    router: StrictBool = False
    """Whether the server offers a router (option 3): the network's gateway."""
    server: IPAddress | None = None
    """The server's own address; None: the plan chooses one."""

    @property
    def start(self) -> IPAddr:
        return ip_address(self.range.split("-")[0])

    @property
    def end(self) -> IPAddr:
        return ip_address(self.range.split("-")[1])

    @property
    def lease_seconds(self) -> int | None:
        """The lease time in seconds; None for ``infinite``."""
        return lease_seconds(self.lease_time)


class Network(SpecModel):
    """One L2 segment (a VLAN on the real network)."""

    name: str
    vlan: VLANId | None = None
    subnet: IPNetwork
    gateway: IPAddress | None = None
    mtu: Annotated[int, Strict(), Field(ge=68, le=65535)] = 1500
    dhcp: DHCP | None = None
    nameservers: list[IPAddress] = Field(default_factory=list)
    """DNS servers of the nodes whose node-ip is on this network (``render``'s netplan);
    empty: the gateway, as most routers answer DNS."""


class VLANInterface(SpecModel):
    """An 802.1q sub-interface of a trunk NIC, as netplan's ``vlans:`` names one (``name``,
    ``id``; its ``link`` is the NIC it is written under): ``ens224.50``, ``vlan50``. It is on
    the network whose ``vlan`` is ``id``."""

    name: str
    id: VLANId
    address: IPAddress | None = None
    """Its address, without prefix (the prefix is the VLAN's network's); None: no address."""
    bridge: str | None = None
    """The node-local Linux bridge it is enslaved to (for bridge-CNI NADs)."""


class NIC(SpecModel):
    """A NIC of a node or host: on one network (an access port), or a trunk carrying
    tagged VLANs (``vlans``) and, if ``network`` is set, that network untagged."""

    name: str
    network: str | None = None
    """The network its untagged frames are on; None: only tagged VLANs (``vlans``)."""
    address: IPAddress | None = None
    """The NIC's address, without prefix (the prefix is the network's); None: no address."""
    bridge: str | None = None
    """The node-local Linux bridge this NIC is enslaved to (for bridge-CNI NADs)."""
    vlans: list[VLANInterface] = Field(default_factory=list)
    """The tagged VLANs it carries, each as a sub-interface (a trunk port on the switch)."""


class Taint(SpecModel):
    key: str
    value: str = ""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"]


class Node(SpecModel):
    """A Kubernetes node: an RKE2 server or agent."""

    name: str
    role: Literal["server", "agent"]
    node_ip: IPAddress | None = Field(default=None, alias="nodeIP")
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[Taint] = Field(default_factory=list)
    nics: list[NIC]

    @property
    def effective_node_ip(self) -> IPAddr | None:
        """``nodeIP``, or else the address of the first NIC that has one."""
        if self.node_ip is not None:
            return self.node_ip
        found = next((nic.address for nic in self.nics if nic.address is not None), None)
        if found is None:  # else a sub-interface's (node-ip on a tagged VLAN)
            subs = (v for nic in self.nics for v in nic.vlans)
            found = next((v.address for v in subs if v.address is not None), None)
        return found


class Canal(SpecModel):
    iface: str | None = None
    """The interface Calico and Flannel use (None: their own auto-detection)."""
    backend: Literal["host-gw", "vxlan"] = "vxlan"


class Cluster(SpecModel):
    distribution: Literal["rke2"] = "rke2"
    version: str | None = None
    cni: list[CNIName] = Field(default_factory=lambda: list(DEFAULT_CNI))
    canal: Canal = Field(default_factory=Canal)
    cluster_cidr: IPNetwork = Field(default=IPv4Network("10.42.0.0/16"), alias="clusterCIDR")
    service_cidr: IPNetwork = Field(default=IPv4Network("10.43.0.0/16"), alias="serviceCIDR")
    node_cidr_mask_size: Annotated[int, Strict(), Field(ge=1, le=128)] = Field(
        default=24, alias="nodeCIDRMaskSize"
    )
    servers_run_workloads: StrictBool = False


class Serve(SpecModel):
    """Services a host runs: an HTTP server and plain TCP/UDP listeners."""

    http: Port | None = None
    tcp: list[Port] = Field(default_factory=list)
    udp: list[Port] = Field(default_factory=list)


class Host(SpecModel):
    """A machine outside the cluster, on one or more networks."""

    name: str
    nics: list[NIC]
    serve: Serve = Field(default_factory=Serve)


class Longhorn(SpecModel):
    storage_network: str | None = None
    """Longhorn's ``storage-network`` setting: ``namespace/nad-name``."""
    version: str | None = None
    """The Longhorn release (``1.4.4``; a leading ``v`` is dropped); None: the one of the
    cluster version's era (``plan/longhorn.py``)."""

    @field_validator("version")
    @classmethod
    def _known_version(cls, value: str | None) -> str | None:
        if value is None:
            return None
        bare = value.strip().removeprefix("v")
        if bare not in LONGHORN_RELEASES:
            raise PydanticCustomError(
                "longhorn_version",
                f"{value!r} is not a Longhorn release multihome knows",
                {
                    "hint": f"write one of {known_ranges()}, or leave it out for the one of "
                    "the cluster version's era"
                },
            )
        return bare


class Expect(SpecModel):
    """One thing verify must prove: ``from`` reaches (or not) ``to``."""

    from_: str = Field(alias="from")
    to: str
    via: str | None = None
    proto: Literal["icmp", "tcp", "udp", "http"] = "icmp"
    result: Literal["allow", "deny"] = "allow"
    deadline: Seconds = 5.0
    retries: Annotated[int, Strict(), Field(ge=0)] = 3


FAULT_VERBS = {"cut": 1, "link-down": 1, "stop-dhcp": 1, "stop": 1, "rate": 2}
"""``multihome fault``'s verbs that break something, with how many words follow each."""


class Scenario(SpecModel):
    """A what-if (``verify --scenario``): faults applied together, as ``multihome fault``
    writes them (``cut vlan50``, ``link-down NODE:NIC``, ``rate NODE:NIC 10mbit``), and what
    must still work or stop under them (``expect``, as the lab's)."""

    name: Annotated[
        str, Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    ]
    description: str = ""
    faults: Annotated[list[str], Field(min_length=1)]
    expect: list[Expect] = Field(default_factory=list)

    @field_validator("faults")
    @classmethod
    def _faults(cls, value: list[str]) -> list[str]:
        for fault in value:
            words = fault.split()
            if not words or FAULT_VERBS.get(words[0]) != len(words) - 1:
                verbs = ", ".join(
                    f"{v} TARGET" + (" RATE" if n == 2 else "") for v, n in FAULT_VERBS.items()
                )
                raise ValueError(f"{fault!r} is not a fault: write one of {verbs}")
        return value


class LabSpec(SpecModel):
    resources: list[str] = Field(default_factory=list)
    networks: list[Network]
    nodes: list[Node]
    cluster: Cluster = Field(default_factory=Cluster)
    hosts: list[Host] = Field(default_factory=list)
    longhorn: Longhorn | None = None
    expect: list[Expect] = Field(default_factory=list)
    scenarios: list[Scenario] = Field(default_factory=list)

    @field_validator("scenarios")
    @classmethod
    def _unique_scenarios(cls, value: list[Scenario]) -> list[Scenario]:
        names = [s.name for s in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"scenario names must be unique: {', '.join(twice)} appear twice")
        return value


class Lab(SpecModel):
    """The ``kind: Lab`` document."""

    api_version: Literal["multihome.dev/v1alpha1"]
    kind: Literal["Lab"]
    metadata: LabMetadata
    spec: LabSpec
