"""Pods: a network namespace each, attached on its node through Multus + CNI, its command
run inside when the plan says so (``PodPlan.process``, decided in ``plan/process.py``).

The pod's eth0 comes from the node's cluster network (``k8s-pod-network``), the annotation's
networks follow as Multus orders them; every plugin runs on the node (its network and mount
namespace: its ``/opt/cni/bin``, ``/var/lib/cni``, dhcp daemon socket). While the pod is
attached a :class:`LinkUpWatcher` sets the new links up at once (see linkup.py).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from multihome.cni import CNIRuntime, NodeNamespaces
from multihome.multus import (
    NETWORKS_ANNOTATION,
    Attachment,
    Delegate,
    DelegateError,
    PodSandbox,
    attach_pod_detailed,
    build_delegates,
    detach_pod,
    netutils,
)
from multihome.plan import Plan, PodPlan

from . import daemons, dhcpdiscover, netlink, ns, processes
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


def _annotations(plan: Plan, pod: PodPlan) -> dict[str, str]:
    found: dict[str, str] = {}
    if pod.networks_annotation:
        found[NETWORKS_ANNOTATION] = pod.networks_annotation
    return found


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


_runtimes: dict[Node, CNIRuntime] = {}


def _runtime(node: Node) -> CNIRuntime:
    """The CNI runtime as the node's kubelet/Multus has it: plugins, cache and namespaces
    of the node. One per node, kept for the process's life (its plugin lookups and its
    handle on the node's filesystem are reused pod after pod); made in ``up``'s process
    before the attach workers fork (``prepare_attach``), so each worker inherits them with
    their handles instead of forking a child per node to get one of its own."""
    found = _runtimes.get(node)
    if found is None:
        found = _runtimes[node] = CNIRuntime(
            [CNI_PATH],
            node.dir("/var/lib/cni"),
            node=NodeNamespaces(netns=node.netns, mntns=node.mntns),
            timeout=30,
        )
    return found


def prepare_attach(
    plan: Plan, todo: Sequence[PodPlan], nodes: Sequence[Node], cluster_network: Mapping[str, Any]
) -> None:
    """What the attach workers would each do for themselves, done once in this process
    before they fork, so that they inherit it: every plugin the pods of ``todo`` run asked
    for its CNI versions (through the first node's runtime, found on the other ``nodes``:
    the answers are kept by plugin file, the same on every node), and, where more than one
    pod asks for ``default-route``, Multus' route editor loaded (``netutils.preload``: ~0.1
    s of CPU that each worker attaching such a pod would spend)."""
    kinds: dict[str, None] = {}
    edits_routes: dict[tuple[str, str | None], bool] = {}
    route_editors = 0
    for pod in todo:
        # the delegates' plugins follow from the pod's namespace (where its NADs are looked
        # up) and its networks annotation: pods alike are read once, not once each
        alike = (pod.namespace, pod.networks_annotation)
        if alike not in edits_routes:
            edits_routes[alike] = False
            try:
                delegates = _delegates(plan, pod, cluster_network)
            except Exception:  # the pod's attach reports it
                continue
            for delegate in delegates:
                edits_routes[alike] = edits_routes[alike] or delegate.changes_default_route
                for conf in delegate.config.get("plugins") or [delegate.config]:
                    if isinstance(conf, dict) and isinstance(conf.get("type"), str):
                        kinds[conf["type"]] = None
        route_editors += edits_routes[alike]
    for node in nodes:
        _runtime(node).ask_versions(kinds)
    if route_editors > 1:
        netutils.preload()


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
        try:
            delegates = _delegates(plan, pod, cluster_network)
        except DelegateError:
            # Multus could not build its delegates (a missing NAD): no ADD ran, none to DEL
            delegates = []
        if delegates:
            detach_pod(_runtime(node), _sandbox(pod, path), delegates)
        netlink.delete_netns(name)
    record("pod", pod.ref, phase="removed")
    record("netns", name, phase="removed")


def attach(
    plan: Plan,
    pod: PodPlan,
    node: Node,
    cluster_network: Mapping[str, Any],
    lab_dir: str,
    record: Recorder,
    attached: Callable[[Sequence[Attachment]], None] | None = None,
) -> dict[str, Any]:
    """Make the pod's namespace, attach it, start its command; returns its status.
    ``attached`` is given what Multus made (each delegate's CNI result) before the command
    starts."""
    name = netns_name(pod)
    path = netlink.netns_path(name)
    record("netns", name, phase="intent", path=path, pod=pod.ref)
    netlink.create_netns(name)
    netlink.set_lo_up(path)
    delegates = _delegates(plan, pod, cluster_network)
    sandbox = _sandbox(pod, path)
    runtime = _runtime(node)
    record("pod", pod.ref, phase="intent", netns=path, node=node.name)
    # only DHCP needs the new links up at once (the dhcp daemon backs off 2 s when it finds
    # one down); other attachments skip the watcher's fork
    if any("dhcp" in iface.ipam_types for iface in pod.interfaces):
        with LinkUpWatcher(path, names=[d.ifname for d in delegates[1:]]):
            attachments = attach_pod_detailed(runtime, sandbox, delegates)
    else:
        attachments = attach_pod_detailed(runtime, sandbox, delegates)
    network_status = [entry for a in attachments for entry in a.network_status]
    if attached is not None:
        attached(attachments)
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


def likely_cause(plan: Plan, pod: PodPlan, node: Node | None = None) -> str | None:
    """What in the design or the running lab explains a failed attachment, in a user's
    words: a NAD whose master NIC the pod's node lacks (the plugin only says "Link not
    found"); for dhcp IPAM, a DHCP server that does not answer a DISCOVER from the node's
    NIC, or a dhcp daemon that does not answer on its socket (``node``: the pod's node, to
    look from; call inside the sandbox)."""
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
    if node is not None:
        return _dhcp_cause(plan, pod, node)
    return None


def _dhcp_cause(plan: Plan, pod: PodPlan, node: Node) -> str | None:
    dhcp = [i for i in pod.interfaces if "dhcp" in i.ipam_types and not i.cluster]
    if not dhcp:
        return None
    sock = os.path.join(node.dir("/run/cni"), os.path.basename(daemons.DHCP_SOCKET))
    refused = daemons.socket_answers(sock)
    if refused is not None:
        return (
            f"the CNI dhcp daemon on {node.name} does not answer on "
            f"{daemons.DHCP_SOCKET} ({refused})"
        )
    for iface in dhcp:
        nad = plan.nad(iface.network)
        net = next((n for n in plan.networks if n.name == iface.lab_network), None)
        if nad is None or not nad.master or net is None or net.dhcp is None:
            continue
        fd = ns.open_ns(node.netns)
        try:
            with ns.thread_in_netns(fd):
                offer = dhcpdiscover.discover(nad.master, timeout=1.0)
        except OSError:
            continue
        finally:
            os.close(fd)
        if offer is None:
            return (
                f"the DHCP server on {net.name} ({net.dhcp.server}) does not answer: a DHCP "
                f"DISCOVER from {node.name}:{nad.master} got no OFFER (is its dnsmasq "
                "running? multihome verify checks every DHCP server)"
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
    """Start what the plan says runs in the pod (``PodPlan.process``), if anything."""
    what = pod.process
    process = fit(f"pod-{name}")
    if what is None:
        return None
    if what.sleep is not None:
        sleep = shutil.which("sleep")
        if sleep is None:
            return None
        daemon = processes.start(
            process,
            [sleep, what.sleep],
            netns=netns,
            log=os.path.join(lab_dir, f"{process}.log"),
            record=record,
        )
        return {"pid": daemon.pid, "argv": list(daemon.argv), "serves": None}
    bind = "0.0.0.0"
    if what.bind_interface is not None:
        address = _interface_address(network_status, what.bind_interface)
        if address is None:
            return None  # no such interface (its attachment is missing): nothing to listen on
        bind = address
    eth0 = _interface_address(network_status, "eth0") or "0.0.0.0"
    serves = daemons.Serves(
        bind=bind,
        http=what.http,
        tcp=what.tcp,
        udp=what.udp,
        page=daemons.welcome_page(pod.ref, eth0),
    )
    daemon = daemons.start_server(process, serves, netns, lab_dir, record)
    return {"pid": daemon.pid, "argv": list(daemon.argv), "serves": serves.to_dict()}
