"""Where the lab runs what, read from the plan alone: the pods it attaches and the nodes
that need the CNI dhcp daemon. Kept apart from ``realize`` (which re-exports them) so that
the lab's API server, which shows the dhcp daemon's pods, does not import the netlink and
attach machinery to know it."""

from __future__ import annotations

from multihome.plan import Plan, PodPlan


def placed_pods(plan: Plan) -> list[PodPlan]:
    """The pods the lab attaches: scheduled on a node, not on the host's network."""
    return [p for p in plan.pods if p.node is not None and not p.host_network]


def dhcp_nodes(placed: list[PodPlan]) -> list[str]:
    """The nodes that need the CNI dhcp daemon: a pod there has dhcp IPAM."""
    return sorted(
        {p.node for p in placed if p.node and any("dhcp" in i.ipam_types for i in p.interfaces)}
    )
