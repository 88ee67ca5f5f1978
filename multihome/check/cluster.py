"""Checks of the cluster section: RKE2's CNI list and where Canal is pinned."""

from __future__ import annotations

from collections.abc import Iterator

from multihome.check.context import Context
from multihome.check.findings import Finding, nodes_phrase
from multihome.check.registry import check


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
