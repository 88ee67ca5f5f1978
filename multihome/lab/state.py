"""The lab's state on disk: where it lives, its marker, lock and journal, and teardown.

Location (``state_root()``): ``$MULTIHOME_STATE_DIR`` when set; else ``/run/multihome``
for root; else ``$XDG_RUNTIME_DIR/multihome``; else ``/tmp/multihome-UID``. All are on
tmpfs on a usual system, like the lab itself they do not survive a reboot. The root must
be a directory of this user, not a link, and not writable by group or others (sticky or
not: anyone who may write it could make an entry named like a lab before we do). A lab's
directory is ``<root>/<lab>/`` (mode 0700) with:

- ``lab.json``: the marker, written first (``O_EXCL``) when the directory is made: the
  lab's name and a random token. Only a directory with it is a lab's: ``down`` removes
  nothing else (an empty directory, which a killed ``up`` can leave, holds nothing and is
  taken over). Every process the lab starts carries the token in its environment
  (``MULTIHOME_LAB``), which is how ``down`` proves a process is the lab's;
- ``lock``: ``fcntl.flock``-ed exclusively by the one ``up``/``down`` working on the lab;
  a second one gets ``LabLocked`` at once (it never waits);
- ``journal.jsonl``: append-only, one JSON object a line, written BEFORE the kernel object
  or process it names is made (``intent``) and again when it exists (``done``, with e.g.
  the PID and start time). A torn last line (crash mid-write) is ignored on reading. An
  entry is not fsync-ed: what it names (namespaces, links, processes) dies with the
  machine, so it must outlive only the process that wrote it (``up`` killed), and a
  ``write`` that returned is in the page cache, which every later reader sees; an fsync
  each cost ~7 ms on a disk-backed /run (1000 pods: some 2800 entries);
- ``scratch/``: the sandbox's scratch mountpoint (empty seen from the host);
- ``nodes/<node>/...``: per-node directories bind-mounted into nodes (see nodes.py).

Every file here is opened through ``safefs`` (no link followed, no FIFO opened).
``teardown()`` works from the journal alone, after a crash too, and is idempotent: it stops
the recorded processes that can still prove they are the ones recorded (PID + start time,
and the lab's and the process's tokens in their environment), kills the sandbox's
supervisor the same way (found by the token on its command line if ``up`` died before
recording its PID), which takes everything inside with it, then removes the directory,
its marker last (a teardown cut short leaves a lab that the next one finishes).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import processes, safefs, sandbox
from .names import check_name
from .safefs import StateError

ENV_STATE_DIR = "MULTIHOME_STATE_DIR"
MARKER = "lab.json"
MARKER_KIND = "multihome-lab"
_TOKEN = re.compile(r"[0-9a-f]{16,64}")

__all__ = ["LabLocked", "LabState", "NotALab", "StateError", "list_labs", "state_root"]


class LabLocked(RuntimeError):
    """Another multihome command holds the lab's lock."""


class NotALab(StateError):
    """A directory (or other file) in the state root has a lab's name but no lab made it."""


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


def check_root(root: Path, *, create: bool = False) -> None:
    """The state root must be this user's real directory that no one else may write."""
    os.close(safefs.open_dir(str(root), create=create, mode=0o700))


class LabState:
    """One lab's directory. ``lock()`` before changing anything; ``record()`` before each
    kernel object or process is made."""

    def __init__(
        self, name: str, root: Path | None = None, *, new_token: str | None = None
    ) -> None:
        """``new_token``: the token the lab gets if this makes its directory (default a
        random one): ``up`` gives the one a process it started early already carries."""
        self.name = check_name(name, "lab name")
        self.root = Path(root) if root is not None else state_root()
        self.dir = self.root / self.name
        self._lock_fd: int | None = None
        self._journal_fd: tuple[int, int] | None = None  # (pid that opened it, fd)
        self._token: str | None = None
        if new_token is not None and not _TOKEN.fullmatch(new_token):
            raise ValueError(f"a lab token is 16-64 hex digits, not {new_token!r}")
        self._new_token = new_token

    # -- paths ------------------------------------------------------------------------------
    @property
    def journal_path(self) -> Path:
        return self.dir / "journal.jsonl"

    @property
    def marker_path(self) -> Path:
        return self.dir / MARKER

    @property
    def scratch(self) -> Path:
        return self.dir / "scratch"

    def node_dir(self, node: str) -> Path:
        return self.dir / "nodes" / check_name(node, "node name")

    def exists(self) -> bool:
        """Whether anything is at the lab's place (a link or a file counts)."""
        return os.path.lexists(self.dir)

    # -- safe file access -------------------------------------------------------------------
    def read_text(self, path: Path) -> str:
        """A file of the lab's directory (``FileNotFoundError`` if missing)."""
        return safefs.read_text(str(path), base=str(self.root))

    def write_atomic(self, path: Path, text: str) -> None:
        """Readers (get, exec, verify) see the old file or the new one, never half of one."""
        safefs.write_atomic(str(path), text.encode(), base=str(self.root))

    def has(self, path: Path) -> bool:
        return safefs.lstat(str(path), base=str(self.root)) is not None

    # -- marker -----------------------------------------------------------------------------
    @property
    def token(self) -> str:
        """The lab's token (from its marker; ``NotALab`` if there is none)."""
        if self._token is None:
            self._token = self._read_marker()
        return self._token

    def is_lab(self) -> bool:
        """Whether the lab's place is a directory a lab made (it has a valid marker)."""
        try:
            self._read_marker()
        except (StateError, OSError):
            return False
        return True

    def _read_marker(self) -> str:
        try:
            raw = self.read_text(self.marker_path)
        except FileNotFoundError:
            raise self._not_a_lab("no lab.json marker in it") from None
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if (
            not isinstance(data, dict)
            or data.get("kind") != MARKER_KIND
            or data.get("name") != self.name
            or not isinstance(data.get("token"), str)
            or not _TOKEN.fullmatch(data["token"])
        ):
            raise self._not_a_lab("its lab.json is not the marker of this lab")
        return str(data["token"])

    def _not_a_lab(self, why: str) -> NotALab:
        return NotALab(
            f"{self.dir} was not made by multihome ({why}): it was left untouched. "
            f"Remove it yourself if it is not needed, or use another lab name"
        )

    def _ensure_dir(self) -> None:
        """Make the lab's directory with its marker first, or check the one there is."""
        check_root(self.root, create=True)
        made = False
        try:
            os.mkdir(self.dir, 0o700)
            made = True
        except FileExistsError:
            pass
        fd = safefs.walk(str(self.root), self.name)  # a real directory of ours, not a link
        try:
            empty = not os.listdir(fd)
        finally:
            os.close(fd)
        if made or empty:  # an empty one holds nothing: e.g. left by an up killed here
            token = self._new_token or secrets.token_hex(16)
            marker = {"kind": MARKER_KIND, "name": self.name, "token": token}
            with contextlib.suppress(FileExistsError):  # another up made it first: fine
                safefs.write_new(
                    str(self.marker_path), json.dumps(marker).encode(), base=str(self.root)
                )
        self._token = self._read_marker()

    def prepare(self) -> None:
        """Make the lab's directory (marker first) and scratch dir (idempotent)."""
        self._ensure_dir()
        safefs.makedirs(str(self.scratch), base=str(self.root), mode=0o755)

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
            self._ensure_dir()
            path = self.dir / "lock"
            fd = safefs.open_file(str(path), os.O_RDWR | os.O_CREAT, base=str(self.root))
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
                now = safefs.lstat(str(path), base=str(self.root))
            except (OSError, StateError):
                now = None
            if now is not None and os.fstat(fd).st_ino == now.st_ino:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
                self._lock_fd = fd
                return
            os.close(fd)  # the directory was removed and made again: lock the new file
            self._token = None

    def release(self) -> None:
        if self._journal_fd is not None:
            if self._journal_fd[0] == os.getpid():
                os.close(self._journal_fd[1])
            self._journal_fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    @property
    def locked(self) -> bool:
        return self._lock_fd is not None

    def lock_holder(self) -> int | None:
        """The PID written in the lock file (the last holder), if any."""
        try:
            return int(self.read_text(self.dir / "lock").split()[0])
        except (OSError, StateError, ValueError, IndexError):
            return None

    # -- journal ----------------------------------------------------------------------------
    def record(self, kind: str, name: str, /, phase: str = "intent", **data: Any) -> None:
        """Append one journal entry (one ``write``: no fsync, see the module's docstring).
        ``phase``: ``intent`` (before making the object), ``done`` (it exists; e.g. with
        its PID) or ``removed``."""
        if not self.locked:
            raise StateError(f"lab {self.name!r}: record() without holding the lock")
        if phase not in ("intent", "done", "removed"):
            raise ValueError(f"unknown journal phase {phase!r}")
        entry: dict[str, Any] = dict(data)
        entry.update(t=round(time.time(), 6), kind=kind, name=name, phase=phase)
        line = (json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n").encode()
        os.write(self._journal(), line)

    def _journal(self) -> int:
        """The journal, open for appending: once per process while the lock is held (a
        forked worker opens its own; every write appends whole, O_APPEND)."""
        if self._journal_fd is None or self._journal_fd[0] != os.getpid():
            fd = safefs.append_fd(str(self.journal_path), base=str(self.root))
            self._journal_fd = (os.getpid(), fd)
        return self._journal_fd[1]

    def entries(self) -> list[dict[str, Any]]:
        """Every journal entry in order; a torn (partial) last line is skipped."""
        try:
            raw = safefs.read_bytes(str(self.journal_path), base=str(self.root))
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
        try:
            return sandbox.Sandbox.from_dict(found)
        except (KeyError, TypeError, ValueError):
            return None

    def leftovers(self) -> bool:
        """Whether the directory holds more than its marker and lock (a crashed ``up``)."""
        fd = safefs.walk(str(self.root), self.name)
        try:
            return bool(set(os.listdir(fd)) - {MARKER, "lock"})
        finally:
            os.close(fd)

    # -- teardown ---------------------------------------------------------------------------
    def teardown(self, timeout: float = 5.0) -> None:
        """Remove everything the journal names and then the lab's directory. Works after a
        crash and again after a partial teardown; needs the lock (taken if not held).
        ``NotALab`` (nothing touched) if the directory is not a lab's."""
        if not self.exists():
            return
        held = self.locked
        if not held:
            self.acquire()  # checks the marker (an empty directory is taken over)
        try:
            token = self.token
            objects = self.objects()
            # processes first (newest first), then the sandbox with all that is inside
            procs = [v for (kind, _), v in objects.items() if kind == "process"]
            processes.stop_all_recorded(list(reversed(procs)), timeout=timeout, lab_token=token)
            for (kind, _), entry in objects.items():
                if kind != "sandbox":
                    continue
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    sandbox.kill_holder(
                        int(entry["pid"]), int(entry["start_time"]), timeout, token=token
                    )
                if entry.get("token") == token:
                    for pid in sandbox.find_holders(token):
                        started = processes.start_time(pid)
                        if started is not None:
                            sandbox.kill_holder(pid, started, timeout, token=token)
            # the marker last: a down killed half-way leaves a lab that down can finish
            safefs.remove_dir(str(self.dir), last=MARKER)
        finally:
            self.release()


def list_labs(root: Path | None = None) -> list[str]:
    """The labs in the state root: directories with a lab's marker. ``StateError`` if the
    root can't be trusted (see ``check_root``)."""
    base = Path(root) if root is not None else state_root()
    if not os.path.lexists(base):
        return []
    check_root(base)
    return [name for name in lab_names(base) if LabState(name, base).is_lab()]


def lab_names(root: Path | None = None) -> list[str]:
    """Every entry of the state root named like a lab (made by a lab or not)."""
    base = Path(root) if root is not None else state_root()
    try:
        found = os.listdir(base)
    except FileNotFoundError:
        return []
    names = []
    for name in sorted(found):
        try:
            check_name(name, "lab name")
        except ValueError:
            continue
        names.append(name)
    return names
