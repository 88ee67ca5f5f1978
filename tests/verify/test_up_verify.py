"""``multihome up --verify``: the lab is built, then verified, in one command; its exit code
is verify's (root only)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from labkit import host_snapshot, sandbox_unavailable_reason
from typer.testing import CliRunner

from multihome.cli import app
from multihome.lab import api

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="up runs as root here"),
    pytest.mark.skipif(not os.path.isdir("/usr/lib/cni"), reason="containernetworking-plugins"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq"), reason="dnsmasq-base missing"),
]


def test_up_verify_builds_then_proves_the_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reason = sandbox_unavailable_reason()
    if reason:
        pytest.skip(reason)
    monkeypatch.setenv("MULTIHOME_STATE_DIR", str(tmp_path / "state"))
    before = host_snapshot()
    try:
        result = CliRunner().invoke(app, ["up", "--verify"])
        assert result.exit_code == 0, result.output
        assert "lab multi-homed up in" in result.output
        # 60: the nodes' NICs, DHCP servers and daemons, the 8 DHCP leases, net-tools and Longhorn 1.4's six instance-managers (the seed's era)
        assert "OK multi-homed: 60 passed, 0 failed" in result.output
        again = CliRunner().invoke(app, ["up", "--verify"])  # the same file: verify only
        assert again.exit_code == 0, again.output
        assert "already up and matches the file" in again.output
        assert "OK multi-homed: 60 passed, 0 failed" in again.output
    finally:
        api.down("multi-homed")
    assert host_snapshot() == before
