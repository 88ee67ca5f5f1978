"""Canal as the emulator builds it: each node's ``k8s-pod-network`` conflist and the
host-gw routes between nodes' pod CIDRs.

A pod's eth0 comes from the reference ``ptp`` plugin with ``host-local`` IPAM over the
node's pod CIDR (Canal's calico plugin makes the same shape: a veth with the pod's address,
a host route to it on the node). Between nodes, flannel's host-gw backend is a route per
other node: its pod CIDR via its node-ip, out of the interface ``canal.iface`` names, so a
wrong iface really sends pod traffic the wrong way.
"""

from __future__ import annotations

import json
import os
from typing import Any

from multihome.plan import CLUSTER_NETWORK, NodePlan, Plan

from . import netlink
from .nodes import Node

CONFLIST_NAME = "10-canal.conflist"
CNI_VERSION = "0.3.1"


def conflist(node: NodePlan) -> dict[str, Any]:
    """The node's cluster network (``k8s-pod-network``)."""
    return {
        "cniVersion": CNI_VERSION,
        "name": CLUSTER_NETWORK,
        "plugins": [
            {
                "type": "ptp",
                "mtu": 1450,
                "ipam": {
                    "type": "host-local",
                    "subnet": str(node.pod_cidr),
                    "routes": [{"dst": "0.0.0.0/0"}],
                },
            }
        ],
    }


def write_conflist(node: NodePlan, where: Node) -> dict[str, Any]:
    """Write the conflist into the node's ``/etc/cni/net.d``; returns it."""
    conf = conflist(node)
    path = os.path.join(where.dir("/etc/cni/net.d"), CONFLIST_NAME)
    with open(path, "w") as fh:
        json.dump(conf, fh, indent=2)
        fh.write("\n")
    return conf


def host_gw_routes(plan: Plan, node: NodePlan) -> list[tuple[str, str, str, bool]]:
    """(pod CIDR, via node-ip, dev, onlink) for every other node, as flannel host-gw
    installs them. When ``dev`` has no address in the node-ip's subnet (Canal pinned to the
    wrong NIC) the route is on-link: the traffic really leaves by that NIC, onto its VLAN."""
    iface = plan.cluster.canal_iface or node.management_nic
    nic = next((n for n in node.nics if n.name == iface), None)
    if nic is None:
        return []
    routes = []
    for other in plan.nodes:
        if other.name == node.name:
            continue
        onlink = nic.address is None or other.node_ip not in nic.address.network
        routes.append((str(other.pod_cidr), str(other.node_ip), iface, onlink))
    return routes


def add_routes(nl: netlink.Netlink, plan: Plan, node: NodePlan, where: Node) -> None:
    nl.ns(where.netns).add_routes(host_gw_routes(plan, node))
