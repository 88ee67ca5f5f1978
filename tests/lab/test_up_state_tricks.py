"""multihome up over a state dir with tricks in it: a FIFO where a log goes fails at once
with a clear message (rolled back, nothing left), a link planted in a lab's leftovers is
removed and never followed, a directory no lab made is left alone (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from labkit import host_snapshot
from typer.testing import CliRunner

from multihome.cli import app
from multihome.lab import api
from multihome.lab.state import LabState
from multihome.spec import load_lab

LAB = Path(__file__).parent / "labs" / "kill.yaml"
NAME = "killme"

pytestmark = [
    pytest.mark.skipif(not os.path.isdir("/usr/lib/cni"), reason="containernetworking-plugins"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq"), reason="dnsmasq-base missing"),
]

# up in a child (a hang must not hang the run): a FIFO appears where dnsmasq's log goes
# right after the lab's directory is made
FIFO_UP = """
import os, sys
from multihome.lab import api
from multihome.lab.state import LabState
from multihome.spec import load_lab

prepare = LabState.prepare
def planted(self):
    prepare(self)
    os.mkfifo(self.dir / "dnsmasq-vlan60.log")
LabState.prepare = planted
try:
    api.up(load_lab(sys.argv[1]))
except api.LabError as exc:
    print(exc)
    sys.exit(3)
"""


def test_a_fifo_where_a_log_goes_fails_up_at_once(state_root: Path, require_sandbox: None) -> None:
    before = host_snapshot()
    try:
        done = subprocess.run(
            [sys.executable, "-c", FIFO_UP, str(LAB)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    finally:  # had it come up (or hung): nothing may stay
        if (state_root / NAME).exists():
            api.down(NAME)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "dnsmasq-vlan60.log is a FIFO, not a regular file" in done.stdout
    assert "rolled back" in done.stdout
    assert not (state_root / NAME).exists()
    assert host_snapshot() == before


def test_a_link_in_a_crashed_labs_leftovers_is_never_followed(
    state_root: Path, tmp_path: Path, require_sandbox: None
) -> None:
    outside = tmp_path / "precious.txt"
    outside.write_text("keep\n")
    st = LabState(NAME)
    st.prepare()
    for name in ("plan.json", "status.json", "dnsmasq-vlan60.log", "journal.jsonl"):
        (st.dir / name).symlink_to(outside)
    (st.dir / "nodes").symlink_to(tmp_path)
    with pytest.raises(api.LabError, match=r"journal\.jsonl is a symbolic link"):
        api.up(load_lab(LAB))  # its journal can't be read: what ran is unknown
    os.unlink(st.dir / "journal.jsonl")
    try:
        status = api.up(load_lab(LAB))  # the leftovers are removed (links, not their targets)
        assert {p["phase"] for p in status["pods"]} == {"Running"}
        assert not (st.dir / "plan.json").is_symlink()
    finally:
        api.down(NAME)
    assert outside.read_text() == "keep\n"
    assert sorted(os.listdir(tmp_path)) == sorted(["precious.txt", "state"])


def test_up_leaves_a_directory_no_lab_made(state_root: Path) -> None:
    (state_root / NAME).mkdir(parents=True)
    (state_root / NAME / "notes.txt").write_text("mine\n")
    result = CliRunner().invoke(app, ["up", str(LAB)])
    assert result.exit_code == 2, result.output
    assert "was not made by multihome" in result.output
    assert os.listdir(state_root / NAME) == ["notes.txt"]
