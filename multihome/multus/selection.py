"""The pod annotation ``k8s.v1.cni.cncf.io/networks``: parsing and validation.

Two forms, chosen the way Multus chooses (pkg/k8sclient ``parsePodNetworkAnnotation``): a
value containing ``[``, ``{`` or ``"`` is a JSON list of selection elements, anything else
is the text form ``name``, ``ns/name``, ``name@ifname``, ``ns/name@ifname``, comma
separated. The JSON form is decoded the way Go's ``encoding/json`` decodes it into Multus's
``NetworkSelectionElement`` (keys matched case-insensitively, unknown keys ignored, the last
duplicate wins, ``null`` leaves a field unset, wrong types are errors). On top of that every
value is checked: names and namespaces are DNS-1123 labels, interface names are valid kernel
names, ``ips`` are IPs or CIDRs, ``mac`` and ``infiniband-guid`` parse as hardware
addresses, ``default-route`` entries are IPs. Any fault raises :class:`SelectionError`
naming the element, the field and the bad value.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from multihome.multus.errors import SelectionError
from multihome.multus.validate import (
    dns1123_label_problem,
    ifname_problem,
    ip_or_cidr_problem,
    ip_problem,
    mac_problem,
)

NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"

# Go's unicode.IsSpace, which strings.TrimSpace uses (Python's str.strip knows more).
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


@dataclass(frozen=True)
class NetworkSelectionElement:
    """One network a pod asks for (multi-net-spec 4.1.2), namespace already resolved.

    Empty optional values are normalised: ``interface``/``mac``/``infiniband_guid`` are None
    when unset, ``ips``/``port_mappings`` empty lists. ``default_route`` is None when the key
    is absent or null and a (possibly empty) list when present: Multus treats a present but
    empty list as "filter default routes everywhere". ``cni_args`` likewise distinguishes
    None from ``{}``. ``port_mappings`` and ``bandwidth`` hold the JSON objects Multus
    passes on as runtimeConfig (``hostPort``, ``containerPort``, ``protocol``, ``hostIP``;
    ``ingressRate``, ``ingressBurst``, ``egressRate``, ``egressBurst``).
    """

    name: str
    namespace: str
    interface: str | None = None
    ips: list[str] = field(default_factory=list)
    mac: str | None = None
    default_route: list[str] | None = None
    cni_args: dict[str, Any] | None = None
    port_mappings: list[dict[str, Any]] = field(default_factory=list)
    bandwidth: dict[str, int] | None = None
    infiniband_guid: str | None = None

    @property
    def qualified_name(self) -> str:
        """``namespace/name``, as the network is named in network-status."""
        return f"{self.namespace}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        """This element in the annotation's JSON form (unset fields left out)."""
        out: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.interface is not None:
            out["interface"] = self.interface
        if self.ips:
            out["ips"] = list(self.ips)
        if self.mac is not None:
            out["mac"] = self.mac
        if self.default_route is not None:
            out["default-route"] = list(self.default_route)
        if self.cni_args is not None:
            out["cni-args"] = self.cni_args
        if self.port_mappings:
            out["portMappings"] = [dict(p) for p in self.port_mappings]
        if self.bandwidth is not None:
            out["bandwidth"] = dict(self.bandwidth)
        if self.infiniband_guid is not None:
            out["infiniband-guid"] = self.infiniband_guid
        return out


def parse_network_selection(value: str | None, pod_namespace: str) -> list[NetworkSelectionElement]:
    """Parse a ``k8s.v1.cni.cncf.io/networks`` value; elements without a namespace get
    ``pod_namespace``. None, empty or blank -> ``[]``. Raises :class:`SelectionError`."""
    if value is None:
        return []
    if not isinstance(value, str):
        raise SelectionError(
            f"{NETWORKS_ANNOTATION}: the value must be a string, not {type(value).__name__}",
            value=value,
        )
    if not value.strip(GO_SPACE):
        return []
    try:
        json_form = any(c in value for c in '[{"')
        raw = _parse_json_form(value) if json_form else _parse_text_form(value)
    except RecursionError:
        raise SelectionError(f"{NETWORKS_ANNOTATION}: JSON nested too deeply") from None
    return [_finish(i, r, pod_namespace) for i, r in enumerate(raw, start=1)]


# -- shared ---------------------------------------------------------------------------------


@dataclass
class _Raw:
    """An element as decoded, before namespace defaulting and value checks."""

    name: str = ""
    namespace: str = ""
    interface: str = ""
    deprecated_interface: str = ""
    ips: list[str] = field(default_factory=list)
    mac: str = ""
    default_route: list[str] | None = None
    cni_args: dict[str, Any] | None = None
    port_mappings: list[dict[str, Any]] = field(default_factory=list)
    bandwidth: dict[str, int] | None = None
    infiniband_guid: str = ""
    device_id: str = ""  # accepted and type-checked; device plugins are out of scope
    label: str = ""  # how the element was written, for messages (text form)
    text_form: bool = False


def _where(index: int, raw: _Raw) -> str:
    if raw.text_form:
        label = f" ({raw.label!r})" if raw.label else " (empty item)"
    else:
        label = f" (network {raw.name!r})" if raw.name else ""
    return f"{NETWORKS_ANNOTATION}: element {index}{label}"


def _finish(index: int, raw: _Raw, pod_namespace: str) -> NetworkSelectionElement:
    def fail(field_name: str, bad: object, problem: str) -> SelectionError:
        return SelectionError(
            f"{_where(index, raw)}: {field_name} {bad!r} {problem}",
            element=index,
            field=field_name,
            value=bad,
        )

    if not raw.name:
        raise SelectionError(
            f"{_where(index, raw)}: the network name is missing",
            element=index,
            field="name",
            value=raw.name,
        )
    problem = dns1123_label_problem(raw.name)
    if problem:
        raise fail("name", raw.name, problem)
    namespace = raw.namespace
    if namespace:
        problem = dns1123_label_problem(namespace)
        if problem:
            raise fail("namespace", namespace, problem)
    else:
        problem = dns1123_label_problem(pod_namespace)
        if problem:
            raise fail("pod namespace", pod_namespace, problem)
        namespace = pod_namespace
    interface = raw.interface or raw.deprecated_interface
    if interface:
        problem = ifname_problem(interface)
        if problem:
            raise fail("interface", interface, problem)
    for ip in raw.ips:
        problem = ip_or_cidr_problem(ip)
        if problem:
            raise fail("ips entry", ip, problem)
    for mac_field, mac in (("mac", raw.mac), ("infiniband-guid", raw.infiniband_guid)):
        if mac:
            problem = mac_problem(mac)
            if problem:
                raise fail(mac_field, mac, problem)
    if raw.default_route is not None:
        for gw in raw.default_route:
            problem = ip_problem(gw)
            if problem:
                raise fail("default-route entry", gw, problem)
    return NetworkSelectionElement(
        name=raw.name,
        namespace=namespace,
        interface=interface or None,
        ips=list(raw.ips),
        mac=raw.mac or None,
        default_route=None if raw.default_route is None else list(raw.default_route),
        cni_args=raw.cni_args,
        port_mappings=list(raw.port_mappings),
        bandwidth=raw.bandwidth,
        infiniband_guid=raw.infiniband_guid or None,
    )


# -- text form ------------------------------------------------------------------------------


def _parse_text_form(value: str) -> list[_Raw]:
    """``[ns/]name[@ifname]`` items, comma separated (Multus parsePodNetworkObjectName)."""
    out = []
    for index, item in enumerate(value.split(","), start=1):
        item = item.strip(GO_SPACE)
        raw = _Raw(label=item, text_form=True)
        slash = item.split("/")
        if len(slash) == 2:
            raw.namespace = slash[0].strip(GO_SPACE)
            rest = slash[1]
        elif len(slash) == 1:
            rest = slash[0]
        else:
            raise SelectionError(
                f"{_where(index, raw)}: more than one '/' (expected [namespace/]name[@interface])",
                element=index,
                field="name",
                value=item,
            )
        at = rest.split("@")
        raw.name = at[0].strip(GO_SPACE)
        if len(at) == 2:
            raw.interface = at[1].strip(GO_SPACE)
        elif len(at) > 2:
            raise SelectionError(
                f"{_where(index, raw)}: more than one '@' (expected [namespace/]name[@interface])",
                element=index,
                field="interface",
                value=item,
            )
        out.append(raw)
    return out


# -- JSON form ------------------------------------------------------------------------------


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as its key/value pairs in order (Go matches keys one by one)."""


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _go_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, _Pairs):
        return "object"
    return "array"


def _plain(value: Any) -> Any:
    """Decoded JSON with objects as dicts (last duplicate key wins, as in a Go map)."""
    if isinstance(value, _Pairs):
        return {k: _plain(v) for k, v in value}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _parse_json_form(value: str) -> list[_Raw]:
    try:
        decoded = json.loads(value, object_pairs_hook=_Pairs, parse_constant=_reject_constant)
    except ValueError as err:  # JSONDecodeError is a ValueError
        raise SelectionError(
            f"{NETWORKS_ANNOTATION}: the value looks like JSON (it contains '[', '{{' or '\"') "
            f"but is not valid JSON: {err}",
            value=value,
        ) from None
    if decoded is None:
        return []  # Go: null into a slice leaves it empty
    if isinstance(decoded, _Pairs) or not isinstance(decoded, list):
        raise SelectionError(
            f"{NETWORKS_ANNOTATION}: JSON form must be a list of objects, got {_go_type(decoded)}",
            value=value,
        )
    return [_decode_element(i, item) for i, item in enumerate(decoded, start=1)]


def _type_error(index: int, key: str, want: str, got: Any) -> SelectionError:
    return SelectionError(
        f"{NETWORKS_ANNOTATION}: element {index}: field {key!r} must be {want}, "
        f"got {_go_type(got)} {json.dumps(_plain(got))[:60]}",
        element=index,
        field=key,
        value=_plain(got),
    )


def _want_str(index: int, key: str, value: Any, current: str) -> str:
    if value is None:
        return current  # Go: null leaves a string unchanged
    if not isinstance(value, str):
        raise _type_error(index, key, "a string", value)
    return value


def _want_str_list(index: int, key: str, value: Any) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or isinstance(value, _Pairs):
        raise _type_error(index, key, "a list of strings", value)
    out = []
    for item in value:
        if item is None:
            raise _type_error(index, key, "a list of strings (null entry)", item)
        if not isinstance(item, str):
            raise _type_error(index, key, "a list of strings", item)
        out.append(item)
    return out


def _want_int(index: int, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(index, key, "an integer", value)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise _type_error(index, key, "an integer that fits in 64 bits", value)
    return value


def _match(pairs: _Pairs, keys: tuple[str, ...]) -> list[tuple[str, Any]]:
    """Each pair whose key names one of ``keys`` (exact, else case-insensitive), in order,
    with the canonical key; unknown keys are dropped."""
    folded = {k.casefold(): k for k in keys}
    out = []
    for key, val in pairs:
        canonical = key if key in keys else folded.get(key.casefold())
        if canonical is not None:
            out.append((canonical, val))
    return out


_PORT_KEYS = ("hostPort", "containerPort", "protocol", "hostIP")
_BANDWIDTH_KEYS = ("ingressRate", "ingressBurst", "egressRate", "egressBurst")


def _decode_port_mapping(index: int, value: Any) -> dict[str, Any]:
    if not isinstance(value, _Pairs):
        raise _type_error(index, "portMappings", "a list of objects", value)
    host_port = container_port = 0
    protocol = host_ip = ""
    for key, val in _match(value, _PORT_KEYS):
        where = f"portMappings.{key}"
        if key == "hostPort" and val is not None:
            host_port = _want_int(index, where, val)
        elif key == "containerPort" and val is not None:
            container_port = _want_int(index, where, val)
        elif key == "protocol":
            protocol = _want_str(index, where, val, protocol)
        elif key == "hostIP":
            host_ip = _want_str(index, where, val, host_ip)
    out: dict[str, Any] = {"hostPort": host_port, "containerPort": container_port}
    if protocol:
        out["protocol"] = protocol
    if host_ip:
        out["hostIP"] = host_ip
    return out


def _decode_bandwidth(index: int, value: Any) -> dict[str, int]:
    if not isinstance(value, _Pairs):
        raise _type_error(index, "bandwidth", "an object", value)
    out = dict.fromkeys(_BANDWIDTH_KEYS, 0)
    for key, val in _match(value, _BANDWIDTH_KEYS):
        if val is not None:
            out[key] = _want_int(index, f"bandwidth.{key}", val)
    return out


# JSON key -> _Raw attribute, for the string fields.
_STRING_FIELDS = {
    "name": "name",
    "namespace": "namespace",
    "mac": "mac",
    "infiniband-guid": "infiniband_guid",
    "interface": "interface",
    "interfaceRequest": "deprecated_interface",
    "deviceID": "device_id",
}

_ELEMENT_KEYS = (
    "name",
    "namespace",
    "ips",
    "mac",
    "infiniband-guid",
    "interface",
    "interfaceRequest",
    "portMappings",
    "bandwidth",
    "deviceID",
    "cni-args",
    "default-route",
)


def _decode_element(index: int, item: Any) -> _Raw:
    if not isinstance(item, _Pairs):
        raise SelectionError(
            f"{NETWORKS_ANNOTATION}: element {index} must be a JSON object, got {_go_type(item)}",
            element=index,
            value=_plain(item),
        )
    raw = _Raw()
    for key, val in _match(item, _ELEMENT_KEYS):
        attr = _STRING_FIELDS.get(key)
        if attr is not None:
            setattr(raw, attr, _want_str(index, key, val, getattr(raw, attr)))
            continue
        if key == "ips":
            raw.ips = _want_str_list(index, key, val) or []
        elif key == "default-route":
            raw.default_route = _want_str_list(index, key, val)
        elif key == "portMappings":
            if val is None:
                raw.port_mappings = []
            elif not isinstance(val, list) or isinstance(val, _Pairs):
                raise _type_error(index, key, "a list of objects", val)
            else:
                raw.port_mappings = [_decode_port_mapping(index, p) for p in val]
        elif key == "bandwidth":
            raw.bandwidth = None if val is None else _decode_bandwidth(index, val)
        elif key == "cni-args":
            if val is not None and not isinstance(val, _Pairs):
                raise _type_error(index, key, "an object", val)
            raw.cni_args = None if val is None else _plain(val)
    return raw
