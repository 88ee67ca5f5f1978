"""CNI spec versions: parsing, ordering and the choice of version to send a plugin."""

from __future__ import annotations

import functools
from collections.abc import Iterable

from .errors import ConfigError

# Versions whose configs and results this runtime understands.
SUPPORTED_VERSIONS: tuple[str, ...] = ("0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
# Result versions plugins answer a config without cniVersion with (libcni takes them as they
# come and converts when asked; the 1.1.1 reference plugins answer 0.1.0).
LEGACY_RESULT_VERSIONS: tuple[str, ...] = ("0.1.0", "0.2.0")
UNVERSIONED = ""
"""The cniVersion of a config that declares none: libcni sends it as is (an empty string),
and the CNI library reads it as 0.1.0."""
CURRENT_VERSION = "1.1.0"
LOWEST_VERSION = "0.3.0"

Version = tuple[int, int, int]


@functools.lru_cache(maxsize=64)  # a handful of strings, parsed at every plugin call
def parse_version(text: str) -> Version:
    """'1.0.0' -> (1, 0, 0), '' -> (0, 1, 0) as the CNI library reads it; ValueError on
    anything else."""
    if text == UNVERSIONED:
        return (0, 1, 0)
    parts = text.split(".")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise ValueError(f"{text!r} is not a version (want MAJOR.MINOR.PATCH)")
    return int(parts[0]), int(parts[1]), int(parts[2])


def check_supported(text: object, field: str = "cniVersion") -> str:
    """The version if this runtime handles it, else ConfigError naming ``field``."""
    if not isinstance(text, str):
        raise ConfigError(field, f"must be a string, got {type(text).__name__}")
    if text != UNVERSIONED and text not in SUPPORTED_VERSIONS:
        raise ConfigError(
            field,
            f"{text!r} is not supported (supported: {', '.join(SUPPORTED_VERSIONS)})",
        )
    return text


def at_least(text: str, minimum: str) -> bool:
    return parse_version(text) >= parse_version(minimum)


def negotiate(config_version: str, plugin_supports: Iterable[str]) -> str | None:
    """Highest version the plugin supports that is <= the config's and that this runtime
    understands (0.3.0 and up: older versions have no chained results), or None."""
    limit = parse_version(config_version)
    floor = parse_version(LOWEST_VERSION)
    best: tuple[Version, str] | None = None
    for text in plugin_supports:
        if text not in SUPPORTED_VERSIONS:
            continue
        v = parse_version(text)
        if floor <= v <= limit and (best is None or v > best[0]):
            best = (v, text)
    return best[1] if best else None
