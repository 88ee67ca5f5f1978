"""``build_plan``: a loaded lab in, the whole plan out. Pure: reads nothing, writes nothing."""

from __future__ import annotations

from collections.abc import Mapping

from multihome.plan.expect import expect_plans, scenario_plans
from multihome.plan.longhorn import longhorn_plan
from multihome.plan.manifests import manifest_plans
from multihome.plan.model import ClusterPlan, HostPlan, Plan
from multihome.plan.nads import nad_plans
from multihome.plan.networks import network_index, network_plans, nic_plans
from multihome.plan.nodes import bootstrap_server, join_address, node_plans
from multihome.plan.pods import pod_plans
from multihome.spec import LabFile, LabSpec


def _hosts(spec: LabSpec) -> tuple[HostPlan, ...]:
    nets = network_index(spec)
    return tuple(
        HostPlan(
            name=host.name,
            nics=nic_plans(host.name, host.nics, nets),
            http=host.serve.http,
            tcp=tuple(host.serve.tcp),
            udp=tuple(host.serve.udp),
        )
        for host in spec.hosts
    )


def build_plan(lab_file: LabFile, placed: Mapping[str, str] | None = None) -> Plan:
    """Resolve a loaded lab into its plan; raises :class:`PlanError` when it can't.

    ``placed`` (pod ``namespace/name`` -> node) are the pods of a running lab: each stays
    on its node while that node is still eligible, as a scheduler never moves a running pod.

    Meant for labs that pass the design checks; the few faults that would make a plan
    meaningless (no server, a node-ip on no NIC, too small a clusterCIDR, an invalid
    annotation, two pods with one name) raise instead of being guessed around.
    """
    spec = lab_file.lab.spec
    networks = network_plans(spec)
    nodes = node_plans(spec)
    first = bootstrap_server(spec)
    bootstrap = next(n for n in nodes if n.name == first.name)
    cluster = spec.cluster
    nads = nad_plans(lab_file)
    longhorn = longhorn_plan(lab_file)
    hosts = _hosts(spec)
    pods = pod_plans(lab_file, nodes, networks, nads, longhorn, placed or {})
    return Plan(
        name=lab_file.lab.metadata.name,
        cluster=ClusterPlan(
            distribution=cluster.distribution,
            version=cluster.version,
            cni=tuple(cluster.cni),
            canal_iface=cluster.canal.iface,
            canal_backend=cluster.canal.backend,
            cluster_cidr=cluster.cluster_cidr,
            service_cidr=cluster.service_cidr,
            node_cidr_mask_size=cluster.node_cidr_mask_size,
            servers_run_workloads=cluster.servers_run_workloads,
            management_network=bootstrap.management_network,
            bootstrap_server=bootstrap.name,
            join_address=join_address(bootstrap.node_ip),
        ),
        networks=networks,
        nodes=nodes,
        hosts=hosts,
        nads=nads,
        pods=pods,
        manifests=manifest_plans(lab_file),
        longhorn=longhorn,
        expect=expect_plans(lab_file, networks, nodes, hosts, pods),
        scenarios=scenario_plans(lab_file, networks, nodes, hosts, pods),
    )
