"""The seed lab as an unprivileged user, end to end through the command line: up, get,
exec (addresses from DHCP, the welcome page over net2), down; nothing left behind and the
host's network untouched. The test runs as root and drops to ``nobody`` with setpriv."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import NOBODY, host_snapshot, python_for

NET_TOOLS = "multus-network-attachments/net-tools"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody (setpriv)"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) missing"),
    pytest.mark.skipif(not os.path.isdir("/usr/lib/cni"), reason="containernetworking-plugins"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq"), reason="dnsmasq-base missing"),
]


@pytest.fixture
def as_nobody() -> Iterator[tuple[list[str], Path]]:
    python = python_for(NOBODY)
    if python is None:
        pytest.skip("no Python that uid 65534 can run with multihome importable")
    base = Path(tempfile.mkdtemp(prefix="mh-unpriv-up-"))  # /tmp/pytest-of-root is root's
    state = base / "state"
    state.mkdir()
    os.chown(state, NOBODY, NOBODY)
    base.chmod(0o755)
    argv = [
        "setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups",
        *python[:2], f"MULTIHOME_STATE_DIR={state}", *python[2:],
        "-c", "from multihome.cli import main; main()",
    ]  # fmt: skip
    try:
        yield argv, state
    finally:
        subprocess.run([*argv, "down"], capture_output=True, check=False, cwd="/", timeout=60)
        shutil.rmtree(base, ignore_errors=True)


def _run(argv: list[str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, check=False, cwd="/", timeout=120
    )


def test_seed_up_exec_down_as_nobody(as_nobody: tuple[list[str], Path]) -> None:
    mh, state = as_nobody
    before = host_snapshot()
    up = _run(mh, "up")
    if "user namespaces" in up.stderr and up.returncode == 2:
        pytest.skip(f"unprivileged user namespaces are not allowed here: {up.stderr.strip()}")
    assert up.returncode == 0, up.stderr
    assert re.search(r"instance-manager-r-[0-9a-f]{32}", up.stdout)  # Longhorn 1.4's

    pods = json.loads(_run(mh, "get", "pods", "-o", "json").stdout)
    assert [p["phase"] for p in pods["items"]] == ["Running"] * 7

    links = json.loads(_run(mh, "exec", NET_TOOLS, "--", "ip", "-j", "-4", "addr").stdout)
    addrs = {
        link["ifname"]: ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}")
        for link in links
        for a in link["addr_info"]
    }
    assert addrs["net1"].network == ipaddress.ip_network("172.16.50.0/24")
    assert addrs["net2"].network == ipaddress.ip_network("172.16.60.0/24")
    page = _run(mh, "exec", NET_TOOLS, "--", "curl", "-s", "--max-time", "5", "172.16.60.31")
    assert page.returncode == 0 and "Welcome to nginx!" in page.stdout

    down = _run(mh, "down")
    assert down.returncode == 0, down.stderr
    assert list(state.iterdir()) == []
    assert host_snapshot() == before
