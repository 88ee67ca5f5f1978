"""Field types shared by the models: IP addresses, networks, ports, DHCP ranges, lease times.

Each parses strictly and fails with a :class:`PydanticCustomError` whose message names the
fault and whose context carries a ``hint`` (see ``validation.py``).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Any

from pydantic import BaseModel, Field, PlainSerializer, PlainValidator, Strict
from pydantic_core import PydanticCustomError

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network


def _fail(kind: str, message: str, hint: str) -> PydanticCustomError:
    return PydanticCustomError(kind, message, {"hint": hint})


def parse_ip_address(value: Any) -> IPAddr:
    """An IPv4 or IPv6 address without a prefix, from a string."""
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if not isinstance(value, str):
        raise _fail("ip_address", "expected an IP address", "write it like 172.16.40.46")
    try:
        return ipaddress.ip_address(value.strip())
    except ValueError:
        if "/" in value:
            raise _fail(
                "ip_address",
                f"{value!r} is not an IP address: it has a prefix",
                "write the address alone, e.g. 172.16.40.46; the prefix comes from the subnet",
            ) from None
        raise _fail(
            "ip_address",
            f"{value!r} is not a valid IP address",
            "write it like 172.16.40.46 (IPv4) or fd00::46 (IPv6)",
        ) from None


def parse_ip_network(value: Any) -> IPNet:
    """An IPv4 or IPv6 network in CIDR form with no host bits set."""
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    if not isinstance(value, str):
        raise _fail("ip_network", "expected a network in CIDR form", "write it like 172.16.40.0/24")
    text = value.strip()
    if "/" not in text:
        raise _fail(
            "ip_network",
            f"{value!r} is not a network: the prefix length is missing",
            "write it like 172.16.40.0/24",
        )
    try:
        return ipaddress.ip_network(text)
    except ValueError as exc:
        try:
            loose = ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise _fail(
                "ip_network",
                f"{value!r} is not a valid network",
                "write it like 172.16.40.0/24",
            ) from None
        raise _fail("ip_network", str(exc), f"did you mean {loose}?") from None


def parse_dhcp_range(value: Any) -> str:
    """A DHCP range ``START-END`` of two addresses of the same family; kept as text."""
    if not isinstance(value, str) or value.count("-") != 1:
        raise _fail(
            "dhcp_range",
            "expected a range START-END",
            "write it like 172.16.50.30-172.16.50.99",
        )
    start, end = (part.strip() for part in value.split("-"))
    try:
        first, last = ipaddress.ip_address(start), ipaddress.ip_address(end)
    except ValueError:
        raise _fail(
            "dhcp_range",
            f"{value!r} is not a range of two IP addresses",
            "write it like 172.16.50.30-172.16.50.99",
        ) from None
    if first.version != last.version:
        raise _fail(
            "dhcp_range", f"{value!r} mixes IPv4 and IPv6", "use two addresses of one family"
        )
    return f"{first}-{last}"


LEASE_TIME = re.compile(r"^(?:(\d+)([smhdw]?)|infinite)$")
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_lease_time(value: Any) -> str:
    """A dnsmasq lease time: seconds, or a number with s/m/h/d/w, or ``infinite``."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not LEASE_TIME.match(value.strip()):
        raise _fail(
            "lease_time",
            f"{value!r} is not a lease time",
            "write it like dnsmasq does: 45m, 1h, 12h, 2d or infinite",
        )
    return value.strip()


def lease_seconds(value: str) -> int | None:
    """Seconds of a lease time accepted by :func:`parse_lease_time`; None for infinite."""
    match = LEASE_TIME.match(value)
    if match is None or match.group(1) is None:
        return None
    return int(match.group(1)) * _UNIT[match.group(2)]


def drop_null_optionals(model: type[BaseModel], data: Any) -> Any:
    """``data`` without the keys written as null that the model does not require:
    ``key:`` with no value means "not given", as in Kubernetes."""
    if not isinstance(data, dict):
        return data
    fields = model.model_fields.items()
    optional = {info.alias or name for name, info in fields if not info.is_required()}
    return {k: v for k, v in data.items() if not (v is None and k in optional)}


IPAddress = Annotated[IPAddr, PlainValidator(parse_ip_address), PlainSerializer(str)]
IPNetwork = Annotated[IPNet, PlainValidator(parse_ip_network), PlainSerializer(str)]
DHCPRange = Annotated[str, PlainValidator(parse_dhcp_range)]
LeaseTime = Annotated[str, PlainValidator(parse_lease_time)]
Port = Annotated[int, Strict(), Field(ge=1, le=65535)]
