"""Low-level namespace and mount system calls for the lab, through libc (ctypes).

Python 3.11 has neither ``os.setns`` nor ``os.unshare`` nor ``mount``: this module owns those
calls, the ``CLONE_*``/``MS_*`` constants, and the few /proc readings the lab relies on (a
process's start time, whether it is a zombie, how many threads the caller has). Everything
here is a thin, checked wrapper: errors come back as ``OSError`` naming the call and path.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
from collections.abc import Callable, Iterator

CLONE_FS = 0x00000200
CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_BIND = 0x1000
MS_MOVE = 0x2000
MS_REC = 0x4000
MS_PRIVATE = 1 << 18
MS_SLAVE = 1 << 19
MS_SHARED = 1 << 20
MNT_DETACH = 0x2

_NS_FILES = {
    CLONE_NEWUSER: "user",
    CLONE_NEWNS: "mnt",
    CLONE_NEWNET: "net",
    CLONE_NEWPID: "pid",
}

_libc = ctypes.CDLL(None, use_errno=True)
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setns.restype = ctypes.c_int
_libc.unshare.argtypes = [ctypes.c_int]
_libc.unshare.restype = ctypes.c_int
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.mount.restype = ctypes.c_int
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int


def _fail(what: str) -> OSError:
    err = ctypes.get_errno()
    return OSError(err, f"{what}: {os.strerror(err)}")


def setns(fd: int, nstype: int) -> None:
    """Move the calling thread (user and mount: the process, which must be single-threaded)
    into the namespace open at ``fd``."""
    if _libc.setns(fd, nstype) != 0:
        raise _fail(f"setns({_NS_FILES.get(nstype, hex(nstype))})")


def unshare(flags: int) -> None:
    if _libc.unshare(flags) != 0:
        raise _fail(f"unshare({flags:#x})")


def _b(value: str | None) -> bytes | None:
    return None if value is None else os.fsencode(value)


def mount(
    source: str | None,
    target: str,
    fstype: str | None = None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    if _libc.mount(_b(source), _b(target), _b(fstype), flags, _b(data)) != 0:
        raise _fail(f"mount {source or fstype or ''} on {target}")


def umount(target: str, flags: int = MNT_DETACH) -> None:
    if _libc.umount2(_b(target), flags) != 0:
        raise _fail(f"umount {target}")


def ns_file(pid: int | str, kind: str) -> str:
    """``/proc/PID/ns/KIND``; ``pid`` may be ``"self"`` or ``"thread-self"``."""
    return f"/proc/{pid}/ns/{kind}"


def open_ns(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise OSError(exc.errno, f"cannot open namespace {path}: {exc.strerror}") from exc


@contextlib.contextmanager
def thread_in_netns(fd: int) -> Iterator[None]:
    """Run the body with the calling thread in the network namespace open at ``fd``, then
    move it back. Only the network namespace changes: sockets made and ``/proc/sys/net``
    files opened in the body belong to that namespace."""
    home = os.open(ns_file("thread-self", "net"), os.O_RDONLY | os.O_CLOEXEC)
    try:
        setns(fd, CLONE_NEWNET)
        try:
            yield
        finally:
            setns(home, CLONE_NEWNET)
    finally:
        os.close(home)


def socket_in(path: str, family: int, kind: int, proto: int = 0) -> socket.socket:
    """A socket of the network namespace at ``path`` (it stays there once made)."""
    fd = open_ns(path)
    try:
        with thread_in_netns(fd):
            return socket.socket(family, kind, proto)
    finally:
        os.close(fd)


_PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies (``up`` killed stops everything it was
    building at once); exits now if the parent is already gone."""
    parent = os.getppid()
    _libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # pragma: no cover - the parent died before prctl
        os._exit(1)


class ChildSetupError(Exception):
    """The child of :func:`held_child` failed its setup; the message is the child's."""


@contextlib.contextmanager
def held_child(setup: Callable[[], None]) -> Iterator[int]:
    """Fork a child that runs ``setup`` (e.g. unshare and mount, or start a daemon) and then
    waits; the body runs with the child's PID while the child is held (to pin its namespace
    or find its children), then the child exits and is reaped.

    The PID given is the one ``/proc`` knows the child by: a process inside the lab's PID
    namespace (a forked worker) sees its children by other PIDs than the host's ``/proc``
    that its mount namespace shows.

    ``ChildSetupError`` (before the body) when ``setup`` raised or the child died.
    """
    up_r, up_w = os.pipe()
    down_r, down_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        code = 1
        try:
            os.close(up_r)
            os.close(down_w)
            known_as = os.readlink("/proc/self")  # before setup: it may change our /proc
            setup()
            os.write(up_w, f"ok {known_as}".encode())
            os.read(down_r, 1)  # held until the parent is done with us
            code = 0
        except BaseException as exc:
            with contextlib.suppress(BaseException):
                os.write(up_w, f"error {exc}".encode())
        finally:
            os._exit(code)
    os.close(up_w)
    os.close(down_r)
    try:
        reply = os.read(up_r, 4096).decode(errors="replace").strip()
        status, _, known_as = reply.partition(" ")
        if status != "ok":
            raise ChildSetupError(reply.removeprefix("error ") or "the child died")
        yield int(known_as)
    finally:
        os.close(up_r)
        os.close(down_w)
        os.waitpid(pid, 0)


def pids_with(proc_file: str, wanted: bytes) -> list[int]:
    """PIDs whose ``/proc/PID/<proc_file>`` (``cmdline``, ``environ``: NUL-separated) has
    ``wanted`` as one of its items; processes that vanish or can't be read are skipped."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/{proc_file}", "rb") as fh:
                items = fh.read().split(b"\0")
        except OSError:
            continue
        if wanted in items:
            found.append(int(entry))
    return found


def thread_count() -> int:
    return len(os.listdir("/proc/self/task"))


def require_single_thread(what: str) -> None:
    count = thread_count()
    if count != 1:
        raise RuntimeError(f"{what} needs a single-threaded process (this one has {count})")


def _stat_fields(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command (field 3 onwards), or None if gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    # the command is in parentheses and may itself contain spaces and parentheses
    return raw[raw.rindex(b")") + 2 :].decode().split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/PID/stat field 22), which
    with the PID identifies one process across PID reuse; None if there is no such PID."""
    fields = _stat_fields(pid)
    return None if fields is None else int(fields[19])


def is_running(pid: int, started: int | None = None) -> bool:
    """True if ``pid`` exists, is not a zombie and (when given) started at ``started``."""
    fields = _stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return False
    return started is None or int(fields[19]) == started


def reap(pid: int) -> None:
    """Collect ``pid`` if it is a child of ours that has exited; harmless otherwise. ``pid``
    is as /proc names it: inside the lab's PID namespace (a forked worker) the same number
    may name another child of ours, so nothing is reaped there."""
    me = os.readlink("/proc/self")
    if me != str(os.getpid()):  # our PIDs and /proc's differ: leave it to the lab's init
        return
    fields = _stat_fields(pid)
    if fields is None or fields[1] != me:
        return
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)
