"""Where plugins run: the node's network and mount namespaces.

``NodeNamespaces`` names them by path (``/proc/PID/ns/net``, ``/run/netns/NAME``, ...). A
caller whose thread may join a mount namespace steps into them itself for the moment it starts
the plugin (``inside``: the plugin is then spawned with vfork and inherits them); otherwise
the plugin process enters them through ``nsenter`` or between fork and exec (``setns`` through
libc). Plugin binaries are looked up in the node's own filesystem: ``NodeFS`` holds a directory
fd on the root of the node's mount namespace (obtained once by a short-lived forked child), so
lookups and stats from this process see the node's mounts.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import shutil
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000

_libc = ctypes.CDLL(None, use_errno=True)
_libc_setns = _libc.setns
_libc_setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc_setns.restype = ctypes.c_int


def setns(fd: int, nstype: int) -> None:
    """Move the calling thread into the namespace open at ``fd`` (Python 3.11 has no os.setns)."""
    if _libc_setns(fd, nstype) != 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))


class NamespaceUnavailable(Exception):
    """A node namespace file that can't be opened or entered."""


def _open_ns(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise NamespaceUnavailable(f"cannot open namespace {path}: {exc.strerror}") from exc


@dataclass(frozen=True)
class NodeNamespaces:
    """The namespaces a plugin process runs in; None keeps the caller's."""

    netns: str | None = None
    mntns: str | None = None


_OWN = {CLONE_NEWNET: "/proc/thread-self/ns/net", CLONE_NEWNS: "/proc/thread-self/ns/mnt"}


def _single_threaded() -> bool:
    try:
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


@contextlib.contextmanager
def inside(node: NodeNamespaces | None) -> Iterator[bool]:
    """Move this thread into ``node``'s namespaces for the body and back after it; yields
    whether it did. It does only when there is something to enter and the kernel lets this
    thread join a mount namespace: it must not share its filesystem attributes (root,
    working directory) with another thread, as threads do unless one of them unshared them
    (``unshare(CLONE_FS)``, as the lab's link-up watcher thread does). A plugin spawned in
    the body then starts in the node with vfork and no helper program, which is the cheapest
    way to run one. Yields False otherwise (the caller uses :func:`nsenter_argv` or
    :func:`entering`). The working directory is the node's root in the body (setns moves
    it there, as it does for the plugin) and is restored after."""
    if node is None or (node.netns is None and node.mntns is None):
        yield False
        return
    wanted = [(p, k) for p, k in ((node.netns, CLONE_NEWNET), (node.mntns, CLONE_NEWNS)) if p]
    fds: list[int] = []
    entered: list[tuple[int, int]] = []  # (our own namespace's fd, kind), in entry order
    try:
        # every file is opened before the first setns: paths resolve where we are
        cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        fds.append(cwd)
        moves = []
        for path, kind in wanted:
            target = _open_ns(path)
            fds.append(target)
            home = os.open(_OWN[kind], os.O_RDONLY | os.O_CLOEXEC)
            fds.append(home)
            moves.append((target, home, kind))
        shared = False  # another thread shares our filesystem attributes: no mount ns
        for target, home, kind in moves:
            try:
                setns(target, kind)
            except OSError as exc:
                if kind == CLONE_NEWNS and exc.errno == errno.EINVAL and not _single_threaded():
                    shared = True
                    break
                raise NamespaceUnavailable(f"cannot enter the node's namespaces: {exc}") from exc
            entered.append((home, kind))
        if shared:
            for home, kind in reversed(entered):
                setns(home, kind)
            entered.clear()
        yield not shared
    finally:
        for home, kind in reversed(entered):  # failing to get back raises: we'd be astray
            setns(home, kind)
        if entered:
            os.fchdir(fds[0])
        for fd in fds:
            os.close(fd)


@functools.cache
def _nsenter() -> str | None:
    return shutil.which("nsenter")


def nsenter_argv(node: NodeNamespaces | None) -> list[str] | None:
    """An ``nsenter`` prefix that runs a program in ``node``'s namespaces, or None (nothing
    to enter, or no nsenter: use :func:`entering`). Starting the plugin through it lets
    Python spawn with vfork instead of forking the whole caller for a preexec function
    (~5 ms a plugin in a large process). The namespaces are checked here first, so a
    missing one is reported as such and not as the plugin's failure."""
    if node is None or (node.netns is None and node.mntns is None):
        return None
    nsenter = _nsenter()
    if nsenter is None:
        return None
    argv = [nsenter]
    for path, option in ((node.netns, "--net"), (node.mntns, "--mount")):
        if path is not None:
            os.close(_open_ns(path))
            argv.append(f"{option}={path}")
    return [*argv, "--"]


@contextlib.contextmanager
def entering(node: NodeNamespaces | None) -> Iterator[Callable[[], None] | None]:
    """A preexec function that enters ``node``'s namespaces in the child, or None when there
    is nothing to enter. The namespace files are opened here, in the caller's mount namespace,
    and closed on exit."""
    if node is None or (node.netns is None and node.mntns is None):
        yield None
        return
    fds: list[tuple[int, int]] = []
    try:
        if node.netns is not None:
            fds.append((_open_ns(node.netns), CLONE_NEWNET))
        if node.mntns is not None:
            fds.append((_open_ns(node.mntns), CLONE_NEWNS))
        targets = tuple(fds)

        def enter() -> None:
            for fd, kind in targets:
                setns(fd, kind)

        yield enter
    finally:
        for fd, _ in fds:
            os.close(fd)


class NodeFS:
    """Stats files in the node's mount namespace (or the caller's when there is none)."""

    def __init__(self, mntns: str | None) -> None:
        self.mntns = mntns
        self._root_fd: int | None = None
        self._root_key: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def stat(self, path: str) -> os.stat_result:
        """``os.stat`` of an absolute path as the node sees it; OSError if missing,
        NamespaceUnavailable if the node's mount namespace can't be reached."""
        if self.mntns is None:
            return os.stat(path)
        with self._lock:
            return os.stat(path.lstrip("/") or ".", dir_fd=self._root())

    def _root(self) -> int:
        """The root fd, reopened when the namespace file now names another namespace."""
        assert self.mntns is not None
        try:
            st = os.stat(self.mntns)
        except OSError as exc:
            msg = f"cannot open namespace {self.mntns}: {exc.strerror}"
            raise NamespaceUnavailable(msg) from exc
        key = (st.st_dev, st.st_ino)
        if self._root_fd is None or key != self._root_key:
            self._close()
            self._root_fd = _open_root_of(self.mntns)
            self._root_key = key
        return self._root_fd

    def close(self) -> None:
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._root_fd is not None:
            os.close(self._root_fd)
            self._root_fd = None
            self._root_key = None


def _open_root_of(mntns: str) -> int:
    """An O_PATH fd on the root of the mount namespace at ``mntns``: opened from inside it
    where this thread may step in and back (:func:`inside`), else by a forked child that
    enters it and hands the fd back over a socketpair (a fork of a large process costs a few
    ms; up's build process, before its attach workers fork, opens one per node)."""
    with inside(NodeNamespaces(mntns=mntns)) as there:
        if there:
            return os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    ns_fd = _open_ns(mntns)
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            status = 1
            try:
                ours.close()
                setns(ns_fd, CLONE_NEWNS)
                root = os.open("/", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
                socket.send_fds(theirs, [b"r"], [root])
                status = 0
            except BaseException:
                with contextlib.suppress(BaseException):
                    theirs.sendall(b"e")
            finally:
                os._exit(status)
        theirs.close()
        try:
            msg, fds, _, _ = socket.recv_fds(ours, 1, 1, socket.MSG_CMSG_CLOEXEC)
        finally:
            os.waitpid(pid, 0)
        if msg != b"r" or not fds:
            raise NamespaceUnavailable(f"cannot enter mount namespace {mntns}")
        return fds[0]
    finally:
        ours.close()
        with contextlib.suppress(OSError):
            theirs.close()
        os.close(ns_fd)
