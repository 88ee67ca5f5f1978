"""cni/spawn.py: a plugin process over pipes (exit status, signals, the deadline, the zombie
reaped later, no inherited descriptors), with real processes."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from multihome.cni import spawn


def _script(tmp_path: Path, body: str) -> str:
    path = tmp_path / "plugin"
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def _run(path: str, data: bytes = b"", timeout: float = 10.0) -> tuple[spawn.Child, bytes, bytes]:
    close = spawn.inheritable()
    assert close is not None
    child = spawn.start(path, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, close)
    out, err = spawn.communicate(child, data, timeout)
    return child, out, err


def test_stdin_stdout_stderr_and_exit_status(tmp_path: Path) -> None:
    data = b"x" * 200_000  # more than a pipe holds: written as it reads
    child, out, err = _run(_script(tmp_path, "cat; echo said >&2; exit 3"), data)
    assert (out, err, child.returncode) == (data, b"said\n", 3)


def test_killed_by_a_signal_is_negative(tmp_path: Path) -> None:
    child, _, _ = _run(_script(tmp_path, "kill -9 $$"))
    assert child.returncode == -9


def test_the_deadline_kills_the_group_and_reaps_it(tmp_path: Path) -> None:
    path = _script(tmp_path, "sleep 30 & echo $! ; wait")
    close = spawn.inheritable()
    assert close is not None
    child = spawn.start(path, {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, close)
    started = time.monotonic()
    with pytest.raises(spawn.Expired):
        spawn.communicate(child, b"", 0.5)
    assert time.monotonic() - started < 5
    assert child.returncode == -9
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)


def test_the_zombie_is_reaped_once_it_has_been_dead_a_moment(tmp_path: Path) -> None:
    child, _, _ = _run(_script(tmp_path, "exit 0"))
    assert child.returncode == 0
    assert os.path.exists(f"/proc/{child.pid}")  # a zombie still: status taken, not reaped
    time.sleep(spawn._REAP_AFTER * 2)
    spawn.reap_ended()
    with pytest.raises(ChildProcessError):
        os.waitpid(child.pid, os.WNOHANG)


def test_no_descriptor_of_ours_is_inherited(tmp_path: Path) -> None:
    r, w = os.pipe()
    os.set_inheritable(w, True)
    try:
        body = f"[ -e /proc/$$/fd/{w} ] && echo open || echo closed"
        _, out, _ = _run(_script(tmp_path, body))
    finally:
        os.close(r)
        os.close(w)
    assert out == b"closed\n"


def test_a_sealed_process_lists_nothing_and_passes_nothing_on(tmp_path: Path) -> None:
    """``seal`` in a child of ours (it changes the process for good): a descriptor it
    inherited becomes close-on-exec, so a plugin started after still gets none, with no
    /proc listing."""
    path = _script(tmp_path, 'for fd in /proc/$$/fd/*; do echo "${fd##*/}"; done')
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through its exit status
        code = 1
        try:
            inherited, _ = os.pipe()
            os.set_inheritable(inherited, True)
            found = spawn.inheritable()
            spawn.seal()
            sealed = spawn.inheritable()
            child = spawn.start(path, {"PATH": "/usr/bin:/bin"}, sealed or [])
            out, _ = spawn.communicate(child, b"", 10)
            fds = sorted(int(n) for n in out.split())
            os.write(writer, json.dumps([inherited, found, sealed, fds]).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(writer)
    said = os.read(reader, 4096).decode()
    os.close(reader)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    inherited, found, sealed, fds = json.loads(said)
    assert inherited in found and sealed == []
    assert fds[:3] == [0, 1, 2]
    assert all(fd not in fds for fd in (inherited, reader, writer)), fds
