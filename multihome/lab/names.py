"""Checks for every name the lab passes to the kernel or puts in a path.

Lab, node and namespace names become directory and file names (state dir, /run/netns/NAME):
DNS-1123-ish labels, at most 63 characters, lower-case letters, digits, ``-`` and ``.``
inside. Interface names follow the kernel's rules (IFNAMSIZ): 1 to 15 characters, not ``.``
or ``..``, no ``/``, ``:``, whitespace or control characters. Each check raises
``InvalidName`` (a ``ValueError``) naming what was wrong, and returns the name unchanged.
"""

from __future__ import annotations

import hashlib
import os
import re

MAX_IFNAME = 15
MAX_NAME = 63

_NAME = re.compile(r"[a-z0-9]([a-z0-9.\-]*[a-z0-9])?")
_SYSCTL = re.compile(r"[a-z0-9_]+(\.[a-zA-Z0-9_\-]+)+")


class InvalidName(ValueError):
    """A name that must not reach the kernel or a path."""


def check_name(name: object, what: str = "name") -> str:
    """A lab, node or namespace name: DNS-1123-ish, safe as one path component."""
    if not isinstance(name, str) or not name:
        raise InvalidName(f"{what} must be a non-empty string, got {name!r}")
    if len(name) > MAX_NAME:
        raise InvalidName(f"{what} {name!r} is longer than {MAX_NAME} characters")
    if not _NAME.fullmatch(name) or ".." in name:
        raise InvalidName(
            f"{what} {name!r} is invalid: use lower-case letters, digits, '-' and '.', "
            "starting and ending with a letter or digit"
        )
    return name


def check_ifname(name: object, what: str = "interface name") -> str:
    """A network interface name the kernel accepts."""
    if not isinstance(name, str) or not name:
        raise InvalidName(f"{what} must be a non-empty string, got {name!r}")
    if len(name.encode()) > MAX_IFNAME:
        raise InvalidName(f"{what} {name!r} is longer than {MAX_IFNAME} characters")
    if name in (".", ".."):
        raise InvalidName(f"{what} {name!r} is not a valid interface name")
    bad = [c for c in name if c in "/:" or c.isspace() or not c.isprintable()]
    if bad:
        raise InvalidName(f"{what} {name!r} contains {bad[0]!r}")
    return name


def check_sysctl(key: object) -> str:
    """A sysctl key such as ``net.ipv4.ip_forward`` (or ``net.ipv4.conf.ens192.rp_filter``)."""
    if not isinstance(key, str) or not _SYSCTL.fullmatch(key):
        raise InvalidName(f"sysctl key {key!r} is invalid")
    return key


def check_abs_path(path: object, what: str = "path") -> str:
    """An absolute, normalised path without ``..`` components."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidName(f"{what} must be an absolute path, got {path!r}")
    if os.path.normpath(path) != path or "\0" in path:
        raise InvalidName(f"{what} {path!r} is not a normalised path")
    return path


def host_netns(host: str) -> str:
    """The network namespace of a host of the lab."""
    return fit(f"host-{host}")


def dhcp_netns(network: str) -> str:
    """The network namespace of a network's DHCP server."""
    return fit(f"dhcp-{network}")


def fit(name: str, limit: int = MAX_NAME) -> str:
    """``name`` cut to ``limit`` characters, a hash of the whole keeping it unique."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:10]
    return f"{name[: limit - 11].rstrip('.-')}-{digest}"


def switch_port(kind: str, index: int, nic: str) -> str:
    """The segment's end of a machine's NIC (in the sandbox, a port of the network's
    bridge): ``n<index>-<nic>`` for node ``index``, ``h...`` for a host; a longer one cut
    to 15 with a hash of the whole, so ``enp0s31f6.100`` and ``enp0s31f6.101`` (two VLANs of
    one trunk) get two ports."""
    return fit(f"{kind}{index}-{nic}", 15)
