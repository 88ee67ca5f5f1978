"""The lab's sandbox: its own user, mount, network and PID namespaces, held by a supervisor.

``create()`` forks a child that unshares a user namespace (the caller's uid is root inside:
the whole uid range when the caller is root, only the caller's uid otherwise), then mount,
network and PID namespaces, prepares the mount namespace and starts the supervisor
(``holder.py``) as PID 1 of the new PID namespace. The returned ``Sandbox`` names it by PID
and start time, which is all a later process needs to find it again.

The mount namespace is private (no propagation to or from the host) and has:

- a tmpfs on the lab's ``scratch`` directory (inside the state dir; the host sees it empty),
  holding ``ns/`` (mount-namespace files of nodes) and ``layers/`` (overlay layers);
- its own tmpfs on ``/run/netns``, shared inside the sandbox, so network namespaces made
  inside with ``ip netns add`` semantics are seen by every node and never by the host;
- each directory in ``mountpoints`` that the host lacks (e.g. ``/etc/rancher/rke2``): the
  deepest existing ancestor gets an overlay whose upper layer is on the scratch tmpfs, or,
  when mounts lie below it (``/run`` with ``/run/lock``), a tmpfs with its entries bound
  back, and the directory is made there. The host's filesystem is never written.

The host's links, routes, addresses, sysctls, firewall and mounts are never touched.

Entering: ``enter()`` moves the calling (single-threaded) process in for good: user, then
mount, then network namespace, and its later children into the PID namespace; ``call()``
does the same in a forked child and returns what a function returned there; ``command()``
gives an ``nsenter`` argv (optionally into a node's netns and mount ns) for subprocess.

The supervisor carries the sandbox's token on its command line and in its environment
(``MULTIHOME_LAB``: ``up`` uses the lab's token). ``destroy()`` SIGKILLs the supervisor (the
PID and start time must match and the token be in its environment) and waits until it is
gone: the kernel kills every process of the lab's PID namespace with it, and the
namespaces, links and mounts go with their last user.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import pickle
import secrets
import select
import signal
import socket
import stat
import struct
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from . import ns, processes
from .names import check_abs_path, check_name

T = TypeVar("T")

HOLDER_TAG = "multihome-sandbox"
NETNS_DIR = "/run/netns"
MOUNT_SOURCE = "multihome"  # the source name of every mount the sandbox makes
_HOLDER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "holder.py")
_START_TIMEOUT = 10.0

_AT_FDCWD = -100
_AT_RECURSIVE = 0x8000
_OPEN_TREE_CLONE = 1
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_SYS_OPEN_TREE = 428  # the same number on every architecture with the unified table
_SYS_MOVE_MOUNT = 429

_libc = ctypes.CDLL(None, use_errno=True)


class SandboxError(RuntimeError):
    """The sandbox could not be made, entered or removed; the message says why."""


@dataclass(frozen=True)
class Sandbox:
    """A running sandbox, by its supervisor's PID and start time (clock ticks since boot)."""

    name: str
    pid: int
    start_time: int
    scratch: str
    token: str
    cpu: int = -1  # the CPU its namespaces were made on (see ``pin_to``)

    # -- identity -------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sandbox:
        return cls(
            name=str(data["name"]),
            pid=int(data["pid"]),
            start_time=int(data["start_time"]),
            scratch=str(data["scratch"]),
            token=str(data["token"]),
            cpu=int(data.get("cpu", -1)),
        )

    def ns_path(self, kind: str) -> str:
        """``/proc/PID/ns/KIND`` of the supervisor: user, mnt, net or pid."""
        return ns.ns_file(self.pid, kind)

    def host_path(self, path: str) -> str:
        """``path`` as seen inside the sandbox, reachable from the host (via /proc/PID/root)."""
        return f"/proc/{self.pid}/root{check_abs_path(path)}"

    @property
    def ns_dir(self) -> str:
        """Where node mount-namespace files live (visible inside the sandbox only)."""
        return os.path.join(self.scratch, "ns")

    @property
    def layers_dir(self) -> str:
        return os.path.join(self.scratch, "layers")

    def alive(self) -> bool:
        return ns.is_running(self.pid, self.start_time)

    # -- entering -------------------------------------------------------------------------
    def _open_all(self) -> list[tuple[int, int]]:
        fds: list[tuple[int, int]] = []
        try:
            for kind, flag in (
                ("user", ns.CLONE_NEWUSER),
                ("mnt", ns.CLONE_NEWNS),
                ("net", ns.CLONE_NEWNET),
                ("pid", ns.CLONE_NEWPID),
            ):
                fds.append((ns.open_ns(self.ns_path(kind)), flag))
        except OSError as exc:
            for fd, _ in fds:
                os.close(fd)
            raise SandboxError(f"sandbox {self.name!r} (pid {self.pid}) is gone: {exc}") from exc
        if not self.alive():  # the PID was reused between our look and the open
            for fd, _ in fds:
                os.close(fd)
            raise SandboxError(f"sandbox {self.name!r} (pid {self.pid}) is gone")
        return fds

    def enter(self) -> None:
        """Move this process into the sandbox for good (it must be single-threaded): user,
        mount and network namespace now, and every child it forks from now on into the
        lab's PID namespace. The working directory is kept when it exists inside."""
        ns.require_single_thread("entering a sandbox")
        fds = self._open_all()
        try:
            cwd = os.getcwd()
        except OSError:
            cwd = "/"
        try:
            for fd, flag in fds:
                ns.setns(fd, flag)
        except OSError as exc:
            raise SandboxError(f"cannot enter sandbox {self.name!r}: {exc}") from exc
        finally:
            for fd, _ in fds:
                os.close(fd)
        try:
            os.chdir(cwd)
        except OSError:
            os.chdir("/")

    def call(self, fn: Callable[..., T], *args: Any, timeout: float | None = None) -> T:
        """Run ``fn(*args)`` in a forked child that entered the sandbox and return its result
        (which must pickle); an exception raised there is raised here."""
        reader, writer = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            os.close(reader)
            code = 0
            try:
                self.enter()
                payload = pickle.dumps(("ok", fn(*args)))
            except BaseException as exc:
                code = 1
                payload = _pickle_error(exc)
            try:
                with open(writer, "wb") as out:
                    out.write(payload)
                sys.stdout.flush()
                sys.stderr.flush()
            finally:
                os._exit(code)
        os.close(writer)
        try:
            data = _read_all(reader, timeout, what=f"sandbox {self.name!r} call")
        except BaseException:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
            raise
        finally:
            os.close(reader)
            os.waitpid(pid, 0)
        if not data:
            raise SandboxError(f"the child running in sandbox {self.name!r} died")
        status, value = pickle.loads(data)
        if status == "ok":
            return value  # type: ignore[no-any-return]
        raise value

    def command(
        self,
        argv: Sequence[str],
        *,
        netns: str | None = None,
        mntns: str | None = None,
        cwd: str = "/",
    ) -> list[str]:
        """An ``nsenter`` argv that runs ``argv`` inside the sandbox (in its PID namespace),
        optionally in a node's network namespace and mount namespace, given by their paths
        inside the sandbox (``/run/netns/NODE``, ``<scratch>/ns/NODE``)."""
        if not argv:
            raise ValueError("empty argv")
        net = self.host_path(netns) if netns else self.ns_path("net")
        mnt = self.host_path(mntns) if mntns else self.ns_path("mnt")
        return [
            "nsenter",
            f"--user={self.ns_path('user')}",
            f"--mount={mnt}",
            f"--net={net}",
            f"--pid={self.ns_path('pid')}",
            "--preserve-credentials",
            f"--wd={check_abs_path(cwd)}",
            "--",
            *argv,
        ]

    # -- teardown -------------------------------------------------------------------------
    def destroy(self, timeout: float = 5.0) -> None:
        """Kill the supervisor and wait until it is gone (idempotent)."""
        kill_holder(self.pid, self.start_time, timeout=timeout, token=self.token)


def kill_holder(pid: int, started: int, timeout: float = 5.0, *, token: str) -> None:
    """SIGKILL a sandbox supervisor by PID if it still is the one that started at
    ``started`` with ``token`` in its environment and the supervisor's tag on its command
    line, and wait until it is gone (a zombie counts as gone)."""
    ns.reap(pid)
    if not (processes.proves(pid, started, {processes.ENV_LAB: token}) and _has_holder_tag(pid)):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while ns.is_running(pid, started):
        ns.reap(pid)
        if time.monotonic() > deadline:
            raise SandboxError(f"sandbox supervisor {pid} did not exit within {timeout} s")
        time.sleep(delay)
        delay = min(delay * 2, 0.02)
    ns.reap(pid)


def find_holders(token: str) -> list[int]:
    """PIDs of sandbox supervisors whose command line carries ``token`` (for a teardown
    after a crash between starting one and recording its PID)."""
    return [pid for pid in ns.pids_with("cmdline", token.encode()) if _has_holder_tag(pid)]


def _has_holder_tag(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return HOLDER_TAG.encode() in fh.read().split(b"\0")
    except OSError:
        return False


def new_token() -> str:
    return secrets.token_hex(8)


def pin_to(cpu: int) -> None:
    """Pin the calling thread to ``cpu`` when allowed (a no-op for -1 or a CPU not ours).

    Since Linux 6.18 namespace ids come from per-CPU batches, so a mount namespace made
    later on another CPU may get a smaller id, and the kernel refuses to bind-mount a mount
    namespace file whose id is not above the binder's own (``mnt_ns_loop``: EINVAL). Making
    node mount namespaces on the CPU the sandbox's was made on keeps ids in order."""
    if cpu >= 0 and cpu in os.sched_getaffinity(0):
        os.sched_setaffinity(0, {cpu})


# -- creation -------------------------------------------------------------------------------
def create(
    name: str,
    scratch: str,
    *,
    mountpoints: Iterable[str] = (),
    token: str | None = None,
) -> Sandbox:
    """Start a sandbox for lab ``name``. ``scratch`` is an existing empty directory of the
    lab's own (in its state dir); inside the sandbox a tmpfs covers it. ``mountpoints``:
    directories that must exist inside (made by overlay where the host lacks them).
    ``token`` (default: a new random one) goes on the supervisor's command line."""
    return begin(name, scratch, mountpoints=mountpoints, token=token).wait()


def begin(
    name: str,
    scratch: str,
    *,
    mountpoints: Iterable[str] = (),
    token: str | None = None,
) -> Starting:
    """``create`` in two halves: the child that makes the namespaces is forked and given its
    id maps here; it mounts and starts the supervisor while the caller does other work, and
    ``Starting.wait()`` returns the ``Sandbox`` (``abandon()`` when the caller gives up)."""
    check_name(name, "lab name")
    scratch = check_abs_path(os.path.realpath(scratch), "scratch dir")
    wanted = [check_abs_path(p, "mountpoint") for p in mountpoints]
    for path in [scratch, *wanted]:
        if any(c in path for c in ",:\\"):
            raise SandboxError(f"path {path!r} contains ',', ':' or '\\' (overlay can't use it)")
    if not os.path.isdir(scratch):
        raise SandboxError(f"scratch dir {scratch} does not exist")
    token = token or new_token()
    to_parent_r, to_parent_w = os.pipe()
    to_child_r, to_child_w = os.pipe()
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(to_parent_r)
        os.close(to_child_w)
        os.close(ready_r)
        _child(name, scratch, wanted, token, to_parent_w, to_child_r, ready_w)
    os.close(to_parent_w)
    os.close(to_child_r)
    os.close(ready_w)
    starting = Starting(name, scratch, token, pid, to_parent_r, to_child_w, ready_r)
    try:
        first = _read_line(to_parent_r, _START_TIMEOUT)
        if first != "userns":
            raise SandboxError(f"cannot create sandbox {name!r}: {first or 'child died'}")
        _write_id_maps(pid)
        os.write(to_child_w, b"m")
        starting.went_ahead = True
    except BaseException:
        starting.abandon()
        raise
    return starting


class Starting:
    """A sandbox being made (see ``begin``): its child mounts and starts the supervisor."""

    def __init__(
        self, name: str, scratch: str, token: str, pid: int, from_child: int, to_child: int,
        ready: int,
    ) -> None:  # fmt: skip
        self.name, self.scratch, self.token, self.pid = name, scratch, token, pid
        self._fds: tuple[int, ...] = (from_child, to_child, ready)
        self._holder = 0
        self.went_ahead = False  # the child was told to go on (it may fork the supervisor)
        self._asked = False  # its reply was read (or tried)

    def wait(self) -> Sandbox:
        """The sandbox, once its supervisor runs; ``SandboxError`` (all of it killed) if
        it could not be made."""
        from_child, _, ready = self._fds
        name = self.name
        try:
            self._asked = True
            reply = _read_line(from_child, _START_TIMEOUT)
            if not reply.startswith("holder "):
                raise SandboxError(f"cannot create sandbox {name!r}: {reply or 'child died'}")
            self._holder, cpu = (int(x) for x in reply.split()[1:3])
            if _read_all(ready, _START_TIMEOUT, what="sandbox supervisor start") != b"r":
                raise SandboxError(
                    f"sandbox {name!r}: the supervisor (pid {self._holder}) did not start"
                )
            started = ns.start_time(self._holder)
            if started is None:
                raise SandboxError(f"sandbox {name!r}: the supervisor (pid {self._holder}) died")
            sb = Sandbox(
                name=name, pid=self._holder, start_time=started, scratch=self.scratch,
                token=self.token, cpu=cpu,
            )  # fmt: skip
        except BaseException:
            self.abandon()
            raise
        self._close()
        return sb

    def abandon(self) -> None:
        """Kill what was started: the child, and the supervisor it may have forked once it
        went ahead (its PID is asked for first: the child says it, or that it failed, within
        moments). Nothing once ``wait`` returned or it was abandoned (the PIDs are gone)."""
        if not self._fds:
            return
        if self.went_ahead and not self._asked:
            self._asked = True
            with contextlib.suppress(Exception):
                reply = _read_line(self._fds[0], _START_TIMEOUT)
                if reply.startswith("holder "):
                    self._holder = int(reply.split()[1])
        for pid in (self._holder, self.pid):
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
        self._close()
        if self._holder:  # not our child: wait until the kernel has it gone
            deadline = time.monotonic() + 5.0
            while ns.is_running(self._holder) and time.monotonic() < deadline:
                ns.reap(self._holder)
                time.sleep(0.001)
            self._holder = 0

    def _close(self) -> None:
        if not self._fds:
            return
        for fd in self._fds:
            os.close(fd)
        self._fds = ()
        with contextlib.suppress(ChildProcessError):
            os.waitpid(self.pid, 0)


def _write_id_maps(pid: int) -> None:
    uid, gid = os.geteuid(), os.getegid()
    try:
        if uid == 0:
            # root maps the whole range: daemons inside may drop to other users (nobody)
            _write(f"/proc/{pid}/uid_map", "0 0 4294967295\n")
            _write(f"/proc/{pid}/gid_map", "0 0 4294967295\n")
        else:
            _write(f"/proc/{pid}/setgroups", "deny\n")
            _write(f"/proc/{pid}/uid_map", f"0 {uid} 1\n")
            _write(f"/proc/{pid}/gid_map", f"0 {gid} 1\n")
    except OSError as exc:
        raise SandboxError(f"cannot map uid/gid into the sandbox's user namespace: {exc}") from exc


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def _child(  # pragma: no cover - runs in the forked child
    name: str,
    scratch: str,
    mountpoints: list[str],
    token: str,
    to_parent: int,
    from_parent: int,
    ready_w: int,
) -> None:
    code = 1
    try:
        os.setsid()
        try:
            ns.unshare(ns.CLONE_NEWUSER)
        except OSError as exc:
            raise SandboxError(
                f"user namespaces are not available to this user ({exc}); "
                "check kernel.unprivileged_userns_clone / user.max_user_namespaces"
            ) from exc
        os.write(to_parent, b"userns\n")
        if os.read(from_parent, 1) != b"m":
            raise SandboxError("parent went away")
        allowed = os.sched_getaffinity(0)
        cpu = min(allowed)
        os.sched_setaffinity(0, {cpu})
        ns.unshare(ns.CLONE_NEWNS | ns.CLONE_NEWNET | ns.CLONE_NEWPID)
        os.sched_setaffinity(0, allowed)
        ns.mount(None, "/", None, ns.MS_REC | ns.MS_PRIVATE)
        ns.mount(MOUNT_SOURCE, scratch, "tmpfs", ns.MS_NOSUID | ns.MS_NODEV, "mode=0755")
        os.mkdir(os.path.join(scratch, "ns"), 0o755)
        os.mkdir(os.path.join(scratch, "layers"), 0o700)
        ensure_dirs([NETNS_DIR, *mountpoints], os.path.join(scratch, "layers"))
        ns.mount(MOUNT_SOURCE, NETNS_DIR, "tmpfs", ns.MS_NOSUID | ns.MS_NODEV, "mode=0755")
        ns.mount(None, NETNS_DIR, None, ns.MS_SHARED)
        _loopback_up()
        holder = os.fork()
        if holder == 0:
            _exec_holder(name, token, ready_w)
        os.write(to_parent, f"holder {holder} {cpu}\n".encode())
        code = 0
    except BaseException as exc:
        with contextlib.suppress(BaseException):
            msg = " ".join(str(exc).split()) or type(exc).__name__
            os.write(to_parent, f"error {msg}\n".encode())
    finally:
        os._exit(code)


def _exec_holder(name: str, token: str, ready_w: int) -> None:  # pragma: no cover - child
    try:
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        if ready_w != 3:
            os.dup2(ready_w, 3)
        os.closerange(4, 1 << 20)
        os.set_inheritable(3, True)
        argv = [sys.executable, "-I", "-S", _HOLDER, HOLDER_TAG, name, token, "3"]
        os.execve(sys.executable, argv, {**os.environ, processes.ENV_LAB: token})
    finally:
        os._exit(127)


def _loopback_up() -> None:
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        req = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(sock, siocgifflags, req)[:18])[1]
        fcntl.ioctl(sock, siocsifflags, struct.pack("16sH", b"lo", flags | iff_up))


# -- directories inside the sandbox ---------------------------------------------------------
@dataclass(frozen=True)
class _Mount:
    mount_id: int
    mountpoint: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def _mounts() -> list[_Mount]:
    found = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            left, _, right = line.partition(" - ")
            fields = left.split()
            rfields = right.split()
            found.append(
                _Mount(
                    mount_id=int(fields[0]),
                    mountpoint=_unescape(fields[4]),
                    fstype=rfields[0],
                    source=_unescape(rfields[1]) if len(rfields) > 1 else "",
                )
            )
    return found


def _under(path: str, parent: str) -> bool:
    return parent == "/" or path == parent or path.startswith(parent + "/")


def _mount_of(path: str, mounts: list[_Mount]) -> _Mount:
    """The topmost mount ``path`` lives on."""
    best: _Mount | None = None
    for m in mounts:  # later lines are mounted later (on top)
        if _under(path, m.mountpoint) and (
            best is None or len(m.mountpoint) >= len(best.mountpoint)
        ):
            best = m
    assert best is not None
    return best


def ensure_dirs(paths: Iterable[str], layers: str) -> None:
    """Make each directory in ``paths`` exist in the current mount namespace (the sandbox's)
    without writing the host's filesystem: a directory on one of our own mounts (tmpfs or
    overlay named ``multihome``) is made directly; otherwise the deepest existing ancestor is
    covered first, by an overlay with its upper layer in ``layers`` when no mount lies below
    it, else by a tmpfs holding its entries bound back (``_cover``). Run inside the sandbox."""
    for path in paths:
        check_abs_path(path)
        if os.path.isdir(path):
            continue
        ancestor = path
        while not os.path.isdir(ancestor):
            ancestor = os.path.dirname(ancestor)
        mounts = _mounts()
        if _mount_of(ancestor, mounts).source != MOUNT_SOURCE:
            if ancestor == "/":
                raise SandboxError(f"cannot make {path} inside the sandbox: no parent directory")
            if any(m.mountpoint != ancestor and _under(m.mountpoint, ancestor) for m in mounts):
                _cover(ancestor)
            else:
                _overlay(ancestor, layers)
        os.makedirs(path, mode=0o755, exist_ok=True)


def _overlay(target: str, layers: str) -> None:
    """Cover ``target`` (with no mount below it) by an overlay: lower: itself; upper: a new
    dir in ``layers``."""
    layer = os.path.join(layers, str(len(os.listdir(layers))))
    os.makedirs(os.path.join(layer, "upper"), mode=0o755)
    os.makedirs(os.path.join(layer, "work"), mode=0o700)
    st = os.stat(target)
    os.chmod(os.path.join(layer, "upper"), st.st_mode & 0o7777)
    opts = f"lowerdir={target},upperdir={layer}/upper,workdir={layer}/work"
    ns.mount(MOUNT_SOURCE, target, "overlay", 0, opts)


def _cover(target: str) -> None:
    """Cover ``target``, which has mounts below it, by a tmpfs on which each of its entries
    is bound back: directories and files by a recursive bind (cloned before the tmpfs hides
    them), symlinks recreated.

    An overlay can't be used here: every mount the sandbox inherited from the host is locked
    to its parent (it was copied into a mount namespace owned by a less privileged user
    namespace), and overlayfs refuses a lower layer with locked mounts below it
    (``clone_private_mount``: "failed to clone lowerpath", EINVAL), e.g. /run with /run/lock
    or /run/user/N on any systemd host. A recursive bind of each entry keeps the locked
    mounts below it, so the kernel allows it. A bare tmpfs would do for /run on most hosts
    but hides what is there (/etc/resolv.conf often points into /run/systemd/resolve), so
    the entries are kept. They are a snapshot: an entry the host makes in ``target`` later
    is not seen inside (one made below a kept directory is)."""
    st = os.stat(target)
    kept: list[tuple[str, int | str, bool]] = []  # name, clone fd or link target, is dir
    try:
        for name in sorted(os.listdir(target)):
            path = os.path.join(target, name)
            try:
                mode = os.lstat(path).st_mode
                if stat.S_ISLNK(mode):
                    kept.append((name, os.readlink(path), False))
                else:
                    kept.append((name, _clone_tree(path), stat.S_ISDIR(mode)))
            except FileNotFoundError:  # gone meanwhile
                continue
        ns.mount(
            MOUNT_SOURCE,
            target,
            "tmpfs",
            ns.MS_NOSUID | ns.MS_NODEV,
            f"mode={st.st_mode & 0o7777:o}",
        )
        with contextlib.suppress(OSError):  # an owner unmapped in this user namespace
            os.chown(target, st.st_uid, st.st_gid)
        for name, what, is_dir in kept:
            path = os.path.join(target, name)
            if isinstance(what, str):
                os.symlink(what, path)
                continue
            if is_dir:
                os.mkdir(path, 0o755)
            else:  # any non-directory (file, socket, fifo, device) binds onto a file
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            _move_mount(what, path)
    finally:
        for _, what, _ in kept:
            if isinstance(what, int):
                os.close(what)


def _clone_tree(path: str) -> int:
    """A detached recursive bind of ``path`` (with every mount below it), as an fd."""
    fd: int = _libc.syscall(
        _SYS_OPEN_TREE,
        _AT_FDCWD,
        os.fsencode(path),
        _OPEN_TREE_CLONE | _AT_RECURSIVE | os.O_CLOEXEC,
    )
    if fd < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"open_tree {path}: {os.strerror(err)}")
    return fd


def _move_mount(fd: int, path: str) -> None:
    rc = _libc.syscall(
        _SYS_MOVE_MOUNT, fd, b"", _AT_FDCWD, os.fsencode(path), _MOVE_MOUNT_F_EMPTY_PATH
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"move_mount onto {path}: {os.strerror(err)}")


# -- helpers --------------------------------------------------------------------------------
def _pickle_error(exc: BaseException) -> bytes:
    try:
        return pickle.dumps(("error", exc))
    except Exception:
        text = "".join(traceback.format_exception(exc))
        return pickle.dumps(("error", SandboxError(f"{type(exc).__name__}: {exc}\n{text}")))


def _read_line(fd: int, timeout: float) -> str:
    data = b""
    deadline = time.monotonic() + timeout
    while not data.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise SandboxError("timed out waiting for the sandbox to start")
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


def _read_all(fd: int, timeout: float | None, what: str) -> bytes:
    chunks: list[bytes] = []
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise SandboxError(f"timed out: {what}")
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
