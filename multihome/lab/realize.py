"""Realize a plan inside the lab's sandbox: segments, nodes (``nodeup``: Canal, their
dhcp daemons), hosts, DHCP servers, pods. Runs in a process that entered the sandbox
(``Sandbox.call``); records every namespace, link and process in the lab's journal before
making it (its forked workers too), so a failure half-way is rolled back by
``LabState.teardown``.

Inside the sandbox's own network namespace (the "switch"): a bridge per network
(``NetworkPlan.bridge``), and the switch ends of the machines' NICs (``wiring``).
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable, Sequence
from typing import Any

from multihome.cni import spawn
from multihome.multus import Attachment
from multihome.plan import Plan, PodPlan

from . import (
    canal,
    daemons,
    forkpool,
    ipam,
    neighbours,
    netlink,
    nodes,
    nodeup,
    ns,
    pods,
    sandbox,
    spawner,
    trunks,
    wiring,
)
from .names import dhcp_netns, fit, host_netns
from .placement import dhcp_nodes as dhcp_nodes  # re-exported: callers use realize.*
from .placement import placed_pods as placed_pods
from .state import LabState
from .steps import Progress, Step

Recorder = Callable[..., None]


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
    spawn.seal()  # no descriptor of up's reaches a plugin or daemon; no /proc listing per plugin
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
    with netlink.Netlink() as nl, spawner.active():
        switch = nl.here()
        progress(Step("segments"))
        _layer2_only(switch)
        for net in plan.networks:
            state.record("link", net.bridge, network=net.name)
            switch.add_bridge(net.bridge, mtu=net.mtu)
        trunking = trunks.mode(plan)
        if trunking.mode == trunks.REAL:
            trunks.build_switch(nl, plan, record)

        placed = placed_pods(plan)
        needing = dhcp_nodes(placed)
        scratch_bin = os.path.join(sb.scratch, "cni-bin")
        ctx = nodeup.Context(
            plan=plan, record=record, lab_dir=lab_dir, ns_dir=sb.ns_dir, scratch=sb.scratch,
            cpu=sb.cpu,
            calico=canal.write_launcher(scratch_bin),
            whereabouts=ipam.write_launcher(
                scratch_bin, ipam.store_dir(sb.scratch), [n.name for n in plan.nodes]
            ),
            trunking=trunking, dhcp=set(needing),
        )  # fmt: skip
        roots = {n.name: str(state.node_dir(n.name)) for n in plan.nodes}
        built = nodeup.make_nodes(ctx, nl, roots, progress)
        made = {name: b.node for name, b in built.items()}

        progress(Step("hosts"))
        # daemons start side by side; each is waited for where something needs it: DHCP
        # before the pods, the hosts' servers before up returns
        servers: list[daemons.Starting] = []
        for index, host in enumerate(plan.hosts):
            name = host_netns(host.name)
            record("netns", name, path=netlink.netns_path(name), host=host.name)
            path = netlink.create_netns(name)
            nl.ns(path).set_link("lo", up=True)
            wiring.wire_machine(
                nl, plan, record, path, "h", index, host.nics, trunking, bridged_address=True
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
            wiring.wire(
                nl, plan, record, path, f"d{index}", ifname="eth0", network=net.name,
                address=address,
            )  # fmt: skip
            dhcp.append(daemons.launch_dnsmasq(net, path, lab_dir, record))

        if needing:  # started with their nodes: here they are waited for
            progress(Step("dhcp daemons"))
        for node_name in needing:
            daemon = built[node_name].dhcp_daemon
            assert daemon is not None
            dhcp.append(daemons.dhcp_daemon_starting(made[node_name], daemon, lab_dir))
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
        pods.prepare_attach(plan, todo, on, canal.conflist(plan.node(first)))
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
