"""Checks of pods and pod templates: the networks annotation, placement, namespaces."""

from __future__ import annotations

from collections.abc import Iterator
from ipaddress import ip_address

from multihome.check.context import Context, PodInfo
from multihome.check.findings import Finding
from multihome.check.registry import check
from multihome.spec import DEFAULT_NETWORK_ANNOTATION, NETWORKS_ANNOTATION, WORKLOAD_KINDS

BUILTIN_NAMESPACES = frozenset({"default", "kube-system", "kube-public", "longhorn-system"})
"""Namespaces that exist on an RKE2 cluster with Longhorn without a manifest for them."""


def ifnames(pod: PodInfo) -> list[str]:
    """The interface names Multus gives the pod's extra networks: netN by position."""
    return [s.interface or f"net{i}" for i, s in enumerate(pod.selections, start=1)]


@check
def network_annotations(ctx: Context) -> Iterator[Finding]:
    for pod in ctx.pods:
        where = pod.locate_networks()
        if pod.selection_error is not None:
            yield ctx.error(
                "pod-annotation-invalid",
                where,
                f"{pod.ref}: {NETWORKS_ANNOTATION} is invalid: {pod.selection_error}",
                "write 'ns/name' items separated by commas, or a JSON list of "
                '{"name": ..., "namespace": ..., "interface": ...}',
            )
            continue
        for sel in pod.selections:
            key = f"{sel.namespace}/{sel.name}"
            if key not in ctx.nads:
                yield ctx.error(
                    "pod-network-unknown",
                    where,
                    f"{pod.ref} asks for network {key}, but no NetworkAttachmentDefinition "
                    f"{sel.name} exists in namespace {sel.namespace}",
                    _suggest_nad(ctx, sel.name, sel.namespace),
                )
        names = ["eth0", *ifnames(pod)]
        clashes = sorted({n for n in names if names.count(n) > 1})
        if clashes:
            yield ctx.error(
                "pod-ifname-clash",
                where,
                f"{pod.ref}: interface name {', '.join(clashes)} is used twice",
                'give each network its own "interface", or leave it out to get net1, net2, ...',
            )
        families: dict[int, list[str]] = {}
        for sel in pod.selections:
            for gw in sel.default_route or []:
                families.setdefault(ip_address(gw).version, []).append(gw)
        if any(len(gws) > 1 for gws in families.values()):
            yield ctx.error(
                "pod-default-route-twice",
                where,
                f"{pod.ref}: more than one default-route gateway per IP family "
                f"({', '.join(g for gws in families.values() for g in gws)}); Multus rejects it",
                'set "default-route" on one network only',
            )
        default_net = pod.template.annotations.get(DEFAULT_NETWORK_ANNOTATION)
        if default_net:
            ns, _, name = default_net.rpartition("/")
            key = f"{ns or pod.template.namespace}/{name}"
            if key not in ctx.nads:
                yield ctx.error(
                    "pod-network-unknown",
                    pod.template.locate("metadata", "annotations", DEFAULT_NETWORK_ANNOTATION),
                    f"{pod.ref}: {DEFAULT_NETWORK_ANNOTATION} names {key}, which does not exist",
                    _suggest_nad(ctx, name, ns or pod.template.namespace),
                )


def _suggest_nad(ctx: Context, name: str, namespace: str) -> str:
    same_name = [k for k in ctx.nads if k.split("/", 1)[1] == name]
    if same_name:
        return f"did you mean {same_name[0]}? (write the namespace: '{same_name[0]}')"
    in_ns = [k for k in ctx.nads if k.startswith(namespace + "/")]
    if in_ns:
        return "NADs in that namespace: " + ", ".join(in_ns)
    return "define the NetworkAttachmentDefinition, or fix the name"


@check
def annotation_on_workload(ctx: Context) -> Iterator[Finding]:
    for manifest in ctx.lf.of_kind(*WORKLOAD_KINDS):
        if NETWORKS_ANNOTATION in manifest.view.metadata.annotations:
            yield ctx.warning(
                "workload-annotation-not-in-template",
                manifest.locate("metadata", "annotations", NETWORKS_ANNOTATION),
                f"{manifest.ref}: {NETWORKS_ANNOTATION} is on the {manifest.kind}'s own metadata, "
                "where Multus never sees it: its pods get no extra networks (multus-cni#308)",
                "move the annotation to spec.template.metadata.annotations",
            )


@check
def placement(ctx: Context) -> Iterator[Finding]:
    servers = {n.name for n in ctx.spec.nodes if n.role == "server"}
    nodes = {n.name for n in ctx.spec.nodes}
    for pod in ctx.pods:
        spec = pod.template.spec
        if spec.node_name is not None and spec.node_name not in nodes:
            yield ctx.error(
                "pod-node-unknown",
                pod.template.locate("spec", "nodeName"),
                f"{pod.ref}: nodeName {spec.node_name} is not a node of the lab",
                "use one of: " + ", ".join(sorted(nodes)),
            )
            continue
        if spec.node_name in servers and not ctx.spec.cluster.servers_run_workloads:
            yield ctx.warning(
                "pod-on-server",
                pod.template.locate("spec", "nodeName"),
                f"{pod.ref} is pinned to server {spec.node_name}, but servers run no workloads "
                "(tainted CriticalAddonsOnly=true:NoExecute)",
                "pin it to an agent, or tolerate the taint if it must run on a server",
            )
        elif not pod.eligible:
            where = (
                pod.template.locate("spec", "nodeSelector")
                if spec.node_selector
                else pod.template.locate("spec")
            )
            yield ctx.error(
                "pod-unschedulable",
                where,
                f"{pod.ref} fits no node: no agent matches its nodeSelector and tolerations",
                "check nodeSelector against the nodes' labels (and servers' taints)",
            )
        elif all(n.name in servers for n in pod.eligible) and spec.node_selector:
            yield ctx.warning(
                "pod-on-server",
                pod.template.locate("spec", "nodeSelector"),
                f"{pod.ref} can only run on servers ({', '.join(n.name for n in pod.eligible)}), "
                "which in this design run no workloads",
                "select agents instead",
            )


@check
def namespaces(ctx: Context) -> Iterator[Finding]:
    defined = {m.name for m in ctx.lf.of_kind("Namespace")}
    reported: set[str] = set()
    for manifest in ctx.lf.manifests:
        ns = manifest.namespace
        if ns is None or ns in defined or ns in BUILTIN_NAMESPACES or ns in reported:
            continue
        reported.add(ns)
        yield ctx.error(
            "namespace-missing",
            manifest.locate("metadata", "namespace"),
            f"{manifest.ref} is in namespace {ns}, which the lab does not create: "
            "kubectl apply fails with 'namespaces not found'",
            f"add a Namespace manifest named {ns}",
        )
