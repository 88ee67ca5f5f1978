"""Each node's netplan (``/etc/netplan/60-multihome.yaml``): the management NIC with its
static address and default route, the other NICs up without an address, MTUs, and the
node-local bridges that bridge-CNI NADs plug into."""

from __future__ import annotations

from typing import Any

from multihome.plan import NICPlan, NodePlan
from multihome.render.rke2 import node_dir
from multihome.render.tree import RenderedFile
from multihome.render.yamltext import comment, dump

NETPLAN_PATH = "etc/netplan/60-multihome.yaml"


def _addressing(node: NodePlan, nic: NICPlan) -> dict[str, Any]:
    """Address and route of a NIC (or of the bridge it is in), else no address at all."""
    device: dict[str, Any] = {"dhcp4": False}
    if nic.address is None:
        device["link-local"] = []
    else:
        device["addresses"] = [str(nic.address)]
        if nic.management and node.default_gateway is not None:
            device["routes"] = [{"to": "default", "via": str(node.default_gateway)}]
    device["mtu"] = nic.mtu
    return device


def netplan_values(node: NodePlan) -> dict[str, Any]:
    """The netplan document of a node."""
    ethernets: dict[str, Any] = {}
    members: dict[str, list[NICPlan]] = {}
    for nic in node.nics:
        if nic.bridge is None:
            ethernets[nic.name] = _addressing(node, nic)
        else:
            ethernets[nic.name] = {"dhcp4": False, "link-local": [], "mtu": nic.mtu}
            members.setdefault(nic.bridge, []).append(nic)
    network: dict[str, Any] = {"version": 2, "renderer": "networkd", "ethernets": ethernets}
    if members:
        bridges = {}
        for name in sorted(members):
            nics = members[name]
            carrier = next((n for n in nics if n.address is not None), nics[0])
            bridges[name] = {
                "interfaces": [n.name for n in nics],
                **_addressing(node, carrier),
                "parameters": {"stp": False, "forward-delay": 0},
            }
        network["bridges"] = bridges
    return {"network": network}


def netplan_file(node: NodePlan, lab: str) -> RenderedFile:
    """``nodes/<name>/etc/netplan/60-multihome.yaml``."""
    nics = ", ".join(f"{n.name} on {n.network}" for n in node.nics)
    header = comment(
        [
            f"netplan of {node.name}: {nics}.",
            f"multihome: lab {lab}.",
            "Copy to /etc/netplan/60-multihome.yaml (mode 600), then: netplan apply",
            "Other files in /etc/netplan (e.g. 50-cloud-init.yaml) must not configure these",
            "NICs differently: remove those parts, or the merged result is not this one.",
        ]
    )
    text = header + dump(netplan_values(node))
    return RenderedFile(f"{node_dir(node)}/{NETPLAN_PATH}", text, "netplan", mode=0o600)
