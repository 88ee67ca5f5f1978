"""Checks of NetworkAttachmentDefinitions: names, CNI configs, masters, MTU and IPAM."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from multihome.check.context import Context, NADInfo
from multihome.check.findings import Finding, nodes_phrase
from multihome.check.names import dns1123_label_problem, rfc1123_subdomain_problems
from multihome.check.registry import check
from multihome.multus.gojson import fold
from multihome.spec import ConfigJSONError, Node, parse_cni_json

NODE_WIDE_IPAM = frozenset({"host-local"})
"""IPAM whose allocations are per node: two nodes hand out the same addresses."""


def master_network(ctx: Context, nad: NADInfo, node: Node) -> str | None:
    """The lab network of the node interface a NAD's interfaces ride on (its master, or a
    NIC in its bridge), on that node (None: none or unknown)."""
    if nad.master is not None:
        return ctx.nic_network(node, nad.master)
    bridge = nad.bridge
    if bridge is not None:
        return next((nic.network for nic in node.nics if nic.bridge == bridge), None)
    return None


def vlan_id(nad: NADInfo) -> int | None:
    """A ``vlan`` plugin NAD's ``vlanId`` (None: not a vlan NAD, or no valid id)."""
    if nad.main_type != "vlan":
        return None
    value = go_field(nad.main, "vlanId")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def go_field(raw: dict[str, Any], name: str) -> Any:
    """The value Go's encoding/json gives field ``name`` (keys match whatever their case;
    the last match wins)."""
    found = None
    for key, value in raw.items():
        if key == name or fold(key) == fold(name):
            found = value
    return found


def nad_network(ctx: Context, nad: NADInfo, node: Node) -> str | None:
    """The lab network a NAD's interfaces land on, on that node (None: none or unknown): a
    ``vlan`` plugin's pods land on the VLAN of its ``vlanId``, tagged over the master, so on
    the lab network of that VLAN, not on the master's."""
    vid = vlan_id(nad)
    if vid is None:
        return master_network(ctx, nad, node)
    if master_network(ctx, nad, node) is None:
        return None
    return next((n.name for n in ctx.spec.networks if n.vlan == vid), None)


def segment(ctx: Context, nad: NADInfo, node: Node) -> str | None:
    """Where a NAD's interfaces land on that node, in words: the network's name, or for a
    ``vlan`` NAD ``VLAN 55 (network vlan55, tagged on ens224)``."""
    net = nad_network(ctx, nad, node)
    vid = vlan_id(nad)
    if vid is None or master_network(ctx, nad, node) is None:
        return net
    where = f"network {net}, " if net else ""
    return f"VLAN {vid} ({where}tagged on {nad.master})"


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
            net_name = master_network(ctx, nad, node)
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
        if ipam == "dhcp":
            yield from _dhcp_reach(ctx, nad, nodes)
            if nad.main_type == "ipvlan":
                yield _ipvlan_dhcp(ctx, nad)
        if ipam in NODE_WIDE_IPAM:
            by_segment: dict[str, list[str]] = {}
            for node in nodes:
                where = segment(ctx, nad, node)
                if where is not None:
                    by_segment.setdefault(where, []).append(node.name)
            shared = {where: names for where, names in by_segment.items() if len(names) > 1}
            for where, names in sorted(shared.items()):
                yield ctx.warning(
                    "nad-host-local-shared",
                    nad.locate_config(),
                    f"NAD {nad.key} uses host-local IPAM on {where}, which {nodes_phrase(names)} "
                    "share: each node allocates from the same range, so pods on different nodes "
                    "get the same addresses (multus-cni#640)",
                    "use static IPAM with per-pod ips, dhcp, or whereabouts for cluster-wide IPAM",
                )


def _dhcp_reach(ctx: Context, nad: NADInfo, nodes: list[Node]) -> Iterator[Finding]:
    """DHCP IPAM needs a DHCP server on the segment the interfaces land on."""
    without: set[str] = set()
    cut_off: list[str] = []
    for node in nodes:
        net = nad_network(ctx, nad, node)
        if net is not None:
            if net in ctx.networks and ctx.networks[net].dhcp is None:
                without.add(
                    f"network {net}" if vlan_id(nad) is None else str(segment(ctx, nad, node))
                )
        elif master_network(ctx, nad, node) is not None or nad.bridge is not None:
            cut_off.append(node.name)  # a bridge without uplink, a VLAN the lab has not
    if without:
        yield ctx.error(
            "nad-dhcp-no-server",
            nad.locate_config(),
            f"NAD {nad.key} uses DHCP IPAM, but {', '.join(sorted(without))} has no DHCP "
            "server: attachments wait and then fail",
            "add a dhcp: section to the network, or use static or whereabouts IPAM",
        )
    if not cut_off:
        return
    vid = vlan_id(nad)
    if vid is not None:
        where = (
            f"its pods land on VLAN {vid} (vlanId, tagged on {nad.master}), and no network of "
            f"the lab is VLAN {vid}"
        )
        fix = (
            f"describe VLAN {vid} in spec.networks (vlan: {vid}) with its dhcp: section, or "
            "use static or whereabouts IPAM"
        )
    else:
        where = (
            f"bridge {nad.bridge} has no NIC (uplink) on {nodes_phrase(cut_off)}, so its DHCP "
            "requests never leave the node"
        )
        fix = (
            f"put a NIC on a network with a DHCP server into the bridge ('bridge: {nad.bridge}' "
            "on those nodes' NIC), or use static or whereabouts IPAM"
        )
    yield ctx.error(
        "nad-dhcp-no-uplink",
        nad.locate_config(),
        f"NAD {nad.key} uses DHCP IPAM, but {where}: no DHCP server answers, and every "
        "attachment waits and then fails (the pod stays ContainerCreating)",
        fix,
    )


def _ipvlan_dhcp(ctx: Context, nad: NADInfo) -> Finding:
    """ipvlan + dhcp: the plugins' source says the lease is never received (see README)."""
    mode = go_field(nad.main, "mode") or "l2"
    master = nad.master or "the master"
    if mode in ("l3", "l3s"):
        why = (
            f"in {mode} mode ipvlan passes no broadcast or multicast to its interfaces, so the "
            "DHCP server's answers never reach the pod, whatever the dhcp daemon's flags"
        )
        fix = "use static or whereabouts IPAM with ipvlan, or macvlan for DHCP"
    else:
        why = (
            f"every ipvlan interface has {master}'s MAC, and ipvlan hands a unicast frame to "
            "an interface only by its IP address, which a pod has not got before its lease; "
            "the dhcp plugin keeps leases apart (client id containerID/network/ifname), but "
            f"the server sends its OFFER to that MAC and the offered address, so it reaches "
            f"the node's {master}, never the pod (containernetworking/cni#17)"
        )
        fix = (
            "use static or whereabouts IPAM with ipvlan, or macvlan for DHCP (each interface "
            "its own MAC); ipvlan l2 gets leases only from a dhcp daemon run with -broadcast, "
            "which RKE2's dhcp DaemonSet (rke2-multus) does not pass"
        )
    return ctx.error(
        "nad-ipvlan-dhcp",
        nad.locate_config(),
        f"NAD {nad.key}: ipvlan with DHCP IPAM gets no lease: {why}; every attachment waits "
        "and then fails (the pod stays ContainerCreating)",
        fix,
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
