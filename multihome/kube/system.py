"""The RKE2 charts' own kube-system DaemonSets the lab serves, and their pods per node:
rke2-canal's (calico-node + kube-flannel), rke2-multus's and the CNI dhcp daemon's, as the
charts of the lab's RKE2 version make them (read from rancher/rke2-charts' templates and
values; ``plan.rke2_releases`` says which rke2-multus chart a version ships, ``plan.charts``
whose dhcp DaemonSet runs, the chart's ``rke2-multus-dhcp`` or multihome's own).

Each pod is the DaemonSet's on one node (the dhcp daemon's only where the lab runs one: on
the nodes with a dhcp pod): ``hostNetwork`` (its IP the node's), owned by the
DaemonSet (``ownerReferences``, controller), named ``<daemonset>-<5 chars>`` stably per node.
Ready comes from the lab's real state: the node's sandbox runs and, for the dhcp daemon, its
socket answers (``LabSource`` probes it; a killed daemon is a pod not Ready); for Canal, the
NIC it is pinned to has an address (as the Node's flannel/Calico annotations). The lab runs
Canal's and Multus' work itself (its CNI chain); otherwise their pods are Ready with the node.

The lab is a cluster built as ``render`` says, so it also serves the HelmChartConfigs render
writes for the servers' manifests directory (rke2-canal's and rke2-multus' values), with the
CRD helm-controller ships. The lab makes all these objects from its lab file and runs what they
describe itself: the API takes a server-side apply that changes nothing of one (``write``) and
refuses any other write."""

from __future__ import annotations

import hashlib
import re
from typing import TYPE_CHECKING, Any

# the planner (pydantic models, ~0.3 s of CPU to import) is imported on first use: the lab's
# API server starts while up attaches the pods and needs it only to answer a request
if TYPE_CHECKING:
    from multihome.plan import Plan

    from .objects import LabView

NAMESPACE = "kube-system"
CANAL = "rke2-canal"
MULTUS = "rke2-multus"

# rke2-canal v3.25.0-build2023020902 (rancher/rke2-charts cb1ca921, March 2023: the chart of
# the RKE2 releases of spring 2023, the seed's v1.25.9+rke2r1); newer lines keep its shape
CALICO_IMAGE = "rancher/hardened-calico:v3.25.0-build20230209"
FLANNEL_IMAGE = "rancher/hardened-flannel:v0.21.3-build20230308"
# rke2-multus v3.9.3-build2023010902's values (cniplugins.image); later charts' own tags differ
CNI_PLUGINS_IMAGE = "rancher/hardened-cni-plugins:v1.0.1-build20221011"


_validated: list[tuple[dict[str, Any], Plan]] = []  # the last plan dict and its model


def _plan(view: LabView) -> Plan:
    """The view's plan as a model, validated once per plan dict (``LabSource`` hands the
    same dict to every reading until plan.json changes; at 1000 pods a validation is tens
    of ms of every rebuild after a status change)."""
    if _validated and _validated[0][0] is view.plan:
        return _validated[0][1]
    from multihome.plan import Plan

    found = Plan.model_validate(view.plan)
    _validated[:] = [(view.plan, found)]
    return found


def import_planner() -> None:
    """Import what the functions here import on first use."""
    import multihome.lab.placement
    import multihome.plan.charts
    import multihome.render.yamltext  # noqa: F401


def _suffix(daemonset: str, node: str) -> str:
    """The 5 characters of a DaemonSet pod's generated name, stable per node."""
    digest = hashlib.sha256(f"{daemonset}/{node}".encode()).digest()
    alphabet = "bcdfghjklmnpqrstvwxz2456789"  # the API server's generateName alphabet
    return "".join(alphabet[b % len(alphabet)] for b in digest[:5])


def _multus_image(chart: str) -> str:
    # the chart's image tag is its version without the two-digit package number
    match = re.fullmatch(r"(v[\d.]+-build\d{8})\d{2}", chart)
    return f"rancher/hardened-multus-cni:{match.group(1) if match else chart}"


def _tolerations() -> list[dict[str, Any]]:
    return [
        {"operator": "Exists", "effect": "NoSchedule"},
        {"operator": "Exists", "effect": "NoExecute"},
    ]


def _canal() -> dict[str, Any]:
    labels = {"k8s-app": "canal"}
    return {
        "metadata": {"name": CANAL, "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "hostNetwork": True,
                    "tolerations": [
                        {"effect": "NoSchedule", "operator": "Exists"},
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                        {"effect": "NoExecute", "operator": "Exists"},
                    ],
                    "serviceAccountName": "canal",
                    "terminationGracePeriodSeconds": 0,
                    "priorityClassName": "system-node-critical",
                    "initContainers": [
                        {"name": "install-cni", "image": CALICO_IMAGE,
                         "command": ["/opt/cni/bin/install"]},
                        {"name": "flexvol-driver", "image": CALICO_IMAGE,
                         "command": ["/usr/local/bin/flexvol.sh", "-s",
                                     "/usr/local/bin/flexvol", "-i", "flexvoldriver"]},
                    ],
                    "containers": [
                        {"name": "calico-node", "image": CALICO_IMAGE,
                         "command": ["start_runit"], "securityContext": {"privileged": True}},
                        {"name": "kube-flannel", "image": FLANNEL_IMAGE,
                         "command": ["/opt/bin/flanneld", "--ip-masq", "--kube-subnet-mgr"],
                         "securityContext": {"privileged": True}},
                    ],
                },
            },
        },
    }  # fmt: skip


def _multus(chart: str) -> dict[str, Any]:
    from multihome.plan.rke2_releases import DHCP_VALUE_SINCE, chart_key

    labels = {"tier": "node", "app": MULTUS}
    # the DaemonSet lost its "-ds" suffix in rke2-charts 069e98c4 (chart v4.0.2-build2023081104)
    name = MULTUS if chart_key(chart) >= chart_key(DHCP_VALUE_SINCE) else f"{MULTUS}-ds"
    return {
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app": MULTUS}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-node-critical",
                    "hostNetwork": True,
                    "nodeSelector": {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
                    "tolerations": _tolerations(),
                    "serviceAccountName": "multus",
                    "initContainers": [
                        {"name": "cni-plugins", "image": CNI_PLUGINS_IMAGE,
                         "securityContext": {"privileged": True},
                         "env": [{"name": "SKIP_CNI_BINARIES", "value": "flannel"}]},
                    ],
                    "containers": [
                        {"name": f"kube-{MULTUS}", "image": _multus_image(chart),
                         "imagePullPolicy": "IfNotPresent", "command": ["/entrypoint.sh"],
                         "args": ["--multus-conf-file=auto", "--cni-version=0.3.1"],
                         "securityContext": {"privileged": True}},
                    ],
                },
            },
        },
    }  # fmt: skip


def _chart_dhcp() -> dict[str, Any]:
    from multihome.plan import charts

    labels = {"tier": "node", "app": MULTUS}
    image = charts.IMAGE
    sock = {"name": "socketpath", "mountPath": "/host/run/cni"}
    return {
        "metadata": {"name": charts.CHART_DAEMONSET, "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"app": MULTUS}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "hostNetwork": True,
                    "tolerations": _tolerations(),
                    "nodeSelector": {"kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64"},
                    "initContainers": [
                        {"name": f"kube-{MULTUS}-dhcp-cleanup", "image": image,
                         "command": ["rm", "-f", "/host/run/cni/dhcp.sock"],
                         "securityContext": {"privileged": True}, "volumeMounts": [sock]},
                    ],
                    "containers": [
                        {"name": f"kube-{MULTUS}-dhcp", "image": image,
                         "command": [f"{charts.CNI_BIN}/dhcp", "daemon"],
                         "securityContext": {"privileged": True}},
                    ],
                },
            },
        },
    }  # fmt: skip


def daemonsets_of(view: LabView) -> list[tuple[dict[str, Any], list[str], str]]:
    """(DaemonSet body without status, the nodes it runs a pod on, what it is) of the lab."""
    from multihome.lab.placement import dhcp_nodes, placed_pods
    from multihome.plan import charts
    from multihome.plan.rke2_releases import multus_chart

    plan = _plan(view)
    nodes = [n.name for n in plan.nodes]
    found: list[tuple[dict[str, Any], list[str], str]] = []
    if "canal" in plan.cluster.cni:
        found.append((_canal(), nodes, "canal"))
    chart = multus_chart(plan.cluster.version)
    if "multus" in plan.cluster.cni and chart is not None:
        found.append((_multus(chart.chart), nodes, "multus"))
    daemon = charts.dhcp_daemon(plan)
    if daemon is not None:
        body = _chart_dhcp() if daemon.source == "chart" else charts.daemonset(daemon)
        body = {"metadata": body["metadata"], "spec": body["spec"]}
        # the lab starts the daemon only where a pod with dhcp IPAM runs: the DaemonSet's pods
        # are served on those of its nodes (a node it does not cover has none: verify fails)
        started = set(dhcp_nodes(placed_pods(plan)))
        on = [n.name for n in daemon.running_on(plan) if n.name in started]
        found.append((body, on, "dhcp"))
    return found


def ready_on(view: LabView, what: str, node: str) -> tuple[bool, str]:
    """Whether the pod of ``what`` on ``node`` is Ready, and if not why (a waiting reason)."""
    if not view.status.get("running", True):
        return False, "the lab's sandbox is not running"
    if what == "canal":
        # as the lab's Node objects: flannel and Calico start only where the NIC Canal is
        # pinned to has an address (calico-node's readiness, flanneld's interface lookup)
        iface = view.plan["cluster"].get("canal_iface")
        status = next((n for n in view.status["nodes"] if n["name"] == node), None)
        nic = next((c for c in (status or {}).get("nics", []) if c["name"] == iface), None)
        if iface and not (nic and nic.get("address")):
            return False, f"kube-flannel: no IPv4 address on {iface}, the interface it is pinned to"
    if what == "dhcp":
        error = (view.status.get("dhcp_sockets") or {}).get(node, "not probed")
        if error is not None:
            from multihome.plan import charts

            return False, f"{charts.SOCKET_DIR}/dhcp.sock: {error}"
    return True, ""


def helmchartconfigs_of(view: LabView) -> list[dict[str, Any]]:
    """The HelmChartConfigs of the lab's design (bodies without server metadata): the values
    render gives rke2-canal and rke2-multus, where it writes them."""
    from multihome.plan import charts
    from multihome.render.yamltext import dump  # the text render writes: applying it is a no-op

    plan = _plan(view)
    found = []
    for chart, values in ((CANAL, charts.canal_values(plan)), (MULTUS, charts.multus_values(plan))):
        if values is None:
            continue
        found.append(
            {
                "apiVersion": "helm.cattle.io/v1",
                "kind": "HelmChartConfig",
                "metadata": {"name": chart, "namespace": NAMESPACE},
                "spec": {"valuesContent": dump(values)},
            }
        )
    return found
