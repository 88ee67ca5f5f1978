"""Table tests and a fuzz test for the ``k8s.v1.cni.cncf.io/networks`` parser."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multihome.multus import NetworkSelectionElement, SelectionError, parse_network_selection

E = NetworkSelectionElement


# -- empty ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "", " ", "\t\n ", "\u3000"])
def test_empty_values_select_nothing(value: str | None) -> None:
    assert parse_network_selection(value, "default") == []


def test_json_empty_list_and_null_select_nothing() -> None:
    assert parse_network_selection("[]", "default") == []
    assert parse_network_selection(" [ ] ", "default") == []


# -- text form ------------------------------------------------------------------------------

TEXT_OK: list[tuple[str, list[tuple[str, str, str | None]]]] = [
    ("macvlan-conf", [("macvlan-conf", "pods", None)]),
    ("other/macvlan-conf", [("macvlan-conf", "other", None)]),
    ("macvlan-conf@lan0", [("macvlan-conf", "pods", "lan0")]),
    ("other/macvlan-conf@lan0", [("macvlan-conf", "other", "lan0")]),
    (
        " a , other/b@net7,c ",
        [("a", "pods", None), ("b", "other", "net7"), ("c", "pods", None)],
    ),
    ("a,a", [("a", "pods", None), ("a", "pods", None)]),  # same network twice: two attachments
    (" other / b @ if0 ", [("b", "other", "if0")]),  # each part trimmed, as Multus does
    ("/b", [("b", "pods", None)]),  # empty namespace: the pod's (Multus)
    ("b@", [("b", "pods", None)]),  # empty interface: a generated one (Multus)
    ("a" * 63, [("a" * 63, "pods", None)]),
    ("x-1/0abc-9@eth_1.5", [("0abc-9", "x-1", "eth_1.5")]),
    ("null", [("null", "pods", None)]),  # no [ { " -> text form, a network called null
]


@pytest.mark.parametrize(("value", "expected"), TEXT_OK)
def test_text_form(value: str, expected: list[tuple[str, str, str | None]]) -> None:
    got = parse_network_selection(value, "pods")
    assert [(e.name, e.namespace, e.interface) for e in got] == expected
    for e in got:
        assert e.ips == [] and e.mac is None and e.default_route is None
        assert e.cni_args is None and e.port_mappings == [] and e.bandwidth is None


TEXT_BAD: list[tuple[str, int, str, str]] = [
    # value, element, field, a fragment of the message
    ("a/b/c", 1, "name", "more than one '/'"),
    ("a@b@c", 1, "interface", "more than one '@'"),
    ("Macvlan", 1, "name", "DNS-1123"),
    ("mac_vlan", 1, "name", "DNS-1123"),
    ("-a", 1, "name", "DNS-1123"),
    ("a-", 1, "name", "DNS-1123"),
    ("a.b", 1, "name", "DNS-1123"),
    ("a" * 64, 1, "name", "at most 63"),
    ("ok,Bad/x", 2, "namespace", "'Bad'"),
    ("ns/", 1, "name", "missing"),
    ("a,,b", 2, "name", "missing"),
    ("a,", 2, "name", "missing"),
    ("a@0123456789abcdef", 1, "interface", "at most 15 bytes"),
    ("a@net 1", 1, "interface", "whitespace"),
    ("a@.", 1, "interface", "'.' or '..'"),
    ("a@..", 1, "interface", "'.' or '..'"),
    ("a@x:1", 1, "interface", "':'"),
    ("a@ééééééééé", 1, "interface", "bytes"),
]


@pytest.mark.parametrize(("value", "element", "field", "fragment"), TEXT_BAD)
def test_text_form_errors(value: str, element: int, field: str, fragment: str) -> None:
    with pytest.raises(SelectionError) as info:
        parse_network_selection(value, "pods")
    err = info.value
    assert err.element == element
    assert err.field == field
    assert fragment in str(err)
    assert f"element {element}" in str(err)
    assert "k8s.v1.cni.cncf.io/networks" in str(err)


def test_bad_pod_namespace_is_reported_when_used() -> None:
    with pytest.raises(SelectionError, match="pod namespace 'Bad_NS'"):
        parse_network_selection("a", "Bad_NS")
    assert parse_network_selection("ns/a", "Bad_NS")[0].namespace == "ns"


# -- JSON form ------------------------------------------------------------------------------


def _one(obj: dict[str, Any], ns: str = "pods") -> NetworkSelectionElement:
    got = parse_network_selection(json.dumps([obj]), ns)
    assert len(got) == 1
    return got[0]


def test_json_full_element() -> None:
    e = _one(
        {
            "name": "macvlan-conf",
            "namespace": "other",
            "interface": "lan0",
            "ips": ["10.1.1.5/24", "fd00::5"],
            "mac": "c2:b0:57:49:47:f1",
            "default-route": ["10.1.1.1"],
            "cni-args": {"foo": "bar", "n": [1, {"x": None}]},
            "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
            "bandwidth": {"ingressRate": 1000, "egressRate": 2000},
            "infiniband-guid": "c2:b0:57:49:47:f1:00:01",
        }
    )
    assert e == E(
        name="macvlan-conf",
        namespace="other",
        interface="lan0",
        ips=["10.1.1.5/24", "fd00::5"],
        mac="c2:b0:57:49:47:f1",
        default_route=["10.1.1.1"],
        cni_args={"foo": "bar", "n": [1, {"x": None}]},
        port_mappings=[{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        bandwidth={"ingressRate": 1000, "ingressBurst": 0, "egressRate": 2000, "egressBurst": 0},
        infiniband_guid="c2:b0:57:49:47:f1:00:01",
    )
    assert e.qualified_name == "other/macvlan-conf"
    assert parse_network_selection(json.dumps([e.to_json()]), "x") == [e]


JSON_OK: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({"name": "a"}, {"namespace": "pods"}),
    ({"name": "a", "namespace": ""}, {"namespace": "pods"}),
    ({"name": "a", "unknown": {"deep": [1, 2]}, "x": 1}, {}),  # unknown keys ignored
    ({"NAME": "a", "Namespace": "o"}, {"name": "a", "namespace": "o"}),  # Go: case-insensitive
    ({"name": "a", "interfaceRequest": "old0"}, {"interface": "old0"}),  # pre-3.2 key
    ({"name": "a", "interface": "new0", "interfaceRequest": "old0"}, {"interface": "new0"}),
    ({"name": "a", "mac": None, "ips": None, "interface": None}, {}),  # null = unset
    ({"name": "a", "mac": "", "interface": ""}, {"mac": None, "interface": None}),
    ({"name": "a", "ips": []}, {"ips": []}),
    ({"name": "a", "default-route": None}, {"default_route": None}),
    ({"name": "a", "default-route": []}, {"default_route": []}),  # present but empty
    ({"name": "a", "cni-args": {}}, {"cni_args": {}}),
    ({"name": "a", "cni-args": None}, {"cni_args": None}),
    ({"name": "a", "ips": ["10.0.0.1", "10.0.0.2/8", "::1", "fe80::1/64"]}, {}),
    ({"name": "a", "mac": "00-11-22-33-44-55"}, {}),
    ({"name": "a", "mac": "0011.2233.4455"}, {}),
    ({"name": "a", "mac": "00:11:22:33:44:55:66:77"}, {}),
    ({"name": "a", "default-route": ["10.0.0.1", "fd00::1"]}, {}),
    ({"name": "a", "portMappings": [{"containerPort": 80, "hostIP": "1.2.3.4"}]}, {}),
    ({"name": "a", "portMappings": None}, {"port_mappings": []}),
    ({"name": "a", "bandwidth": None}, {"bandwidth": None}),
    ({"name": "a", "deviceID": "0000:00:01.0"}, {}),
]


@pytest.mark.parametrize(("obj", "expect"), JSON_OK)
def test_json_form(obj: dict[str, Any], expect: dict[str, Any]) -> None:
    e = _one(obj)
    for key, want in expect.items():
        assert getattr(e, key) == want, key


def test_json_duplicate_keys_last_wins_like_go() -> None:
    got = parse_network_selection('[{"name":"a","NAME":"b","name":"c"}]', "pods")
    assert got[0].name == "c"
    got = parse_network_selection('[{"name":"a","NAME":"b"}]', "pods")
    assert got[0].name == "b"


def test_json_port_mapping_shape() -> None:
    e = _one({"name": "a", "portMappings": [{"HOSTPORT": 1, "containerPort": 2, "x": 3}]})
    assert e.port_mappings == [{"hostPort": 1, "containerPort": 2}]


def test_json_list_keeps_order_and_duplicates() -> None:
    got = parse_network_selection('[{"name":"b"},{"name":"a"},{"name":"b"}]', "pods")
    assert [e.name for e in got] == ["b", "a", "b"]


def test_value_with_quote_is_json() -> None:
    with pytest.raises(SelectionError, match="not valid JSON"):
        parse_network_selection('a"b', "pods")
    with pytest.raises(SelectionError, match="not valid JSON"):
        parse_network_selection("a,{b}", "pods")


JSON_BAD: list[tuple[str, int | None, str | None, str]] = [
    # raw value, element, field, a fragment of the message
    ("[", None, None, "not valid JSON"),
    ('[{"name":"a"}] x', None, None, "not valid JSON"),
    ('[{"name":"a","ips":[NaN]}]', None, None, "not valid JSON"),
    ('[{"name":"a","x":Infinity}]', None, None, "not valid JSON"),
    ('{"name":"a"}', None, None, "must be a list of objects, got object"),
    ('"a"', None, None, "got string"),
    ("[1]", 1, None, "element 1 must be a JSON object, got number"),
    ('[{"name":"a"},null]', 2, None, "got null"),
    ('[{"name":"a"},"b"]', 2, None, "got string"),
    ("[{}]", 1, "name", "missing"),
    ('[{"name":null}]', 1, "name", "missing"),
    ('[{"name":1}]', 1, "name", "must be a string, got number"),
    ('[{"name":true}]', 1, "name", "got bool"),
    ('[{"name":["a"]}]', 1, "name", "got array"),
    ('[{"name":"A"}]', 1, "name", "DNS-1123"),
    ('[{"name":"a.b"}]', 1, "name", "DNS-1123"),
    ('[{"name":"a","namespace":"Kube_System"}]', 1, "namespace", "'Kube_System'"),
    ('[{"name":"a","namespace":5}]', 1, "namespace", "got number"),
    ('[{"name":"a","interface":"0123456789abcdef"}]', 1, "interface", "15 bytes"),
    ('[{"name":"a","interface":"a/b"}]', 1, "interface", "'/'"),
    ('[{"name":"a","interface":"a b"}]', 1, "interface", "whitespace"),
    ('[{"name":"a","interface":".."}]', 1, "interface", "'..'"),
    ('[{"name":"a","interfaceRequest":"a/b"}]', 1, "interface", "'/'"),
    ('[{"name":"a","ips":"10.0.0.1"}]', 1, "ips", "list of strings, got string"),
    ('[{"name":"a","ips":[1]}]', 1, "ips", "got number"),
    ('[{"name":"a","ips":[null]}]', 1, "ips", "null"),
    ('[{"name":"a","ips":["10.0.0.256"]}]', 1, "ips entry", "'10.0.0.256'"),
    ('[{"name":"a","ips":["010.0.0.1"]}]', 1, "ips entry", "not a valid IP"),
    ('[{"name":"a","ips":["10.0.0.1/33"]}]', 1, "ips entry", "prefix length must be 0 to 32"),
    ('[{"name":"a","ips":["fd00::1/129"]}]', 1, "ips entry", "0 to 128"),
    ('[{"name":"a","ips":["10.0.0.1/"]}]', 1, "ips entry", "CIDR"),
    ('[{"name":"a","ips":["10.0.0.1/24/1"]}]', 1, "ips entry", "CIDR"),
    ('[{"name":"a","ips":["10.0.0.1/255.0.0.0"]}]', 1, "ips entry", "CIDR"),
    ('[{"name":"a","ips":["fe80::1%eth0"]}]', 1, "ips entry", "not a valid IP"),
    ('[{"name":"a","ips":["x/24"]}]', 1, "ips entry", "bad address"),
    ('[{"name":"a","ips":[""]}]', 1, "ips entry", "''"),
    ('[{"name":"a","mac":"zz:zz:zz:zz:zz:zz"}]', 1, "mac", "not a valid MAC"),
    ('[{"name":"a","mac":"00:11:22:33:44"}]', 1, "mac", "not a valid MAC"),
    ('[{"name":"a","mac":"00:11:22:33:44:55:66"}]', 1, "mac", "not a valid MAC"),
    ('[{"name":"a","mac":"00:11-22:33:44:55"}]', 1, "mac", "not a valid MAC"),
    ('[{"name":"a","mac":"001122334455"}]', 1, "mac", "not a valid MAC"),
    ('[{"name":"a","mac":1}]', 1, "mac", "got number"),
    ('[{"name":"a","infiniband-guid":"nope-nope-nope"}]', 1, "infiniband-guid", "MAC"),
    ('[{"name":"a","default-route":"10.0.0.1"}]', 1, "default-route", "list of strings"),
    ('[{"name":"a","default-route":["10.0.0.0/24"]}]', 1, "default-route entry", "not a valid IP"),
    ('[{"name":"a","default-route":[""]}]', 1, "default-route entry", "''"),
    ('[{"name":"a","default-route":[null]}]', 1, "default-route", "null"),
    ('[{"name":"a","cni-args":[1]}]', 1, "cni-args", "an object, got array"),
    ('[{"name":"a","cni-args":"x=y"}]', 1, "cni-args", "got string"),
    ('[{"name":"a","portMappings":{}}]', 1, "portMappings", "list of objects"),
    ('[{"name":"a","portMappings":[null]}]', 1, "portMappings", "got null"),
    ('[{"name":"a","portMappings":[{"hostPort":"80"}]}]', 1, "portMappings.hostPort", "integer"),
    ('[{"name":"a","portMappings":[{"hostPort":80.5}]}]', 1, "portMappings.hostPort", "integer"),
    ('[{"name":"a","portMappings":[{"hostPort":1e3}]}]', 1, "portMappings.hostPort", "integer"),
    ('[{"name":"a","portMappings":[{"protocol":6}]}]', 1, "portMappings.protocol", "string"),
    ('[{"name":"a","bandwidth":[]}]', 1, "bandwidth", "an object"),
    ('[{"name":"a","bandwidth":{"egressRate":true}}]', 1, "bandwidth.egressRate", "integer"),
    (
        '[{"name":"a","bandwidth":{"egressRate":99999999999999999999}}]',
        1,
        "bandwidth.egressRate",
        "64 bits",
    ),
    ('[{"name":"a","deviceID":7}]', 1, "deviceID", "string"),
]


@pytest.mark.parametrize(("value", "element", "field", "fragment"), JSON_BAD)
def test_json_form_errors(
    value: str, element: int | None, field: str | None, fragment: str
) -> None:
    with pytest.raises(SelectionError) as info:
        parse_network_selection(value, "pods")
    err = info.value
    assert err.element == element
    assert err.field == field
    assert fragment in str(err)
    if element is not None:
        assert f"element {element}" in str(err)


def test_error_names_second_element() -> None:
    with pytest.raises(SelectionError, match=r"element 2 \(network 'b'\): mac 'x'"):
        parse_network_selection('[{"name":"a"},{"name":"b","mac":"x"}]', "pods")


def test_selection_error_is_value_error() -> None:
    assert issubclass(SelectionError, ValueError)


def test_deep_nesting_is_a_selection_error() -> None:
    with pytest.raises(SelectionError):
        parse_network_selection("[" * 100_000 + "]" * 100_000, "pods")


def test_non_string_value() -> None:
    with pytest.raises(SelectionError, match="must be a string"):
        parse_network_selection(b"a", "pods")  # type: ignore[arg-type]


# -- fuzz -----------------------------------------------------------------------------------

_json_leaf = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
_json_any = st.recursive(
    _json_leaf,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_KEYS = [
    "name", "namespace", "interface", "ips", "mac", "default-route", "cni-args",
    "portMappings", "bandwidth", "infiniband-guid", "interfaceRequest", "deviceID", "NAME",
]  # fmt: skip
_name_like = st.text(alphabet=string.ascii_lowercase + string.digits + "-.A_/@ ", max_size=20)
_element = st.dictionaries(
    st.sampled_from(_KEYS), _json_any | _name_like | st.lists(_name_like, max_size=3), max_size=6
)


def _check(value: str) -> None:
    try:
        got = parse_network_selection(value, "pods")
    except SelectionError:
        return
    for e in got:
        assert isinstance(e, NetworkSelectionElement)
        json.dumps(e.to_json())  # whatever was accepted can be written back


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_fuzz_arbitrary_text(value: str) -> None:
    _check(value)


@settings(max_examples=300)
@given(st.text(alphabet=string.ascii_letters + string.digits + '-_./@, \t[]{}":', max_size=60))
def test_fuzz_annotation_alphabet(value: str) -> None:
    _check(value)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(_json_any | st.lists(_element, max_size=4))
def test_fuzz_json_structures(value: Any) -> None:
    _check(json.dumps(value))


@settings(max_examples=200)
@given(st.lists(_element, max_size=3))
def test_accepted_elements_round_trip(value: list[dict[str, Any]]) -> None:
    try:
        got = parse_network_selection(json.dumps(value), "pods")
    except SelectionError:
        return
    again = parse_network_selection(json.dumps([e.to_json() for e in got]), "elsewhere")
    assert again == got
