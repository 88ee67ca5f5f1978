"""up gates on validate: a design a real cluster would refuse is not built at all (nothing
in the state root, nothing on the host, validate's findings with file:line, exit 1); the
mistakes a real cluster runs with are printed, "building anyway", and built."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from labkit import host_snapshot, sandbox_unavailable_reason
from typer.testing import CliRunner

from multihome.check import Kind
from multihome.cli import app
from multihome.lab import api
from multihome.spec import load_lab, seed_path

SEED = seed_path().read_text()
runner = CliRunner()

NAD_CONFIG = """  config: '{
      "cniVersion": "0.3.0",
      "type": "macvlan",
      "master": "ens224",
      "mode": "bridge",
      "ipam": {
        "type": "dhcp"
      }
    }'"""
POD = """---
apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: multus-network-attachments}}
spec:
  containers: [{{name: main, image: ubuntu}}]
"""


def _lab(text: str, name: str) -> str:
    return text.replace("metadata:\n  name: multi-homed\n", f"metadata:\n  name: {name}\n", 1)


def _config(config: str) -> str:
    assert NAD_CONFIG in SEED
    return SEED.replace(NAD_CONFIG, f"  config: '{config}'", 1)


REFUSED = {
    "config-null": (_config("null"), "nad-config-invalid", "not null"),
    "config-nan": (
        _config('{"cniVersion":"0.3.0","type":"macvlan","master":"ens224","mtu":NaN}'),
        "nad-config-invalid",
        "NaN",
    ),
    "config-big-int": (
        _config(
            '{"cniVersion":"0.3.0","type":"macvlan","master":"ens224","mtu":%s}' % ("9" * 5000)
        ),
        "nad-config-invalid",
        "out of range at mtu",
    ),
    "pod-name-path": (SEED + POD.format(name='"../../x"'), "object-name-invalid", "../../x"),
    "pod-name-option": (SEED + POD.format(name='"-rf"'), "object-name-invalid", "-rf"),
    "pod-name-nul": (SEED + POD.format(name='"a\\0b"'), "object-name-invalid", "\\u0000"),
    "duplicate-nic": (
        SEED.replace(
            "        - {name: ens224, network: vlan50}\n",
            "        - {name: ens224, network: vlan50}\n        - {name: ens224, network: vlan60}\n",
            1,
        ),
        "nic-duplicate",
        "ens224",
    ),
    "plugin-not-emulated": (
        _config('{"cniVersion":"0.3.0","type":"sriov"}'),
        "nad-plugin-not-emulated",
        "real cluster with it installed may run this design; the lab can't",
    ),
    "plugin-typo": (
        _config('{"cniVersion":"0.3.0","type":"macvlna","master":"ens224"}'),
        "nad-plugin-unknown",
        "did you mean 'macvlan'",
    ),
}


@pytest.fixture
def state_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "state"
    monkeypatch.setenv("MULTIHOME_STATE_DIR", str(root))
    return root


@pytest.mark.parametrize("case", list(REFUSED))
def test_api_up_refuses_and_builds_nothing(case: str, state_root: Path, tmp_path: Path) -> None:
    text, finding_id, fragment = REFUSED[case]
    path = tmp_path / "lab.yaml"
    path.write_text(_lab(text, f"mhgate-{case}"))
    with pytest.raises(api.DesignRefused) as caught:
        api.up(load_lab(path))
    assert caught.value.code == 1
    refused = [f for f in caught.value.findings if f.kind is Kind.REFUSED]
    assert finding_id in {f.id for f in refused}
    ours = next(f for f in refused if f.id == finding_id)
    assert ours.location is not None and ours.location.file == str(path)
    assert fragment in ours.message
    assert f"{path}:{ours.location.line}:" in str(caught.value)
    assert not state_root.exists() or not any(state_root.iterdir())


def test_cli_up_refuses_with_validates_findings(state_root: Path, tmp_path: Path) -> None:
    before = host_snapshot()
    path = tmp_path / "lab.yaml"
    path.write_text(_lab(SEED + POD.format(name='"../../x"'), "mhgate-cli"))
    result = runner.invoke(app, ["up", str(path)])
    assert result.exit_code == 1, result.output
    line = next(i for i, t in enumerate(path.read_text().splitlines(), 1) if "../../x" in t)
    assert re.search(
        rf"{re.escape(str(path))}:{line}:\d+: error \[object-name-invalid\] Pod \"../../x\" "
        r"is invalid: metadata.name: Invalid value: \"../../x\": a lowercase RFC 1123 "
        r"subdomain must consist of",
        result.stdout,
    ), result.stdout
    assert "not built" in result.stderr
    assert not state_root.exists() or not any(state_root.iterdir())
    assert host_snapshot() == before


@pytest.mark.skipif(os.geteuid() != 0, reason="up runs as root here")
@pytest.mark.skipif(not os.path.isdir("/usr/lib/cni"), reason="containernetworking-plugins")
@pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq"), reason="dnsmasq-base missing")
def test_cli_up_builds_what_a_cluster_runs_with_and_warns(state_root: Path, tmp_path: Path) -> None:
    """Canal pinned to the storage NIC (missing on the servers, on the wrong VLAN on the
    agents): a real cluster runs with it, so up builds it and says so."""
    reason = sandbox_unavailable_reason()
    if reason:
        pytest.skip(reason)
    path = tmp_path / "lab.yaml"
    text = SEED.replace("      iface: ens192\n", "      iface: ens224\n", 1)
    path.write_text(_lab(text, "mhgate-runs"))
    findings = api.check_design(load_lab(path))
    assert {f.id for f in findings} >= {"canal-iface-network", "canal-iface-missing"}
    assert all(f.kind is Kind.RUNS for f in findings)
    try:
        result = runner.invoke(app, ["up", str(path)])
        assert result.exit_code == 0, result.output
        assert "building anyway: verify will show what they do" in result.stderr
        iface_line = next(
            i for i, t in enumerate(text.splitlines(), 1) if t == "      iface: ens224"
        )
        assert f"{path}:{iface_line}:14: error [canal-iface-network]" in result.stdout
        assert api.status("mhgate-runs")["running"]
    finally:
        api.down("mhgate-runs")
    assert not (state_root / "mhgate-runs").exists()
