"""multihome verify on the seed lab: every check passes, and the measurements behind the
segment checks really show the traffic on vlan40 (Canal) and vlan50 (Longhorn)."""

from __future__ import annotations

import importlib
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner
from verifykit import lab_up

from multihome import verify
from multihome.cli import app
from multihome.spec import load_lab

SEED_CHECKS = {
    "nics": 6,
    "dhcp-server": 2,
    "dhcp-daemon": 3,
    # a current lease for each dhcp interface: net-tools' net1 and net2, six lhnet1
    "dhcp-lease": 8,
    # net-tools and Longhorn 1.4's six instance-managers (an engine and a replica one per agent)
    "interfaces": 7,
    "network-status": 7,
    "default-route": 7,
    "pod-to-pod": 1,
    "canal-segment": 1,
    "reach": 8,
    "isolation": 6,
    "node-ip": 1,
    "longhorn-reach": 1,
    "longhorn-segment": 1,
    "expect": 1,
}


@pytest.fixture(scope="module")
def seed_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with lab_up(load_lab(None), tmp_path_factory.mktemp("verify-seed")) as name:
        yield name


@pytest.fixture(scope="module")
def seed(seed_lab: str) -> verify.Report:
    return verify.run(seed_lab)


def test_kernel_read_split_over_workers_finds_the_same(
    seed_lab: str, seed: verify.Report, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large lab's kernel is read by one worker per CPU, each a share of the namespaces:
    forced here on the seed, the verdicts are the same as one worker's."""
    collect = importlib.import_module("multihome.verify.collect")  # the function shadows it
    monkeypatch.setattr(collect, "KERNEL_READS_PER_WORKER", 1)
    monkeypatch.setattr(collect.os, "cpu_count", lambda: 3)
    split = verify.run(seed_lab)
    assert [(c.name, c.status) for c in split.checks] == [(c.name, c.status) for c in seed.checks]


def test_seed_passes_every_check(seed: verify.Report) -> None:
    failed = [f"{c.name}: {c.evidence} / {c.cause}" for c in seed.checks if c.status != "pass"]
    assert failed == []
    counts: dict[str, int] = {}
    for check in seed.checks:
        counts[check.id] = counts.get(check.id, 0) + 1
    assert counts == SEED_CHECKS
    assert seed.ok


def _kib(evidence: tuple[str, ...], network: str) -> int:
    """What the evidence says entered ``network``'s segment, in KiB (0 for a few bytes)."""
    found = re.search(rf"{network} \+(\d+) (KiB|B)", " ".join(evidence))
    assert found, evidence
    return int(found.group(1)) if found.group(2) == "KiB" else 0


def test_seed_segments_are_measured(seed: verify.Report) -> None:
    checks = {c.id: c for c in seed.checks}
    canal = checks["canal-segment"].evidence
    assert _kib(canal, "vlan40") >= 256 and _kib(canal, "vlan50") == _kib(canal, "vlan60") == 0
    longhorn = checks["longhorn-segment"].evidence
    assert _kib(longhorn, "vlan50") >= 256 and _kib(longhorn, "vlan40") == 0
    # from an engine instance-manager to another agent's replica one, at the replica's
    # data port
    assert re.search(
        r"over TCP instance-manager-e-[0-9a-f]{32} on (\S+) -> "
        r"instance-manager-r-[0-9a-f]{32} on (?!\1)\S+ 172\.16\.50\.\d+:10001",
        " ".join(longhorn),
    ), longhorn
    assert "vlan50 carries nothing but Longhorn's storage network" in " ".join(longhorn)
    expect = checks["expect"]
    assert "200 OK" in expect.evidence[0] and "out of net2" in expect.evidence[0]


def test_cli_json_and_junit(seed: verify.Report, tmp_path: Path) -> None:
    junit = tmp_path / "verify.xml"
    done = CliRunner().invoke(app, ["verify", seed.lab, "-o", "json", "--junit", str(junit)])
    assert done.exit_code == 0, done.output
    doc = json.loads(done.output)
    assert doc["ok"] is True and doc["failed"] == 0
    assert doc["passed"] == sum(SEED_CHECKS.values())
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    assert suite.get("tests") == str(doc["passed"]) and suite.get("failures") == "0"
    done = CliRunner().invoke(app, ["verify"])
    assert done.exit_code == 0, done.output
    assert f"OK multi-homed: {sum(SEED_CHECKS.values())} passed, 0 failed" in done.output
