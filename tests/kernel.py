"""Test helpers for kernel objects: throw-away network namespaces and feature probes.

Every namespace a test makes is named ``mhtest-...`` and removed by the context manager
that made it, pass or fail; the session guard in conftest.py fails the run if any is left.
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator

import pytest

PREFIX = "mhtest-"
CNI_BIN_DIR = "/usr/lib/cni"


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False)


@functools.cache
def netns_unavailable_reason() -> str | None:
    """Why namespace tests can't run here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root to create network namespaces"
    if shutil.which("ip") is None:
        return "iproute2 (ip) is not installed"
    name = f"{PREFIX}probe-{uuid.uuid4().hex[:6]}"
    made = _run("ip", "netns", "add", name)
    if made.returncode != 0:
        return f"network namespaces unavailable: {made.stderr.strip()}"
    _run("ip", "netns", "delete", name)
    return None


@functools.cache
def link_kind_unavailable_reason(kind: str) -> str | None:
    """Why links of ``kind`` (macvlan, bridge, ...) can't be made here, or None."""
    base = netns_unavailable_reason()
    if base:
        return base
    with netns("probe") as ns:
        if kind == "macvlan":
            _run("ip", "-n", ns, "link", "add", "p0", "type", "veth", "peer", "p1")
            made = _run("ip", "-n", ns, "link", "add", "m0", "link", "p0", "type", "macvlan")
        else:
            made = _run("ip", "-n", ns, "link", "add", "k0", "type", kind)
    if made.returncode != 0:
        return f"this kernel can't make {kind} links: {made.stderr.strip()}"
    return None


needs_netns = pytest.mark.skipif(
    "netns_unavailable_reason() is not None",
    reason="needs root and network namespaces",
)


def require_netns() -> None:
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(reason)


def require_link_kind(kind: str) -> None:
    reason = link_kind_unavailable_reason(kind)
    if reason:
        pytest.skip(reason)


def require_cni_plugins() -> None:
    if not os.path.exists(os.path.join(CNI_BIN_DIR, "macvlan")):
        pytest.skip(
            f"CNI reference plugins not found in {CNI_BIN_DIR} (containernetworking-plugins)"
        )


@contextlib.contextmanager
def netns(label: str = "ns") -> Iterator[str]:
    """A new named network namespace (``ip netns``), deleted on exit; yields its name."""
    name = f"{PREFIX}{label}-{uuid.uuid4().hex[:6]}"
    made = _run("ip", "netns", "add", name)
    if made.returncode != 0:
        raise RuntimeError(f"ip netns add {name}: {made.stderr.strip()}")
    try:
        _run("ip", "-n", name, "link", "set", "lo", "up")
        yield name
    finally:
        _run("ip", "netns", "delete", name)


def netns_path(name: str) -> str:
    return f"/run/netns/{name}"


def ip(ns: str, *args: str) -> str:
    """Run ``ip -n NS ARGS`` and return stdout; raise with stderr on failure."""
    done = _run("ip", "-n", ns, *args)
    if done.returncode != 0:
        raise RuntimeError(f"ip -n {ns} {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout
