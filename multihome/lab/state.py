"""The lab's state on disk: where it lives, its lock, its journal, and teardown from it.

Location (``state_root()``): ``$MULTIHOME_STATE_DIR`` when set; else ``/run/multihome``
for root; else ``$XDG_RUNTIME_DIR/multihome``; else ``/tmp/multihome-UID``. All are on
tmpfs on a usual system, like the lab itself they do not survive a reboot. A lab's
directory is ``<root>/<lab>/`` (mode 0700) with:

- ``lock``: ``fcntl.flock``-ed exclusively by the one ``up``/``down`` working on the lab;
  a second one gets ``LabLocked`` at once (it never waits);
- ``journal.jsonl``: append-only, one JSON object a line, each fsync-ed, written BEFORE the
  kernel object or process it names is made (``intent``) and again when it exists
  (``done``, with e.g. the PID and start time). A torn last line (crash mid-write) is
  ignored on reading;
- ``scratch/``: the sandbox's scratch mountpoint (empty seen from the host);
- ``nodes/<node>/...``: per-node directories bind-mounted into nodes (see nodes.py).

``teardown()`` works from the journal alone, after a crash too, and is idempotent: it stops
the recorded processes that are still the ones recorded (PID + start time), kills the
sandbox's supervisor (found by PID, or by the token on its command line if ``up`` died
before recording the PID), which takes everything inside with it, then removes the lab's
directory.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import stat
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import processes, sandbox
from .names import check_name

ENV_STATE_DIR = "MULTIHOME_STATE_DIR"


class LabLocked(RuntimeError):
    """Another multihome command holds the lab's lock."""


class StateError(RuntimeError):
    """The lab's state directory is unusable (wrong owner, not a directory, ...)."""


def state_root() -> Path:
    """Where labs keep their state (see the module docstring)."""
    override = os.environ.get(ENV_STATE_DIR)
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/run/multihome")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "multihome"
    return Path(f"/tmp/multihome-{os.geteuid()}")


def _own_dir(path: Path) -> None:
    """Make ``path`` (0700) or check that the existing one is a real directory of ours."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700, parents=True)
    st = os.lstat(path)
    if not stat.S_ISDIR(st.st_mode):
        raise StateError(f"{path} is not a directory")
    if st.st_uid != os.geteuid():
        raise StateError(f"{path} belongs to uid {st.st_uid}, not to this user")


class LabState:
    """One lab's directory. ``lock()`` before changing anything; ``record()`` before each
    kernel object or process is made."""

    def __init__(self, name: str, root: Path | None = None) -> None:
        self.name = check_name(name, "lab name")
        self.root = Path(root) if root is not None else state_root()
        self.dir = self.root / self.name
        self._lock_fd: int | None = None

    # -- paths ------------------------------------------------------------------------------
    @property
    def journal_path(self) -> Path:
        return self.dir / "journal.jsonl"

    @property
    def scratch(self) -> Path:
        return self.dir / "scratch"

    def node_dir(self, node: str) -> Path:
        return self.dir / "nodes" / check_name(node, "node name")

    def exists(self) -> bool:
        return self.dir.is_dir()

    def prepare(self) -> None:
        """Make the lab's directory and scratch dir (idempotent)."""
        _own_dir(self.root)
        _own_dir(self.dir)
        self.scratch.mkdir(mode=0o755, exist_ok=True)

    # -- lock -------------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[LabState]:
        """Hold the lab's exclusive lock for the body; ``LabLocked`` if another process has
        it. The lock file is re-checked after locking, so a ``down`` that removed the
        directory meanwhile can't leave two holders."""
        self.acquire()
        try:
            yield self
        finally:
            self.release()

    def acquire(self) -> None:
        if self._lock_fd is not None:
            return
        while True:
            _own_dir(self.root)
            _own_dir(self.dir)
            path = self.dir / "lock"
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                holder = os.read(fd, 64).decode(errors="replace").strip()
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES):
                    who = f" (pid {holder})" if holder else ""
                    raise LabLocked(
                        f"lab {self.name!r} is busy: another multihome up/down{who} is "
                        f"working on it (lock {path})"
                    ) from exc
                raise
            try:
                same = os.fstat(fd).st_ino == os.stat(path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self._lock_fd = fd
                return
            os.close(fd)  # the directory was removed and made again: lock the new file

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def locked(self) -> bool:
        return self._lock_fd is not None

    # -- journal ----------------------------------------------------------------------------
    def record(self, kind: str, name: str, /, phase: str = "intent", **data: Any) -> None:
        """Append one journal entry and fsync it. ``phase``: ``intent`` (before making the
        object), ``done`` (it exists; e.g. with its PID) or ``removed``."""
        if not self.locked:
            raise StateError(f"lab {self.name!r}: record() without holding the lock")
        if phase not in ("intent", "done", "removed"):
            raise ValueError(f"unknown journal phase {phase!r}")
        entry: dict[str, Any] = dict(data)
        entry.update(t=round(time.time(), 6), kind=kind, name=name, phase=phase)
        line = (json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode()
        fd = os.open(
            self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600
        )
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def entries(self) -> list[dict[str, Any]]:
        """Every journal entry in order; a torn (partial) last line is skipped."""
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            return []
        found = []
        for line in raw.splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict):
                found.append(entry)
        return found

    def objects(self) -> dict[tuple[str, str], dict[str, Any]]:
        """The latest entry of each (kind, name) that was not removed afterwards, merged
        over its earlier entries (so an intent's data and a done's PID come together)."""
        merged: dict[tuple[str, str], dict[str, Any]] = {}
        for entry in self.entries():
            key = (str(entry.get("kind")), str(entry.get("name")))
            if entry.get("phase") == "removed":
                merged.pop(key, None)
                continue
            merged.setdefault(key, {}).update(entry)
        return merged

    def sandbox(self) -> sandbox.Sandbox | None:
        """The recorded sandbox, when its PID is known."""
        found = self.objects().get(("sandbox", self.name))
        if not found or "pid" not in found:
            return None
        return sandbox.Sandbox.from_dict(found)

    # -- teardown ---------------------------------------------------------------------------
    def teardown(self, timeout: float = 5.0) -> None:
        """Remove everything the journal names and then the lab's directory. Works after a
        crash and again after a partial teardown; needs the lock (taken if not held)."""
        if not self.dir.exists():
            return
        held = self.locked
        if not held:
            self.acquire()
        try:
            objects = self.objects()
            # processes first (newest first), then the sandbox with all that is inside
            procs = [v for (kind, _), v in objects.items() if kind == "process"]
            for entry in reversed(procs):
                processes.stop_recorded(entry, timeout=timeout)
            for (kind, _), entry in objects.items():
                if kind != "sandbox":
                    continue
                if "pid" in entry and "start_time" in entry:
                    sandbox.kill_holder(int(entry["pid"]), int(entry["start_time"]), timeout)
                if entry.get("token"):
                    for pid in sandbox.find_holders(str(entry["token"])):
                        started = processes.start_time(pid)
                        if started is not None:
                            sandbox.kill_holder(pid, started, timeout)
            _rmtree(self.dir)
        finally:
            self.release()


def _rmtree(path: Path) -> None:
    def _retry(func: Any, target: str, _exc: Any) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(target), 0o700)
            os.chmod(target, 0o700)
        with contextlib.suppress(FileNotFoundError):
            func(target)

    if path.exists():
        shutil.rmtree(path, onerror=_retry)


def list_labs(root: Path | None = None) -> list[str]:
    base = Path(root) if root is not None else state_root()
    try:
        return sorted(p.name for p in base.iterdir() if p.is_dir())
    except FileNotFoundError:
        return []
