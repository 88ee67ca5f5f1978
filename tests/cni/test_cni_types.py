"""Results as types: reading every supported version, writing any, converting between them."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from multihome.cni import DNS, Interface, IPConfig, Result, Route

R040: dict[str, Any] = {
    "cniVersion": "0.4.0",
    "interfaces": [
        {"name": "cni0", "mac": "00:11:22:33:44:55"},
        {"name": "eth0", "mac": "00:11:22:33:44:66", "sandbox": "/run/netns/p"},
    ],
    "ips": [
        {"version": "4", "interface": 1, "address": "10.1.0.5/24", "gateway": "10.1.0.1"},
        {"version": "6", "interface": 1, "address": "fd00::5/64"},
    ],
    "routes": [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}, {"dst": "fd00:1::/64"}],
    "dns": {"nameservers": ["10.1.0.1"], "domain": "lab", "search": ["a"], "options": ["ndots:2"]},
}


def test_read_040() -> None:
    r = Result.from_json(R040)
    assert r.cni_version == "0.4.0"
    assert r.interfaces[1] == Interface("eth0", "00:11:22:33:44:66", "/run/netns/p")
    assert r.ips[0] == IPConfig(
        ipaddress.ip_interface("10.1.0.5/24"), ipaddress.ip_address("10.1.0.1"), 1
    )
    assert r.ips[1].version == "6" and r.ips[1].gateway is None
    assert r.routes[0] == Route(ipaddress.ip_network("0.0.0.0/0"), ipaddress.ip_address("10.1.0.1"))
    assert r.dns == DNS(["10.1.0.1"], "lab", ["a"], ["ndots:2"])


def test_round_trip_same_version() -> None:
    assert Result.from_json(R040).to_json() == R040


def test_040_to_100_drops_ip_version_and_back() -> None:
    r100 = Result.from_json(R040).to_json("1.0.0")
    assert r100["cniVersion"] == "1.0.0"
    assert all("version" not in ip for ip in r100["ips"])
    again = Result.from_json(r100).to_json("0.3.1")
    assert [ip["version"] for ip in again["ips"]] == ["4", "6"]
    assert {**again, "cniVersion": "0.4.0"} == R040


def test_110_fields_only_in_110() -> None:
    data = {
        "cniVersion": "1.1.0",
        "interfaces": [{"name": "net1", "mtu": 1400, "socketPath": "/s", "pciID": "0000:00:01.0"}],
        "routes": [{"dst": "10.0.0.0/8", "mtu": 1300, "advmss": 1200, "table": 100, "scope": 0}],
    }
    r = Result.from_json(data)
    assert r.interfaces[0].mtu == 1400 and r.routes[0].table == 100
    out = r.to_json()
    assert out["interfaces"] == data["interfaces"] and out["routes"] == data["routes"]
    old = r.to_json("1.0.0")
    assert old["interfaces"] == [{"name": "net1"}]
    assert old["routes"] == [{"dst": "10.0.0.0/8"}]


def test_convert_relabels() -> None:
    r = Result.from_json(R040).convert("1.1.0")
    assert r.cni_version == "1.1.0"
    assert r.to_json()["cniVersion"] == "1.1.0"


def test_empty_result_has_dns_object() -> None:
    assert Result("1.0.0").to_json() == {"cniVersion": "1.0.0", "dns": {}}


BAD: list[tuple[Any, str]] = [
    ([], "result: must be a JSON object"),
    ({}, "cniVersion: None is not a supported result version"),
    ({"cniVersion": "0.5.0"}, "cniVersion: '0.5.0'"),
    ({"cniVersion": "0.1.0", "ip4": {"ip": "10.0.0.1"}}, "ip4.address: '10.0.0.1' has no prefix"),
    ({"cniVersion": "0.2.0", "ip6": []}, "ip6: must be a JSON object"),
    ({"cniVersion": "1.0.0", "ips": {}}, "ips: must be a list"),
    (
        {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.1"}]},
        "ips[0].address: '10.0.0.1' has no",
    ),
    ({"cniVersion": "1.0.0", "ips": [{"address": "nope/24"}]}, "ips[0].address: 'nope/24' is not"),
    ({"cniVersion": "1.0.0", "ips": [{}]}, "ips[0].address: missing"),
    (
        {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.1/24", "gateway": "x"}]},
        "ips[0].gateway: 'x' is not an IP address",
    ),
    (
        {"cniVersion": "0.4.0", "ips": [{"address": "10.0.0.1/24", "version": "5"}]},
        "ips[0].version",
    ),
    (
        {"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.1/24", "interface": "0"}]},
        "ips[0].interface: must be an integer",
    ),
    ({"cniVersion": "1.0.0", "interfaces": [{"mac": "x"}]}, "interfaces[0].name: missing"),
    ({"cniVersion": "1.0.0", "routes": [{"dst": "x"}]}, "routes[0].dst: 'x' is not a network"),
    ({"cniVersion": "1.0.0", "dns": {"nameservers": "1.1.1.1"}}, "dns.nameservers: must be a list"),
]


@pytest.mark.parametrize("data,message", BAD, ids=[m for _, m in BAD])
def test_bad_results_name_the_field(data: Any, message: str) -> None:
    with pytest.raises(ValueError) as err:
        Result.from_json(data)
    assert message in str(err.value)


def test_to_json_refuses_unknown_version() -> None:
    with pytest.raises(ValueError, match=r"0\.5\.0"):
        Result("1.0.0").to_json("0.5.0")


def test_legacy_results_read_and_written_as_the_cni_library_converts_them() -> None:
    legacy = {
        "cniVersion": "0.1.0",
        "ip4": {"ip": "10.9.0.7/24", "gateway": "10.9.0.1", "routes": [{"dst": "0.0.0.0/0"}]},
        "ip6": {"ip": "fd00::7/64", "routes": [{"dst": "::/0", "gw": "fd00::1"}]},
        "dns": {},
    }
    result = Result.from_json(legacy)
    assert result.interfaces == []
    assert result.to_json("1.0.0") == {
        "cniVersion": "1.0.0",
        "ips": [{"address": "10.9.0.7/24", "gateway": "10.9.0.1"}, {"address": "fd00::7/64"}],
        "routes": [{"dst": "0.0.0.0/0"}, {"dst": "::/0", "gw": "fd00::1"}],
        "dns": {},
    }
    assert result.to_json() == legacy
    assert result.convert("0.2.0").to_json()["ip4"] == legacy["ip4"]
