"""What the design's pods stand on: each node's NICs are there, up and on their VLAN's
segment; each DHCP server answers a DISCOVER (an OFFER, no lease taken); the CNI dhcp daemon
answers on each node that runs a pod with dhcp IPAM. When one of these fails, the checks of
what stands on it say so too; these name the cause."""

from __future__ import annotations

import dataclasses
import os

from multihome.lab.daemons import DHCP_SOCKET
from multihome.lab.names import switch_port
from multihome.lab.trunks import TRUNK_BRIDGE
from multihome.plan import NetworkPlan, NodePlan

from ..collect import SWITCH, Evidence, NetnsFacts, Work
from ..probes import Probe
from ..report import CheckResult
from .base import Context, Judge, unmeasured

DHCP_DEADLINE = 2.0


def derive(ctx: Context, work: Work) -> Judge:
    nodes = [n for n in ctx.plan.nodes if n.name in ctx.lab.nodes]
    for node in nodes:
        work.facts.add(ctx.lab.nodes[node.name].netns)
    if nodes:
        work.facts.add(SWITCH)
    servers = [(net, _dhcp_client(ctx, net)) for net in ctx.plan.networks if net.dhcp]
    for net, client in servers:
        if client is not None:
            netns, dev = client
            server = str(net.dhcp.server) if net.dhcp else ""
            work.probe(
                f"dhcp:{net.name}", Probe(netns, server, "dhcp", deadline=DHCP_DEADLINE, dev=dev)
            )
    daemons = [n for n in _dhcp_nodes(ctx) if n in ctx.lab.node_dirs]
    for name in daemons:
        work.sockets.add(_daemon_socket(ctx, name))

    def judge(ev: Evidence) -> list[CheckResult]:
        results = [_nics(ctx, node, ev) for node in nodes]
        results += [_dhcp(ctx, net, client, ev) for net, client in servers]
        results += [_daemon(ctx, name, ev) for name in daemons]
        return results

    return judge


# -- NICs ------------------------------------------------------------------------------------


def _nics(ctx: Context, node: NodePlan, ev: Evidence) -> CheckResult:
    title = f"{node.name}'s NICs are up, each on its VLAN's segment"
    facts = ev.facts.get(ctx.lab.nodes[node.name].netns) or NetnsFacts(error="not read")
    switch = ev.facts.get(SWITCH) or NetnsFacts(error="not read")
    if facts.error:
        return CheckResult("nics", node.name, title, "fail", (f"cannot read: {facts.error}",))
    shown, problems = [], []
    for nic in node.nics:
        iface = facts.ifaces.get(nic.name)
        bridge = ctx.bridge(nic.network)
        if iface is None:
            problems.append(
                f"{node.name} has no {nic.name} (the design's NIC on {nic.network}): pods "
                f"whose NADs use it as master fail with 'Link not found'; the node's "
                f"traffic for {nic.network} has nowhere to go"
            )
            shown.append(f"{nic.name} missing")
            continue
        port = switch.ifaces.get(switch_port("n", node.index, nic.name))
        trunk = switch.ifaces.get(switch_port("n", node.index, nic.parent or nic.name))
        if trunk is not None and trunk.master == TRUNK_BRIDGE:
            # real 802.1q (lab/trunks.py): the trunk NIC's port carries the VLAN to its
            # segment through the VLAN-aware bridge's access port for it
            port = dataclasses.replace(trunk, master=bridge)
        on = port.master if port is not None else None
        state = "up" if iface.up else "DOWN"
        if switch.error:  # a cluster's probes read the node's NICs, not the switch's ports
            shown.append(f"{nic.name} {state}")
        else:
            shown.append(
                f"{nic.name} {state} on {ctx.lab.bridges.get(on or '', on or 'no segment')}"
            )
        if not iface.up:
            problems.append(f"{nic.name} on {node.name} is down: nothing crosses it")
        if not switch.error and on != bridge:
            problems.append(
                f"{nic.name} on {node.name} is not plugged into {nic.network}'s segment "
                f"({'on ' + on if on else 'its switch port is gone'})"
            )
    evidence: tuple[str, ...] = (", ".join(shown),)
    if switch.error and unmeasured(switch.error):
        evidence += (switch.error,)
    if problems:
        return CheckResult("nics", node.name, title, "fail", evidence, "; ".join(problems))
    return CheckResult("nics", node.name, title, "pass", evidence)


# -- DHCP servers ----------------------------------------------------------------------------


def _dhcp_client(ctx: Context, net: NetworkPlan) -> tuple[str, str] | None:
    """Where a DISCOVER for ``net`` leaves from: a node's NIC on it (its node bridge when the
    NIC is enslaved to one: a port hands what it receives to its bridge), else a host's."""
    for node in ctx.plan.nodes:
        view = ctx.lab.nodes.get(node.name)
        nic = next((n for n in node.nics if n.network == net.name), None)
        if view is not None and nic is not None:
            return view.netns, nic.bridge or nic.name
    for host in ctx.lab.hosts.values():
        found = host.on(net.name)
        if found is not None:
            return host.netns, found.name
    return None


def _dhcp(
    ctx: Context, net: NetworkPlan, client: tuple[str, str] | None, ev: Evidence
) -> CheckResult:
    assert net.dhcp is not None
    server = str(net.dhcp.server)
    title = f"the DHCP server on {net.name} ({server}) answers a DISCOVER"
    if client is None:
        return CheckResult(
            "dhcp-server", net.name, title, "skip", cause=f"no machine has a NIC on {net.name}"
        )
    result = ev.probes[f"dhcp:{net.name}"]
    who = _client_name(ctx, client)
    line = f"DISCOVER out of {who}: {result.detail}"
    offer = result.offer
    if unmeasured(result.detail):
        return CheckResult("dhcp-server", net.name, title, "fail", (line,), result.detail)
    if offer is None:
        return CheckResult(
            "dhcp-server",
            net.name,
            title,
            "fail",
            (line,),
            f"nothing answers DHCP on {net.name}: its server (dnsmasq at {server}) is not "
            f"running or not on the segment, so pods with dhcp IPAM on {net.name} wait until "
            "the CNI dhcp daemon gives up and stay ContainerCreating",
        )
    if offer.server != server:
        return CheckResult(
            "dhcp-server",
            net.name,
            title,
            "fail",
            (line,),
            f"another DHCP server ({offer.server}) answers on {net.name}, not the design's "
            f"{server}: pods may get its addresses and options",
        )
    return CheckResult("dhcp-server", net.name, title, "pass", (line,))


def _client_name(ctx: Context, client: tuple[str, str]) -> str:
    netns, dev = client
    machine = next(
        (m.name for m in [*ctx.lab.nodes.values(), *ctx.lab.hosts.values()] if m.netns == netns),
        netns,
    )
    return f"{machine}:{dev}"


# -- dhcp daemons ----------------------------------------------------------------------------


def _dhcp_nodes(ctx: Context) -> list[str]:
    """Nodes running a pod with dhcp IPAM: the CNI dhcp daemon must serve them."""
    found = {
        view.node
        for pod, view in ctx.pods()
        if view is not None and any("dhcp" in i.ipam_types for i in pod.interfaces)
    }
    return [n.name for n in ctx.plan.nodes if n.name in found]


def _daemon_socket(ctx: Context, node: str) -> str:
    return os.path.join(ctx.lab.node_dirs[node], "run-cni", os.path.basename(DHCP_SOCKET))


def _daemon(ctx: Context, node: str, ev: Evidence) -> CheckResult:
    title = f"the CNI dhcp daemon answers on {node} ({DHCP_SOCKET})"
    error = ev.sockets.get(_daemon_socket(ctx, node), "not tried")
    if error is None:
        return CheckResult("dhcp-daemon", node, title, "pass", (f"{DHCP_SOCKET}: accepted",))
    return CheckResult(
        "dhcp-daemon",
        node,
        title,
        "fail",
        (f"{DHCP_SOCKET}: {error}",),
        f"the CNI dhcp daemon is not running on {node}: pods there with dhcp IPAM fail with "
        f"'dial unix {DHCP_SOCKET}: connect: ...' (on RKE2: rke2-multus' dhcp DaemonSet)",
    )
