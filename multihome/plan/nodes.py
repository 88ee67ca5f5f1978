"""Nodes resolved: role, node-ip and its NIC, labels and taints as RKE2 sets them, the pod
CIDR the node IPAM controller hands out, and how each node joins (first server bootstraps)."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import IPv6Address
from itertools import islice

from multihome.plan.errors import PlanError
from multihome.plan.model import SUPERVISOR_PORT, IPAddr, IPNet, NodePlan
from multihome.plan.networks import network_index, nic_plans, vlan_network
from multihome.plan.scheduling import node_labels, node_taints, untolerated
from multihome.spec import Cluster, LabSpec, Network, Node, Taint


def taint_text(taint: Taint) -> str:
    """``key=value:effect`` (``key:effect`` when the value is empty), as node-taint takes it."""
    key = f"{taint.key}={taint.value}" if taint.value else taint.key
    return f"{key}:{taint.effect}"


def join_address(node_ip: IPAddr) -> str:
    """The supervisor URL joining nodes register with: ``https://<ip>:9345``."""
    host = f"[{node_ip}]" if isinstance(node_ip, IPv6Address) else str(node_ip)
    return f"https://{host}:{SUPERVISOR_PORT}"


def pod_cidrs(cluster: Cluster, count: int) -> list[IPNet]:
    """The first ``count`` node ranges of clusterCIDR, in order (10.42.0.0/24, 10.42.1.0/24...)."""
    cidr, size = cluster.cluster_cidr, cluster.node_cidr_mask_size
    if size < cidr.prefixlen or size > cidr.max_prefixlen:
        raise PlanError(
            f"nodeCIDRMaskSize {size} does not fit clusterCIDR {cidr} "
            f"(it must be between {cidr.prefixlen} and {cidr.max_prefixlen})"
        )
    subnets: Iterator[IPNet] = cidr.subnets(new_prefix=size)
    found = list(islice(subnets, count))
    if len(found) < count:
        raise PlanError(
            f"clusterCIDR {cidr} holds {len(found)} /{size} node ranges, but the lab has "
            f"{count} nodes; use a larger clusterCIDR or a larger nodeCIDRMaskSize"
        )
    return found


def _node_ip(node: Node, nets: dict[str, Network]) -> tuple[IPAddr, str, str]:
    """The node-ip, the NIC that has it and that NIC's network."""
    ip = node.effective_node_ip
    if ip is None:
        raise PlanError(f"node {node.name} has no node-ip: none of its NICs has an address")
    nic = next((n for n in node.nics if n.address == ip and n.network is not None), None)
    if nic is not None and nic.network is not None:
        return ip, nic.name, nic.network
    for trunk in node.nics:  # node-ip on a tagged VLAN (a sub-interface)
        sub = next((v for v in trunk.vlans if v.address == ip), None)
        net = vlan_network(nets, sub.id) if sub else None
        if sub is not None and net is not None:
            return ip, sub.name, net.name
    raise PlanError(f"node {node.name}: node-ip {ip} is not the address of any of its NICs")


def bootstrap_server(spec: LabSpec) -> Node:
    """The server that starts the cluster: the first one in the lab."""
    server = next((n for n in spec.nodes if n.role == "server"), None)
    if server is None:
        raise PlanError("the lab has no server node: an RKE2 cluster needs at least one")
    return server


def node_plans(spec: LabSpec) -> tuple[NodePlan, ...]:
    """Every node, in lab order."""
    nets = network_index(spec)
    first = bootstrap_server(spec)
    join = join_address(_node_ip(first, nets)[0])
    cidrs = pod_cidrs(spec.cluster, len(spec.nodes))
    plans = []
    for index, node in enumerate(spec.nodes):
        ip, mgmt_nic, mgmt_net = _node_ip(node, nets)
        nics = nic_plans(node.name, node.nics, nets, mgmt_nic)
        taints = node_taints(node, spec.cluster)
        gateway = nets[mgmt_net].gateway
        plans.append(
            NodePlan(
                name=node.name,
                index=index,
                role=node.role,
                node_ip=ip,
                management_nic=mgmt_nic,
                management_network=mgmt_net,
                default_gateway=gateway,
                nics=nics,
                bridges=tuple(sorted({n.bridge for n in nics if n.bridge})),
                labels=tuple(sorted(node_labels(node).items())),
                lab_labels=tuple(sorted(node.labels.items())),
                taints=tuple(taint_text(t) for t in taints),
                runs_workloads=not untolerated(taints, []),
                pod_cidr=cidrs[index],
                bootstrap=node is first,
                join_address=None if node is first else join,
            )
        )
    return tuple(plans)
