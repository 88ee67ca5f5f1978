"""Pods: a network namespace each, attached on its node through Multus + CNI, its command
run inside when this machine can run it (see :func:`pod_process`).

The pod's eth0 comes from the node's cluster network (``k8s-pod-network``), the annotation's
networks follow as Multus orders them; every plugin runs on the node (its network and mount
namespace: its ``/opt/cni/bin``, ``/var/lib/cni``, dhcp daemon socket). While the pod is
attached a :class:`LinkUpWatcher` sets the new links up at once (see linkup.py).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shlex
import shutil
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from multihome.cni import CNIRuntime, NodeNamespaces
from multihome.multus import (
    NETWORKS_ANNOTATION,
    Delegate,
    PodSandbox,
    attach_pod,
    build_delegates,
    detach_pod,
)
from multihome.plan import Plan, PodPlan

from . import daemons, netlink, processes
from .linkup import LinkUpWatcher
from .names import fit
from .nodes import Node

Recorder = Callable[..., None]
CNI_PATH = "/opt/cni/bin"


def netns_name(pod: PodPlan) -> str:
    """The pod's namespace name under /run/netns: ``NAMESPACE.NAME`` (hashed if long)."""
    return fit(f"{pod.namespace}.{pod.name}")


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


LONGHORN_REPLICA_PORT = 10000
"""Where an instance-manager listens for replication traffic on lhnet1 (the first port of
the range Longhorn gives replica processes)."""

_HTTP_IMAGES = ("nginx", "httpd", "caddy")
_SECONDS = re.compile(r"[0-9]+(\.[0-9]+)?")


def _port(value: object) -> int | None:
    """A TCP/UDP port number (1-65535) from a manifest or a flag, else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        number = int(value)
    else:
        return None
    return number if 1 <= number <= 65535 else None


def _image_name(image: object) -> str:
    """``registry/path/nginx:1.27@sha...`` -> ``nginx``."""
    text = str(image or "").split("@", 1)[0]
    last = text.rsplit("/", 1)[-1]
    return last.split(":", 1)[0]


def _sleep_argv(argv: list[str]) -> list[str] | None:
    """``sleep N`` (directly or as ``sh|bash -c "sleep N"``) with this machine's sleep."""
    words = argv
    if os.path.basename(argv[0]) in ("sh", "bash") and len(argv) == 3 and argv[1] == "-c":
        try:
            words = shlex.split(argv[2])
        except ValueError:
            return None
    if len(words) == 2 and os.path.basename(words[0]) == "sleep":
        value = words[1]
        if value == "infinity" or _SECONDS.fullmatch(value):
            sleep = shutil.which("sleep")
            return [sleep, value] if sleep else None
    return None


def _flag(argv: list[str], name: str, default: int) -> int | None:
    """A port flag (``--http-port=8080`` or ``--http-port 8080``): its value, ``default``
    when absent, None when it is no port."""
    for i, word in enumerate(argv):
        if word.startswith(f"{name}="):
            return _port(word.split("=", 1)[1])
        if word == name and i + 1 < len(argv):
            return _port(argv[i + 1])
    return default


def _known_server(image: str, argv: list[str]) -> daemons.Serves | None:
    """The image's or command's server, when it is one the lab knows how to stand in for."""
    if image == "agnhost" and "netexec" in argv[:2]:
        http, udp = _flag(argv, "--http-port", 8080), _flag(argv, "--udp-port", 8081)
        return daemons.Serves(http=http, udp=(udp,) if udp else ())
    if (
        len(argv) >= 3
        and os.path.basename(argv[0]).startswith("python")
        and argv[1:3]
        == [
            "-m",
            "http.server",
        ]
    ):
        given = argv[3] if len(argv) > 3 and not argv[3].startswith("-") else "8000"
        return daemons.Serves(http=_port(given))
    if image in _HTTP_IMAGES and (not argv or os.path.basename(argv[0]) in _HTTP_IMAGES):
        return daemons.Serves(http=80)
    return None


def _declared_ports(containers: list[Mapping[str, Any]]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    tcp: list[int] = []
    udp: list[int] = []
    for container in containers:
        for port in container.get("ports") or []:
            number = _port(port.get("containerPort")) if isinstance(port, Mapping) else None
            if number is None:
                continue
            (udp if str(port.get("protocol", "TCP")).upper() == "UDP" else tcp).append(number)
    return tuple(sorted(set(tcp))), tuple(sorted(set(udp)))


def pod_process(plan: Plan, pod: PodPlan) -> list[str] | daemons.Serves | None:
    """What runs in the pod's namespace: an argv this machine can run safely (``sleep``),
    a server the lab stands in for (nginx/httpd images: HTTP on 80; ``agnhost netexec``;
    ``python -m http.server``; a Longhorn instance-manager: TCP on its replication port),
    echo listeners on the declared ``containerPort``s of a container the lab can't run, or
    None (the namespace stays, with no process). Nothing else from a lab file is executed."""
    if pod.owner is not None and pod.owner.kind == "Longhorn":
        return daemons.Serves(tcp=(LONGHORN_REPLICA_PORT,))
    containers = [c for c in _pod_spec(plan, pod).get("containers") or [] if isinstance(c, Mapping)]
    if not containers:
        return None
    first = containers[0]
    argv = [str(a) for a in (first.get("command") or [])] + [
        str(a) for a in (first.get("args") or [])
    ]
    if argv and (sleep := _sleep_argv(argv)) is not None:
        return sleep
    server = _known_server(_image_name(first.get("image")), argv)
    tcp, udp = _declared_ports(containers)
    if server is not None:
        extra_tcp = tuple(p for p in tcp if p != server.http)
        merged = daemons.Serves(
            http=server.http,
            tcp=tuple(sorted({*server.tcp, *extra_tcp})),
            udp=tuple(sorted({*server.udp, *udp})),
        )
        return merged if merged else None
    if tcp or udp:
        return daemons.Serves(tcp=tcp, udp=udp)
    return None


def _interface_address(network_status: list[dict[str, Any]], ifname: str) -> str | None:
    for entry in network_status:
        if entry.get("interface") == ifname and entry.get("ips"):
            return str(entry["ips"][0])
    return None


def _delegates(plan: Plan, pod: PodPlan, cluster_network: Mapping[str, Any]) -> list[Delegate]:
    nads = {(n.namespace, n.name): n.config for n in plan.nads}
    return build_delegates(
        pod.namespace,
        pod.name,
        _annotations(plan, pod),
        dict(cluster_network),
        lambda namespace, nad: nads.get((namespace, nad)),
    )


def _sandbox(pod: PodPlan, netns: str) -> PodSandbox:
    return PodSandbox(pod.namespace, pod.name, pod_uid(pod), container_id(pod), netns)


_runtimes: dict[tuple[int, Node], CNIRuntime] = {}


def _runtime(node: Node) -> CNIRuntime:
    """The CNI runtime as the node's kubelet/Multus has it: plugins, cache and namespaces
    of the node. One per node and process, kept for the process's life (its plugin lookups
    and its handle on the node's filesystem are reused pod after pod); the lab's processes
    that attach pods are short-lived children of ``up``."""
    key = (os.getpid(), node)  # a forked worker makes its own
    found = _runtimes.get(key)
    if found is None:
        found = _runtimes[key] = CNIRuntime(
            [CNI_PATH],
            node.dir("/var/lib/cni"),
            node=NodeNamespaces(netns=node.netns, mntns=node.mntns),
            timeout=30,
        )
    return found


def stop_process(
    pod: PodPlan, journal: Mapping[tuple[str, str], Mapping[str, Any]], record: Recorder
) -> None:
    """Stop the pod's process, if it has one (by the PID and start time in ``journal``,
    the lab's objects). Call it from a process that sees the host's PIDs (not a forkpool
    worker: those live in the lab's PID namespace)."""
    process = fit(f"pod-{netns_name(pod)}")
    entry = journal.get(("process", process))
    if entry is not None:
        processes.stop_recorded(entry)
        record("process", process, phase="removed")


def detach(
    plan: Plan,
    pod: PodPlan,
    node: Node,
    cluster_network: Mapping[str, Any],
    record: Recorder,
) -> None:
    """Undo :func:`attach` for a pod of ``plan`` whose process was stopped
    (:func:`stop_process`): DEL its attachments in reverse (the plugins release their
    addresses and DHCP leases), delete its namespace; each recorded as removed."""
    name = netns_name(pod)
    path = netlink.netns_path(name)
    if os.path.exists(path):
        detach_pod(_runtime(node), _sandbox(pod, path), _delegates(plan, pod, cluster_network))
        netlink.delete_netns(name)
    record("pod", pod.ref, phase="removed")
    record("netns", name, phase="removed")


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
    delegates = _delegates(plan, pod, cluster_network)
    sandbox = _sandbox(pod, path)
    runtime = _runtime(node)
    record("pod", pod.ref, phase="intent", netns=path, node=node.name)
    # only DHCP needs the new links up at once (the dhcp daemon backs off 2 s when it finds
    # one down); other attachments skip the watcher's fork
    if any("dhcp" in iface.ipam_types for iface in pod.interfaces):
        with LinkUpWatcher(path, names=[d.ifname for d in delegates[1:]]):
            network_status = attach_pod(runtime, sandbox, delegates)
    else:
        network_status = attach_pod(runtime, sandbox, delegates)
    proc = _start_process(plan, pod, name, path, network_status, lab_dir, record)
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
        "phase": "Running",
        "error": None,
        "process": proc,
        "serves": proc["serves"] if proc else None,
    }


def likely_cause(plan: Plan, pod: PodPlan) -> str | None:
    """What in the design explains a failed attachment, in a user's words: a NAD whose
    master NIC the pod's node lacks (the plugin only says "Link not found")."""
    if pod.node is None:
        return None
    nics = {nic.name for nic in plan.node(pod.node).nics}
    for iface in pod.interfaces:
        nad = plan.nad(iface.network) if not iface.cluster else None
        if nad is not None and nad.master and nad.master not in nics:
            return (
                f"node {pod.node} has no NIC {nad.master}, the master of NAD {nad.key} "
                f"({iface.name}); its NICs: {', '.join(sorted(nics))}"
            )
    return None


def failed(pod: PodPlan, node: Node, error: str) -> dict[str, Any]:
    """The status of a pod whose attachment failed (``up --keep-going``): its namespace
    stays, without interfaces or process, ContainerCreating as kubelet would show it."""
    return {
        "namespace": pod.namespace,
        "name": pod.name,
        "node": node.name,
        "netns": netlink.netns_path(netns_name(pod)),
        "uid": pod_uid(pod),
        "container_id": container_id(pod),
        "owner": None if pod.owner is None else pod.owner.model_dump(),
        "network_status": [],
        "phase": "ContainerCreating",
        "error": error,
        "process": None,
        "serves": None,
    }


def _start_process(
    plan: Plan,
    pod: PodPlan,
    name: str,
    netns: str,
    network_status: list[dict[str, Any]],
    lab_dir: str,
    record: Recorder,
) -> dict[str, Any] | None:
    what = pod_process(plan, pod)
    process = fit(f"pod-{name}")
    if what is None:
        return None
    if isinstance(what, list):
        daemon = processes.start(
            process, what, netns=netns, log=os.path.join(lab_dir, f"{process}.log"), record=record
        )
        return {"pid": daemon.pid, "argv": list(daemon.argv), "serves": None}
    if pod.owner is not None and pod.owner.kind == "Longhorn" and plan.longhorn is not None:
        address = _interface_address(network_status, plan.longhorn.interface)
        if address is None:
            return None  # no storage interface: nothing to listen on
        what = dataclasses.replace(what, bind=address)
    eth0 = _interface_address(network_status, "eth0") or "0.0.0.0"
    what = dataclasses.replace(what, page=daemons.welcome_page(pod.ref, eth0))
    daemon = daemons.start_server(process, what, netns, lab_dir, record)
    return {"pid": daemon.pid, "argv": list(daemon.argv), "serves": what.to_dict()}
