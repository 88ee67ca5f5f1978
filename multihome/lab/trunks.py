"""Trunk NICs: a NIC carrying tagged VLANs as 802.1q sub-interfaces (``ens224.50``), and
perhaps one network untagged.

Two ways, chosen by what the kernel can make (:func:`mode`, the preflight's probes):

- ``802.1q`` (the kernel has 802.1q devices and bridge VLAN filtering): one VLAN-aware
  bridge in the switch (``mhtrunk``) takes every trunk NIC's switch end as a trunk port
  (``bridge vlan add vid 50 dev n1-ens224``; the untagged network as ``pvid untagged``),
  and has an access port per VLAN (``mt<vid>``) wired to that VLAN's segment bridge
  (``mu<vid>``), so tagged frames really cross the wire and land on the same segment as
  every access port of that VLAN. In the node, ``ens224.50`` is a real vlan device on
  ``ens224``. This project's CI kernel has neither feature; the path was run in a Debian
  6.1 VM (the trunk lab up, leases and verify over the tagged trunk).
- ``emulated`` (elsewhere): each sub-interface is its own veth on its VLAN's segment,
  named as in the design; a NIC with tagged VLANs only is a veth plugged into nothing (a
  trunk port that drops untagged frames). Traffic of ``ens224.50`` lands on VLAN 50's
  segment as it would, but untagged on the wire, and the sub-interface is a veth, not a
  vlan device on its parent.

The ``vlan`` CNI plugin's VLANs ride on trunks too: a NIC that a ``vlan`` NAD names as its
master carries the NAD's ``vlanId`` tagged (when a network of the lab is that VLAN), as the
switch port of a node whose pods tag that VLAN must, with no sub-interface on the node (the
plugin makes one per pod, and the kernel takes one vlan device per id on a link: a second
fails with "file exists"). On the real path that NIC's port is a trunk port of the VLAN-aware
bridge, its own network untagged; elsewhere the plugin can't run (no 802.1q) and the
preflight refuses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from multihome.plan import NetworkPlan, NICPlan, Plan, vlan_id
from multihome.plan.networks import trunks

from . import netlink, preflight
from .names import check_ifname

TRUNK_BRIDGE = "mhtrunk"
REAL = "802.1q"
EMULATED = "emulated"
NEEDS = (preflight.BRIDGE_VLAN, "vlan")
"""The probes the real path needs: 802.1q devices and bridge VLAN filtering."""

Recorder = Callable[..., None]


@dataclass(frozen=True)
class Trunking:
    """How the lab builds its trunks: ``802.1q``, ``emulated``, or None (it has none)."""

    mode: str | None
    why: str = ""
    """For ``emulated``: what the kernel lacks (``no 802.1q``)."""

    def to_dict(self) -> dict[str, str | None]:
        return {"mode": self.mode, "why": self.why}

    @property
    def note(self) -> str:
        """``802.1q`` or ``emulated: no 802.1q, no bridge VLAN filtering``."""
        if self.mode == EMULATED:
            return f"{EMULATED}: {self.why}" if self.why else EMULATED
        return self.mode or "-"


def _nics(plan: Plan) -> list[tuple[NICPlan, ...]]:
    return [n.nics for n in plan.nodes] + [h.nics for h in plan.hosts]


def plugin_vlans(plan: Plan, nics: tuple[NICPlan, ...]) -> dict[str, list[int]]:
    """NIC name -> the VLAN ids that ``vlan`` plugin NADs tag over it (their ``master``),
    each the VLAN of a network of the lab, sorted; a NIC no such NAD names is not listed."""
    carried = {n.vlan for n in plan.networks if n.vlan is not None}
    names = {n.name for n in nics}
    found: dict[str, set[int]] = {}
    for nad in plan.nads:
        vid = vlan_id(nad)
        if vid is not None and vid in carried and nad.master in names:
            found.setdefault(nad.master, set()).add(vid)
    return {name: sorted(vids) for name, vids in found.items()}


def _ports(
    plan: Plan, nics: tuple[NICPlan, ...]
) -> dict[str, tuple[NICPlan | None, list[NICPlan], list[int]]]:
    """Trunk NIC name -> (its NICPlan on its untagged network or None, its sub-interfaces,
    the vlan plugin's VLAN ids it carries too), in lab order."""
    by_name = {n.name: n for n in nics if n.parent is None}
    extra = plugin_vlans(plan, nics)
    found = {name: (own, subs, extra.get(name, [])) for name, (own, subs) in trunks(nics).items()}
    for name, vids in extra.items():
        if name not in found and name in by_name:
            found[name] = (by_name[name], [], vids)
    return found


def has_trunks(plan: Plan) -> bool:
    return any(nic.parent is not None for nics in _nics(plan) for nic in nics) or any(
        plugin_vlans(plan, node.nics) for node in plan.nodes
    )


def mode(plan: Plan, lacking: dict[str, str] | None = None) -> Trunking:
    """Real 802.1q where the kernel makes both vlan devices and VLAN-filtering bridges,
    else emulated, saying what is missing. ``lacking``: the probes' answer (tests)."""
    if not has_trunks(plan):
        return Trunking(None)
    if lacking is None:
        lacking = preflight.link_kinds_unavailable(NEEDS)
    missing = [k for k in ("vlan", preflight.BRIDGE_VLAN) if k in lacking]
    if not missing:
        return Trunking(REAL)
    words = {"vlan": "no 802.1q", preflight.BRIDGE_VLAN: "no bridge VLAN filtering"}
    return Trunking(EMULATED, ", ".join(words[k] for k in missing))


def bare_parents(nics: Iterable[NICPlan]) -> list[tuple[str, int]]:
    """Trunk NICs with tagged VLANs only (no NICPlan of their own), with the MTU they need
    (the largest of their VLANs')."""
    found = []
    for name, (own, subs) in trunks(tuple(nics)).items():
        if own is None:
            found.append((name, max(s.mtu for s in subs)))
    return found


def vlan_ids(plan: Plan) -> dict[str, int]:
    """Network -> the VLAN id its frames carry on the trunk bridge: its ``vlan``, or for a
    network without one that is some trunk's untagged network, a free id from 4094 down."""
    used = {n.vlan for n in plan.networks if n.vlan is not None}
    found = {n.name: n.vlan for n in plan.networks if n.vlan is not None}
    free = (v for v in range(4094, 0, -1) if v not in used)
    for net in plan.networks:
        if net.name not in found:
            found[net.name] = next(free)
    return found


def _trunk_networks(plan: Plan) -> list[NetworkPlan]:
    """The networks some trunk carries (tagged, or untagged on a trunk), in lab order."""
    carried: set[str] = set()
    by_vid = {n.vlan: n.name for n in plan.networks if n.vlan is not None}
    for nics in _nics(plan):
        for _, (own, subs, vids) in _ports(plan, nics).items():
            carried.update(s.network for s in subs)
            carried.update(by_vid[v] for v in vids)
            if own is not None:
                carried.add(own.network)
    return [n for n in plan.networks if n.name in carried]


def build_switch(nl: netlink.Netlink, plan: Plan, record: Recorder) -> None:
    """The real path's switch side: the VLAN-aware bridge and its access port per VLAN,
    wired to that VLAN's segment bridge (which must exist)."""
    here = nl.here()
    record("link", TRUNK_BRIDGE, trunk=True)
    here.add_bridge(TRUNK_BRIDGE, vlan_aware=True)
    vids = vlan_ids(plan)
    for net in _trunk_networks(plan):
        vid = vids[net.name]
        access, uplink = f"mt{vid}", f"mu{vid}"
        record("link", access, bridge=TRUNK_BRIDGE, peer=uplink, network=net.name)
        here.add_veth(access, uplink, master=TRUNK_BRIDGE, mtu=net.mtu)
        here.set_link(uplink, master=net.bridge, up=True)
        here.bridge_vlan(access, vid, untagged=True)


def wire_real(
    nl: netlink.Netlink,
    plan: Plan,
    record: Recorder,
    netns: str,
    port_of: Callable[[str], str],
    nics: tuple[NICPlan, ...],
) -> set[str]:
    """The real path's machine side: each trunk NIC a veth whose switch end is a trunk port
    of the VLAN-aware bridge, its sub-interfaces vlan devices on it in ``netns``, with their
    addresses (the caller puts bridged ones into their node bridge). Returns the NIC names
    it made (the caller wires the others as access ports)."""
    here, inside = nl.here(), nl.ns(netns)
    vids = vlan_ids(plan)
    made: set[str] = set()
    mtus = {n.vlan: n.mtu for n in plan.networks if n.vlan is not None}
    for name, (own, subs, extra) in _ports(plan, nics).items():
        port = port_of(name)
        mtu = max([s.mtu for s in subs] + ([own.mtu] if own else []) + [mtus[v] for v in extra])
        record("link", port, bridge=TRUNK_BRIDGE, peer=name, netns=netns)
        here.add_veth(port, name, peer_ns=inside, master=TRUNK_BRIDGE, mtu=mtu)
        for sub in subs:
            here.bridge_vlan(port, vids[sub.network])
        for vid in extra:
            here.bridge_vlan(port, vid)
        if own is not None:
            here.bridge_vlan(port, vids[own.network], untagged=True)
            if own.address and not own.bridge:
                inside.add_address(name, str(own.address))
        inside.set_link(name, up=True)
        made.add(name)
        for sub in subs:
            check_ifname(sub.name)
            inside.add_vlan(sub.name, name, int(sub.vlan or 0), mtu=sub.mtu)
            inside.set_link(sub.name, up=True)
            if sub.address and not sub.bridge:
                inside.add_address(sub.name, str(sub.address))
            made.add(sub.name)
    return made
