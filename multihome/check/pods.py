"""Checks of pods and pod templates: the networks annotation, placement, namespaces."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from multihome.check.context import Context, PodInfo
from multihome.check.findings import Finding
from multihome.check.registry import check
from multihome.cni.errors import ConfigError
from multihome.cni.names import validate_ifname
from multihome.multus import gojson
from multihome.multus.selection import _ELEMENT_FIELDS as SELECTION_KEYS  # the parser's own
from multihome.multus.validate import go_ip_family
from multihome.spec import (
    DEFAULT_NETWORK_ANNOTATION,
    NETWORKS_ANNOTATION,
    WORKLOAD_KINDS,
    Location,
)

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
        for position, sel in enumerate(pod.selections, start=1):
            yield from _lenient(ctx, pod, position, sel.name, where)
            key = f"{sel.namespace}/{sel.name}"
            if not sel.name:
                continue  # _lenient said it
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
                # Multus CheckGatewayConfig: To4() != nil is IPv4; the empty IP counts as IPv6
                families.setdefault(go_ip_family(gw), []).append(gw or "(empty)")
        if any(len(gws) > 1 for gws in families.values()):
            yield ctx.error(
                "pod-default-route-twice",
                where,
                f"{pod.ref}: more than one default-route gateway per IP family "
                f"({', '.join(g for gws in families.values() for g in gws)}); Multus rejects it: "
                "multus does not support ECMP for default-route",
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


def _lenient(
    ctx: Context, pod: PodInfo, position: int, name: str, where: Location
) -> Iterator[Finding]:
    """What Multus's parser lets through but the pod then fails on (errors), or passes on
    as written (warnings)."""
    sel = pod.selections[position - 1]
    label = f"{pod.ref}: {NETWORKS_ANNOTATION} element {position}"
    if not name:
        yield ctx.error(
            "pod-network-name-empty",
            where,
            f"{label} has no network name (a blank item such as 'a,,b' or a trailing comma, or "
            'JSON without "name"): Multus keeps it and the pod fails with "cannot find a '
            f"network-attachment-definition () in namespace ({sel.namespace}): resource name "
            'may not be empty"',
            "remove the blank item, or name the network",
        )
    ifname = sel.interface
    if ifname:
        try:
            validate_ifname(ifname, "interface")
        except ConfigError as exc:
            yield ctx.error(
                "pod-interface-invalid",
                where,
                f"{label}: interface {ifname!r} passes Multus's parser, but the CNI runtime "
                f"refuses it when the pod starts ({exc})",
                "use at most 15 bytes, no '/', ':' or whitespace, not '.' or '..'",
            )
    if "" in (sel.default_route or []):
        yield ctx.error(
            "pod-default-route-empty",
            where,
            f'{label}: default-route holds an empty gateway ("" or null): Multus accepts it, '
            'then fails the pod with "error setting default gateway: one of Dst.IP, Src, or '
            'Gw must not be nil"',
            "write the gateway's IP address, or leave default-route out",
        )
    if any(p is None for p in sel.port_mappings):
        yield ctx.warning(
            "pod-port-mapping-null",
            where,
            f"{label}: portMappings holds a null entry, which Multus passes on to the plugins "
            "as null",
            "remove the null entry",
        )


_KEY_MEANT = {
    # keys people write for a selection element's, normalized (lower case, no - or _)
    "defaultroute": "default-route",
    "gateway": "default-route",
    "gw": "default-route",
    "defaultgateway": "default-route",
    "interfacename": "interface",
    "ifname": "interface",
    "iface": "interface",
    "ip": "ips",
    "ipaddress": "ips",
    "ipaddresses": "ips",
    "address": "ips",
    "addresses": "ips",
    "macaddress": "mac",
    "args": "cni-args",
    "cniargs": "cni-args",
    "ns": "namespace",
    "network": "name",
    "portmapping": "portMappings",
}
_KEY_EFFECT = {
    "default-route": "the pod's default route stays where the plugins put it (eth0)",
    "interface": "the interface gets its positional name (net1, net2, ...)",
    "ips": "the attachment gets whatever address its IPAM hands out",
    "mac": "the interface gets a random MAC",
    "cni-args": "the plugins never see those arguments",
    "namespace": "the network is looked up in the pod's own namespace",
}


def _meant(key: str) -> str | None:
    """The selection key ``key`` was probably meant to be (None: no good guess)."""
    plain = key.lower().replace("-", "").replace("_", "")
    if plain in _KEY_MEANT:
        return _KEY_MEANT[plain]
    for known in SELECTION_KEYS:
        if plain == known.lower().replace("-", ""):
            return known
    near = difflib.get_close_matches(key, SELECTION_KEYS, n=1, cutoff=0.7)
    return near[0] if near else None


@check
def selection_keys(ctx: Context) -> Iterator[Finding]:
    """Keys of a JSON selection element that Multus's decoder drops (Go's encoding/json
    ignores unknown keys): the annotation parses, and the key silently does nothing."""
    for pod in ctx.pods:
        value = pod.template.networks
        if pod.selection_error is not None or not value or not any(c in value for c in '[{"'):
            continue
        try:
            decoded = gojson.loads(value)
        except (RecursionError, ValueError):
            continue
        if not isinstance(decoded, list) or isinstance(decoded, gojson.Pairs):
            continue
        for position, element in enumerate(decoded, start=1):
            if not isinstance(element, gojson.Pairs):
                continue
            name = pod.selections[position - 1].name if position <= len(pod.selections) else ""
            for key, _ in element:
                if gojson.match_fields(gojson.Pairs([(key, None)]), SELECTION_KEYS):
                    continue
                meant = _meant(key)
                effect = _KEY_EFFECT.get(meant or "", "it has no effect")
                yield ctx.warning(
                    "pod-selection-key-unknown",
                    pod.locate_networks(),
                    f"{pod.ref}: {NETWORKS_ANNOTATION} element {position} (network {name!r}) "
                    f"has the key {key!r}, which Multus does not know: it ignores it without a "
                    f"word, so {effect}",
                    (f'did you mean "{meant}"? ' if meant else "")
                    + "Multus knows: "
                    + ", ".join(k for k in SELECTION_KEYS if k != "interfaceRequest"),
                )


def _suggest_nad(ctx: Context, name: str, namespace: str) -> str:
    lowered = [k for k in ctx.nads if k == f"{namespace.lower()}/{name.lower()}"]
    if lowered and lowered[0] != f"{namespace}/{name}":
        return (
            f"NAD names are lower case: did you mean {lowered[0]}? (Multus looks the name up "
            "as written, in the JSON form)"
        )
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
