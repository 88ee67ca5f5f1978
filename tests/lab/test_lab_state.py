"""state.py: location, lock, journal, and teardown after a SIGKILL mid-build."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from labkit import host_snapshot

from multihome.lab import processes, sandbox
from multihome.lab.names import InvalidName
from multihome.lab.state import ENV_STATE_DIR, LabLocked, LabState, StateError, state_root

HERE = Path(__file__).parent


def test_state_root_choice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_STATE_DIR, str(tmp_path))
    assert state_root() == tmp_path
    monkeypatch.delenv(ENV_STATE_DIR)
    if os.geteuid() == 0:
        assert state_root() == Path("/run/multihome")
    with pytest.raises(InvalidName):
        LabState("../x", tmp_path)


def test_lock_contention_is_a_clear_error(state_root: Path) -> None:
    first, second = LabState("busy"), LabState("busy")
    with first.lock():
        with pytest.raises(LabLocked, match=r"lab 'busy' is busy: .*pid \d+"):
            second.acquire()
        assert not second.locked
    with second.lock():
        pass


def test_lock_held_by_another_process(state_root: Path) -> None:
    code = (
        "import sys,time; from multihome.lab.state import LabState; s=LabState('other'); "
        "s.acquire(); print('locked', flush=True); time.sleep(60)"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        with pytest.raises(LabLocked, match=f"pid {holder.pid}"):
            LabState("other").acquire()
    finally:
        holder.kill()
        holder.wait()
    with LabState("other").lock():  # the kernel dropped the dead holder's lock
        pass


def test_journal_records_and_tolerates_a_torn_line(state_root: Path) -> None:
    st = LabState("journal")
    with pytest.raises(StateError):
        st.record("netns", "x")  # never without the lock
    with st.lock():
        st.record("netns", "node1", path="/run/netns/node1")
        st.record("process", "dnsmasq", argv=["dnsmasq"], token="t1")
        st.record("process", "dnsmasq", phase="done", pid=42, start_time=7)
        st.record("netns", "node2")
        st.record("netns", "node2", phase="removed")
    with open(st.journal_path, "ab") as fh:
        fh.write(b'{"kind": "netns", "name": "torn"')  # a crash mid-write
    objects = st.objects()
    assert list(objects) == [("netns", "node1"), ("process", "dnsmasq")]
    assert objects[("process", "dnsmasq")]["pid"] == 42
    assert objects[("process", "dnsmasq")]["token"] == "t1"
    lines = st.journal_path.read_bytes().splitlines()
    assert all(json.loads(line)["kind"] for line in lines[:-1])
    assert (st.dir.stat().st_mode & 0o777) == 0o700


def test_teardown_is_idempotent_on_nothing(state_root: Path) -> None:
    st = LabState("never-built")
    st.teardown()
    st.prepare()
    st.teardown()
    assert not st.dir.exists()
    st.teardown()


def _start_crash_build(lab: str, stage: str) -> subprocess.Popen[str]:
    env = dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "crash_build.py"), lab, stage],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != "ready":
        proc.kill()
        _, err = proc.communicate()
        pytest.fail(f"crash_build.py did not get ready: {line!r} {err}")
    return proc


def _sleepers_of(st: LabState) -> list[int]:
    pids = []
    for (kind, _), entry in st.objects().items():
        if kind == "process" and entry.get("token"):
            pids += processes.find_by_token(str(entry["token"]))
    return pids


@pytest.mark.parametrize("stage", ["built", "sandbox-unrecorded", "daemon-unrecorded"])
def test_teardown_after_sigkill_mid_build(
    state_root: Path, require_sandbox: None, stage: str
) -> None:
    if stage == "daemon-unrecorded" and os.geteuid() != 0:
        pytest.skip("entering the node's netns from outside the sandbox needs root")
    before = host_snapshot()
    lab = f"crash-{stage}"
    st = LabState(lab)
    proc: subprocess.Popen[str] | None = None
    try:
        proc = _start_crash_build(lab, stage)
        with pytest.raises(LabLocked):
            st.acquire()  # up is still running: down must refuse
        entry = st.objects()[("sandbox", lab)]
        holders = sandbox.find_holders(str(entry["token"]))
        assert len(holders) == 1
        sleepers = _sleepers_of(st)
        assert sleepers, "the daemon should be running"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        assert all(ns_running(pid) for pid in holders + sleepers)  # up died, the lab did not
        st.teardown()
        assert not st.dir.exists()
        assert not any(ns_running(pid) for pid in holders + sleepers)
        st.teardown()  # again: nothing to do
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        LabState(lab).teardown()  # also after a failed start: the journal has the token
    assert host_snapshot() == before


def ns_running(pid: int) -> bool:
    from multihome.lab import ns

    return ns.is_running(pid)
