"""DHCP over time, on the seed with a two-minute lease on vlan60 (dnsmasq's shortest): with
the server stopped the CNI dhcp daemon's renewals fail, the lease runs out on the server while
net-tools keeps its net2 address (what plugins 1.1.1 do), and verify names the lease and the
fault; after ``start-dhcp`` the daemon's next renewal puts the lease back. Waits on the real
clock (a few minutes), bounded by deadlines, asserting no durations."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from typer.testing import CliRunner
from verifykit import lab_up

from multihome import verify
from multihome.cli import app
from multihome.lab import api
from multihome.spec import load_lab_text, seed_path

NET_TOOLS = "multus-network-attachments/net-tools"
SUBJECT = f"{NET_TOOLS} net2"


def _short_lease() -> str:
    text = seed_path().read_text()
    old = "range: 172.16.60.32-172.16.60.99\n        leaseTime: 1h"
    assert old in text
    return text.replace(old, "range: 172.16.60.32-172.16.60.99\n        leaseTime: 2m", 1)


def _lease_check(lab: str) -> verify.CheckResult:
    report = verify.run(lab)
    return next(c for c in report.checks if (c.id, c.subject) == ("dhcp-lease", SUBJECT))


def _until(what: str, done: Callable[[], bool], deadline: float = 360.0) -> None:
    end = time.monotonic() + deadline
    while not done():
        assert time.monotonic() < end, f"still waiting for {what}"
        time.sleep(5)


def test_a_lease_runs_out_with_the_server_stopped_and_comes_back(tmp_path: Path) -> None:
    with lab_up(load_lab_text(_short_lease(), "short-lease.yaml"), tmp_path) as lab:
        assert _lease_check(lab).status == "pass"
        assert CliRunner().invoke(app, ["fault", "stop-dhcp", "vlan60"]).exit_code == 0
        _until("the lease to run out", lambda: _lease_check(lab).status == "fail")
        check = _lease_check(lab)
        assert "the DHCP server of vlan60 is stopped (fault 1)" in (check.cause or "")
        assert "ran out and was not renewed" in (check.cause or "")
        # the daemon keeps the address on the interface past the lease's end
        shown = subprocess.run(
            api.exec_argv(NET_TOOLS, ["ip", "-j", "-4", "addr", "show", "dev", "net2"], lab),
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        assert json.loads(shown)[0]["addr_info"], shown

        assert CliRunner().invoke(app, ["fault", "start-dhcp", "vlan60"]).exit_code == 0
        _until("the renewed lease", lambda: _lease_check(lab).status == "pass")
        assert verify.run(lab).ok
