"""The plan: a lab resolved into concrete, fully named parts (netlab's "transformed model").

Every model is frozen and built by :func:`multihome.plan.build_plan`; nothing here does any
work. Lists are tuples in a fixed order (the lab's order unless said otherwise), so a plan
serializes to the same JSON every time (:meth:`Plan.to_json`), which the golden tests keep.
"""

from __future__ import annotations

import json
from ipaddress import (
    IPv4Address,
    IPv4Interface,
    IPv4Network,
    IPv6Address,
    IPv6Interface,
    IPv6Network,
)
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

IPAddr = IPv4Address | IPv6Address
IPIface = IPv4Interface | IPv6Interface
IPNet = IPv4Network | IPv6Network

CLUSTER_NETWORK = "k8s-pod-network"
"""The CNI network name of the cluster network (Canal's), as network-status reports it."""
SUPERVISOR_PORT = 9345
"""The RKE2 supervisor port that joining nodes register with."""


class PlanModel(BaseModel):
    """Base of the plan models: immutable, no unknown fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class DHCPPlan(PlanModel):
    """The DHCP server of a network."""

    start: IPAddr
    end: IPAddr
    lease_time: str
    """As dnsmasq takes it: ``1h``, ``45m``, ``infinite``."""
    router: IPAddr | None
    """The router the server offers (option 3); None: it offers none."""
    server: IPAddr
    """The server's own address: the lab's, or the highest free address of the subnet."""


class Attachment(PlanModel):
    """A machine's NIC on a network segment."""

    machine: str
    nic: str
    address: IPIface | None


class NetworkPlan(PlanModel):
    """One L2 segment (a VLAN on the real network)."""

    name: str
    vlan: int | None
    subnet: IPNet
    gateway: IPAddr | None
    mtu: int
    dhcp: DHCPPlan | None
    bridge: str
    """The Linux bridge that is this segment in the emulator (at most 15 characters)."""
    attachments: tuple[Attachment, ...]
    """Every NIC on the segment: nodes' then hosts', in lab order."""
    nameservers: tuple[IPAddr, ...] = ()
    """DNS servers as the lab file names them (``render`` defaults to the gateway)."""


class NICPlan(PlanModel):
    """A NIC of a node or host, with its address in CIDR form."""

    name: str
    network: str
    address: IPIface | None
    mtu: int
    bridge: str | None
    """The node-local Linux bridge the NIC is enslaved to (its address then moves there)."""
    management: bool
    """Whether this NIC carries the node-ip (the node <-> node network)."""
    parent: str | None = None
    """For an 802.1q sub-interface (``ens224.50``): the trunk NIC it is on; None: a NIC."""
    vlan: int | None = None
    """For an 802.1q sub-interface: its VLAN id (its frames leave ``parent`` tagged)."""


class NodePlan(PlanModel):
    """An RKE2 node, everything about it decided."""

    name: str
    index: int
    role: Literal["server", "agent"]
    node_ip: IPAddr
    management_nic: str
    management_network: str
    default_gateway: IPAddr | None
    """The management network's gateway: the node's default route."""
    nics: tuple[NICPlan, ...]
    bridges: tuple[str, ...]
    """Node-local bridges the NICs are enslaved to, sorted."""
    labels: tuple[tuple[str, str], ...]
    """Every label the node carries on the cluster (well-known, role, the lab's), sorted."""
    lab_labels: tuple[tuple[str, str], ...]
    """The lab's own labels (RKE2 ``node-label``), sorted."""
    taints: tuple[str, ...]
    """``key=value:effect`` as RKE2's ``node-taint`` takes them."""
    runs_workloads: bool
    """Whether ordinary pods (no tolerations) may be scheduled here."""
    pod_cidr: IPNet
    """The node's pod range, allocated in node order from clusterCIDR."""
    bootstrap: bool
    """Whether this node starts the cluster (the first server)."""
    join_address: str | None
    """``https://<first server node-ip>:9345``; None for the bootstrap server."""


class HostPlan(PlanModel):
    """A machine outside the cluster."""

    name: str
    nics: tuple[NICPlan, ...]
    http: int | None
    tcp: tuple[int, ...]
    udp: tuple[int, ...]


class NADPlan(PlanModel):
    """A NetworkAttachmentDefinition and what its CNI config says."""

    namespace: str
    name: str
    config: str
    """``spec.config`` as written."""
    cni_type: str | None
    """The first plugin's type (the one that makes the interface)."""
    ipam_types: tuple[str, ...]
    """Every IPAM type used by the config's plugins, in plugin order."""
    master: str | None
    """The node interface it rides on (macvlan/ipvlan/vlan master, host-device device)."""
    bridge: str | None
    """The node bridge it plugs into (bridge plugin)."""

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


class InterfacePlan(PlanModel):
    """One interface of a pod, in the order Multus makes them."""

    name: str
    network: str
    """The network-status name: ``k8s-pod-network`` or ``namespace/nad``."""
    cluster: bool
    """Whether this is the cluster network (eth0)."""
    lab_network: str | None
    """The lab network the interface lands on, on the pod's node (None: not known)."""
    subnet: IPNet | None
    """The pod CIDR of the node for eth0, else the lab network's subnet."""
    cni_type: str | None
    ipam_types: tuple[str, ...]
    ips: tuple[str, ...]
    """Addresses the annotation asks for (``ips``)."""
    mac: str | None
    default_route: tuple[str, ...] | None
    """The ``default-route`` gateways the annotation sets on it (None: not set)."""


class Owner(PlanModel):
    """What makes a pod: a workload of the lab, or Longhorn (kind ``Longhorn``)."""

    kind: str
    name: str


class ProcessPlan(PlanModel):
    """What runs in a pod's namespace (see ``plan/process.py``): ``sleep`` for ``sleep``
    seconds, or the lab's server answering HTTP on ``http`` and echo on ``tcp``/``udp``,
    on every address or on ``bind_interface``'s only."""

    sleep: str | None = None
    http: int | None = None
    tcp: tuple[int, ...] = ()
    udp: tuple[int, ...] = ()
    bind_interface: str | None = None

    @property
    def serves(self) -> bool:
        return self.http is not None or bool(self.tcp) or bool(self.udp)


class PodPlan(PlanModel):
    """A concrete pod: a Pod, a workload's replica, or a Longhorn instance-manager."""

    namespace: str
    name: str
    owner: Owner | None
    """The workload that makes it (same namespace); None for a Pod."""
    node: str | None
    """Where it runs; None: no node fits (Pending)."""
    host_network: bool
    networks_annotation: str | None
    """The raw ``k8s.v1.cni.cncf.io/networks`` value."""
    interfaces: tuple[InterfacePlan, ...]
    """eth0 then net1...; empty for hostNetwork pods (Multus does not run for them)."""
    process: ProcessPlan | None = None
    """What runs in its namespace; None: nothing (the namespace stays, as a pause)."""
    labels: tuple[tuple[str, str], ...] = ()
    """Labels multihome gives the pod, sorted: Longhorn's on its instance-managers (a lab
    pod's own labels stay in its manifest)."""

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


class ManifestPlan(PlanModel):
    """A Kubernetes manifest of the lab, kept verbatim, with where it goes."""

    group: Literal["namespaces", "networks", "workloads", "longhorn"]
    kind: str
    api_version: str
    namespace: str | None
    name: str
    body: dict[str, Any]
    """The document exactly as written (do not mutate)."""


class LonghornPlan(PlanModel):
    """Longhorn's storage network and release."""

    storage_network: str
    """``namespace/nad``."""
    setting_in_lab: bool
    """Whether the lab has the ``storage-network`` Setting manifest itself."""
    interface: str
    """The interface name Longhorn gives its pods on the storage network."""
    version: str
    """The Longhorn release (``1.4.4``): the lab's, or the cluster version's era's."""
    version_reason: str
    """Why that release: ``set in the lab file`` or the era it was chosen by."""
    instance_manager_image: str
    """The image the instance-managers run (their names hash it)."""
    instance_manager_types: tuple[str, ...]
    """Per node: ``engine``, ``replica`` (1.4) or ``aio`` (1.5 and later)."""


EndpointKind = Literal["pod", "node", "host"]
TargetKind = Literal["pod", "node", "host", "ip"]
ViaKind = Literal["network", "interface"]


class ExpectPlan(PlanModel):
    """One ``expect`` entry of the lab: ``from_`` reaches (or not) ``to``."""

    index: int
    """1-based, as the design checks and the verifier name it (``expect #1``)."""
    from_: str
    source_kind: EndpointKind | None
    """What ``from_`` names; None: nothing of the lab."""
    to: str
    """As written: an IP, ``IP:port``, a pod (``namespace/name``), a node or a host."""
    target: str
    """``to`` without its port."""
    target_kind: TargetKind | None
    port: int | None
    via: str | None
    """A network or an interface name the traffic must take."""
    via_kind: ViaKind | None
    proto: Literal["icmp", "tcp", "udp", "http"]
    result: Literal["allow", "deny"]
    deadline: float
    """Seconds the verifier may spend on it; a failing probe is retried until then."""
    retries: int
    line: int
    column: int
    """Where the entry is written in the lab file."""


class ScenarioPlan(PlanModel):
    """A what-if of the lab (``verify --scenario``): faults as ``multihome fault`` words,
    and the expectations that hold under them."""

    name: str
    description: str
    faults: tuple[tuple[str, ...], ...]
    """Each fault's words: verb, target (and rate)."""
    expect: tuple[ExpectPlan, ...]
    line: int
    """Where the scenario is written in the lab file."""


class ClusterPlan(PlanModel):
    """The cluster as RKE2 runs it."""

    distribution: str
    version: str | None
    cni: tuple[str, ...]
    canal_iface: str | None
    canal_backend: str
    cluster_cidr: IPNet
    service_cidr: IPNet
    node_cidr_mask_size: int
    servers_run_workloads: bool
    management_network: str
    bootstrap_server: str
    join_address: str


class Plan(PlanModel):
    """A lab resolved: networks, nodes, hosts, NADs, pods and manifests, all named."""

    name: str
    cluster: ClusterPlan
    networks: tuple[NetworkPlan, ...]
    nodes: tuple[NodePlan, ...]
    hosts: tuple[HostPlan, ...]
    nads: tuple[NADPlan, ...]
    pods: tuple[PodPlan, ...]
    manifests: tuple[ManifestPlan, ...]
    """Grouped: namespaces, networks (NADs), workloads, longhorn; lab order in a group."""
    longhorn: LonghornPlan | None
    expect: tuple[ExpectPlan, ...] = ()
    """The lab's ``expect`` entries, in lab order."""
    scenarios: tuple[ScenarioPlan, ...] = ()
    """The lab's what-if scenarios, in lab order."""

    def node(self, name: str) -> NodePlan:
        """The node of that name (KeyError when there is none)."""
        for node in self.nodes:
            if node.name == name:
                return node
        raise KeyError(name)

    def nad(self, key: str) -> NADPlan | None:
        """The NAD ``namespace/name``, or None."""
        return next((n for n in self.nads if n.key == key), None)

    @property
    def servers(self) -> tuple[NodePlan, ...]:
        return tuple(n for n in self.nodes if n.role == "server")

    @property
    def agents(self) -> tuple[NodePlan, ...]:
        return tuple(n for n in self.nodes if n.role == "agent")

    def to_dict(self) -> dict[str, Any]:
        """The plan as JSON-ready data (addresses as strings)."""
        return self.model_dump(mode="json")

    def to_json(self) -> str:
        """The plan as JSON text, 2-space indented, ending in a newline; stable."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"
