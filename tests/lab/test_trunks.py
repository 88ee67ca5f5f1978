"""Trunk NICs on the kernel: which way the lab builds them (802.1q where the kernel makes
vlan devices and VLAN-filtering bridges, else emulated), and the real 802.1q path: a
VLAN-aware bridge carrying tags between two nodes' ``ens224.50``, landing on VLAN 50's
segment. This machine's kernel has neither feature: there the real path's test is skipped
and the primitives are shown to fail as the probe says; a kernel that has them (the VM
harness) runs it."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest
from labkit import MakeSandbox, ping

from multihome.lab import netlink, preflight, trunks
from multihome.plan import build_plan
from multihome.spec import load_lab

LAB = Path(__file__).parent / "labs" / "trunk.yaml"


def _lacking() -> dict[str, str]:
    return preflight.link_kinds_unavailable(trunks.NEEDS)


def test_mode_follows_the_kernel() -> None:
    plan = build_plan(load_lab(LAB))
    assert trunks.mode(plan, {}) == trunks.Trunking(trunks.REAL)
    both = {"vlan": "x", preflight.BRIDGE_VLAN: "x"}
    emulated = trunks.mode(plan, both)
    assert emulated.mode == trunks.EMULATED
    assert emulated.note == "emulated: no 802.1q, no bridge VLAN filtering"
    assert trunks.mode(plan, {preflight.BRIDGE_VLAN: "x"}).why == "no bridge VLAN filtering"
    seedless = build_plan(load_lab(None))  # the seed: access ports only
    assert trunks.mode(seedless, both).mode is None
    expected = trunks.EMULATED if _lacking() else trunks.REAL
    assert trunks.mode(plan).mode == expected


def test_vlan_ids_on_the_trunk_bridge() -> None:
    plan = build_plan(load_lab(LAB))
    assert trunks.vlan_ids(plan) == {"vlan40": 40, "vlan50": 50, "vlan60": 60, "vlan70": 70}
    wrk1 = plan.node("tk-wrk-1")
    assert [(n.name, n.parent, n.vlan, n.network) for n in wrk1.nics] == [
        ("ens192", None, None, "vlan40"),
        ("ens224", None, None, "vlan70"),
        ("ens224.50", "ens224", 50, "vlan50"),
        ("vlan60", "ens224", 60, "vlan60"),
    ]
    web60 = next(h for h in plan.hosts if h.name == "web60")
    assert trunks.bare_parents(web60.nics) == [("eth0", 1500)]


def test_primitives_fail_where_the_probe_says(make_sandbox: MakeSandbox) -> None:
    """What the probe says is what ``add_bridge(vlan_aware=True)`` and ``add_vlan`` do."""
    sb = make_sandbox("trunk-probe")

    def work() -> dict[str, int]:
        out = {}
        with netlink.Netlink() as nl:
            top = nl.here()
            top.add_veth("p0", "p1")
            for kind, make in (
                (preflight.BRIDGE_VLAN, lambda: top.add_bridge("tb", vlan_aware=True)),
                ("vlan", lambda: top.add_vlan("p0.50", "p0", 50)),
            ):
                try:
                    make()
                except netlink.NetlinkError as exc:
                    out[kind] = exc.errno
                else:
                    out[kind] = 0
        return out

    found = sb.call(work)
    lacking = _lacking()
    for kind in trunks.NEEDS:
        assert (found[kind] != 0) == (kind in lacking), (kind, found, lacking)
        if kind in lacking:
            assert found[kind] in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOTSUP), found


def test_real_trunk_carries_tags_to_the_vlan_segment(make_sandbox: MakeSandbox) -> None:
    """Two nodes' ``ens224.50`` (vlan devices) and a host on VLAN 50's segment (an access
    port) reach each other; VLAN 60's sub-interface does not reach VLAN 50."""
    lacking = _lacking()
    if lacking:
        pytest.skip(f"this kernel lacks {', '.join(sorted(lacking))} (unproven here)")
    plan = build_plan(load_lab(LAB))
    sb = make_sandbox("trunk-real")

    def work() -> dict[str, object]:
        out: dict[str, object] = {}
        records: list[tuple[object, ...]] = []

        def record(*args: object, **kwargs: object) -> None:
            records.append(args)

        with netlink.Netlink() as nl:
            top = nl.here()
            for net in plan.networks:
                top.add_bridge(net.bridge, mtu=net.mtu)
            trunks.build_switch(nl, plan, record)
            spaces = {}
            for node in plan.agents:
                path = netlink.create_netns(node.name)
                nl.ns(path).set_link("lo", up=True)
                made = trunks.wire_real(
                    nl, plan, record, path, lambda n, i=node.index: f"n{i}-{n}", node.nics
                )
                out[node.name] = sorted(made)
                spaces[node.name] = nl.ns(path)
            w1, w2 = spaces["tk-wrk-1"], spaces["tk-wrk-2"]
            w1.add_address("ens224.50", "172.16.50.11/24")
            w2.add_address("ens224.50", "172.16.50.12/24")
            w2.add_address("vlan60", "172.16.50.22/24")  # VLAN 60, an address of VLAN 50
            host = nl.ns(netlink.create_netns("h50"))
            top.add_veth("h-eth0", "eth0", peer_ns=host, master="mh-vlan50")
            host.set_link("eth0", up=True)
            host.add_address("eth0", "172.16.50.31/24")
            out["kinds"] = {i.name: i.kind for i in w1.links()}
            out["w1_w2"] = ping(w1.path, "172.16.50.12")
            out["w1_host"] = ping(w1.path, "172.16.50.31")
            out["w1_vlan60"] = ping(w1.path, "172.16.50.22", timeout=0.5)
        return out

    out = sb.call(work)
    assert out["tk-wrk-1"] == ["ens224", "ens224.50", "vlan60"]
    kinds = out["kinds"]
    assert isinstance(kinds, dict)
    assert kinds["ens224.50"] == "vlan" and kinds["vlan60"] == "vlan"
    assert out["w1_w2"] is True and out["w1_host"] is True
    assert out["w1_vlan60"] is False


def test_long_sub_interface_names_get_their_own_switch_ports() -> None:
    from multihome.lab.names import switch_port

    assert switch_port("n", 1, "ens224.50") == "n1-ens224.50"  # fits: as before
    ports = {switch_port("n", 1, f"enp0s31f6.{vid}") for vid in (100, 101, 1000)}
    assert len(ports) == 3 and all(len(p) <= 15 for p in ports)
