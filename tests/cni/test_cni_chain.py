"""The chain logic with fake plugins: order, cleanup, DEL tolerance, CHECK, the result cache."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from cni_helpers import Fakes, fake_rt

from multihome.cni import (
    CNIError,
    CNIRuntime,
    ConfigError,
    NetworkConfigList,
    Result,
    load_network_config,
)


def net_of(*plugins: dict[str, Any], version: str = "1.0.0", **extra: Any) -> NetworkConfigList:
    return load_network_config(
        {"cniVersion": version, "name": "fakenet", "plugins": list(plugins), **extra}
    )


def cache_file(tmp_path: Path, cid: str = "c0ffee", ifname: str = "eth0") -> Path:
    return tmp_path / "cache" / "results" / f"fakenet-{cid}-{ifname}"


@pytest.fixture
def abc(fakes: Fakes) -> Fakes:
    for name in ("a", "b", "c"):
        fakes.add(name)
    return fakes


def test_add_in_order_del_in_reverse(abc: Fakes, fake_runtime: CNIRuntime) -> None:
    net = net_of({"type": "a"}, {"type": "b"}, {"type": "c"})
    fake_runtime.add_network_list(net, fake_rt())
    fake_runtime.del_network_list(net, fake_rt())
    assert abc.sequence() == [
        ("a", "ADD"),
        ("b", "ADD"),
        ("c", "ADD"),
        ("c", "DEL"),
        ("b", "DEL"),
        ("a", "DEL"),
    ]


def test_failed_add_dels_the_chain_and_caches_nothing(
    abc: Fakes, fake_runtime: CNIRuntime, tmp_path: Path
) -> None:
    fail = {"code": 11, "msg": "try again"}
    net = net_of({"type": "a"}, {"type": "b", "fake": {"ADD": {"fail": fail}}}, {"type": "c"})
    with pytest.raises(CNIError) as err:
        fake_runtime.add_network_list(net, fake_rt())
    assert (err.value.plugin, err.value.code) == ("b", 11)
    assert abc.sequence() == [
        ("a", "ADD"),
        ("b", "ADD"),
        ("c", "DEL"),
        ("b", "DEL"),
        ("a", "DEL"),
    ]
    assert all("prevResult" not in c["stdin"] for c in abc.calls("DEL"))
    assert not cache_file(tmp_path).exists()


def test_cleanup_failures_are_noted_on_the_add_error(abc: Fakes, fake_runtime: CNIRuntime) -> None:
    net = net_of(
        {"type": "a", "fake": {"DEL": {"fail": {"code": 5, "msg": "disk on fire"}}}},
        {"type": "b", "fake": {"ADD": {"fail": {"code": 7, "msg": "bad"}}}},
    )
    with pytest.raises(CNIError) as err:
        fake_runtime.add_network_list(net, fake_rt())
    assert err.value.plugin == "b"
    assert any("disk on fire" in note for note in err.value.__notes__)


def test_cache_in_libcni_layout(abc: Fakes, fake_runtime: CNIRuntime, tmp_path: Path) -> None:
    net = net_of({"type": "a", "fake": {"ADD": {"ip": "10.0.0.2/24"}}}, version="0.4.0")
    rt = fake_rt(args=[("K8S_POD_NAME", "p")], capability_args={"mac": "02:00:00:00:00:01"})
    result = fake_runtime.add_network_list(net, rt)
    path = cache_file(tmp_path)
    entry = json.loads(path.read_text())
    assert entry == {
        "kind": "cniCacheV1",
        "containerId": "c0ffee",
        "config": base64.b64encode(net.config_bytes).decode(),
        "ifName": "eth0",
        "networkName": "fakenet",
        "netns": "/proc/self/ns/net",
        "cniArgs": [["K8S_POD_NAME", "p"]],
        "capabilityArgs": {"mac": "02:00:00:00:00:01"},
        "result": {
            "cniVersion": "0.4.0",
            "ips": [{"version": "4", "address": "10.0.0.2/24"}],
            "dns": {},
        },
    }
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert fake_runtime.get_cached_result(net, rt) == result
    fake_runtime.del_network_list(net, rt)
    assert not path.exists()
    assert fake_runtime.get_cached_result(net, rt) is None


def test_del_gets_the_cached_result(abc: Fakes, fake_runtime: CNIRuntime) -> None:
    net = net_of({"type": "a", "fake": {"ADD": {"ip": "10.0.0.2/24"}}}, {"type": "b"})
    fake_runtime.add_network_list(net, fake_rt())
    fake_runtime.del_network_list(net, fake_rt())
    fake_runtime.del_network_list(net, fake_rt())  # twice: no cache, still fine
    first, second = abc.calls("DEL")[:2], abc.calls("DEL")[2:]
    for call in first:
        assert call["stdin"]["prevResult"]["ips"] == [{"address": "10.0.0.2/24"}]
    assert all("prevResult" not in c["stdin"] for c in second)


def test_del_tolerates_gone_and_goes_on(
    abc: Fakes, fake_runtime: CNIRuntime, tmp_path: Path
) -> None:
    net = net_of(
        {"type": "a"},
        {"type": "b", "fake": {"DEL": {"fail": {"code": 999, "msg": "Link not found"}}}},
        {"type": "c", "fake": {"DEL": {"fail": {"code": 3, "msg": "unknown container"}}}},
    )
    fake_runtime.add_network_list(net, fake_rt())
    fake_runtime.del_network_list(net, fake_rt())
    assert [p for p, cmd in abc.sequence() if cmd == "DEL"] == ["c", "b", "a"]
    assert not cache_file(tmp_path).exists()


def test_del_collects_real_failures(abc: Fakes, fake_runtime: CNIRuntime, tmp_path: Path) -> None:
    net = net_of(
        {"type": "a", "fake": {"DEL": {"fail": {"code": 5, "msg": "io error"}}}},
        {"type": "b"},
        {"type": "c", "fake": {"DEL": {"fail": {"code": 100, "msg": "busy"}}}},
    )
    fake_runtime.add_network_list(net, fake_rt())
    with pytest.raises(CNIError) as err:
        fake_runtime.del_network_list(net, fake_rt())
    assert [p for p, cmd in abc.sequence() if cmd == "DEL"] == ["c", "b", "a"]
    assert err.value.plugin == "c" and err.value.code == 100
    assert "io error" in str(err.value)
    assert cache_file(tmp_path).exists()  # kept, so a retried DEL still has the result


def test_check_sends_cached_result(abc: Fakes, fake_runtime: CNIRuntime) -> None:
    net = net_of({"type": "a", "fake": {"ADD": {"ip": "10.0.0.2/24"}}}, {"type": "b"})
    fake_runtime.add_network_list(net, fake_rt())
    fake_runtime.check_network_list(net, fake_rt())
    checks = abc.calls("CHECK")
    assert [c["plugin"] for c in checks] == ["a", "b"]
    assert all(c["stdin"]["prevResult"]["ips"] == [{"address": "10.0.0.2/24"}] for c in checks)


def test_check_failure_raised(abc: Fakes, fake_runtime: CNIRuntime) -> None:
    net = net_of({"type": "a", "fake": {"CHECK": {"fail": {"code": 100, "msg": "eth0 gone"}}}})
    fake_runtime.add_network_list(net, fake_rt())
    with pytest.raises(CNIError, match="eth0 gone") as err:
        fake_runtime.check_network_list(net, fake_rt())
    assert err.value.command == "CHECK"


def test_check_skips(abc: Fakes, fake_runtime: CNIRuntime) -> None:
    disabled = net_of({"type": "a"}, disableCheck=True)
    fake_runtime.add_network_list(disabled, fake_rt())
    fake_runtime.check_network_list(disabled, fake_rt())
    assert abc.calls("CHECK") == []
    dhcp = net_of({"type": "a", "ipam": {"type": "dhcp"}}, {"type": "b"})
    fake_runtime.add_network_list(dhcp, fake_rt(ifname="net1"))
    fake_runtime.check_network_list(dhcp, fake_rt(ifname="net1"))
    assert [c["plugin"] for c in abc.calls("CHECK")] == ["b"]


def test_check_needs_040_and_a_cached_result(abc: Fakes, fake_runtime: CNIRuntime) -> None:
    with pytest.raises(CNIError, match=r"0\.4\.0 or later"):
        fake_runtime.check_network_list(net_of({"type": "a"}, version="0.3.1"), fake_rt())
    with pytest.raises(CNIError, match="no cached result"):
        fake_runtime.check_network_list(net_of({"type": "a"}), fake_rt())


def test_unreadable_cache_does_not_block_del(
    abc: Fakes, fake_runtime: CNIRuntime, tmp_path: Path
) -> None:
    net = net_of({"type": "a"})
    fake_runtime.add_network_list(net, fake_rt())
    cache_file(tmp_path).write_text("{broken")
    with pytest.raises(CNIError, match="unreadable result cache"):
        fake_runtime.get_cached_result(net, fake_rt())
    fake_runtime.del_network_list(net, fake_rt())
    assert not cache_file(tmp_path).exists()


def test_legacy_cache_file_is_read(abc: Fakes, fake_runtime: CNIRuntime, tmp_path: Path) -> None:
    net = net_of({"type": "a"})
    path = cache_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(
        json.dumps({"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.0.0.9/8"}]})
    )
    got = fake_runtime.get_cached_result(net, fake_rt())
    assert got is not None and got.cni_version == "1.0.0"
    assert str(got.ips[0].address) == "10.0.0.9/8"


# -- set_cached_result: what Multus does to the cache after moving default routes ------------


def test_set_cached_result_replaces_only_the_result(
    abc: Fakes, fake_runtime: CNIRuntime, tmp_path: Path
) -> None:
    net = net_of({"type": "a", "fake": {"ADD": {"ip": "10.0.0.2/24"}}}, version="0.4.0")
    rt = fake_rt(args=[("K8S_POD_NAME", "p")], capability_args={"mac": "02:00:00:00:00:01"})
    result = fake_runtime.add_network_list(net, rt)
    before = json.loads(cache_file(tmp_path).read_text())
    changed = Result.from_json(
        {
            "cniVersion": "1.0.0",  # stored in the list's version, as ADD stores it
            "ips": [{"address": "10.0.0.2/24"}],
            "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}],
        }
    )
    assert fake_runtime.set_cached_result(net, rt, changed) is True
    after = json.loads(cache_file(tmp_path).read_text())
    assert {k: v for k, v in after.items() if k != "result"} == {
        k: v for k, v in before.items() if k != "result"
    }
    assert after["result"] == {
        "cniVersion": "0.4.0",
        "ips": [{"version": "4", "address": "10.0.0.2/24"}],
        "routes": [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}],
        "dns": {},
    }
    assert cache_file(tmp_path).stat().st_mode & 0o777 == 0o600
    assert fake_runtime.get_cached_result(net, rt) == changed.convert("0.4.0") != result
    # CHECK and DEL now get what the caller set
    fake_runtime.check_network_list(net, rt)
    fake_runtime.del_network_list(net, rt)
    for call in abc.calls("CHECK") + abc.calls("DEL"):
        assert call["stdin"]["prevResult"]["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.0.0.1"}]
    assert not cache_file(tmp_path).exists()


def test_set_cached_result_without_an_entry_writes_nothing(
    abc: Fakes, fake_runtime: CNIRuntime, tmp_path: Path
) -> None:
    net = net_of({"type": "a"})
    result = Result.from_json({"cniVersion": "1.0.0", "ips": [{"address": "10.0.0.2/24"}]})
    assert fake_runtime.set_cached_result(net, fake_rt(), result) is False
    assert not cache_file(tmp_path).exists()
    fake_runtime.add_network_list(net, fake_rt())
    fake_runtime.del_network_list(net, fake_rt())
    assert fake_runtime.set_cached_result(net, fake_rt(), result) is False  # after DEL too
    assert not cache_file(tmp_path).exists()
    assert not list(cache_file(tmp_path).parent.iterdir())  # no temp files either


def test_set_cached_result_keeps_the_legacy_layout(
    abc: Fakes, fake_runtime: CNIRuntime, tmp_path: Path
) -> None:
    net = net_of({"type": "a"}, version="0.4.0")
    path = cache_file(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"cniVersion": "0.4.0", "dns": {}}))
    new = Result.from_json(
        {"cniVersion": "0.4.0", "ips": [{"version": "4", "address": "10.1.0.9/16"}]}
    )
    assert fake_runtime.set_cached_result(net, fake_rt(), new) is True
    assert json.loads(path.read_text()) == new.to_json()


def test_set_cached_result_errors(abc: Fakes, fake_runtime: CNIRuntime, tmp_path: Path) -> None:
    net = net_of({"type": "a"})
    fake_runtime.add_network_list(net, fake_rt())
    cache_file(tmp_path).write_text("{broken")
    result = Result(cni_version="1.0.0")
    with pytest.raises(CNIError, match="cannot update the result cache") as err:
        fake_runtime.set_cached_result(net, fake_rt(), result)
    assert err.value.network == "fakenet"
    assert cache_file(tmp_path).read_text() == "{broken"
    with pytest.raises(ConfigError):
        fake_runtime.set_cached_result(net, fake_rt(ifname="a/b"), result)
