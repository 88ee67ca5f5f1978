"""The ``vlan`` CNI plugin's one limit that designs trip on: the kernel keeps one vlan device
per VLAN id on a link (net/8021q: ``vlan_check_real_dev`` answers EEXIST), wherever that
device lives, so the plugin's ``failed to create vlan: file exists`` (containernetworking/
plugins#243) fails an attachment when its node already has that VLAN on the master: an
802.1q sub-interface of the design (``ens224.50`` when the NAD tags 50 over ``ens224``), or
another pod's interface of the same VLAN and master on that node. The plugin makes one link
per pod: only one pod per node and VLAN can use it (the bridge plugin with ``vlan``, or a
macvlan over the sub-interface, serve many)."""

from __future__ import annotations

from collections.abc import Iterator

from multihome.check.context import Context, NADInfo
from multihome.check.findings import Finding, nodes_phrase
from multihome.check.nads import vlan_id
from multihome.check.registry import check
from multihome.check.whereabouts import _instances
from multihome.plan import PlanError
from multihome.plan.longhorn import longhorn_plan


def _sub_interfaces(ctx: Context, nad: NADInfo, vid: int) -> list[tuple[str, str]]:
    """(node, sub-interface) where the master NIC already has VLAN ``vid`` as one."""
    found = []
    for node in ctx.nodes_running(nad.key):
        for nic in node.nics:
            if nic.name == nad.master:
                found += [(node.name, v.name) for v in nic.vlans if v.id == vid]
    return found


def _attachments(ctx: Context, keys: set[str]) -> tuple[int, set[str], list[str]]:
    """Attachments to the NADs ``keys`` (pods times their replicas, Longhorn's instance-
    managers), the nodes they may land on, and who makes them."""
    count, nodes, who = 0, set[str](), list[str]()
    for pod in ctx.pods:
        uses = sum(1 for s in pod.selections if f"{s.namespace}/{s.name}" in keys)
        if uses:
            count += _instances(pod) * uses
            nodes.update(n.name for n in pod.eligible)
            who.append(pod.ref)
    try:
        longhorn = longhorn_plan(ctx.lf)
    except PlanError:
        longhorn = None
    if longhorn is not None and longhorn.storage_network in keys:
        count += len(ctx.workload_nodes) * len(longhorn.instance_manager_types)
        nodes.update(n.name for n in ctx.workload_nodes)
        who.append(f"Longhorn's instance-managers ({', '.join(longhorn.instance_manager_types)})")
    return count, nodes, who


@check
def vlan_plugin_ids(ctx: Context) -> Iterator[Finding]:
    groups: dict[tuple[str, int], list[NADInfo]] = {}
    for nad in ctx.nads.values():
        vid = vlan_id(nad)
        if nad.conf is not None and vid is not None and nad.master is not None:
            groups.setdefault((nad.master, vid), []).append(nad)
    for (master, vid), nads in groups.items():
        for nad in nads:
            taken = _sub_interfaces(ctx, nad, vid)
            if taken:
                subs = sorted({sub for _, sub in taken})
                yield ctx.error(
                    "nad-vlan-id-taken",
                    nad.locate_config(),
                    f"NAD {nad.key} tags VLAN {vid} over {master}, which already has VLAN "
                    f"{vid} as {', '.join(subs)} on {nodes_phrase(sorted({n for n, _ in taken}))}: "
                    "the kernel keeps one vlan device per VLAN id on a link, so every attachment "
                    "there fails with 'failed to create vlan: file exists' "
                    "(containernetworking/plugins#243)",
                    f"use the sub-interface: a macvlan NAD with master {subs[0]} (any number "
                    f"of pods), or drop {subs[0]} from the node if only the vlan plugin uses "
                    f"VLAN {vid}",
                )
        keys = {n.key for n in nads}
        count, nodes, who = _attachments(ctx, keys)
        if nodes and count > len(nodes):
            names = ", ".join(sorted(keys))
            yield ctx.error(
                "nad-vlan-one-per-node",
                nads[0].locate_config(),
                f"NAD {names} (vlan plugin, VLAN {vid} over {master}): {count} attachments "
                f"({', '.join(who)}) on {len(nodes)} node{'s' if len(nodes) != 1 else ''}, so "
                f"some node gets two; the plugin makes a vlan device of VLAN {vid} on {master} "
                "per pod and the kernel keeps one per VLAN id on a link: the second attachment "
                "fails with 'failed to create vlan: file exists' (containernetworking/plugins#243)",
                f"at most one pod per node on VLAN {vid}: for more, a macvlan NAD over a "
                f"sub-interface {master}.{vid} (vlans: on the NIC), or the bridge plugin with "
                f'"vlan": {vid} over a bridge holding that sub-interface',
            )
