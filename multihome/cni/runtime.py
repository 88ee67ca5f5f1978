"""The chain logic (libcni's AddNetworkList / DelNetworkList / CheckNetworkList).

ADD runs the plugins in order, each getting the previous result as ``prevResult``; the result
is cached only after the whole chain succeeded, and a failed ADD is undone with a DEL of the
whole chain. DEL runs in reverse with the cached result, goes on past failures, and ignores
failures that only say the thing is already gone. CHECK sends the cached result to every plugin,
except plugins whose IPAM is ``dhcp`` (the 1.1.1 dhcp plugin leaks a lease on CHECK).

Each operation has one deadline (a :class:`Deadline`, by default ``timeout`` seconds from
its start) that all its plugin calls share, VERSION included, so a plugin that hangs costs
the budget once, not once per call. The DEL that undoes a failed ADD has a short bound of
its own (``cleanup_timeout``): it runs after the budget is spent.
"""

from __future__ import annotations

import json
import logging
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import cache
from .conf import NetworkConfig, NetworkConfigList
from .errors import (
    INCOMPATIBLE_VERSION,
    RUNTIME_FAILURE,
    UNKNOWN_CONTAINER,
    CNIError,
    ConfigError,
)
from .invoke import Deadline, ExecEvent, Invoker, Plugin
from .names import validate_container_id, validate_ifname, validate_network_name
from .ns import NodeNamespaces
from .types import Result
from .version import at_least

log = logging.getLogger(__name__)

# Phrases with which plugins say that what DEL should remove is already gone.
_GONE = (
    "not found",
    "no such file",
    "no such device",
    "no such process",
    "does not exist",
    "doesn't exist",
    "not exist",
)


@dataclass
class RuntimeConf:
    """One attachment: libcni's RuntimeConf. ``args`` become CNI_ARGS (``K=V;K=V``);
    ``capability_args`` feed each plugin's ``runtimeConfig`` for the capabilities it declares.
    ``netns`` may be empty for DEL (the pod's namespace is already gone)."""

    container_id: str
    netns: str
    ifname: str
    args: list[tuple[str, str]] = field(default_factory=list)
    capability_args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class _Step:
    conf: NetworkConfig
    plugin: Plugin
    version: str  # what this plugin is sent: the highest it supports <= the list's


class CNIRuntime:
    """Runs network lists on a node: ``cni_path`` and the plugins' namespaces are the node's
    (``node``), ``cache_dir`` is a path in this process's filesystem. ``timeout`` is the
    default deadline of an operation (all its plugin calls), in seconds; ``cleanup_timeout``
    bounds the DEL after a failed ADD (default: 5 s, or ``timeout`` if shorter)."""

    def __init__(
        self,
        cni_path: Sequence[str],
        cache_dir: str | Path,
        *,
        node: NodeNamespaces | None = None,
        timeout: float = 30.0,
        cleanup_timeout: float | None = None,
        on_exec: Callable[[ExecEvent], None] | None = None,
    ) -> None:
        paths = cni_path.split(":") if isinstance(cni_path, str) else list(cni_path)
        if not paths:
            raise ConfigError("cni_path", "must name at least one directory")
        for entry in paths:
            if not isinstance(entry, str) or not entry.startswith("/") or ":" in entry:
                raise ConfigError("cni_path", f"{entry!r} is not an absolute path without ':'")
        if not timeout > 0:
            raise ConfigError("timeout", f"must be positive, got {timeout!r}")
        if cleanup_timeout is None:
            cleanup_timeout = min(5.0, timeout)
        if not cleanup_timeout > 0:
            raise ConfigError("cleanup_timeout", f"must be positive, got {cleanup_timeout!r}")
        self.cni_path: tuple[str, ...] = tuple(paths)
        self.cache_dir = Path(cache_dir)
        self.node = node
        self.timeout = timeout
        self.cleanup_timeout = cleanup_timeout
        self._invoker = Invoker(self.cni_path, node, timeout, on_exec)
        self._finalizer = weakref.finalize(self, self._invoker.close)

    def close(self) -> None:
        """Release the node's mount-namespace handle (also done when garbage-collected).
        The runtime stays usable: the handle is reopened when needed."""
        self._invoker.close()

    def __enter__(self) -> CNIRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the three operations --------------------------------------------------------------

    def deadline(self) -> Deadline:
        """A fresh budget of ``timeout`` seconds (one operation's, or several operations'
        that a caller makes share it)."""
        return Deadline.after(self.timeout)

    def cleanup_deadline(self) -> Deadline:
        """A fresh budget of ``cleanup_timeout`` seconds, for undoing a failed ADD."""
        return Deadline.after(self.cleanup_timeout)

    def add_network_list(
        self, net: NetworkConfigList, rt: RuntimeConf, *, deadline: Deadline | None = None
    ) -> Result:
        """ADD the chain; the result (in the list's cniVersion) is cached and returned. On any
        failure the chain is DELeted (within ``cleanup_timeout``), then the error is raised.
        VERSION and ADD calls share ``deadline`` (default: ``timeout`` from now)."""
        _check_rt(net, rt, "ADD")
        deadline = deadline or self.deadline()
        steps = [self._step(conf, net, "ADD", deadline) for conf in net.plugins]
        prev: Result | None = None
        try:
            for step in steps:
                out = self._run(step, "ADD", net, rt, prev, deadline)
                prev = _parse_result(out, step)
            assert prev is not None
            result = prev.convert(net.cni_version)
            self._cache_write(net, rt, result)
        except BaseException as exc:
            for err in self._del_chain(net, rt, None, steps, self.cleanup_deadline()):
                log.debug("cleanup after failed ADD of %s: %s", net.name, err)
                exc.add_note(f"cleanup DEL: {err}")
            raise
        return result

    def del_network_list(
        self, net: NetworkConfigList, rt: RuntimeConf, *, deadline: Deadline | None = None
    ) -> None:
        """DEL the chain in reverse. Already-gone resources are not errors; other failures
        don't stop the chain and are raised at the end (the cache entry is then kept). All
        calls share ``deadline`` (default: ``timeout`` from now)."""
        _check_rt(net, rt, "DEL")
        deadline = deadline or self.deadline()
        try:
            cached = self._cached(net, rt)
        except CNIError as exc:
            log.warning("ignoring unreadable result cache on DEL: %s", exc)
            cached = None
        errors = self._del_chain(net, rt, cached, None, deadline)
        if errors:
            raise _combine(errors)
        cache.remove(self.cache_dir, net.name, rt.container_id, rt.ifname)

    def check_network_list(
        self, net: NetworkConfigList, rt: RuntimeConf, *, deadline: Deadline | None = None
    ) -> None:
        """CHECK every plugin against the cached result (nothing if ``disableCheck``); the
        calls share ``deadline`` (default: ``timeout`` from now)."""
        _check_rt(net, rt, "CHECK")
        deadline = deadline or self.deadline()
        if not at_least(net.cni_version, "0.4.0"):
            raise CNIError(
                INCOMPATIBLE_VERSION,
                "CHECK needs cniVersion 0.4.0 or later",
                f"the list is {net.cni_version}",
                command="CHECK",
                network=net.name,
            )
        if net.disable_check:
            return
        cached = self._cached(net, rt)
        if cached is None:
            raise CNIError(
                RUNTIME_FAILURE,
                "no cached result for this attachment (was it added?)",
                str(cache.result_path(self.cache_dir, net.name, rt.container_id, rt.ifname)),
                command="CHECK",
                network=net.name,
            )
        for conf in net.plugins:
            if conf.ipam_type == "dhcp":
                log.debug("skipping CHECK of %s: dhcp IPAM leaks a lease on CHECK", conf.type)
                continue
            step = self._step(conf, net, "CHECK", deadline)
            if not at_least(step.version, "0.4.0"):
                continue
            self._run(step, "CHECK", net, rt, cached, deadline)

    def get_cached_result(self, net: NetworkConfigList, rt: RuntimeConf) -> Result | None:
        """The cached result of the attachment, in the list's cniVersion, or None."""
        _check_names(net, rt)
        return self._cached(net, rt)

    def set_cached_result(self, net: NetworkConfigList, rt: RuntimeConf, result: Result) -> bool:
        """Replace the cached result of an attachment that is in the cache (stored in the
        list's cniVersion; config, args and netns of the entry are kept), so that CHECK and DEL
        see what the container really has after the caller changed it, as Multus does after
        moving default routes. Returns False and writes nothing when the attachment has no
        entry (it was never added, or already deleted). CNIError if the entry can't be read
        or written."""
        _check_names(net, rt)
        try:
            return cache.update_result(
                self.cache_dir,
                net.name,
                rt.container_id,
                rt.ifname,
                result.to_json(net.cni_version),
            )
        except (OSError, ValueError) as exc:
            raise CNIError(
                RUNTIME_FAILURE,
                "cannot update the result cache",
                str(exc),
                network=net.name,
            ) from exc

    def validate_network_list(self, net: NetworkConfigList) -> None:
        """libcni's ValidateNetworkList: every plugin (and IPAM plugin) is in CNI_PATH and
        speaks a version this list can use. ConfigError listing every problem."""
        problems: list[str] = []
        for n, conf in enumerate(net.plugins):
            kinds = [(f"plugins[{n}].type", conf.type)]
            if conf.ipam_type:
                kinds.append((f"plugins[{n}].ipam.type", conf.ipam_type))
            for where, kind in kinds:
                try:
                    plugin = self._invoker.locate(kind, "VERSION")
                    self._invoker.version_for(plugin, net.cni_version, "VERSION")
                except CNIError as exc:
                    problems.append(f"{where}: {exc.msg}: {exc.details}")
        if problems:
            raise ConfigError("", "; ".join(problems))

    def ask_versions(self, kinds: Iterable[str]) -> None:
        """Ask each plugin of ``kinds`` for its versions (VERSION) now, so that later calls,
        in this process and in processes forked from it, reuse the answer (kept by plugin
        file). A plugin that can't be found or doesn't answer is left to the call that
        needs it, which reports it. The plugins run side by side."""
        found = []
        for kind in kinds:
            try:
                found.append(self._invoker.locate(kind, "VERSION"))
            except CNIError:
                continue
        self._invoker.ask_versions(found)

    # -- helpers ---------------------------------------------------------------------------

    def _step(
        self, conf: NetworkConfig, net: NetworkConfigList, command: str, deadline: Deadline
    ) -> _Step:
        try:
            plugin = self._invoker.locate(conf.type, command)
            version = self._invoker.version_for(plugin, net.cni_version, command, deadline)
            return _Step(conf, plugin, version)
        except CNIError as exc:
            exc.network = net.name
            raise

    def _run(
        self,
        step: _Step,
        command: str,
        net: NetworkConfigList,
        rt: RuntimeConf,
        prev: Result | None,
        deadline: Deadline,
    ) -> bytes:
        try:
            return self._invoker.run(
                step.plugin,
                command,
                container_id=rt.container_id,
                netns=rt.netns,
                ifname=rt.ifname,
                args=rt.args,
                stdin=_stdin(net, step, prev, rt),
                deadline=deadline,
            )
        except CNIError as exc:
            exc.network = net.name
            raise

    def _del_chain(
        self,
        net: NetworkConfigList,
        rt: RuntimeConf,
        cached: Result | None,
        steps: list[_Step] | None,
        deadline: Deadline,
    ) -> list[CNIError]:
        """DEL every plugin in reverse, going on past failures; returns the real failures."""
        errors: list[CNIError] = []
        confs = [s.conf for s in steps] if steps is not None else list(net.plugins)
        known = {id(s.conf): s for s in steps or []}
        for conf in reversed(confs):
            try:
                step = known.get(id(conf)) or self._step(conf, net, "DEL", deadline)
                prev = cached if at_least(step.version, "0.4.0") else None
                self._run(step, "DEL", net, rt, prev, deadline)
            except CNIError as exc:
                if _is_gone(exc):
                    log.info("DEL of %s: already gone: %s", conf.type, exc)
                    continue
                errors.append(exc)
        return errors

    def _cached(self, net: NetworkConfigList, rt: RuntimeConf) -> Result | None:
        try:
            entry = cache.read(self.cache_dir, net.name, rt.container_id, rt.ifname)
            if entry is None or entry.get("result") is None:
                return None
            return Result.from_json(entry["result"]).convert(net.cni_version)
        except (OSError, ValueError) as exc:
            raise CNIError(
                RUNTIME_FAILURE, "unreadable result cache", str(exc), network=net.name
            ) from exc

    def _cache_write(self, net: NetworkConfigList, rt: RuntimeConf, result: Result) -> None:
        try:
            cache.write(
                self.cache_dir,
                network=net.name,
                container_id=rt.container_id,
                ifname=rt.ifname,
                netns=rt.netns,
                config=net.config_bytes,
                cni_args=rt.args,
                capability_args=rt.capability_args,
                result=result.to_json(net.cni_version),
            )
        except OSError as exc:
            raise CNIError(
                RUNTIME_FAILURE,
                "cannot write the result cache",
                str(exc),
                command="ADD",
                network=net.name,
            ) from exc


def _stdin(net: NetworkConfigList, step: _Step, prev: Result | None, rt: RuntimeConf) -> bytes:
    """The plugin's config as libcni builds it: its own keys untouched, ``name`` and
    ``cniVersion`` injected, ``runtimeConfig`` with the declared capabilities only, and
    ``prevResult`` in the version the plugin is sent."""
    conf = dict(step.conf.raw)
    conf["name"] = net.name
    conf["cniVersion"] = step.version
    runtime_config = {
        cap: rt.capability_args[cap] for cap in step.conf.capabilities if cap in rt.capability_args
    }
    if runtime_config:
        conf["runtimeConfig"] = runtime_config
    if prev is not None:
        conf["prevResult"] = prev.to_json(step.version)
    return json.dumps(conf).encode()


def _parse_result(out: bytes, step: _Step) -> Result:
    try:
        return Result.from_json(json.loads(out))
    except ValueError as exc:
        text = out.decode(errors="replace").strip()
        raise CNIError(
            RUNTIME_FAILURE,
            "invalid result",
            f"{exc}; stdout: {text[:500] or '(empty)'}",
            plugin=step.conf.type,
            command="ADD",
        ) from None


def _is_gone(exc: CNIError) -> bool:
    """A plugin-reported DEL failure that only says the resource is already gone (macvlan
    1.1.1 fails DEL with "Link not found" when its master has disappeared)."""
    if exc.code == UNKNOWN_CONTAINER:
        return True
    if exc.code == RUNTIME_FAILURE:  # the runtime's own failures (missing binary, timeout...)
        return False
    text = f"{exc.msg} {exc.details}".lower()
    return any(phrase in text for phrase in _GONE)


def _combine(errors: list[CNIError]) -> CNIError:
    if len(errors) == 1:
        return errors[0]
    first = errors[0]
    rest = "; ".join(str(e) for e in errors[1:])
    combined = CNIError(
        first.code,
        first.msg,
        f"{first.details}; also failed: {rest}" if first.details else f"also failed: {rest}",
        plugin=first.plugin,
        command=first.command,
        network=first.network,
    )
    for err in errors[1:]:
        combined.add_note(str(err))
    return combined


def _check_names(net: NetworkConfigList, rt: RuntimeConf) -> None:
    validate_network_name(net.name, "name")
    validate_container_id(rt.container_id, "container_id")
    validate_ifname(rt.ifname, "ifname")


def _check_rt(net: NetworkConfigList, rt: RuntimeConf, command: str) -> None:
    _check_names(net, rt)
    if not isinstance(rt.netns, str) or (command != "DEL" and not rt.netns):
        raise ConfigError("netns", f"a network namespace path is required for {command}")
    for n, pair in enumerate(rt.args):
        if not (isinstance(pair, tuple | list) and len(pair) == 2):
            raise ConfigError(f"args[{n}]", "must be a (key, value) pair")
        key, value = pair
        if not isinstance(key, str) or not key or any(c in key for c in "=;"):
            raise ConfigError(f"args[{n}]", f"key {key!r} must be non-empty without '=' or ';'")
        if not isinstance(value, str) or any(c in value for c in "=;"):
            raise ConfigError(f"args[{n}]", f"value {value!r} must be a string without '=' or ';'")
    try:
        json.dumps(rt.capability_args)
    except (TypeError, ValueError) as exc:
        raise ConfigError("capability_args", f"must be JSON-serializable: {exc}") from None
