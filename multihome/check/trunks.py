"""Checks of trunk NICs (``vlans:``): each tagged VLAN is a network of the lab, the
sub-interfaces have names the kernel takes and that no other interface of the machine has,
a VLAN is carried once per NIC (tagged, or untagged as the NIC's ``network``), sub-interface
addresses lie in their VLAN's subnet, and a NIC is on some network at all; and NADs whose
master is a trunk that carries no untagged network."""

from __future__ import annotations

from collections.abc import Iterator

from multihome.check.context import Context
from multihome.check.findings import Finding, nodes_phrase
from multihome.check.names import ifname_problem
from multihome.check.registry import check
from multihome.spec import NIC, Node


@check
def trunk_nics(ctx: Context) -> Iterator[Finding]:
    for section, i, name, nics in ctx.machines():
        names = [n.name for n in nics]
        for j, nic in enumerate(nics):
            at = ("spec", section, i, "nics", j)
            if nic.network is None and not nic.vlans:
                yield ctx.error(
                    "nic-network-missing",
                    ctx.at(*at),
                    f"{name}: NIC {nic.name} is on no network: it has neither network: nor vlans:",
                    "give it network: (the network it is on, untagged) and/or vlans: (the "
                    "tagged VLANs it carries, e.g. vlans: [{name: ens224.50, id: 50}])",
                )
            untagged = ctx.networks.get(nic.network) if nic.network else None
            if nic.vlans and nic.address is not None and nic.network is None:
                yield ctx.error(
                    "trunk-address-untagged",
                    ctx.at(*at, "address"),
                    f"{name}: NIC {nic.name} has an address but no untagged network: its "
                    "address would be on no VLAN",
                    "set network: to its untagged network, or put the address on the "
                    "sub-interface of its VLAN",
                )
            seen: dict[int, str] = {}
            if untagged is not None and untagged.vlan is not None:
                seen[untagged.vlan] = f"untagged (network {untagged.name})"
            for k, sub in enumerate(nic.vlans):
                where = (*at, "vlans", k)
                problem = ifname_problem(sub.name)
                if problem:
                    yield ctx.error(
                        "trunk-vlan-name-invalid",
                        ctx.at(*where, "name"),
                        f"{name}: sub-interface name {sub.name!r} (VLAN {sub.id} on "
                        f"{nic.name}) {problem}",
                        "name it as netplan and ip link do, at most 15 characters: "
                        f"'{nic.name}.{sub.id}'"
                        + ("" if len(f"{nic.name}.{sub.id}") <= 15 else f" or 'vlan{sub.id}'"),
                    )
                others = names + [v.name for n in nics for v in n.vlans]
                if others.count(sub.name) > 1:
                    yield ctx.error(
                        "trunk-vlan-name-duplicate",
                        ctx.at(*where, "name"),
                        f"{name}: {sub.name} (VLAN {sub.id} on {nic.name}) is also the name of "
                        "another interface of it: the kernel gives a name to one link only",
                        f"name it '{nic.name}.{sub.id}' or 'vlan{sub.id}', one per VLAN",
                    )
                net = ctx.vlan_network(sub.id)
                if net is None:
                    known = ", ".join(
                        f"{n.name} ({n.vlan})" for n in ctx.spec.networks if n.vlan is not None
                    )
                    yield ctx.error(
                        "trunk-vlan-unknown",
                        ctx.at(*where, "id"),
                        f"{name}: {sub.name} is VLAN {sub.id} on {nic.name}, but no network of "
                        f"the lab is VLAN {sub.id}",
                        f"add a network with vlan: {sub.id} to spec.networks, or use one of "
                        f"the VLANs the lab has: {known or 'none has a vlan: id'}",
                    )
                if sub.id in seen:
                    yield ctx.error(
                        "trunk-vlan-twice",
                        ctx.at(*where, "id"),
                        f"{name}: {nic.name} carries VLAN {sub.id} twice: as {sub.name} and "
                        f"{seen[sub.id]}; a port carries a VLAN once, tagged or untagged",
                        "keep one of them: a sub-interface per tagged VLAN, the untagged one "
                        "as the NIC's network:",
                    )
                seen.setdefault(sub.id, sub.name)
                vlan_net = ctx.networks.get(net) if net else None
                address = sub.address
                if vlan_net is not None and address is not None and address not in vlan_net.subnet:
                    yield ctx.error(
                        "trunk-vlan-address",
                        ctx.at(*where, "address"),
                        f"{name}: {sub.name} has address {sub.address}, outside "
                        f"{vlan_net.subnet} of VLAN {sub.id} (network {vlan_net.name})",
                        f"give it an address in {vlan_net.subnet}",
                    )


def _tagged_only(node: Node, ifname: str) -> NIC | None:
    """The node's trunk NIC ``ifname`` when it carries tagged VLANs only (no network:)."""
    return next((n for n in node.nics if n.name == ifname and n.network is None and n.vlans), None)


@check
def nads_on_tagged_only_trunks(ctx: Context) -> Iterator[Finding]:
    for nad in ctx.nads.values():
        if nad.conf is None or nad.master is None or nad.main_type == "vlan":
            continue  # the vlan plugin tags its frames itself
        found = [
            (n.name, t) for n in ctx.nodes_running(nad.key) if (t := _tagged_only(n, nad.master))
        ]
        if not found:
            continue
        subs = found[0][1].vlans
        said = ", ".join(f"{v.name} (VLAN {v.id})" for v in subs)
        yield ctx.warning(
            "nad-master-trunk-tagged",
            nad.locate_config(),
            f"NAD {nad.key}: master {nad.master} on {nodes_phrase([n for n, _ in found])} is a "
            f"trunk carrying tagged VLANs only ({said}): the {nad.main_type} interfaces' "
            "frames leave it untagged, on no VLAN, and reach nothing",
            f"set master to the sub-interface of the VLAN it is meant for (e.g. "
            f"{subs[0].name}), or give {nad.master} the network it carries untagged (network:)",
        )
