"""The cluster network: pods on different nodes reach each other over eth0, and that traffic
crosses the node-ip network's segment, the one Canal must be pinned to (measured: a stream
between two pods and the switch's byte counters meanwhile)."""

from __future__ import annotations

from multihome.plan import PodPlan

from ..collect import Evidence, Work
from ..counters import Stream
from ..report import CheckResult
from ..view import PodView
from .base import (
    STREAM_SIZE,
    Context,
    Judge,
    allow,
    at,
    keeps_cluster_route,
    route_text,
    segments_text,
    size_text,
    spread_pairs,
    unmeasured,
)

Pair = tuple[PodPlan, PodView, str, PodPlan, PodView, str]
CALICO_GATEWAY = "169.254.1.1"  # pods' next hop on eth0, answered by the node's proxy ARP


def _eth0(view: PodView) -> str | None:
    entry = next((e for e in view.network_status if e.get("default")), None)
    ips = entry.get("ips") if entry else None
    return str(ips[0]) if ips else view.address("eth0")


def _one_per_node(ctx: Context) -> list[tuple[PodPlan, PodView, str]]:
    found: dict[str, tuple[PodPlan, PodView, str]] = {}
    for pod, view in ctx.running():
        if not keeps_cluster_route(pod):
            continue
        address = _eth0(view)
        if address and view.node not in found:
            found[view.node] = (pod, view, address)
    order = [n.name for n in ctx.plan.nodes]
    return [found[n] for n in order if n in found]


def derive(ctx: Context, work: Work) -> Judge:
    chosen = _one_per_node(ctx)
    pairs: list[Pair] = [(*a, *b) for a, b in spread_pairs(chosen, ordered=False)]
    for a, va, _, b, _, dst in pairs:
        work.probe(f"pod-to-pod:{a.ref}:{b.ref}", allow(va.netns, dst))
        work.route(va.netns, dst)
        work.route(ctx.lab.nodes[va.node].netns, dst)
        work.route(ctx.lab.nodes[va.node].netns, CALICO_GATEWAY)
    if pairs:
        a, va, _, b, vb, dst = pairs[0]
        work.streams["canal-segment"] = Stream(va.netns, dst, STREAM_SIZE, sink_netns=vb.netns)

    def judge(ev: Evidence) -> list[CheckResult]:
        return [_pod_to_pod(ctx, pairs, ev), _segment(ctx, pairs, ev)]

    return judge


def _explain(ctx: Context, va: PodView, dst: str, ev: Evidence) -> str:
    pod_route = ev.routes.get((va.netns, dst))
    if pod_route is None or pod_route.dev != "eth0":
        return (
            f"the pod itself sends {dst} {route_text(pod_route)}, not into eth0: a default "
            "route on another interface takes cluster traffic (see its default-route check)"
        )
    node_netns = ctx.lab.nodes[va.node].netns
    if pod_route.via == CALICO_GATEWAY:
        to_gateway = ev.routes.get((node_netns, CALICO_GATEWAY))
        if to_gateway is None or to_gateway.dev is None:
            return (
                f"{va.node} has no route to {CALICO_GATEWAY} (no default route): its proxy "
                f"ARP answers the pods' gateway {CALICO_GATEWAY} only for an address it "
                f"routes, so the pod's packets never leave eth0. Give {ctx.management} a "
                "gateway (the nodes' default route)"
            )
    node_route = ev.routes.get((node_netns, dst))
    iface = ctx.plan.cluster.canal_iface
    if node_route is None or node_route.dev is None:
        return (
            f"{va.node} has no route to {dst}: Canal's host-gw routes are missing there "
            f"(canal.iface {iface} is not a NIC of {va.node})"
        )
    return (
        f"{va.node} sends it {route_text(node_route)}, but no reply came back: the other "
        "node's route back, or the segment between them"
    )


def _pod_to_pod(ctx: Context, pairs: list[Pair], ev: Evidence) -> CheckResult:
    title = "pods on different nodes reach each other over the cluster network (eth0)"
    if not pairs:
        return CheckResult(
            "pod-to-pod",
            "cluster network",
            title,
            "skip",
            cause="no two nodes run a pod that keeps its default route on eth0",
        )
    lines, causes, skipped = [], [], []
    for a, va, _, b, vb, dst in pairs:
        result = ev.probes[f"pod-to-pod:{a.ref}:{b.ref}"]
        lines.append(f"{at(a, va)} -> {at(b, vb)} {dst}: {result.detail}")
        if unmeasured(result.detail):
            skipped.append(result.detail)
        elif not result.answered:
            causes.append(_explain(ctx, va, dst, ev))
    if causes or skipped:
        return CheckResult(
            "pod-to-pod",
            "cluster network",
            title,
            "fail",
            tuple(lines),
            "; ".join(dict.fromkeys(causes or skipped[:1])),
        )
    nodes = len({va.node for _, va, _, _, _, _ in pairs} | {vb.node for *_, vb, _ in pairs})
    summary = f"{len(pairs)} pod pairs on {nodes} nodes answer over eth0"
    return CheckResult("pod-to-pod", "cluster network", title, "pass", (summary, *lines))


def _segment(ctx: Context, pairs: list[Pair], ev: Evidence) -> CheckResult:
    mgmt = ctx.management
    iface = ctx.plan.cluster.canal_iface
    title = f"pod traffic between nodes crosses {mgmt}, the node-ip network, and no other"
    if not pairs:
        return CheckResult(
            "canal-segment", "cluster network", title, "skip", cause="no pods on two nodes"
        )
    a, va, _, b, vb, dst = pairs[0]
    result = ev.streams["canal-segment"]
    line = f"{size_text(STREAM_SIZE)} {result.how} {at(a, va)} -> {at(b, vb)} {dst}"
    if result.error:
        return CheckResult(
            "canal-segment",
            "cluster network",
            title,
            "fail",
            (f"{line}: {result.error}",),
            result.error if unmeasured(result.error) else _explain(ctx, va, dst, ev),
        )
    names = ctx.lab.bridges
    grown = result.segments
    carried = [names.get(br, br) for br, n in grown.items() if n >= STREAM_SIZE]
    mgmt_bridge = ctx.bridge(mgmt)
    others = [
        names.get(br, br) for br, n in grown.items() if br != mgmt_bridge and n >= STREAM_SIZE / 4
    ]
    node_route = ev.routes.get((ctx.lab.nodes[va.node].netns, dst))
    evidence = (
        f"{segments_text(ctx, grown)} while {line}",
        f"{va.node} sends it {route_text(node_route)}",
    )
    if mgmt in carried and not others:
        return CheckResult("canal-segment", "cluster network", title, "pass", evidence)
    crossed = ", ".join(carried or others) or "no segment of the lab"
    nodes = [va.node, vb.node]
    where = sorted({f"{ctx.nic_network(n, iface)}" for n in nodes if ctx.nic_network(n, iface)})
    if iface and where and mgmt not in where:
        mgmt_nic = ctx.plan.node(va.node).management_nic
        cause = (
            f"pod traffic between nodes crossed {crossed}, not {mgmt}: Canal is pinned to "
            f"{iface} (cluster.canal.iface), which is on {', '.join(where)} on "
            f"{' and '.join(nodes)}, so flannel's host-gw routes send pod traffic out of "
            f"{iface} (rancher/rke2#1353). Pin Canal to the NIC on {mgmt} ({mgmt_nic}) in "
            "both calico.ipAutoDetectionMethod and flannel.iface"
        )
    else:
        cause = (
            f"pod traffic between nodes crossed {crossed}, not {mgmt}: {va.node} sends it "
            f"{route_text(node_route)}"
        )
    return CheckResult("canal-segment", "cluster network", title, "fail", evidence, cause)
