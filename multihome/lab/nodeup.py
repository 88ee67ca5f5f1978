"""The ``nodes`` step of ``up``: every node of the plan made, side by side in forked
workers (``forkpool``), then the permanent neighbour entries between them.

A worker makes a whole node: its namespaces and directories (``nodes.create_node``), its
NICs (``wiring``), bridges, sysctl, default and host-gw routes (``canal``), its files
(RKE2 config, Canal's conflist, the emulated plugins) and, where its pods need one, its
CNI dhcp daemon, which then starts while other nodes are made. Each worker has its own
netlink sockets; like the rest of ``up`` it records every namespace, link and process in
the journal before making it, so a failure (the pool stops at the first, killing the other
workers) or a killed ``up`` is rolled back from the journal. A failure names the node.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass

from multihome.plan import NodePlan, Plan

from . import canal, forkpool, ipam, neighbours, netlink, nodes, processes, safefs, trunks
from .daemons import launch_dhcp_daemon
from .steps import Progress, Step
from .wiring import node_bridges, wire_machine

Recorder = Callable[..., None]


class NodeFailed(RuntimeError):
    """Making a node failed; the message names it and the cause."""


@dataclass(frozen=True)
class Built:
    """A node made: its namespaces, its links' MACs, its dhcp daemon (started, not yet
    seen ready)."""

    node: nodes.Node
    macs: dict[str, str | None]
    dhcp_daemon: processes.Daemon | None


@dataclass(frozen=True)
class Context:
    """What every node's making shares."""

    plan: Plan
    record: Recorder
    lab_dir: str
    ns_dir: str
    scratch: str
    """the sandbox's scratch tmpfs (the nodes' ``nodes.SCRATCH_DIRS`` are on it)"""
    cpu: int
    calico: str
    """the calico launcher (``canal.write_launcher``)"""
    whereabouts: str
    """the whereabouts launcher (``ipam.write_launcher``)"""
    trunking: trunks.Trunking
    dhcp: Collection[str]
    """the nodes that get a dhcp daemon"""


def workers() -> int:
    """How many nodes are made at once: ``$MULTIHOME_NODE_WORKERS``, else one per CPU
    (making a node is mostly CPU: ours and the kernel's)."""
    value = os.environ.get("MULTIHOME_NODE_WORKERS", "")
    if value.isdigit() and int(value) > 0:
        return int(value)
    return os.cpu_count() or 1


def config_yaml(plan: Plan, node: NodePlan) -> str:
    """The node's ``/etc/rancher/rke2/config.yaml``."""
    lines = [f"node-ip: {node.node_ip}"]
    if node.join_address:
        lines.append(f"server: {node.join_address}")
    lines.append("cni:")
    lines.extend(f"- {c}" for c in plan.cluster.cni)
    if node.taints:
        lines.append("node-taint:")
        lines.extend(f'- "{t}"' for t in node.taints)
    return "\n".join(lines) + "\n"


def make_node(ctx: Context, nl: netlink.Netlink, node: NodePlan, root: str) -> Built:
    """Node ``node``, whole (see the module's docstring); its directory at ``root``."""
    plan = ctx.plan
    where = nodes.create_node(
        node.name, root=root, scratch=nodes.scratch_root(ctx.scratch, node.name),
        ns_dir=ctx.ns_dir, record=ctx.record, cpu=ctx.cpu,
    )  # fmt: skip
    inside = nl.ns(where.netns)
    inside.set_link("lo", up=True)
    macs = wire_machine(
        nl, plan, ctx.record, where.netns, "n", node.index, node.nics, ctx.trunking,
        bridged_address=False,
    )  # fmt: skip
    if macs is None or any(nic.bridge for nic in node.nics):
        macs = None  # read at the end: a bridge takes a MAC of its ports
    node_bridges(inside, node)
    inside.set_sysctl("net.ipv4.ip_forward", 1)
    routes = canal.route_changes(inside, plan, node)
    if node.default_gateway is not None:
        gateway = str(node.default_gateway)
        routes.insert(0, inside.change_route("default", via=gateway, dev=node.management_nic))
    inside.apply(routes)
    safefs.write_atomic(
        os.path.join(where.dir("/etc/rancher/rke2"), "config.yaml"),
        config_yaml(plan, node).encode(), base=where.root, mode=0o644,
    )  # fmt: skip
    canal.write_conflist(node, where)
    canal.install_plugin(ctx.calico, where)
    ipam.install_plugin(ctx.whereabouts, where)
    daemon = None
    if node.name in ctx.dhcp:
        daemon = launch_dhcp_daemon(where, ctx.lab_dir, ctx.record).daemon
    return Built(where, macs if macs is not None else inside.link_macs(), daemon)


def make_nodes(
    ctx: Context, nl: netlink.Netlink, roots: dict[str, str], progress: Progress
) -> dict[str, Built]:
    """Every node of the plan (``roots``: node name -> its directory), ``workers()`` at a
    time, then the permanent neighbour entries between them (over ``nl``, this process's
    sockets); by node name, in the plan's order."""
    todo = list(ctx.plan.nodes)
    own: dict[int, netlink.Netlink] = {}  # each worker's sockets (this process's when alone)

    def make(node: NodePlan) -> Built:
        sockets = own.get(os.getpid())
        if sockets is None:
            sockets = own[os.getpid()] = netlink.Netlink()
        try:
            return make_node(ctx, sockets, node, roots[node.name])
        except Exception as exc:
            raise NodeFailed(f"node {node.name}: {exc}") from exc

    def report(index: int, _: Built) -> None:
        made.add(index)
        progress(Step("nodes", done=len(made), total=len(todo)))

    made: set[int] = set()
    progress(Step("nodes", done=0, total=len(todo)))
    try:
        built = forkpool.fork_map(make, todo, workers(), on_result=report)
    except forkpool.WorkerDied as exc:  # killed, or crashed: the nodes it was making
        left = ", ".join(n.name for i, n in enumerate(todo) if i not in made)
        raise NodeFailed(f"a worker making nodes died ({exc}); not made: {left}") from exc
    finally:
        sockets = own.pop(os.getpid(), None)
        if sockets is not None:
            sockets.close()
    found = {node.name: b for node, b in zip(todo, built, strict=True)}
    neighbours.between_nodes(
        nl, ctx.plan, {n: b.node.netns for n, b in found.items()},
        {n: b.macs for n, b in found.items()},
    )  # fmt: skip
    return found
