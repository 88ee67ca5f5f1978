"""Longhorn's storage network: each instance-manager that runs engines reaches the
replica-serving instance-managers of the other agents on lhnet1 (Longhorn 1.4: engine ->
replica instance-managers; 1.5+: the all-in-one ones, each way), and a replication stream
(to the replica's data port, when the instance-manager listens there) crosses the storage
VLAN's segment, not the management one. The storage VLAN is the one the storage NAD lands
on; it must be Longhorn's own: not the management network, no host outside the cluster on
it, no other NAD's attachments."""

from __future__ import annotations

from multihome.plan import PodPlan
from multihome.plan.instance_managers import AIO, RUNS_ENGINES, SERVES_REPLICAS, TYPE_LABEL
from multihome.plan.process import LONGHORN_REPLICA_PORT

from ..collect import Evidence, Work
from ..counters import OVER_TCP, Stream
from ..report import CheckResult
from ..view import PodView
from .base import (
    STREAM_SIZE,
    Context,
    Judge,
    allow,
    at,
    route_text,
    segments_text,
    short,
    size_text,
    spread_pairs,
    unmeasured,
)

REPLICA_PORT = LONGHORN_REPLICA_PORT

Member = tuple[PodPlan, PodView, str]


def im_type(pod: PodPlan) -> str:
    """The instance-manager's type from its labels (``aio`` when it has none)."""
    return dict(pod.labels).get(TYPE_LABEL, AIO)


def _members(ctx: Context, ifname: str) -> tuple[list[Member], list[str]]:
    """Instance-managers with an address on ``ifname``, and those without (by name)."""
    found, missing = [], []
    for pod, view in ctx.pods():
        if pod.owner is None or pod.owner.kind != "Longhorn":
            continue
        address = view.address(ifname) if view is not None and view.running else None
        if view is None or address is None:
            missing.append(short(pod.ref))
        else:
            found.append((pod, view, address))
    return found, missing


def _pairs(members: list[Member]) -> list[tuple[Member, Member]]:
    """(engine side, replica side) on different nodes: the engine-running instance-managers
    of a node with the replica-serving ones of another; all-in-one ones once per pair of
    nodes. Nodes pair as ``spread_pairs`` pairs them (all pairs in a small lab)."""
    nodes = list(dict.fromkeys(view.node for _, view, _ in members))
    split = any(im_type(pod) != AIO for pod, _, _ in members)
    pairs = []
    for na, nb in spread_pairs(nodes, ordered=split):
        clients = [m for m in members if m[1].node == na and im_type(m[0]) in RUNS_ENGINES]
        servers = [m for m in members if m[1].node == nb and im_type(m[0]) in SERVES_REPLICAS]
        pairs += [(a, b) for a in clients for b in servers]
    return pairs


def derive(ctx: Context, work: Work) -> Judge:
    longhorn = ctx.plan.longhorn
    if longhorn is None:
        return lambda ev: []
    ifname = longhorn.interface
    members, missing = _members(ctx, ifname)
    pairs = _pairs(members)
    for (a, va, _), (b, _, dst) in pairs:
        work.probe(f"longhorn:{a.ref}:{b.ref}", allow(va.netns, dst))
        work.route(va.netns, dst)
    if pairs:
        (a, va, _), (b, vb, dst) = pairs[0]
        echo = REPLICA_PORT in vb.serves.tcp
        work.streams["longhorn-segment"] = Stream(
            va.netns,
            dst,
            STREAM_SIZE,
            port=REPLICA_PORT if echo else None,
            sink_netns=None if echo else vb.netns,
            echo=echo,
        )
    split = any(im_type(p) != AIO for p, _, _ in members)

    def judge(ev: Evidence) -> list[CheckResult]:
        note = (
            f" ({', '.join(missing)} have no {ifname}: see their interfaces checks)"
            if missing
            else ""
        )
        if not pairs:
            why = "no engine and replica instance-managers on different nodes have " + ifname
            key = longhorn.storage_network
            segment = "replication between agents crosses a VLAN of Longhorn's own"
            return [
                CheckResult(
                    "longhorn-reach", key, _reach_title(ifname, split), "skip", cause=why + note
                ),
                CheckResult("longhorn-segment", key, segment, "skip", cause=why),
            ]
        return [
            _reach(ctx, ifname, pairs, ev, note, split),
            _segment(ctx, ifname, pairs[0], ev),
        ]

    return judge


def _reach_title(ifname: str, split: bool) -> str:
    if split:
        return (
            "engine instance-managers reach the replica instance-managers of other agents "
            f"on {ifname}"
        )
    return f"instance-managers on different agents reach each other on {ifname}"


def _reach(
    ctx: Context,
    ifname: str,
    pairs: list[tuple[Member, Member]],
    ev: Evidence,
    note: str,
    split: bool,
) -> CheckResult:
    assert ctx.plan.longhorn is not None
    subject = ctx.plan.longhorn.storage_network
    lines, causes, skipped = [], [], []
    for (a, va, _), (b, vb, dst) in pairs:
        result = ev.probes[f"longhorn:{a.ref}:{b.ref}"]
        route = ev.routes.get((va.netns, dst))
        lines.append(f"{at(a, va)} -> {at(b, vb)} {dst}: {result.detail}, {route_text(route)}")
        if unmeasured(result.detail):
            skipped.append(result.detail)
            continue
        if result.answered and route is not None and route.dev == ifname:
            continue
        if route is None or route.dev != ifname:
            causes.append(
                f"{at(a, va)} sends {dst} {route_text(route)}, not out of {ifname}: the two "
                "instance-managers' storage addresses are not on one subnet"
            )
        else:
            na = next((i.lab_network for i in a.interfaces if i.name == ifname), None)
            nb = next((i.lab_network for i in b.interfaces if i.name == ifname), None)
            causes.append(
                f"no answer over {ifname}: {va.node}'s lands on {na}, {vb.node}'s on {nb}"
                if na != nb
                else f"no answer over {ifname} on {na}"
            )
    if causes or skipped:
        return CheckResult(
            "longhorn-reach",
            subject,
            _reach_title(ifname, split) + note,
            "fail",
            tuple(lines),
            "; ".join(dict.fromkeys(causes or skipped[:1])),
        )
    summary = f"{len(pairs)} pairs answer, each out of {ifname}"
    title = _reach_title(ifname, split)
    return CheckResult("longhorn-reach", subject, title, "pass", (summary, *lines))


def _sharing(ctx: Context, network: str) -> list[str]:
    """What else is on the storage VLAN: hosts outside the cluster, other NADs' pods."""
    assert ctx.plan.longhorn is not None
    key = ctx.plan.longhorn.storage_network
    found = []
    for host in ctx.plan.hosts:
        for nic in host.nics:
            if nic.network == network:
                address = f" ({nic.address.ip})" if nic.address else ""
                found.append(f"host {host.name}{address}")
    for pod in ctx.plan.pods:
        for iface in pod.interfaces:
            if iface.lab_network == network and not iface.cluster and iface.network != key:
                found.append(f"{iface.network} ({short(pod.ref)} {iface.name})")
    return list(dict.fromkeys(found))


def _segment(ctx: Context, ifname: str, pair: tuple[Member, Member], ev: Evidence) -> CheckResult:
    assert ctx.plan.longhorn is not None
    key = ctx.plan.longhorn.storage_network
    (a, va, _), (b, vb, dst) = pair
    storage = next((i.lab_network for i in b.interfaces if i.name == ifname), None) or "?"
    mgmt = ctx.management
    title = f"replication between agents crosses a VLAN of Longhorn's own, not {mgmt}"
    result = ev.streams["longhorn-segment"]
    port = f":{REPLICA_PORT}" if REPLICA_PORT in vb.serves.tcp else " (a sink)"
    if result.how != OVER_TCP:  # no port: ICMP echoes (a cluster's probes)
        port = ""
    line = f"{size_text(STREAM_SIZE)} {result.how} {at(a, va)} -> {at(b, vb)} {dst}{port}"
    if result.error:
        cause = (
            result.error
            if unmeasured(result.error)
            else f"the replication stream did not get through on {ifname}"
        )
        return CheckResult(
            "longhorn-segment", key, title, "fail", (f"{line}: {result.error}",), cause
        )
    names = ctx.lab.bridges
    grown = result.segments
    storage_bridge = ctx.bridge(storage)
    mgmt_bridge = ctx.bridge(mgmt)
    on_storage = grown.get(storage_bridge or "", 0) >= STREAM_SIZE
    on_mgmt = grown.get(mgmt_bridge or "", 0) >= STREAM_SIZE / 4
    shared = _sharing(ctx, storage)
    back = "echoed back" if result.echo else "received"
    echoed = f", {size_text(result.received)} {back}" if result.received else ""
    evidence = [f"{segments_text(ctx, grown)} while {line}{echoed}"]
    if shared:
        evidence.append(f"{storage} also carries {', '.join(shared)}")
    else:
        evidence.append(f"{storage} carries nothing but Longhorn's storage network ({key})")
    if on_storage and not on_mgmt and storage != mgmt and not shared:
        return CheckResult("longhorn-segment", key, title, "pass", tuple(evidence))
    nad = ctx.plan.nad(key)
    rides = f"a {nad.cni_type} on {nad.master}" if nad and nad.master else "its NAD"
    carried = [names.get(br, br) for br, n in grown.items() if n >= STREAM_SIZE] or ["nothing"]
    if storage == mgmt:
        cause = (
            f"replication crossed {', '.join(carried)}, the management network: Longhorn's "
            f"storage network {key} is {rides}, which is on {mgmt}; point its master at "
            "the storage VLAN's NIC"
        )
    elif on_mgmt:
        cause = (
            f"replication crossed {', '.join(carried)}, the management network, although "
            f"{key} ({rides}) is on {storage}: the instance-managers' lhnet1 addresses "
            f"don't share a subnet, so the stream is routed out of eth0; give {key} one "
            "subnet for every node"
        )
    elif not on_storage:
        cause = f"replication crossed {', '.join(carried)}, not {storage}"
    else:
        candidates = _candidates(ctx, storage)
        hint = (
            f"point its master at the storage VLAN's NIC ({', '.join(candidates)})"
            if candidates
            else "give Longhorn a VLAN of its own"
        )
        cause = (
            f"replication crossed {storage}, which is not Longhorn's own: it also carries "
            f"{', '.join(shared)}. Longhorn's storage network {key} is {rides}, on {storage}; "
            f"{hint}"
        )
    return CheckResult("longhorn-segment", key, title, "fail", tuple(evidence), cause)


def _candidates(ctx: Context, storage: str) -> list[str]:
    """NICs every agent has on a network that carries nothing else: storage VLAN material."""
    agents = ctx.plan.agents
    if not agents:
        return []
    found = []
    for nic in agents[0].nics:
        network = nic.network
        if network in (storage, ctx.management) or nic.address is not None:
            continue
        if not all(
            any(c.name == nic.name and c.network == network for c in a.nics) for a in agents
        ):
            continue
        if any(n.network == network for h in ctx.plan.hosts for n in h.nics):
            continue
        if any(
            i.lab_network == network and not i.cluster for p in ctx.plan.pods for i in p.interfaces
        ):
            continue
        found.append(f"{nic.name}, on {network}")
    return found
