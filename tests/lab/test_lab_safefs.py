"""The state dir is not trusted (safefs, state, api): links planted where the lab's files
go are never followed, a FIFO is never opened, a root others may write is refused, and
``down`` removes only what a lab made and signals only processes that prove they are its."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from multihome.cli import app
from multihome.lab import api, nodes, ns, processes, safefs
from multihome.lab.state import LabState, NotALab, StateError

SECRET = "do not overwrite\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside the state dir that a planted link points at."""
    path = tmp_path / "outside" / "precious.txt"
    path.parent.mkdir()
    path.write_text(SECRET)
    return path


def _lab(name: str = "lab1") -> LabState:
    st = LabState(name)
    st.prepare()
    return st


# -- the state root --------------------------------------------------------------------------
@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o757])
def test_a_root_others_may_write_is_refused(state_root: Path, mode: int) -> None:
    state_root.mkdir()
    os.chmod(state_root, mode)
    with pytest.raises(StateError, match=r"is writable by .*chmod go-w"):
        LabState("lab1").prepare()
    assert os.listdir(state_root) == []
    result = CliRunner().invoke(app, ["down"])
    assert result.exit_code == 2, result.output
    assert "writable by" in result.output


def test_a_root_that_is_a_link_is_refused(state_root: Path, tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    state_root.symlink_to(real)
    with pytest.raises(StateError, match="is a symbolic link, not a directory"):
        LabState("lab1").prepare()
    assert os.listdir(real) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
def test_a_root_of_another_user_is_refused(state_root: Path) -> None:
    state_root.mkdir(mode=0o700)
    os.chown(state_root, 65534, 65534)
    with pytest.raises(StateError, match="belongs to uid 65534"):
        LabState("lab1").prepare()


def test_the_lab_dir_is_private_and_marked_first(state_root: Path) -> None:
    st = _lab()
    assert os.stat(state_root).st_mode & 0o777 == 0o700
    assert os.stat(st.dir).st_mode & 0o777 == 0o700
    marker = json.loads((st.dir / "lab.json").read_text())
    assert marker["name"] == "lab1" and marker["token"] == st.token


# -- links and FIFOs where the lab's files go -------------------------------------------------
@pytest.mark.parametrize("name", ["plan.json", "status.json"])
def test_a_link_where_plan_or_status_goes(state_root: Path, outside: Path, name: str) -> None:
    st = _lab()
    (st.dir / name).symlink_to(outside)
    with pytest.raises(StateError, match=re.escape(f"{name} is a symbolic link")):
        st.write_atomic(st.dir / name, "{}")
    reader = api.load_plan if name == "plan.json" else api.status
    with pytest.raises(api.LabError, match="symbolic link") as err:
        reader("lab1")
    assert err.value.code == 2
    assert outside.read_text() == SECRET
    assert (st.dir / name).is_symlink()


def test_a_link_where_the_journal_goes(state_root: Path, outside: Path) -> None:
    st = _lab()
    (st.dir / "journal.jsonl").symlink_to(outside)
    with st.lock(), pytest.raises(StateError, match=r"journal\.jsonl is a symbolic link"):
        st.record("link", "vlan40")
    with pytest.raises(api.LabError, match=r"journal\.jsonl is a symbolic link") as err:
        api.down("lab1")
    assert err.value.code == 2
    assert outside.read_text() == SECRET


def test_a_link_where_a_log_goes(state_root: Path, outside: Path) -> None:
    st = _lab()
    log = st.dir / "dnsmasq-vlan60.log"
    log.symlink_to(outside)
    with pytest.raises(StateError, match="symbolic link"):
        processes.start("sleeper", ["sleep", "30"], log=str(log))
    assert outside.read_text() == SECRET


def test_a_hard_link_where_a_log_goes(state_root: Path, outside: Path) -> None:
    st = _lab()
    log = st.dir / "serve-svc.log"
    os.link(outside, log)
    with pytest.raises(StateError, match="2 hard links"):
        safefs.append_fd(str(log))
    assert outside.read_text() == SECRET


def test_a_fifo_where_a_log_goes_fails_at_once(state_root: Path) -> None:
    """In a child process with a generous timeout: a hang would otherwise hang the run."""
    st = _lab()
    log = st.dir / "dnsmasq-vlan60.log"
    os.mkfifo(log)
    code = (
        "import sys; from multihome.lab import processes, safefs\n"
        "try:\n"
        f"    processes.start('sleeper', ['sleep', '30'], log={str(log)!r})\n"
        "except safefs.StateError as exc:\n"
        "    print(exc); sys.exit(3)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 3, done.stderr
    assert "dnsmasq-vlan60.log is a FIFO, not a regular file" in done.stdout


def test_a_link_or_fifo_in_the_lab_dir_is_not_read_as_the_marker(state_root: Path) -> None:
    root = state_root
    root.mkdir(mode=0o700)
    (root / "lab1").mkdir(mode=0o700)
    os.mkfifo(root / "lab1" / "lab.json")
    with pytest.raises(StateError, match=r"lab\.json is a FIFO"):
        LabState("lab1").prepare()


@pytest.mark.parametrize("where", ["nodes", "nodes/wrk-1"])
def test_a_link_where_a_node_dir_goes(state_root: Path, tmp_path: Path, where: str) -> None:
    st = _lab()
    target = tmp_path / "elsewhere"
    target.mkdir()
    if where != "nodes":
        (st.dir / "nodes").mkdir(mode=0o755)
    (st.dir / where).symlink_to(target)
    with pytest.raises(StateError, match="is a symbolic link, not a directory"):
        nodes.prepare_dirs(str(st.node_dir("wrk-1")))
    assert os.listdir(target) == []


def test_files_are_replaced_whole_and_not_through_links(state_root: Path) -> None:
    st = _lab()
    st.write_atomic(st.dir / "status.json", "one")
    st.write_atomic(st.dir / "status.json", "two")
    assert st.read_text(st.dir / "status.json") == "two"
    assert sorted(os.listdir(st.dir)) == ["lab.json", "scratch", "status.json"]  # no temp left


# -- down removes only what a lab made -------------------------------------------------------
def test_down_leaves_a_directory_no_lab_made(state_root: Path) -> None:
    real = _lab("real")
    docs = state_root / "docs"
    docs.mkdir()
    (docs / "notes.txt").write_text("mine\n")
    result = CliRunner().invoke(app, ["down"])
    assert result.exit_code == 2, result.output
    assert "docs was not made by multihome (no lab.json marker in it)" in result.output
    assert "left untouched" in result.output and "removed lab real" in result.output
    assert (docs / "notes.txt").read_text() == "mine\n"
    assert not real.dir.exists()
    with pytest.raises(api.LabError, match="docs was not made by multihome") as err:
        api.down("docs")
    assert err.value.code == 2
    assert (docs / "notes.txt").read_text() == "mine\n"
    assert "docs" not in api.list_labs()


def test_down_leaves_a_marker_of_another_lab(state_root: Path) -> None:
    other = _lab("other")
    (state_root / "copy").mkdir(mode=0o700)
    (state_root / "copy" / "lab.json").write_text((other.dir / "lab.json").read_text())
    with pytest.raises(NotALab, match="not the marker of this lab"):
        LabState("copy").teardown()
    assert (state_root / "copy" / "lab.json").exists()


def test_down_leaves_a_link_named_like_a_lab(state_root: Path, tmp_path: Path) -> None:
    _lab("real").teardown()
    target = tmp_path / "data"
    target.mkdir()
    (target / "keep").write_text("x")
    (state_root / "data").symlink_to(target)
    with pytest.raises(api.LabError, match="data is a symbolic link"):
        api.down()
    assert (target / "keep").exists() and (state_root / "data").is_symlink()


def test_an_empty_directory_is_taken_over(state_root: Path) -> None:
    """What an up killed between mkdir and the marker leaves: it holds nothing."""
    state_root.mkdir(mode=0o700)
    (state_root / "half").mkdir(mode=0o700)
    assert api.down() == ["half"]
    assert not (state_root / "half").exists()


def test_down_signals_only_processes_that_prove_they_are_the_labs(state_root: Path) -> None:
    """A journal naming processes the lab did not start (with their real PID and start
    time, even a process token they carry) gets none of them killed."""
    st = _lab()
    env = {**os.environ, processes.ENV_TOKEN: "feedfacefeedface"}
    env.pop(processes.ENV_LAB, None)
    bystanders = [
        subprocess.Popen(["sleep", "60"], env=env),  # the process token, not the lab's
        subprocess.Popen(["sleep", "60"], env={**env, processes.ENV_LAB: "0" * 32}),
        subprocess.Popen(["sleep", "60"]),  # nothing of ours at all
    ]
    try:
        with st.lock():
            for i, proc in enumerate(bystanders):
                started = ns.start_time(proc.pid)
                st.record("process", f"p{i}", token="feedfacefeedface")
                st.record("process", f"p{i}", phase="done", pid=proc.pid, start_time=started)
            first = bystanders[0]
            st.record(
                "sandbox", "lab1", phase="done", pid=first.pid, name="lab1", scratch="/x",
                start_time=ns.start_time(first.pid), token=st.token,
            )  # fmt: skip
        st.teardown()
        assert not st.dir.exists()
        assert all(p.poll() is None for p in bystanders)
    finally:
        for proc in bystanders:
            proc.kill()
            proc.wait()


def test_down_stops_a_process_that_proves_it_is_the_labs(state_root: Path) -> None:
    st = _lab()
    with st.lock():
        daemon = processes.start(
            "sleeper", ["sleep", "60"], log=str(st.dir / "s.log"), record=st.record,
            lab_token=st.token,
        )  # fmt: skip
    assert processes.proves(daemon.pid, daemon.start_time, {processes.ENV_LAB: st.token})
    try:
        st.teardown()
        assert not ns.is_running(daemon.pid, daemon.start_time)
    finally:
        daemon.stop()


def test_get_names_an_untrusted_root(state_root: Path) -> None:
    state_root.mkdir(mode=0o700)
    os.chmod(state_root, 0o777)
    with pytest.raises(api.LabError, match="writable by its group and others") as err:
        api.status()
    assert err.value.code == 2
