"""network-status entries and text, and result adjustment for default-route (pure)."""

from __future__ import annotations

import json
from typing import Any

from multihome.multus.status import (
    adjust_default_routes,
    default_gateways,
    format_network_status,
    network_status_entries,
)

PTP_RESULT: dict[str, Any] = {
    "cniVersion": "0.3.1",
    "interfaces": [
        {"name": "veth1234", "mac": "aa:aa:aa:aa:aa:01"},
        {"name": "eth0", "mac": "0a:58:0a:2a:00:05", "sandbox": "/run/netns/pod"},
    ],
    "ips": [
        {"version": "4", "interface": 1, "address": "10.42.0.5/24", "gateway": "10.42.0.1"},
    ],
    "routes": [{"dst": "0.0.0.0/0", "gw": "10.42.0.1"}],
    "dns": {},
}

MACVLAN_RESULT: dict[str, Any] = {
    "cniVersion": "1.0.0",
    "interfaces": [{"name": "net1", "mac": "02:00:00:00:00:01", "sandbox": "/run/netns/pod"}],
    "ips": [{"interface": 0, "address": "172.16.50.30/24"}],
    "dns": {},
}


def test_single_interface_result() -> None:
    entries = network_status_entries("ns/macvlan", MACVLAN_RESULT, default=False)
    assert entries == [
        {
            "name": "ns/macvlan",
            "interface": "net1",
            "ips": ["172.16.50.30"],
            "mac": "02:00:00:00:00:01",
            "dns": {},
        }
    ]
    assert list(entries[0]) == ["name", "interface", "ips", "mac", "dns"]


def test_default_entry_with_host_side_interface_and_gateway() -> None:
    entries = network_status_entries("k8s-pod-network", PTP_RESULT, default=True)
    assert entries == [
        {
            "name": "k8s-pod-network",
            "interface": "eth0",
            "ips": ["10.42.0.5"],
            "mac": "0a:58:0a:2a:00:05",
            "default": True,
            "dns": {},
            "gateway": ["10.42.0.1"],
        }
    ]
    assert list(entries[0]) == ["name", "interface", "ips", "mac", "default", "dns", "gateway"]


def test_single_interface_uses_all_ips_and_mtu_and_dns() -> None:
    result = {
        "cniVersion": "1.1.0",
        "interfaces": [{"name": "net1", "mac": "02:00:00:00:00:01", "mtu": 1400, "sandbox": "x"}],
        "ips": [{"address": "10.0.0.2/24"}, {"address": "fd00::2/64", "interface": 0}],
        "dns": {"nameservers": ["10.0.0.53"], "search": ["lab"]},
    }
    (entry,) = network_status_entries("a/b", result, default=False)
    assert entry["ips"] == ["10.0.0.2", "fd00::2"]
    assert entry["mtu"] == 1400
    assert entry["dns"] == {"nameservers": ["10.0.0.53"], "search": ["lab"]}
    assert list(entry) == ["name", "interface", "ips", "mac", "mtu", "dns"]


def test_no_interfaces_gives_no_entry() -> None:
    result = {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]}
    assert network_status_entries("a/b", result, default=False) == []


def test_single_interface_without_sandbox_still_gives_an_entry() -> None:
    result = {"cniVersion": "1.0.0", "interfaces": [{"name": "br0"}], "ips": []}
    assert network_status_entries("a/b", result, default=False) == [{"name": "a/b", "dns": {}}]


def test_multiple_sandbox_interfaces() -> None:
    result = {
        "cniVersion": "1.0.0",
        "interfaces": [
            {"name": "host0"},
            {"name": "a", "mac": "02:00:00:00:00:0a", "sandbox": "x"},
            {"name": "b", "mac": "02:00:00:00:00:0b", "sandbox": "x"},
        ],
        "ips": [
            {"address": "10.0.0.2/24", "interface": 1},
            {"address": "10.1.0.2/24", "interface": 2, "gateway": "10.1.0.1"},
            {"address": "10.2.0.2/24"},  # no interface: the last entry
            {"address": "10.3.0.2/24", "interface": 0},  # host side: dropped
        ],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}],
    }
    a, b = network_status_entries("net", result, default=True)
    assert a == {
        "name": "net",
        "interface": "a",
        "ips": ["10.0.0.2"],
        "mac": "02:00:00:00:00:0a",
        "dns": {},
        "gateway": ["10.1.0.1"],
    }
    assert b["ips"] == ["10.1.0.2", "10.2.0.2"]
    assert b["default"] is True  # the interface whose IP has a gateway
    assert "default" not in a


def test_multiple_sandbox_interfaces_default_falls_back_to_first() -> None:
    result = {
        "cniVersion": "1.0.0",
        "interfaces": [{"name": "a", "sandbox": "x"}, {"name": "b", "sandbox": "x"}],
    }
    a, b = network_status_entries("net", result, default=True)
    assert a.get("default") is True and "default" not in b
    assert "ips" not in a


def test_format_is_go_marshal_indent() -> None:
    entries = [
        network_status_entries("k8s-pod-network", PTP_RESULT, default=True)[0],
        network_status_entries("ns/macvlan", MACVLAN_RESULT, default=False)[0],
    ]
    text = format_network_status(entries)
    assert text == (
        "[{\n"
        '    "name": "k8s-pod-network",\n'
        '    "interface": "eth0",\n'
        '    "ips": [\n'
        '        "10.42.0.5"\n'
        "    ],\n"
        '    "mac": "0a:58:0a:2a:00:05",\n'
        '    "default": true,\n'
        '    "dns": {},\n'
        '    "gateway": [\n'
        '        "10.42.0.1"\n'
        "    ]\n"
        "},{\n"
        '    "name": "ns/macvlan",\n'
        '    "interface": "net1",\n'
        '    "ips": [\n'
        '        "172.16.50.30"\n'
        "    ],\n"
        '    "mac": "02:00:00:00:00:01",\n'
        '    "dns": {}\n'
        "}]"
    )
    assert json.loads(text) == entries
    assert format_network_status([]) == "[]"
    assert (
        format_network_status([{"name": "a<b>&"}])
        == '[{\n    "name": "a\\u003cb\\u003e\\u0026"\n}]'
    )


def test_default_gateways() -> None:
    result = {
        "routes": [
            {"dst": "0.0.0.0/0", "gw": "10.0.0.1"},
            {"dst": "::/0", "gw": "fd00::1"},
            {"dst": "0.0.0.0/0"},  # no gateway: nothing to report
            {"dst": "10.0.0.0/8", "gw": "10.0.0.1"},
        ]
    }
    assert default_gateways(result) == ["10.0.0.1", "fd00::1"]


def test_adjust_removes_and_adds_default_routes() -> None:
    moved_away = adjust_default_routes(PTP_RESULT, remove=True)
    assert "routes" not in moved_away
    assert PTP_RESULT["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.42.0.1"}]  # input untouched
    moved_here = adjust_default_routes(MACVLAN_RESULT, remove=True, gateways=["172.16.50.1"])
    assert moved_here["routes"] == [{"dst": "0.0.0.0/0", "gw": "172.16.50.1"}]
    v6 = adjust_default_routes(
        {"routes": [{"dst": "10.0.0.0/8"}, {"dst": "::/0", "gw": "fd00::9"}]},
        remove=True,
        gateways=["fd00::1"],
    )
    assert v6["routes"] == [{"dst": "10.0.0.0/8"}, {"dst": "::/0", "gw": "fd00::1"}]
    (entry,) = network_status_entries("ns/m", moved_here, default=False)
    assert entry["gateway"] == ["172.16.50.1"]
