"""Faults as an unprivileged user: every verb inside the rootless seed lab (its links, tbf on
a NIC, its processes frozen), undone by clear, and down after faults leaves nothing. The
test runs as root and drops to ``nobody`` with setpriv."""

from __future__ import annotations

import json
import os
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


WRK1 = "multi-homed-wrk-1"


def test_faults_as_nobody(as_nobody: tuple[list[str], Path]) -> None:
    mh, state = as_nobody
    before = host_snapshot()
    up = _run(mh, "up")
    if "user namespaces" in up.stderr and up.returncode == 2:
        pytest.skip(f"unprivileged user namespaces are not allowed here: {up.stderr.strip()}")
    assert up.returncode == 0, up.stderr
    page = ["exec", NET_TOOLS, "--", "curl", "-s", "--max-time", "2", "172.16.60.31"]
    assert _run(mh, *page).returncode == 0

    for fault in (
        ("cut", "vlan60"),
        ("stop-dhcp", "vlan50"),
        ("link-down", f"{WRK1}:ens224"),
        ("rate", "multi-homed-wrk-2:ens224", "5mbit"),
        ("stop", "multi-homed-wrk-3"),
    ):
        done = _run(mh, "fault", *fault)
        assert done.returncode == 0, done.stderr
    assert _run(mh, *page).returncode != 0  # vlan60 is cut: net2 reaches nothing
    qdisc = _run(mh, "exec", "multi-homed-wrk-2", "--", "tc", "qdisc", "show", "dev", "ens224")
    assert "tbf" in qdisc.stdout, qdisc.stderr
    listed = json.loads(_run(mh, "fault", "list", "-o", "json").stdout)
    assert [f["verb"] for f in listed] == ["cut", "stop-dhcp", "link-down", "rate", "stop"]

    cleared = _run(mh, "fault", "clear")
    assert cleared.returncode == 0, cleared.stderr
    # mended: the page comes back (ARP of a segment just back may take a try or two)
    assert any(_run(mh, *page).returncode == 0 for _ in range(5))
    assert _run(mh, "verify").returncode == 0

    for fault in (("stop-dhcp", "vlan60"), ("stop", WRK1)):  # down with faults in place
        assert _run(mh, "fault", *fault).returncode == 0
    down = _run(mh, "down")
    assert down.returncode == 0, down.stderr
    assert list(state.iterdir()) == []
    assert host_snapshot() == before
