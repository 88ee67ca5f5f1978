"""The Rancher-provisioned form (the seed's): a provisioning.cattle.io/v1 Cluster whose
``rkeConfig.chartValues`` carry the rke2-canal and rke2-multus values and whose
``machineGlobalConfig`` the CNI list, plus each node's config.yaml with its node-ip."""

from __future__ import annotations

from typing import Any

from multihome.plan import NodePlan, Plan
from multihome.render.rke2 import CONFIG_PATH, canal_values, multus_values, node_dir
from multihome.render.tree import RenderedFile
from multihome.render.yamltext import comment, documents, dump

CLUSTER_PATH = "rancher/cluster.yaml"
RANCHER_NAMESPACE = "fleet-default"


def cluster_object(plan: Plan) -> dict[str, Any]:
    """The Cluster object: what the Rancher UI's cluster form and "Add-On Config" make."""
    cluster = plan.cluster
    chart_values: dict[str, Any] = {}
    canal = canal_values(plan)
    if canal is not None:
        chart_values["rke2-canal"] = canal
    multus = multus_values(plan)
    if multus is not None:
        chart_values["rke2-multus"] = multus
    spec: dict[str, Any] = {}
    if cluster.version is not None:
        spec["kubernetesVersion"] = cluster.version
    spec["rkeConfig"] = {
        "chartValues": chart_values,
        "machineGlobalConfig": {
            "cni": ",".join(cluster.cni),
            "cluster-cidr": str(cluster.cluster_cidr),
            "service-cidr": str(cluster.service_cidr),
        },
    }
    return {
        "apiVersion": "provisioning.cattle.io/v1",
        "kind": "Cluster",
        "metadata": {"name": plan.name, "namespace": RANCHER_NAMESPACE},
        "spec": spec,
    }


def cluster_file(plan: Plan) -> RenderedFile:
    """``rancher/cluster.yaml``."""
    header = [
        f"The Rancher cluster of lab {plan.name} (multihome). Apply it to Rancher's local",
        "cluster (kubectl apply -f), or type the same values into the cluster form:",
        "Container Network 'multus,canal' and the Add-On Config of rke2-canal / rke2-multus.",
    ]
    return RenderedFile(CLUSTER_PATH, documents([cluster_object(plan)], header), "manifests")


def node_ip_config(plan: Plan, node: NodePlan) -> RenderedFile:
    """``nodes/<name>/etc/rancher/rke2/config.yaml`` with only the node-ip (the seed's tip:
    write it before running the registration command, so RKE2 takes the right NIC)."""
    header = comment(
        [
            f"node-ip of {node.name} ({node.role}). multihome: lab {plan.name}.",
            "Copy to /etc/rancher/rke2/config.yaml before running Rancher's registration",
            "command on this node; Rancher adds its own settings beside it.",
        ]
    )
    text = header + dump({"node-ip": str(node.node_ip)})
    return RenderedFile(f"{node_dir(node)}/{CONFIG_PATH}", text, "rke2-config", mode=0o600)
