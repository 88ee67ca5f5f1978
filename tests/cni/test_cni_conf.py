"""Loading and validating CNI configs: required fields, ID rules, promotion, pass-through."""

from __future__ import annotations

import json
from typing import Any

import pytest

from multihome.cni import ConfigError, NetworkConfigList, RuntimeConf, load_network_config
from multihome.cni.names import validate_container_id, validate_ifname, validate_network_name

LIST: dict[str, Any] = {
    "cniVersion": "1.0.0",
    "name": "vlan50",
    "plugins": [
        {"type": "macvlan", "master": "ens224", "mode": "bridge", "ipam": {"type": "dhcp"}},
        {"type": "tuning", "capabilities": {"mac": True, "ips": False}, "x-custom": [1, 2]},
    ],
}


def test_conflist_loads_from_str_bytes_and_dict() -> None:
    for data in (json.dumps(LIST), json.dumps(LIST).encode(), LIST):
        net = load_network_config(data)
        assert isinstance(net, NetworkConfigList)
        assert net.name == "vlan50"
        assert net.cni_version == "1.0.0"
        assert [p.type for p in net.plugins] == ["macvlan", "tuning"]
        assert net.plugins[0].ipam_type == "dhcp"
        assert net.plugins[1].ipam_type is None
        assert net.plugins[1].capabilities == {"mac": True}
        assert net.disable_check is False


def test_unknown_keys_pass_through_untouched() -> None:
    net = load_network_config(json.dumps(LIST))
    assert net.plugins[1].raw["x-custom"] == [1, 2]
    assert net.plugins[0].raw == LIST["plugins"][0]
    assert json.loads(net.config_bytes) == LIST


def test_bytes_are_kept_as_given_for_the_cache() -> None:
    text = json.dumps(LIST, indent=3).encode()
    assert load_network_config(text).config_bytes == text


def test_dict_input_is_copied() -> None:
    data = json.loads(json.dumps(LIST))
    net = load_network_config(data)
    data["plugins"][0]["master"] = "changed"
    assert net.plugins[0].raw["master"] == "ens224"


def test_single_conf_is_promoted_like_libcni() -> None:
    conf = {"cniVersion": "0.3.1", "name": "net", "type": "bridge", "bridge": "br0"}
    net = load_network_config(conf)
    assert net.name == "net" and net.cni_version == "0.3.1"
    assert len(net.plugins) == 1 and net.plugins[0].raw == conf
    assert json.loads(net.config_bytes) == {"name": "net", "cniVersion": "0.3.1", "plugins": [conf]}


@pytest.mark.parametrize("flag,expected", [(True, True), ("true", True), ("False", False)])
def test_disable_check(flag: Any, expected: bool) -> None:
    assert load_network_config({**LIST, "disableCheck": flag}).disable_check is expected


BAD: list[tuple[Any, str]] = [
    ("not json", "config: is not valid JSON"),
    ("[1]", "config: must be a JSON object"),
    ({"cniVersion": "1.0.0", "type": "x"}, "name: missing"),
    ({"cniVersion": "1.0.0", "name": "n"}, "type: missing"),
    ({"cniVersion": "0.2.0", "name": "n", "type": "x"}, "cniVersion: '0.2.0' is not supported"),
    ({"cniVersion": "1.2.0", "name": "n", "type": "x"}, "cniVersion: '1.2.0' is not supported"),
    ({"cniVersion": 1, "name": "n", "type": "x"}, "cniVersion: must be a string"),
    ({"cniVersion": "1.0.0", "name": "bad name", "type": "x"}, "name: 'bad name' is invalid"),
    ({"cniVersion": "1.0.0", "name": "-n", "type": "x"}, "name: '-n' is invalid"),
    ({"cniVersion": "1.0.0", "name": "n", "type": "../x"}, "type: '../x' is invalid"),
    ({"cniVersion": "1.0.0", "name": "n", "type": "a/b"}, "type: 'a/b' is invalid"),
    ({"cniVersion": "1.0.0", "name": "n", "type": "x", "ipam": "dhcp"}, "ipam: must be an object"),
    (
        {"cniVersion": "1.0.0", "name": "n", "type": "x", "ipam": {"type": "/bin/sh"}},
        "ipam.type: '/bin/sh' is invalid",
    ),
    (
        {"cniVersion": "1.0.0", "name": "n", "type": "x", "capabilities": {"mac": "yes"}},
        "capabilities.mac: must be true or false",
    ),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": []}, "plugins: must hold at least one"),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": {}}, "plugins: must be a list"),
    ({"cniVersion": "1.0.0", "name": "n", "plugins": [1]}, "plugins[0]: must be a JSON object"),
    (
        {"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "a"}, {"x": 1}]},
        "plugins[1].type: missing",
    ),
    (
        {"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "a", "ipam": {"type": 3}}]},
        "plugins[0].ipam.type: must be a string",
    ),
    ({"cniVersion": "1.0.0", "plugins": [{"type": "a"}]}, "name: missing"),
    (
        {"cniVersion": "1.0.0", "name": "n", "plugins": [{"type": "a"}], "disableCheck": 1},
        "disableCheck: must be true or false",
    ),
]


@pytest.mark.parametrize("data,message", BAD, ids=[m for _, m in BAD])
def test_invalid_configs_name_the_field(data: Any, message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_network_config(data)
    assert message in str(err.value)
    assert isinstance(err.value, ValueError)


@pytest.mark.parametrize("version", ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"])
def test_supported_versions(version: str) -> None:
    assert load_network_config({**LIST, "cniVersion": version}).cni_version == version


@pytest.mark.parametrize(
    "name,ok",
    [
        ("a", True),
        ("net-1_x.y", True),
        ("0abc", True),
        ("", False),
        (".hidden", False),
        ("_x", False),
        ("a b", False),
        ("a/b", False),
        ("a:b", False),
        ("é", False),
    ],
)
def test_id_rule(name: str, ok: bool) -> None:
    for check in (validate_network_name, validate_container_id):
        if ok:
            assert check(name) == name
        else:
            with pytest.raises(ConfigError):
                check(name)


@pytest.mark.parametrize(
    "name,ok",
    [
        ("eth0", True),
        ("net1", True),
        ("a" * 15, True),
        ("a" * 16, False),
        ("", False),
        (".", False),
        ("..", False),
        ("a/b", False),
        ("a:b", False),
        ("a b", False),
        ("a\tb", False),
    ],
)
def test_ifname_rule(name: str, ok: bool) -> None:
    if ok:
        assert validate_ifname(name) == name
    else:
        with pytest.raises(ConfigError, match="ifname"):
            validate_ifname(name)


def test_runtime_conf_defaults_are_not_shared() -> None:
    a = RuntimeConf("c", "/n", "eth0")
    b = RuntimeConf("c", "/n", "eth0")
    a.args.append(("K", "V"))
    a.capability_args["mac"] = "x"
    assert b.args == [] and b.capability_args == {}


def test_missing_cni_version_is_libcnis_empty_version() -> None:
    conf = load_network_config({"name": "n", "type": "macvlan"})
    assert conf.cni_version == "" and conf.raw["cniVersion"] == ""
    assert load_network_config({"name": "n", "plugins": [{"type": "a"}]}).cni_version == ""
    assert load_network_config({"name": "n", "cniVersion": None, "type": "a"}).cni_version == ""
