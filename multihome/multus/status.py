"""The ``k8s.v1.cni.cncf.io/network-status`` value, exactly as Multus v4 writes it.

Entries come from each delegate's CNI result (in its JSON form) the way
network-attachment-definition-client ``CreateNetworkStatuses`` makes them: a result with one
interface gives one entry (all its IPs, the interface that is in the sandbox); a result with
several gives one entry per sandbox interface, IPs assigned by their ``interface`` index
(IPs without one go to the last entry). Keys and omission follow the Go struct
``NetworkStatus``: ``name`` always, then ``interface``, ``ips`` (bare addresses), ``mac``,
``mtu``, ``default`` (only when true), ``dns`` (always, ``{}`` when empty) and ``gateway``
(the gateways of the result's default routes). The annotation text is the entries marshalled
with 4-space indentation, joined by ``,`` inside ``[...]`` (``SetNetworkStatus``).

Also here: how a result changes when Multus moves default routes
(:func:`adjust_default_routes`), so the entries match the pod.
"""

from __future__ import annotations

import copy
import ipaddress
import json
from collections.abc import Mapping, Sequence
from typing import Any

NETWORK_STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status"

_V4_DEFAULT = "0.0.0.0/0"
_V6_DEFAULT = "::/0"


def network_status_entries(
    network: str, result: Mapping[str, Any], *, default: bool
) -> list[dict[str, Any]]:
    """The network-status entries for one delegate's ``result`` (a CNI result as JSON)."""
    interfaces = [i for i in result.get("interfaces") or [] if isinstance(i, Mapping)]
    ips = [ip for ip in result.get("ips") or [] if isinstance(ip, Mapping)]
    gateways = default_gateways(result)
    dns = _dns(result.get("dns"))

    if len(interfaces) == 1:  # CreateNetworkStatus
        entry = _entry(network, default, dns, gateways)
        for iface in interfaces:
            if iface.get("sandbox"):
                entry["interface"] = iface.get("name", "")
                entry["mac"] = iface.get("mac", "")
                entry["mtu"] = iface.get("mtu") or 0
        entry["ips"] = [_bare(ip.get("address", "")) for ip in ips]
        return [_marshal(entry)]

    gw_index = -1
    if default:
        for ip in ips:
            if ip.get("gateway") and isinstance(ip.get("interface"), int):
                gw_index = ip["interface"]
                break
    entries: list[dict[str, Any]] = []
    index_map: dict[int, int] = {}
    first_sandbox_seen = default_set = False
    for position, iface in enumerate(interfaces):
        if not iface.get("sandbox"):
            continue
        is_default = False
        if default and position == gw_index and not default_set:
            is_default = default_set = True
        if default and gw_index == -1 and not first_sandbox_seen:
            is_default = first_sandbox_seen = True
        entry = _entry(network, is_default, dns, gateways)
        entry["interface"] = iface.get("name", "")
        entry["mac"] = iface.get("mac", "")
        entry["mtu"] = iface.get("mtu") or 0
        index_map[position] = len(entries)
        entries.append(entry)
    for ip in ips:
        index = ip.get("interface")
        if isinstance(index, int):
            if index in index_map:
                entries[index_map[index]]["ips"].append(_bare(ip.get("address", "")))
        elif entries:
            entries[-1]["ips"].append(_bare(ip.get("address", "")))
    return [_marshal(e) for e in entries]


def format_network_status(entries: Sequence[Mapping[str, Any]]) -> str:
    """The annotation text, byte for byte as Multus writes it."""
    return "[" + ",".join(_go_json(e) for e in entries) + "]"


def default_gateways(result: Mapping[str, Any]) -> list[str]:
    """Gateways of the result's default routes, in order (routes without one are skipped)."""
    out = []
    for route in result.get("routes") or []:
        if isinstance(route, Mapping) and _is_default(route.get("dst")) and route.get("gw"):
            out.append(str(route["gw"]))
    return out


def adjust_default_routes(
    result: Mapping[str, Any], *, remove: bool, gateways: Sequence[str] = ()
) -> dict[str, Any]:
    """``result`` after Multus moved default routes: with ``remove`` every default route
    goes (Multus deletes all of the interface's default routes, both families), then one
    route per gateway in ``gateways`` is added."""
    out = copy.deepcopy(dict(result))
    routes = [r for r in out.get("routes") or [] if not (remove and _is_default_route(r))]
    for gw in gateways:
        dst = _V4_DEFAULT if ipaddress.ip_address(gw).version == 4 else _V6_DEFAULT
        routes.append({"dst": dst, "gw": gw})
    if routes:
        out["routes"] = routes
    else:
        out.pop("routes", None)
    return out


# -- helpers --------------------------------------------------------------------------------


def _entry(network: str, default: bool, dns: dict[str, Any], gateways: list[str]) -> dict[str, Any]:
    return {
        "name": network,
        "interface": "",
        "ips": [],
        "mac": "",
        "mtu": 0,
        "default": default,
        "dns": copy.deepcopy(dns),
        "gateway": list(gateways),
    }


def _marshal(entry: dict[str, Any]) -> dict[str, Any]:
    """Drop what Go's ``omitempty`` drops; key order is the struct's."""
    out: dict[str, Any] = {"name": entry["name"]}
    for key in ("interface", "ips", "mac", "mtu", "default"):
        if entry[key]:
            out[key] = entry[key]
    out["dns"] = entry["dns"]
    if entry["gateway"]:
        out["gateway"] = entry["gateway"]
    return out


def _dns(value: Any) -> dict[str, Any]:
    dns = value if isinstance(value, Mapping) else {}
    out: dict[str, Any] = {}
    for key in ("nameservers", "domain", "search", "options"):
        if dns.get(key):
            out[key] = copy.deepcopy(dns[key])
    return out


def _bare(address: Any) -> str:
    return str(address).split("/", 1)[0]


def _is_default(dst: Any) -> bool:
    """nad-client isDefaultRoute: the (masked) destination address is 0.0.0.0 or ::."""
    try:
        return int(ipaddress.ip_network(str(dst), strict=False).network_address) == 0
    except ValueError:
        return False


def _is_default_route(route: Any) -> bool:
    if not isinstance(route, Mapping):
        return False
    try:
        return ipaddress.ip_network(str(route.get("dst")), strict=False).prefixlen == 0
    except ValueError:
        return False


def _go_json(value: Any) -> str:
    """json.MarshalIndent(value, "", "    "): Go escapes <, > and & in strings."""
    text = json.dumps(value, indent=4, ensure_ascii=False)
    return (
        text.replace("<", "\\u003c")
        .replace(">", "\\u003e")
        .replace("&", "\\u0026")
        .replace("\u2028", "\\u2028")
        .replace("\u2029", "\\u2029")
    )
