"""What the design checks share: the lab resolved once (networks, NADs with their parsed CNI
configs, pods with their parsed selections and the agents they may run on)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from multihome.check.findings import Finding, Severity, kind_of
from multihome.cni import ConfigError, NetworkConfigList, installed, load_network_config
from multihome.multus import NetworkSelectionElement, SelectionError, parse_network_selection
from multihome.plan.scheduling import eligible_nodes
from multihome.spec import (
    NIC,
    ConfigJSONError,
    LabFile,
    Location,
    Manifest,
    NADView,
    Network,
    Node,
    PodTemplate,
    parse_cni_json,
)

PathItem = str | int


@dataclass
class NADInfo:
    """A NetworkAttachmentDefinition and what its CNI config says."""

    manifest: Manifest
    index: int
    conf: NetworkConfigList | None = None
    error: str | None = None

    @property
    def key(self) -> str:
        return f"{self.manifest.namespace}/{self.manifest.name}"

    @property
    def main(self) -> dict[str, Any]:
        """The plugin that makes the interface: the first one of the chain."""
        return dict(self.conf.plugins[0].raw) if self.conf and self.conf.plugins else {}

    @property
    def main_type(self) -> str | None:
        return self.conf.plugins[0].type if self.conf and self.conf.plugins else None

    @property
    def ipam_type(self) -> str | None:
        ipam = self.main.get("ipam")
        return ipam.get("type") if isinstance(ipam, dict) else None

    @property
    def master(self) -> str | None:
        """The node interface the attachment rides on: macvlan/ipvlan master, host-device."""
        kind = self.main_type
        if kind in ("macvlan", "ipvlan", "vlan"):
            value = self.main.get("master")
        elif kind == "host-device":
            value = self.main.get("device")
        else:
            return None
        return value if isinstance(value, str) and value else None

    @property
    def bridge(self) -> str | None:
        if self.main_type != "bridge":
            return None
        value = self.main.get("bridge", "cni0")
        return value if isinstance(value, str) else None

    def locate_config(self) -> Location:
        return self.manifest.locate("spec", "config")


@dataclass
class PodInfo:
    """A pod as written (a Pod or a workload's template) and its network selection."""

    template: PodTemplate
    selections: list[NetworkSelectionElement] = field(default_factory=list)
    selection_error: str | None = None
    eligible: list[Node] = field(default_factory=list)

    @property
    def ref(self) -> str:
        return f"{self.template.manifest.kind} {self.template.namespace}/{self.template.name}"

    def locate_networks(self) -> Location:
        return self.template.locate("metadata", "annotations", "k8s.v1.cni.cncf.io/networks")


class Context:
    """The lab once, resolved for the checks; plus helpers to make findings."""

    def __init__(self, lab_file: LabFile) -> None:
        self.lf = lab_file
        self.lab = lab_file.lab
        self.spec = lab_file.lab.spec

    # -- places and findings -------------------------------------------------------------
    def at(self, *path: PathItem) -> Location:
        return self.lf.locate(*path)

    @staticmethod
    def error(id: str, where: Location | None, message: str, fix: str) -> Finding:
        return Finding(id, Severity.ERROR, where, message, fix, kind_of(id, Severity.ERROR))

    @staticmethod
    def warning(id: str, where: Location | None, message: str, fix: str) -> Finding:
        return Finding(id, Severity.WARNING, where, message, fix, kind_of(id, Severity.WARNING))

    # -- the machines and wires ----------------------------------------------------------
    @cached_property
    def networks(self) -> dict[str, Network]:
        found: dict[str, Network] = {}
        for net in self.spec.networks:
            found.setdefault(net.name, net)
        return found

    def network_index(self, name: str) -> int:
        return next(i for i, n in enumerate(self.spec.networks) if n.name == name)

    @cached_property
    def agents(self) -> list[Node]:
        return [n for n in self.spec.nodes if n.role == "agent"]

    @cached_property
    def workload_nodes(self) -> list[Node]:
        """Nodes that run ordinary pods: agents, plus servers when they run workloads."""
        if self.spec.cluster.servers_run_workloads:
            return list(self.spec.nodes)
        return self.agents

    def node_index(self, node: Node) -> int:
        return self.spec.nodes.index(node)

    def vlan_network(self, vid: int) -> str | None:
        """The network that is VLAN ``vid`` (the first, as the plan takes it)."""
        return next((n.name for n in self.spec.networks if n.vlan == vid), None)

    def nic_network(self, node: Node, ifname: str) -> str | None:
        """The network a node's interface is on: a NIC of that name (its untagged network),
        an 802.1q sub-interface (its VLAN's network), or a bridge either is in."""
        for nic in node.nics:
            if nic.name == ifname or (nic.bridge is not None and nic.bridge == ifname):
                return nic.network
            for sub in nic.vlans:
                if ifname in (sub.name, sub.bridge):
                    return self.vlan_network(sub.id)
        return None

    def has_interface(self, node: Node, ifname: str) -> bool:
        """A NIC (a trunk with tagged VLANs only too), a sub-interface or a bridge of them."""
        return any(
            ifname in (nic.name, nic.bridge) or any(ifname in (v.name, v.bridge) for v in nic.vlans)
            for nic in node.nics
        )

    def machines(self) -> Iterator[tuple[str, int, str, list[NIC]]]:
        """Every node and host as ``(spec section, index, name, NICs)``."""
        for i, node in enumerate(self.spec.nodes):
            yield "nodes", i, node.name, node.nics
        for i, host in enumerate(self.spec.hosts):
            yield "hosts", i, host.name, host.nics

    @cached_property
    def management_network(self) -> str | None:
        """The network of the node-ips: the first server's (else first node's) node-ip."""
        ordered = sorted(self.spec.nodes, key=lambda n: n.role != "server")
        for node in ordered:
            ip = node.effective_node_ip
            if ip is None:
                continue
            for nic in node.nics:
                if nic.address == ip:
                    return nic.network
        return None

    # -- this machine ----------------------------------------------------------------------
    @cached_property
    def plugins_release(self) -> installed.Release | None:
        """The release of the reference plugins the lab's nodes run (this machine's); None:
        not installed or not known."""
        return installed.release()

    # -- manifests -----------------------------------------------------------------------
    @cached_property
    def nads(self) -> dict[str, NADInfo]:
        found: dict[str, NADInfo] = {}
        for index, manifest in enumerate(self.lf.nads()):
            info = NADInfo(manifest, index)
            view = manifest.view
            config = view.spec.config if isinstance(view, NADView) else None
            if config is None:
                info.error = "has no spec.config"
            elif not isinstance(config, str):
                info.error = "spec.config must be a string holding JSON"
            else:
                info.conf, info.error = _parse_cni(config, manifest.name)
            found.setdefault(info.key, info)
        return found

    @cached_property
    def pods(self) -> list[PodInfo]:
        pods = []
        for template in self.lf.pods_and_templates():
            info = PodInfo(template)
            try:
                info.selections = parse_network_selection(template.networks, template.namespace)
            except SelectionError as exc:
                info.selection_error = str(exc)
            info.eligible = eligible_nodes(template.spec, self.spec.nodes, self.spec.cluster)
            pods.append(info)
        return pods

    def users_of(self, nad_key: str) -> list[PodInfo]:
        """Pods that select this NAD."""
        return self._users.get(nad_key, [])

    @cached_property
    def _users(self) -> dict[str, list[PodInfo]]:
        """NAD key -> the pods that select it, in order (each pod once): one pass over the
        pods, not one per NAD."""
        users: dict[str, list[PodInfo]] = {}
        for pod in self.pods:
            for key in dict.fromkeys(f"{s.namespace}/{s.name}" for s in pod.selections):
                users.setdefault(key, []).append(pod)
        return users

    def nodes_running(self, nad_key: str) -> list[Node]:
        """Nodes that may run a pod using this NAD (all workload nodes when no pod does yet:
        a NAD is cluster-wide, any scheduled pod may ask for it)."""
        users = self.users_of(nad_key)
        if not users:
            return self.workload_nodes
        names: dict[str, Node] = {}
        for pod in users:
            for node in pod.eligible:
                names.setdefault(node.name, node)
        return [n for n in self.spec.nodes if n.name in names]


def _parse_cni(config: str, nad_name: str) -> tuple[NetworkConfigList | None, str | None]:
    try:
        raw = parse_cni_json(config)
    except ConfigJSONError as exc:
        return None, f"spec.config {exc}"
    if "name" not in raw:
        raw = {**raw, "name": nad_name}  # Multus names a config without a name after its NAD
    try:
        return load_network_config(raw), None
    except ConfigError as exc:
        return None, f"spec.config is not a valid CNI configuration: {exc}"
