"""RKE2's own files: each node's ``/etc/rancher/rke2/config.yaml``, the HelmChartConfigs for
the rke2-canal and rke2-multus charts and, where the version's chart can't start it, the dhcp
daemon's DaemonSet (``/var/lib/rancher/rke2/server/manifests/``, applied by RKE2 itself)."""

from __future__ import annotations

from typing import Any

from multihome.plan import NodePlan, Plan
from multihome.plan.charts import (
    NAME,
    NAMESPACE,
    canal_values,
    daemonset,
    dhcp_daemon,
    dhcp_nads,
    multus_values,
)
from multihome.render import dhcp
from multihome.render.token import Token
from multihome.render.tree import RenderedFile, safe_component
from multihome.render.yamltext import comment, documents, dump, wrap

CONFIG_PATH = "etc/rancher/rke2/config.yaml"
SERVER_MANIFESTS = "server/var/lib/rancher/rke2/server/manifests"
NODE_TOKEN = "/var/lib/rancher/rke2/server/node-token"
DEFAULT_MASK = 24


def node_dir(node: NodePlan) -> str:
    """``nodes/<name>``, the node's name checked to be a plain path component."""
    return f"nodes/{safe_component(node.name)}"


def _multus_what(plan: Plan, values: dict[str, Any]) -> list[str]:
    """What the rke2-multus values do, one line each (the file's comment)."""
    lines = []
    if "manifests" in values:
        nads = ", ".join(dhcp_nads(plan))
        lines.append(f"Multus: the chart's CNI dhcp daemon, for the dhcp IPAM of {nads}.")
    if "rke2-whereabouts" in values:
        users = ", ".join(nad.key for nad in plan.nads if "whereabouts" in nad.ipam_types)
        lines.append(f"Multus: the chart's whereabouts, for the whereabouts IPAM of {users}.")
    daemon = dhcp_daemon(plan)
    if daemon is not None and daemon.source == "own":
        lines.append(f"The dhcp daemon is not the chart's: see {NAME}.yaml beside this file.")
    return wrap(*lines)


REMOVAL = f"remove this file from every server, then: kubectl -n {NAMESPACE} delete ds {NAME}"


def dhcp_daemonset_file(plan: Plan) -> RenderedFile | None:
    """multihome's dhcp DaemonSet for the servers' manifests directory, when the chart can't
    start the daemon."""
    daemon = dhcp_daemon(plan)
    if daemon is None or daemon.source != "own":
        return None
    where = [
        "Copy to /var/lib/rancher/rke2/server/manifests/ on every server (RKE2 applies it).",
    ]
    text = documents([daemonset(daemon)], [*where, *dhcp.header(daemon, plan, REMOVAL)])
    return RenderedFile(f"{SERVER_MANIFESTS}/{NAME}.yaml", text, "manifests")


def _helm_chart_config(chart: str, values: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChartConfig",
        "metadata": {"name": chart, "namespace": "kube-system"},
        "spec": {"valuesContent": dump(values)},
    }


def helm_chart_configs(plan: Plan) -> list[RenderedFile]:
    """The HelmChartConfig files every server gets before its first start."""
    files = []
    header = [
        f"multihome: lab {plan.name}. Copy to /var/lib/rancher/rke2/server/manifests/",
        "on every server before RKE2 starts there for the first time.",
    ]
    canal, multus = canal_values(plan), multus_values(plan)
    charts: list[tuple[str, dict[str, Any] | None, list[str]]] = [
        (
            "rke2-canal",
            canal,
            ["Canal (Calico + Flannel): the NIC and backend of pod traffic between nodes."],
        ),
        ("rke2-multus", multus, _multus_what(plan, multus or {})),
    ]
    for chart, values, what in charts:
        if values is None:
            continue
        text = documents([_helm_chart_config(chart, values)], [*header, *what])
        files.append(RenderedFile(f"{SERVER_MANIFESTS}/{chart}-config.yaml", text, "manifests"))
    own = dhcp_daemonset_file(plan)
    if own is not None:
        files.append(own)
    return files


def _token_lines(plan: Plan, node: NodePlan, token: Token | None) -> tuple[dict[str, Any], str]:
    """The token key (when there is a token) or the placeholder comment."""
    if token is not None:
        return {"token": token.value}, ""
    if node.bootstrap:
        return {}, comment(
            [
                "No token given: this server makes the cluster token on its first start, in",
                f"{NODE_TOKEN}. Every other node needs it in its config.yaml.",
            ]
        )
    return {}, comment(
        [
            "TOKEN NOT SET. Before RKE2 starts on this node, add the line",
            "  token: <the cluster token>",
            f"with the content of {NODE_TOKEN} on {plan.cluster.bootstrap_server}",
            "(or render again with MULTIHOME_RKE2_TOKEN set, or with --token-file FILE).",
        ]
    )


def node_config(plan: Plan, node: NodePlan, token: Token | None) -> RenderedFile:
    """``nodes/<name>/etc/rancher/rke2/config.yaml``: how the node joins, its node-ip, labels
    and taints; on servers the CNI list and the cluster's ranges."""
    cluster = plan.cluster
    config: dict[str, Any] = {}
    if node.join_address is not None:
        config["server"] = node.join_address
    token_key, token_comment = _token_lines(plan, node, token)
    config.update(token_key)
    config["node-ip"] = str(node.node_ip)
    if node.lab_labels:
        config["node-label"] = [f"{k}={v}" for k, v in node.lab_labels]
    if node.taints:
        config["node-taint"] = list(node.taints)
    if node.role == "server":
        config["cni"] = list(cluster.cni)
        config["cluster-cidr"] = str(cluster.cluster_cidr)
        config["service-cidr"] = str(cluster.service_cidr)
        if cluster.node_cidr_mask_size != DEFAULT_MASK:
            mask = cluster.node_cidr_mask_size
            config["kube-controller-manager-arg"] = [f"node-cidr-mask-size={mask}"]
    what = "server" if node.role == "server" else "agent"
    if node.bootstrap:
        what += "; the first: it starts the cluster"
    header = comment(
        [
            f"RKE2 configuration of {node.name} ({what}).",
            f"multihome: lab {plan.name}. Copy to /etc/rancher/rke2/config.yaml before RKE2",
            "starts here for the first time.",
        ]
    )
    text = header + dump(config) + token_comment
    return RenderedFile(f"{node_dir(node)}/{CONFIG_PATH}", text, "rke2-config", mode=0o600)
