"""The report's outputs (JSON, JUnit XML, table) and verify's exit code without a lab; no
lab needed."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from multihome.cli import app
from multihome.verify import CheckResult, Report

REPORT = Report(
    lab="demo",
    checks=(
        CheckResult("interfaces", "ns/a", "a has eth0, net1", "pass", ("eth0 10.42.0.2/24",)),
        CheckResult(
            "default-route",
            "ns/a",
            "a's default route is via eth0 only",
            "fail",
            ("default via 172.16.50.1 dev net1", "default via 10.42.0.1 dev eth0"),
            "the DHCP server on vlan50 offers a router",
        ),
        CheckResult("pod-to-pod", "cluster network", "pods reach", "skip", cause="one node"),
    ),
    elapsed=0.5,
)


def test_json_counts_and_fields() -> None:
    doc = json.loads(REPORT.json_text())
    assert (doc["ok"], doc["passed"], doc["failed"], doc["skipped"]) == (False, 1, 1, 1)
    assert doc["checks"][1]["cause"] == "the DHCP server on vlan50 offers a router"
    assert REPORT.summary() == "FAIL demo: 1 passed, 1 failed, 1 skipped in 0.50 s"


def test_junit_has_a_failure_and_a_skip() -> None:
    suite = ET.fromstring(REPORT.junit()).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("3", "1", "1")
    cases = suite.findall("testcase")
    failure = cases[1].find("failure")
    assert (
        failure is not None
        and failure.get("message") == "the DHCP server on vlan50 offers a router"
    )
    assert "default via 172.16.50.1 dev net1" in (failure.text or "")
    assert cases[2].find("skipped") is not None


def test_table_shows_the_cause_of_a_failure() -> None:
    console = Console(width=120, record=True)
    console.print(REPORT.table())
    text = console.export_text()
    assert "likely cause: the DHCP server on vlan50 offers a router" in text
    assert "default via 172.16.50.1 dev net1" in text


def test_verify_without_a_lab_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MULTIHOME_STATE_DIR", str(tmp_path))
    done = CliRunner().invoke(app, ["verify"])
    assert done.exit_code == 2
    assert "no lab is up" in done.output
