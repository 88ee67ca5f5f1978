"""Each node's netplan (``/etc/netplan/60-multihome.yaml``): the management NIC with its
static address, default route and nameservers; the other NICs up without an address and
``optional`` (boot does not wait for them: systemd-networkd-wait-online would, up to two
minutes, on NICs that never get an address); MTUs; and the node-local bridges that
bridge-CNI NADs plug into."""

from __future__ import annotations

from typing import Any

from multihome.plan import NetworkPlan, NICPlan, NodePlan, Plan
from multihome.plan.networks import trunks
from multihome.render.rke2 import node_dir
from multihome.render.tree import RenderedFile
from multihome.render.yamltext import comment, dump, wrap

NETPLAN_PATH = "etc/netplan/60-multihome.yaml"


def nameservers(plan: Plan, node: NodePlan) -> tuple[list[str], str]:
    """The node's DNS servers and where they come from: the management network's
    ``nameservers``, else its gateway; none when it has neither."""
    net: NetworkPlan | None = next(
        (n for n in plan.networks if n.name == node.management_network), None
    )
    if net is None:
        return [], "none"
    if net.nameservers:
        return [str(a) for a in net.nameservers], f"the nameservers of network {net.name}."
    if net.gateway is not None:
        return [str(net.gateway)], (
            f"the gateway of {net.name}, multihome's default. If it does not answer DNS, give "
            f"network {net.name} its nameservers in the lab file and render again."
        )
    return [], "none"


def _addressing(node: NodePlan, nic: NICPlan, dns: list[str]) -> dict[str, Any]:
    """Address, route and DNS of a NIC (or of the bridge it is in), else no address at all
    and optional."""
    device: dict[str, Any] = {"dhcp4": False}
    if nic.address is None:
        device["link-local"] = []
        device["optional"] = True
    else:
        device["addresses"] = [str(nic.address)]
        if nic.management and node.default_gateway is not None:
            device["routes"] = [{"to": "default", "via": str(node.default_gateway)}]
        if nic.management and dns:
            device["nameservers"] = {"addresses": dns}
    device["mtu"] = nic.mtu
    return device


def _unaddressed(mtu: int) -> dict[str, Any]:
    return {"dhcp4": False, "link-local": [], "optional": True, "mtu": mtu}


def netplan_values(node: NodePlan, dns: list[str] | None = None) -> dict[str, Any]:
    """The netplan document of a node; ``dns``: the management NIC's nameservers. A trunk
    NIC's sub-interfaces go in ``vlans:`` (``id``, ``link``); the trunk NIC itself in
    ``ethernets:`` (without an address when it carries tagged VLANs only), with an MTU that
    holds its largest VLAN's."""
    dns = dns or []
    ethernets: dict[str, Any] = {}
    vlans: dict[str, Any] = {}
    members: dict[str, list[NICPlan]] = {}
    carried = trunks(node.nics)
    for nic in node.nics:
        if nic.parent is not None and nic.parent not in ethernets:
            # a trunk with tagged VLANs only: up, no address, as big as its VLANs
            ethernets[nic.parent] = _unaddressed(max(s.mtu for s in carried[nic.parent][1]))
        if nic.bridge is None:
            device = _addressing(node, nic, dns)
        else:
            device = _unaddressed(nic.mtu)
            members.setdefault(nic.bridge, []).append(nic)
        if nic.parent is None:
            if nic.name in carried:
                device["mtu"] = max([nic.mtu] + [s.mtu for s in carried[nic.name][1]])
            ethernets[nic.name] = device
        else:
            vlans[nic.name] = {"id": nic.vlan, "link": nic.parent, **device}
    network: dict[str, Any] = {"version": 2, "renderer": "networkd", "ethernets": ethernets}
    if vlans:
        network["vlans"] = vlans
    if members:
        bridges = {}
        for name in sorted(members):
            nics = members[name]
            carrier = next((n for n in nics if n.address is not None), nics[0])
            bridges[name] = {
                "interfaces": [n.name for n in nics],
                **_addressing(node, carrier, dns),
                "parameters": {"stp": False, "forward-delay": 0},
            }
        network["bridges"] = bridges
    return {"network": network}


def netplan_file(plan: Plan, node: NodePlan) -> RenderedFile:
    """``nodes/<name>/etc/netplan/60-multihome.yaml``."""
    nics = ", ".join(
        f"{n.name} on {n.network}" + (f" (VLAN {n.vlan} tagged on {n.parent})" if n.parent else "")
        for n in node.nics
    )
    dns, source = nameservers(plan, node)
    if dns:
        dns_line = f"Nameservers {', '.join(dns)}: {source}"
        others = (
            "Other files in /etc/netplan (e.g. 50-cloud-init.yaml) must not configure these "
            "NICs differently: remove those parts, or the merged result is not this one."
        )
    else:
        dns_line = f"No nameservers: {node.management_network} has no gateway or nameservers."
        others = (
            "Other files in /etc/netplan (e.g. 50-cloud-init.yaml) must not configure these "
            "NICs differently: remove those parts but keep their nameservers (this file sets "
            "none), or the node has no DNS."
        )
    header = comment(
        [
            f"netplan of {node.name}: {nics}.",
            f"multihome: lab {plan.name}.",
            "Copy to /etc/netplan/60-multihome.yaml (mode 600), then: netplan apply",
            *wrap(dns_line, others, width=86),
        ]
    )
    text = header + dump(netplan_values(node, dns))
    return RenderedFile(f"{node_dir(node)}/{NETPLAN_PATH}", text, "netplan", mode=0o600)
