"""A machine's NICs on the lab's segments: a veth from the network's bridge in the switch
(the sandbox's own namespace) to the NIC in the machine's namespace, up, with its address.

Each link is recorded in the journal before it is made. A machine's veths go to the kernel
in one batch (``NetNS.apply``), its NICs' state and addresses in another. Switch ports are
named ``n<index>-<nic>`` for nodes, ``h<index>-<nic>`` for hosts, ``d<index>`` for DHCP
servers (``names.switch_port``).
"""

from __future__ import annotations

from collections.abc import Callable

from multihome.plan import NICPlan, NodePlan, Plan

from . import netlink, trunks
from .names import switch_port

Recorder = Callable[..., None]


def _port(
    plan: Plan, record: Recorder, netns: str, port: str, ifname: str, network: str | None,
    mtu: int,
) -> tuple[str, str, str | None, int]:  # fmt: skip
    """Record the port (``network``: the segment it plugs into; None: into nothing)."""
    if network is None:
        record("link", port, peer=ifname, netns=netns)
        return port, ifname, None, mtu
    bridge = next(n.bridge for n in plan.networks if n.name == network)
    record("link", port, bridge=bridge, peer=ifname, netns=netns)
    return port, ifname, bridge, mtu


def _make(
    nl: netlink.Netlink,
    netns: str,
    ports: list[tuple[str, str, str | None, int]],
    addresses: list[tuple[str, str]],
) -> dict[str, str | None] | None:
    """The recorded ``ports`` ((switch port, ifname, bridge, mtu)) made, their machine ends
    up, then ``addresses`` ((ifname, cidr)) added; the machine's links' MACs once its ends
    are made (None when there were no ports)."""
    if not ports:
        return None
    switch, inside = nl.here(), nl.ns(netns)
    switch.apply(
        [
            switch.change_veth(port, ifname, peer_ns=inside, master=bridge, mtu=mtu)
            for port, ifname, bridge, mtu in ports
        ]
    )
    macs = inside.link_macs()  # one dump: the new links' indexes for the requests below
    changes = [inside.change_up(ifname) for _, ifname, _, _ in ports]
    changes += [inside.change_address(ifname, cidr) for ifname, cidr in addresses]
    inside.apply(changes)
    return macs


def wire(
    nl: netlink.Netlink,
    plan: Plan,
    record: Recorder,
    netns: str,
    port: str,
    *,
    ifname: str,
    network: str,
    address: str | None,
) -> None:
    """One veth from ``network``'s bridge to ``ifname`` in ``netns``, up, with ``address``
    (a DHCP server's NIC)."""
    mtu = next(n.mtu for n in plan.networks if n.name == network)
    made = _port(plan, record, netns, port, ifname, network, mtu)
    _make(nl, netns, [made], [(ifname, address)] if address else [])


def wire_machine(
    nl: netlink.Netlink,
    plan: Plan,
    record: Recorder,
    netns: str,
    kind: str,
    index: int,
    nics: tuple[NICPlan, ...],
    trunking: trunks.Trunking,
    *,
    bridged_address: bool,
) -> dict[str, str | None] | None:
    """A machine's NICs: access ports on their network's segment; trunk NICs as 802.1q
    trunks or emulated (see ``trunks``). ``bridged_address``: a bridged NIC gets its
    address too (hosts have no node bridges). Returns the machine's links' MACs as they
    were once its NICs were made, when it had access ports."""
    made: set[str] = set()
    ports: list[tuple[str, str, str | None, int]] = []
    if trunking.mode == trunks.REAL:
        made = trunks.wire_real(
            nl, plan, record, netns, lambda n: switch_port(kind, index, n), nics
        )
    else:
        for name, mtu in trunks.bare_parents(nics):  # plugged into nothing
            port = switch_port(kind, index, name)
            ports.append(_port(plan, record, netns, port, name, None, mtu))
    addresses: list[tuple[str, str]] = []
    for nic in nics:
        if nic.name in made:
            continue
        port = switch_port(kind, index, nic.name)
        ports.append(_port(plan, record, netns, port, nic.name, nic.network, nic.mtu))
        if nic.address and (bridged_address or not nic.bridge):
            addresses.append((nic.name, str(nic.address)))
    return _make(nl, netns, ports, addresses)


def node_bridges(inside: netlink.NetNS, node: NodePlan) -> None:
    """The node's own Linux bridges (``bridge:`` on a NIC), as netplan makes them: the NIC
    enslaved, the bridge up, the NIC's address (if any) on the bridge."""
    for nic in node.nics:
        if nic.bridge is None:
            continue
        if not inside.has_link(nic.bridge):
            inside.add_bridge(nic.bridge, mtu=nic.mtu)
        inside.set_link(nic.name, master=nic.bridge)
        if nic.address:
            inside.add_address(nic.bridge, str(nic.address))
