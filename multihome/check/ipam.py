"""Checks of the addresses in host-local and static IPAM configs: every IP and CIDR string
as the plugins decode it (Go's ``net.IP`` and CNI's ``types.IPNet``), so a copied
``rangeStart: 10.22.100.36.200`` or ``gateway: <gateway>`` is found before a pod fails on it.
(whereabouts configs have their own checks.)"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from multihome.check.context import Context
from multihome.check.findings import Finding
from multihome.check.registry import check
from multihome.multus.gojson import fold
from multihome.multus.validate import ip_or_cidr_problem, parse_ip
from multihome.spec import parse_cni_json

IP, CIDR = "IP", "CIDR"
Shape = str | dict[str, Any] | list[Any]

ROUTE: dict[str, Shape] = {"dst": CIDR, "gw": IP}
RANGE: dict[str, Shape] = {"rangeStart": IP, "rangeEnd": IP, "subnet": CIDR, "gateway": IP}
SHAPES: dict[str, dict[str, Shape]] = {
    # plugins/ipam/host-local/backend/allocator/config.go: IPAMConfig embeds a Range
    "host-local": {**RANGE, "routes": [ROUTE], "ranges": [[RANGE]]},
    # plugins/ipam/static/main.go: addresses' "address" goes through net.ParseCIDR
    "static": {"addresses": [{"address": CIDR, "gateway": IP}], "routes": [ROUTE]},
}
EXAMPLE = {IP: "10.22.100.200", CIDR: "10.22.100.0/24"}


@check
def ipam_addresses(ctx: Context) -> Iterator[Finding]:
    for nad in ctx.nads.values():
        if nad.conf is None:
            continue
        many = "plugins" in parse_cni_json(nad.manifest.body["spec"]["config"])
        for index, plugin in enumerate(nad.conf.plugins):
            ipam = plugin.raw.get("ipam")
            if not isinstance(ipam, dict) or ipam.get("type") not in SHAPES:
                continue
            prefix = f"plugins[{index}].ipam" if many else "ipam"
            for path, value, kind in _bad(ipam, SHAPES[ipam["type"]], prefix):
                yield ctx.error(
                    "nad-ipam-address-invalid",
                    nad.locate_config(),
                    f"NAD {nad.key}: {path} {_shown(value)} {_why(value, kind)}: "
                    f"{ipam['type']} fails every attachment with it{_hint(value)}",
                    f"write {'an IP address' if kind == IP else 'ADDRESS/PREFIX'} there, "
                    f"e.g. {EXAMPLE[kind]}",
                )


def _bad(value: Any, shape: Shape, path: str) -> Iterator[tuple[str, Any, str]]:
    """(path, value, IP or CIDR) for each value that does not decode as ``shape`` says."""
    if value is None:
        return  # null: Go leaves the field unset
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return  # the plugin's decoder says so; not an address problem
        fields = {fold(k): k for k in shape}
        for key, item in value.items():  # Go: keys match fields whatever their case
            field = key if key in shape else fields.get(fold(key))
            if field is not None:
                yield from _bad(item, shape[field], f"{path}.{key}")
    elif isinstance(shape, list):
        if isinstance(value, list):
            for i, item in enumerate(value):
                yield from _bad(item, shape[0], f"{path}[{i}]")
    elif not _decodes(value, shape):
        yield path, value, shape


def _decodes(value: Any, kind: Shape) -> bool:
    """Whether a leaf decodes: net.IP takes "" (unset) or an address; types.IPNet takes
    ADDRESS/PREFIX only (net.ParseCIDR)."""
    if not isinstance(value, str):
        return False
    if kind == IP:
        return not value or parse_ip(value) is not None
    return "/" in value and ip_or_cidr_problem(value) is None


def _shown(value: Any) -> str:
    return repr(value) if isinstance(value, str) else f"{value!r} ({type(value).__name__})"


def _why(value: Any, kind: str) -> str:
    if not isinstance(value, str):
        return "is not a string"
    if kind == IP:
        return "is not an IP address"
    return "is not ADDRESS/PREFIX (CIDR)"


def _hint(value: Any) -> str:
    if isinstance(value, str) and ("<" in value or ">" in value or "x.x" in value.lower()):
        return " (a placeholder left from an example?)"
    if isinstance(value, str) and value.count(".") > 3 and ":" not in value:
        return " (an IPv4 address has four numbers)"
    return ""
