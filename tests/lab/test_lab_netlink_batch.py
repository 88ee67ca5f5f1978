"""netlink's requests against iproute2's: the same objects made with ``ip`` commands, with
the one-call methods and with batches (``Change``, ``NetNS.apply``) look the same to ``ip
-d``; a refused request is named."""

from __future__ import annotations

import errno
import json
import subprocess
from typing import Any

from labkit import MakeSandbox

from multihome.lab import netlink

VOLATILE = {"ifindex", "address", "broadcast", "link_index", "link_netnsid", "master",
            "operstate", "linkmode", "promiscuity", "allmulti", "min_mtu", "max_mtu",
            "num_tx_queues", "num_rx_queues", "gso_max_size", "gso_max_segs", "tso_max_size",
            "tso_max_segs", "gro_max_size", "gso_ipv4_max_size", "gro_ipv4_max_size",
            "preferred_life_time", "valid_life_time", "ifname", "dev",
            "inet6_addr_gen_mode", "parentbus", "parentdev"}  # fmt: skip


def _ip(path: str, *argv: str) -> Any:
    done = subprocess.run(
        ["nsenter", f"--net={path}", "ip", "-j", "-d", *argv],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return json.loads(done.stdout or "[]")


def _plain(value: Any) -> Any:
    """Without what differs between two namespaces built alike (indexes, MACs, link-local
    addresses made from them, addrconf's timers and flags)."""
    if isinstance(value, dict):
        if value.get("scope") == "link" and value.get("family") == "inet6":
            return None
        if "local" in value and "prefixlen" in value:  # an address: without DAD's flags
            return {k: value.get(k) for k in ("family", "local", "prefixlen", "scope")}
        return {k: _plain(v) for k, v in sorted(value.items()) if k not in VOLATILE}
    if isinstance(value, list):
        return [x for x in (_plain(v) for v in value) if x is not None]
    return value


def _view(path: str) -> dict[str, Any]:
    return {
        "links": _plain(_ip(path, "link", "show")),
        "addresses": _plain(_ip(path, "address", "show", "ens192")),
        "routes": _plain(_ip(path, "route", "show", "table", "all")),
        "neighbours": _plain(_ip(path, "neigh", "show", "nud", "permanent")),
    }


def _by_iproute2(netns: str) -> None:
    """In ``netns`` what ``test_the_requests_make_what_iproute2_makes`` makes the other ways
    (its veth's other end, r-ens192 on vlan40, made here too)."""
    at = f"/run/netns/{netns}"
    subprocess.run(["ip", "link", "add", "r-ens192", "mtu", "1450", "type", "veth", "peer",
                    "name", "ens192", "netns", netns, "mtu", "1450"], check=True)  # fmt: skip
    subprocess.run(["ip", "link", "set", "r-ens192", "master", "vlan40", "up"], check=True)
    script = """link set lo up
link set ens192 up
address add 172.16.40.47/24 brd + dev ens192
address add fd00:40::47/64 dev ens192
route add default via 172.16.40.1 dev ens192 proto static
route add 10.42.7.0/24 via 192.0.2.9 dev ens192 onlink proto boot
route add 10.42.9.0/24 dev ens192 proto static
route add 10.50.0.0/16 via 172.16.40.1 dev ens192 metric 100 src 172.16.40.47 proto static
neigh replace 172.16.40.48 lladdr 02:00:00:00:00:48 dev ens192 nud permanent
neigh replace fd00:40::48 lladdr 02:00:00:00:00:49 dev ens192 nud permanent
link add mv0 link ens192 mtu 1400 type macvlan mode private
"""
    subprocess.run(["nsenter", f"--net={at}", "ip", "-batch", "-"], input=script, text=True,
                   check=True)  # fmt: skip


def test_the_requests_make_what_iproute2_makes(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox("nlbatch")

    def work() -> dict[str, Any]:
        out: dict[str, Any] = {}
        with netlink.Netlink() as nl:
            top = nl.here()
            top.add_bridge("vlan40", mtu=1500)
            ref = nl.ns(netlink.create_netns("ref"))
            _by_iproute2("ref")
            one = nl.ns(netlink.create_netns("one"))
            top.add_veth("a-ens192", "ens192", peer_ns=one, master="vlan40", mtu=1450)
            one.set_link("lo", up=True)
            one.set_link("ens192", up=True)
            one.add_address("ens192", "172.16.40.47/24")
            one.add_address("ens192", "fd00:40::47/64")
            one.add_route("default", via="172.16.40.1", dev="ens192")
            one.add_route("10.42.7.0/24", via="192.0.2.9", dev="ens192", onlink=True,
                          proto=netlink.RTPROT_BOOT)  # fmt: skip
            one.add_route("10.42.9.0/24", dev="ens192")
            one.add_route("10.50.0.0/16", via="172.16.40.1", dev="ens192", metric=100,
                          src="172.16.40.47")  # fmt: skip
            one.add_macvlan("mv0", "ens192", mode="private", mtu=1400)
            one.set_neighbours([("172.16.40.48", "02:00:00:00:00:48", "ens192"),
                                ("fd00:40::48", "02:00:00:00:00:49", "ens192")])  # fmt: skip
            two = nl.ns(netlink.create_netns("two"))
            top.apply([top.change_veth("b-ens192", "ens192", peer_ns=two, master="vlan40",
                                       mtu=1450)])  # fmt: skip
            two.apply(
                [
                    two.change_up("lo"),
                    two.change_up("ens192"),
                    two.change_address("ens192", "172.16.40.47/24"),
                    two.change_address("ens192", "fd00:40::47/64"),
                    two.change_route("default", via="172.16.40.1", dev="ens192"),
                ]
            )
            two.apply([two.change_route("10.42.7.0/24", via="192.0.2.9", dev="ens192",
                                        onlink=True, proto=netlink.RTPROT_BOOT),
                       two.change_route("10.42.9.0/24", via=None, dev="ens192"),
                       two.change_route("10.50.0.0/16", via="172.16.40.1", dev="ens192",
                                        metric=100, src="172.16.40.47")])  # fmt: skip
            two.add_macvlan("mv0", "ens192", mode="private", mtu=1400)
            two.apply([two.change_neighbour("172.16.40.48", "02:00:00:00:00:48", "ens192"),
                       two.change_neighbour("fd00:40::48", "02:00:00:00:00:49", "ens192")])  # fmt: skip
            out["ref"], out["one"], out["two"] = _view(ref.path), _view(one.path), _view(two.path)
            out["masters"] = (top.master("a-ens192"), top.master("b-ens192"))
            out["macs"] = two.link_macs()
            # more than one send's worth, then one the kernel refuses
            two.apply([two.change_route(f"10.{i // 250}.{i % 250}.0/24", via="172.16.40.9",
                                        dev="ens192", proto=netlink.RTPROT_BOOT)
                       for i in range(150)])  # fmt: skip
            out["many"] = len(two.routes())
            try:
                two.apply([two.change_route("10.99.0.0/24", via="192.0.2.1", dev="ens192"),
                           two.change_route("10.98.0.0/24", via="172.16.40.9", dev="ens192")])  # fmt: skip
            except netlink.NetlinkError as exc:
                out["refused"] = (str(exc), exc.errno)
            out["after"] = sorted(r["dst"] for r in two.routes() if r["dst"].startswith("10.9"))
        return out

    r = sb.call(work)
    assert r["one"] == r["ref"]
    assert r["two"] == r["ref"]
    assert r["ref"]["routes"] and r["ref"]["neighbours"] and r["ref"]["addresses"]
    assert {x.get("linkinfo", {}).get("info_kind") for x in r["ref"]["links"]} >= {"macvlan"}
    assert r["masters"] == ("vlan40", "vlan40")
    assert set(r["macs"]) == {"lo", "ens192", "mv0"} and r["macs"]["ens192"]
    assert r["many"] == 1 + 1 + 3 + 150  # the subnet, default, 3 others, the many
    message, code = r["refused"]
    assert code == errno.ENETUNREACH
    assert "add route 10.99.0.0/24" in message and "two" in message
    assert r["after"] == ["10.98.0.0/24"]  # the rest of its send was still made
