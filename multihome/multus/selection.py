"""The pod annotation ``k8s.v1.cni.cncf.io/networks``, parsed exactly as Multus v4.1+ parses it.

Multus (pkg/k8sclient ``parsePodNetworkAnnotation``) treats a value containing ``[``, ``{``
or ``"`` as a JSON list of selection elements, decoded by Go's ``encoding/json`` into its
``NetworkSelectionElement`` (see :mod:`.gojson` for the rules), and anything else as the text
form ``[ns/]name[@ifname]``, comma separated (``parsePodNetworkObjectName``). Then, for every
element, it fills in the pod's namespace and checks only ``mac`` and ``infiniband-guid``
(``net.ParseMAC``) and ``ips`` (``net.ParseCIDR`` / ``net.ParseIP``).

What Multus lets through is let through here, so its consequences come where Multus has them:
an empty or upper-case name, or a bad namespace, fails on the NAD lookup
(:mod:`.delegates`); a bad JSON ``interface`` fails at the plugin call. The text form checks
names and namespaces against the DNS-1123 label pattern (no length limit) and interface names
(at most 15 bytes, no whitespace or ``/``); blank items (``a,,b``, ``" "``) are elements with
an empty name. ``default-route`` holds IPs (Go ``net.IP``): ``""`` and ``null`` are the empty
IP, ``::ffff:1.2.3.4`` is ``1.2.3.4``. A ``null`` element crashes Multus (nil pointer); it is
rejected here with a message saying so.

Rejections raise :class:`SelectionError` whose message carries Multus's own error text
(``multus_error``) behind where it is (element, field).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from multihome.multus import gojson
from multihome.multus.errors import SelectionError
from multihome.multus.gojson import Decoder, GoSlice, Num, Pairs, Where
from multihome.multus.goscan import syntax_error
from multihome.multus.validate import go_ip_string, go_quote, mac_problem, parse_ip

NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"

# Go's unicode.IsSpace, which strings.TrimSpace uses (Python's str.strip knows more).
GO_SPACE = (
    "\t\n\v\f\r \x85\xa0\u1680"
    + "".join(map(chr, range(0x2000, 0x200B)))
    + ("\u2028\u2029\u202f\u205f\u3000")
)
_TEXT_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_IFNAME_FORBIDDEN = " \t\n\v\f\r/"  # strings.ContainsAny in parsePodNetworkObjectName
IFNAMSIZ = 16
_JSON_PREFIX = (
    "parsePodNetworkAnnotation: failed to parse pod Network Attachment Selection "
    "Annotation JSON format: "
)


@dataclass(frozen=True)
class NetworkSelectionElement:
    """One network a pod asks for (Multus ``NetworkSelectionElement``), namespace filled in.

    ``name`` may be empty (a blank text item, or JSON without a name): Multus keeps such an
    element and fails it on the NAD lookup. ``interface`` / ``mac`` / ``infiniband_guid`` are
    None when unset or empty. ``ips`` are the strings as written (checked). ``default_route``
    is None when absent or null, else the gateways as Go prints ``net.IP`` (``""`` for an
    empty IP); a present but empty list means "remove default routes everywhere".
    ``cni_args`` is None or the object (numbers as Go's float64 gives them back).
    ``port_mappings`` keeps ``None`` for a ``null`` entry, as Multus passes it on.
    ``bandwidth`` has all four keys (Go zero values). ``ips_requested`` says the JSON had a
    non-null ``ips`` (even ``[]``): Multus then puts ``IP=...`` in CNI_ARGS. ``device_id``
    is the ``deviceID`` key (a runtimeConfig capability).
    """

    name: str
    namespace: str
    interface: str | None = None
    ips: list[str] = field(default_factory=list)
    mac: str | None = None
    default_route: list[str] | None = None
    cni_args: dict[str, Any] | None = None
    port_mappings: list[dict[str, Any] | None] = field(default_factory=list)
    bandwidth: dict[str, int] | None = None
    infiniband_guid: str | None = None
    ips_requested: bool = field(default=False, compare=False)
    device_id: str | None = field(default=None, compare=False)

    @property
    def qualified_name(self) -> str:
        """``namespace/name``, as the network is named in network-status."""
        return f"{self.namespace}/{self.name}"

    def to_json(self) -> dict[str, Any]:
        """This element in the annotation's JSON form (unset fields left out)."""
        out: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.interface is not None:
            out["interface"] = self.interface
        if self.ips or self.ips_requested:
            out["ips"] = list(self.ips)
        if self.mac is not None:
            out["mac"] = self.mac
        if self.default_route is not None:
            out["default-route"] = list(self.default_route)
        if self.cni_args is not None:
            out["cni-args"] = self.cni_args
        if self.port_mappings:
            out["portMappings"] = [None if p is None else dict(p) for p in self.port_mappings]
        if self.bandwidth is not None:
            out["bandwidth"] = dict(self.bandwidth)
        if self.infiniband_guid is not None:
            out["infiniband-guid"] = self.infiniband_guid
        if self.device_id is not None:
            out["deviceID"] = self.device_id
        return out


def parse_network_selection(value: str | None, pod_namespace: str) -> list[NetworkSelectionElement]:
    """Parse a ``k8s.v1.cni.cncf.io/networks`` value as Multus does; elements without a
    namespace get ``pod_namespace``. None or ``""`` -> ``[]`` (Multus: no networks).
    Raises :class:`SelectionError` exactly where Multus rejects (or crashes)."""
    if value is None:
        return []
    if not isinstance(value, str):
        raise SelectionError(
            f"{NETWORKS_ANNOTATION}: the value must be a string, not {type(value).__name__}",
            value=value,
        )
    if value == "":
        return []
    return list(_parse(value, pod_namespace))


@functools.lru_cache(maxsize=4096)
def _parse(value: str, pod_namespace: str) -> tuple[NetworkSelectionElement, ...]:
    """The elements of ``value``, shared by every caller (frozen; their lists and dicts are
    read, never changed): an ``up`` reads each pod's annotation in its checks, its plan and
    its attachment; the Go-exact scan costs ~0.1 ms a pod."""
    json_form = any(c in value for c in '[{"')
    raws = _parse_json_form(value) if json_form else _parse_text_form(value)
    return tuple(_finish(index, raw, pod_namespace) for index, raw in enumerate(raws, start=1))


# -- shared ---------------------------------------------------------------------------------


@dataclass
class _Raw:
    """An element as Go holds it after decoding (zero values for what was not given)."""

    name: str = ""
    namespace: str = ""
    ips: GoSlice | None = None
    mac: str = ""
    infiniband_guid: str = ""
    interface: str = ""
    interface_request: str = ""
    port_mappings: GoSlice | None = None
    bandwidth: dict[str, int] | None = None
    device_id: str = ""
    cni_args: dict[str, Any] | None = None
    default_route: GoSlice | None = None
    label: str = ""  # the item as written (text form), for messages
    text_form: bool = False


def _where(index: int, raw: _Raw) -> str:
    if raw.text_form:
        return f"{NETWORKS_ANNOTATION}: element {index} ({raw.label!r})"
    label = f" (network {raw.name!r})" if raw.name else ""
    return f"{NETWORKS_ANNOTATION}: element {index}{label}"


def _fail(index: int, raw: _Raw, field_name: str, bad: object, multus: str) -> SelectionError:
    return SelectionError(
        f"{_where(index, raw)}: {field_name} {bad!r}: {multus}",
        element=index,
        field=field_name,
        value=bad,
        multus_error=multus,
    )


def _finish(index: int, raw: _Raw, pod_namespace: str) -> NetworkSelectionElement:
    """parsePodNetworkAnnotation's loop over the decoded elements."""
    namespace = raw.namespace or pod_namespace
    if raw.mac:
        problem = mac_problem(raw.mac)
        if problem:
            multus = (
                f"parsePodNetworkAnnotation: failed to mac: address {raw.mac}: invalid MAC address"
            )
            raise _fail(index, raw, "mac", raw.mac, multus)
    if raw.infiniband_guid and mac_problem(raw.infiniband_guid):
        multus = (
            "parsePodNetworkAnnotation: failed to validate infiniband GUID: "
            f"address {raw.infiniband_guid}: invalid MAC address"
        )
        raise _fail(index, raw, "infiniband-guid", raw.infiniband_guid, multus)
    ips = raw.ips.value if raw.ips is not None else []
    for ip in ips:
        ip_problem = _ip_request_problem(ip)
        if ip_problem:
            raise _fail(index, raw, "ips entry", ip, ip_problem)
    interface = raw.interface or raw.interface_request
    default_route = raw.default_route.value if raw.default_route is not None else None
    port_mappings = raw.port_mappings.value if raw.port_mappings is not None else []
    return NetworkSelectionElement(
        name=raw.name,
        namespace=namespace,
        interface=interface or None,
        ips=list(ips),
        mac=raw.mac or None,
        default_route=None if default_route is None else list(default_route),
        cni_args=raw.cni_args,
        port_mappings=[None if p is None else _port_json(p) for p in port_mappings],
        bandwidth=None if raw.bandwidth is None else dict(raw.bandwidth),
        infiniband_guid=raw.infiniband_guid or None,
        ips_requested=raw.ips is not None,
        device_id=raw.device_id or None,
    )


def _ip_request_problem(ip: str) -> str | None:
    """Multus's words for an ``ips`` entry that ``net.ParseCIDR`` / ``net.ParseIP`` refuse."""
    if "/" in ip:
        address, _, prefix = ip.partition("/")
        parsed = parse_ip(address)
        if (
            parsed is None
            or not re.fullmatch(r"[0-9]+", prefix)
            or int(prefix) > parsed.max_prefixlen
        ):
            return f"failed to parse CIDR {go_quote(ip)}: invalid CIDR address: {ip}"
        return None
    if parse_ip(ip) is None:
        return f"failed to parse IP address {go_quote(ip)}"
    return None


def _port_json(entry: dict[str, Any]) -> dict[str, Any]:
    """A PortMapEntry as Go marshals it (protocol and hostIP omitted when empty)."""
    out: dict[str, Any] = {"hostPort": entry["hostPort"], "containerPort": entry["containerPort"]}
    if entry["protocol"]:
        out["protocol"] = entry["protocol"]
    if entry["hostIP"]:
        out["hostIP"] = entry["hostIP"]
    return out


# -- text form ------------------------------------------------------------------------------


def _parse_text_form(value: str) -> list[_Raw]:
    """``[ns/]name[@ifname]`` items, comma separated (parsePodNetworkObjectName)."""
    out = []
    for index, item in enumerate(value.split(","), start=1):
        item = item.strip(GO_SPACE)
        raw = _Raw(label=item, text_form=True)

        def fail(
            field_name: str, bad: str, multus: str, raw: _Raw = raw, index: int = index
        ) -> SelectionError:
            full = f"parsePodNetworkAnnotation: parsePodNetworkObjectName: {multus}"
            return _fail(index, raw, field_name, bad, full)

        slash = item.split("/")
        if len(slash) == 2:
            raw.namespace = slash[0].strip(GO_SPACE)
            rest = slash[1]
        elif len(slash) == 1:
            rest = slash[0]
        else:
            raise fail("name", item, "Invalid network object (failed at '/')")
        at = rest.split("@")
        raw.name = at[0].strip(GO_SPACE)
        if len(at) == 2:
            raw.interface = at[1].strip(GO_SPACE)
        elif len(at) != 1:
            raise fail("interface", item, "Invalid network object (failed at '@')")
        for field_name, part in (("namespace", raw.namespace), ("name", raw.name)):
            if part and not _TEXT_NAME.fullmatch(part):
                raise fail(
                    field_name,
                    part,
                    "Failed to parse: one or more items did not match comma-delimited format "
                    "(must consist of lower case alphanumeric characters). Must start and end "
                    f"with an alphanumeric character), mismatch @ '{part}'",
                )
        ifname = raw.interface
        if ifname and (
            len(ifname.encode("utf-8", "surrogatepass")) > IFNAMSIZ - 1
            or any(c in _IFNAME_FORBIDDEN for c in ifname)
        ):
            raise fail(
                "interface",
                ifname,
                "Failed to parse interface name: must be less than 15 chars and not contain "
                f"'/' or spaces. interface name '{ifname}'",
            )
        out.append(raw)
    return out


# -- JSON form ------------------------------------------------------------------------------

_ELEMENT_TYPE = "types.NetworkSelectionElement"
_ELEMENT_FIELDS = (
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
_STRING_FIELDS = {
    "name": "name",
    "namespace": "namespace",
    "mac": "mac",
    "infiniband-guid": "infiniband_guid",
    "interface": "interface",
    "interfaceRequest": "interface_request",
    "deviceID": "device_id",
}
_PORT_FIELDS = ("hostPort", "containerPort", "protocol", "hostIP")
_BANDWIDTH_FIELDS = ("ingressRate", "ingressBurst", "egressRate", "egressBurst")


class _IPError(Exception):
    """``net.IP.UnmarshalText`` failed: Go's decoder stops here."""


def _parse_json_form(value: str) -> list[_Raw]:
    bad_syntax = syntax_error(value)
    if bad_syntax is not None:
        go, offset = bad_syntax
        ours = (
            "the value contains '[', '{' or '\"', so Multus reads it as JSON, but it is not "
            f"valid JSON (at byte {offset}): {_JSON_PREFIX}{go}"
        )
        raise _json_error(go, ours, None, None) from None
    try:
        decoded = gojson.loads(value)
    except (RecursionError, ValueError):
        # Go accepts up to 10000 levels; Python's decoder stops near 1000
        raise SelectionError(
            f"{NETWORKS_ANNOTATION}: the JSON is nested too deeply for multihome to read "
            "(Multus reads up to 10000 levels); flatten the cni-args",
            value=value,
        ) from None
    dec = Decoder()
    elements: list[_Raw | None] = []
    try:
        if decoded is None:
            pass  # null into a slice: no elements
        elif not isinstance(decoded, list) or isinstance(decoded, Pairs):
            dec.save(decoded, "[]*" + _ELEMENT_TYPE, ("", ""))
        else:
            for index, item in enumerate(decoded, start=1):
                elements.append(_decode_element(dec, index, item))
    except _IPError as err:
        bad, at = err.args
        raise _json_error(f"invalid IP address: {bad}", None, at, "default-route", bad) from None
    if dec.saved is not None:
        saved_index, field_name = dec.saved_at or (None, None)
        raise _json_error(str(dec.saved), None, saved_index, field_name)
    out: list[_Raw] = []
    for index, element in enumerate(elements, start=1):
        if element is None:
            raise SelectionError(
                f"{NETWORKS_ANNOTATION}: element {index} is null: Multus crashes on it (nil "
                "pointer dereference in parsePodNetworkAnnotation) and the pod never starts; "
                "remove the null from the list",
                element=index,
                value=None,
                multus_error="runtime error: invalid memory address or nil pointer dereference",
            )
        out.append(element)
    return out


def _json_error(
    go: str, ours: str | None, index: int | None, field_name: str | None, value: object = None
) -> SelectionError:
    """Multus's error for the JSON form; ``ours`` replaces Go's text where Go's own would be
    less useful (syntax errors: Python's message says where)."""
    multus = _JSON_PREFIX + go
    where = f"element {index}, field {field_name!r}: " if index and field_name else ""
    where = where or (f"element {index}: " if index else "")
    return SelectionError(
        f"{NETWORKS_ANNOTATION}: {where}{ours or multus}",
        element=index,
        field=field_name,
        value=value,
        multus_error=multus,
    )


def _decode_element(dec: Decoder, index: int, item: Any) -> _Raw | None:
    if item is None:
        return None
    raw = _Raw()
    if not isinstance(item, Pairs):
        dec.save(item, _ELEMENT_TYPE, ("", ""), (index, None))
        return raw
    struct = "NetworkSelectionElement"
    for key, val in gojson.match_fields(item, _ELEMENT_FIELDS):
        where: Where = (struct, key)
        at = (index, key)
        attr = _STRING_FIELDS.get(key)
        if attr is not None:
            setattr(raw, attr, dec.string(val, getattr(raw, attr), where, at))
        elif key == "ips":
            raw.ips = gojson.decode_slice(
                dec,
                val,
                raw.ips,
                "[]string",
                where,
                lambda v, old, w=where, a=at: dec.string(v, old, w, a),
                "",
                at,
            )
        elif key == "default-route":
            raw.default_route = gojson.decode_slice(
                dec,
                val,
                raw.default_route,
                "[]net.IP",
                where,
                _ip_decoder(dec, index, where, at),
                "",
                at,
            )
        elif key == "portMappings":
            raw.port_mappings = gojson.decode_slice(
                dec,
                val,
                raw.port_mappings,
                "[]*types.PortMapEntry",
                where,
                _port_decoder(dec, key, at),
                None,
                at,
            )
        elif key == "bandwidth":
            raw.bandwidth = _decode_bandwidth(dec, val, raw.bandwidth, key, at)
        elif key == "cni-args":
            if val is None:
                raw.cni_args = None
            elif not isinstance(val, Pairs):
                dec.save(val, "map[string]interface {}", where, at)
            else:
                args = raw.cni_args if raw.cni_args is not None else {}
                for k, v in val:
                    args[k] = dec.any(v, where, at)
                raw.cni_args = args
    return raw


def _ip_decoder(dec: Decoder, index: int, where: Where, at: Any) -> Callable[[Any, str], str]:
    def decode(value: Any, old: str) -> str:
        if value is None:
            return ""  # null into net.IP: the empty IP
        if isinstance(value, str) and not isinstance(value, Num):
            if value == "":
                return ""
            if parse_ip(value) is None:
                raise _IPError(value, index)
            return go_ip_string(value)
        dec.save(value, "net.IP", where, at)
        return old

    return decode


def _port_decoder(
    dec: Decoder, key: str, at: Any
) -> Callable[[Any, dict[str, Any] | None], dict[str, Any] | None]:
    def decode(value: Any, old: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is None:
            return None
        entry: dict[str, Any] = (
            old
            if old is not None
            else {"hostPort": 0, "containerPort": 0, "protocol": "", "hostIP": ""}
        )
        if not isinstance(value, Pairs):
            dec.save(value, "types.PortMapEntry", ("NetworkSelectionElement", key), at)
            return entry
        for name, val in gojson.match_fields(value, _PORT_FIELDS):
            where = ("PortMapEntry", f"{key}.{name}")
            if name in ("hostPort", "containerPort"):
                entry[name] = dec.int(val, entry[name], where, at)
            else:
                entry[name] = dec.string(val, entry[name], where, at)
        return entry

    return decode


def _decode_bandwidth(
    dec: Decoder, value: Any, current: dict[str, int] | None, key: str, at: Any
) -> dict[str, int] | None:
    if value is None:
        return None
    entry = current if current is not None else dict.fromkeys(_BANDWIDTH_FIELDS, 0)
    if not isinstance(value, Pairs):
        dec.save(value, "types.BandwidthEntry", ("NetworkSelectionElement", key), at)
        return entry
    for name, val in gojson.match_fields(value, _BANDWIDTH_FIELDS):
        entry[name] = dec.int(val, entry[name], ("BandwidthEntry", f"{key}.{name}"), at)
    return entry
