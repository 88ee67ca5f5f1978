"""Checks of the cluster section: RKE2's CNI list (and which values the design's RKE2 version
accepts), where Canal is pinned, and whether the version's rke2-multus chart can start the CNI
dhcp daemon the design needs (``plan.rke2_releases``)."""

from __future__ import annotations

from collections.abc import Iterator

from multihome.check.context import Context
from multihome.check.findings import Finding, nodes_phrase
from multihome.check.registry import check
from multihome.plan.rke2_releases import cni_refusal, multus_chart, releases_since
from multihome.plan.scheduling import node_taints
from multihome.spec import Node


@check
def cni_list(ctx: Context) -> Iterator[Finding]:
    cni = list(ctx.spec.cluster.cni)
    where = ctx.at("spec", "cluster", "cni")
    if len(cni) > 2:
        yield ctx.error(
            "cni-too-many",
            where,
            f"cni lists {len(cni)} plugins {cni}: RKE2 accepts at most two",
            "use [multus, canal]",
        )
    if "multus" in cni and cni[0] != "multus":
        yield ctx.error(
            "cni-multus-not-first",
            where,
            f"multus is listed after {cni[0]}: RKE2 needs multus first",
            "write cni: [multus, " + ", ".join(c for c in cni if c != "multus") + "]",
        )
    primaries = [c for c in cni if c != "multus"]
    if "multus" in cni and not primaries:
        yield ctx.error(
            "cni-no-primary",
            where,
            "multus alone is not a cluster network: RKE2 needs a primary CNI after it",
            "write cni: [multus, canal]",
        )
    if "none" in cni and len(cni) > 1:
        yield ctx.error(
            "cni-none-combined",
            where,
            "cni 'none' can't be combined with other plugins",
            "use cni: [multus, canal], or none alone",
        )
    if "multus" not in cni and ctx.lf.nads():
        yield ctx.error(
            "cni-multus-missing",
            where,
            "the lab defines NetworkAttachmentDefinitions but the cluster does not run multus",
            "write cni: [multus, canal]",
        )
    if primaries and primaries[0] not in ("canal", "none"):
        yield ctx.warning(
            "cni-primary-emulated-as-canal",
            where,
            f"the lab emulates the cluster network as Canal (host-gw); {primaries[0]} is rendered "
            "for the real cluster but not emulated",
            "use canal to test exactly what runs",
        )


@check
def canal_iface(ctx: Context) -> Iterator[Finding]:
    canal = ctx.spec.cluster.canal
    if "canal" not in ctx.spec.cluster.cni:
        return
    if canal.iface is None:
        multi = [n.name for n in ctx.spec.nodes if len(n.nics) > 1]
        if multi:
            yield ctx.warning(
                "canal-iface-unset",
                ctx.at("spec", "cluster", "canal"),
                "Canal's interface is not pinned and nodes "
                + ", ".join(multi)
                + " have several NICs: Calico and Flannel pick the default-route interface, "
                "which may not be the node-ip's (rancher/rke2#1353)",
                "set cluster.canal.iface to the management NIC (e.g. ens192)",
            )
        return
    where = ctx.at("spec", "cluster", "canal", "iface")
    mgmt = ctx.management_network
    missing = [n.name for n in ctx.spec.nodes if not ctx.has_interface(n, canal.iface)]
    if missing:
        yield ctx.error(
            "canal-iface-missing",
            where,
            f"Canal is pinned to {canal.iface}, which is missing on {nodes_phrase(missing)}: "
            "Flannel fails to start there and those nodes get no pod network",
            f"give every node a NIC named {canal.iface}, or pin Canal to a NIC all nodes have",
        )
    wrong = []
    for node in ctx.spec.nodes:
        net = ctx.nic_network(node, canal.iface)
        if net is not None and mgmt is not None and net != mgmt:
            wrong.append(f"{node.name} ({canal.iface} is on {net})")
    if wrong:
        yield ctx.error(
            "canal-iface-network",
            where,
            f"Canal is pinned to {canal.iface}, which is not on the node-ip network {mgmt} on "
            + ", ".join(wrong)
            + ": pod traffic between nodes would cross the wrong VLAN (rancher/rke2#1353)",
            f"pin Canal to the NIC on {mgmt} (calico.ipAutoDetectionMethod and flannel.iface)",
        )


@check
def canal_default_route(ctx: Context) -> Iterator[Finding]:
    """Calico's pods route everything via 169.254.1.1, which the node answers by proxy ARP
    only for an address it can route elsewhere: a node without a default route leaves its
    pods' eth0 reaching nothing (the kernel's arp_process needs a route to the target)."""
    if "canal" not in ctx.spec.cluster.cni or ctx.management_network is None:
        return
    index, net = next(
        ((i, n) for i, n in enumerate(ctx.spec.networks) if n.name == ctx.management_network),
        (None, None),
    )
    if net is None or index is None or net.gateway is not None:
        return
    yield ctx.warning(
        "canal-no-default-route",
        ctx.at("spec", "networks", index),
        f"the node-ip network {net.name} has no gateway, so nodes have no default route: "
        "Calico gives pods 'default via 169.254.1.1', which the node answers by proxy ARP "
        "only for addresses it routes, so pods' eth0 reach nothing (RKE2 also wants a default "
        "route to pick its addresses)",
        f"give {net.name} a gateway (spec.networks[{index}].gateway)",
    )


@check
def cni_by_version(ctx: Context) -> Iterator[Finding]:
    """RKE2's server stops at start on a ``cni`` value its release does not know."""
    version = ctx.spec.cluster.version
    for index, value in enumerate(ctx.spec.cluster.cni):
        rule = cni_refusal(value, version)
        if rule is None:
            continue
        yield ctx.error(
            "cni-unsupported-version",
            ctx.at("spec", "cluster", "cni", index),
            f"RKE2 {version} does not know cni '{value}': its server stops at start with "
            f"'invalid value provided for --cni flag' ({rule})",
            f"use a release that accepts {value}, or another cni value (e.g. canal)",
        )


def _dhcp_nodes(ctx: Context) -> tuple[list[str], list[Node]]:
    """The NADs whose plugins use dhcp IPAM, and the nodes that may run a pod on one of them
    (Longhorn's instance-managers on every workload node when one is the storage network)."""
    keys = []
    nodes: dict[str, Node] = {}
    storage = ctx.spec.longhorn.storage_network if ctx.spec.longhorn else None
    for key, nad in ctx.nads.items():
        plugins = nad.conf.plugins if nad.conf else []
        ipams = [p.raw.get("ipam") for p in plugins]
        if not any(isinstance(i, dict) and i.get("type") == "dhcp" for i in ipams):
            continue
        keys.append(key)
        for node in ctx.nodes_running(key):
            nodes.setdefault(node.name, node)
        if key == storage:
            for node in ctx.workload_nodes:
                nodes.setdefault(node.name, node)
    return keys, [n for n in ctx.spec.nodes if n.name in nodes]


@check
def dhcp_daemon_chart(ctx: Context) -> Iterator[Finding]:
    """``manifests.dhcpDaemonSet`` does nothing where the release's rke2-multus chart lacks
    it; where the chart's DaemonSet tolerates no taint, it skips tainted nodes."""
    cluster = ctx.spec.cluster
    if "multus" not in cluster.cni:
        return
    keys, nodes = _dhcp_nodes(ctx)
    chart = multus_chart(cluster.version)
    if not keys or not nodes or chart is None:
        return
    where = ctx.at("spec", "cluster", "version") if cluster.version else ctx.at("spec", "cluster")
    needs = (
        f"{', '.join(keys)} use{'s' if len(keys) == 1 else ''} dhcp IPAM, which needs the CNI "
        f"dhcp daemon on {nodes_phrase([n.name for n in nodes])}"
    )
    if not chart.dhcp_value:
        yield ctx.warning(
            "rke2-dhcp-daemon-missing",
            where,
            f"{needs}; RKE2 {cluster.version} ships {chart.describe()}, which has neither the "
            "manifests.dhcpDaemonSet value nor a dhcp DaemonSet (the chart has them from "
            f"v4.0.2-build2023081104, in RKE2 {releases_since('dhcp_value')} on): no daemon "
            "runs, and those pods' dhcp IPAM fails to reach /run/cni/dhcp.sock",
            "apply the dhcp DaemonSet that multihome render writes (multihome-cni-dhcp), or "
            f"use an RKE2 release from {releases_since('dhcp_value')} on",
        )
        return
    tainted = [
        n.name
        for n in nodes
        if any(t.effect != "PreferNoSchedule" for t in node_taints(n, cluster))
    ]
    if tainted and not chart.dhcp_tolerates_taints:
        yield ctx.warning(
            "rke2-dhcp-daemon-untolerated",
            where,
            f"{needs}; RKE2 {cluster.version} ships {chart.describe()}, whose dhcp DaemonSet "
            f"tolerates no taint, so it does not run on the tainted {nodes_phrase(tainted)} "
            f"(tolerations from chart v4.0.204, in RKE2 {releases_since('dhcp_tolerates_taints')} "
            "on)",
            "apply the dhcp DaemonSet that multihome render writes for this version "
            "(multihome-cni-dhcp), or use an RKE2 release from "
            f"{releases_since('dhcp_tolerates_taints')} on",
        )
