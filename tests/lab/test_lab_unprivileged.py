"""The lab's primitives as an unprivileged user (the test drops to ``nobody`` with setpriv)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from labkit import NOBODY, host_snapshot, python_for

import multihome

HERE = Path(__file__).parent
REPO = Path(multihome.__file__).parent.parent


def test_primitives_work_unprivileged() -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to an unprivileged user (setpriv)")
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is not installed")
    python = python_for(NOBODY)
    if python is None:
        pytest.skip("no Python interpreter that uid 65534 can run with multihome importable")
    # /tmp/pytest-of-root is private to root: the unprivileged user gets its own dir
    base = Path(tempfile.mkdtemp(prefix="mh-unpriv-"))
    try:
        state = base / "state"
        state.mkdir()
        os.chown(state, NOBODY, NOBODY)
        base.chmod(0o755)
        _run_unprivileged(python, state)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _run_unprivileged(python: list[str], state: Path) -> None:
    before = host_snapshot()
    done = subprocess.run(
        [
            "setpriv",
            f"--reuid={NOBODY}",
            f"--regid={NOBODY}",
            "--clear-groups",
            *python[:2],
            f"MULTIHOME_STATE_DIR={state}",
            *python[2:],
            str(HERE / "unpriv_build.py"),
        ],
        capture_output=True,
        text=True,
        check=False,
        cwd="/",
        timeout=60,
    )
    if "user namespaces are not available" in done.stderr:
        pytest.skip(f"unprivileged user namespaces are disabled here: {done.stderr.strip()}")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["uid"] == NOBODY
    assert report["uid_inside"] == 0  # nobody is root inside its sandbox
    assert report["ping"] is True
    assert report["fwd"] == "1"
    assert report["daemon_alive"] is True
    assert report["holder_alive"] is False
    assert report["daemon_alive_after"] is False
    assert report["state_left"] is False
    assert host_snapshot() == before
