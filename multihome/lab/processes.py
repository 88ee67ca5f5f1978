"""The lab's daemons: start one inside given namespaces, watch it, stop it by PID.

``start()`` runs an argv (never a shell) with the child moved into a network namespace and
optionally a mount namespace (a node's) between fork and exec, in its own session, stdin
from /dev/null and output to a log file (opened through ``safefs``: never a link or a
FIFO). It records the daemon through the caller's ``record`` callback twice: before the
fork (``intent``: argv, namespaces and a token that also goes into the daemon's environment
as ``MULTIHOME_PROCESS``) and right after (``done``: PID and start time from
/proc/PID/stat). The lab's token goes into the environment too (``MULTIHOME_LAB``).

A recorded daemon is only ever signalled when it can still prove it is the one recorded:
its PID has the recorded start time (a reused PID is never hit) and its environment holds
the recorded tokens (a journal that names someone else's process cannot get it killed). A
daemon whose PID was never recorded (crash between fork and record) is found by its token.

Called from inside the sandbox, the daemon lands in the lab's PID namespace too, so it also
dies with the sandbox's supervisor. A single-threaded caller that itself lives in the lab's
PID namespace (a forkpool worker attaching pods) starts it with vfork, stepping into its
namespaces for that moment: no fork of the caller, which is most of a daemon's start-up
cost in a large Python process; the process that builds the lab asks its spawner
(``spawner.py``), a helper of that kind; others fork an intermediate that is gone at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multihome.cni.spawn import inheritable

from . import ns, safefs
from .names import check_name

ENV_TOKEN = "MULTIHOME_PROCESS"
ENV_LAB = "MULTIHOME_LAB"

Recorder = Callable[..., None]


class ProcessError(RuntimeError):
    """A daemon could not be started or stopped."""


def start_time(pid: int) -> int | None:
    return ns.start_time(pid)


Spawn = Callable[[list[str], dict[str, str], int, Sequence[tuple[int, int]], str], int]
_spawner: tuple[Spawn | None, int] = (None, 0)  # and the PID of the process it serves


def set_spawner(spawn: Spawn | None, owner: int) -> tuple[Spawn | None, int]:
    """Start this process's daemons (PID ``owner``'s, not its forks') through ``spawn``
    (``spawner.active``); returns the one before."""
    global _spawner
    previous, _spawner = _spawner, (spawn, owner)
    return previous


@dataclass(frozen=True)
class Daemon:
    """A process the lab started, identified by PID and start time."""

    name: str
    pid: int
    start_time: int
    argv: tuple[str, ...]
    token: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "pid": self.pid,
            "start_time": self.start_time,
            "argv": list(self.argv),
            "token": self.token,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Daemon:
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            start_time=int(data["start_time"]),
            argv=tuple(str(a) for a in data.get("argv", ())),
            token=str(data.get("token", "")),
        )

    def alive(self) -> bool:
        ns.reap(self.pid)
        return ns.is_running(self.pid, self.start_time)

    def stop(self, timeout: float = 2.0) -> bool:
        """SIGTERM, then SIGKILL after ``timeout`` s; wait until gone. True if it was
        running. Idempotent; never signals a process that is not this one."""
        return _stop(self.pid, self.start_time, timeout)


def _stop(pid: int, started: int, timeout: float) -> bool:
    if not ns.is_running(pid, started):
        ns.reap(pid)
        return False
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if not ns.is_running(pid, started):
            break
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
            if sig == signal.SIGTERM:  # one frozen by a fault (SIGSTOP) must see it now
                os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + wait
        delay = 0.0005
        while ns.is_running(pid, started):
            ns.reap(pid)
            if time.monotonic() > deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
    ns.reap(pid)
    if ns.is_running(pid, started):
        raise ProcessError(f"process {pid} survived SIGKILL")
    return True


def find_by_token(token: str) -> list[int]:
    """PIDs of this user's processes whose environment carries ``MULTIHOME_PROCESS=token``."""
    return ns.pids_with("environ", f"{ENV_TOKEN}={token}".encode())


def environment(pid: int) -> set[bytes]:
    """The ``NAME=value`` items of the process's environment (empty if unreadable)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as fh:
            return set(fh.read().split(b"\0"))
    except OSError:
        return set()


def proves(pid: int, started: int, env: Mapping[str, str]) -> bool:
    """Whether ``pid`` is still the process that started at ``started`` and its
    environment holds every ``NAME=value`` of ``env`` (the start time is read again after
    the environment, so a PID reused in between is not taken for the old process)."""
    if not ns.is_running(pid, started):
        return False
    items = environment(pid)
    wanted = {f"{k}={v}".encode() for k, v in env.items()}
    return wanted <= items and ns.is_running(pid, started)


def stop_recorded(
    entry: Mapping[str, Any], timeout: float = 2.0, lab_token: str | None = None
) -> bool:
    """Stop the process a journal entry names, if it proves it is that one (``proves``:
    PID + start time, its token and the lab's token, default ``$MULTIHOME_LAB``, in its
    environment); found by its token when the PID was never recorded. An entry without a
    token can prove nothing: its process is left alone. True if one was stopped."""
    stopped = False
    for pid, started in _proven(entry, lab_token):
        stopped = _stop(pid, started, timeout) or stopped
    return stopped


def _proven(entry: Mapping[str, Any], lab_token: str | None) -> list[tuple[int, int]]:
    """``(pid, start time)`` of the running processes that prove they are the entry's."""
    token = entry.get("token")
    if not isinstance(token, str) or not token:
        return []
    lab = lab_token if lab_token is not None else os.environ.get(ENV_LAB)
    env = {ENV_TOKEN: token, **({ENV_LAB: lab} if lab else {})}
    candidates: list[tuple[int, int | None]]
    if "pid" in entry and "start_time" in entry:
        try:
            candidates = [(int(entry["pid"]), int(entry["start_time"]))]
        except (TypeError, ValueError):
            return []
    else:
        candidates = [(pid, ns.start_time(pid)) for pid in find_by_token(token)]
    found = []
    for pid, started in candidates:
        ns.reap(pid)
        if started is not None and proves(pid, started, env):
            found.append((pid, started))
    return found


def stop_all_recorded(
    entries: Sequence[Mapping[str, Any]], timeout: float = 2.0, lab_token: str | None = None
) -> int:
    """``stop_recorded`` for many entries at once: each proven process gets its SIGTERM
    (in ``entries``' order), then they are waited for together, SIGKILL for those still
    there after ``timeout`` (a lab's 1000 pods' processes one after the other waited
    ~2 ms each for their end). How many were stopped."""
    targets = [found for entry in entries for found in _proven(entry, lab_token)]
    proven = targets
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        proven = [(pid, started) for pid, started in proven if ns.is_running(pid, started)]
        for pid, _ in proven:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
                if sig == signal.SIGTERM:  # one frozen by a fault (SIGSTOP) must see it now
                    os.kill(pid, signal.SIGCONT)
        deadline = time.monotonic() + wait
        delay = 0.0005
        left = list(proven)
        while left:
            for pid, _ in left:
                ns.reap(pid)
            left = [(pid, started) for pid, started in left if ns.is_running(pid, started)]
            if not left or time.monotonic() > deadline:
                break
            time.sleep(delay)
            delay = min(delay * 2, 0.02)
        if not left:
            break
    survivors = [pid for pid, started in proven if ns.is_running(pid, started)]
    if survivors:
        raise ProcessError(f"processes {survivors} survived SIGKILL")
    return len(targets)


def log_tail(path: str, lines: int = 3) -> str:
    """The last lines of a daemon's log, on one line (what it said before dying)."""
    try:
        text = safefs.read_bytes(path).decode(errors="replace")
    except (OSError, safefs.StateError):
        return "no log"
    return " | ".join(text.strip().splitlines()[-lines:]) or "no output"


def _resolve(argv: Sequence[str]) -> list[str]:
    if isinstance(argv, str) or not argv or not all(isinstance(a, str) for a in argv):
        raise ProcessError(f"argv must be a non-empty list of strings, got {argv!r}")
    if any("\0" in a for a in argv):
        raise ProcessError("argv contains a NUL byte")
    exe = argv[0]
    if "/" not in exe:
        found = shutil.which(exe)
        if found is None:
            raise ProcessError(f"{exe}: command not found")
        exe = found
    return [exe, *argv[1:]]


def _spawn_detached(
    args: list[str], popen_args: dict[str, Any], targets: Sequence[tuple[int, int]]
) -> int:
    """Start ``args`` from a short-lived intermediate child and return the daemon's PID (as
    this process sees it). The intermediate exits right after, so the daemon is re-parented
    to its PID namespace's init: inside the sandbox that is the lab's supervisor, which
    reaps it the moment it exits (a daemon of ours never waits on the host's init). The
    intermediate steps into ``targets`` (namespace fds) itself, so its ``Popen`` needs no
    ``preexec_fn`` and starts the daemon with vfork: one fork of this process, not two."""

    def setup() -> None:  # in the intermediate child
        for fd, kind in targets:
            ns.setns(fd, kind)
        proc = subprocess.Popen(args, **popen_args)
        proc.returncode = 0  # not ours to wait for: the daemon outlives us

    try:
        with ns.held_child(setup) as mid:
            # the PID that Popen saw is the one in the lab's PID namespace; /proc (the
            # host's) lists the intermediate's child under the PID this process uses
            kids = Path(f"/proc/{mid}/task/{mid}/children").read_text().split()
    except ns.ChildSetupError as exc:
        raise ProcessError(str(exc)) from exc
    if len(kids) != 1:
        raise ProcessError(f"cannot find the started process (children: {kids})")
    return int(kids[0])


def _nested_pid_namespace() -> bool:
    """Whether this process lives in a PID namespace below the one /proc shows (a forked
    worker inside the lab's sandbox): then its own orphans go to the lab's init, as a
    daemon started through an intermediate would."""
    try:
        return os.readlink("/proc/self") != str(os.getpid())
    except OSError:
        return False


_RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)  # Python ignores them: exec keeps that


def _spawn_here(
    args: list[str], env: dict[str, str], out: int, targets: Sequence[tuple[int, int]], cwd: str
) -> int:
    """Start ``args`` with vfork (``posix_spawn``) from this single-threaded process, which
    steps into ``targets`` (namespace fds) and ``cwd`` for that moment; the daemon's PID as
    /proc names it. It is our child until we exit (forkpool workers are short-lived), then
    the lab's init's. Close-on-exec keeps our descriptors from it; any that are
    inheritable (from whoever started us: ``cni.spawn.inheritable``) are closed in it."""
    if out < 3:  # a caller started without stdin (say) may get its log on 0, 1 or 2
        moved = fcntl.fcntl(out, fcntl.F_DUPFD_CLOEXEC, 3)
        try:
            return _spawn_here(args, env, moved, targets, cwd)
        finally:
            os.close(moved)
    inherited = inheritable()  # [] at once in up's sealed build process and its workers
    if inherited is None:
        raise ProcessError("cannot list this process's descriptors (/proc/self/fd)")
    actions: list[tuple[Any, ...]] = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_DUP2, out, 1),
        (os.POSIX_SPAWN_DUP2, out, 2),
    ]
    actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in inherited if fd != out]
    homes: list[tuple[int, int]] = []
    here = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for _, kind in targets:
            own = "/proc/thread-self/ns/net" if kind == ns.CLONE_NEWNET else "/proc/self/ns/mnt"
            homes.append((os.open(own, os.O_RDONLY | os.O_CLOEXEC), kind))
        entered: list[tuple[int, int]] = []
        try:
            for (fd, kind), home in zip(targets, homes, strict=True):
                ns.setns(fd, kind)
                entered.append(home)
            os.chdir(cwd)
            pid = os.posix_spawn(
                args[0], args, env, file_actions=actions, setsid=True,
                setsigdef=_RESTORED_SIGNALS,
            )  # fmt: skip
        finally:
            for fd, kind in reversed(entered):
                ns.setns(fd, kind)
            os.fchdir(here)
    finally:
        os.close(here)
        for fd, _ in homes:
            os.close(fd)
    pidfd = os.pidfd_open(pid)
    try:
        with open(f"/proc/self/fdinfo/{pidfd}") as fh:
            for line in fh:
                if line.startswith("Pid:"):
                    return int(line.split()[1])
    finally:
        os.close(pidfd)
    raise ProcessError(f"cannot find the started process {pid} in /proc")


def start(
    name: str,
    argv: Sequence[str],
    *,
    netns: str | None = None,
    mntns: str | None = None,
    env: Mapping[str, str] | None = None,
    log: str | None = None,
    cwd: str = "/",
    record: Recorder | None = None,
    lab_token: str | None = None,
    stdin: int | None = None,
) -> Daemon:
    """Start a daemon named ``name`` (journal key) running ``argv`` inside ``netns`` (and
    ``mntns``), both given as paths. ``record(kind, name, phase=..., **data)`` (e.g.
    ``LabState.record``) is called before the fork and once the PID is known. ``log``: a
    file in the lab's state (appended to; its directory must be a real one of ours).
    ``lab_token`` (default ``$MULTIHOME_LAB``) goes into its environment. ``stdin``: a
    descriptor for its standard input (default /dev/null)."""
    check_name(name, "process name")
    args = _resolve(argv)
    token = secrets.token_hex(8)
    fds: list[tuple[int, int]] = []
    out: int | None = None
    try:
        if netns is not None:
            fds.append((ns.open_ns(netns), ns.CLONE_NEWNET))
        if mntns is not None:
            fds.append((ns.open_ns(mntns), ns.CLONE_NEWNS))
        targets = tuple(fds)
        out = (
            safefs.append_fd(log, mode=0o644)
            if log
            else os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
        )
        child_env = dict(os.environ if env is None else env)
        child_env[ENV_TOKEN] = token
        lab = lab_token if lab_token is not None else os.environ.get(ENV_LAB)
        if lab:
            child_env[ENV_LAB] = lab
        if record is not None:
            record("process", name, phase="intent", argv=args, token=token, netns=netns)
        popen_args: dict[str, Any] = {
            "stdin": subprocess.DEVNULL if stdin is None else stdin,
            "stdout": out,
            "stderr": subprocess.STDOUT,
            "env": child_env,
            "cwd": cwd,
            "start_new_session": True,
            "close_fds": True,
        }
        try:
            spawn, owner = _spawner
            if stdin is not None:  # the other two ways give it /dev/null
                pid = _spawn_detached(args, popen_args, targets)
            elif _nested_pid_namespace() and ns.thread_count() == 1:
                pid = _spawn_here(args, child_env, out, targets, cwd)
            elif spawn is not None and owner == os.getpid():
                pid = spawn(args, child_env, out, targets, cwd)
            else:
                pid = _spawn_detached(args, popen_args, targets)
        except (ProcessError, OSError) as exc:
            if record is not None:
                record("process", name, phase="removed")
            raise ProcessError(f"cannot start {name} ({args[0]}): {exc}") from exc
        started = ns.start_time(pid)
        if started is None:
            said = log_tail(log) if log else "no log"
            raise ProcessError(f"{name} ({args[0]}) exited at once: {said}")
        if record is not None:
            record("process", name, phase="done", pid=pid, start_time=started)
        return Daemon(name=name, pid=pid, start_time=started, argv=tuple(args), token=token)
    finally:
        for fd, _ in fds:
            os.close(fd)
        if out is not None:
            os.close(out)
