"""The Rancher-provisioned form (the seed's): a provisioning.cattle.io/v1 Cluster whose
``rkeConfig.chartValues`` carry the rke2-canal and rke2-multus values, whose
``machineGlobalConfig`` the CNI list and whose ``additionalManifest`` the dhcp daemon's
DaemonSet where the version's chart can't start it (Rancher writes it to the servers'
manifests directory), plus each node's config.yaml with its node-ip and the registration
flags that pin the same address the Rancher way."""

from __future__ import annotations

from typing import Any

from multihome.plan import NodePlan, Plan, charts
from multihome.plan.charts import canal_values, multus_values
from multihome.render import dhcp
from multihome.render.rke2 import CONFIG_PATH, node_dir
from multihome.render.tree import RenderedFile
from multihome.render.yamltext import comment, documents, dump, wrap

CLUSTER_PATH = "rancher/cluster.yaml"
REMOVAL = "take this DaemonSet out of additionalManifest (Rancher then deletes it)"
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
    daemon = charts.dhcp_daemon(plan)
    if daemon is not None and daemon.source == "own":
        manifest = documents([charts.daemonset(daemon)], dhcp.header(daemon, plan, REMOVAL))
        spec["rkeConfig"]["additionalManifest"] = manifest
    return {
        "apiVersion": "provisioning.cattle.io/v1",
        "kind": "Cluster",
        "metadata": {"name": plan.name, "namespace": RANCHER_NAMESPACE},
        "spec": spec,
    }


def cluster_file(plan: Plan) -> RenderedFile:
    """``rancher/cluster.yaml``."""
    cluster = cluster_object(plan)
    extra = ""
    if "additionalManifest" in cluster["spec"]["rkeConfig"]:
        extra = " and its Additional Manifest (the dhcp daemon's DaemonSet)"
    header = wrap(
        f"The Rancher cluster of lab {plan.name} (multihome). Apply it to Rancher's local "
        "cluster (kubectl apply -f), or type the same values into the cluster form: Container "
        f"Network '{','.join(plan.cluster.cni)}', the Add-On Config of rke2-canal / rke2-multus"
        f"{extra}.",
    )
    return RenderedFile(CLUSTER_PATH, documents([cluster], header), "manifests")


def registration_flags(node: NodePlan) -> str:
    """What to add to Rancher's registration command on this node: its roles and its
    address. ``--internal-address`` becomes ``node-ip`` in the config.yaml.d/50-rancher.yaml
    Rancher writes (rancher/rancher pkg/capr/planner, addAddresses); ``--address`` would add
    ``node-external-ip`` (and, on servers, ``advertise-address``), so it is left out: the
    design's nodes have one address each."""
    roles = "--etcd --controlplane" if node.role == "server" else "--worker"
    return f"{roles} --internal-address {node.node_ip}"


def node_ip_config(plan: Plan, node: NodePlan) -> RenderedFile:
    """``nodes/<name>/etc/rancher/rke2/config.yaml`` with only the node-ip (the seed's tip:
    write it before running the registration command, so RKE2 takes the right NIC), and in
    its comment the registration flags that pin the same address the Rancher way."""
    header = comment(
        [
            f"node-ip of {node.name} ({node.role}). multihome: lab {plan.name}.",
            *wrap(
                "Copy to /etc/rancher/rke2/config.yaml before running Rancher's registration "
                "command on this node. Rancher writes its own settings to "
                "config.yaml.d/50-rancher.yaml and keeps this file. The Rancher-native way to "
                "pin the same address is on the registration command itself; add:",
                width=86,
            ),
            f"  {registration_flags(node)}",
        ]
    )
    text = header + dump({"node-ip": str(node.node_ip)})
    return RenderedFile(f"{node_dir(node)}/{CONFIG_PATH}", text, "rke2-config", mode=0o600)
