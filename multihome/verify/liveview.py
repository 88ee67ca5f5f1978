"""The running view the checks walk, built from a cluster's API objects and the design:
nodes with their InternalIP, the design's hosts and networks as written, and each design pod
matched to the cluster's pod (by name; a Deployment's replica by its ReplicaSet on the
design's node; a Longhorn instance-manager by its labels), with its phase, network-status and
the sandbox error of a pod stuck ContainerCreating."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from multihome.cluster import Objects
from multihome.cluster.read import SANDBOX_FAILED
from multihome.multus import NETWORK_STATUS_ANNOTATION
from multihome.plan import Plan, PodPlan

from .view import LabView, MachineView, NetworkView, NicView, PodView, Serves

IM_COMPONENT = ("longhorn.io/component", "instance-manager")


@dataclass(frozen=True)
class Target:
    """Where a key of the view (``pod:ns/name``) runs in the cluster."""

    namespace: str
    name: str
    container: str | None


@dataclass
class Live:
    """The view built from the API, and where each of its pods is in the cluster."""

    view: LabView
    pods: dict[str, Target] = field(default_factory=dict)
    """netns key -> the pod's name in the cluster."""


def _nics(nics: Iterable[Any]) -> tuple[NicView, ...]:
    return tuple(
        NicView(c.name, c.network, str(c.address.ip) if c.address is not None else None)
        for c in nics
    )


def _network_status(pod: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    raw = (pod["metadata"].get("annotations") or {}).get(NETWORK_STATUS_ANNOTATION)
    try:
        entries = json.loads(raw) if raw else []
    except json.JSONDecodeError:
        return ()
    return tuple(e for e in entries if isinstance(e, dict)) if isinstance(entries, list) else ()


def _phase(pod: dict[str, Any]) -> str:
    status = pod.get("status") or {}
    phase = str(status.get("phase") or "Pending")
    if phase != "Pending":
        return phase
    for c in status.get("containerStatuses") or ():
        reason = ((c.get("state") or {}).get("waiting") or {}).get("reason")
        if reason:
            return str(reason)
    return phase


def _sandbox_error(pod: dict[str, Any], events: list[dict[str, Any]]) -> str | None:
    """The newest FailedCreatePodSandBox message of the pod (the CNI plugin's words)."""
    meta = pod["metadata"]
    mine = [
        e
        for e in events
        if e.get("reason") == SANDBOX_FAILED
        and (e.get("involvedObject") or {}).get("name") == meta["name"]
        and (e.get("involvedObject") or {}).get("namespace") == meta.get("namespace")
    ]
    if not mine:
        return None
    newest = max(mine, key=lambda e: str(e.get("lastTimestamp") or e.get("eventTime") or ""))
    return str(newest.get("message") or "")


def _owner_name(pod: dict[str, Any]) -> tuple[str, str] | None:
    for ref in pod["metadata"].get("ownerReferences") or ():
        kind, name = str(ref.get("kind")), str(ref.get("name"))
        if kind == "ReplicaSet":  # a Deployment's: <deployment>-<pod-template-hash>
            return "Deployment", name.rsplit("-", 1)[0]
        return kind, name
    return None


def _match(plan: PodPlan, pods: list[dict[str, Any]], taken: set[str]) -> dict[str, Any] | None:
    """The cluster's pod for a design pod: by name; else a pod of the same workload on the
    design's node (a Deployment's replicas get random names); else, for Longhorn's
    instance-managers, the one of that type on that node (their names hash the image)."""
    free = [
        p
        for p in pods
        if p["metadata"].get("namespace") == plan.namespace and p["metadata"]["uid"] not in taken
    ]
    named = next((p for p in free if p["metadata"]["name"] == plan.name), None)
    if named is not None or plan.owner is None:
        return named
    on_node = [p for p in free if (p.get("spec") or {}).get("nodeName") == plan.node]
    if plan.owner.kind == "Longhorn":
        labels = dict(plan.labels)
        for p in on_node:
            have = p["metadata"].get("labels") or {}
            if have.get(IM_COMPONENT[0]) == IM_COMPONENT[1] and all(
                have.get(k) == v for k, v in labels.items() if k.endswith("-type")
            ):
                return p
        return None
    return next((p for p in on_node if _owner_name(p) == (plan.owner.kind, plan.owner.name)), None)


def _pod_key(pod: dict[str, Any]) -> str:
    return f"pod:{pod['metadata'].get('namespace')}/{pod['metadata']['name']}"


def build_view(plan: Plan, objects: Objects) -> Live:
    """The running view the checks walk, from the design and the cluster's objects."""
    internal = {
        n["metadata"]["name"]: next(
            (
                str(a["address"])
                for a in (n.get("status") or {}).get("addresses") or ()
                if a.get("type") == "InternalIP"
            ),
            None,
        )
        for n in objects.nodes
    }
    nodes = {
        n.name: MachineView(
            n.name, "node", f"node:{n.name}", _nics(n.nics), node_ip=internal[n.name]
        )
        for n in plan.nodes
        if n.name in internal
    }
    hosts = {
        h.name: MachineView(
            h.name,
            "host",
            f"host:{h.name}",
            _nics(h.nics),
            Serves(http=(h.http,) if h.http else (), tcp=h.tcp, udp=h.udp),
        )
        for h in plan.hosts
    }
    networks = {
        n.name: NetworkView(
            n.name,
            n.subnet,
            f"segment:{n.name}",
            str(n.dhcp.server) if n.dhcp else None,
            str(n.dhcp.router) if n.dhcp and n.dhcp.router else None,
        )
        for n in plan.networks
    }
    live = Live(view=LabView(plan.name, True, {}, nodes, hosts, networks, {}, (), source="cluster"))
    taken: set[str] = set()
    pending = []
    for pod in plan.pods:
        if pod.host_network:
            continue
        found = _match(pod, objects.pods, taken)
        if found is None or not (found.get("spec") or {}).get("nodeName"):
            pending.append(pod.ref)
            continue
        taken.add(found["metadata"]["uid"])
        key = _pod_key(found)
        process = pod.process
        serves = Serves(
            http=(process.http,) if process and process.http else (),
            tcp=process.tcp if process else (),
            udp=process.udp if process else (),
        )
        live.view.pods[pod.ref] = PodView(
            namespace=pod.namespace,
            name=pod.name,
            node=str(found["spec"]["nodeName"]),
            netns=key,
            phase=_phase(found),
            error=_sandbox_error(found, objects.events),
            network_status=_network_status(found),
            serves=serves,
        )
        containers = (found.get("spec") or {}).get("containers") or [{}]
        live.pods[key] = Target(pod.namespace, found["metadata"]["name"], containers[0].get("name"))
    live.view = dataclasses.replace(live.view, pending=tuple(pending))
    return live
