"""The Go build of the lab's calico plugin (plugins/calico_go): the lab installs it when it
was built, and it answers VERSION as the Python plugin does. Its behaviour on a node is
test_lab_calico.py's, run with both plugins."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from multihome.lab import canal

pytestmark = pytest.mark.skipif(
    not os.access(canal.GO_PLUGIN, os.X_OK), reason="the Go calico plugin is not built"
)


def _version(argv: list[str]) -> dict[str, object]:
    out = subprocess.run(
        argv, env={"CNI_COMMAND": "VERSION"}, capture_output=True, check=True, input=b""
    ).stdout
    return dict(json.loads(out))


def test_lab_installs_the_go_plugin_when_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(canal.CALICO_ENV, raising=False)
    path = canal.write_launcher(str(tmp_path / "auto"))
    assert Path(path).read_bytes()[:4] == b"\x7fELF"
    monkeypatch.setenv(canal.CALICO_ENV, "python")
    python = canal.write_launcher(str(tmp_path / "py"))
    assert Path(python).read_bytes()[:2] == b"#!"
    assert _version([path]) == _version([python])
    monkeypatch.setenv(canal.CALICO_ENV, "rust")
    with pytest.raises(ValueError, match="MULTIHOME_CALICO is go or python"):
        canal.write_launcher(str(tmp_path / "bad"))


def test_go_plugin_errors_without_stdin_config() -> None:
    """Undecodable config: CNI error 6 with the Python plugin's message."""
    done = subprocess.run(
        [canal.GO_PLUGIN],
        env={"CNI_COMMAND": "ADD"},
        input=b"{not json",
        capture_output=True,
        check=False,
    )
    error = json.loads(done.stdout)
    assert done.returncode == 1 and error["code"] == 6, error
    assert error["msg"] == "failed to load netconf"
