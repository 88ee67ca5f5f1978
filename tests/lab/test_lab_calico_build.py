"""The lab's calico plugin as a program (lab/plugins/calico, built by ``make calico``): the
lab installs the binary it was built into, refuses a missing or stale build with the command
that makes it, and the binary speaks the CNI protocol on its own. Its behaviour on a node is
test_lab_calico.py's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from multihome.lab import canal


def _run(argv: list[str], command: str, stdin: bytes = b"") -> tuple[int, dict[str, object]]:
    done = subprocess.run(
        argv, env={"CNI_COMMAND": command}, input=stdin, capture_output=True, check=False
    )
    return done.returncode, dict(json.loads(done.stdout))


def test_plugin_is_built_and_installed_as_a_copy(tmp_path: Path) -> None:
    assert canal.plugin_problem() is None, canal.plugin_problem()
    path = canal.write_launcher(str(tmp_path / "bin"))
    assert Path(path).read_bytes() == Path(canal.PLUGIN).read_bytes()
    assert os.access(path, os.X_OK)
    code, version = _run([path], "VERSION")
    assert code == 0
    assert version["supportedVersions"] == ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]


def test_missing_or_stale_build_is_refused_with_how_to_build(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    built, source = canal.PLUGIN, tmp_path / "calico"
    shutil.copytree(canal.PLUGIN_SOURCE, source, ignore=shutil.ignore_patterns("build"))
    monkeypatch.setattr(canal, "PLUGIN_SOURCE", str(source))
    monkeypatch.setattr(canal, "PLUGIN", str(source / "build" / "calico"))
    problem = canal.plugin_problem()
    assert problem is not None
    assert "is not built" in problem and "make calico" in problem
    (source / "build").mkdir()
    shutil.copy(built, source / "build")
    os.utime(source / "build" / "calico", (1, 1))
    problem = canal.plugin_problem()
    assert problem is not None
    assert "is older than its source go.mod, main.go, rtnl.go" in problem
    assert "rebuild it with `make calico`" in problem
    os.utime(source / "build" / "calico")
    assert canal.plugin_problem() is None


def test_undecodable_config_is_cni_error_6() -> None:
    code, error = _run([canal.PLUGIN], "ADD", b"{not json")
    assert code == 1 and error["code"] == 6, error
    assert error["msg"] == "failed to load netconf"
