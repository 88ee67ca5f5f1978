"""The command line as users meet it: exit codes, JSON output, one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from multihome.cli import app
from multihome.spec import seed_path

runner = CliRunner()
EXAMPLES = sorted(seed_path().parent.glob("*.yaml"))


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_validate_passes_every_example(path: Path) -> None:
    code, out, _ = run("validate", str(path))
    assert code == 0, out
    assert "OK" in out


def test_validate_defaults_to_the_seed() -> None:
    code, out, _ = run("validate", "-o", "json")
    assert code == 0
    doc = json.loads(out)
    assert doc["lab"] == "multi-homed"
    assert doc["file"] == str(seed_path())
    assert doc == {**doc, "ok": True, "errors": 0, "warnings": 1}
    # RKE2 v1.25.9's rke2-multus chart can't start the dhcp daemon (render writes one)
    assert [f["id"] for f in doc["findings"]] == ["rke2-dhcp-daemon-missing"]


def _broken(tmp_path: Path) -> Path:
    text = seed_path().read_text().replace("      iface: ens192\n", "      iface: ens224\n")
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    return path


def test_validate_reports_errors_with_exit_1(tmp_path: Path) -> None:
    path = _broken(tmp_path)
    code, out, _ = run("validate", str(path))
    assert code == 1
    assert f"{path}:" in out and "canal-iface-network" in out and "fix:" in out
    assert "FAIL" in out


def test_validate_json_is_stable_and_machine_readable(tmp_path: Path) -> None:
    path = _broken(tmp_path)
    first = run("validate", str(path), "-o", "json")
    second = run("validate", str(path), "-o", "json")
    assert first == second
    doc = json.loads(first[1])
    assert doc["ok"] is False and doc["errors"] >= 1
    keys = {"id", "severity", "kind", "where", "file", "line", "column", "message", "fix"}
    for finding in doc["findings"]:
        assert set(finding) == keys
        assert finding["severity"] in ("error", "warning")
    ids = [f["id"] for f in doc["findings"]]
    assert "canal-iface-network" in ids and "canal-iface-missing" in ids


def test_strict_fails_on_warnings(tmp_path: Path) -> None:
    text = seed_path().read_text().replace("    canal:\n      iface: ens192\n", "    canal:\n")
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    assert run("validate", str(path))[0] == 0
    code, out, _ = run("validate", str(path), "--strict")
    assert code == 1 and "canal-iface-unset" in out


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        (b"spec: [\n", "lab.yaml:"),
        (b"\x00\x01\xff\xfe garbage", "lab.yaml"),
        (b"apiVersion: v1\nkind: Service\nmetadata: {name: x}\n", "Service"),
    ],
)
def test_bad_input_is_one_message_and_exit_2(tmp_path: Path, content: bytes, fragment: str) -> None:
    path = tmp_path / "lab.yaml"
    path.write_bytes(content)
    done = subprocess.run(
        [sys.executable, "-m", "multihome.cli", "validate", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    assert fragment in done.stderr
    assert done.stderr.startswith("error:")
    assert len(done.stderr.strip().splitlines()) <= 3


def test_missing_file_is_exit_2() -> None:
    code, _, err = run("validate", "/nonexistent/lab.yaml")
    assert code == 2 and "/nonexistent/lab.yaml" in err


def test_show_summarizes_the_seed() -> None:
    code, out, _ = run("show")
    assert code == 0
    for word in ("vlan50", "multi-homed-wrk-3", "172.16.40.51", "macvlan", "net-tools", "web"):
        assert word in out


def test_render_writes_the_tree_and_refuses_to_overwrite(tmp_path: Path) -> None:
    out_dir = tmp_path / "out"
    code, out, _ = run("render", "-o", str(out_dir))
    assert code == 0, out
    config = out_dir / "nodes/multi-homed-wrk-1/etc/rancher/rke2/config.yaml"
    assert "node-ip: 172.16.40.47" in config.read_text()
    code, _, err = run("render", "-o", str(out_dir))
    assert code == 2 and "--force" in err
    assert run("render", "-o", str(out_dir), "--force")[0] == 0


def test_render_refuses_a_design_that_fails_validate(tmp_path: Path) -> None:
    code, out, _ = run("render", str(_broken(tmp_path)), "-o", str(tmp_path / "out"))
    assert code == 1 and "canal-iface-network" in out
    assert not (tmp_path / "out").exists()
