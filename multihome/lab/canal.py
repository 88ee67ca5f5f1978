"""Canal as the emulator builds it: each node's ``10-canal.conflist`` (``k8s-pod-network``)
run by the lab's ``calico`` plugin, and flannel's host-gw routes between nodes' pod CIDRs.

The conflist is shaped like the one RKE2's rke2-canal chart installs (calico with host-local
IPAM over ``usePodCidr``, then portmap and bandwidth with their capabilities); ``calico`` in
each node's ``/opt/cni/bin`` is the lab's emulation (``lab/plugins/calico``, in Go), portmap,
bandwidth and host-local are the reference plugins. Calico's plugin finds the node's pod CIDR
in its Node object, which the lab writes where that plugin reads it. Between nodes, flannel's
host-gw backend is a route per other node: its pod CIDR via its node-ip, out of the interface
``canal.iface`` names, so a wrong iface really sends pod traffic the wrong way.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

from multihome.plan import CLUSTER_NETWORK, NodePlan, Plan

from . import launchers, netlink
from .nodes import NODE_DIRS, Node

CONFLIST_NAME = "10-canal.conflist"
CNI_VERSION = "0.3.1"
# rke2-canal's values: calico.vethuMTU (the post's pods show eth0 mtu 1450)
VETH_MTU = 1450
CALICO_KUBECONFIG = "/etc/cni/net.d/calico-kubeconfig"
# where the calico plugin reads the Node object (nodeObject in plugins/calico/main.go)
NODE_OBJECT = "/var/lib/cni/multihome/node.json"
# the lab's calico plugin, built from lab/plugins/calico by `make calico`
PLUGIN_SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plugins", "calico")
PLUGIN = os.path.join(PLUGIN_SOURCE, "build", "calico")
BUILD_HINT = "build it with `make calico` (Go 1.19 or later: apt-get install golang-go)"


def conflist(node: NodePlan) -> dict[str, Any]:
    """The node's cluster network (``k8s-pod-network``), as rke2-canal's install-cni writes
    it (``__KUBERNETES_NODE_NAME__``, ``__CNI_MTU__`` and ``__KUBECONFIG_FILEPATH__`` filled)."""
    use = "usePodCidrIPv6" if node.pod_cidr.version == 6 else "usePodCidr"
    return {
        "name": CLUSTER_NETWORK,
        "cniVersion": CNI_VERSION,
        "plugins": [
            {
                "type": "calico",
                "log_level": "info",
                "datastore_type": "kubernetes",
                "nodename": node.name,
                "mtu": VETH_MTU,
                "ipam": {"type": "host-local", "ranges": [[{"subnet": use}]]},
                "policy": {"type": "k8s"},
                "kubernetes": {"kubeconfig": CALICO_KUBECONFIG},
            },
            {"type": "portmap", "snat": True, "capabilities": {"portMappings": True}},
            {"type": "bandwidth", "capabilities": {"bandwidth": True}},
        ],
    }


def node_object(node: NodePlan) -> dict[str, Any]:
    """The node's Node object, as much of it as Calico's plugin reads (its pod CIDR)."""
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": node.name},
        "spec": {"podCIDR": str(node.pod_cidr), "podCIDRs": [str(node.pod_cidr)]},
    }


def write_conflist(node: NodePlan, where: Node) -> dict[str, Any]:
    """Write the conflist into the node's ``/etc/cni/net.d`` and the Node object where the
    calico plugin reads it; returns the conflist."""
    conf = conflist(node)
    path = os.path.join(where.dir("/etc/cni/net.d"), CONFLIST_NAME)
    with open(path, "w") as fh:
        json.dump(conf, fh, indent=2)
        fh.write("\n")
    node_file = _node_path(where, NODE_OBJECT)
    os.makedirs(os.path.dirname(node_file), exist_ok=True)
    with open(node_file, "w") as fh:
        json.dump(node_object(node), fh)
    return conf


def _node_path(where: Node, path: str) -> str:
    """Where ``path`` (on the node) lies in the node's directory."""
    for mountpoint in NODE_DIRS:
        if path.startswith(mountpoint + "/"):
            return os.path.join(where.dir(mountpoint), path[len(mountpoint) + 1 :])
    raise ValueError(f"{path} is not under a node directory")


def plugin_problem() -> str | None:
    """Why the calico plugin can't be installed as built (missing, or older than its
    sources), or None."""
    try:
        built = os.stat(PLUGIN).st_mtime
    except FileNotFoundError:
        return f"the lab's calico CNI plugin is not built ({PLUGIN}): {BUILD_HINT}"
    sources = [f for f in os.listdir(PLUGIN_SOURCE) if f.endswith((".go", ".mod"))]
    stale = [f for f in sources if os.stat(os.path.join(PLUGIN_SOURCE, f)).st_mtime > built]
    if stale:
        return (
            f"the lab's calico CNI plugin ({PLUGIN}) is older than its source "
            f"{', '.join(sorted(stale))}: re{BUILD_HINT}"
        )
    return None


def write_launcher(bin_dir: str) -> str:
    """Copy the calico plugin into ``bin_dir`` (the sandbox's scratch, which allows exec where
    a state dir may not, and keeps the lab's copy when the plugin is rebuilt); its path."""
    os.makedirs(bin_dir, exist_ok=True)
    path = os.path.join(bin_dir, "calico")
    shutil.copyfile(PLUGIN, path)
    os.chmod(path, 0o755)
    return path


def install_plugin(launcher: str, where: Node) -> None:
    """Put ``calico`` in the node's ``/opt/cni/bin`` (a link to the launcher)."""
    launchers.link_plugin(launcher, where)


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


def route_changes(inside: netlink.NetNS, plan: Plan, node: NodePlan) -> list[netlink.Change]:
    """The node's host-gw routes (``host_gw_routes``) as requests for ``inside.apply``,
    made as flannel makes them (proto boot)."""
    return [
        inside.change_route(dst, via=via, dev=dev, onlink=onlink, proto=netlink.RTPROT_BOOT)
        for dst, via, dev, onlink in host_gw_routes(plan, node)
    ]
