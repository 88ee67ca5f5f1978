"""The delegate list: order, ifnames, NAD resolution, capability args, cni-args, default-route."""

from __future__ import annotations

import json
from typing import Any

import pytest

from multihome.multus import (
    DEFAULT_NETWORK_ANNOTATION,
    NETWORKS_ANNOTATION,
    Delegate,
    DelegateError,
    build_delegates,
    cni_args,
)

CANAL = {
    "name": "k8s-pod-network",
    "cniVersion": "0.3.1",
    "plugins": [{"type": "calico"}, {"type": "portmap", "capabilities": {"portMappings": True}}],
}

NADS: dict[tuple[str, str], str] = {
    ("pods", "macvlan-a"): json.dumps(
        {"cniVersion": "0.3.1", "type": "macvlan", "master": "ens224", "ipam": {"type": "dhcp"}}
    ),
    ("pods", "macvlan-b"): json.dumps(
        {"cniVersion": "0.3.1", "name": "net-b", "type": "macvlan", "master": "ens256"}
    ),
    ("other", "shared"): json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": "shared-net",
            "plugins": [
                {"type": "bridge", "args": {"cni": {"keep": 1, "over": "nad"}}},
                {"type": "tuning"},
            ],
        }
    ),
    ("kube-system", "alt-default"): json.dumps(
        {"cniVersion": "0.3.1", "type": "ptp", "ipam": {"type": "host-local"}}
    ),
    ("pods", "bad-json"): "{not json",
    ("pods", "no-type"): json.dumps({"cniVersion": "0.3.1"}),
    ("pods", "bad-plugins"): json.dumps({"cniVersion": "0.3.1", "plugins": [{"x": 1}]}),
    ("pods", "bad-args"): json.dumps({"type": "macvlan", "args": "nope"}),
    ("pods", "list"): "[1]",
}


def lookup(namespace: str, name: str) -> str | None:
    return NADS.get((namespace, name))


def build(networks: str | None = None, **annotations: str) -> list[Delegate]:
    ann = dict(annotations)
    if networks is not None:
        ann[NETWORKS_ANNOTATION] = networks
    return build_delegates("pods", "web", ann, CANAL, lookup)


def test_no_annotation_is_just_the_cluster_network() -> None:
    (eth0,) = build()
    assert eth0.network == "k8s-pod-network"
    assert eth0.ifname == "eth0"
    assert eth0.is_default
    assert eth0.config == CANAL and eth0.config is not CANAL
    assert eth0.capability_args == {}
    assert eth0.gateways is None and not eth0.changes_default_route


def test_cluster_network_as_json_text() -> None:
    (eth0,) = build_delegates("pods", "web", {}, json.dumps(CANAL), lookup)
    assert eth0.config_name == "k8s-pod-network"


def test_order_names_and_namespaces() -> None:
    got = build("macvlan-a, other/shared@lan0, macvlan-b, macvlan-a")
    assert [(d.network, d.ifname, d.is_default) for d in got] == [
        ("k8s-pod-network", "eth0", True),
        ("pods/macvlan-a", "net1", False),
        ("other/shared", "lan0", False),
        ("pods/macvlan-b", "net3", False),  # by position, not by count of generated names
        ("pods/macvlan-a", "net4", False),
    ]
    # a NAD config without a name takes the NAD's name; with one it keeps it
    assert [d.config_name for d in got] == [
        "k8s-pod-network",
        "macvlan-a",
        "shared-net",
        "net-b",
        "macvlan-a",
    ]


def test_capability_args_go_to_extra_delegates_only() -> None:
    value = json.dumps(
        [
            {
                "name": "macvlan-a",
                "ips": ["10.1.1.5/24"],
                "mac": "02:00:00:00:00:05",
                "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
                "bandwidth": {"ingressRate": 1000, "egressRate": 2000},
                "infiniband-guid": "02:00:00:00:00:00:00:05",
            },
            {"name": "macvlan-b"},
        ]
    )
    eth0, net1, net2 = build(value)
    assert eth0.capability_args == {}
    assert net1.capability_args == {
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        "bandwidth": {"ingressRate": 1000, "ingressBurst": 0, "egressRate": 2000, "egressBurst": 0},
        "ips": ["10.1.1.5/24"],
        "mac": "02:00:00:00:00:05",
        "infinibandGUID": "02:00:00:00:00:00:00:05",
    }
    assert net2.capability_args == {}
    # Multus DelegateAdd also puts them in CNI_ARGS for ADD: MAC first, then IP (comma-joined)
    assert net1.add_args == (("MAC", "02:00:00:00:00:05"), ("IP", "10.1.1.5/24"))
    assert net2.add_args == () and eth0.add_args == ()
    args = cni_args("pods", "web", "uid-1", "abc123", net1, add=True)
    assert args[-2:] == [("MAC", "02:00:00:00:00:05"), ("IP", "10.1.1.5/24")]
    assert cni_args("pods", "web", "uid-1", "abc123", net1) == args[:-2]  # not for DEL


def test_ip_args_follow_go_nil_versus_empty() -> None:
    two, empty = (
        build(json.dumps([{"name": "macvlan-a", "ips": ips}]))[1]
        for ips in (["10.0.0.1", "fd00::1/64"], [])
    )
    assert two.add_args == (("IP", "10.0.0.1,fd00::1/64"),)
    assert two.capability_args == {"ips": ["10.0.0.1", "fd00::1/64"]}
    assert empty.add_args == (("IP", ""),)  # non-nil empty slice: "IP=" (no capability arg)
    assert empty.capability_args == {}
    (nothing,) = build(json.dumps([{"name": "macvlan-a", "ips": None}]))[1:]
    assert nothing.add_args == ()


def test_device_id_and_null_port_mappings_reach_runtime_config() -> None:
    value = json.dumps([{"name": "macvlan-a", "deviceID": "0000:00:01.0", "portMappings": [None]}])
    net1 = build(value)[1]
    assert net1.capability_args == {"deviceID": "0000:00:01.0", "portMappings": [None]}


def test_cni_args_merge_into_conf_and_every_conflist_plugin() -> None:
    value = json.dumps(
        [
            {"name": "macvlan-a", "cni-args": {"a": "1"}},
            {"name": "shared", "namespace": "other", "cni-args": {"over": "annotation", "n": 2}},
            {"name": "macvlan-b", "cni-args": {}},
        ]
    )
    _, a, shared, b = build(value)
    assert a.config["args"] == {"cni": {"a": "1"}}
    plugins = shared.config["plugins"]
    assert plugins[0]["args"]["cni"] == {"keep": 1, "over": "annotation", "n": 2}
    assert plugins[1]["args"]["cni"] == {"over": "annotation", "n": 2}
    assert b.config["args"] == {"cni": {}}  # present but empty: Multus still injects it
    # the NAD's stored config is untouched for the next pod
    assert json.loads(NADS[("other", "shared")])["plugins"][0]["args"]["cni"]["over"] == "nad"


def test_default_network_annotation_replaces_cluster_network() -> None:
    eth0, net1 = build("macvlan-a", **{DEFAULT_NETWORK_ANNOTATION: "alt-default"})
    assert (eth0.network, eth0.ifname, eth0.is_default) == ("kube-system/alt-default", "eth0", True)
    assert eth0.config["type"] == "ptp" and eth0.config_name == "alt-default"
    assert net1.network == "pods/macvlan-a"


def test_default_network_gets_no_capability_args_but_keeps_cni_args() -> None:
    value = json.dumps(
        [
            {
                "name": "alt-default",
                "ips": ["10.0.0.5/24"],
                "mac": "02:00:00:00:00:01",
                "cni-args": {"x": "y"},
            }
        ]
    )
    (eth0,) = build(**{DEFAULT_NETWORK_ANNOTATION: value})
    assert eth0.capability_args == {}
    assert eth0.config["args"] == {"cni": {"x": "y"}}
    assert eth0.add_args == (("MAC", "02:00:00:00:00:01"), ("IP", "10.0.0.5/24"))


def test_default_network_annotation_must_name_one_network() -> None:
    with pytest.raises(DelegateError, match="exactly one network, got 2"):
        build(**{DEFAULT_NETWORK_ANNOTATION: "alt-default, alt-default"})
    with pytest.raises(DelegateError, match=r"v1\.multus-cni\.io/default-network: element 1"):
        build(**{DEFAULT_NETWORK_ANNOTATION: "Bad"})


def test_cni_args_helper() -> None:
    assert cni_args("pods", "web", "uid-1", "abc123") == [
        ("IgnoreUnknown", "true"),
        ("K8S_POD_NAMESPACE", "pods"),
        ("K8S_POD_NAME", "web"),
        ("K8S_POD_INFRA_CONTAINER_ID", "abc123"),
        ("K8S_POD_UID", "uid-1"),
    ]


# -- errors ---------------------------------------------------------------------------------

ERRORS: list[tuple[str, str, str | None]] = [
    (
        "missing",
        "cannot find a network-attachment-definition (missing) in namespace (pods): "
        'network-attachment-definitions.k8s.cni.cncf.io "missing" not found',
        "pods/missing",
    ),
    ("nowhere/macvlan-a", "in namespace (nowhere)", "nowhere/macvlan-a"),
    # blank items parse (Multus) and fail on the lookup, in client-go's words
    (
        "macvlan-a,,macvlan-b",
        "cannot find a network-attachment-definition () in namespace (pods): "
        "resource name may not be empty",
        "pods/",
    ),
    (" ", "resource name may not be empty", "pods/"),
    ('[{"name":"Macvlan-A"}]', '"Macvlan-A" not found', "pods/Macvlan-A"),
    (
        '[{"name":"a/b"}]',
        "in namespace (pods): invalid resource name \"a/b\": [may not contain '/']",
        "pods/a/b",
    ),
    ('[{"name":"a","namespace":".."}]', "invalid namespace \"..\": [may not be '..']", "../a"),
    ("bad-json", "not valid JSON", None),
    ("no-type", "neither 'type' nor 'plugins'", None),
    ("bad-plugins", "plugins[0] must be an object with a 'type'", None),
    ("list", "must be a JSON object", None),
    ('[{"name":"bad-args","cni-args":{"a":1}}]', "'args' in the CNI config is not an object", None),
    (
        "macvlan-a@eth0",
        "interface 'eth0' is already used by network k8s-pod-network",
        "pods/macvlan-a",
    ),
    (
        "macvlan-a@net2, macvlan-b",
        "network pods/macvlan-b: interface 'net2' is already used",
        "pods/macvlan-b",
    ),
    (
        "macvlan-a@x, macvlan-b@x",
        "interface 'x' is already used by network pods/macvlan-a",
        "pods/macvlan-b",
    ),
    ("Bad_Name", "k8s.v1.cni.cncf.io/networks: element 1", None),
    # default-route [""] is Go's empty IP, counted as IPv6 by CheckGatewayConfig
    (
        '[{"name":"macvlan-a","default-route":[""]},{"name":"macvlan-b","default-route":["fd00::1"]}]',
        "multus does not support ECMP for default-route",
        None,
    ),
]


@pytest.mark.parametrize(("networks", "fragment", "network"), ERRORS)
def test_errors_name_pod_and_network(networks: str, fragment: str, network: str | None) -> None:
    with pytest.raises(DelegateError) as info:
        build(networks)
    assert str(info.value).startswith("pod pods/web: ")
    assert fragment in str(info.value)
    assert info.value.pod == "pods/web"
    if network is not None:
        assert info.value.network == network
        assert f"network {network}" in str(info.value)


def test_lookup_exceptions_become_delegate_errors() -> None:
    def broken(namespace: str, name: str) -> str | None:
        raise KeyError(f"{namespace}/{name} vanished")

    with pytest.raises(DelegateError, match="pods/x vanished") as info:
        build_delegates("pods", "web", {NETWORKS_ANNOTATION: "x"}, CANAL, broken)
    assert info.value.network == "pods/x"


def test_cluster_network_without_name() -> None:
    with pytest.raises(DelegateError, match="the cluster network: the CNI config has no name"):
        build_delegates("pods", "web", {}, {"type": "ptp"}, lookup)


# -- default-route --------------------------------------------------------------------------


def test_default_route_flags_every_other_delegate() -> None:
    value = json.dumps(
        [{"name": "macvlan-a"}, {"name": "macvlan-b", "default-route": ["10.6.0.1"]}]
    )
    eth0, net1, net2 = build(value)
    assert net2.gateways == ("10.6.0.1",)
    assert (net2.filter_v4_gateway, net2.filter_v6_gateway) == (False, True)
    for d in (eth0, net1):
        assert d.gateways is None
        assert (d.filter_v4_gateway, d.filter_v6_gateway) == (True, True)
        assert d.changes_default_route


def test_no_default_route_leaves_routes_alone() -> None:
    for d in build("macvlan-a, macvlan-b"):
        assert not d.changes_default_route


def test_dual_stack_default_routes_on_two_interfaces() -> None:
    value = json.dumps(
        [
            {"name": "macvlan-a", "default-route": ["10.6.0.1"]},
            {"name": "macvlan-b", "default-route": ["fd00::1"]},
        ]
    )
    eth0, a, b = build(value)
    assert (a.filter_v4_gateway, a.filter_v6_gateway) == (False, True)
    assert (b.filter_v4_gateway, b.filter_v6_gateway) == (True, False)
    assert (eth0.filter_v4_gateway, eth0.filter_v6_gateway) == (True, True)


def test_empty_default_route_list_filters_everywhere() -> None:
    # Multus: a present (even empty) default-route switches the gateway filter on.
    for d in build('[{"name": "macvlan-a", "default-route": []}]'):
        assert (d.filter_v4_gateway, d.filter_v6_gateway) == (True, True)


def _dr(name: str, *gateways: str) -> dict[str, Any]:
    return {"name": name, "default-route": list(gateways)}


@pytest.mark.parametrize(
    "value",
    [
        [_dr("macvlan-a", "10.6.0.1"), _dr("macvlan-b", "10.7.0.1")],
        [_dr("macvlan-a", "10.6.0.1", "10.6.0.2")],
        [_dr("macvlan-a", "fd00::1"), _dr("macvlan-b", "fd01::1")],
    ],
)
def test_ecmp_is_rejected(value: list[dict[str, Any]]) -> None:
    with pytest.raises(DelegateError, match="does not support ECMP") as info:
        build(json.dumps(value))
    assert "pods/macvlan-a" in str(info.value)
