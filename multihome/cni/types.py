"""CNI results as types, and their conversion between spec versions.

One Result type holds any supported version's result; ``Result.from_json`` reads 0.1.0, 0.2.0
(what plugins answer a config without cniVersion), 0.3.0, 0.3.1, 0.4.0, 1.0.0 and 1.1.0 and
``Result.to_json(version)`` writes any of them (0.1.0/0.2.0: ``ip4``/``ip6``, one address
each);
0.3.x/0.4.0 carry ``ips[].version`` ("4"/"6"), 1.0.0 drops it, and the 1.1.0-only fields
(interface mtu/socketPath/pciID, route mtu/advmss/priority/table/scope) are dropped when writing
an older version. Malformed results raise ValueError naming the field.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .version import LEGACY_RESULT_VERSIONS, SUPPORTED_VERSIONS, at_least

_READABLE = LEGACY_RESULT_VERSIONS + SUPPORTED_VERSIONS

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass
class Interface:
    name: str
    mac: str = ""
    sandbox: str = ""
    mtu: int | None = None  # 1.1.0
    socket_path: str = ""  # 1.1.0
    pci_id: str = ""  # 1.1.0


@dataclass
class IPConfig:
    address: IPInterface
    gateway: IPAddress | None = None
    interface: int | None = None  # index into Result.interfaces

    @property
    def version(self) -> str:
        return str(self.address.version)


@dataclass
class Route:
    dst: IPNetwork
    gw: IPAddress | None = None
    mtu: int | None = None  # 1.1.0
    advmss: int | None = None  # 1.1.0
    priority: int | None = None  # 1.1.0
    table: int | None = None  # 1.1.0
    scope: int | None = None  # 1.1.0


@dataclass
class DNS:
    nameservers: list[str] = field(default_factory=list)
    domain: str = ""
    search: list[str] = field(default_factory=list)
    options: list[str] = field(default_factory=list)


@dataclass
class Result:
    cni_version: str
    interfaces: list[Interface] = field(default_factory=list)
    ips: list[IPConfig] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    dns: DNS = field(default_factory=DNS)

    def to_json(self, version: str | None = None) -> dict[str, Any]:
        """The result as a plugin of ``version`` (default: its own) prints it."""
        version = version or self.cni_version
        if version in LEGACY_RESULT_VERSIONS:
            return self._legacy_json(version)
        if version not in SUPPORTED_VERSIONS:
            raise ValueError(f"cniVersion {version!r} is not a supported result version")
        new = at_least(version, "1.1.0")
        out: dict[str, Any] = {"cniVersion": version}
        if self.interfaces:
            out["interfaces"] = [_interface_json(i, new) for i in self.interfaces]
        if self.ips:
            out["ips"] = [_ip_json(ip, not at_least(version, "1.0.0")) for ip in self.ips]
        if self.routes:
            out["routes"] = [_route_json(r, new) for r in self.routes]
        out["dns"] = _dns_json(self.dns)
        return out

    def _legacy_json(self, version: str) -> dict[str, Any]:
        """0.1.0/0.2.0: the first address of each family as ``ip4``/``ip6``, with that
        family's routes (the CNI library's 0.4.0 -> 0.2.0 conversion)."""
        out: dict[str, Any] = {"cniVersion": version}
        for key, family in (("ip4", 4), ("ip6", 6)):
            ip = next((i for i in self.ips if i.address.version == family), None)
            if ip is None:
                continue
            entry: dict[str, Any] = {"ip": str(ip.address)}
            if ip.gateway is not None:
                entry["gateway"] = str(ip.gateway)
            routes = [_route_json(r, False) for r in self.routes if r.dst.version == family]
            if routes:
                entry["routes"] = routes
            out[key] = entry
        out["dns"] = _dns_json(self.dns)
        return out

    def convert(self, version: str) -> Result:
        """The same result labelled as ``version`` (fields that version lacks are dropped)."""
        return Result.from_json(self.to_json(version))

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Result:
        """Read a result of any supported version; ValueError naming the bad field."""
        if not isinstance(data, Mapping):
            raise ValueError(f"result: must be a JSON object, got {type(data).__name__}")
        version = data.get("cniVersion")
        if not isinstance(version, str) or version not in _READABLE:
            raise ValueError(
                f"cniVersion: {version!r} is not a supported result version "
                f"({', '.join(_READABLE)})"
            )
        if version in LEGACY_RESULT_VERSIONS:
            return cls._from_legacy(version, data)
        return cls(
            cni_version=version,
            interfaces=[
                _interface(x, f"interfaces[{n}]") for n, x in enumerate(_list(data, "interfaces"))
            ],
            ips=[_ip(x, f"ips[{n}]") for n, x in enumerate(_list(data, "ips"))],
            routes=[_route(x, f"routes[{n}]") for n, x in enumerate(_list(data, "routes"))],
            dns=_dns(data.get("dns") or {}, "dns"),
        )

    @classmethod
    def _from_legacy(cls, version: str, data: Mapping[str, Any]) -> Result:
        """0.1.0/0.2.0 (``ip4``/``ip6`` with their routes) as the CNI library converts it
        upward: one IP per family, no interfaces (so no interface index)."""
        ips: list[IPConfig] = []
        routes: list[Route] = []
        for key in ("ip4", "ip6"):
            block = data.get(key)
            if block is None:
                continue
            block = _obj(block, key)
            ip = _ip({"address": block.get("ip"), "gateway": block.get("gateway")}, key)
            ips.append(ip)
            routes += [
                _route(x, f"{key}.routes[{n}]") for n, x in enumerate(_list(block, "routes"))
            ]
        return cls(
            cni_version=version, ips=ips, routes=routes, dns=_dns(data.get("dns") or {}, "dns")
        )


# -- writing -------------------------------------------------------------------------------


def _interface_json(i: Interface, new: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": i.name}
    if i.mac:
        out["mac"] = i.mac
    if new and i.mtu is not None:
        out["mtu"] = i.mtu
    if i.sandbox:
        out["sandbox"] = i.sandbox
    if new and i.socket_path:
        out["socketPath"] = i.socket_path
    if new and i.pci_id:
        out["pciID"] = i.pci_id
    return out


def _ip_json(ip: IPConfig, with_version: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if with_version:
        out["version"] = ip.version
    if ip.interface is not None:
        out["interface"] = ip.interface
    out["address"] = str(ip.address)
    if ip.gateway is not None:
        out["gateway"] = str(ip.gateway)
    return out


def _route_json(r: Route, new: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"dst": str(r.dst)}
    if r.gw is not None:
        out["gw"] = str(r.gw)
    if new:
        for key in ("mtu", "advmss", "priority", "table", "scope"):
            value = getattr(r, key)
            if value is not None:
                out[key] = value
    return out


def _dns_json(d: DNS) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if d.nameservers:
        out["nameservers"] = list(d.nameservers)
    if d.domain:
        out["domain"] = d.domain
    if d.search:
        out["search"] = list(d.search)
    if d.options:
        out["options"] = list(d.options)
    return out


# -- reading -------------------------------------------------------------------------------


def _obj(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{where}: must be a JSON object, got {type(value).__name__}")
    return value


def _list(data: Mapping[str, Any], key: str) -> Sequence[Any]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{key}: must be a list, got {type(value).__name__}")
    return value


def _str(data: Mapping[str, Any], key: str, where: str, *, required: bool = False) -> str:
    value = data.get(key)
    if value is None:
        if required:
            raise ValueError(f"{where}.{key}: missing")
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{where}.{key}: must be a string, got {type(value).__name__}")
    return value


def _int(data: Mapping[str, Any], key: str, where: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{where}.{key}: must be an integer, got {type(value).__name__}")
    return value


def _strs(data: Mapping[str, Any], key: str, where: str) -> list[str]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}.{key}: must be a list of strings")
    return list(value)


def _interface(value: Any, where: str) -> Interface:
    data = _obj(value, where)
    return Interface(
        name=_str(data, "name", where, required=True),
        mac=_str(data, "mac", where),
        sandbox=_str(data, "sandbox", where),
        mtu=_int(data, "mtu", where),
        socket_path=_str(data, "socketPath", where),
        pci_id=_str(data, "pciID", where),
    )


def _ip(value: Any, where: str) -> IPConfig:
    data = _obj(value, where)
    text = _str(data, "address", where, required=True)
    try:
        address: IPInterface = ipaddress.ip_interface(text)
    except ValueError:
        raise ValueError(f"{where}.address: {text!r} is not an address/prefix") from None
    if "/" not in text:
        raise ValueError(f"{where}.address: {text!r} has no prefix length")
    version = data.get("version")
    if version is not None and version not in ("4", "6"):
        raise ValueError(f"{where}.version: {version!r} is not '4' or '6'")
    gateway = _address(_str(data, "gateway", where), f"{where}.gateway")
    index = _int(data, "interface", where)
    if index is not None and index < 0:
        raise ValueError(f"{where}.interface: must not be negative")
    return IPConfig(address=address, gateway=gateway, interface=index)


def _address(text: str, where: str) -> IPAddress | None:
    if not text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise ValueError(f"{where}: {text!r} is not an IP address") from None


def _route(value: Any, where: str) -> Route:
    data = _obj(value, where)
    text = _str(data, "dst", where, required=True)
    try:
        dst: IPNetwork = ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise ValueError(f"{where}.dst: {text!r} is not a network") from None
    return Route(
        dst=dst,
        gw=_address(_str(data, "gw", where), f"{where}.gw"),
        mtu=_int(data, "mtu", where),
        advmss=_int(data, "advmss", where),
        priority=_int(data, "priority", where),
        table=_int(data, "table", where),
        scope=_int(data, "scope", where),
    )


def _dns(value: Any, where: str) -> DNS:
    data = _obj(value, where)
    return DNS(
        nameservers=_strs(data, "nameservers", where),
        domain=_str(data, "domain", where),
        search=_strs(data, "search", where),
        options=_strs(data, "options", where),
    )
