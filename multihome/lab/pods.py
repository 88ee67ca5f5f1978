"""Pods: a network namespace each, attached on its node through Multus + CNI, its command
run inside when this machine can run it.

The pod's eth0 comes from the node's cluster network (``k8s-pod-network``), the annotation's
networks follow as Multus orders them; every plugin runs on the node (its network and mount
namespace: its ``/opt/cni/bin``, ``/var/lib/cni``, dhcp daemon socket). While the pod is
attached a :class:`LinkUpWatcher` sets the new links up at once (see linkup.py).
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from multihome.cni import CNIRuntime, NodeNamespaces
from multihome.multus import NETWORKS_ANNOTATION, PodSandbox, attach_pod, build_delegates
from multihome.plan import Plan, PodPlan

from . import netlink, processes
from .linkup import LinkUpWatcher
from .names import MAX_NAME
from .nodes import Node

Recorder = Callable[..., None]
CNI_PATH = "/opt/cni/bin"


def netns_name(pod: PodPlan) -> str:
    """The pod's namespace name under /run/netns: ``NAMESPACE.NAME`` (hashed if long)."""
    name = f"{pod.namespace}.{pod.name}"
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:10]
        name = f"{name[: MAX_NAME - 11].rstrip('.-')}-{digest}"
    return name


def container_id(pod: PodPlan) -> str:
    return hashlib.sha256(f"multihome/{pod.ref}".encode()).hexdigest()


def pod_uid(pod: PodPlan) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"multihome:{pod.ref}"))


def _pod_spec(plan: Plan, pod: PodPlan) -> Mapping[str, Any]:
    """The pod's spec from its manifest (a Pod, or its workload's template); {} if none."""
    kind, name = ("Pod", pod.name) if pod.owner is None else (pod.owner.kind, pod.owner.name)
    for manifest in plan.manifests:
        if (
            manifest.kind == kind
            and manifest.name == name
            and manifest.namespace
            in (
                pod.namespace,
                None,
            )
        ):
            spec = manifest.body.get("spec") or {}
            if kind != "Pod":
                spec = (spec.get("template") or {}).get("spec") or {}
            return spec if isinstance(spec, Mapping) else {}
    return {}


def _annotations(plan: Plan, pod: PodPlan) -> dict[str, str]:
    found: dict[str, str] = {}
    if pod.networks_annotation:
        found[NETWORKS_ANNOTATION] = pod.networks_annotation
    return found


def runnable_command(plan: Plan, pod: PodPlan) -> list[str] | None:
    """The first container's command + args when it is safe and possible to run here: a
    ``sleep``, directly or as ``sh|bash -c "sleep N"``. Anything else (an image's server,
    a script) is not run: the pod's namespace stays, without a process."""
    containers = _pod_spec(plan, pod).get("containers") or []
    if not containers or not isinstance(containers[0], Mapping):
        return None
    first = containers[0]
    argv = [str(a) for a in (first.get("command") or [])] + [
        str(a) for a in (first.get("args") or [])
    ]
    if not argv:
        return None
    words = argv
    if os.path.basename(argv[0]) in ("sh", "bash") and len(argv) == 3 and argv[1] == "-c":
        try:
            words = shlex.split(argv[2])
        except ValueError:
            return None
    if len(words) == 2 and os.path.basename(words[0]) == "sleep":
        value = words[1]
        if value == "infinity" or value.replace(".", "", 1).isdigit():
            sleep = shutil.which("sleep")
            return [sleep, value] if sleep else None
    return None


def attach(
    plan: Plan,
    pod: PodPlan,
    node: Node,
    cluster_network: Mapping[str, Any],
    nl: netlink.Netlink,
    lab_dir: str,
    record: Recorder,
) -> dict[str, Any]:
    """Make the pod's namespace, attach it, start its command; returns its status."""
    name = netns_name(pod)
    path = netlink.netns_path(name)
    record("netns", name, phase="intent", path=path, pod=pod.ref)
    netlink.create_netns(name)
    nl.ns(path).set_link("lo", up=True)
    nads = {(n.namespace, n.name): n.config for n in plan.nads}
    delegates = build_delegates(
        pod.namespace,
        pod.name,
        _annotations(plan, pod),
        dict(cluster_network),
        lambda namespace, nad: nads.get((namespace, nad)),
    )
    sandbox = PodSandbox(pod.namespace, pod.name, pod_uid(pod), container_id(pod), path)
    runtime = CNIRuntime(
        [CNI_PATH],
        node.dir("/var/lib/cni"),
        node=NodeNamespaces(netns=node.netns, mntns=node.mntns),
        timeout=30,
    )
    record("pod", pod.ref, phase="intent", netns=path, node=node.name)
    try:
        with LinkUpWatcher(path, names=[d.ifname for d in delegates[1:]]):
            network_status = attach_pod(runtime, sandbox, delegates)
    finally:
        runtime.close()
    command = runnable_command(plan, pod)
    proc: dict[str, Any] | None = None
    if command is not None:
        daemon = processes.start(
            f"pod-{name}",
            command,
            netns=path,
            log=os.path.join(lab_dir, f"pod-{name}.log"),
            record=record,
        )
        proc = {"pid": daemon.pid, "argv": list(daemon.argv)}
    record("pod", pod.ref, phase="done")
    return {
        "namespace": pod.namespace,
        "name": pod.name,
        "node": node.name,
        "netns": path,
        "uid": sandbox.uid,
        "container_id": sandbox.container_id,
        "owner": None if pod.owner is None else pod.owner.model_dump(),
        "network_status": network_status,
        "process": proc,
    }
