"""The lab's whereabouts IPAM plugin: config forms, allocation order, exclusions, IPv6,
overlapping ranges, node slices, release, results per CNI version, and concurrent ADDs from
separate processes against one store (the plugin run as an executable over the CNI protocol)."""

from __future__ import annotations

import ipaddress
import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from multihome.lab import ipam
from multihome.lab.plugins import whereabouts as wb

FLAT = {"kubernetes": {"kubeconfig": "/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig"}}


def _conf(version: str = "0.3.1", name: str = "net", **ipam_keys: Any) -> dict[str, Any]:
    return {"cniVersion": version, "name": name, "type": "macvlan",
            "ipam": {"type": "whereabouts", **ipam_keys}}  # fmt: skip


def _load(pod: str = "p0", ns: str = "apps", **keys: Any) -> wb.Config:
    args = f"IgnoreUnknown=true;K8S_POD_NAMESPACE={ns};K8S_POD_NAME={pod}"
    return wb.load_config(_conf(**keys), args, FLAT)


def _add(store: wb.Store, pod: str, ifname: str = "net1", **keys: Any) -> list[str]:
    cfg = _load(pod=pod, **keys)
    return [str(ip) for ip, _ in wb.allocate(store, cfg, f"cid-{pod}", ifname)]


def _del(store: wb.Store, pod: str, ifname: str = "net1", **keys: Any) -> None:
    wb.release(store, _load(pod=pod, **keys), f"cid-{pod}", ifname)


@pytest.fixture
def store(tmp_path: Path) -> wb.Store:
    return wb.Store(str(tmp_path))


# -- config ----------------------------------------------------------------------------------


def test_cidr_form_starts_after_the_network_address() -> None:
    cfg = _load(range="192.168.2.225/28")
    (rng,) = cfg.ranges
    assert str(rng.cidr) == "192.168.2.224/28"
    # the host bits of the CIDR do not move the start (pkg/config masks it)
    assert [str(x) for x in rng.bounds()] == ["192.168.2.225", "192.168.2.238"]


def test_dash_form_sets_start_and_end_over_the_keys() -> None:
    cfg = _load(range="192.168.2.230-192.168.2.234/28", range_start="192.168.2.226")
    (rng,) = cfg.ranges
    assert str(rng.cidr) == "192.168.2.224/28"
    assert [str(x) for x in rng.bounds()] == ["192.168.2.230", "192.168.2.234"]
    assert rng.size() == 5


def test_range_start_end_keys_and_out_of_range_ones_ignored() -> None:
    (rng,) = _load(range="10.0.0.0/24", range_start="10.0.0.100", range_end="10.0.0.110").ranges
    assert [str(x) for x in rng.bounds()] == ["10.0.0.100", "10.0.0.110"]
    (rng,) = _load(range="10.0.0.0/24", range_start="10.9.0.1", range_end="bogus").ranges
    assert [str(x) for x in rng.bounds()] == ["10.0.0.1", "10.0.0.254"]


def test_sloppy_ipv4_with_leading_zeros() -> None:
    (rng,) = _load(range="010.000.000.000/24").ranges
    assert str(rng.cidr) == "10.0.0.0/24"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("10.0.0.0", "invalid CIDR 10.0.0.0: invalid CIDR address: 10.0.0.0"),
        ("10.0.0.0/33", "invalid CIDR 10.0.0.0/33"),
        ("10.0.0.0/255.255.255.0", "invalid CIDR 10.0.0.0/255.255.255.0"),
        ("x-10.0.0.9/24", "invalid range start IP: x"),
        ("10.0.1.5-10.0.0.9/24", "invalid range start for CIDR 10.0.0.0/24: 10.0.1.5"),
        ("10.0.0.5-10.0.0.9", "invalid CIDR (do you have the 'range' parameter set"),
    ],
)
def test_bad_ranges_fail_as_whereabouts_says(value: str, message: str) -> None:
    with pytest.raises(wb.PluginError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        _load(range=value)


def test_config_needs_the_flat_file_and_a_kubeconfig() -> None:
    with pytest.raises(wb.PluginError, match="config file not found"):
        wb.load_config(_conf(range="10.0.0.0/24"), "", None)
    with pytest.raises(wb.PluginError, match="storage engine"):
        wb.load_config(_conf(range="10.0.0.0/24"), "", {})
    with pytest.raises(wb.PluginError, match="couldn't parse gateway IP: <gateway>"):
        _load(range="10.0.0.0/24", gateway="<gateway>")


def test_routes_as_cni_decodes_them() -> None:
    cfg = _load(range="10.0.0.0/24", routes=[{"dst": "10.10.0.5/16", "gw": "10.0.0.1", "x": 1}])
    assert cfg.routes == [{"dst": "10.10.0.5/16", "gw": "10.0.0.1"}]
    with pytest.raises(wb.PluginError, match=r"invalid CIDR address: 10\.10\.0\.0"):
        _load(range="10.0.0.0/24", routes=[{"dst": "10.10.0.0"}])
    with pytest.raises(wb.PluginError, match="invalid IP address: <gateway>"):
        _load(range="10.0.0.0/24", routes=[{"dst": "0.0.0.0/0", "gw": "<gateway>"}])


def test_top_level_exclude_belongs_to_range_only() -> None:
    cfg = _load(
        range="10.0.0.0/24",
        exclude=["10.0.0.1/32"],
        ipRanges=[{"range": "fd00::/64", "exclude": ["fd00::1"]}],
    )
    assert [r.exclude for r in cfg.ranges] == [["10.0.0.1/32"], ["fd00::1"]]
    cfg = _load(exclude=["10.0.0.1/32"], ipRanges=[{"range": "10.0.0.0/24"}])
    assert cfg.ranges[0].exclude == []


# -- allocation ------------------------------------------------------------------------------


def test_lowest_free_first_and_release(store: wb.Store) -> None:
    keys = {"range": "10.1.0.0/29"}
    assert [_add(store, f"p{i}", **keys) for i in range(3)] == [
        ["10.1.0.1"], ["10.1.0.2"], ["10.1.0.3"]
    ]  # fmt: skip
    _del(store, "p1", **keys)
    assert _add(store, "p9", **keys) == ["10.1.0.2"]  # the hole is filled first
    # the same pod and interface gets its address again (a retried ADD)
    assert _add(store, "p0", **keys) == ["10.1.0.1"]
    # a /29 holds 6: three more, then the range is full
    assert [_add(store, f"q{i}", **keys)[0] for i in range(3)] == [
        "10.1.0.4", "10.1.0.5", "10.1.0.6"
    ]  # fmt: skip
    with pytest.raises(wb.PluginError, match=r"Could not allocate IP in range: ip: 10.1.0.1 / - "):
        _add(store, "full", **keys)


def test_exclusions_skip_whole_subnets(store: wb.Store) -> None:
    keys = {"range": "10.2.0.0/24", "exclude": ["10.2.0.0/30", "10.2.0.5"]}
    got = [_add(store, f"p{i}", **keys)[0] for i in range(3)]
    assert got == ["10.2.0.4", "10.2.0.6", "10.2.0.7"]
    (rng,) = _load(**keys).ranges
    assert rng.size() == 254 - 3 - 1


def test_ipv6_and_dual_stack(store: wb.Store) -> None:
    keys = {"ipRanges": [{"range": "10.3.0.0/24"}, {"range": "fd00:10::/64"}]}
    assert _add(store, "a", **keys) == ["10.3.0.1", "fd00:10::1"]
    assert _add(store, "b", **keys) == ["10.3.0.2", "fd00:10::2"]
    assert wb.pool_name("fd00:10::/64") == "fd00-10---64"
    pools = {p["name"]: p for p in ipam.pools(store.root)}
    assert set(pools) == {"10.3.0.0-24", "fd00-10---64"}
    assert [a["podref"] for a in pools["fd00-10---64"]["allocations"]] == ["apps/a", "apps/b"]


def test_pools_are_per_cidr_and_network_name(store: wb.Store) -> None:
    # two NADs with the same CIDR share one pool: no duplicates between them
    assert _add(store, "a", range="10.4.0.0/24", range_start="10.4.0.50") == ["10.4.0.50"]
    assert _add(store, "b", range="10.4.0.50-10.4.0.60/24") == ["10.4.0.51"]
    # another network_name is another pool
    assert _add(store, "c", range="10.4.0.0/24", range_start="10.4.0.50", network_name="blue") == [
        "10.4.0.50"
    ]
    assert {p["name"] for p in ipam.pools(store.root)} == {"10.4.0.0-24", "blue-10.4.0.0-24"}


def test_overlapping_ranges_are_reserved_cluster_wide(store: wb.Store) -> None:
    assert _add(store, "a", range="10.5.0.0/24") == ["10.5.0.1"]
    # a different pool (/25) over the same addresses skips what the /24 gave out
    assert _add(store, "b", range="10.5.0.0/25") == ["10.5.0.2"]
    _del(store, "a", range="10.5.0.0/24")
    assert _add(store, "c", range="10.5.0.0/25") == ["10.5.0.1"]


def test_without_overlapping_protection_duplicates_happen(store: wb.Store) -> None:
    off = {"enable_overlapping_ranges": False}
    assert _add(store, "a", range="10.6.0.0/24", **off) == ["10.6.0.1"]
    assert _add(store, "b", range="10.6.0.0/25", **off) == ["10.6.0.1"]
    # other network names are other reservation spaces
    assert _add(store, "c", range="10.7.0.0/24", network_name="x") == ["10.7.0.1"]
    assert _add(store, "d", range="10.7.0.0/25", network_name="y") == ["10.7.0.1"]


def test_node_slices(store: wb.Store, monkeypatch: pytest.MonkeyPatch) -> None:
    Path(store.root, "nodes.json").write_text(json.dumps(["n1", "n2"]))
    keys = {"range": "10.8.0.0/24", "node_slice_size": "/26"}
    monkeypatch.setenv("NODENAME", "n2")
    assert _add(store, "a", **keys) == ["10.8.0.65"]
    monkeypatch.setenv("NODENAME", "n1")
    assert _add(store, "b", **keys) == ["10.8.0.1"]
    assert {p["name"] for p in ipam.pools(store.root)} == {"n1-10.8.0.0-26", "n2-10.8.0.64-26"}
    monkeypatch.setenv("NODENAME", "n3")
    with pytest.raises(wb.PluginError, match="no allocated node slice for node"):
        _add(store, "c", **keys)


def test_results_per_version() -> None:
    cfg = _load(range="10.9.0.0/24", gateway="10.9.0.254", routes=[{"dst": "10.10.0.0/16"}])
    got = [(ipaddress.ip_address("10.9.0.1"), 24)]
    assert wb.result(cfg, got, "0.3.1") == {
        "cniVersion": "0.3.1",
        "ips": [{"version": "4", "address": "10.9.0.1/24", "gateway": "10.9.0.254"}],
        "routes": [{"dst": "10.10.0.0/16"}],
        "dns": {},
    }
    assert wb.result(cfg, got, "1.0.0")["ips"] == [
        {"address": "10.9.0.1/24", "gateway": "10.9.0.254"}
    ]
    assert wb.result(cfg, got, "0.2.0")["ip4"] == {
        "ip": "10.9.0.1/24", "gateway": "10.9.0.254", "routes": [{"dst": "10.10.0.0/16"}]
    }  # fmt: skip


# -- the executable ------------------------------------------------------------------------


def _run(
    launcher: str, command: str, conf: dict[str, Any], pod: str, flat_dir: Path
) -> tuple[int, dict[str, Any]]:
    env = {
        "CNI_COMMAND": command, "CNI_CONTAINERID": f"cid-{pod}", "CNI_NETNS": "/proc/1/ns/net",
        "CNI_IFNAME": "net1", "CNI_PATH": "/usr/lib/cni", "PATH": os.environ["PATH"],
        "CNI_ARGS": f"IgnoreUnknown=true;K8S_POD_NAMESPACE=apps;K8S_POD_NAME={pod}",
    }  # fmt: skip
    conf = dict(conf, ipam=dict(conf["ipam"], configuration_path=str(flat_dir / "flat.conf")))
    done = subprocess.run(
        [launcher], input=json.dumps(conf), capture_output=True, text=True, env=env, check=False
    )
    return done.returncode, json.loads(done.stdout) if done.stdout else {}


def test_concurrent_adds_from_many_processes_never_collide(tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    launcher = ipam.write_launcher(str(tmp_path / "bin"), store, ["n1"])
    (tmp_path / "flat.conf").write_text(json.dumps(FLAT))
    conf = _conf(range="10.20.0.0/24")
    with ThreadPoolExecutor(12) as pool:  # each ADD is its own plugin process
        results = list(
            pool.map(lambda i: _run(launcher, "ADD", conf, f"p{i}", tmp_path), range(24))
        )
    assert all(code == 0 for code, _ in results), results
    addresses = [r["ips"][0]["address"] for _, r in results]
    assert len(set(addresses)) == 24
    assert sorted(addresses, key=lambda a: ipaddress.ip_interface(a)) == [
        f"10.20.0.{i}/24" for i in range(1, 25)
    ]
    code, _ = _run(launcher, "DEL", conf, "p3", tmp_path)
    assert code == 0
    code, again = _run(launcher, "ADD", conf, "new", tmp_path)
    assert again["ips"][0]["address"] == results[3][1]["ips"][0]["address"]
    # CHECK is not implemented upstream: it fails as whereabouts does
    code, error = _run(launcher, "CHECK", conf, "new", tmp_path)
    assert code == 1 and error["msg"] == "CNI CHECK method is not implemented"
    code, error = _run(launcher, "ADD", _conf(range="10.0.0.0/8/"), "x", tmp_path)
    assert code == 1 and error["code"] == 999 and error["msg"].startswith("invalid CIDR")
