"""Apply a changed lab file to the running lab: only the pods that differ.

``up`` of a lab that runs compares the new plan with the one the lab was built from
(``plan.json``). When its machines and wires (cluster, networks, nodes, hosts) are the
same, the pods are reconciled: a pod that is gone, or whose placement, annotation, NADs or
command changed, is detached (process stopped, every attachment DELeted so IPAM releases
its address, namespace deleted); new and changed pods are attached as ``up`` attaches them.
A change to the machines or wires needs a rebuild, and says so.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from typing import Any

from multihome.plan import Plan, PodPlan

from . import canal, daemons, forkpool, neighbours, netlink, nodes, ns, pods, realize, sandbox
from .state import LabState
from .steps import Progress, Step

REBUILD_FIELDS = ("cluster", "networks", "nodes", "hosts")


def infrastructure_changes(old: Plan, new: Plan) -> list[str]:
    """What changed that a running lab can't take in place (empty: pods only)."""
    return [field for field in REBUILD_FIELDS if getattr(old, field) != getattr(new, field)]


def _signature(plan: Plan, pod: PodPlan) -> tuple[Any, ...]:
    """Everything that makes a pod's attachments and process (the pod's plan, with its
    ``process``, and its NADs' configs): if it differs, the pod is made again (as a real
    cluster replaces a pod whose spec changed)."""
    configs = tuple(
        (iface.network, nad.config if (nad := plan.nad(iface.network)) else None)
        for iface in pod.interfaces
    )
    return (pod, configs)


@dataclass(frozen=True)
class PodDiff:
    """Pods to detach (from the old plan) and to attach (from the new one)."""

    removed: tuple[PodPlan, ...]
    added: tuple[PodPlan, ...]

    def __bool__(self) -> bool:
        return bool(self.removed or self.added)

    def summary(self) -> str:
        gone = {p.ref for p in self.removed}
        new = {p.ref for p in self.added}
        parts = [
            f"{len(new - gone)} added" if new - gone else "",
            f"{len(gone - new)} removed" if gone - new else "",
            f"{len(gone & new)} replaced" if gone & new else "",
        ]
        return ", ".join(p for p in parts if p) or "no pod changes"


def pod_diff(old: Plan, new: Plan) -> PodDiff:
    before = {p.ref: p for p in realize.placed_pods(old)}
    after = {p.ref: p for p in realize.placed_pods(new)}
    changed = {
        ref
        for ref in before.keys() & after.keys()
        if _signature(old, before[ref]) != _signature(new, after[ref])
    }
    return PodDiff(
        removed=tuple(p for ref, p in before.items() if ref not in after or ref in changed),
        added=tuple(p for ref, p in after.items() if ref not in before or ref in changed),
    )


def apply(
    old: Plan,
    new: Plan,
    diff: PodDiff,
    state: LabState,
    sb: sandbox.Sandbox,
    progress: Progress,
    keep_going: bool,
) -> list[dict[str, Any]]:
    """In the sandbox (``Sandbox.call``): detach ``diff.removed``, attach ``diff.added``;
    returns the added pods' statuses. When attaching fails, the pods added so far are
    detached again before the error is raised."""
    ns.die_with_parent()
    lab_dir = str(state.dir)
    made = {
        n.name: nodes.Node(
            name=n.name,
            netns=netlink.netns_path(n.name),
            mntns=os.path.join(sb.ns_dir, n.name),
            root=str(state.node_dir(n.name)),
            scratch=nodes.scratch_root(sb.scratch, n.name),
        )
        for n in new.nodes
    }
    journal = state.objects()
    if diff.removed:
        progress(Step("removing pods", done=0, total=len(diff.removed)))

        for pod in diff.removed:
            pods.stop_process(pod, journal, state.record)

        with netlink.Netlink() as nl:
            known = neighbours.peers(nl, old)

        def detach(pod: PodPlan) -> str:
            assert pod.node is not None
            conf = canal.conflist(old.node(pod.node))
            with netlink.Netlink() as own:
                neighbours.forget_pod(own, pod, known)
            pods.detach(old, pod, made[pod.node], conf, state.record)
            return pod.ref

        forkpool.fork_map(detach, diff.removed, forkpool.attach_workers())
        progress(Step("removing pods", done=len(diff.removed), total=len(diff.removed)))
    for node_name in realize.dhcp_nodes(list(diff.added)):
        if ("process", daemons.dhcp_daemon_name(node_name)) not in journal:
            daemons.start_dhcp_daemon(made[node_name], lab_dir, state.record)
    try:
        return realize.attach_pods(
            new, list(diff.added), made, lab_dir, state.record, progress, keep_going
        )
    except BaseException:
        journal = state.objects()
        for pod in diff.added:
            if ("pod", pod.ref) in journal and pod.node is not None:
                conf = canal.conflist(new.node(pod.node))
                # best effort, each step on its own: the first error is the news
                with contextlib.suppress(Exception):
                    pods.stop_process(pod, journal, state.record)
                with contextlib.suppress(Exception):
                    pods.detach(new, pod, made[pod.node], conf, state.record)
        raise
