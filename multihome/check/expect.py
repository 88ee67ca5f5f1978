"""Checks of the lab's ``expect`` entries: what they name exists, and pitfalls of macvlan."""

from __future__ import annotations

from collections.abc import Iterator

from multihome.check.context import Context, PodInfo
from multihome.check.findings import Finding
from multihome.check.nads import nad_network
from multihome.check.pods import ifnames
from multihome.check.registry import check
from multihome.plan.expect import is_ip, split_endpoint
from multihome.spec import Expect


def _pod(ctx: Context, ref: str) -> PodInfo | None:
    ns, sep, name = ref.partition("/")
    if not sep:
        return None
    return next(
        (p for p in ctx.pods if p.template.namespace == ns and p.template.name == name), None
    )


def _known(ctx: Context, ref: str) -> bool:
    machines = {n.name for n in ctx.spec.nodes} | {h.name for h in ctx.spec.hosts}
    return ref in machines or _pod(ctx, ref) is not None


@check
def expect_references(ctx: Context) -> Iterator[Finding]:
    for i, exp in enumerate(ctx.spec.expect):
        if not _known(ctx, exp.from_):
            yield ctx.error(
                "expect-unknown-source",
                ctx.at("spec", "expect", i, "from"),
                f"expect #{i + 1}: {exp.from_!r} is not a pod (namespace/name), node or host",
                "name a pod as namespace/name, or a node or host of the lab",
            )
        target, port = split_endpoint(exp.to)
        if not is_ip(target) and not _known(ctx, target):
            yield ctx.error(
                "expect-unknown-target",
                ctx.at("spec", "expect", i, "to"),
                f"expect #{i + 1}: {exp.to!r} is not an IP, IP:port, pod, node or host",
                "write an address such as 172.16.60.31:80, or name a pod, node or host",
            )
        if port is not None and not 1 <= port <= 65535:
            yield ctx.error(
                "expect-port-range",
                ctx.at("spec", "expect", i, "to"),
                f"expect #{i + 1}: port {port} in {exp.to!r} is not a TCP/UDP port",
                "use a port from 1 to 65535",
            )
        if exp.proto in ("tcp", "udp") and port is None:
            yield ctx.error(
                "expect-port-missing",
                ctx.at("spec", "expect", i, "to"),
                f"expect #{i + 1}: a {exp.proto} probe needs a port",
                f"write the target as {target}:PORT",
            )
        if exp.via is not None and not _via_known(ctx, exp.via):
            yield ctx.error(
                "expect-unknown-via",
                ctx.at("spec", "expect", i, "via"),
                f"expect #{i + 1}: via {exp.via!r} is neither a network nor an interface name",
                "name a network of the lab, or an interface such as net1 or ens224",
            )


def _via_known(ctx: Context, via: str) -> bool:
    if via in ctx.networks or via == "eth0":
        return True
    for node in ctx.spec.nodes:
        if any(nic.name == via for nic in node.nics):
            return True
    if any(nic.name == via for h in ctx.spec.hosts for nic in h.nics):
        return True
    return any(via in ifnames(p) for p in ctx.pods)


@check
def macvlan_parent(ctx: Context) -> Iterator[Finding]:
    nodes = {n.name: n for n in ctx.spec.nodes}
    for i, exp in enumerate(ctx.spec.expect):
        node = nodes.get(exp.from_)
        pod = _pod(ctx, split_endpoint(exp.to)[0])
        if node is None or pod is None or node not in pod.eligible:
            continue
        for sel, ifname in zip(pod.selections, ifnames(pod), strict=True):
            nad = ctx.nads.get(f"{sel.namespace}/{sel.name}")
            if nad is None or nad.main_type != "macvlan" or nad.master is None:
                continue
            if not ctx.has_interface(node, nad.master):
                continue
            if _via_matches(exp, ifname, nad.master, nad_network(ctx, nad, node)):
                yield ctx.warning(
                    "expect-macvlan-parent",
                    ctx.at("spec", "expect", i),
                    f"expect #{i + 1}: {node.name} reaching {exp.to} over {nad.key} goes through "
                    f"its own {nad.master}, the macvlan parent: a macvlan child can't talk to "
                    "its parent (multus-cni#691), so this fails whenever the pod runs there",
                    "probe from another node or a host, or pin the pod to another node",
                )
                break


def _via_matches(exp: Expect, ifname: str, master: str, network: str | None) -> bool:
    return exp.via is None or exp.via in (ifname, master, network)
