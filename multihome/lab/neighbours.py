"""The neighbour budget: a lab never fills the host's ARP and NDP tables.

The kernel has one neighbour table per family for every network namespace together
(``neigh_tables[]`` in net/core/neighbour.c), and its garbage-collection thresholds
(``net.ipv4.neigh.default.gc_thresh1/2/3``, 128/512/1024 by default) exist in the host's
namespace only. An entry the kernel learns (ARP, NDP, dnsmasq's ARP injection) counts
toward ``tbl->gc_entries``: past gc_thresh2 a new one forces a collection that evicts
other namespaces' entries (the host's too); at gc_thresh3 with nothing to evict the kernel
refuses it (``neighbor table overflow!``, ``table_fulls``) and the packet is dropped.
Permanent entries (and externally learned ones) are kept out of that count
(``exempt_from_gc`` in ``neigh_alloc``/``neigh_update_gc_list``, since late 2018; see
bench/results/neighbours_kernel.txt).

So the lab makes the entries it can foresee permanent, in the namespaces that need them:

- every node knows the node-ip of every other node on its segment (host-gw's next hops);
- every pod attachment and the DHCP servers and hosts on its network know each other
  (the pod the server's and host's, the server and host the pod's, from the pod's
  network-status), right after the pod is attached, so dnsmasq's injected entry for a
  lease turns permanent before the next pod's is made.

What stays dynamic (pod to pod, a pod's eth0 gateway, verify's probes) is bounded by what
runs at once; ``estimate`` says how much that is, for preflight.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from multihome.multus import Attachment
from multihome.plan import Plan, PodPlan

from . import netlink
from .names import dhcp_netns, host_netns
from .pods import netns_name

PER_ATTACH = 4
"""Dynamic entries one pod's attachment makes while it runs (DHCP: the server's entry for
the lease and the pod's for the server, per attachment), before they turn permanent."""
PROBES_AT_ONCE = 64
"""How many probes verify runs at once (``verify.probes.MAX_PROBES_AT_ONCE``): 64 x
``PER_PROBE`` stays under half of the default gc_thresh2."""
PER_PROBE = 4
"""Dynamic entries one of verify's probes makes at most: each end's entry for the other,
and for a routed probe the same again on the next hop (a pod's eth0 gateway, the node's
entry for the pod)."""


@dataclass(frozen=True)
class Peer:
    """A machine the lab made on a segment: a DHCP server's or a host's NIC."""

    network: str
    address: str
    mac: str
    netns: str
    dev: str


def _mac_of(nl: netlink.Netlink, netns: str, dev: str) -> str | None:
    for link in nl.ns(netns).links():
        if link.name == dev:
            return str(link.mac) if link.mac else None
    return None


def peers(nl: netlink.Netlink, plan: Plan) -> dict[str, list[Peer]]:
    """Network -> the DHCP server and hosts' NICs on it, with their MACs (call inside the
    sandbox once they are made)."""
    found: dict[str, list[Peer]] = {}
    for net in plan.networks:
        if net.dhcp is None:
            continue
        path = netlink.netns_path(dhcp_netns(net.name))
        mac = _mac_of(nl, path, "eth0")
        if mac:
            found.setdefault(net.name, []).append(
                Peer(net.name, str(net.dhcp.server), mac, path, "eth0")
            )
    for host in plan.hosts:
        path = netlink.netns_path(host_netns(host.name))
        for nic in host.nics:
            if nic.address is None:
                continue
            mac = _mac_of(nl, path, nic.name)
            if mac:
                found.setdefault(nic.network, []).append(
                    Peer(nic.network, str(nic.address.ip), mac, path, nic.name)
                )
    return found


def between_nodes(
    nl: netlink.Netlink,
    plan: Plan,
    netns: Mapping[str, str],
    macs: Mapping[str, Mapping[str, str | None]] | None = None,
) -> int:
    """In every node (``netns``: node name -> its namespace path), a permanent entry for
    the address of every other node on each segment it has an address on; how many.
    ``macs``: node name -> its links' MACs by name, where the caller has them (else read);
    each node's entries go in one batch (``NetNS.apply``)."""
    # (network) -> [(address, mac, node)]
    on: dict[str, list[tuple[str, str, str]]] = {}
    devs: dict[tuple[str, str], str] = {}
    for node in plan.nodes:
        path = netns.get(node.name)
        if path is None:
            continue
        known = macs.get(node.name) if macs is not None else None
        links = known if known is not None else nl.ns(path).link_macs()
        for nic in node.nics:
            dev = nic.bridge or nic.name
            mac = links.get(dev)
            if nic.address is None or not mac:
                continue
            on.setdefault(nic.network, []).append((str(nic.address.ip), str(mac), node.name))
            devs[(node.name, nic.network)] = dev
    made = 0
    for node in plan.nodes:
        entries = [
            (address, mac, devs[(node.name, network)])
            for network, members in on.items()
            if (node.name, network) in devs
            for address, mac, other in members
            if other != node.name
        ]
        if entries:
            inside = nl.ns(netns[node.name])
            inside.apply([inside.change_neighbour(*entry) for entry in entries])
            made += len(entries)
    return made


def _attachments(pod: PodPlan, status: Mapping[str, Any]) -> Iterable[tuple[str, str, str, str]]:
    """(network, ifname, ip, mac) of the pod's attachments on the lab's networks."""
    networks = {i.name: i.lab_network for i in pod.interfaces if not i.cluster and i.lab_network}
    for entry in status.get("network_status") or ():
        ifname = entry.get("interface")
        network = networks.get(ifname)
        mac = entry.get("mac")
        if network is None or not mac:
            continue
        for ip in entry.get("ips") or ():
            yield network, str(ifname), str(ip).split("/")[0], str(mac)


def _same_family(a: str, b: str) -> bool:
    return ipaddress.ip_address(a).version == ipaddress.ip_address(b).version


def node_side(attachments: Sequence[Attachment]) -> dict[str, str]:
    """The pod's interfaces whose plugin made a node-side interface too (Calico's cali
    veth: the result's interface without a sandbox), by pod interface name: what Felix
    knows of a workload from its WorkloadEndpoint."""
    found: dict[str, str] = {}
    for attachment in attachments:
        outside = [i.name for i in attachment.result.interfaces if not i.sandbox]
        if outside:
            found[attachment.delegate.ifname] = outside[0]
    return found


def _cluster_entry(
    nl: netlink.Netlink,
    pod: PodPlan,
    status: Mapping[str, Any],
    node: str,
    node_side: Mapping[str, str] | None,
) -> tuple[str, str, str] | None:
    """The node's entry for the pod's eth0 IPv4 address on its cali veth, as Calico's Felix
    makes it (routetable.go: ``addStaticARPEntry`` for each workload route with a MAC, IPv4
    only); None when the pod has none. The veth is ``node_side``'s (the CNI result's) when
    given, else the one the node's route to the address takes."""
    cluster = {i.name for i in pod.interfaces if i.cluster}
    for entry in status.get("network_status") or ():
        if entry.get("interface") not in cluster or not entry.get("mac"):
            continue
        for ip in entry.get("ips") or ():
            address = str(ip).split("/")[0]
            if ipaddress.ip_address(address).version != 4:
                continue
            if node_side is not None:
                dev = node_side.get(str(entry["interface"]))
                if dev:
                    return address, str(entry["mac"]), dev
                continue
            route = nl.ns(node).route_to(address)
            if route and route.get("dev") and not route.get("via"):
                return address, str(entry["mac"]), str(route["dev"])
    return None


def after_attach(
    nl: netlink.Netlink,
    pod: PodPlan,
    status: Mapping[str, Any],
    known: Mapping[str, list[Peer]],
    node: str | None = None,
    *,
    node_side: Mapping[str, str] | None = None,
) -> int:
    """The pod's attachments and the servers and hosts on their networks made permanent
    neighbours of each other (``status``: what ``pods.attach`` returned), and the node's
    (``node``: its namespace) entry for the pod's eth0 as Calico makes it (on the interface
    ``node_side`` names, see :func:`node_side`); how many."""
    mine: list[tuple[str, str, str]] = []
    theirs: dict[str, list[tuple[str, str, str]]] = {}
    if node is not None:
        cluster = _cluster_entry(nl, pod, status, node, node_side)
        if cluster is not None:
            theirs[node] = [cluster]
    for network, ifname, ip, mac in _attachments(pod, status):
        for peer in known.get(network, ()):
            if not _same_family(ip, peer.address):
                continue
            mine.append((peer.address, peer.mac, ifname))
            theirs.setdefault(peer.netns, []).append((ip, mac, peer.dev))
    if mine:
        nl.ns(str(status["netns"])).set_neighbours(mine)
    for path, entries in theirs.items():
        nl.ns(path).set_neighbours(entries)
    return len(mine) + sum(len(e) for e in theirs.values())


def forget_pod(nl: netlink.Netlink, pod: PodPlan, known: Mapping[str, list[Peer]]) -> None:
    """Before a pod's namespace goes: drop the servers' and hosts' entries for its
    addresses (read from the namespace), so none points at a MAC that is gone."""
    path = netlink.netns_path(netns_name(pod))
    try:
        links = nl.ns(path).links()
    except (netlink.NetlinkError, OSError):
        return
    networks = {i.name: i.lab_network for i in pod.interfaces if not i.cluster and i.lab_network}
    for link in links:
        network = networks.get(link.name)
        if network is None:
            continue
        for cidr in link.addresses:
            ip = cidr.split("/")[0]
            for peer in known.get(network, ()):
                if _same_family(ip, peer.address):
                    nl.ns(peer.netns).delete_neighbours([(ip, peer.dev)])


@dataclass(frozen=True)
class Estimate:
    """The most dynamic ARP entries the lab makes at once, and its permanent ones."""

    dynamic: int
    permanent: int
    why: str


def estimate(plan: Plan, attach_workers: int, probes_at_once: int) -> Estimate:
    """What the lab needs of the host's neighbour table: what stays dynamic (attachments
    in flight, verify's probes at once, each node's entries for the pods it routes to over
    the segment it is the only way to), and the permanent entries it makes."""
    placed = [p for p in plan.pods if p.node is not None and not p.host_network]
    servers = {n.name: 1 for n in plan.networks if n.dhcp is not None}
    for host in plan.hosts:
        for nic in host.nics:
            if nic.address is not None:
                servers[nic.network] = servers.get(nic.network, 0) + 1
    permanent = 0
    for pod in placed:
        for iface in pod.interfaces:
            if not iface.cluster and iface.lab_network:
                permanent += 2 * servers.get(iface.lab_network, 0)
    on: dict[str, int] = {}
    for node in plan.nodes:
        for nic in node.nics:
            if nic.address is not None:
                on[nic.network] = on.get(nic.network, 0) + 1
    permanent += sum(n * (n - 1) for n in on.values())
    attaching = min(attach_workers, len(placed)) * PER_ATTACH
    probing = probes_at_once * PER_PROBE
    return Estimate(
        dynamic=attaching + probing + len(plan.nodes),
        permanent=permanent,
        why=(
            f"{min(attach_workers, len(placed))} attachments at once x {PER_ATTACH}, "
            f"verify's {probes_at_once} probes at once x {PER_PROBE}, "
            f"{len(plan.nodes)} nodes"
        ),
    )


def census(run_dir: str = netlink.NETNS_DIR) -> dict[str, list[netlink.Neighbour]]:
    """Every neighbour entry of every namespace of the lab (call inside its sandbox): name
    -> entries. For tests and benchmarks: what the lab holds of the host's tables."""
    found: dict[str, list[netlink.Neighbour]] = {}
    for name in netlink.list_netns(run_dir):
        try:
            with netlink.NetNS(netlink.netns_path(name, run_dir)) as inside:
                found[name] = inside.neighbours()
        except (netlink.NetlinkError, OSError):
            continue
    return found


def forget_learnt(run_dir: str = netlink.NETNS_DIR) -> int:
    """Flush what the kernel learnt in every namespace of the lab (call inside its sandbox,
    e.g. when verify is done): the lab's permanent entries stay; how many went."""
    gone = 0
    for name in netlink.list_netns(run_dir):
        try:
            with netlink.NetNS(netlink.netns_path(name, run_dir)) as inside:
                gone += inside.flush_neighbours()
        except (netlink.NetlinkError, OSError):
            continue
    return gone
