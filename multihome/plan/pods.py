"""Pods resolved: every concrete pod (Pods, workload replicas, DaemonSet pods, Longhorn's
instance-managers), the node it runs on, and its interfaces in the order Multus makes them.

Instance-managers follow the Longhorn release (``instance_managers.py``): an engine and a
replica one per node in 1.4, one ``aio`` from 1.5.

Placement is deterministic and spreads like the scheduler's least-allocated scoring: each
pod goes to the eligible node (nodeName, nodeSelector, taints: ``scheduling.eligible_nodes``)
that has the fewest pods placed so far, ties broken by lab order, so pods alike go
round-robin. Names: a Pod keeps its own; Deployment and StatefulSet replicas are
``<name>-<index>`` from 0; a DaemonSet's pod is ``<name>-<node>``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from multihome.multus.errors import SelectionError
from multihome.multus.selection import NetworkSelectionElement, parse_network_selection
from multihome.plan import instance_managers as im
from multihome.plan.errors import PlanError
from multihome.plan.model import (
    CLUSTER_NETWORK,
    InterfacePlan,
    LonghornPlan,
    NADPlan,
    NetworkPlan,
    NodePlan,
    Owner,
    PodPlan,
)
from multihome.plan.nads import lab_network_on
from multihome.plan.process import longhorn_process, pod_process
from multihome.plan.scheduling import eligible_nodes
from multihome.spec import DEFAULT_NETWORK_ANNOTATION, LabFile, Node, PodTemplate, WorkloadView

LONGHORN_NAMESPACE = "longhorn-system"
LONGHORN_INTERFACE = "lhnet1"
MULTUS_NAMESPACE = "kube-system"
"""Where Multus looks up a default-network NAD that names no namespace."""


@dataclass
class _Context:
    """What resolving pods needs, and the running count of pods per node."""

    lab_file: LabFile
    nodes: dict[str, NodePlan]
    networks: dict[str, NetworkPlan]
    nads: dict[str, NADPlan]
    all_networks: tuple[NetworkPlan, ...] = ()
    placed: Mapping[str, str] = field(default_factory=dict)
    load: dict[str, int] = field(default_factory=dict)

    def place(self, eligible: list[Node], ref: str) -> str | None:
        """Where pod ``ref`` runs already (if still eligible), else the least loaded
        eligible node (lab order breaks ties); counted as used."""
        if not eligible:
            return None
        running = self.placed.get(ref)
        chosen = next(
            (n for n in eligible if n.name == running),
            min(eligible, key=lambda n: self.load.get(n.name, 0)),
        )
        self.load[chosen.name] = self.load.get(chosen.name, 0) + 1
        return chosen.name


def _selections(value: str | None, namespace: str, what: str) -> list[NetworkSelectionElement]:
    try:
        return parse_network_selection(value, namespace)
    except SelectionError as exc:
        raise PlanError(f"{what}: invalid network annotation: {exc}") from None


def _interface(
    ctx: _Context, name: str, sel: NetworkSelectionElement | None, node: str | None
) -> InterfacePlan:
    """eth0 on the cluster network (``sel`` None), or the attachment ``sel`` asks for."""
    plan = ctx.nodes.get(node) if node else None
    if sel is None:
        return InterfacePlan(
            name=name,
            network=CLUSTER_NETWORK,
            cluster=True,
            lab_network=None,
            subnet=plan.pod_cidr if plan else None,
            cni_type=None,
            ipam_types=(),
            ips=(),
            mac=None,
            default_route=None,
        )
    nad = ctx.nads.get(sel.qualified_name)
    lab_net = lab_network_on(nad, plan.nics, ctx.all_networks) if nad and plan else None
    return InterfacePlan(
        name=name,
        network=sel.qualified_name,
        cluster=name == "eth0",
        lab_network=lab_net,
        subnet=ctx.networks[lab_net].subnet if lab_net in ctx.networks else None,
        cni_type=nad.cni_type if nad else None,
        ipam_types=nad.ipam_types if nad else (),
        ips=tuple(sel.ips),
        mac=sel.mac,
        default_route=tuple(sel.default_route) if sel.default_route is not None else None,
    )


def _interfaces(
    ctx: _Context, annotations: dict[str, str], namespace: str, node: str | None, what: str
) -> tuple[InterfacePlan, ...]:
    default = annotations.get(DEFAULT_NETWORK_ANNOTATION)
    eth0_sel = None
    if default:
        found = _selections(default, MULTUS_NAMESPACE, what)
        eth0_sel = found[0] if found else None
    found_ifaces = [_interface(ctx, "eth0", eth0_sel, node)]
    selections = _selections(annotations.get("k8s.v1.cni.cncf.io/networks"), namespace, what)
    for index, sel in enumerate(selections, start=1):
        found_ifaces.append(_interface(ctx, sel.interface or f"net{index}", sel, node))
    names = [i.name for i in found_ifaces]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise PlanError(f"{what}: interface name {', '.join(clashes)} is used twice")
    return tuple(found_ifaces)


def _names(ctx: _Context, template: PodTemplate) -> Iterator[tuple[str, str | None]]:
    """(pod name, node) for each pod the manifest makes."""
    manifest = template.manifest
    spec = ctx.lab_file.lab.spec
    eligible = eligible_nodes(template.spec, spec.nodes, spec.cluster)
    if manifest.kind == "DaemonSet":
        for node in eligible:
            ctx.load[node.name] = ctx.load.get(node.name, 0) + 1
            yield f"{manifest.name}-{node.name}", node.name
        return
    if manifest.kind == "Pod":
        yield manifest.name, ctx.place(eligible, f"{template.namespace}/{manifest.name}")
        return
    view = manifest.view
    replicas = view.spec.replicas if isinstance(view, WorkloadView) else None
    for index in range(1 if replicas is None else replicas):
        name = f"{manifest.name}-{index}"
        yield name, ctx.place(eligible, f"{template.namespace}/{name}")


def _raw_spec(template: PodTemplate) -> Mapping[str, Any]:
    """The pod's spec as written (the typed view keeps only what the checks need)."""
    node: Any = template.manifest.body
    for key in template.path:
        node = node[key]
    spec = node.get("spec") if isinstance(node, Mapping) else None
    return spec if isinstance(spec, Mapping) else {}


def _lab_pods(ctx: _Context) -> list[PodPlan]:
    pods = []
    for template in ctx.lab_file.pods_and_templates():
        manifest = template.manifest
        owner = None if manifest.kind == "Pod" else Owner(kind=manifest.kind, name=manifest.name)
        for name, node in _names(ctx, template):
            what = f"pod {template.namespace}/{name}"
            host = template.spec.host_network
            pods.append(
                PodPlan(
                    namespace=template.namespace,
                    name=name,
                    owner=owner,
                    node=node,
                    host_network=host,
                    networks_annotation=template.networks,
                    interfaces=()
                    if host
                    else _interfaces(ctx, template.annotations, template.namespace, node, what),
                    process=pod_process(_raw_spec(template)),
                )
            )
    return pods


def longhorn_annotation(storage_network: str) -> str:
    """The selection Longhorn puts on its instance-manager pods."""
    namespace, _, name = storage_network.partition("/")
    element = {"namespace": namespace, "name": name, "interface": LONGHORN_INTERFACE}
    return json.dumps([element])


def _longhorn_pods(ctx: _Context, longhorn: LonghornPlan) -> list[PodPlan]:
    """The instance-managers of the release (``instance_managers.py``) on each node that
    runs workloads (Longhorn tolerates no taint by default), each with ``lhnet1`` on the
    storage network; the replica-serving ones listen for replication there."""
    annotation = longhorn_annotation(longhorn.storage_network)
    annotations = {"k8s.v1.cni.cncf.io/networks": annotation}
    image = longhorn.instance_manager_image
    pods = []
    for node in ctx.nodes.values():
        if not node.runs_workloads:
            continue
        for im_type in longhorn.instance_manager_types:
            name = im.name_for(im_type, node.name, longhorn.version, image)
            what = f"pod {LONGHORN_NAMESPACE}/{name} (the {im_type} instance-manager)"
            serves = im_type in im.SERVES_REPLICAS
            labels = im.labels_for(im_type, node.name, longhorn.version, image)
            pods.append(
                PodPlan(
                    namespace=LONGHORN_NAMESPACE,
                    name=name,
                    owner=Owner(kind="Longhorn", name="instance-manager"),
                    node=node.name,
                    host_network=False,
                    networks_annotation=annotation,
                    interfaces=_interfaces(ctx, annotations, LONGHORN_NAMESPACE, node.name, what),
                    process=longhorn_process(longhorn.interface) if serves else None,
                    labels=tuple(labels.items()),
                )
            )
    return pods


def pod_plans(
    lab_file: LabFile,
    nodes: tuple[NodePlan, ...],
    networks: tuple[NetworkPlan, ...],
    nads: tuple[NADPlan, ...],
    longhorn: LonghornPlan | None,
    placed: Mapping[str, str] | None = None,
) -> tuple[PodPlan, ...]:
    """Every pod: the lab's in manifest order, then Longhorn's in node order (``placed``:
    see ``build_plan``)."""
    ctx = _Context(
        lab_file,
        nodes={n.name: n for n in nodes},
        networks={n.name: n for n in networks},
        nads={n.key: n for n in nads},
        all_networks=networks,
        placed=placed or {},
    )
    pods = _lab_pods(ctx)
    if longhorn is not None:
        pods += _longhorn_pods(ctx, longhorn)
    seen: set[str] = set()
    for pod in pods:
        if pod.ref in seen:
            raise PlanError(f"two pods would be named {pod.ref}; rename one of their manifests")
        seen.add(pod.ref)
    return tuple(pods)
