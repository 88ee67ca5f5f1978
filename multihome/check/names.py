"""Name rules of the checks: DNS-1123 subdomains (node names); labels and interface names
are Multus's own rules (:mod:`multihome.multus.validate`), so both judge a name alike."""

from __future__ import annotations

import re

from multihome.multus.validate import dns1123_label_problem, ifname_problem

_DNS1123_SUBDOMAIN = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)

__all__ = ["dns1123_label_problem", "dns1123_subdomain_problem", "ifname_problem"]


def dns1123_subdomain_problem(name: str) -> str | None:
    if not name:
        return "must not be empty"
    if len(name) > 253:
        return f"must be at most 253 characters (has {len(name)})"
    if not _DNS1123_SUBDOMAIN.match(name):
        return (
            "must be lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return None
