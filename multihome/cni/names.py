"""libcni's rules for the names that reach paths and the kernel (pkg/utils/utils.go).

Network names and container IDs end up in cache file names; interface names reach the kernel.
Each check raises ConfigError naming the field.
"""

from __future__ import annotations

import re

from .errors import ConfigError

_ID = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.\-]*")
MAX_IFNAME = 15  # IFNAMSIZ - 1


def validate_network_name(name: object, field: str = "name") -> str:
    return _validate_id(name, field)


def validate_container_id(cid: object, field: str = "container_id") -> str:
    return _validate_id(cid, field)


def validate_plugin_type(kind: object, field: str = "type") -> str:
    """A plugin type is looked up as a file name in CNI_PATH: same rule as an ID."""
    return _validate_id(kind, field)


def _validate_id(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(field, f"must be a string, got {type(value).__name__}")
    if not value:
        raise ConfigError(field, "must not be empty")
    if not _ID.fullmatch(value):
        raise ConfigError(
            field, f"{value!r} is invalid: it must match ^[a-zA-Z0-9][a-zA-Z0-9_.\\-]*$"
        )
    return value


def validate_ifname(name: object, field: str = "ifname") -> str:
    if not isinstance(name, str):
        raise ConfigError(field, f"must be a string, got {type(name).__name__}")
    if not name:
        raise ConfigError(field, "must not be empty")
    if len(name) > MAX_IFNAME:
        raise ConfigError(field, f"{name!r} is longer than {MAX_IFNAME} characters")
    if name in (".", ".."):
        raise ConfigError(field, f"{name!r} is not a valid interface name")
    for ch in name:
        if ch in "/:" or ch.isspace():
            raise ConfigError(field, f"{name!r} must not contain {ch!r}")
    return name
