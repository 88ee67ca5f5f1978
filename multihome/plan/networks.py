"""Networks as segments: who is plugged in, the emulator's bridge, the DHCP server's address;
and the NICs of nodes and hosts with their addresses in CIDR form."""

from __future__ import annotations

from ipaddress import ip_interface

from multihome.plan.errors import PlanError
from multihome.plan.model import Attachment, DHCPPlan, IPAddr, NetworkPlan, NICPlan
from multihome.spec import NIC, LabSpec, Network

IFNAMSIZ = 15
_MAX_SCAN = 1 << 16
"""How many addresses from the top of a subnet are tried for a DHCP server."""


def network_index(spec: LabSpec) -> dict[str, Network]:
    """The networks by name (the first of a duplicated name, as the checks do)."""
    found: dict[str, Network] = {}
    for net in spec.networks:
        found.setdefault(net.name, net)
    return found


def _network_of(nets: dict[str, Network], machine: str, nic: NIC) -> Network:
    net = nets.get(nic.network or "")
    if net is None:
        raise PlanError(f"{machine}: NIC {nic.name} is on network {nic.network!r}, not defined")
    return net


def vlan_network(nets: dict[str, Network], vid: int) -> Network | None:
    """The network that is VLAN ``vid`` (the first, as the checks do)."""
    return next((n for n in nets.values() if n.vlan == vid), None)


def nic_plan(machine: str, nic: NIC, nets: dict[str, Network], management: bool) -> NICPlan:
    """One NIC on its (untagged) network: its address with the network's prefix, the
    network's MTU."""
    if nic.network is None:
        raise PlanError(f"{machine}: NIC {nic.name} has no network (untagged) of its own")
    net = _network_of(nets, machine, nic)
    address = None
    if nic.address is not None:
        address = ip_interface(f"{nic.address}/{net.subnet.prefixlen}")
    return NICPlan(
        name=nic.name,
        network=net.name,
        address=address,
        mtu=net.mtu,
        bridge=nic.bridge,
        management=management,
    )


def nic_plans(
    machine: str, nics: list[NIC], nets: dict[str, Network], management: str | None = None
) -> tuple[NICPlan, ...]:
    """A machine's interfaces on networks, in lab order: each NIC that has an untagged
    network, then its 802.1q sub-interfaces (``parent`` the NIC, on their VLAN's network).
    A trunk NIC with tagged VLANs only is no NICPlan of its own (see :func:`trunks`)."""
    found = []
    for nic in nics:
        if nic.network is not None:
            found.append(nic_plan(machine, nic, nets, nic.name == management))
        for sub in nic.vlans:
            net = vlan_network(nets, sub.id)
            if net is None:
                raise PlanError(
                    f"{machine}: {sub.name} (VLAN {sub.id} on {nic.name}): no network has "
                    f"vlan: {sub.id}"
                )
            address = None
            if sub.address is not None:
                address = ip_interface(f"{sub.address}/{net.subnet.prefixlen}")
            found.append(
                NICPlan(
                    name=sub.name,
                    network=net.name,
                    address=address,
                    mtu=net.mtu,
                    bridge=sub.bridge,
                    management=sub.name == management,
                    parent=nic.name,
                    vlan=sub.id,
                )
            )
    return tuple(found)


def trunks(nics: tuple[NICPlan, ...]) -> dict[str, tuple[NICPlan | None, list[NICPlan]]]:
    """Trunk NIC name -> (its NICPlan on its untagged network, None when it carries tagged
    VLANs only; its sub-interfaces), in lab order."""
    by_name = {n.name: n for n in nics if n.parent is None}
    found: dict[str, tuple[NICPlan | None, list[NICPlan]]] = {}
    for nic in nics:
        if nic.parent is not None:
            found.setdefault(nic.parent, (by_name.get(nic.parent), []))[1].append(nic)
    return found


def _bridge_names(spec: LabSpec) -> list[str]:
    """Emulator bridge names: ``mh-<network>`` when it fits in 15 characters, else
    ``mh-net<index>``; unique."""
    names: list[str] = []
    for index, net in enumerate(spec.networks):
        name = f"mh-{net.name}"
        if len(name) > IFNAMSIZ or name in names:
            name = f"mh-net{index}"
        while name in names:
            name += "x"
        names.append(name[:IFNAMSIZ])
    return names


def _machines(spec: LabSpec) -> list[tuple[str, list[NIC]]]:
    """(name, NICs) of every node, then every host."""
    return [(n.name, n.nics) for n in spec.nodes] + [(h.name, h.nics) for h in spec.hosts]


def _used_addresses(spec: LabSpec, net: Network) -> set[IPAddr]:
    used: set[IPAddr] = {net.gateway} if net.gateway is not None else set()
    for _, nics in _machines(spec):
        used.update(n.address for n in nics if n.network == net.name and n.address)
        subs = (v for n in nics for v in n.vlans)
        used.update(v.address for v in subs if v.id == net.vlan and v.address)
    return used


def _dhcp_server(spec: LabSpec, net: Network) -> IPAddr:
    """The lab's server address, else the highest host address that no NIC, gateway or the
    range uses."""
    dhcp = net.dhcp
    assert dhcp is not None
    if dhcp.server is not None:
        return dhcp.server
    used = _used_addresses(spec, net)
    top = net.subnet.broadcast_address
    last = top - 1 if net.subnet.version == 4 and net.subnet.prefixlen < 31 else top
    for offset in range(min(_MAX_SCAN, net.subnet.num_addresses)):
        candidate = last - offset
        if candidate not in net.subnet or candidate == net.subnet.network_address:
            break
        in_range = int(dhcp.start) <= int(candidate) <= int(dhcp.end)
        if candidate in used or in_range:
            continue
        return candidate
    raise PlanError(f"network {net.name}: no free address for its DHCP server; set dhcp.server")


def network_plans(spec: LabSpec) -> tuple[NetworkPlan, ...]:
    """Every network as a segment, in lab order."""
    nets = network_index(spec)
    planned = [(machine, nic_plans(machine, nics, nets)) for machine, nics in _machines(spec)]
    plans = []
    for net, bridge in zip(spec.networks, _bridge_names(spec), strict=True):
        attachments = [
            Attachment(machine=machine, nic=nic.name, address=nic.address)
            for machine, nics in planned
            for nic in nics
            if nic.network == net.name
        ]
        dhcp = None
        if net.dhcp is not None:
            dhcp = DHCPPlan(
                start=net.dhcp.start,
                end=net.dhcp.end,
                lease_time=net.dhcp.lease_time,
                router=net.gateway if net.dhcp.router else None,
                server=_dhcp_server(spec, net),
            )
        plans.append(
            NetworkPlan(
                name=net.name,
                vlan=net.vlan,
                subnet=net.subnet,
                gateway=net.gateway,
                mtu=net.mtu,
                dhcp=dhcp,
                bridge=bridge,
                attachments=tuple(attachments),
                nameservers=tuple(net.nameservers),
            )
        )
    return tuple(plans)
