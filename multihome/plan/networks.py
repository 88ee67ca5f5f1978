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
    net = nets.get(nic.network)
    if net is None:
        raise PlanError(f"{machine}: NIC {nic.name} is on network {nic.network!r}, not defined")
    return net


def nic_plan(machine: str, nic: NIC, nets: dict[str, Network], management: bool) -> NICPlan:
    """One NIC: its address with the network's prefix, the network's MTU."""
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
    plans = []
    for net, bridge in zip(spec.networks, _bridge_names(spec), strict=True):
        attachments = []
        for machine, nics in _machines(spec):
            for nic in nics:
                if nic.network == net.name:
                    plan = nic_plan(machine, nic, nets, management=False)
                    attachments.append(
                        Attachment(machine=machine, nic=nic.name, address=plan.address)
                    )
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
