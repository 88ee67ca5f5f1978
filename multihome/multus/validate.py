"""Value checks shared by the selection parser and the delegate builder.

Each check mirrors what Multus (Go) accepts: DNS-1123 labels for names and namespaces,
kernel interface names, ``net.ParseIP`` / ``net.ParseCIDR`` for addresses and
``net.ParseMAC`` for MAC addresses and InfiniBand GUIDs. Every function returns ``None``
when the value is fine and a short reason (for an error message) when it is not.
"""

from __future__ import annotations

import ipaddress
import re

_DNS1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
DNS1123_LABEL_MAX = 63
IFNAME_MAX = 15  # IFNAMSIZ - 1, in bytes
_IFNAME_FORBIDDEN = frozenset("/: \t\n\v\f\r")
_DIGITS = re.compile(r"[0-9]+")
_HEX = frozenset("0123456789abcdefABCDEF")


def dns1123_label_problem(value: str) -> str | None:
    """Why ``value`` is not a DNS-1123 label (``[a-z0-9]([-a-z0-9]*[a-z0-9])?``, <= 63)."""
    if not value:
        return "must not be empty"
    if len(value) > DNS1123_LABEL_MAX:
        return f"must be at most {DNS1123_LABEL_MAX} characters (has {len(value)})"
    if not _DNS1123_LABEL.fullmatch(value):
        return (
            "must be a DNS-1123 label: lower case alphanumeric characters or '-', "
            "starting and ending with an alphanumeric character"
        )
    return None


def ifname_problem(value: str) -> str | None:
    """Why ``value`` can't be a network interface name (kernel, libcni and Multus rules)."""
    if not value:
        return "must not be empty"
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > IFNAME_MAX:
        return f"must be at most {IFNAME_MAX} bytes (has {size})"
    if value in (".", ".."):
        return "must not be '.' or '..'"
    bad = sorted({c for c in value if c in _IFNAME_FORBIDDEN})
    if bad:
        shown = ", ".join(repr(c) for c in bad)
        return f"must not contain '/', ':' or whitespace (found {shown})"
    return None


def parse_ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in ``value`` as Go's ``net.ParseIP`` reads it, or None."""
    if not value or "%" in value or not value.isascii():
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def ip_problem(value: str) -> str | None:
    """Why ``value`` is not an IP address."""
    return None if parse_ip(value) is not None else "is not a valid IP address"


def ip_or_cidr_problem(value: str) -> str | None:
    """Why ``value`` is neither an IP address nor ``ADDRESS/PREFIXLEN`` (Go ParseCIDR)."""
    if "/" not in value:
        return None if parse_ip(value) is not None else "is not a valid IP address or CIDR"
    address, _, prefix = value.partition("/")
    parsed = parse_ip(address)
    if parsed is None:
        return "is not a valid CIDR: bad address part"
    if not _DIGITS.fullmatch(prefix) or int(prefix) > parsed.max_prefixlen:
        return f"is not a valid CIDR: prefix length must be 0 to {parsed.max_prefixlen}"
    return None


def mac_problem(value: str) -> str | None:
    """Why ``value`` is not a hardware address as Go's ``net.ParseMAC`` accepts it.

    Accepted: 6, 8 or 20 octets written ``xx:xx:..``, ``xx-xx-..`` or ``xxxx.xxxx.xxxx``.
    """
    reason = "is not a valid MAC address (6, 8 or 20 octets, e.g. 02:00:00:00:00:01)"
    if len(value) < 14:
        return reason
    if value[2] in ":-":
        sep = value[2]
        if (len(value) + 1) % 3 != 0 or (len(value) + 1) // 3 not in (6, 8, 20):
            return reason
        groups = value.split(sep)
        width = 2
    elif value[4] == ".":
        if (len(value) + 1) % 5 != 0 or 2 * (len(value) + 1) // 5 not in (6, 8, 20):
            return reason
        groups = value.split(".")
        width = 4
    else:
        return reason
    if all(len(g) == width and set(g) <= _HEX for g in groups):
        return None
    return reason


def go_ip_string(value: str) -> str:
    """``value`` (a valid IP) as Go's ``net.IP.String()`` writes it: an IPv4-mapped IPv6
    address as IPv4 (``::ffff:1.2.3.4`` -> ``1.2.3.4``), IPv6 in RFC 5952 form."""
    address = parse_ip(value)
    if address is None:
        raise ValueError(f"{value!r} is not an IP address")
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def go_ip_family(value: str) -> int:
    """4 or 6 as Multus counts a default-route gateway (``ip.To4() != nil``): an IPv4 or
    IPv4-mapped address is 4; anything else, the empty IP included, is 6."""
    address = parse_ip(value) if value else None
    if address is None:
        return 6
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is None:
        return 6
    return 4


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t",
               "\v": "\\v", "\\": "\\\\", '"': '\\"'}  # fmt: skip


def go_quote(value: str) -> str:
    """Go's ``%q`` of a string (``strconv.Quote``)."""
    out = ['"']
    for ch in value:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch == "\ufffd" or ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)
