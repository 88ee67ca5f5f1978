"""Resolve a spec into a concrete, fully named plan. Pure, no side effects.

``build_plan(lab_file) -> Plan``: networks as segments, nodes (role, node-ip, NICs, labels,
taints, pod CIDR, how they join), hosts, NADs, every pod with its node and interfaces, and
the manifests in apply order. Both ``render`` and the emulator work from it.
"""

from multihome.plan.build import build_plan
from multihome.plan.errors import PlanError
from multihome.plan.expect import split_endpoint
from multihome.plan.model import (
    CLUSTER_NETWORK,
    SUPERVISOR_PORT,
    Attachment,
    ClusterPlan,
    DHCPPlan,
    ExpectPlan,
    HostPlan,
    InterfacePlan,
    LonghornPlan,
    ManifestPlan,
    NADPlan,
    NetworkPlan,
    NICPlan,
    NodePlan,
    Owner,
    Plan,
    PodPlan,
    ProcessPlan,
    ScenarioPlan,
)
from multihome.plan.nads import lab_network_on, vlan_id
from multihome.plan.pods import LONGHORN_INTERFACE, LONGHORN_NAMESPACE, longhorn_annotation

__all__ = [
    "CLUSTER_NETWORK",
    "LONGHORN_INTERFACE",
    "LONGHORN_NAMESPACE",
    "SUPERVISOR_PORT",
    "Attachment",
    "ClusterPlan",
    "DHCPPlan",
    "ExpectPlan",
    "HostPlan",
    "InterfacePlan",
    "LonghornPlan",
    "ManifestPlan",
    "NADPlan",
    "NICPlan",
    "NetworkPlan",
    "NodePlan",
    "Owner",
    "Plan",
    "PlanError",
    "PodPlan",
    "ProcessPlan",
    "ScenarioPlan",
    "build_plan",
    "lab_network_on",
    "longhorn_annotation",
    "split_endpoint",
    "vlan_id",
]
