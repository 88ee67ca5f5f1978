"""Which release the installed reference plugins are: the plugin's own about text (upstream
builds), else the Debian package that holds it (Debian's builds say "version unknown")."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kernel import CNI_BIN_DIR, require_cni_plugins

from multihome.cni import installed


def test_the_installed_plugins_release_is_the_debian_packages() -> None:
    require_cni_plugins()
    about = subprocess.run([f"{CNI_BIN_DIR}/bridge"], capture_output=True, text=True, check=False)
    found = installed.release(CNI_BIN_DIR)
    assert found is not None
    if "version unknown" not in about.stderr:
        pytest.skip(f"these plugins say their version: {about.stderr.strip()}")
    package = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", "containernetworking-plugins"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert found.source == f"Debian's containernetworking-plugins {package}"
    assert package.startswith(found.text + "+") or package.startswith(found.text + "-")
    assert found.at_least((1, 1, 1)) and found.at_least(found.version)


def test_an_upstream_build_says_its_release_itself(tmp_path: Path) -> None:
    # what upstream's buildversion.BuildString prints for "-X ...BuildVersion=v1.4.0"
    bridge = tmp_path / "bridge"
    bridge.write_text("#!/bin/sh\necho 'CNI bridge plugin v1.4.0' >&2\n")
    bridge.chmod(0o755)
    found = installed.release(str(tmp_path))
    assert found == installed.Release((1, 4, 0), "bridge v1.4.0 (its own version)")
    assert found.at_least(installed.BRIDGE_VLAN_TRUNK)


def test_no_plugin_no_release(tmp_path: Path) -> None:
    assert installed.release(str(tmp_path)) is None
    silent = tmp_path / "bridge"
    silent.write_text("#!/bin/sh\nexit 0\n")
    silent.chmod(0o755)
    assert installed.release(str(tmp_path), "bridge") is None  # not Debian's, says nothing
