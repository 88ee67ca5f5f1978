"""File operations in the lab's state directory that trust nothing found there.

Every path is opened below a *base* directory (the state root, or a lab's directory) one
component at a time, each directory with ``O_DIRECTORY | O_NOFOLLOW`` relative to the one
before (``openat``), and the file itself with ``O_NOFOLLOW``. So a symbolic link placed
anywhere in the state is never followed, a FIFO or a device where a file goes is refused
before it is opened (``lstat``) and again after (``fstat``: it may be swapped in between;
``O_NONBLOCK`` keeps a FIFO from blocking that open), a hard link to a file elsewhere
(link count above 1) is refused, and so is a directory or file that is not this user's or
that group or others may write. Each refusal is a ``StateError`` that names the path, what
is there and what to do; nothing refused is changed.

New files are made with ``O_EXCL``; files replaced whole are written to a new temporary
file and renamed over the old one (readers see one or the other; a rename never follows a
link at its target).
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
import stat
from collections.abc import Iterator
from typing import Any

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


class StateError(RuntimeError):
    """The lab's state directory is unusable or holds something it must not (a link, a
    FIFO, another user's file, ...); the message says what and where."""


def kind_of(mode: int) -> str:
    """What a file of mode ``mode`` is, in words."""
    for test, name in (
        (stat.S_ISLNK, "a symbolic link"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
    ):
        if test(mode):
            return name
    return "an unknown kind of file"


def _refuse(path: str, what: str) -> StateError:
    return StateError(
        f"{path} is {what}: multihome does not follow or open it in its state directory "
        f"(it was left untouched; remove it, or use another MULTIHOME_STATE_DIR)"
    )


def check_dir(st: os.stat_result, path: str) -> None:
    """``st`` (an ``lstat``/``fstat``) must be a directory of this user that no one else may
    write. Group or others' write access is refused even with the sticky bit: another user
    could still make an entry named like a lab (or like a file of one) before we do."""
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(path, f"{kind_of(st.st_mode)}, not a directory")
    me = os.geteuid()
    if st.st_uid != me:
        raise StateError(
            f"{path} belongs to uid {st.st_uid}, not to this user (uid {me}): multihome "
            f"keeps its state only in its own directories (use another MULTIHOME_STATE_DIR)"
        )
    if st.st_mode & 0o022:
        bits = ((0o020, "its group"), (0o002, "others"))
        who = " and ".join(w for b, w in bits if st.st_mode & b)
        raise StateError(
            f"{path} is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o}): another "
            f"user could plant files in the lab's state; chmod go-w {path}"
        )


def _check_file(st: os.stat_result, path: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise _refuse(path, f"{kind_of(st.st_mode)}, not a regular file")
    if st.st_uid != os.geteuid():
        raise StateError(f"{path} belongs to uid {st.st_uid}, not to this user: left untouched")
    if st.st_nlink > 1:
        raise _refuse(path, f"a file with {st.st_nlink} hard links (it may be a file elsewhere)")


def open_dir(path: str, *, create: bool = False, mode: int = 0o700) -> int:
    """An fd of directory ``path`` (made with ``mode`` if ``create``), which must not be a
    link and must pass ``check_dir``. Its ancestors are the system's (trusted)."""
    if create:
        with contextlib.suppress(FileExistsError):
            os.makedirs(path, mode=mode)
    try:
        fd = os.open(path, _DIR_FLAGS)
    except OSError as exc:
        raise _dir_error(path, exc) from exc
    try:
        check_dir(os.fstat(fd), path)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _dir_error(path: str, exc: OSError, dir_fd: int | None = None, name: str = "") -> Exception:
    if exc.errno in (errno.ELOOP, errno.ENOTDIR):
        try:
            st = os.stat(name or path, dir_fd=dir_fd, follow_symlinks=False)
        except OSError:
            return exc
        return _refuse(path, f"{kind_of(st.st_mode)}, not a directory")
    return exc


def _parts(rel: str) -> list[str]:
    parts = [p for p in rel.split("/") if p and p != "."]
    if any(p == ".." for p in parts):
        raise StateError(f"path {rel!r} leaves the state directory")
    return parts


def walk(base: str, rel: str = "", *, create: bool = False, mode: int = 0o755) -> int:
    """An fd of directory ``base/rel``, reached component by component without following
    links (each made with ``mode`` if missing and ``create``)."""
    fd = open_dir(base)
    path = base
    try:
        for part in _parts(rel):
            path = os.path.join(path, part)
            if create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, mode, dir_fd=fd)
            try:
                nfd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise _dir_error(path, exc, fd, part) from exc
            os.close(fd)
            fd = nfd
            check_dir(os.fstat(fd), path)
    except BaseException:
        os.close(fd)
        raise
    return fd


@contextlib.contextmanager
def parent_of(path: str, base: str | None = None) -> Iterator[tuple[int, str]]:
    """``(fd of the parent directory, file name)`` of ``path``; the parent is walked from
    ``base`` (default: the parent itself is the base)."""
    parent, name = os.path.split(os.path.abspath(path))
    if not name:
        raise StateError(f"{path}: not a file name")
    if base is None:
        fd = open_dir(parent)
    else:
        base = os.path.abspath(base)
        if os.path.commonpath([base, parent]) != base:
            raise StateError(f"{path} is not inside {base}")
        fd = walk(base, os.path.relpath(parent, base))
    try:
        yield fd, name
    finally:
        os.close(fd)


def lstat(path: str, base: str | None = None) -> os.stat_result | None:
    """What is at ``path`` (not following a link there), or None."""
    with parent_of(path, base) as (dfd, name):
        try:
            return os.stat(name, dir_fd=dfd, follow_symlinks=False)
        except FileNotFoundError:
            return None


def open_file(path: str, flags: int, mode: int = 0o600, *, base: str | None = None) -> int:
    """``os.open`` of a regular file in the state, safely (see the module docstring).
    The fd is blocking and close-on-exec."""
    with parent_of(path, base) as (dfd, name):
        with contextlib.suppress(FileNotFoundError):
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            _check_file(st, path)  # before opening: a FIFO or device is never opened
        try:
            fd = os.open(name, flags | _FILE_FLAGS, mode, dir_fd=dfd)
        except OSError as exc:
            if exc.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):
                found = os.stat(name, dir_fd=dfd, follow_symlinks=False)
                raise _refuse(path, f"{kind_of(found.st_mode)}, not a regular file") from exc
            raise
    try:
        _check_file(os.fstat(fd), path)
        os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_bytes(path: str, *, base: str | None = None) -> bytes:
    """The content of a regular file (``FileNotFoundError`` if there is none)."""
    fd = open_file(path, os.O_RDONLY, base=base)
    with open(fd, "rb") as fh:
        return fh.read()


def read_text(path: str, *, base: str | None = None) -> str:
    return read_bytes(path, base=base).decode()


def append_fd(path: str, *, base: str | None = None, mode: int = 0o600) -> int:
    """An fd appending to ``path`` (made if missing): logs and the journal."""
    return open_file(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode, base=base)


def write_new(path: str, data: bytes, *, base: str | None = None, mode: int = 0o600) -> None:
    """Make ``path`` with ``data``; ``FileExistsError`` if anything is there."""
    fd = open_file(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode, base=base)
    try:
        _write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: str, data: bytes, *, base: str | None = None, mode: int = 0o600) -> None:
    """Replace ``path`` (a regular file or nothing) with ``data`` in one rename."""
    with parent_of(path, base) as (dfd, name):
        with contextlib.suppress(FileNotFoundError):
            _check_file(os.stat(name, dir_fd=dfd, follow_symlinks=False), path)
        tmp = f".{name}.{secrets.token_hex(4)}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _FILE_FLAGS, mode, dir_fd=dfd)
        try:
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            os.rename(tmp, name, src_dir_fd=dfd, dst_dir_fd=dfd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp, dir_fd=dfd)
            raise


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def makedirs(path: str, *, base: str | None = None, mode: int = 0o755) -> None:
    """Make directory ``path`` and those on the way below ``base`` (none followed;
    default base: the deepest one that exists, which must not be a link itself)."""
    path = os.path.abspath(path)
    if base is None:
        base = path
        while not os.path.lexists(base) and base != os.path.dirname(base):
            base = os.path.dirname(base)
    base = os.path.abspath(base)
    if os.path.commonpath([base, path]) != base:
        raise StateError(f"{path} is not inside {base}")
    os.close(walk(base, os.path.relpath(path, base), create=True, mode=mode))


def unlink(path: str, *, base: str | None = None) -> None:
    """Remove the file (or link) at ``path`` if there is one; never follows it."""
    with parent_of(path, base) as (dfd, name), contextlib.suppress(FileNotFoundError):
        os.unlink(name, dir_fd=dfd)


def rmtree(path: str) -> None:
    """Remove directory ``path`` and all in it, never following a link (a link is removed,
    not what it names); read-only directories inside are made writable first."""

    def retry(func: Any, target: str, _exc: Any) -> None:
        # only directories are chmod-ed (by fd, not following links): a plugin or the
        # kernel may leave read-only ones behind
        with contextlib.suppress(OSError):
            for where in (os.path.dirname(target), target):
                fd = os.open(where, _DIR_FLAGS)
                try:
                    os.fchmod(fd, 0o700)
                finally:
                    os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            func(target)

    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(path, f"{kind_of(st.st_mode)}, not a directory")
    if not shutil.rmtree.avoids_symlink_attacks:  # pragma: no cover - Linux has it
        raise StateError("this platform's rmtree may follow links")
    shutil.rmtree(path, onerror=retry)


def remove_dir(path: str, *, last: str) -> None:
    """``rmtree`` of ``path``, removing its entry ``last`` only after all the others, so a
    removal cut short (a kill) leaves ``last`` (the lab's marker) with what remains."""
    fd = os.open(path, _DIR_FLAGS)
    try:
        check_dir(os.fstat(fd), path)
        for name in os.listdir(fd):
            if name == last:
                continue
            st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                rmtree(os.path.join(path, name))
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(last, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(path)
