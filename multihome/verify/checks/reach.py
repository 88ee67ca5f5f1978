"""Pods reach the hosts and services on the networks they attach to, out of the interface on
that network (the seed: net-tools gets the page at 172.16.60.31 over net2); and they do not
reach the networks they have no interface on, where their node has no address either (the
VLANs that only carry attachments: nothing should lead there from the cluster network)."""

from __future__ import annotations

from multihome.plan import PodPlan

from ..collect import Evidence, NetnsFacts, RouteTo, Work
from ..report import CheckResult
from ..view import PodView
from .base import (
    Context,
    Judge,
    Target,
    address_source,
    addresses_in,
    allow,
    deny,
    route_text,
    short,
    unmeasured,
)


def _attached(pod: PodPlan) -> dict[str, list[str]]:
    """Network -> the pod's interfaces on it (not eth0), in network order of first use."""
    found: dict[str, list[str]] = {}
    for iface in pod.interfaces:
        if not iface.cluster and iface.lab_network:
            found.setdefault(iface.lab_network, []).append(iface.name)
    return found


def derive(ctx: Context, work: Work) -> Judge:
    reach: list[tuple[PodPlan, PodView, str, list[str], list[Target]]] = []
    isolate: list[tuple[PodPlan, PodView, str, list[Target]]] = []
    for pod, view in ctx.running():
        attached = _attached(pod)
        node = ctx.lab.nodes[view.node]
        for network, ifnames in attached.items():
            targets = ctx.targets_on(network)
            if not targets:
                continue
            reach.append((pod, view, network, ifnames, targets))
            work.facts.add(view.netns)
            for t in targets:
                work.probe(
                    f"reach:{pod.ref}:{t.address}", allow(view.netns, t.address, t.proto, t.port)
                )
                work.route(view.netns, t.address)
        for net in ctx.plan.networks:
            if net.name in attached or node.address_on(net.name) is not None:
                continue
            targets = ctx.targets_on(net.name, service=False)
            if not targets:
                continue
            isolate.append((pod, view, net.name, targets))
            for t in targets:
                work.probe(f"isolation:{pod.ref}:{t.address}", deny(view.netns, t.address))
                work.route(view.netns, t.address)
                work.route(node.netns, t.address)

    def judge(ev: Evidence) -> list[CheckResult]:
        results = [_reach(ctx, *item, ev) for item in reach]
        results += [_isolation(ctx, *item, ev) for item in isolate]
        return results

    return judge


def _reach(
    ctx: Context,
    pod: PodPlan,
    view: PodView,
    network: str,
    ifnames: list[str],
    targets: list[Target],
    ev: Evidence,
) -> CheckResult:
    over = "/".join(ifnames)
    title = f"{short(pod.ref)} reaches {network} over {over}"
    subject = f"{pod.ref} {network}"
    lines, causes, skipped = [], [], []
    for t in targets:
        result = ev.probes[f"reach:{pod.ref}:{t.address}"]
        route = ev.routes.get((view.netns, t.address))
        probe = ev_probe_text(t)
        lines.append(f"{t.label} {probe}: {result.detail}, {route_text(route)}")
        if unmeasured(result.detail):
            skipped.append(result.detail)
            continue
        if result.answered and route is not None and route.dev in ifnames:
            continue
        causes.append(_why(ctx, pod, view, network, ifnames, t, result.outcome, route, ev))
    if causes or skipped:
        return CheckResult(
            "reach",
            subject,
            title,
            "fail",
            tuple(lines),
            "; ".join(dict.fromkeys(causes or skipped[:1])),
        )
    named = " and ".join(f"{t.label} ({ev_probe_text(t)})" for t in targets)
    verb = "answers" if len(targets) == 1 else "answer"
    summary = f"{named} {verb}, out of {over}"
    return CheckResult("reach", subject, title, "pass", (summary, *lines))


def ev_probe_text(t: Target) -> str:
    if t.proto == "http":
        return f"http://{t.address}:{t.port}"
    if t.proto == "icmp":
        return f"ping {t.address}"
    return f"{t.proto} {t.address}:{t.port}"


def _why(
    ctx: Context,
    pod: PodPlan,
    view: PodView,
    network: str,
    ifnames: list[str],
    t: Target,
    outcome: str,
    route: RouteTo | None,
    ev: Evidence,
) -> str:
    facts = ev.facts.get(view.netns) or NetnsFacts()
    net = ctx.lab.networks[network]
    for iface in pod.interfaces:
        if iface.name not in ifnames:
            continue
        found = facts.ifaces.get(iface.name)
        addresses = found.addresses if found else ()
        if not addresses_in(addresses, net.subnet):
            shown = ", ".join(addresses) or "no address"
            return (
                f"{iface.name} has {shown}, not an address in {network}'s {net.subnet} (from "
                f"{address_source(ctx, pod, iface)}): the pod has no route onto {network}, so "
                f"its traffic for {network} leaves {route_text(route)}"
            )
    if route is None or route.dev not in ifnames:
        return (
            f"the pod sends {t.address} {route_text(route)}, not out of {'/'.join(ifnames)}: "
            "another interface or route covers that address"
        )
    if outcome == "refused":
        return f"{t.label} refused port {t.port}: nothing listens there"
    first = next(i for i in pod.interfaces if i.name == ifnames[0])
    nad = ctx.plan.nad(first.network)
    master = f" ({nad.master} on {view.node})" if nad and nad.master else ""
    return (
        f"no answer from {t.label} over {ifnames[0]}{master}: the segment of {network} does "
        f"not carry the pod's traffic (macvlan mode of NAD {first.network}?)"
    )


def _isolation(
    ctx: Context,
    pod: PodPlan,
    view: PodView,
    network: str,
    targets: list[Target],
    ev: Evidence,
) -> CheckResult:
    title = f"{short(pod.ref)} does not reach {network} (it has no interface there)"
    subject = f"{pod.ref} {network}"
    lines, causes, skipped = [], [], []
    node = ctx.lab.nodes[view.node]
    for t in targets:
        result = ev.probes[f"isolation:{pod.ref}:{t.address}"]
        route = ev.routes.get((view.netns, t.address))
        lines.append(f"{t.label} ping {t.address}: {result.detail} ({route_text(route)})")
        if result.satisfies("deny"):
            continue
        if unmeasured(result.detail):
            skipped.append(result.detail)
            continue
        if result.outcome == "error":
            causes.append(
                f"the probe to {t.label} could not run, so nothing proves {network} is out of "
                f"reach: {result.detail}"
            )
            continue
        node_route = ev.routes.get((node.netns, t.address))
        if route is not None and route.dev != "eth0":
            how = f"the pod sends it {route_text(route)}"
        else:
            how = f"the pod sends it into eth0 and {view.node} forwards it {route_text(node_route)}"
        causes.append(
            f"{short(pod.ref)} reached {t.label} on {network} without an interface there: {how}"
        )
    if causes or skipped:
        return CheckResult(
            "isolation",
            subject,
            title,
            "fail",
            tuple(lines),
            "; ".join(dict.fromkeys(causes or skipped[:1])),
        )
    named = [f"{t.label} {t.address}" for t in targets]
    summary = (
        f"{named[0]} does not answer"
        if len(named) == 1
        else f"neither {' nor '.join(named)} answers"
    )
    return CheckResult("isolation", subject, title, "pass", (summary, *lines))
