"""netlink.py inside a sandbox: a segment (bridge) with two node namespaces that ping."""

from __future__ import annotations

import errno

import pytest
from labkit import MakeSandbox, ping

from multihome.lab import netlink
from multihome.lab.names import InvalidName


def test_bridge_and_two_nodes_reach_each_other(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox("ping")

    def build() -> dict[str, object]:
        result: dict[str, object] = {}
        with netlink.Netlink() as nl:
            top = nl.here()
            top.add_bridge("vlan50", mtu=9000)
            for i in (1, 2):
                node = nl.ns(netlink.create_netns(f"node{i}"))
                top.add_veth(f"n{i}-ens224", "ens224", peer_ns=node, master="vlan50", mtu=9000)
                node.set_link("lo", up=True)
                node.set_link("ens224", up=True)
                node.add_address("ens224", f"172.16.50.{10 + i}/24")
            n1, n2 = nl.named("node1"), nl.named("node2")
            before = n2.link_stats("ens224")
            result["ping12"] = ping(n1.path, "172.16.50.12")
            result["ping21"] = ping(n2.path, "172.16.50.11")
            result["ping_nobody"] = ping(n1.path, "172.16.50.99", timeout=0.3)
            after = n2.link_stats("ens224")
            result["rx_grew"] = after.rx_packets > before.rx_packets
            result["master"] = top.master("n1-ens224")
            result["mtu"] = (top.mtu("vlan50"), n1.mtu("ens224"))
            result["n1_links"] = n1.link_names()
            result["top_links"] = top.link_names()
            result["netns"] = netlink.list_netns()
        return result

    r = sb.call(build)
    assert r["ping12"] is True and r["ping21"] is True
    assert r["ping_nobody"] is False
    assert r["rx_grew"] is True
    assert r["master"] == "vlan50"
    assert r["mtu"] == (9000, 9000)
    assert r["n1_links"] == ["ens224", "lo"]
    assert r["top_links"] == ["lo", "n1-ens224", "n2-ens224", "vlan50"]
    assert r["netns"] == ["node1", "node2"]


def test_routes_sysctls_and_link_changes(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox("routes")

    def work() -> dict[str, object]:
        out: dict[str, object] = {}
        with netlink.Netlink() as nl:
            top = nl.here()
            node = nl.ns(netlink.create_netns("node"))
            top.add_veth("tmp0", "tmp1")
            top.move_link("tmp1", node, new_name="ens192")
            node.set_link("ens192", up=True)
            node.set_link("lo", up=True)
            node.add_address("ens192", "172.16.40.47/24")
            node.add_address("ens192", "172.16.40.47/24", exist_ok=True)
            node.add_route("default", via="172.16.40.1", dev="ens192")
            node.add_route("10.42.1.0/24", via="172.16.40.48")
            node.add_route("10.42.9.0/24", dev="ens192")
            out["routes"] = sorted(
                (r["dst"], r["via"] or "", r["dev"] or "") for r in node.routes()
            )
            node.set_sysctl("net.ipv4.ip_forward", 1)
            out["fwd"] = (
                node.get_sysctl("net.ipv4.ip_forward"),
                top.get_sysctl("net.ipv4.ip_forward"),
            )
            node.set_link("ens192", up=False)
            out["down"] = node.is_up("ens192")
            top.delete_link("tmp0")
            top.delete_link("tmp0")  # missing is fine
            out["gone"] = top.has_link("tmp0")
            try:
                netlink.create_netns("node")
            except netlink.NetlinkError as exc:
                out["dup"] = exc.errno
            try:
                node.add_route("10.99.0.0/24", via="192.0.2.1")
            except netlink.NetlinkError as exc:
                out["unreachable"] = str(exc)
            netlink.delete_netns("node")
            netlink.delete_netns("node")
            out["left"] = netlink.list_netns()
        return out

    r = sb.call(work)
    assert r["routes"] == [
        ("10.42.1.0/24", "172.16.40.48", "ens192"),
        ("10.42.9.0/24", "", "ens192"),
        ("172.16.40.0/24", "", "ens192"),
        ("default", "172.16.40.1", "ens192"),
    ]
    assert r["fwd"] == ("1", "0")
    assert r["down"] is False
    assert r["gone"] is False
    assert r["dup"] == errno.EEXIST
    assert "add route 10.99.0.0/24" in str(r["unreachable"])
    assert r["left"] == []


def test_names_are_checked_before_the_kernel(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox("names")

    def work() -> list[str]:
        errors = []
        with netlink.Netlink() as nl:
            top = nl.here()
            for bad in ("a-very-long-interface-name", "ens/1", "a b", ".."):
                try:
                    top.add_bridge(bad)
                except InvalidName as exc:
                    errors.append(str(exc))
            for bad_ns in ("../x", "UPPER", ""):
                try:
                    netlink.create_netns(bad_ns)
                except InvalidName as exc:
                    errors.append(str(exc))
            try:
                top.set_sysctl("kernel.hostname", "x")
            except ValueError as exc:
                errors.append(str(exc))
            errors.append(",".join(top.link_names()))
        return errors

    errors = sb.call(work)
    assert len(errors) == 9
    assert errors[-1] == "lo"


def test_macvlan_on_a_bridge_port(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox("macvlan")

    def work() -> list[str]:
        with netlink.Netlink() as nl:
            top = nl.here()
            top.add_bridge("br0")
            host = nl.ns(netlink.create_netns("web"))
            top.add_veth("web-eth", "uplink", peer_ns=host, master="br0")
            try:
                host.add_macvlan("eth0", "uplink")
            except netlink.NetlinkError as exc:  # pragma: no cover - kernel dependent
                pytest.skip(f"macvlan unavailable: {exc}")
            return host.link_names()

    assert sb.call(work) == ["eth0", "lo", "uplink"]
