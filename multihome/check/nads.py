"""Checks of NetworkAttachmentDefinitions: names, CNI configs, masters, MTU and IPAM."""

from __future__ import annotations

from collections.abc import Iterator

from multihome.check.context import Context, NADInfo
from multihome.check.findings import Finding, nodes_phrase
from multihome.check.names import dns1123_label_problem, rfc1123_subdomain_problems
from multihome.check.registry import check
from multihome.spec import ConfigJSONError, Node, parse_cni_json

NODE_WIDE_IPAM = frozenset({"host-local"})
"""IPAM whose allocations are per node: two nodes hand out the same addresses."""


def nad_network(ctx: Context, nad: NADInfo, node: Node) -> str | None:
    """The lab network a NAD's interfaces land on, on that node (None: none or unknown)."""
    if nad.master is not None:
        return ctx.nic_network(node, nad.master)
    bridge = nad.bridge
    if bridge is not None:
        return next((nic.network for nic in node.nics if nic.bridge == bridge), None)
    return None


@check
def nad_configs(ctx: Context) -> Iterator[Finding]:
    for nad in ctx.nads.values():
        m = nad.manifest
        problem = dns1123_label_problem(m.name)
        if problem and not rfc1123_subdomain_problems(m.name):  # else object-name-invalid
            yield ctx.error(
                "nad-name-invalid",
                m.locate("metadata", "name"),
                f"NAD {nad.key}: name {m.name!r} {problem}: the API accepts it, but a pod "
                "can't ask for it (Multus reads NAD names as DNS-1123 labels)",
                "NAD names are DNS-1123 labels, e.g. 'macvlan-storage'",
            )
        if _lacks_cni_version(nad):
            yield ctx.warning(
                "nad-cniversion-missing",
                nad.locate_config(),
                f"NAD {nad.key}: spec.config has no cniVersion: libcni sends the plugins an "
                "empty version, the reference plugins (1.1.1) answer with a 0.1.0 result, which "
                "has no interfaces, so network-status shows no interface or MAC for it",
                'add "cniVersion": "0.3.1" (or "1.0.0"), as the other NADs have',
            )
        if nad.error is not None:
            yield ctx.error(
                "nad-config-invalid",
                nad.locate_config(),
                f"NAD {nad.key}: {nad.error}",
                "spec.config must be a CNI conf or conflist as a JSON string",
            )
            continue
        assert nad.conf is not None
        if nad.main_type in ("macvlan", "ipvlan") and nad.master is None:
            yield ctx.warning(
                "nad-master-unset",
                nad.locate_config(),
                f"NAD {nad.key}: {nad.main_type} has no master, so it rides on each node's "
                "default-route interface (the management NIC), not on a dedicated VLAN",
                'set "master" to the NIC of the network it is meant for, e.g. "ens224"',
            )


@check
def nad_masters(ctx: Context) -> Iterator[Finding]:
    for nad in ctx.nads.values():
        if nad.conf is None:
            continue
        nodes = ctx.nodes_running(nad.key)
        if nad.master is not None:
            lacking = [n.name for n in nodes if not ctx.has_interface(n, nad.master)]
            if lacking:
                yield ctx.error(
                    "nad-master-missing",
                    nad.locate_config(),
                    f"NAD {nad.key}: master {nad.master} does not exist on "
                    + nodes_phrase(lacking)
                    + ": a pod scheduled there fails with 'Link not found' (multus-cni#871)",
                    f"give those nodes a NIC named {nad.master}, or keep pods using this NAD off "
                    "them (nodeSelector)",
                )
        elif nad.bridge is not None:
            lonely = [n.name for n in nodes if nad_network(ctx, nad, n) is None]
            if lonely:
                yield ctx.warning(
                    "nad-bridge-unconnected",
                    nad.locate_config(),
                    f"NAD {nad.key}: bridge {nad.bridge} has no NIC in it on "
                    + ", ".join(lonely)
                    + ", so pods there only reach pods on the same node",
                    f"give a NIC 'bridge: {nad.bridge}' on those nodes",
                )


@check
def nad_mtu(ctx: Context) -> Iterator[Finding]:
    for nad in ctx.nads.values():
        mtu = nad.main.get("mtu")
        if not isinstance(mtu, int) or isinstance(mtu, bool):
            continue
        for node in ctx.nodes_running(nad.key):
            net_name = nad_network(ctx, nad, node)
            net = ctx.networks.get(net_name) if net_name else None
            if net is not None and mtu > net.mtu:
                yield ctx.error(
                    "nad-mtu-too-big",
                    nad.locate_config(),
                    f"NAD {nad.key}: mtu {mtu} is above the MTU {net.mtu} of {net.name}, "
                    f"its master's network on {node.name}",
                    f"set mtu to at most {net.mtu}, or raise the network's mtu",
                )
                break


@check
def nad_ipam(ctx: Context) -> Iterator[Finding]:
    for nad in ctx.nads.values():
        ipam = nad.ipam_type
        if ipam is None:
            continue
        nodes = ctx.nodes_running(nad.key)
        networks = {n.name: nad_network(ctx, nad, n) for n in nodes}
        if ipam == "dhcp":
            without = sorted(
                {
                    net
                    for net in networks.values()
                    if net is not None and net in ctx.networks and ctx.networks[net].dhcp is None
                }
            )
            if without:
                yield ctx.error(
                    "nad-dhcp-no-server",
                    nad.locate_config(),
                    f"NAD {nad.key} uses DHCP IPAM, but network {', '.join(without)} has no DHCP "
                    "server: attachments wait and then fail",
                    "add a dhcp: section to the network, or use static or whereabouts IPAM",
                )
        if ipam in NODE_WIDE_IPAM:
            by_net: dict[str, list[str]] = {}
            for node_name, net in networks.items():
                if net is not None:
                    by_net.setdefault(net, []).append(node_name)
            shared = {net: names for net, names in by_net.items() if len(names) > 1}
            for net, names in sorted(shared.items()):
                yield ctx.warning(
                    "nad-host-local-shared",
                    nad.locate_config(),
                    f"NAD {nad.key} uses host-local IPAM on {net}, which {nodes_phrase(names)} "
                    "share: each node allocates from the same range, so pods on different nodes "
                    "get the same addresses (multus-cni#640)",
                    "use static IPAM with per-pod ips, dhcp, or whereabouts for cluster-wide IPAM",
                )


@check
def dhcp_offers_router(ctx: Context) -> Iterator[Finding]:
    for pod in ctx.pods:
        if any(s.default_route for s in pod.selections):
            continue
        for sel in pod.selections:
            nad = ctx.nads.get(f"{sel.namespace}/{sel.name}")
            if nad is None or nad.ipam_type != "dhcp":
                continue
            for node in pod.eligible:
                net_name = nad_network(ctx, nad, node)
                net = ctx.networks.get(net_name) if net_name else None
                if net is not None and net.dhcp is not None and net.dhcp.router:
                    yield ctx.warning(
                        "dhcp-second-default-route",
                        pod.locate_networks(),
                        f"{pod.ref}: the DHCP server on {net.name} offers a router, so the "
                        f"attachment {nad.key} adds a second default route beside eth0's "
                        "(multus-cni#786)",
                        f"set router: false on {net.name}'s dhcp, or choose the default route "
                        'explicitly with "default-route" in the annotation',
                    )
                    break


def _lacks_cni_version(nad: NADInfo) -> bool:
    """The NAD's config is a JSON object without ``cniVersion`` (libcni runs it anyway)."""
    config = nad.manifest.body.get("spec", {}).get("config")
    if nad.error is not None or not isinstance(config, str):
        return False
    try:
        raw = parse_cni_json(config)
    except ConfigJSONError:
        return False
    return raw.get("cniVersion") in (None, "")
