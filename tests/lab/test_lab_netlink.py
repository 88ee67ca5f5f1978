"""netlink.py inside a sandbox: a segment (bridge) with two node namespaces that ping."""

from __future__ import annotations

import contextlib
import errno
import subprocess
from typing import Any

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


def test_plain_socket_reads_what_pyroute2_reads(make_sandbox: MakeSandbox) -> None:
    """The reads that go over the plain socket (links, addresses, routes, route get,
    neighbours, set up, permanent entries and their removal) agree with pyroute2's
    decoding of the same kernel objects."""
    sb = make_sandbox("rawnl")

    def work() -> dict[str, object]:
        out: dict[str, object] = {}
        with netlink.Netlink() as nl:
            top = nl.here()
            top.add_bridge("vlan50")
            node = nl.ns(netlink.create_netns("node"))
            top.add_veth("n1-ens224", "ens224", peer_ns=node, master="vlan50", mtu=1400)
            node.set_link("lo", up=True)
            node.set_link("ens224", up=True)
            node.add_address("ens224", "172.16.50.11/24")
            node.add_address("ens224", "fd00:50::11/64")
            node.add_route("10.9.0.0/16", via="172.16.50.1", dev="ens224")
            node.add_route("default", via="172.16.50.254", dev="ens224")
            node.set_neighbours([("172.16.50.1", "02:00:00:00:00:01", "ens224"),
                                 ("fd00:50::1", "02:00:00:00:00:02", "ens224")])  # fmt: skip
            ipr = node._ipr  # pyroute2's view, for comparison
            names = {int(x["index"]): x.get_attr("IFLA_IFNAME") for x in ipr.get_links()}
            out["links"] = sorted(
                (x.name, x.index, x.mac, x.up, x.mtu, x.kind, x.master, x.addresses)
                for x in node.links()
            )
            addrs: dict[int, list[str]] = {}
            for a in ipr.get_addr():
                local = a.get_attr("IFA_LOCAL") or a.get_attr("IFA_ADDRESS")
                addrs.setdefault(int(a["index"]), []).append(f"{local}/{a['prefixlen']}")
            out["links_pyroute2"] = sorted(
                (
                    x.get_attr("IFLA_IFNAME"),
                    int(x["index"]),
                    x.get_attr("IFLA_ADDRESS"),
                    bool(x["flags"] & 1),
                    x.get_attr("IFLA_MTU"),
                    (
                        x.get_attr("IFLA_LINKINFO").get_attr("IFLA_INFO_KIND")
                        if x.get_attr("IFLA_LINKINFO")
                        else None
                    ),
                    names.get(x.get_attr("IFLA_MASTER")) if x.get_attr("IFLA_MASTER") else None,
                    tuple(addrs.get(int(x["index"]), ())),
                )
                for x in ipr.get_links()
            )
            out["routes"] = sorted(str(r) for r in node.routes())
            out["routes_pyroute2"] = sorted(
                str(
                    {
                        "dst": f"{r.get_attr('RTA_DST')}/{r['dst_len']}"
                        if r.get_attr("RTA_DST")
                        else "default",
                        "via": r.get_attr("RTA_GATEWAY"),
                        "dev": names.get(r.get_attr("RTA_OIF")),
                    }
                )
                for r in ipr.get_routes(family=2, table=254)
            )
            out["route_to"] = node.route_to("10.9.1.1")
            out["routes6"] = node.routes(6)
            out["route_to6"] = node.route_to("fd00:50::99")
            got = ipr.route("get", dst="fd00:50::99")[0]
            out["route_to6_pyroute2"] = {
                "dev": names.get(got.get_attr("RTA_OIF")),
                "via": got.get_attr("RTA_GATEWAY"),
                "src": got.get_attr("RTA_PREFSRC"),
            }
            out["unreachable"] = nl.ns(netlink.create_netns("empty")).route_to("10.9.1.1")
            out["neigh"] = sorted(
                (n.dst, n.dev, n.mac, n.permanent) for n in node.neighbours() if n.permanent
            )
            node.delete_neighbours([("172.16.50.1", "ens224"), ("172.16.50.99", "ens224")])
            out["after_delete"] = sorted(n.dst for n in node.neighbours() if n.permanent)
            for learnt in ("172.16.50.7", "fd00:50::7"):  # as if the kernel had learnt them
                subprocess.run(
                    ["nsenter", f"--net={node.path}", "ip", "neigh", "replace", learnt,
                     "lladdr", "02:00:00:00:00:07", "dev", "ens224", "nud", "stale"],
                    check=True,
                )  # fmt: skip
            out["learnt"] = sorted((n.dst, n.state_name) for n in node.neighbours())
            out["flushed"] = node.flush_neighbours()
            out["after_flush"] = sorted((n.dst, n.state_name) for n in node.neighbours())
            node.set_link("ens224", up=False)
            out["down"] = node.is_up("ens224")
            try:
                node.index("nosuch0")
            except netlink.NetlinkError as exc:
                out["missing"] = exc.errno
        return out

    r = sb.call(work)
    assert r["links"] == r["links_pyroute2"]
    assert ("ens224", True, 1400, "veth", ("172.16.50.11/24", "fd00:50::11/64")) in [
        (x[0], x[3], x[4], x[5], x[7][:2]) for x in r["links"]
    ]
    assert r["routes"] == r["routes_pyroute2"]
    assert len(r["routes"]) == 3  # the subnet, 10.9/16 and the default
    assert r["route_to"] == {"dev": "ens224", "via": "172.16.50.1", "src": "172.16.50.11"}
    assert r["unreachable"] is None
    assert {"dst": "fd00:50::/64", "via": None, "dev": "ens224"} in r["routes6"]
    assert r["route_to6"] == r["route_to6_pyroute2"]
    assert r["route_to6"]["dev"] == "ens224"
    assert r["neigh"] == [
        ("172.16.50.1", "ens224", "02:00:00:00:00:01", True),
        ("fd00:50::1", "ens224", "02:00:00:00:00:02", True),
    ]
    assert r["down"] is False
    assert r["after_delete"] == ["fd00:50::1"]
    assert ("172.16.50.7", "stale") in r["learnt"] and ("fd00:50::7", "stale") in r["learnt"]
    assert r["flushed"] == 2
    assert [x for x in r["after_flush"] if x[1] != "noarp"] == [("fd00:50::1", "permanent")]
    assert r["missing"] == errno.ENODEV


def test_vlan_requests_read_back_by_pyroute2_as_iproute2_sends_them(
    make_sandbox: MakeSandbox,
) -> None:
    """VLAN links, VLAN-aware bridges and their ports' VLANs, which this kernel may lack
    (test_trunks.py then skips): each request, decoded by pyroute2's own message classes,
    says what ``ip link add link P name P.50 type vlan id 50``, ``ip link add B type bridge
    vlan_filtering 1 vlan_default_pvid 0`` and ``bridge vlan add dev P vid 50 pvid
    untagged`` say."""
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    sb = make_sandbox("nlvlan")

    def work() -> list[Any]:
        sent: list[netlink.Change] = []
        with netlink.Netlink() as nl:
            top = nl.here()
            top.add_veth("p0", "p1")
            parent = top.index("p0")
            top.apply = sent.extend  # type: ignore[method-assign]  # kept, not sent
            for make in (
                lambda: top.add_vlan("p0.50", "p0", 50, mtu=1400),
                lambda: top.add_bridge("trunk", vlan_aware=True),
                lambda: top.bridge_vlan("p0", 50, untagged=True),
                lambda: top.bridge_vlan("p0", 60),
            ):
                with contextlib.suppress(netlink.NetlinkError):  # made nothing: no index
                    make()
        decoded = []
        for change in sent:
            msg = ifinfmsg(netlink._frame(change.kind, change.flags, 1, change.body))
            msg.decode()
            info = msg.get("IFLA_LINKINFO")
            data = info.get("IFLA_INFO_DATA") if info else None
            spec = msg.get("IFLA_AF_SPEC")
            decoded.append(
                {
                    "type": change.kind,
                    "family": msg["family"],
                    "index": msg["index"] == parent or msg["index"],
                    "name": msg.get("IFLA_IFNAME"),
                    "link": msg.get("IFLA_LINK") == parent or msg.get("IFLA_LINK"),
                    "mtu": msg.get("IFLA_MTU"),
                    "kind": info.get("IFLA_INFO_KIND") if info else None,
                    "data": dict(data["attrs"]) if data else None,
                    "vlans": [(v["flags"], v["vid"]) for _, v in spec["attrs"]] if spec else None,
                }
            )
        return decoded

    vlan, bridge, bridge_up, pvid, tagged = sb.call(work)
    assert vlan == {"type": 16, "family": 0, "index": 0, "name": "p0.50", "link": True,
                    "mtu": 1400, "kind": "vlan", "data": {"IFLA_VLAN_ID": 50},
                    "vlans": None}  # fmt: skip
    assert bridge["kind"] == "bridge" and bridge["name"] == "trunk"
    assert bridge["data"] == {"IFLA_BR_VLAN_FILTERING": 1, "IFLA_BR_VLAN_DEFAULT_PVID": 0}
    assert bridge_up["name"] == "trunk" and bridge_up["kind"] is None
    # RTM_SETLINK of family AF_BRIDGE on the port; flags: pvid 0x2 | untagged 0x4
    assert pvid == {"type": 19, "family": 7, "index": True, "name": None, "link": None,
                    "mtu": None, "kind": None, "data": None,
                    "vlans": [(6, 50)]}  # fmt: skip
    assert tagged["vlans"] == [(0, 60)]


def test_pyroute2_init_runs_only_when_a_top_level_name_is_asked_for() -> None:
    """netlink loads pyroute2's rtnetlink modules without its package __init__ (which
    imports its whole library); a submodule asked for by name is just imported, and the
    first top-level name (``from pyroute2 import IPRoute``) runs the real __init__."""
    import sys

    probe = (
        "import sys\n"
        "import multihome.lab.netlink\n"
        "loaded = lambda: 'pyroute2.ndb.main' in sys.modules\n"
        "print(loaded())\n"
        "from pyroute2 import config\n"
        "print(loaded())\n"
        "from pyroute2 import IPRoute\n"
        "import pyroute2\n"
        "print(loaded(), IPRoute.__name__, bool(pyroute2.__version__))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:3] == ["False", "False", "True IPRoute True"]
