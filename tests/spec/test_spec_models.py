"""Model details: defaults, aliases, null as absent, helpers."""

from __future__ import annotations

import ipaddress

from spec_helpers import MINIMAL

from multihome.spec import (
    DHCP,
    Cluster,
    Expect,
    Lab,
    Node,
    PodView,
    WorkloadView,
    load_lab,
    load_lab_text,
)


def test_defaults() -> None:
    lab = load_lab_text(MINIMAL).lab
    spec = lab.spec
    assert spec.resources == [] and spec.hosts == [] and spec.expect == []
    assert spec.longhorn is None
    assert spec.networks[0].mtu == 1500 and spec.networks[0].vlan is None
    cluster = spec.cluster
    assert cluster == Cluster()
    assert cluster.distribution == "rke2" and cluster.version is None
    assert cluster.cni == ["multus", "canal"]
    assert cluster.canal.iface is None and cluster.canal.backend == "vxlan"
    assert cluster.cluster_cidr == ipaddress.ip_network("10.42.0.0/16")
    assert cluster.service_cidr == ipaddress.ip_network("10.43.0.0/16")
    assert cluster.node_cidr_mask_size == 24
    assert cluster.servers_run_workloads is False
    node = spec.nodes[0]
    assert node.node_ip is None
    assert node.effective_node_ip == ipaddress.ip_address("10.0.0.10")
    assert node.labels == {} and node.taints == []


def test_null_means_absent() -> None:
    text = MINIMAL.replace(
        "      role: server\n", "      role: server\n      labels:\n      taints:\n"
    )
    node = load_lab_text(text + "  hosts:\n  cluster:\n").lab.spec.nodes[0]
    assert node.labels == {} and node.taints == []


def test_dump_uses_the_file_keys() -> None:
    lab = load_lab().lab
    dumped = lab.model_dump(mode="json")
    assert dumped["apiVersion"] == "multihome.dev/v1alpha1"
    assert dumped["spec"]["nodes"][3]["nodeIP"] == "172.16.40.47"
    assert dumped["spec"]["cluster"]["clusterCIDR"] == "10.42.0.0/16"
    assert dumped["spec"]["expect"][0]["from"] == "multus-network-attachments/net-tools"
    assert Lab.model_validate(dumped) == lab


def test_dhcp_helpers() -> None:
    dhcp = DHCP.model_validate({"range": "10.0.0.10 - 10.0.0.20", "leaseTime": "45m"})
    assert dhcp.range == "10.0.0.10-10.0.0.20"
    assert (str(dhcp.start), str(dhcp.end)) == ("10.0.0.10", "10.0.0.20")
    assert dhcp.lease_seconds == 2700
    assert DHCP.model_validate({"range": "fd00::10-fd00::20"}).lease_seconds == 3600
    assert (
        DHCP.model_validate(
            {
                "range": "a-b".replace("a", "1.1.1.1").replace("b", "1.1.1.2"),
                "leaseTime": "infinite",
            }
        ).lease_seconds
        is None
    )
    assert DHCP.model_validate({"range": "1.1.1.1-1.1.1.2", "leaseTime": 600}).lease_time == "600"


def test_node_ip_wins() -> None:
    node = Node.model_validate(
        {
            "name": "n",
            "role": "agent",
            "nodeIP": "10.0.0.9",
            "nics": [{"name": "eth0", "network": "lan", "address": "10.0.0.10"}],
        }
    )
    assert str(node.effective_node_ip) == "10.0.0.9"
    assert Node.model_validate({"name": "n", "role": "agent", "nics": []}).effective_node_ip is None


def test_expect_defaults() -> None:
    expect = Expect.model_validate({"from": "ns/pod", "to": "web"})
    assert (expect.proto, expect.result, expect.deadline, expect.retries, expect.via) == (
        "icmp",
        "allow",
        5.0,
        3,
        None,
    )


def test_manifest_views_and_namespaces() -> None:
    text = MINIMAL + (
        "---\n"
        "apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: ds}\n"
        "spec:\n  selector: {matchLabels: {app: ds}}\n"
        "  template:\n    metadata:\n      labels: {app: ds}\n"
        "      annotations: {k8s.v1.cni.cncf.io/networks: net1}\n"
        "    spec:\n      tolerations: [{operator: Exists}]\n"
        "      containers: [{name: c, image: busybox, args: [sleep, '10']}]\n"
        "---\n"
        "apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: other}\n"
        "spec:\n  nodeName: node-1\n  hostNetwork: true\n  containers: [{name: c}]\n"
        "  unknownField: kept\n"
    )
    lab_file = load_lab_text(text)
    ds, pod = lab_file.manifests
    assert ds.namespace == "default" and pod.namespace == "other"
    assert isinstance(ds.view, WorkloadView) and isinstance(pod.view, PodView)
    assert ds.view.spec.selector is not None
    assert ds.view.spec.selector.match_labels == {"app": "ds"}
    assert pod.view.spec.host_network and pod.view.spec.node_name == "node-1"
    assert pod.body["spec"]["unknownField"] == "kept"
    templates = lab_file.pods_and_templates()
    assert [(t.name, t.namespace, t.networks) for t in templates] == [
        ("ds", "default", "net1"),
        ("p", "other", None),
    ]
    assert templates[0].spec.containers[0].args == ["sleep", "10"]
    assert templates[0].locate("spec", "containers").line == 28
    assert lab_file.find("DaemonSet", None, "ds") is ds
    assert lab_file.find("Pod", "default", "p") is None
