"""processes.py: daemons started in a node's namespaces, watched and stopped by PID."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from labkit import MakeSandbox

from multihome.lab import forkpool, netlink, ns, processes, safefs
from multihome.lab.processes import Daemon, ProcessError

TRAP_TERM = "trap '' TERM; echo started; while :; do sleep 0.05; done"


def _start_in_node(
    sb_call: Any, argv: list[str], log: str, records: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    def work() -> dict[str, Any]:
        path = netlink.create_netns("node")
        seen: list[dict[str, Any]] = []

        def record(kind: str, name: str, phase: str = "intent", **data: Any) -> None:
            seen.append({"kind": kind, "name": name, "phase": phase, **data})

        daemon = processes.start("daemon", argv, netns=path, log=log, record=record)
        return {"daemon": daemon.to_dict(), "records": seen, "netns_ino": os.stat(path).st_ino}

    result: dict[str, Any] = sb_call(work)
    if records is not None:
        records.extend(result["records"])
    return result


def _wait_for(path: Path, text: str) -> None:
    deadline = time.monotonic() + 5
    while text not in (path.read_text() if path.exists() else ""):
        assert time.monotonic() < deadline, f"{path} never said {text!r}"
        time.sleep(0.01)


def test_start_watch_stop(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    sb = make_sandbox("procs")
    log = tmp_path / "daemon.log"
    records: list[dict[str, Any]] = []
    result = _start_in_node(
        sb.call, ["sh", "-c", "echo started; exec sleep 300"], str(log), records
    )
    daemon = Daemon.from_dict(result["daemon"])
    try:
        assert [r["phase"] for r in records] == ["intent", "done"]
        assert records[0]["token"] == daemon.token and "pid" not in records[0]
        assert records[1]["pid"] == daemon.pid
        assert records[1]["start_time"] == daemon.start_time
        assert daemon.argv[0].startswith("/")  # resolved before the fork, never a shell
        assert daemon.alive()
        _wait_for(log, "started")
        # it runs in the node's netns and in the lab's PID namespace
        assert os.stat(f"/proc/{daemon.pid}/ns/net").st_ino == result["netns_ino"]
        assert os.stat(f"/proc/{daemon.pid}/ns/pid").st_ino == os.stat(sb.ns_path("pid")).st_ino
        assert processes.find_by_token(daemon.token) == [daemon.pid]
        assert daemon.stop(timeout=2) is True
        assert not daemon.alive()
        assert daemon.stop() is False  # idempotent
    finally:
        daemon.stop()


def test_stop_escalates_to_sigkill(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    sb = make_sandbox("stubborn")
    log = tmp_path / "trap.log"
    daemon = Daemon.from_dict(_start_in_node(sb.call, ["sh", "-c", TRAP_TERM], str(log))["daemon"])
    try:
        _wait_for(log, "started")
        t0 = time.monotonic()
        assert daemon.stop(timeout=0.3) is True
        assert 0.3 <= time.monotonic() - t0 < 5
        assert not daemon.alive()
    finally:
        daemon.stop(timeout=0.1)


def test_a_reused_pid_is_never_signalled(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    sb = make_sandbox("reuse")
    daemon = Daemon.from_dict(
        _start_in_node(sb.call, ["sleep", "300"], str(tmp_path / "l"))["daemon"]
    )
    try:
        impostor = Daemon(
            name="daemon",
            pid=daemon.pid,
            start_time=daemon.start_time - 1,
            argv=daemon.argv,
            token="x",
        )
        assert not impostor.alive()
        assert impostor.stop() is False
        assert daemon.alive()
    finally:
        daemon.stop()


def test_daemons_die_with_the_sandbox(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    sb = make_sandbox("with-sandbox")
    daemon = Daemon.from_dict(
        _start_in_node(sb.call, ["sleep", "300"], str(tmp_path / "l"))["daemon"]
    )
    assert daemon.alive()
    sb.destroy()
    assert not ns.is_running(daemon.pid, daemon.start_time)


def _start_from_worker(
    sb_call: Any, argv: list[str], log: str, no_stdin: bool = False
) -> dict[str, Any]:
    """As a forkpool worker does: the daemon started by a single-threaded process that lives
    in the lab's PID namespace (it takes the vfork path), which then exits."""

    def work() -> dict[str, Any]:
        path = netlink.create_netns("node")
        leaked = os.open(os.devnull, os.O_RDONLY)  # an inheritable descriptor of the caller
        os.set_inheritable(leaked, True)

        def worker(_: int) -> dict[str, Any]:
            assert processes._nested_pid_namespace()

            def no_fork(*_: Any) -> int:
                raise AssertionError("forked an intermediate")

            processes._spawn_detached = no_fork  # type: ignore[assignment]  # this worker's
            if no_stdin:  # a caller without stdin may get the log on 0: put it there
                opened = safefs.append_fd

                def on_zero(*a: Any, **k: Any) -> int:
                    fd = opened(*a, **k)
                    os.dup2(fd, 0, inheritable=False)
                    os.close(fd)
                    return 0

                safefs.append_fd = on_zero
            daemon = processes.start("daemon", argv, netns=path, log=log)
            return {"daemon": daemon.to_dict(), "worker_net": os.readlink("/proc/self/ns/net")}

        out = forkpool.fork_map(worker, [0, 1], 2)[0]
        os.close(leaked)
        return {**out, "netns_ino": os.stat(path).st_ino, "leaked": leaked}

    result: dict[str, Any] = sb_call(work)
    return result


@pytest.mark.parametrize("no_stdin", [False, True], ids=["stdin", "no-stdin"])
def test_a_worker_starts_daemons_with_vfork(
    make_sandbox: MakeSandbox, tmp_path: Path, no_stdin: bool
) -> None:
    sb = make_sandbox("vfork")
    log = tmp_path / "daemon.log"
    script = "echo started; ls -l /proc/self/fd; pwd; grep SigIgn /proc/self/status; exec sleep 300"
    result = _start_from_worker(sb.call, ["sh", "-c", script], str(log), no_stdin)
    daemon = Daemon.from_dict(result["daemon"])
    try:
        assert daemon.alive()  # the PID is the one /proc (the host's) knows
        _wait_for(log, "SigIgn")
        said = log.read_text()
        assert os.stat(f"/proc/{daemon.pid}/ns/net").st_ino == result["netns_ino"]
        assert os.stat(f"/proc/{daemon.pid}/ns/pid").st_ino == os.stat(sb.ns_path("pid")).st_ino
        status = dict(
            line.split(":", 1)
            for line in Path(f"/proc/{daemon.pid}/status").read_text().splitlines()
        )
        assert int(status["PPid"]) == sb.pid  # the worker is gone: the lab's init has it
        stat = Path(f"/proc/{daemon.pid}/stat").read_text().rsplit(")", 1)[1].split()
        assert int(stat[3]) == daemon.pid  # its own session (field 6: sid)
        # stdin /dev/null, stdout and stderr the log, nothing else of the caller's
        fds = {line.split()[-3]: line.split()[-1] for line in said.splitlines() if " -> " in line}
        assert fds.get("0") == "/dev/null" and fds.get("1") == fds.get("2") == str(log)
        assert fds.get(str(result["leaked"])) != "/dev/null"
        assert "\n/\n" in said  # its working directory is /
        assert int(status["SigIgn"], 16) & (1 << 12) == 0  # SIGPIPE (13) not ignored
        assert processes.find_by_token(daemon.token) == [daemon.pid]
        assert daemon.stop(timeout=2) is True
    finally:
        daemon.stop()


def test_bad_argv_is_refused() -> None:
    for bad in ([], "sleep 1", ["no-such-command-xyz"], ["sleep", "1\0"]):
        with pytest.raises(ProcessError):
            processes.start("bad", bad)  # type: ignore[arg-type]


def test_stop_all_recorded_stops_together(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    """Many recorded processes at once: each proven one is stopped (a stubborn one by
    SIGKILL after the timeout, the others at once), an impostor entry is left alone, and
    the wait is one timeout, not one per process."""
    sb = make_sandbox("stop-all")
    stubborn_log = tmp_path / "trap.log"
    stubborn = _start_in_node(sb.call, ["sh", "-c", TRAP_TERM], str(stubborn_log))["daemon"]

    def more() -> list[dict[str, Any]]:
        path = netlink.netns_path("node")
        return [processes.start(f"d{i}", ["sleep", "300"], netns=path).to_dict() for i in range(5)]

    sleepers = sb.call(more)
    impostor = dict(sleepers[0], start_time=sleepers[0]["start_time"] - 1)
    daemons = [Daemon.from_dict(d) for d in [stubborn, *sleepers]]
    try:
        _wait_for(stubborn_log, "started")
        t0 = time.monotonic()
        lab = os.environ.get(processes.ENV_LAB, "")
        assert processes.stop_all_recorded([impostor, stubborn, *sleepers], 0.3, lab) == 6
        assert 0.3 <= time.monotonic() - t0 < 3
        assert not any(d.alive() for d in daemons)
    finally:
        for d in daemons:
            d.stop(timeout=0.1)
