"""Attaching and detaching a pod: run its delegates through the CNI runtime, as Multus does.

ADD runs the delegates in order, one at a time (one pod's delegates never run in parallel;
different pods may be attached from different threads: nothing here is shared). If one
fails, every delegate before it is deleted again, in reverse (the runtime has already
cleaned up the failing one), and :class:`AttachError` names ``namespace/pod:network`` and
carries the plugin's error. Every plugin call of a pod's ADD (VERSION included) shares one
deadline, the runtime's ``timeout`` or the caller's; the rollback has its own short bound.
After all ADDs, ``default-route`` is applied in the pod's namespace (:mod:`.netutils`), the
results and their cache entries (through :meth:`CNIRuntime.set_cached_result`) are adjusted
to match, and the network-status entries are returned. DEL runs every delegate in reverse,
continuing past errors, and raises :class:`DetachError` with all of them joined.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from multihome.cni import (
    LEGACY_RESULT_VERSIONS,
    CNIError,
    CNIRuntime,
    ConfigError,
    Deadline,
    NetworkConfigList,
    Result,
    RuntimeConf,
    load_network_config,
)
from multihome.multus.delegates import Delegate, cni_args
from multihome.multus.errors import AttachError, DetachError
from multihome.multus.netutils import DefaultRouteEditor, NetlinkFailure
from multihome.multus.status import adjust_default_routes, network_status_entries


@dataclass(frozen=True)
class PodSandbox:
    """The pod being attached: who it is and where its network namespace is.

    ``container_id`` is the sandbox's (infra container's) ID: CNI_CONTAINERID and
    K8S_POD_INFRA_CONTAINER_ID. ``netns`` is the path of the pod's network namespace as the
    plugins (and this process) open it.
    """

    namespace: str
    name: str
    uid: str
    container_id: str
    netns: str

    @property
    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"

    def runtime_conf(self, delegate: Delegate, *, add: bool = False) -> RuntimeConf:
        """The CNI runtime parameters for one delegate (for ADD, with its ``MAC``/``IP``)."""
        return RuntimeConf(
            container_id=self.container_id,
            netns=self.netns,
            ifname=delegate.ifname,
            args=cni_args(
                self.namespace, self.name, self.uid, self.container_id, delegate, add=add
            ),
            capability_args=dict(delegate.capability_args),
        )


@dataclass(frozen=True)
class Attachment:
    """One delegate after ADD: its CNI result (default-route applied) and status entries."""

    delegate: Delegate
    result: Result
    network_status: list[dict[str, Any]]


def attach_pod(
    runtime: CNIRuntime,
    pod: PodSandbox,
    delegates: Sequence[Delegate],
    *,
    deadline: Deadline | None = None,
) -> list[dict[str, Any]]:
    """ADD every delegate to ``pod``; returns the network-status entries, in order
    (:func:`attach_pod_detailed` has the results too)."""
    attachments = attach_pod_detailed(runtime, pod, delegates, deadline=deadline)
    return [entry for a in attachments for entry in a.network_status]


def attach_pod_detailed(
    runtime: CNIRuntime,
    pod: PodSandbox,
    delegates: Sequence[Delegate],
    *,
    deadline: Deadline | None = None,
) -> list[Attachment]:
    """ADD every delegate to ``pod`` in order, apply default-route, return what each made.

    On any failure everything added so far is deleted in reverse and :class:`AttachError`
    is raised. Multus's ``delPlugins`` also DELs the failing delegate, because libcni leaves
    a failed ADD to its caller; :meth:`CNIRuntime.add_network_list` has already DELed that
    chain (with the same input: a failed ADD caches no result), so only the delegates added
    before it are deleted here. Failures of the runtime's cleanup are notes on the error.
    Every plugin call (VERSION, ADD) shares ``deadline`` (default: the runtime's ``timeout``
    from now); the rollback gets the runtime's ``cleanup_timeout``.
    """
    deadline = deadline or runtime.deadline()
    networks = [_load(pod, d) for d in delegates]
    results: list[dict[str, Any]] = []
    versions: list[str] = []
    for index, (delegate, net) in enumerate(zip(delegates, networks, strict=True)):
        try:
            result = runtime.add_network_list(
                net, pod.runtime_conf(delegate, add=True), deadline=deadline
            )
        except Exception as err:
            _rollback(runtime, pod, delegates[:index], networks[:index])
            failure = AttachError(
                f"{pod.ref}:{delegate.network}: error adding container to network "
                f"{delegate.config_name!r}: {err}",
                pod=pod.ref,
                network=delegate.network,
                cause=err,
            )
            for note in getattr(err, "__notes__", ()):
                failure.add_note(note)
            raise failure from err
        # Multus reads every result as 1.0.0 (cni100.NewResultFromResult): a 0.1.0 one (a
        # config without cniVersion) has IPs but no interfaces
        versions.append(result.cni_version)
        legacy = result.cni_version in LEGACY_RESULT_VERSIONS
        results.append(result.to_json("1.0.0" if legacy else None))

    if any(d.changes_default_route for d in delegates):
        try:
            results = _apply_default_routes(runtime, pod, delegates, networks, results, versions)
        except AttachError:
            _rollback(runtime, pod, delegates, networks)
            raise

    return [
        Attachment(
            delegate=d,
            result=Result.from_json(r),
            network_status=network_status_entries(d.network, r, default=d.is_default),
        )
        for d, r in zip(delegates, results, strict=True)
    ]


def detach_pod(runtime: CNIRuntime, pod: PodSandbox, delegates: Sequence[Delegate]) -> None:
    """DEL every delegate of ``pod`` in reverse order, continuing past errors; raises
    :class:`DetachError` listing every failure. Safe to repeat."""
    errors: list[tuple[str, BaseException]] = []
    for delegate in reversed(delegates):
        try:
            net = load_network_config(delegate.config)
            runtime.del_network_list(net, pod.runtime_conf(delegate))
        except Exception as err:
            errors.append((delegate.network, err))
    if errors:
        joined = " / ".join(f"{network}: {err}" for network, err in errors)
        raise DetachError(
            f"{pod.ref}: error deleting networks: {joined}", pod=pod.ref, errors=errors
        )


# -- internals ------------------------------------------------------------------------------


def _load(pod: PodSandbox, delegate: Delegate) -> NetworkConfigList:
    try:
        return load_network_config(delegate.config)
    except ConfigError as err:
        raise AttachError(
            f"{pod.ref}:{delegate.network}: invalid CNI config: {err}",
            pod=pod.ref,
            network=delegate.network,
            cause=err,
        ) from err


def _rollback(
    runtime: CNIRuntime,
    pod: PodSandbox,
    delegates: Sequence[Delegate],
    networks: Sequence[NetworkConfigList],
) -> None:
    """Delete ``delegates`` (all added in full) in reverse, ignoring errors: DEL must be
    idempotent anyway (Multus). Bounded by the runtime's ``cleanup_timeout`` in all."""
    deadline = runtime.cleanup_deadline()
    for delegate, net in reversed(list(zip(delegates, networks, strict=True))):
        with contextlib.suppress(Exception):  # best effort, as Multus's delPlugins on ADD failure
            runtime.del_network_list(net, pod.runtime_conf(delegate), deadline=deadline)


def _apply_default_routes(
    runtime: CNIRuntime,
    pod: PodSandbox,
    delegates: Sequence[Delegate],
    networks: Sequence[NetworkConfigList],
    results: list[dict[str, Any]],
    versions: Sequence[str],
) -> list[dict[str, Any]]:
    """Multus CmdAdd's gateway handling, for every delegate whose result made an interface
    or an address: drop its default routes when it filters them or sets its own, then add
    the requested gateways. Results (and their cache entries) follow the pod."""
    adjusted = list(results)
    try:
        with DefaultRouteEditor(pod.netns) as editor:
            for index, delegate in enumerate(delegates):
                result = results[index]
                if not delegate.changes_default_route:
                    continue
                if not (result.get("interfaces") or result.get("ips")):
                    continue  # some plugins make nothing in the pod (Multus skips them)
                gateways = list(delegate.gateways or ())
                try:
                    editor.delete_default_routes(delegate.ifname)
                    for gateway in gateways:
                        editor.add_default_route(delegate.ifname, gateway)
                except NetlinkFailure as err:
                    action = "setting" if gateways else "deleting"
                    raise AttachError(
                        f"{pod.ref}:{delegate.network}: error {action} default gateway: {err}",
                        pod=pod.ref,
                        network=delegate.network,
                        cause=err,
                    ) from err
                adjusted[index] = adjust_default_routes(result, remove=True, gateways=gateways)
                try:
                    # Multus Delete/AddDefaultGWCache: the cache follows the pod, so CHECK and
                    # DEL see its routes; an attachment without a cache entry is left so.
                    runtime.set_cached_result(
                        networks[index],
                        pod.runtime_conf(delegate),
                        Result.from_json(adjusted[index]).convert(versions[index]),
                    )
                except (CNIError, ValueError) as err:
                    raise AttachError(
                        f"{pod.ref}:{delegate.network}: error updating the result cache "
                        f"for the default gateway: {err}",
                        pod=pod.ref,
                        network=delegate.network,
                        cause=err,
                    ) from err
    except NetlinkFailure as err:  # the namespace itself could not be opened
        raise AttachError(
            f"{pod.ref}:{delegates[0].network}: error setting default gateway: {err}",
            pod=pod.ref,
            network=delegates[0].network,
            cause=err,
        ) from err
    return adjusted
