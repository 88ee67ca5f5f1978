"""The probes tier's own objects on a cluster (``verify --kubeconfig --probes``): a throwaway
namespace holding a host-network DaemonSet (one pod per node: the nodes' NICs, their byte
counters, the nodes' own probes and routes) and probe pods that stand in for design pods,
attached to the same NADs on the same nodes (reach, isolation and the segment streams from a
known image). ``ProbeSpace`` makes them, waits until they run, and deletes the namespace
on every way out; ``remove_expired`` deletes what a killed run left.

The image: by default the ``calico-node`` image of the ``kube-system/rke2-canal``
DaemonSet, so every node already has it (air-gapped clusters too). It is
rancher/hardened-calico: registry.suse.com/bci/bci-base plus iproute2 and iputils
(rancher/image-build-calico, Dockerfile and packages.txt), so it has bash, cat, ip and
ping; no nc, wget or curl (libcurl4 is removed), so TCP and HTTP probes from probe pods use
bash's /dev/tcp, UDP probes are not measured, and the streams are ICMP echoes.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from lightkube import ApiError, AsyncClient
from lightkube.codecs import from_dict
from lightkube.resources.core_v1 import Namespace, Pod

from . import ClusterError

PREFIX = "multihome-probes-"
RUN_LABEL = "multihome.io/probes"
"""On the namespace: the run's id. A later run finds leftovers by it."""
EXPIRES = "multihome.io/probes-expires"
"""On the namespace: when the run that made it is over at the latest (Unix seconds); a
namespace past it is a killed run's, which the next run deletes."""
RUN_BUDGET = 300.0
DAEMONSET = "node-counters"
CONTAINER = "probe"
FALLBACK_IMAGE = "rancher/hardened-calico:v3.25.0-build20230209"
"""When the cluster has no rke2-canal DaemonSet: the image of rke2-canal v3.25.0 (RKE2's
spring 2023 releases)."""
CANAL = ("kube-system", "rke2-canal", "calico-node")
NETWORKS = "k8s.v1.cni.cncf.io/networks"
WAIT = 45.0
MIRROR_GRACE = 15.0
FINAL = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull",
         "CreateContainerConfigError", "CreateContainerError")  # fmt: skip
"""Why a container waits, when waiting longer won't help."""


def default_image(daemonsets: list[dict[str, Any]]) -> str:
    """The calico-node image rke2-canal runs on every node; else ``FALLBACK_IMAGE``."""
    namespace, name, container = CANAL
    for ds in daemonsets:
        meta = ds.get("metadata") or {}
        if (meta.get("namespace"), meta.get("name")) != (namespace, name):
            continue
        spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
        for c in spec.get("containers") or ():
            if c.get("name") == container and c.get("image"):
                return str(c["image"])
    return FALLBACK_IMAGE


@dataclass(frozen=True)
class Mirror:
    """A probe pod for a design pod: on its node, with ``networks`` (its annotation: the
    design pod's NADs and interface names; None: eth0 only)."""

    key: str
    node: str
    networks: str | None


def _container(image: str, capabilities: list[str]) -> dict[str, Any]:
    return {
        "name": CONTAINER,
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sleep", str(int(RUN_BUDGET))],
        "securityContext": {
            "capabilities": {"add": capabilities, "drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        },
    }


def manifests(
    namespace: str, run: str, image: str, mirrors: dict[str, Mirror]
) -> list[dict[str, Any]]:
    """The namespace, the DaemonSet and the probe pods, in the order they are created."""
    labels = {RUN_LABEL: run}
    ns = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "labels": {
                **labels,
                # hostNetwork (the DaemonSet reads the nodes' NICs) and NET_RAW (ping) are
                # refused by the baseline and restricted levels of Pod Security: only
                # privileged admits them
                "pod-security.kubernetes.io/enforce": "privileged",
            },
            "annotations": {EXPIRES: str(int(time.time() + RUN_BUDGET))},
        },
    }
    ds_labels = {**labels, "app.kubernetes.io/name": DAEMONSET}
    ds = {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": DAEMONSET, "namespace": namespace, "labels": ds_labels},
        "spec": {
            "selector": {"matchLabels": ds_labels},
            "template": {
                "metadata": {"labels": ds_labels},
                "spec": {
                    "hostNetwork": True,
                    "tolerations": [{"operator": "Exists"}],  # every node, servers too
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": False,
                    "containers": [_container(image, ["NET_RAW"])],
                },
            },
        },
    }
    pods = []
    for name, m in sorted(mirrors.items()):
        pods.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {**labels, "app.kubernetes.io/name": "probe"},
                    "annotations": {NETWORKS: m.networks} if m.networks else {},
                },
                "spec": {
                    "nodeName": m.node,
                    "tolerations": [{"operator": "Exists"}],
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 0,
                    "automountServiceAccountToken": False,
                    "containers": [_container(image, ["NET_RAW"])],
                },
            }
        )
    return [ns, ds, *pods]


@dataclass
class Placed:
    """The probes' pods once they run: node -> the DaemonSet's pod there; mirror name ->
    its pod; and why the others don't run (``node:NAME`` or the design pod's key of a
    probe pod -> the reason)."""

    nodes: dict[str, str] = field(default_factory=dict)
    mirrors: dict[str, str] = field(default_factory=dict)
    problems: dict[str, str] = field(default_factory=dict)


def _why_not(pod: dict[str, Any]) -> str:
    """A pod's phase, and why its container waits (the reason last: ``FINAL`` is matched)."""
    status = pod.get("status") or {}
    for c in status.get("containerStatuses") or ():
        waiting = (c.get("state") or {}).get("waiting") or {}
        if waiting.get("reason"):
            said = f"{waiting['message']}; " if waiting.get("message") else ""
            return f"{said}{waiting['reason']}"
    return str(status.get("phase") or "Pending")


async def _api(what: str, call: Any) -> Any:
    try:
        return await call
    except ApiError as exc:
        code = exc.status.code
        if code in (401, 403):
            raise ClusterError(
                f"not allowed to {what} ({code} {exc.status.reason}): bind the ClusterRole "
                "multihome-probes of rbac/multihome.yaml (multihome render writes it)"
            ) from exc
        raise ClusterError(f"{what}: {exc.status.message or exc}") from exc


class ProbeSpace:
    """One run's namespace: ``create``, ``wait``, ``delete`` (idempotent)."""

    def __init__(self, client: AsyncClient, image: str, mirrors: dict[str, Mirror]) -> None:
        self.client = client
        self.image = image
        self.mirrors = mirrors
        self.run = secrets.token_hex(4)
        self.namespace = PREFIX + self.run
        self.created = False

    async def create(self) -> None:
        for doc in manifests(self.namespace, self.run, self.image, self.mirrors):
            what = f"create {doc['kind']} {doc['metadata']['name']}"
            self.created = True  # from the first request on: an interrupted one may have made it
            await _api(what, self.client.create(from_dict(doc)))

    async def wait(self, nodes: list[str], timeout: float = WAIT) -> Placed:
        """Until the DaemonSet runs on each of ``nodes`` (or can't: its image can't be
        pulled) and every probe pod runs, or ``timeout``; the probe pods get at most
        ``MIRROR_GRACE`` seconds more than the DaemonSet (one whose attachment fails stays
        ContainerCreating)."""
        deadline = time.monotonic() + timeout
        grace: float | None = None
        while True:
            placed = Placed()
            async for obj in self.client.list(Pod, namespace=self.namespace):
                pod = obj.to_dict()
                meta, spec = pod["metadata"], pod.get("spec") or {}
                if meta.get("deletionTimestamp"):
                    continue
                running = (pod.get("status") or {}).get("phase") == "Running"
                name = str(meta["name"])
                mirror = self.mirrors.get(name)
                if mirror is not None:
                    if running:
                        placed.mirrors[name] = name
                    else:
                        placed.problems[mirror.key] = f"probe pod {name}: {_why_not(pod)}"
                elif spec.get("nodeName"):
                    node = str(spec["nodeName"])
                    if running:
                        placed.nodes[node] = name
                    else:
                        placed.problems[f"node:{node}"] = f"{name}: {_why_not(pod)}"
            for n in nodes:
                if n not in placed.nodes:
                    placed.problems.setdefault(f"node:{n}", f"no {DAEMONSET} pod scheduled")
            waiting = [
                n for n in nodes
                if n not in placed.nodes
                and not placed.problems[f"node:{n}"].endswith(FINAL)
            ]  # fmt: skip
            now = time.monotonic()
            if not waiting and grace is None:
                grace = now + MIRROR_GRACE
            mirrors_done = all(m in placed.mirrors for m in self.mirrors)
            if (not waiting and mirrors_done) or now > deadline or (grace and now > grace):
                return placed
            await asyncio.sleep(0.5)

    async def delete(self, wait: float = 20.0) -> list[str]:
        """Delete the namespace (what is in it goes with it) and wait, at most ``wait``
        seconds, until it is gone; what is still being deleted then (the cluster finishes
        it on its own)."""
        if not self.created:
            return []
        fix = f"; delete it yourself (kubectl delete namespace {self.namespace})"
        await _delete_namespace(self.client, self.namespace, hint=fix)
        self.created = False
        return await gone(self.client, [self.namespace], wait)


async def _delete_namespace(
    client: AsyncClient, name: str, context: str = "", hint: str = ""
) -> None:
    """Delete namespace ``name`` (already gone is fine); a refusal is a ``ClusterError``
    with ``context`` after the name and ``hint`` after the API's message."""
    try:
        await client.delete(Namespace, name)
    except ApiError as exc:
        if exc.status.code != 404:
            raise ClusterError(
                f"could not delete namespace {name}{context}: {exc.status.message}{hint}"
            ) from exc


async def gone(client: AsyncClient, names: list[str], wait: float) -> list[str]:
    """Wait, at most ``wait`` seconds, until the probes namespaces ``names`` are gone;
    those still there."""
    deadline = time.monotonic() + wait
    while names and time.monotonic() < deadline:
        left = {
            str(n.metadata.name)  # type: ignore[union-attr]
            async for n in client.list(Namespace, labels={RUN_LABEL: None})
        }
        names = [n for n in names if n in left]
        if names:
            await asyncio.sleep(0.3)
    return names


async def remove_expired(client: AsyncClient, now: float | None = None) -> list[str]:
    """Delete the probes namespaces whose run is over (a killed run's): their names."""
    now = time.time() if now is None else now
    found = []
    namespaces = client.list(Namespace, labels={RUN_LABEL: None})
    async for ns in namespaces:
        meta = ns.metadata
        assert meta is not None and meta.name is not None
        if meta.deletionTimestamp is not None:
            continue
        try:
            expires = float((meta.annotations or {}).get(EXPIRES, "0"))
        except ValueError:
            expires = 0.0
        if expires <= now:
            found.append(meta.name)
    for name in found:
        await _delete_namespace(client, name, context=", left by an earlier run")
    await gone(client, list(found), 20.0)  # still going after that: the next run sees them
    return found


__all__ = ["DAEMONSET", "Mirror", "Placed", "ProbeSpace", "default_image", "remove_expired"]
