"""Read what verify needs from a cluster, concurrently, with lightkube's async client: nodes,
pods, events, DaemonSets, NetworkAttachmentDefinitions, Longhorn's Settings and Replicas (their
storage IPs). Objects are
kept as the API returns them (plain dicts), so recorded objects of real clusters and live
ones go through the same code.

A kind the cluster does not serve (no Longhorn, no Multus CRD: 404) reads as ``None`` with
the reason; a kind the credentials may not list (403) is an error naming the RBAC rule.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2
import msgspec
from lightkube import ALL_NS, ApiError, AsyncClient, ConfigError, KubeConfig
from lightkube.core.resource import Resource
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import Event, Node, Pod

NAD = create_namespaced_resource(
    "k8s.cni.cncf.io", "v1", "NetworkAttachmentDefinition", "network-attachment-definitions"
)
LonghornSetting = create_namespaced_resource("longhorn.io", "v1beta2", "Setting", "settings")
LonghornReplica = create_namespaced_resource("longhorn.io", "v1beta2", "Replica", "replicas")
TIMEOUT = 10.0
SANDBOX_FAILED = "FailedCreatePodSandBox"
"""The kubelet's event for a pod whose network setup failed: the only events verify reads."""


class ClusterError(RuntimeError):
    """The cluster can't be read (kubeconfig, connection, permissions): exit code 2."""

    code = 2


@dataclass
class Objects:
    """The cluster's objects, as JSON dicts. ``None``: the cluster does not serve that kind
    (``missing`` says why)."""

    nodes: list[dict[str, Any]] = field(default_factory=list)
    pods: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    daemonsets: list[dict[str, Any]] = field(default_factory=list)
    nads: list[dict[str, Any]] | None = None
    settings: list[dict[str, Any]] | None = None
    replicas: list[dict[str, Any]] | None = None
    missing: dict[str, str] = field(default_factory=dict)


def load_config(kubeconfig: str | Path, context: str | None = None) -> KubeConfig:
    """The kubeconfig, with ``context`` (or its current one) checked to exist."""
    try:
        config = KubeConfig.from_file(kubeconfig)
        if config.get(context) is None:
            raise ClusterError(f"{kubeconfig}: no context {context or '(current)'}")
    except (ConfigError, OSError, ValueError) as exc:
        raise ClusterError(f"cannot read kubeconfig {kubeconfig}: {exc}") from exc
    return config


def connect(
    kubeconfig: str | Path,
    context: str | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
) -> AsyncClient:
    """An async client for ``context`` of ``kubeconfig`` (``transport``: tests')."""
    config = load_config(kubeconfig, context)
    single = config.get(context)
    return AsyncClient(single, timeout=httpx2.Timeout(TIMEOUT), transport=transport)


async def _list(
    client: AsyncClient, kind: type[Resource], what: str, **kwargs: Any
) -> list[dict[str, Any]] | str:
    """Every object of ``kind`` as a dict; the reason as text when the kind isn't served."""
    try:
        return [obj.to_dict() async for obj in client.list(kind, **kwargs)]  # type: ignore[attr-defined,type-var]
    except ApiError as exc:
        code = exc.status.code
        if code == 404:
            return f"the cluster does not serve {what} (404)"
        if code in (401, 403):
            raise ClusterError(
                f"not allowed to list {what} ({code} {exc.status.reason}): give the "
                "credentials the ClusterRole in the README (verify --kubeconfig)"
            ) from exc
        raise ClusterError(f"listing {what}: {exc.status.message or exc}") from exc
    except msgspec.ValidationError as exc:
        raise ClusterError(
            f"listing {what}: an object lacks a field the API requires: {exc}"
        ) from exc
    except httpx2.HTTPStatusError as exc:  # an answer that is not a metav1.Status
        if exc.response.status_code == 404:
            return f"the cluster does not serve {what} (404)"
        raise ClusterError(f"listing {what}: {exc.response.status_code}") from exc
    except httpx2.HTTPError as exc:
        raise ClusterError(f"cannot reach the cluster listing {what}: {exc}") from exc


async def read_objects(client: AsyncClient) -> Objects:
    """All the objects at once (one request per kind, concurrently)."""
    jobs = {
        "nodes": _list(client, Node, "nodes"),
        "pods": _list(client, Pod, "pods", namespace=ALL_NS),
        "events": _list(
            client, Event, "events", namespace=ALL_NS, fields={"reason": SANDBOX_FAILED}
        ),
        "daemonsets": _list(client, DaemonSet, "daemonsets", namespace=ALL_NS),
        "nads": _list(
            client, NAD, "network-attachment-definitions (k8s.cni.cncf.io)", namespace=ALL_NS
        ),
        "settings": _list(client, LonghornSetting, "settings (longhorn.io)", namespace=ALL_NS),
        "replicas": _list(client, LonghornReplica, "replicas (longhorn.io)", namespace=ALL_NS),
    }
    found = await asyncio.gather(*jobs.values())
    objects = Objects()
    for name, value in zip(jobs, found, strict=True):
        if isinstance(value, str):
            objects.missing[name] = value
            if name in ("nodes", "pods", "events", "daemonsets"):
                setattr(objects, name, [])
            continue
        setattr(objects, name, value)
    return objects
