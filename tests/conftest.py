"""Session guard: the test run fails if it leaves a namespace, host link or daemon behind."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

WATCHED_PROCESSES = ("dnsmasq", "cni/dhcp", "multihome")


def _netns() -> set[str]:
    try:
        return set(os.listdir("/run/netns"))
    except FileNotFoundError:
        return set()


def _links() -> set[str]:
    return set(os.listdir("/sys/class/net"))


def _processes() -> dict[int, str]:
    found: dict[int, str] = {}
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            raw = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        cmd = raw.replace(b"\0", b" ").decode(errors="replace").strip()
        if any(word in cmd for word in WATCHED_PROCESSES) and "pytest" not in cmd:
            found[int(entry)] = cmd
    return found


def _snapshot() -> tuple[set[str], set[str], dict[int, str]]:
    return _netns(), _links(), _processes()


_BEFORE: tuple[set[str], set[str], dict[int, str]] | None = None


def pytest_sessionstart(session: pytest.Session) -> None:
    global _BEFORE
    _BEFORE = _snapshot()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _BEFORE is None or hasattr(session.config, "workerinput"):
        return
    ns0, links0, procs0 = _BEFORE
    ns1, links1, procs1 = _snapshot()
    leaks = []
    if ns1 - ns0:
        leaks.append(f"network namespaces: {sorted(ns1 - ns0)}")
    if links1 - links0:
        leaks.append(f"host links: {sorted(links1 - links0)}")
    new_procs = {pid: cmd for pid, cmd in procs1.items() if pid not in procs0}
    if new_procs:
        leaks.append(f"processes: {new_procs}")
    if leaks:
        sys.stderr.write("\nLEAK: the test run left these behind:\n  " + "\n  ".join(leaks) + "\n")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
