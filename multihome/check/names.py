"""Name rules shared by the checks: DNS-1123 labels and subdomains, Linux interface names."""

from __future__ import annotations

import re

_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
IFNAMSIZ = 15


def dns1123_label_problem(name: str) -> str | None:
    if not name:
        return "is empty"
    if len(name) > 63:
        return f"is {len(name)} characters long (at most 63)"
    if not _DNS1123_LABEL.match(name):
        return (
            "must be lower-case letters, digits and '-', starting and ending with a letter or digit"
        )
    return None


def dns1123_subdomain_problem(name: str) -> str | None:
    if not name:
        return "is empty"
    if len(name) > 253:
        return f"is {len(name)} characters long (at most 253)"
    if not _DNS1123_SUBDOMAIN.match(name):
        return (
            "must be lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return None


def ifname_problem(name: str) -> str | None:
    """Why the kernel would refuse this interface name (dev_valid_name), or None."""
    if not name:
        return "is empty"
    if len(name) > IFNAMSIZ:
        return f"is {len(name)} characters long (Linux allows at most {IFNAMSIZ})"
    if name in (".", ".."):
        return "can't be '.' or '..'"
    bad = sorted({c for c in name if c in "/:" or c.isspace()})
    if bad:
        return "contains " + ", ".join(repr(c) for c in bad)
    return None
