"""Text that reads well where it lands: piped into a log, show and verify print plain
aligned columns at their natural width (no name or address split mid-token), and a lab
that names no cluster version shows the version it stands for."""

from __future__ import annotations

import subprocess
import sys

import pytest

from multihome import cli
from multihome.verify.report import CheckResult, Report


def test_show_piped_is_plain_and_whole() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "multihome", "show"], capture_output=True, text=True, check=True
    )
    assert "┃" not in done.stdout and "│" not in done.stdout
    row = next(line for line in done.stdout.splitlines() if line.startswith("multi-homed-wrk-1 "))
    assert "ens192=vlan40(172.16.40.47), ens224=vlan50, ens256=vlan60" in row
    header = next(line for line in done.stdout.splitlines() if line.startswith("NAME     VLAN"))
    assert header.split() == ["NAME", "VLAN", "SUBNET", "GATEWAY", "MTU", "DHCP"]


def test_verify_report_plain_keeps_evidence_whole() -> None:
    long = "instance-manager-e-6978d99a2c1d1ca5280807c33f7089f7 on multi-homed-wrk-1 -> 172.16.50.93:10001, 256 KiB echoed back"
    report = Report(
        "lab",
        (
            CheckResult(
                "longhorn-segment",
                "ns/nad",
                "replication crosses vlan50",
                "fail",
                (long,),
                "the NAD's master is ens256",
            ),
            CheckResult("nics", "node-1", "NICs are up", "pass", ("ens192 up on vlan40", "more")),
        ),
        0.1,
    )
    lines = report.plain().splitlines()
    assert lines[0].split() == ["CHECK", "RESULT", "WHAT", "AND", "EVIDENCE"]
    assert lines[1].startswith("longhorn-segment   FAIL     replication crosses vlan50")
    assert lines[2].strip() == long
    assert lines[3].strip() == "likely cause: the NAD's master is ens256"
    assert lines[4].startswith("nics               PASS     NICs are up")
    assert "more" not in report.plain()  # a pass shows its first evidence line


def test_nodes_without_a_cluster_version(capsys: pytest.CaptureFixture[str]) -> None:
    from multihome.render.kube import schema_version

    node = {"name": "n1", "roles": "worker", "version": None}
    cli._print_nodes({"nodes": [node], "created": 0, "running": True}, wide=False)
    shown = capsys.readouterr().out
    assert "None" not in shown
    assert f"v{schema_version(None).version}" in shown.splitlines()[1]
