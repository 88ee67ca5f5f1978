"""Nodes reach each other by node-ip on the management network, out of their management
NIC (what RKE2's supervisor, the kubelet and Canal's host-gw routes rely on)."""

from __future__ import annotations

from ..collect import Evidence, Work
from ..report import CheckResult
from .base import Context, Judge, allow, route_text, spread_pairs, unmeasured


def derive(ctx: Context, work: Work) -> Judge:
    pairs = [(a, b) for a, b in spread_pairs(ctx.plan.nodes) if a.name in ctx.lab.nodes]
    for a, b in pairs:
        netns = ctx.lab.nodes[a.name].netns
        work.probe(f"node-ip:{a.name}:{b.name}", allow(netns, str(b.node_ip)))
        work.route(netns, str(b.node_ip))

    def judge(ev: Evidence) -> list[CheckResult]:
        mgmt = ctx.management
        title = f"nodes reach each other by node-ip on {mgmt}"
        if not pairs:
            return [CheckResult("node-ip", mgmt, title, "skip", cause="the lab has one node")]
        failed: list[str] = []
        causes: list[str] = []
        skipped: list[str] = []
        for a, b in pairs:
            result = ev.probes[f"node-ip:{a.name}:{b.name}"]
            route = ev.routes.get((ctx.lab.nodes[a.name].netns, str(b.node_ip)))
            if unmeasured(result.detail):
                failed.append(f"{a.name} -> {b.name} {b.node_ip}: {result.detail}")
                skipped.append(result.detail)
                continue
            if result.answered and route is not None and route.dev == a.management_nic:
                continue
            failed.append(f"{a.name} -> {b.name} {b.node_ip}: {result.detail}, {route_text(route)}")
            if route is None or route.dev != a.management_nic:
                causes.append(
                    f"{a.name} sends {b.node_ip} {route_text(route)}, not out of its "
                    f"management NIC {a.management_nic} on {mgmt}"
                )
            else:
                causes.append(
                    f"{b.name}'s node-ip {b.node_ip} does not answer on {mgmt}: is it the "
                    f"address of {b.management_nic}?"
                )
        if failed:
            return [
                CheckResult(
                    "node-ip",
                    mgmt,
                    title,
                    "fail",
                    tuple(failed),
                    "; ".join(dict.fromkeys(causes or skipped[:1])),
                )
            ]
        first = ev.probes[f"node-ip:{pairs[0][0].name}:{pairs[0][1].name}"]
        evidence = (
            f"{len(pairs)} of {len(pairs)} node pairs answer, each out of its management NIC"
            + (
                ""
                if len(pairs) == len(ctx.plan.nodes) * (len(ctx.plan.nodes) - 1)
                else " (each node with a few others spread around the lab)"
            ),
            f"e.g. {pairs[0][0].name} -> {pairs[0][1].node_ip}: {first.detail}",
        )
        return [CheckResult("node-ip", mgmt, title, "pass", evidence)]

    return judge
