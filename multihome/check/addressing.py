"""Checks of the wires: names, NICs, networks, node-ips, static addresses, subnets, DHCP."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from ipaddress import IPv4Network, IPv6Network

from multihome.check.context import Context
from multihome.check.findings import Finding
from multihome.check.nads import vlan_id
from multihome.check.names import dns1123_label_problem, dns1123_subdomain_problem, ifname_problem
from multihome.check.registry import check
from multihome.spec import NIC, IPAddr, Network

Subnet = IPv4Network | IPv6Network


@check
def lab_and_network_names(ctx: Context) -> Iterator[Finding]:
    problem = dns1123_label_problem(ctx.lab.metadata.name)
    if problem:
        yield ctx.error(
            "lab-name-invalid",
            ctx.at("metadata", "name"),
            f"lab name {ctx.lab.metadata.name!r} {problem}",
            "use a DNS-1123 label such as 'multi-homed'",
        )
    seen: set[str] = set()
    for i, net in enumerate(ctx.spec.networks):
        problem = dns1123_label_problem(net.name)
        if problem:
            yield ctx.error(
                "network-name-invalid",
                ctx.at("spec", "networks", i, "name"),
                f"network name {net.name!r} {problem}",
                "use a DNS-1123 label such as 'vlan40'",
            )
        if net.name in seen:
            yield ctx.error(
                "network-duplicate",
                ctx.at("spec", "networks", i, "name"),
                f"network {net.name!r} is defined twice",
                "give each network its own name",
            )
        seen.add(net.name)


@check
def machine_names(ctx: Context) -> Iterator[Finding]:
    seen: dict[str, str] = {}
    machines = [("nodes", i, n.name) for i, n in enumerate(ctx.spec.nodes)]
    machines += [("hosts", i, h.name) for i, h in enumerate(ctx.spec.hosts)]
    for section, i, name in machines:
        where = ctx.at("spec", section, i, "name")
        problem = dns1123_subdomain_problem(name)
        if problem:
            yield ctx.error(
                f"{section[:-1]}-name-invalid",
                where,
                f"{section[:-1]} name {name!r} {problem}",
                "use a DNS-1123 name such as 'multi-homed-wrk-1'",
            )
        if name in seen:
            yield ctx.error(
                "machine-duplicate",
                where,
                f"{name!r} is already the name of a {seen[name]}",
                "give every node and host its own name",
            )
        seen.setdefault(name, section[:-1])
    if not ctx.spec.nodes:
        yield ctx.error("no-nodes", ctx.at("spec", "nodes"), "the lab has no nodes", "add a server")
    elif not any(n.role == "server" for n in ctx.spec.nodes):
        yield ctx.error(
            "no-server",
            ctx.at("spec", "nodes"),
            "the lab has no server node: an RKE2 cluster needs at least one",
            "give one node role: server",
        )


@check
def nics(ctx: Context) -> Iterator[Finding]:
    for section, i, name, machine_nics in ctx.machines():
        if not machine_nics:
            yield ctx.error(
                "nic-none",
                ctx.at("spec", section, i),
                f"{name} has no NICs",
                "add at least one NIC on the management network",
            )
        seen: set[str] = set()
        for j, nic in enumerate(machine_nics):
            where = ctx.at("spec", section, i, "nics", j, "name")
            problem = ifname_problem(nic.name)
            if problem:
                yield ctx.error(
                    "nic-name-invalid",
                    where,
                    f"{name}: NIC name {nic.name!r} {problem}",
                    "use a Linux interface name such as 'ens192' (at most 15 characters)",
                )
            if nic.name in seen:
                yield ctx.error(
                    "nic-duplicate",
                    where,
                    f"{name} has two NICs named {nic.name!r}",
                    "give each NIC of a machine its own name",
                )
            seen.add(nic.name)
            if nic.network is not None and nic.network not in ctx.networks:
                known = ", ".join(ctx.networks) or "none defined"
                yield ctx.error(
                    "nic-network-unknown",
                    ctx.at("spec", section, i, "nics", j, "network"),
                    f"{name}: NIC {nic.name} is on network {nic.network!r}, which is not defined",
                    f"use one of the networks in spec.networks ({known})",
                )
            if nic.bridge is not None:
                problem = ifname_problem(nic.bridge)
                if problem:
                    yield ctx.error(
                        "nic-name-invalid",
                        ctx.at("spec", section, i, "nics", j, "bridge"),
                        f"{name}: bridge name {nic.bridge!r} {problem}",
                        "use a Linux interface name such as 'br-storage'",
                    )


@check
def node_ips(ctx: Context) -> Iterator[Finding]:
    mgmt = ctx.management_network
    owners: dict[str, str] = {}
    for i, node in enumerate(ctx.spec.nodes):
        ip = node.effective_node_ip
        where = ctx.at("spec", "nodes", i, "nodeIP") if node.node_ip else ctx.at("spec", "nodes", i)
        if ip is None:
            yield ctx.error(
                "node-ip-missing",
                where,
                f"node {node.name} has no node-ip: none of its NICs has an address",
                "give the NIC on the management network a static address",
            )
            continue
        nic = next((n for n in node.nics if n.address == ip), None)
        sub = next((v for n in node.nics for v in n.vlans if v.address == ip), None)
        if nic is None and sub is not None:  # on a tagged VLAN: the sub-interface's network
            nic = NIC(name=sub.name, network=ctx.vlan_network(sub.id), address=sub.address)
        if nic is None:
            yield ctx.error(
                "node-ip-not-on-nic",
                where,
                f"node {node.name}: node-ip {ip} is not the address of any of its NICs",
                "set nodeIP to the address of its NIC on the management network",
            )
        elif mgmt is not None and nic.network != mgmt:
            yield ctx.error(
                "node-ip-network",
                where,
                f"node {node.name}: node-ip {ip} is on {nic.network}, but the cluster's nodes "
                f"talk on {mgmt} (the first server's node-ip network)",
                f"give {node.name} its node-ip on {mgmt}, as every node's node-ip must share one "
                "network for node <-> node traffic",
            )
        if str(ip) in owners:
            yield ctx.error(
                "node-ip-duplicate",
                where,
                f"node {node.name}: node-ip {ip} is also {owners[str(ip)]}'s",
                "give every node its own node-ip",
            )
        owners.setdefault(str(ip), node.name)


def in_range(addr: IPAddr, start: IPAddr, end: IPAddr) -> bool:
    """Whether ``start <= addr <= end``; addresses of another IP version are never inside."""
    if not addr.version == start.version == end.version:
        return False
    return start <= addr <= end  # type: ignore[operator]


def _subnet_edges(net: Network) -> tuple[str, ...]:
    subnet = net.subnet
    if isinstance(subnet, IPv4Network) and subnet.prefixlen < 31:
        return (str(subnet.network_address), str(subnet.broadcast_address))
    return ()


@check
def static_addresses(ctx: Context) -> Iterator[Finding]:
    owners: dict[str, str] = {}
    for section, i, name, machine_nics in ctx.machines():
        for j, nic in enumerate(machine_nics):
            if nic.address is None or nic.network not in ctx.networks:
                continue
            net = ctx.networks[nic.network]
            where = ctx.at("spec", section, i, "nics", j, "address")
            label = f"{name}/{nic.name}"
            if nic.address not in net.subnet:
                yield ctx.error(
                    "address-outside-subnet",
                    where,
                    f"{label}: {nic.address} is not inside {net.name}'s subnet {net.subnet}",
                    f"pick an address in {net.subnet}, or put the NIC on the network that has it",
                )
                continue
            if str(nic.address) in _subnet_edges(net):
                yield ctx.error(
                    "address-reserved",
                    where,
                    f"{label}: {nic.address} is the network or broadcast address of {net.subnet}",
                    "pick a host address",
                )
            dhcp = net.dhcp
            if dhcp is not None and in_range(nic.address, dhcp.start, dhcp.end):
                yield ctx.error(
                    "address-in-dhcp-range",
                    where,
                    f"{label}: {nic.address} is inside {net.name}'s DHCP range {dhcp.range}: "
                    "the server could lease it to a pod too",
                    "move the static address out of the range, or shrink the range",
                )
            if section == "nodes" and net.gateway is not None and nic.address == net.gateway:
                yield ctx.warning(
                    "address-is-gateway",
                    where,
                    f"{label}: {nic.address} is {net.name}'s gateway",
                    "unless this machine is the router, give it another address",
                )
            key = f"{net.name}:{nic.address}"
            if key in owners:
                yield ctx.error(
                    "address-duplicate",
                    where,
                    f"{label}: {nic.address} is already {owners[key]}'s on {net.name}",
                    "give every NIC its own address",
                )
            owners.setdefault(key, label)


@check
def subnets(ctx: Context) -> Iterator[Finding]:
    cluster = ctx.spec.cluster
    named: list[tuple[str, Subnet, tuple[str | int, ...]]] = [
        (f"network {n.name}", n.subnet, ("spec", "networks", i, "subnet"))
        for i, n in enumerate(ctx.spec.networks)
    ]
    named.append(("clusterCIDR", cluster.cluster_cidr, ("spec", "cluster", "clusterCIDR")))
    named.append(("serviceCIDR", cluster.service_cidr, ("spec", "cluster", "serviceCIDR")))
    for a in range(len(named)):
        for b in range(a + 1, len(named)):
            name_a, net_a, _ = named[a]
            name_b, net_b, path_b = named[b]
            if net_a.version == net_b.version and net_a.overlaps(net_b):
                yield ctx.error(
                    "subnet-overlap",
                    ctx.at(*path_b),
                    f"{name_b} ({net_b}) overlaps {name_a} ({net_a})",
                    "give each network and the cluster's pod and service ranges their own subnet",
                )


@check
def gateways_and_dhcp(ctx: Context) -> Iterator[Finding]:
    for i, net in enumerate(ctx.spec.networks):
        if net.gateway is not None and net.gateway not in net.subnet:
            yield ctx.error(
                "gateway-outside-subnet",
                ctx.at("spec", "networks", i, "gateway"),
                f"network {net.name}: gateway {net.gateway} is not inside {net.subnet}",
                f"pick a gateway in {net.subnet}",
            )
        dhcp = net.dhcp
        if dhcp is None:
            continue
        where = ctx.at("spec", "networks", i, "dhcp", "range")
        if dhcp.start not in net.subnet or dhcp.end not in net.subnet:
            yield ctx.error(
                "dhcp-range-outside-subnet",
                where,
                f"network {net.name}: DHCP range {dhcp.range} is not inside {net.subnet}",
                f"pick a range inside {net.subnet}",
            )
        elif dhcp.start.version != dhcp.end.version or dhcp.start > dhcp.end:  # type: ignore[operator]
            yield ctx.error(
                "dhcp-range-reversed",
                where,
                f"network {net.name}: DHCP range {dhcp.range} ends before it starts",
                "write the range low-high",
            )
        elif set(_subnet_edges(net)) & {str(dhcp.start), str(dhcp.end)}:
            yield ctx.error(
                "dhcp-range-reserved",
                where,
                f"network {net.name}: DHCP range {dhcp.range} includes the network or broadcast "
                "address",
                "start after the network address and end before the broadcast address",
            )
        if dhcp.router and net.gateway is None:
            yield ctx.error(
                "dhcp-router-without-gateway",
                ctx.at("spec", "networks", i, "dhcp", "router"),
                f"network {net.name}: the DHCP server should offer a router, but the network has "
                "no gateway",
                "set the network's gateway, or router: false",
            )
        if dhcp.server is not None:
            inside = in_range(dhcp.server, dhcp.start, dhcp.end)
            if dhcp.server not in net.subnet or inside:
                yield ctx.error(
                    "dhcp-server-address",
                    ctx.at("spec", "networks", i, "dhcp", "server"),
                    f"network {net.name}: the DHCP server's address {dhcp.server} must be inside "
                    f"{net.subnet} and outside the range {dhcp.range}",
                    "pick a free static address for the server",
                )


def _unused(ctx: Context) -> dict[str, int]:
    used: dict[str, int] = defaultdict(int)
    for _, _, _, machine_nics in ctx.machines():
        for nic in machine_nics:
            if nic.network is not None:
                used[nic.network] += 1
            for sub in nic.vlans:  # a trunk's tagged VLANs (check/trunks.py)
                net = ctx.vlan_network(sub.id)
                if net is not None:
                    used[net] += 1
    for nad in ctx.nads.values():  # a vlan plugin's pods are on the VLAN of its vlanId
        vid = vlan_id(nad)
        net = ctx.vlan_network(vid) if vid is not None else None
        if net is not None and ctx.users_of(nad.key):
            used[net] += 1
    return used


@check
def unused_networks(ctx: Context) -> Iterator[Finding]:
    used = _unused(ctx)
    for i, net in enumerate(ctx.spec.networks):
        if not used.get(net.name):
            yield ctx.warning(
                "network-unused",
                ctx.at("spec", "networks", i, "name"),
                f"network {net.name} has no NIC on it (nor the pods of a vlan plugin NAD)",
                "plug a node or host NIC into it, or remove it",
            )
