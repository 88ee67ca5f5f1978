"""Realize a plan inside the lab's sandbox: segments, nodes, Canal, hosts, DHCP servers,
dhcp daemons, pods. Runs in a process that entered the sandbox (``Sandbox.call``); records
every namespace, link and process in the lab's journal before making it, so a failure
half-way is rolled back by ``LabState.teardown``.

Naming inside the sandbox's own network namespace (the "switch"): a bridge per network
(``NetworkPlan.bridge``); the switch end of a machine's NIC is ``n<index>-<nic>`` for
nodes, ``h<index>-<nic>`` for hosts, ``d<index>`` for DHCP servers (cut to 15 characters).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from typing import Any

from multihome.multus import Attachment
from multihome.plan import NICPlan, NodePlan, Plan, PodPlan

from . import (
    canal,
    daemons,
    forkpool,
    ipam,
    neighbours,
    netlink,
    nodes,
    ns,
    pods,
    safefs,
    sandbox,
    trunks,
)
from .names import dhcp_netns, fit, host_netns, switch_port
from .placement import dhcp_nodes as dhcp_nodes  # re-exported: callers use realize.*
from .placement import placed_pods as placed_pods
from .state import LabState
from .steps import Progress, Step

Recorder = Callable[..., None]


def _wire(
    nl: netlink.Netlink,
    plan: Plan,
    state: LabState,
    netns: str,
    port: str,
    nic: NICPlan | None,
    *,
    ifname: str,
    network: str,
    address: str | None,
) -> None:
    """A veth from the network's bridge to ``ifname`` in ``netns``, up, with ``address``."""
    net = next(n for n in plan.networks if n.name == network)
    mtu = nic.mtu if nic is not None else net.mtu
    state.record("link", port, bridge=net.bridge, peer=ifname, netns=netns)
    nl.here().add_veth(port, ifname, peer_ns=nl.ns(netns), master=net.bridge, mtu=mtu)
    target = nl.ns(netns)
    target.set_link(ifname, up=True)
    if address:
        target.add_address(ifname, address)


def _wire_machine(
    nl: netlink.Netlink,
    plan: Plan,
    state: LabState,
    netns: str,
    kind: str,
    index: int,
    nics: tuple[NICPlan, ...],
    trunking: trunks.Trunking,
    *,
    bridged_address: bool,
) -> None:
    """A machine's NICs: access ports on their network's segment; trunk NICs as 802.1q
    trunks or emulated (see ``trunks``). ``bridged_address``: a bridged NIC gets its
    address too (hosts have no node bridges)."""
    made: set[str] = set()
    if trunking.mode == trunks.REAL:
        made = trunks.wire_real(
            nl, plan, state.record, netns, lambda n: switch_port(kind, index, n), nics
        )
    else:
        for name, mtu in trunks.bare_parents(nics):  # plugged into nothing
            port = switch_port(kind, index, name)
            state.record("link", port, peer=name, netns=netns)
            nl.here().add_veth(port, name, peer_ns=nl.ns(netns), mtu=mtu)
            nl.ns(netns).set_link(name, up=True)
    for nic in nics:
        if nic.name in made:
            continue
        keep = bridged_address or not nic.bridge
        _wire(
            nl, plan, state, netns, switch_port(kind, index, nic.name), nic,
            ifname=nic.name, network=nic.network,
            address=str(nic.address) if nic.address and keep else None,
        )  # fmt: skip


def _node_bridges(inside: netlink.NetNS, node: NodePlan) -> None:
    """The node's own Linux bridges (``bridge:`` on a NIC), as netplan makes them: the NIC
    enslaved, the bridge up, the NIC's address (if any) on the bridge."""
    for nic in node.nics:
        if nic.bridge is None:
            continue
        if not inside.has_link(nic.bridge):
            inside.add_bridge(nic.bridge, mtu=nic.mtu)
        inside.set_link(nic.name, master=nic.bridge)
        if nic.address:
            inside.add_address(nic.bridge, str(nic.address))


def _node_config(plan: Plan, node: NodePlan) -> str:
    lines = [f"node-ip: {node.node_ip}"]
    if node.join_address:
        lines.append(f"server: {node.join_address}")
    lines.append("cni:")
    lines.extend(f"- {c}" for c in plan.cluster.cni)
    if node.taints:
        lines.append("node-taint:")
        lines.extend(f'- "{t}"' for t in node.taints)
    return "\n".join(lines) + "\n"


def _layer2_only(switch: netlink.NetNS) -> None:
    """The switch namespace forwards frames and is no host: its bridges and ports get no
    IPv6 (a switch port has no link-local address, sends no MLD report, router solicitation
    or duplicate-address probe, and is no extra receiver of every multicast the pods send),
    and bridged frames skip netfilter where br_netfilter is loaded (its per-namespace
    ``bridge-nf-call-*`` default to 1; a switch runs no iptables). Set before the first
    port exists, in the sandbox's own namespace: the host's copies are untouched."""
    keys = [f"net.ipv6.conf.{key}.disable_ipv6" for key in ("all", "default")]
    keys += [f"net.bridge.bridge-nf-call-{t}" for t in ("arptables", "iptables", "ip6tables")]
    for key in keys:  # absent where the kernel has no IPv6 or br_netfilter is not loaded
        if os.path.exists("/proc/sys/" + key.replace(".", "/")):
            switch.set_sysctl(key, 0 if "bridge-nf" in key else 1)


class RealizeError(RuntimeError):
    """Building the lab failed; the message names the step and the cause (it pickles, so
    it crosses ``Sandbox.call``)."""


def realize(
    plan: Plan, state: LabState, sb: sandbox.Sandbox, progress: Progress, keep_going: bool = False
) -> dict[str, Any]:
    """Build ``plan``; returns the pods' status (network-status and processes). Dies with
    the process that called it (``up`` killed with SIGKILL stops building at once, and
    releases the lab's lock, which this child shares)."""
    ns.die_with_parent()
    try:
        return _realize(plan, state, sb, progress, keep_going)
    except Exception as exc:
        notes = "".join(f"\n  {n}" for n in getattr(exc, "__notes__", ()))
        raise RealizeError(f"{exc}{notes}") from None


def _realize(
    plan: Plan, state: LabState, sb: sandbox.Sandbox, progress: Progress, keep_going: bool
) -> dict[str, Any]:
    lab_dir = str(state.dir)
    record = state.record
    with netlink.Netlink() as nl:
        switch = nl.here()
        progress(Step("segments"))
        _layer2_only(switch)
        for net in plan.networks:
            state.record("link", net.bridge, network=net.name)
            switch.add_bridge(net.bridge, mtu=net.mtu)
        trunking = trunks.mode(plan)
        if trunking.mode == trunks.REAL:
            trunks.build_switch(nl, plan, record)

        progress(Step("nodes"))
        made: dict[str, nodes.Node] = {}
        calico = canal.write_launcher(os.path.join(sb.scratch, "cni-bin"))
        store = ipam.store_dir(sb.scratch)
        wb = ipam.write_launcher(
            os.path.join(sb.scratch, "cni-bin"), store, [n.name for n in plan.nodes]
        )
        for node in plan.nodes:
            where = nodes.create_node(
                node.name,
                root=str(state.node_dir(node.name)),
                ns_dir=sb.ns_dir,
                record=record,
                cpu=sb.cpu,
            )
            made[node.name] = where
            inside = nl.ns(where.netns)
            inside.set_link("lo", up=True)
            _wire_machine(
                nl, plan, state, where.netns, "n", node.index, node.nics, trunking,
                bridged_address=False,
            )  # fmt: skip
            _node_bridges(inside, node)
            inside.set_sysctl("net.ipv4.ip_forward", 1)
            if node.default_gateway is not None:
                inside.add_route("default", via=str(node.default_gateway), dev=node.management_nic)
            safefs.write_atomic(
                os.path.join(where.dir("/etc/rancher/rke2"), "config.yaml"),
                _node_config(plan, node).encode(), base=where.root, mode=0o644,
            )  # fmt: skip
            canal.write_conflist(node, where)
            canal.install_plugin(calico, where)
            ipam.install_plugin(wb, where)
        for node in plan.nodes:
            canal.add_routes(nl, plan, node, made[node.name])
        neighbours.between_nodes(nl, plan, {n: m.netns for n, m in made.items()})

        progress(Step("hosts"))
        # daemons start side by side; each is waited for where something needs it: DHCP
        # before the pods, the hosts' servers before up returns
        servers: list[daemons.Starting] = []
        for index, host in enumerate(plan.hosts):
            name = host_netns(host.name)
            record("netns", name, path=netlink.netns_path(name), host=host.name)
            path = netlink.create_netns(name)
            nl.ns(path).set_link("lo", up=True)
            _wire_machine(
                nl, plan, state, path, "h", index, host.nics, trunking, bridged_address=True
            )
            gateway = (
                next((n.gateway for n in plan.networks if n.name == host.nics[0].network), None)
                if host.nics
                else None
            )
            if gateway is not None:
                nl.ns(path).add_route("default", via=str(gateway), dev=host.nics[0].name)
            serves = daemons.host_serves(host)
            if serves:
                servers.append(
                    daemons.launch_server(fit(f"serve-{host.name}"), serves, path, lab_dir, record)
                )

        progress(Step("dhcp servers"))
        dhcp: list[daemons.Starting] = []
        for index, net in enumerate(plan.networks):
            if net.dhcp is None:
                continue
            name = dhcp_netns(net.name)
            record("netns", name, path=netlink.netns_path(name), network=net.name)
            path = netlink.create_netns(name)
            nl.ns(path).set_link("lo", up=True)
            address = f"{net.dhcp.server}/{net.subnet.prefixlen}"
            _wire(
                nl, plan, state, path, f"d{index}", None,
                ifname="eth0", network=net.name, address=address,
            )  # fmt: skip
            dhcp.append(daemons.launch_dnsmasq(net, path, lab_dir, record))

        placed = placed_pods(plan)
        needing = dhcp_nodes(placed)
        if needing:
            progress(Step("dhcp daemons"))
        for node_name in needing:
            dhcp.append(daemons.launch_dhcp_daemon(made[node_name], lab_dir, record))
        daemons.wait_all(dhcp)

        statuses = attach_pods(plan, placed, made, lab_dir, record, progress, keep_going)
        daemons.wait_all(servers)
    return {
        "pods": statuses,
        "pending": [p.ref for p in plan.pods if p.node is None],
        "trunks": trunking.to_dict(),
    }


def attach_pods(
    plan: Plan,
    todo: list[PodPlan],
    made: dict[str, nodes.Node],
    lab_dir: str,
    record: Recorder,
    progress: Progress,
    keep_going: bool,
) -> list[dict[str, Any]]:
    """Attach ``todo`` concurrently (forkpool); their statuses in order. A failure raises
    ``RealizeError`` naming pod, node, network and cause, or with ``keep_going`` gives the
    pod a ContainerCreating status."""
    progress(Step("pods", done=0, total=len(todo)))
    attached = 0
    with netlink.Netlink() as nl:
        known = neighbours.peers(nl, plan)
    # each attaching process's netlink sockets, reused pod after pod (a node's is opened once
    # per worker, not once per pod); a pod's own are closed with its attachment
    sockets: dict[int, netlink.Netlink] = {}

    def report(_: int, status: dict[str, Any]) -> None:
        nonlocal attached
        attached += 1
        item = f"{status['namespace']}/{status['name']}"
        progress(Step("pods", done=attached, total=len(todo), item=item))

    def attach(pod: PodPlan) -> dict[str, Any]:
        assert pod.node is not None
        conf = canal.conflist(plan.node(pod.node))
        own = sockets.get(os.getpid())
        if own is None:
            own = sockets[os.getpid()] = netlink.Netlink()  # a worker's own
        node_side: dict[str, str] = {}

        def keep(attachments: Sequence[Attachment]) -> None:
            node_side.update(neighbours.node_side(attachments))

        try:
            status = pods.attach(plan, pod, made[pod.node], conf, lab_dir, record, keep)
            try:
                neighbours.after_attach(
                    own, pod, status, known, made[pod.node].netns, node_side=node_side
                )
            finally:
                own.forget(str(status["netns"]))
            return status
        except Exception as exc:
            cause = pods.likely_cause(plan, pod, made[pod.node])
            message = f"{exc} (likely cause: {cause})" if cause else str(exc)
            if not keep_going:
                raise RealizeError(f"pod {pod.ref} on node {pod.node}: {message}") from exc
            return pods.failed(pod, made[pod.node], message)

    if todo and todo[0].node is not None:
        first = todo[0].node
        on = [made[n] for n in dict.fromkeys(p.node for p in todo if p.node in made)]
        pods.ask_versions(plan, todo, on, canal.conflist(plan.node(first)))
    try:
        return forkpool.fork_map(attach, todo, forkpool.attach_workers(), on_result=report)
    finally:
        for own in sockets.values():  # this process's, when it attached pods itself
            own.close()


def host_facts() -> dict[str, str]:
    """What ``get nodes -o wide`` shows for OS-IMAGE and KERNEL-VERSION."""
    image = platform.system()
    try:
        with open("/etc/os-release") as fh:
            for line in fh:
                if line.startswith("PRETTY_NAME="):
                    image = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {"os_image": image, "kernel": platform.release()}
