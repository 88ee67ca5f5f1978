"""Table tests and a fuzz test for the ``k8s.v1.cni.cncf.io/networks`` parser."""

from __future__ import annotations

import json
import string
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multihome.multus import (
    NetworkSelectionElement,
    SelectionError,
    gojson,
    parse_network_selection,
)
from multihome.multus.goscan import syntax_error

E = NetworkSelectionElement


# -- the classes where Multus v4.1+ is lenient or strict (pkg/k8sclient parsePodNetworkAnnotation)

P = "pods"


def el(name: str, namespace: str = P, **fields: Any) -> NetworkSelectionElement:
    return E(name=name, namespace=namespace, **fields)


ACCEPTED: list[tuple[str, str, list[NetworkSelectionElement]]] = [
    # (class, value, elements)
    ("no value", "", []),
    ("JSON empty list", "[]", []),
    ("JSON null", "null", [el("null")]),  # no [ { " -> text form: a network called null
    ("JSON literal null", " null ", [el("null")]),
    ("JSON spaced empty list", " [ ] ", []),
    ("text", "macvlan-conf", [el("macvlan-conf")]),
    ("text ns", "other/macvlan-conf", [el("macvlan-conf", "other")]),
    ("text ifname", "macvlan-conf@lan0", [el("macvlan-conf", interface="lan0")]),
    ("text all", " a , other/b@net7,c ", [el("a"), el("b", "other", interface="net7"), el("c")]),
    ("text twice", "a,a", [el("a"), el("a")]),
    ("text trimmed parts", " other / b @ if0 ", [el("b", "other", interface="if0")]),
    ("text empty ns", "/b", [el("b")]),
    ("text empty ifname", "b@", [el("b")]),
    ("text blank item", "a,,b", [el("a"), el(""), el("b")]),
    ("text lone comma", ",", [el(""), el("")]),
    ("text blank", " ", [el("")]),
    ("text blank unicode", "\u3000", [el("")]),
    ("text trailing comma", "a,", [el("a"), el("")]),
    ("text ns only", "ns/", [el("", "ns")]),
    ("text no length limit", "a" * 300 + "/" + "b" * 300, [el("b" * 300, "a" * 300)]),
    ("text ifname dot colon", "x-1/0abc-9@eth_1.5:x", [el("0abc-9", "x-1", interface="eth_1.5:x")]),
    ("text ifname dots", "a@..", [el("a", interface="..")]),
    ("text ifname 15 bytes", "a@0123456789abcde", [el("a", interface="0123456789abcde")]),
    ("text ifname nbsp inside", "a@x\u00a0y", [el("a", interface="x\u00a0y")]),
    (
        "JSON names as given",
        '[{"name":"A.b_C","namespace":"Kube_System"}]',
        [el("A.b_C", "Kube_System")],
    ),
    ("JSON no name", "[{}]", [el("")]),
    ("JSON null name", '[{"name":null}]', [el("")]),
    (
        "JSON interface as given",
        '[{"name":"a","interface":"x/y z:0123456789"}]',
        [el("a", interface="x/y z:0123456789")],
    ),
    ("JSON empty namespace", '[{"name":"a","namespace":""}]', [el("a")]),
    ("JSON case-insensitive keys", '[{"NAME":"a","Namespace":"o"}]', [el("a", "o")]),
    (
        "JSON Go fold: long s, dotless i",
        '[{"nameſpace":"o","name":"a","ıps":["1.2.3.4"]}]',
        [el("a", "o", ips=["1.2.3.4"])],
    ),
    ("JSON last duplicate wins", '[{"name":"a","NAME":"b","name":"c"}]', [el("c")]),
    ("JSON unknown keys", '[{"name":"a","unknown":{"deep":[1,2]},"x":1}]', [el("a")]),
    (
        "JSON interfaceRequest",
        '[{"name":"a","interfaceRequest":"old0"}]',
        [el("a", interface="old0")],
    ),
    (
        "JSON interface wins",
        '[{"name":"a","interface":"new0","interfaceRequest":"old0"}]',
        [el("a", interface="new0")],
    ),
    ("JSON nulls leave unset", '[{"name":"a","mac":null,"ips":null,"interface":null}]', [el("a")]),
    ("JSON empty strings", '[{"name":"a","mac":"","interface":""}]', [el("a")]),
    (
        "JSON ips",
        '[{"name":"a","ips":["10.0.0.1","10.0.0.2/8","::1","fe80::1/64","1.2.3.4/024"]}]',
        [el("a", ips=["10.0.0.1", "10.0.0.2/8", "::1", "fe80::1/64", "1.2.3.4/024"])],
    ),
    (
        "JSON ips 4in6 /128",
        '[{"name":"a","ips":["::ffff:1.2.3.4/100"]}]',
        [el("a", ips=["::ffff:1.2.3.4/100"])],
    ),
    (
        "JSON mac forms",
        '[{"name":"a","mac":"0011.2233.4455"},{"name":"b","mac":"00-11-22-33-44-55"}]',
        [el("a", mac="0011.2233.4455"), el("b", mac="00-11-22-33-44-55")],
    ),
    (
        "JSON 20-octet guid",
        '[{"name":"a","infiniband-guid":"' + ":".join(["0a"] * 20) + '"}]',
        [el("a", infiniband_guid=":".join(["0a"] * 20))],
    ),
    ("default-route absent", '[{"name":"a","default-route":null}]', [el("a")]),
    ("default-route empty list", '[{"name":"a","default-route":[]}]', [el("a", default_route=[])]),
    (
        "default-route empty IP",
        '[{"name":"a","default-route":[""]}]',
        [el("a", default_route=[""])],
    ),
    (
        "default-route null IP",
        '[{"name":"a","default-route":[null]}]',
        [el("a", default_route=[""])],
    ),
    (
        "default-route normalised",
        '[{"name":"a","default-route":["::ffff:1.2.3.4","2001:DB8::0001","::1.2.3.4"]}]',
        [el("a", default_route=["1.2.3.4", "2001:db8::1", "::102:304"])],
    ),
    (
        "portMappings null entry kept",
        '[{"name":"a","portMappings":[null,{"HOSTPORT":1,"x":3}]}]',
        [el("a", port_mappings=[None, {"hostPort": 1, "containerPort": 0}])],
    ),
    ("portMappings null", '[{"name":"a","portMappings":null}]', [el("a")]),
    (
        "bandwidth zero values",
        '[{"name":"a","bandwidth":{"egressRate":5}}]',
        [
            el(
                "a",
                bandwidth={"ingressRate": 0, "ingressBurst": 0, "egressRate": 5, "egressBurst": 0},
            )
        ],
    ),
    ("cni-args empty", '[{"name":"a","cni-args":{}}]', [el("a", cni_args={})]),
    (
        "cni-args numbers as float64",
        '[{"name":"a","cni-args":{"n":[1,2.5,1e2,-0.0],"x":{"a":1,"a":2}}}]',
        [el("a", cni_args={"n": [1, 2.5, 100, 0], "x": {"a": 2}})],
    ),
    (
        "cni-args tiny number",
        '[{"name":"a","cni-args":{"n":1e-400}}]',
        [el("a", cni_args={"n": 0})],
    ),
    (
        "merge cni-args",
        '[{"name":"a","cni-args":{"x":1,"y":1},"cni-args":{"y":2}}]',
        [el("a", cni_args={"x": 1, "y": 2})],
    ),
    (
        "null resets cni-args",
        '[{"name":"a","cni-args":{"x":1},"cni-args":null,"cni-args":{"y":2}}]',
        [el("a", cni_args={"y": 2})],
    ),
    (
        "merge bandwidth",
        '[{"name":"a","bandwidth":{"ingressRate":1},"bandwidth":{"egressRate":2}}]',
        [
            el(
                "a",
                bandwidth={"ingressRate": 1, "ingressBurst": 0, "egressRate": 2, "egressBurst": 0},
            )
        ],
    ),
    (
        "merge portMappings entries",
        '[{"name":"a","portMappings":[{"hostPort":1,"protocol":"tcp"}],"portMappings":[{"containerPort":2}]}]',
        [el("a", port_mappings=[{"hostPort": 1, "containerPort": 2, "protocol": "tcp"}])],
    ),
    (
        "slice backing array kept",
        '[{"name":"a","ips":["1.1.1.1","2.2.2.2"],"ips":["3.3.3.3"],"ips":["4.4.4.4",null]}]',
        [el("a", ips=["4.4.4.4", "2.2.2.2"])],
    ),
    ("lone surrogate", '[{"name":"\\ud800"}]', [el("\ufffd")]),
]


@pytest.mark.parametrize(("label", "value", "expected"), ACCEPTED,
                         ids=[c[0] for c in ACCEPTED])  # fmt: skip
def test_accepted_like_multus(
    label: str, value: str, expected: list[NetworkSelectionElement]
) -> None:
    assert parse_network_selection(value, P) == expected


REJECTED: list[tuple[str, str, int | None, str | None, str]] = [
    # (class, value, element, field, Multus's own words, in the message)
    ("text two slashes", "a/b/c", 1, "name", "Invalid network object (failed at '/')"),
    ("text two ats", "a@b@c", 1, "interface", "Invalid network object (failed at '@')"),
    ("text upper case", "Macvlan", 1, "name", "mismatch @ 'Macvlan'"),
    ("text underscore", "mac_vlan", 1, "name", "mismatch @ 'mac_vlan'"),
    ("text leading dash", "-a", 1, "name", "mismatch @ '-a'"),
    ("text dot", "a.b", 1, "name", "mismatch @ 'a.b'"),
    ("text bad ns first", "ok,Bad/x", 2, "namespace", "mismatch @ 'Bad'"),
    ("text ns checked before name", "B/A", 1, "namespace", "mismatch @ 'B'"),
    (
        "text ifname 16 bytes",
        "a@0123456789abcdef",
        1,
        "interface",
        "must be less than 15 chars and not contain '/' or spaces. interface name '0123456789abcdef'",
    ),
    ("text ifname bytes not chars", "a@ééééééééé", 1, "interface", "interface name 'ééééééééé'"),
    ("text ifname space", "a@net 1", 1, "interface", "interface name 'net 1'"),
    ("text ifname tab", "a@net\t1", 1, "interface", "Failed to parse interface name"),
    ("text ifname slash splits first", "a@x/y", 1, "namespace", "mismatch @ 'a@x'"),
    ("JSON syntax", "[", None, None, "JSON format: unexpected end of JSON input"),
    (
        "JSON trailing",
        '[{"name":"a"}] x',
        None,
        None,
        "invalid character 'x' after top-level value",
    ),
    (
        "JSON NaN",
        '[{"name":"a","ips":[NaN]}]',
        None,
        None,
        "invalid character 'N' looking for beginning of value",
    ),
    ("JSON single quotes", "['a']", None, None, "invalid character '\\'' looking for beginning"),
    (
        "JSON trailing comma",
        '[{"name":"a",}]',
        None,
        None,
        "invalid character '}' looking for beginning of object key string",
    ),
    ("JSON leading zero", "[01]", None, None, "invalid character '1' after array element"),
    ("JSON control char", '["a\x01"]', None, None, "invalid character '\\x01' in string literal"),
    (
        "JSON non-ASCII byte",
        "[é]",
        None,
        None,
        "invalid character 'Ã' looking for beginning of value",
    ),
    ("JSON literal", "[nul]", None, None, "invalid character ']' in literal null (expecting 'l')"),
    ("JSON number at end", "[1.", None, None, "invalid character ' ' after decimal point"),
    ("JSON too deep", "[" * 10001 + "]" * 10001, None, None, "JSON format: exceeded max depth"),
    ("JSON quote", 'a"b', None, None, "invalid character 'a' looking for beginning of value"),
    ("JSON brace", "a,{b}", None, None, "not valid JSON"),
    (
        "JSON object",
        '{"name":"a"}',
        None,
        None,
        "json: cannot unmarshal object into Go value of type []*types.NetworkSelectionElement",
    ),
    ("JSON string", '"a"', None, None, "cannot unmarshal string into Go value"),
    (
        "JSON number element",
        "[1]",
        1,
        None,
        "json: cannot unmarshal number into Go value of type types.NetworkSelectionElement",
    ),
    ("JSON null element", "[null]", 1, None, "nil pointer"),
    ("JSON null second element", '[{"name":"a"},null]', 2, None, "element 2 is null"),
    (
        "JSON name number",
        '[{"name":1}]',
        1,
        "name",
        "json: cannot unmarshal number into Go struct field NetworkSelectionElement.name of type string",
    ),
    ("JSON name bool", '[{"name":true}]', 1, "name", "cannot unmarshal bool"),
    ("JSON name list", '[{"name":["a"]}]', 1, "name", "cannot unmarshal array"),
    (
        "JSON first type error wins",
        '[{"namespace":5,"name":1}]',
        1,
        "namespace",
        "NetworkSelectionElement.namespace",
    ),
    ("JSON ips string", '[{"name":"a","ips":"10.0.0.1"}]', 1, "ips", "of type []string"),
    (
        "JSON ips number",
        '[{"name":"a","ips":[1]}]',
        1,
        "ips",
        "cannot unmarshal number into Go struct field NetworkSelectionElement.ips of type string",
    ),
    (
        "JSON ips null entry",
        '[{"name":"a","ips":[null]}]',
        1,
        "ips entry",
        'failed to parse IP address ""',
    ),
    (
        "[] drops the backing array",
        '[{"name":"a","ips":["1.1.1.1"],"ips":[],"ips":[null]}]',
        1,
        "ips entry",
        'failed to parse IP address ""',
    ),
    (
        "JSON ips empty",
        '[{"name":"a","ips":[""]}]',
        1,
        "ips entry",
        'failed to parse IP address ""',
    ),
    (
        "JSON ip octet",
        '[{"name":"a","ips":["10.0.0.256"]}]',
        1,
        "ips entry",
        'failed to parse IP address "10.0.0.256"',
    ),
    (
        "JSON ip leading zero",
        '[{"name":"a","ips":["010.0.0.1"]}]',
        1,
        "ips entry",
        "failed to parse IP",
    ),
    ("JSON ip zone", '[{"name":"a","ips":["fe80::1%eth0"]}]', 1, "ips entry", "failed to parse IP"),
    (
        "JSON cidr prefix",
        '[{"name":"a","ips":["10.0.0.1/33"]}]',
        1,
        "ips entry",
        'failed to parse CIDR "10.0.0.1/33": invalid CIDR address: 10.0.0.1/33',
    ),
    ("JSON cidr v6 prefix", '[{"name":"a","ips":["fd00::1/129"]}]', 1, "ips entry", "invalid CIDR"),
    (
        "JSON cidr empty prefix",
        '[{"name":"a","ips":["10.0.0.1/"]}]',
        1,
        "ips entry",
        "invalid CIDR",
    ),
    (
        "JSON cidr mask",
        '[{"name":"a","ips":["10.0.0.1/255.0.0.0"]}]',
        1,
        "ips entry",
        "invalid CIDR",
    ),
    (
        "JSON mac",
        '[{"name":"a","mac":"zz:zz:zz:zz:zz:zz"}]',
        1,
        "mac",
        "parsePodNetworkAnnotation: failed to mac: address zz:zz:zz:zz:zz:zz: invalid MAC address",
    ),
    ("JSON mac short", '[{"name":"a","mac":"00:11:22:33:44"}]', 1, "mac", "invalid MAC address"),
    ("JSON mac 7 octets", '[{"name":"a","mac":"00:11:22:33:44:55:66"}]', 1, "mac", "invalid MAC"),
    ("JSON mac mixed", '[{"name":"a","mac":"00:11-22:33:44:55"}]', 1, "mac", "invalid MAC"),
    ("JSON mac bare", '[{"name":"a","mac":"001122334455"}]', 1, "mac", "invalid MAC"),
    (
        "JSON mac number",
        '[{"name":"a","mac":1}]',
        1,
        "mac",
        "NetworkSelectionElement.mac of type string",
    ),
    (
        "JSON guid",
        '[{"name":"a","infiniband-guid":"nope-nope-nope"}]',
        1,
        "infiniband-guid",
        "failed to validate infiniband GUID: address nope-nope-nope: invalid MAC address",
    ),
    (
        "default-route string",
        '[{"name":"a","default-route":"10.0.0.1"}]',
        1,
        "default-route",
        "of type []net.IP",
    ),
    (
        "default-route CIDR",
        '[{"name":"a","default-route":["10.0.0.0/24"]}]',
        1,
        "default-route",
        "invalid IP address: 10.0.0.0/24",
    ),
    (
        "default-route number",
        '[{"name":"a","default-route":[1]}]',
        1,
        "default-route",
        "of type net.IP",
    ),
    (
        "bad IP wins over earlier type error",
        '[{"name":1,"default-route":["x"]}]',
        1,
        "default-route",
        "JSON format: invalid IP address: x",
    ),
    (
        "cni-args list",
        '[{"name":"a","cni-args":[1]}]',
        1,
        "cni-args",
        "of type map[string]interface {}",
    ),
    (
        "cni-args 1e400",
        '[{"name":"a","cni-args":{"x":1e400}}]',
        1,
        "cni-args",
        "cannot unmarshal number 1e400 into Go struct field NetworkSelectionElement.cni-args of type float64",
    ),
    (
        "cni-args -1e400 deep",
        '[{"name":"a","cni-args":{"x":[{"y":-1e400}]}}]',
        1,
        "cni-args",
        "number -1e400",
    ),
    (
        "portMappings object",
        '[{"name":"a","portMappings":{}}]',
        1,
        "portMappings",
        "of type []*types.PortMapEntry",
    ),
    (
        "portMappings string port",
        '[{"name":"a","portMappings":[{"hostPort":"80"}]}]',
        1,
        "portMappings",
        "cannot unmarshal string into Go struct field PortMapEntry.portMappings.hostPort of type int",
    ),
    (
        "portMappings fraction",
        '[{"name":"a","portMappings":[{"hostPort":80.5}]}]',
        1,
        "portMappings",
        "cannot unmarshal number 80.5 into Go struct field PortMapEntry.portMappings.hostPort of type int",
    ),
    (
        "portMappings exponent",
        '[{"name":"a","portMappings":[{"hostPort":1e3}]}]',
        1,
        "portMappings",
        "number 1e3",
    ),
    (
        "bandwidth list",
        '[{"name":"a","bandwidth":[]}]',
        1,
        "bandwidth",
        "of type types.BandwidthEntry",
    ),
    (
        "bandwidth bool",
        '[{"name":"a","bandwidth":{"egressRate":true}}]',
        1,
        "bandwidth",
        "BandwidthEntry.bandwidth.egressRate of type int",
    ),
    (
        "bandwidth int64",
        '[{"name":"a","bandwidth":{"egressRate":99999999999999999999}}]',
        1,
        "bandwidth",
        "number 99999999999999999999",
    ),
    (
        "bandwidth 5000 digits",
        '[{"name":"a","bandwidth":{"egressRate":' + "9" * 5000 + "}}]",
        1,
        "bandwidth",
        "BandwidthEntry.bandwidth.egressRate of type int",
    ),
    (
        "deviceID number",
        '[{"name":"a","deviceID":7}]',
        1,
        "deviceID",
        "NetworkSelectionElement.deviceID",
    ),
]


@pytest.mark.parametrize(("label", "value", "element", "field", "words"), REJECTED,
                         ids=[c[0] for c in REJECTED])  # fmt: skip
def test_rejected_like_multus(
    label: str, value: str, element: int | None, field: str | None, words: str
) -> None:
    with pytest.raises(SelectionError) as info:
        parse_network_selection(value, P)
    err = info.value
    assert (err.element, err.field) == (element, field)
    assert words in str(err)
    assert str(err).startswith("k8s.v1.cni.cncf.io/networks: ")
    if element is not None:
        assert f"element {element}" in str(err)
    assert err.multus_error is not None


def test_multus_words_are_kept_whole() -> None:
    with pytest.raises(SelectionError) as info:
        parse_network_selection("ok,a@0123456789abcdef", P)
    assert info.value.multus_error == (
        "parsePodNetworkAnnotation: parsePodNetworkObjectName: Failed to parse interface name: "
        "must be less than 15 chars and not contain '/' or spaces. interface name "
        "'0123456789abcdef'"
    )
    with pytest.raises(SelectionError) as info:
        parse_network_selection('[{"name":"a","ips":["x"]}]', P)
    assert info.value.multus_error == 'failed to parse IP address "x"'


def test_ips_requested_tells_nil_from_empty() -> None:
    (a,) = parse_network_selection('[{"name":"a","ips":[]}]', P)
    (b,) = parse_network_selection('[{"name":"a"}]', P)
    assert a == b and a.ips_requested and not b.ips_requested


def test_pod_namespace_taken_as_given() -> None:
    assert parse_network_selection("a", "Bad_NS") == [el("a", "Bad_NS")]


def test_full_element_round_trip() -> None:
    value = json.dumps([{
        "name": "macvlan-conf", "namespace": "other", "interface": "lan0",
        "ips": ["10.1.1.5/24", "fd00::5"], "mac": "c2:b0:57:49:47:f1",
        "default-route": ["10.1.1.1"], "cni-args": {"foo": "bar", "n": [1, {"x": None}]},
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        "bandwidth": {"ingressRate": 1000, "egressRate": 2000},
        "infiniband-guid": "c2:b0:57:49:47:f1:00:01",
    }])  # fmt: skip
    (e,) = parse_network_selection(value, "x")
    assert e.qualified_name == "other/macvlan-conf"
    assert parse_network_selection(json.dumps([e.to_json()]), "x") == [e]


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


@settings(max_examples=500)
@given(st.text(alphabet='[]{}",:0123456789.eE+-tfnrulas \\u\tx\n', max_size=25))
def test_go_syntax_check_agrees_with_the_decoder(value: str) -> None:
    """What Go's scanner accepts, the decoder reads; what it refuses, the decoder refuses."""
    try:
        gojson.loads(value)
        decodes = True
    except ValueError:
        decodes = False
    assert (syntax_error(value) is None) == decodes
