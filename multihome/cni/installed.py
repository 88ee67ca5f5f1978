"""The reference CNI plugins installed on this machine: which release they are, and what that
release does with keys newer than it.

The release is what a plugin says about itself when run without ``CNI_COMMAND`` (upstream
builds: ``CNI bridge plugin v1.4.0`` on stderr); Debian builds say ``version unknown``, so
then it is the version of the Debian package that holds the plugin (``dpkg-query``),
without its Debian revision (``1.1.1+ds1-3+b5`` -> 1.1.1).

Keys and the release that brought them, from containernetworking/plugins' history:
the bridge plugin's ``vlanTrunk`` (and ``preserveDefaultVlan``) came in v1.3.0 (commit
090af7db, "bridge: add vlan trunk support"); older plugins decode their config with Go's
encoding/json, which drops keys it has no field for, so they run as if it were not there.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from dataclasses import dataclass

DEBIAN_PLUGIN_DIR = "/usr/lib/cni"
"""Where Debian's containernetworking-plugins puts the plugins (the lab's /opt/cni/bin)."""
BRIDGE_VLAN_TRUNK = (1, 3, 0)
"""The first release whose bridge plugin reads ``vlanTrunk``."""
_ABOUT = re.compile(r"^CNI \S+ plugin v?(\d+)\.(\d+)\.(\d+)", re.MULTILINE)
_UPSTREAM = re.compile(r"^(?:\d+:)?(\d+)\.(\d+)\.(\d+)")
_TIMEOUT = 5.0


@dataclass(frozen=True)
class Release:
    """A release of the reference plugins, and where that was read."""

    version: tuple[int, int, int]
    source: str
    """``Debian's containernetworking-plugins 1.1.1+ds1-3+b5`` or ``bridge v1.4.0 (its own
    version)``."""

    @property
    def text(self) -> str:
        return ".".join(str(n) for n in self.version)

    def at_least(self, version: tuple[int, int, int]) -> bool:
        return self.version >= version


def _about(plugin: str) -> Release | None:
    """The release a plugin reports when run with no CNI_COMMAND (its "about" text)."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    try:
        done = subprocess.run(
            [plugin], env=env, capture_output=True, text=True, timeout=_TIMEOUT, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = _ABOUT.search(done.stderr + done.stdout)
    if m is None:
        return None
    version = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    name = os.path.basename(plugin)
    return Release(version, f"{name} v{'.'.join(m.groups())} (its own version)")


def _debian(plugin: str) -> Release | None:
    """The release of the Debian package that holds ``plugin``."""
    try:
        owner = subprocess.run(
            ["dpkg-query", "-S", plugin],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
        package = owner.stdout.split(":", 1)[0].strip() if owner.returncode == 0 else ""
        if not package or "," in package:
            return None
        found = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Version}", package],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = _UPSTREAM.match(found.stdout.strip()) if found.returncode == 0 else None
    if m is None:
        return None
    version = (int(m.group(1)), int(m.group(2)), int(m.group(3)))
    return Release(version, f"Debian's {package} {found.stdout.strip()}")


@functools.cache
def release(plugin_dir: str = DEBIAN_PLUGIN_DIR, plugin: str = "bridge") -> Release | None:
    """The release of the plugins in ``plugin_dir`` as ``plugin`` shows it; None when the
    plugin is not there or says nothing that can be read."""
    path = os.path.join(plugin_dir, plugin)
    if not os.access(path, os.X_OK):
        return None
    return _about(path) or _debian(path)
