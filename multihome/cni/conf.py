"""Loading and validating CNI network configs: a conflist, or a single conf promoted to a list.

Mirrors libcni's ConfListFromBytes / ConfFromBytes / ConfListFromConf, with stricter checks:
cniVersion 0.3.0 to 1.1.0 or none at all (libcni then sends an empty version and the plugins
answer with a 0.1.0 result), the network name and plugin types follow libcni's ID rule (they reach
file names), ``capabilities`` is a map of booleans and ``ipam`` an object. Every other key is
kept untouched in ``raw`` and reaches the plugin as given. Errors are ConfigError naming the
field, e.g. ``plugins[1].type: missing``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ConfigError
from .names import validate_network_name, validate_plugin_type
from .version import UNVERSIONED, check_supported


@dataclass(frozen=True, eq=False)
class NetworkConfig:
    """One plugin's entry in a list; ``raw`` is its JSON object exactly as loaded."""

    type: str
    raw: dict[str, Any]

    @property
    def capabilities(self) -> dict[str, bool]:
        caps = self.raw.get("capabilities") or {}
        return {k: v for k, v in caps.items() if v is True}

    @property
    def ipam_type(self) -> str | None:
        ipam = self.raw.get("ipam")
        if isinstance(ipam, Mapping) and isinstance(ipam.get("type"), str):
            return str(ipam["type"])
        return None


@dataclass(frozen=True, eq=False)
class NetworkConfigList:
    """A network: name, version and the plugin chain. ``config_bytes`` is the list's JSON
    (as loaded, or libcni's promoted form for a single conf): the result cache stores it."""

    name: str
    cni_version: str
    plugins: tuple[NetworkConfig, ...]
    disable_check: bool
    disable_gc: bool
    raw: dict[str, Any]
    config_bytes: bytes

    @property
    def ipam_types(self) -> list[str]:
        return [t for t in (p.ipam_type for p in self.plugins) if t]


def load_network_config(data: str | bytes | Mapping[str, Any]) -> NetworkConfigList:
    """Load a conflist, or a conf (promoted to a one-plugin list as libcni does)."""
    raw, source = _decode(data)
    if "plugins" in raw:
        return _load_list(raw, source)
    return _promote(_load_conf(raw))


def _decode(data: str | bytes | Mapping[str, Any]) -> tuple[dict[str, Any], bytes | None]:
    if isinstance(data, Mapping):
        try:
            text = json.dumps(data)
        except (TypeError, ValueError) as exc:
            raise ConfigError("config", f"is not JSON-serializable: {exc}") from None
        raw, source = json.loads(text), None
    else:
        source = data.encode() if isinstance(data, str) else bytes(data)
        try:
            raw = json.loads(source)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigError("config", f"is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError("config", f"must be a JSON object, got {type(raw).__name__}")
    return raw, source


def _load_list(raw: dict[str, Any], source: bytes | None) -> NetworkConfigList:
    name = validate_network_name(_required(raw, "name", "name"), "name")
    version = check_supported(_version(raw), "cniVersion")
    plugins_raw = raw["plugins"]
    if not isinstance(plugins_raw, list):
        raise ConfigError("plugins", f"must be a list, got {type(plugins_raw).__name__}")
    if not plugins_raw:
        raise ConfigError("plugins", "must hold at least one plugin")
    plugins = tuple(_plugin(p, f"plugins[{n}]") for n, p in enumerate(plugins_raw))
    return NetworkConfigList(
        name=name,
        cni_version=version,
        plugins=plugins,
        disable_check=_flag(raw, "disableCheck", ""),
        disable_gc=_flag(raw, "disableGC", ""),
        raw=raw,
        config_bytes=source if source is not None else json.dumps(raw).encode(),
    )


def _load_conf(raw: dict[str, Any]) -> NetworkConfig:
    validate_network_name(_required(raw, "name", "name"), "name")
    check_supported(_version(raw), "cniVersion")
    return _plugin(raw, "")


def _promote(conf: NetworkConfig) -> NetworkConfigList:
    """libcni's ConfListFromConf: {name, cniVersion, plugins: [conf]}."""
    raw = {
        "name": conf.raw["name"],
        "cniVersion": _version(conf.raw),
        "plugins": [conf.raw],
    }
    return NetworkConfigList(
        name=raw["name"],
        cni_version=raw["cniVersion"],
        plugins=(conf,),
        disable_check=False,
        disable_gc=False,
        raw=raw,
        config_bytes=json.dumps(raw).encode(),
    )


def _plugin(value: Any, where: str) -> NetworkConfig:
    prefix = f"{where}." if where else ""
    if not isinstance(value, dict):
        raise ConfigError(where or "config", f"must be a JSON object, got {type(value).__name__}")
    kind = validate_plugin_type(_required(value, "type", f"{prefix}type"), f"{prefix}type")
    caps = value.get("capabilities")
    if caps is not None:
        if not isinstance(caps, dict):
            raise ConfigError(f"{prefix}capabilities", "must be an object of true/false")
        for key, flag in caps.items():
            if not isinstance(flag, bool):
                raise ConfigError(f"{prefix}capabilities.{key}", "must be true or false")
    ipam = value.get("ipam")
    if ipam is not None:
        if not isinstance(ipam, dict):
            raise ConfigError(f"{prefix}ipam", f"must be an object, got {type(ipam).__name__}")
        if "type" in ipam:
            validate_plugin_type(ipam["type"], f"{prefix}ipam.type")
    return NetworkConfig(type=kind, raw=value)


def _required(raw: Mapping[str, Any], key: str, field: str) -> Any:
    if key not in raw or raw[key] is None:
        raise ConfigError(field, "missing")
    return raw[key]


def _version(raw: Mapping[str, Any]) -> Any:
    """``cniVersion``; none (or null) is libcni's empty version, which it sends as is."""
    value = raw.get("cniVersion")
    return UNVERSIONED if value is None else value


def _flag(raw: Mapping[str, Any], key: str, prefix: str) -> bool:
    value = raw.get(key, False)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ConfigError(f"{prefix}{key}", f"must be true or false, got {value!r}")
