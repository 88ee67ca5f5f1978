"""Executing one plugin (libcni's pkg/invoke): lookup in CNI_PATH, VERSION, env, stdin/stdout,
error decoding, the deadline, and the node's namespaces.

A plugin runs in its own process group; past the deadline the whole group is killed and
CNITimeout is raised. A :class:`Deadline` is one budget that several calls share (an
attachment's VERSION and ADD): each call gets what is left of it. VERSION answers are cached
per binary (path, device, inode, size and mtime), so a plugin is asked once until its file
changes.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import stat
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from . import spawn
from .errors import INCOMPATIBLE_VERSION, RUNTIME_FAILURE, CNIError, CNITimeout
from .ns import NamespaceUnavailable, NodeFS, NodeNamespaces, entering, inside, nsenter_argv
from .version import CURRENT_VERSION, UNVERSIONED, negotiate

log = logging.getLogger(__name__)

_DETAIL_LIMIT = 2000


@dataclass(frozen=True)
class Plugin:
    """A plugin binary found in CNI_PATH (the path is as the node sees it)."""

    type: str
    path: str
    key: tuple[str, int, int, int, int]  # path, dev, inode, size, mtime_ns


@dataclass(frozen=True)
class Deadline:
    """A time budget of ``seconds``, ending at ``at`` (``time.monotonic()``)."""

    seconds: float
    at: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(seconds, time.monotonic() + seconds)

    def remaining(self) -> float:
        return self.at - time.monotonic()


@dataclass(frozen=True)
class ExecEvent:
    """One finished plugin process, for observers (``CNIRuntime(on_exec=...)``)."""

    plugin: str
    command: str
    seconds: float  # spawn to exit, as seen from this process
    returncode: int


_versions: dict[tuple[str, int, int, int, int], tuple[str, ...]] = {}
_versions_lock = threading.Lock()


def format_cni_args(args: Sequence[tuple[str, str]]) -> str:
    """CNI_ARGS: ``K=V;K=V``."""
    return ";".join(f"{k}={v}" for k, v in args)


class Invoker:
    """Finds and runs plugins for one runtime: its CNI_PATH, node and default deadline
    (``timeout`` seconds for a call made without a :class:`Deadline`)."""

    def __init__(
        self,
        cni_path: Sequence[str],
        node: NodeNamespaces | None,
        timeout: float,
        on_exec: Callable[[ExecEvent], None] | None = None,
    ) -> None:
        self.cni_path = tuple(cni_path)
        self.node = node
        self.timeout = timeout
        self.on_exec = on_exec
        self.fs = NodeFS(node.mntns if node else None)

    def close(self) -> None:
        self.fs.close()

    # -- lookup and versions ---------------------------------------------------------------

    def find(self, kind: str) -> Plugin | None:
        for directory in self.cni_path:
            path = os.path.join(directory, kind)
            try:
                st = self.fs.stat(path)
            except OSError:
                continue
            if stat.S_ISREG(st.st_mode) and st.st_mode & 0o111:
                return Plugin(kind, path, (path, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns))
        return None

    def locate(self, kind: str, command: str) -> Plugin:
        try:
            found = self.find(kind)
        except NamespaceUnavailable as exc:
            raise CNIError(
                RUNTIME_FAILURE,
                "cannot reach the node's mount namespace",
                str(exc),
                plugin=kind,
                command=command,
            ) from exc
        if found is None:
            raise CNIError(
                RUNTIME_FAILURE,
                "plugin not found",
                f"no executable {kind!r} in CNI_PATH {':'.join(self.cni_path)}",
                plugin=kind,
                command=command,
            )
        return found

    def supported_versions(
        self, plugin: Plugin, deadline: Deadline | None = None
    ) -> tuple[str, ...]:
        with _versions_lock:
            cached = _versions.get(plugin.key)
        if cached is not None:
            return cached
        env = dict(os.environ, CNI_COMMAND="VERSION")
        stdin = json.dumps({"cniVersion": CURRENT_VERSION}).encode()
        out = self._exec(plugin, "VERSION", env, stdin, deadline)
        versions = _parse_version_info(out, plugin)
        with _versions_lock:
            _versions[plugin.key] = versions
        return versions

    def version_for(
        self, plugin: Plugin, config_version: str, command: str, deadline: Deadline | None = None
    ) -> str:
        """The version to send: the highest the plugin supports that is <= the config's; a
        config without a version is sent as it is (libcni does not negotiate)."""
        if config_version == UNVERSIONED:
            return UNVERSIONED
        supported = self.supported_versions(plugin, deadline)
        chosen = negotiate(config_version, supported)
        if chosen is None:
            raise CNIError(
                INCOMPATIBLE_VERSION,
                "incompatible CNI versions",
                f"config is {config_version!r}, plugin supports {list(supported)}",
                plugin=plugin.type,
                command=command,
            )
        return chosen

    # -- running ---------------------------------------------------------------------------

    def run(
        self,
        plugin: Plugin,
        command: str,
        *,
        container_id: str,
        netns: str,
        ifname: str,
        args: Sequence[tuple[str, str]],
        stdin: bytes,
        deadline: Deadline | None = None,
    ) -> bytes:
        """Run ``command`` (ADD, DEL, CHECK) and return stdout; CNIError on failure."""
        env = dict(os.environ)
        env.update(
            CNI_COMMAND=command,
            CNI_CONTAINERID=container_id,
            CNI_NETNS=netns,
            CNI_IFNAME=ifname,
            CNI_ARGS=format_cni_args(args),
            CNI_PATH=":".join(self.cni_path),
        )
        return self._exec(plugin, command, env, stdin, deadline)

    def ask_versions(self, plugins: Sequence[Plugin]) -> None:
        """:meth:`supported_versions` of each of ``plugins`` not asked yet, their processes
        run side by side (no threads: a process that entered a PID namespace can't make
        any). A plugin that fails is left to the call that needs it, which reports it."""
        with _versions_lock:
            todo = [p for p in dict.fromkeys(plugins) if p.key not in _versions]
        env = dict(os.environ, CNI_COMMAND="VERSION")
        stdin = json.dumps({"cniVersion": CURRENT_VERSION}).encode()
        deadline = Deadline.after(self.timeout)
        running: list[tuple[Plugin, subprocess.Popen[bytes], float]] = []
        try:
            for plugin in todo:
                with contextlib.suppress(CNIError):
                    proc, started = self._spawn(plugin, "VERSION", env, deadline)
                    running.append((plugin, proc, started))
                    pipe, proc.stdin = proc.stdin, None  # said now, all at once
                    assert pipe is not None
                    with contextlib.suppress(OSError):  # fits in the pipe: never blocks
                        os.write(pipe.fileno(), stdin)
                    with contextlib.suppress(OSError):
                        pipe.close()
            while running:
                plugin, proc, started = running.pop(0)  # _finish reaps it, come what may
                with contextlib.suppress(CNIError):
                    out = self._finish(plugin, "VERSION", proc, started, b"", deadline)
                    versions = _parse_version_info(out, plugin)
                    with _versions_lock:
                        _versions[plugin.key] = versions
        finally:
            for _, proc, _ in running:  # interrupted: leave no plugin behind
                _kill_group(proc)

    def _exec(
        self,
        plugin: Plugin,
        command: str,
        env: dict[str, str],
        stdin: bytes,
        deadline: Deadline | None,
    ) -> bytes:
        if deadline is None:
            deadline = Deadline.after(self.timeout)
        if spawn.usable():
            child, started = self._spawn_here(plugin, command, env, deadline)
            if child is not None:
                return self._finish_here(plugin, command, child, started, stdin, deadline)
        proc, started = self._spawn(plugin, command, env, deadline)
        return self._finish(plugin, command, proc, started, stdin, deadline)

    def _spawn_here(
        self, plugin: Plugin, command: str, env: dict[str, str], deadline: Deadline
    ) -> tuple[spawn.Child | None, float]:
        """The plugin started with posix_spawn where this thread can step into the node's
        namespaces (or there are none); None where it can't (then Popen with nsenter or a
        preexec function)."""
        _check_deadline(deadline, plugin, command)
        started = time.perf_counter()
        with _start_errors(plugin, command):
            close = spawn.inheritable()
            with inside(self.node) as there:
                if close is None or (not there and _has_namespaces(self.node)):
                    return None, started
                return spawn.start(plugin.path, env, close), started

    def _finish_here(
        self,
        plugin: Plugin,
        command: str,
        child: spawn.Child,
        started: float,
        stdin: bytes,
        deadline: Deadline,
    ) -> bytes:
        try:
            out, err = spawn.communicate(child, stdin, max(deadline.remaining(), 0.0))
        except spawn.Expired:
            self._observe(plugin, command, started, child.returncode)
            raise CNITimeout(
                RUNTIME_FAILURE,
                f"timed out after {deadline.seconds:g}s; the plugin's process group was killed",
                plugin=plugin.type,
                command=command,
            ) from None
        rc = child.returncode
        assert rc is not None
        self._observe(plugin, command, started, rc)
        if rc != 0:
            raise _decode_error(plugin, command, rc, out, err)
        if err:
            log.debug("%s %s stderr: %s", plugin.type, command, err.decode(errors="replace"))
        return out

    def _spawn(
        self, plugin: Plugin, command: str, env: dict[str, str], deadline: Deadline
    ) -> tuple[subprocess.Popen[bytes], float]:
        _check_deadline(deadline, plugin, command)
        started = time.perf_counter()
        try:
            with _start_errors(plugin, command), inside(self.node) as there:
                prefix = None if there else nsenter_argv(self.node)
                with entering(None if there or prefix else self.node) as preexec:
                    proc = subprocess.Popen(
                        [*(prefix or ()), plugin.path],
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        env=env,
                        close_fds=True,
                        process_group=0,
                        preexec_fn=preexec,
                    )
        except subprocess.SubprocessError as exc:  # setns failed in the child
            raise CNIError(
                RUNTIME_FAILURE,
                "cannot enter the node's namespaces",
                f"netns={self.node.netns if self.node else None} "
                f"mntns={self.node.mntns if self.node else None}",
                plugin=plugin.type,
                command=command,
            ) from exc
        return proc, started

    def _finish(
        self,
        plugin: Plugin,
        command: str,
        proc: subprocess.Popen[bytes],
        started: float,
        stdin: bytes,
        deadline: Deadline,
    ) -> bytes:
        try:
            out, err = proc.communicate(stdin, timeout=max(deadline.remaining(), 0.0))
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            self._observe(plugin, command, started, proc.returncode)
            raise CNITimeout(
                RUNTIME_FAILURE,
                f"timed out after {deadline.seconds:g}s; the plugin's process group was killed",
                plugin=plugin.type,
                command=command,
            ) from None
        except BaseException:
            _kill_group(proc)
            raise
        self._observe(plugin, command, started, proc.returncode)
        if proc.returncode != 0:
            raise _decode_error(plugin, command, proc.returncode, out, err)
        if err:
            log.debug("%s %s stderr: %s", plugin.type, command, err.decode(errors="replace"))
        return out

    def _observe(self, plugin: Plugin, command: str, started: float, rc: int | None) -> None:
        seconds = time.perf_counter() - started
        log.debug("%s %s exited %s after %.1f ms", plugin.type, command, rc, seconds * 1000)
        if self.on_exec is not None:
            self.on_exec(ExecEvent(plugin.type, command, seconds, -1 if rc is None else rc))


def _check_deadline(deadline: Deadline, plugin: Plugin, command: str) -> None:
    if deadline.remaining() <= 0:
        raise CNITimeout(
            RUNTIME_FAILURE,
            f"timed out after {deadline.seconds:g}s: the deadline passed before it ran",
            plugin=plugin.type,
            command=command,
        )


def _has_namespaces(node: NodeNamespaces | None) -> bool:
    return node is not None and (node.netns is not None or node.mntns is not None)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the plugin's whole process group, then reap it and drain its pipes."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    try:
        proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:  # a descendant left the group and holds the pipes
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            if pipe is not None:
                pipe.close()
        proc.wait()


def _trim(data: bytes) -> str:
    text = data.decode(errors="replace").strip()
    return text if len(text) <= _DETAIL_LIMIT else text[:_DETAIL_LIMIT] + "..."


def _decode_error(plugin: Plugin, command: str, rc: int, out: bytes, err: bytes) -> CNIError:
    """A plugin's error JSON on stdout as CNIError; anything else as a runtime failure."""
    try:
        data: Any = json.loads(out)
    except ValueError:
        data = None
    if isinstance(data, dict) and isinstance(data.get("code"), int):
        details = data.get("details")
        return CNIError(
            data["code"],
            str(data.get("msg") or ""),
            details if isinstance(details, str) else "",
            plugin=plugin.type,
            command=command,
        )
    if rc < 0:
        try:
            why = f"killed by signal {signal.Signals(-rc).name}"
        except ValueError:
            why = f"killed by signal {-rc}"
    else:
        why = f"exited with status {rc} without a CNI error"
    return CNIError(
        RUNTIME_FAILURE,
        why,
        _trim(err) or _trim(out),
        plugin=plugin.type,
        command=command,
    )


def _parse_version_info(out: bytes, plugin: Plugin) -> tuple[str, ...]:
    try:
        data: Any = json.loads(out)
    except ValueError:
        data = None
    if isinstance(data, dict):
        listed = data.get("supportedVersions")
        if isinstance(listed, list) and all(isinstance(v, str) for v in listed):
            return tuple(listed)
        if isinstance(data.get("cniVersion"), str):
            return (data["cniVersion"],)
    raise CNIError(
        RUNTIME_FAILURE,
        "invalid VERSION answer",
        _trim(out),
        plugin=plugin.type,
        command="VERSION",
    )


@contextlib.contextmanager
def _start_errors(plugin: Plugin, command: str) -> Iterator[None]:
    """Starting ``plugin`` failed: the node's namespaces could not be entered, or the
    plugin could not be executed; as the CNI error a runtime reports."""
    try:
        yield
    except NamespaceUnavailable as exc:
        raise CNIError(
            RUNTIME_FAILURE,
            "cannot enter the node's namespaces",
            str(exc),
            plugin=plugin.type,
            command=command,
        ) from exc
    except OSError as exc:
        raise CNIError(
            RUNTIME_FAILURE,
            "cannot execute plugin",
            f"{plugin.path}: {exc.strerror or exc}",
            plugin=plugin.type,
            command=command,
        ) from exc
