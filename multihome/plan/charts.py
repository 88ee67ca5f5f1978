"""What the cluster runs for the design's networks, built from the plan: the rke2-canal and
rke2-multus charts' values (their HelmChartConfigs), and who starts the CNI dhcp daemon that
``ipam: dhcp`` needs on every node running such a pod: the rke2-multus chart
(``manifests.dhcpDaemonSet``) where the cluster version's chart has the value, else a
DaemonSet of multihome's own, modelled on the later chart's template
(``templates/dhcp-daemonSet.yaml`` of rke2-multus v4.3.008): the same binary, socket and
network-namespace mounts, on the nodes that may run DHCP pods. ``render`` writes them as
files; the lab's API serves the same objects."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from multihome.plan.model import NodePlan, Plan
from multihome.plan.rke2_releases import MultusChart, multus_chart, releases_since

NAME = "multihome-cni-dhcp"
NAMESPACE = "kube-system"
CHART_DAEMONSET = "rke2-multus-dhcp"
"""The chart's DaemonSet: ``{{ .Release.Name }}-dhcp``."""
IMAGE = "rancher/mirrored-library-busybox:1.36.1"
"""The image the chart runs its daemon in (``dhcpDaemonSet.image``): a shell and ``rm``; the
daemon itself is the node's ``/opt/cni/bin/dhcp``, which rke2-multus's cni-plugins init
container installs on every node."""
SOCKET_DIR = "/run/cni"
NETNS_DIR = "/run/netns"
"""Where containerd bind-mounts pod network namespaces (it passes ``/var/run/netns/cni-...``)."""
CNI_BIN = "/opt/cni/bin"


@dataclass(frozen=True)
class DHCPDaemon:
    """How the cluster gets its dhcp daemon, and where it must run."""

    source: Literal["chart", "own"]
    chart: MultusChart | None
    nads: tuple[str, ...]
    """The NADs whose plugins use dhcp IPAM."""
    nodes: tuple[NodePlan, ...]
    """The nodes that may run a pod on one of them, in plan order."""
    reason: str
    """Why this source, one sentence for comments and the README."""

    @property
    def daemonset(self) -> str:
        return CHART_DAEMONSET if self.source == "chart" else NAME

    def running_on(self, plan: Plan) -> tuple[NodePlan, ...]:
        """The nodes the DaemonSet puts a pod on: ours on ``nodes``; the chart's on every
        node, or on the untainted ones where its DaemonSet tolerates no taint."""
        if self.source == "own":
            return self.nodes
        if self.chart is not None and self.chart.dhcp_tolerates_taints:
            return plan.nodes
        return tuple(n for n in plan.nodes if not hard_taints(n))


def hard_taints(node: NodePlan) -> list[str]:
    """The node's NoSchedule / NoExecute taints (``key=value:effect``)."""
    return [t for t in node.taints if not t.endswith(":PreferNoSchedule")]


def dhcp_nads(plan: Plan) -> tuple[str, ...]:
    return tuple(nad.key for nad in plan.nads if "dhcp" in nad.ipam_types)


def dhcp_nodes(plan: Plan) -> tuple[NodePlan, ...]:
    """Nodes that may run a DHCP pod: every node that runs ordinary pods (any of them may be
    scheduled a pod on a dhcp NAD), and every node the plan puts such a pod on (pods that
    tolerate a server's taint, nodeName)."""
    placed = {
        pod.node
        for pod in plan.pods
        if pod.node is not None and any("dhcp" in i.ipam_types for i in pod.interfaces)
    }
    return tuple(n for n in plan.nodes if n.runs_workloads or n.name in placed)


def dhcp_daemon(plan: Plan) -> DHCPDaemon | None:
    """Who starts the dhcp daemon; None when no NAD uses dhcp IPAM, no node may run a pod
    on one, or Multus does not run."""
    nads = dhcp_nads(plan)
    if "multus" not in plan.cluster.cni or not nads:
        return None
    nodes = dhcp_nodes(plan)
    if not nodes:
        return None  # no node may run a pod on those NADs: no daemon is needed
    chart = multus_chart(plan.cluster.version)
    version = plan.cluster.version or "(no version: the newest)"
    if chart is None:
        reason = f"RKE2 {version} ships no rke2-multus chart"
        return DHCPDaemon("own", None, nads, nodes, reason)
    tainted = [n.name for n in nodes if hard_taints(n)]
    if not chart.dhcp_value:
        reason = (
            f"RKE2 {version} ships {chart.describe()}, which has no manifests.dhcpDaemonSet "
            f"(RKE2 has it from {releases_since('dhcp_value')} on)"
        )
        return DHCPDaemon("own", chart, nads, nodes, reason)
    if tainted and not chart.dhcp_tolerates_taints:
        reason = (
            f"RKE2 {version} ships {chart.describe()}, whose dhcp DaemonSet tolerates no "
            f"taint and so skips {', '.join(tainted)} (tolerations from RKE2 "
            f"{releases_since('dhcp_tolerates_taints')} on)"
        )
        return DHCPDaemon("own", chart, nads, nodes, reason)
    reason = f"RKE2 {version} ships {chart.describe()}, which starts it with that value"
    return DHCPDaemon("chart", chart, nads, nodes, reason)


def _tolerations() -> list[dict[str, Any]]:
    """Every NoSchedule / NoExecute taint, as the chart (v4.0.204 on) and Multus's own
    DaemonSet tolerate them: where the daemon runs is the affinity's to say."""
    return [
        {"operator": "Exists", "effect": "NoSchedule"},
        {"operator": "Exists", "effect": "NoExecute"},
    ]


def daemonset(daemon: DHCPDaemon) -> dict[str, Any]:
    """multihome's dhcp DaemonSet: the node's CNI ``dhcp daemon``, host network, privileged
    (it enters pods' network namespaces), its socket in the node's /run/cni, the node's
    netns directory with HostToContainer propagation (namespaces made after it started are
    seen inside), a stale socket removed first (the daemon refuses to start over one)."""
    labels = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/managed-by": "multihome"}
    hostnames = [n.name for n in daemon.nodes]
    affinity = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {
                                "key": "kubernetes.io/hostname",
                                "operator": "In",
                                "values": hostnames,
                            }
                        ]
                    }
                ]
            }
        }
    }
    socket = {"name": "socket-dir", "mountPath": SOCKET_DIR}
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": NAME, "namespace": NAMESPACE, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app.kubernetes.io/name": NAME}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "hostNetwork": True,
                    "priorityClassName": "system-node-critical",
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "affinity": affinity,
                    "tolerations": _tolerations(),
                    "initContainers": [
                        {
                            "name": "remove-stale-socket",
                            "image": IMAGE,
                            "command": ["rm", "-f", f"{SOCKET_DIR}/dhcp.sock"],
                            "volumeMounts": [socket],
                        }
                    ],
                    "containers": [
                        {
                            "name": "dhcp-daemon",
                            "image": IMAGE,
                            "command": [f"{CNI_BIN}/dhcp", "daemon"],
                            "securityContext": {"privileged": True},
                            "volumeMounts": [
                                {"name": "cni-bin", "mountPath": CNI_BIN, "readOnly": True},
                                socket,
                                {
                                    "name": "netns-dir",
                                    "mountPath": "/var/run/netns",
                                    "mountPropagation": "HostToContainer",
                                },
                            ],
                        }
                    ],
                    "volumes": [
                        {"name": "cni-bin", "hostPath": {"path": CNI_BIN, "type": "Directory"}},
                        {
                            "name": "socket-dir",
                            "hostPath": {"path": SOCKET_DIR, "type": "DirectoryOrCreate"},
                        },
                        {
                            "name": "netns-dir",
                            "hostPath": {"path": NETNS_DIR, "type": "DirectoryOrCreate"},
                        },
                    ],
                },
            },
        },
    }


def canal_values(plan: Plan) -> dict[str, Any] | None:
    """rke2-canal chart values: Calico and Flannel pinned to one interface (the seed's
    "Add-On Config"), Flannel's backend; None when the cluster does not run Canal."""
    cluster = plan.cluster
    if "canal" not in cluster.cni:
        return None
    values: dict[str, Any] = {}
    flannel: dict[str, Any] = {"backend": cluster.canal_backend}
    if cluster.canal_iface is not None:
        values["calico"] = {"ipAutoDetectionMethod": f"interface={cluster.canal_iface}"}
        flannel["iface"] = cluster.canal_iface
    values["flannel"] = flannel
    return values


def multus_values(plan: Plan) -> dict[str, Any] | None:
    """rke2-multus chart values: the chart's CNI dhcp daemon when a NAD uses DHCP IPAM and
    the version's chart can start it (``dhcp_daemon``), whereabouts when a NAD uses it;
    None when there is nothing to set."""
    if "multus" not in plan.cluster.cni:
        return None
    ipams = {ipam for nad in plan.nads for ipam in nad.ipam_types}
    values: dict[str, Any] = {}
    daemon = dhcp_daemon(plan)
    if daemon is not None and daemon.source == "chart":
        values["manifests"] = {"dhcpDaemonSet": True}
    if "whereabouts" in ipams:
        values["rke2-whereabouts"] = {"enabled": True}
    return values or None
