"""One plugin process over pipes, started with ``posix_spawn`` (vfork in glibc): Popen's job
for the one case the runtime has (stdin in, stdout and stderr out, its own process group, a
deadline) without Popen's per-call Python work (file objects, the environment encoded item
by item, selectors), about half of the caller's CPU a plugin. It inherits the caller's
namespaces and working directory, so :func:`multihome.cni.ns.inside` decides where it runs.
Its exit status is read without reaping it; the zombie is reaped at a later :func:`start`
(or :func:`reap_ended`), once it has been dead a few ms (see ``_zombies``): until then the
caller has a child that ``waitpid(-1)`` would see.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

_RESTORED_SIGNALS = (signal.SIGPIPE, signal.SIGXFSZ)  # Python ignores them; Popen restores them


class Expired(Exception):
    """The deadline passed before the process ended (its group was killed and reaped)."""


@dataclass
class Child:
    """A started process: its PID (also its process group) and our ends of its pipes."""

    pid: int
    stdin: int
    stdout: int
    stderr: int
    returncode: int | None = None
    _open: list[int] = field(default_factory=list)


def start(path: str, env: Mapping[str, str], close: Sequence[int]) -> Child:
    """Start ``path`` (argv ``[path]``) in its own process group, with every descriptor of
    ours closed in it, as Popen's ``close_fds``: close-on-exec, or in ``close`` (what
    :func:`inheritable` found, before the caller entered namespaces whose /proc may not
    show it). OSError if it can't be executed."""
    reap_ended()
    fds: list[int] = []
    try:
        for _ in range(3):
            fds.extend(os.pipe2(os.O_CLOEXEC))
        in_r, in_w, out_r, out_w, err_r, err_w = fds
        actions: list[tuple[int, ...]] = [
            (os.POSIX_SPAWN_DUP2, in_r, 0),
            (os.POSIX_SPAWN_DUP2, out_w, 1),
            (os.POSIX_SPAWN_DUP2, err_w, 2),
        ]
        actions += [(os.POSIX_SPAWN_CLOSE, fd) for fd in close]
        pid = os.posix_spawn(
            path, [path], env, file_actions=actions, setpgroup=0, setsigdef=_RESTORED_SIGNALS
        )
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise
    for fd in (in_r, out_w, err_w):
        os.close(fd)
    return Child(pid, in_w, out_r, err_r, _open=[in_w, out_r, err_r])


def usable() -> bool:
    """Whether this process has descriptors 0-2 open: else :func:`start`'s pipes could
    take them and the spawn actions' dup2 would clobber its own (use Popen then)."""
    try:
        for fd in (0, 1, 2):
            os.fstat(fd)
    except OSError:
        return False
    return True


_sealed = False


def seal() -> None:
    """Make every descriptor above 2 that a new program would inherit close-on-exec, and
    from then on have :func:`inheritable` answer ``[]`` without listing /proc/self/fd (a
    lab's attach workers hold hundreds of descriptors, ~1.5 us each to list and check,
    at every plugin start). Also for the children this process forks. Only for a process
    that makes no descriptor inheritable afterwards (Python makes none unless asked)."""
    global _sealed
    found = inheritable()
    if found is None:
        return
    for fd in found:
        os.set_inheritable(fd, False)
    _sealed = True


def inheritable() -> list[int] | None:
    """Our descriptors above 2 a new program would inherit (Python makes its own
    close-on-exec: these came from whoever started us); None if /proc can't tell."""
    if _sealed:
        return []
    try:
        entries = os.listdir("/proc/self/fd")
    except OSError:
        return None
    found = []
    for entry in entries:
        fd = int(entry)
        if fd > 2:
            with contextlib.suppress(OSError):  # the listing's own, closed by now
                if os.get_inheritable(fd):
                    found.append(fd)
    return found


def communicate(child: Child, data: bytes, timeout: float) -> tuple[bytes, bytes]:
    """Write ``data`` to its stdin, read stdout and stderr to their end, reap it; sets
    ``child.returncode`` (negative: killed by that signal). :class:`Expired` after
    ``timeout`` seconds (the group killed and reaped first); on any exception the group is
    killed and reaped."""
    deadline = time.monotonic() + timeout
    out: list[bytes] = []
    err: list[bytes] = []
    sinks = {child.stdout: out, child.stderr: err}
    try:
        poller = select.poll()
        view = memoryview(data)
        if view:
            os.set_blocking(child.stdin, False)
            poller.register(child.stdin, select.POLLOUT)
        else:
            _close(child, child.stdin)
        for fd in sinks:
            poller.register(fd, select.POLLIN)
        waiting = len(sinks) + (1 if view else 0)
        while waiting:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Expired
            for fd, _ in poller.poll(max(1, int(left * 1000) + 1)):
                if fd == child.stdin:
                    try:
                        view = view[os.write(fd, view[:65536]) :]
                    except BlockingIOError:
                        continue
                    except BrokenPipeError:  # it did not read it all: as Popen, not an error
                        view = view[:0]
                    if not view:
                        poller.unregister(fd)
                        _close(child, fd)
                        waiting -= 1
                    continue
                chunk = os.read(fd, 65536)
                if chunk:
                    sinks[fd].append(chunk)
                else:
                    poller.unregister(fd)
                    _close(child, fd)
                    waiting -= 1
        _reap(child, deadline)
    except BaseException:
        kill(child)
        raise
    return b"".join(out), b"".join(err)


def _reap(child: Child, deadline: float) -> None:
    """Wait for it to end (its pipes are closed: it is ending) until ``deadline``, on a
    pidfd, and take its exit status without reaping it: see :func:`_reap_later`."""
    try:
        pidfd = os.pidfd_open(child.pid)
    except OSError:  # a kernel before 5.3: look now and then
        pidfd = -1
    if pidfd >= 0:
        try:
            left = deadline - time.monotonic()
            if not select.select([pidfd], [], [], max(left, 0.0))[0]:
                raise Expired
        finally:
            os.close(pidfd)
    delay = 0.0005
    while (info := os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG)) is None:
        if time.monotonic() >= deadline:
            raise Expired
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    code = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
    child.returncode = code
    _reap_later(child.pid)


# Zombies of ours, reaped a moment after they ended. Reaping a process right as it ends
# (a Go plugin's threads still going) made the kernel walk and re-walk its /proc entries
# until they were gone (release_task -> proc_flush_pid -> shrink_dcache_parent): ~2.5 ms of
# the reaper's CPU for each macvlan in a lab, against ~0.03 ms a few ms later.
_zombies: list[tuple[int, float]] = []
_REAP_AFTER = 0.005


def _reap_later(pid: int) -> None:
    _zombies.append((pid, time.monotonic()))


def reap_ended(everything: bool = False) -> None:
    """Reap the zombies that ended at least a few ms ago (``everything``: all of them)."""
    if not _zombies:
        return
    now = time.monotonic()
    keep = []
    for pid, ended in _zombies:
        if everything or now - ended >= _REAP_AFTER:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, 0)
        else:
            keep.append((pid, ended))
    _zombies[:] = keep


def kill(child: Child) -> None:
    """SIGKILL its whole process group, reap it, close our pipes."""
    for fd in list(child._open):
        _close(child, fd)
    if child.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(child.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        _, status = os.waitpid(child.pid, 0)
        child.returncode = os.waitstatus_to_exitcode(status)


def _close(child: Child, fd: int) -> None:
    if fd in child._open:
        child._open.remove(fd)
        with contextlib.suppress(OSError):
            os.close(fd)
