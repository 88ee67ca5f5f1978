"""The shipped examples load, and the seed reproduces the blog post's design."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
from spec_helpers import EXAMPLES, line_of

from multihome.spec import (
    Location,
    NADView,
    PodView,
    SettingView,
    WorkloadView,
    load_lab,
    seed_path,
)

ALL = sorted(EXAMPLES.glob("*.yaml"))


def test_there_are_four_examples() -> None:
    assert {p.name for p in ALL} == {
        "rke2-multihomed.yaml",
        "storage-static.yaml",
        "default-route.yaml",
        "bridge-nad.yaml",
    }


def test_top_level_examples_is_the_same_directory() -> None:
    top = Path(__file__).resolve().parents[2] / "examples"
    assert top.resolve() == EXAMPLES.resolve()


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_example_loads(path: Path) -> None:
    lab_file = load_lab(path)
    assert lab_file.lab.kind == "Lab"
    assert lab_file.manifests
    for manifest in lab_file.nads():
        assert isinstance(manifest.view, NADView)
        assert manifest.view.spec.config is not None
        json.loads(manifest.view.spec.config)  # every NAD config is valid JSON
    for template in lab_file.pods_and_templates():
        if template.networks and template.networks.lstrip().startswith("["):
            json.loads(template.networks)


def test_seed_path_and_default() -> None:
    assert seed_path() == EXAMPLES.resolve() / "rke2-multihomed.yaml"
    assert load_lab().path == seed_path()


def test_seed_nodes_as_in_the_post() -> None:
    lab = load_lab().lab
    assert lab.metadata.name == "multi-homed"
    table = {n.name: (n.role, str(n.effective_node_ip)) for n in lab.spec.nodes}
    assert table == {
        "multi-homed-cpl-1": ("server", "172.16.40.46"),
        "multi-homed-cpl-2": ("server", "172.16.40.49"),
        "multi-homed-cpl-3": ("server", "172.16.40.50"),
        "multi-homed-wrk-1": ("agent", "172.16.40.47"),
        "multi-homed-wrk-2": ("agent", "172.16.40.48"),
        "multi-homed-wrk-3": ("agent", "172.16.40.51"),
    }
    for node in lab.spec.nodes:
        nics = [(nic.name, nic.network) for nic in node.nics]
        if node.role == "server":
            assert nics == [("ens192", "vlan40")]
        else:
            assert nics == [("ens192", "vlan40"), ("ens224", "vlan50"), ("ens256", "vlan60")]


def test_seed_networks_cluster_hosts() -> None:
    spec = load_lab().lab.spec
    nets = {n.name: n for n in spec.networks}
    assert {name: n.vlan for name, n in nets.items()} == {"vlan40": 40, "vlan50": 50, "vlan60": 60}
    assert nets["vlan40"].subnet == ipaddress.ip_network("172.16.40.0/24")
    assert nets["vlan40"].gateway == ipaddress.ip_address("172.16.40.1")
    assert nets["vlan40"].dhcp is None
    dhcp50, dhcp60 = nets["vlan50"].dhcp, nets["vlan60"].dhcp
    assert dhcp50 is not None and dhcp60 is not None
    assert dhcp50.range == "172.16.50.30-172.16.50.99" and not dhcp50.router
    assert dhcp60.range == "172.16.60.32-172.16.60.99" and not dhcp60.router
    assert dhcp60.lease_seconds == 3600
    web = spec.hosts[0]
    assert web.name == "web" and web.serve.http == 80
    assert web.nics[0].address == ipaddress.ip_address("172.16.60.31")
    web_ip = ipaddress.IPv4Address("172.16.60.31")
    assert isinstance(dhcp60.start, ipaddress.IPv4Address)
    assert isinstance(dhcp60.end, ipaddress.IPv4Address)
    assert not dhcp60.start <= web_ip <= dhcp60.end
    cluster = spec.cluster
    assert cluster.version == "v1.25.9+rke2r1"
    assert cluster.cni == ["multus", "canal"]
    assert (cluster.canal.iface, cluster.canal.backend) == ("ens192", "host-gw")
    assert not cluster.servers_run_workloads
    assert spec.longhorn is not None
    assert spec.longhorn.storage_network == "multus-network-attachments/macvlan-longhorn-dhcp"
    [expect] = spec.expect
    assert (expect.from_, expect.to, expect.proto, expect.result) == (
        "multus-network-attachments/net-tools",
        "172.16.60.31:80",
        "http",
        "allow",
    )


def test_seed_manifests_verbatim() -> None:
    lab_file = load_lab()
    refs = [m.ref for m in lab_file.manifests]
    assert refs == [
        "Namespace multus-network-attachments",
        "NetworkAttachmentDefinition multus-network-attachments/macvlan-longhorn-dhcp",
        "NetworkAttachmentDefinition multus-network-attachments/macvlan-private-dhcp",
        "Pod multus-network-attachments/net-tools",
        "Setting longhorn-system/storage-network",
    ]
    for nad, master in zip(lab_file.nads(), ("ens224", "ens256"), strict=True):
        assert isinstance(nad.view, NADView)
        # The post's single-quoted flow scalar: its lines fold into spaces.
        assert nad.view.spec.config == (
            f'{{ "cniVersion": "0.3.0", "type": "macvlan", "master": "{master}",'
            ' "mode": "bridge", "ipam": { "type": "dhcp" } }'
        )
    pod = lab_file.find("Pod", "multus-network-attachments", "net-tools")
    assert pod is not None and isinstance(pod.view, PodView)
    assert pod.body["spec"]["containers"] == [
        {
            "name": "samplepod",
            "command": ["/bin/bash", "-c", "sleep 2000000000000"],
            "image": "ubuntu",
        }
    ]
    [template] = lab_file.pods_and_templates()
    assert template.networks == (
        "multus-network-attachments/macvlan-longhorn-dhcp,"
        "multus-network-attachments/macvlan-private-dhcp"
    )
    setting = lab_file.find("Setting", "longhorn-system", "storage-network")
    assert setting is not None and isinstance(setting.view, SettingView)
    assert setting.view.value == "multus-network-attachments/macvlan-longhorn-dhcp"
    assert lab_file.find("Namespace", None, "multus-network-attachments") is not None
    assert lab_file.find("Pod", "default", "net-tools") is None


def test_seed_positions() -> None:
    lab_file = load_lab()
    text = seed_path().read_text()
    file = str(seed_path())
    # spec.nodes[3] is multi-homed-wrk-1; its second NIC's name is ens224
    wrk1 = line_of(text, "multi-homed-wrk-1")
    assert lab_file.locate("spec", "nodes", 3, "name").line == wrk1[0]
    nic = lab_file.locate("spec", "nodes", 3, "nics", 1, "name")
    assert (nic.file, nic.line) == (file, line_of(text, "ens224", 1)[0])
    assert nic.column == line_of(text, "{name: ens224", 0)[1] + len("{name: ")
    # a missing key -> the nearest existing ancestor
    assert lab_file.locate("spec", "nodes", 3, "nics", 1, "address") == Location(
        file, nic.line, nic.column - len("{name: ")
    )
    # keys of the Lab and of manifests
    assert lab_file.locate_key("spec", "longhorn").line == line_of(text, "  longhorn:")[0]
    pod = lab_file.find("Pod", "multus-network-attachments", "net-tools")
    assert pod is not None
    key = "k8s.v1.cni.cncf.io/networks"
    assert pod.locate_key("metadata", "annotations", key) == Location(
        file, *line_of(text, key + ":")
    )
    image = pod.locate("spec", "containers", 0, "image")
    assert (image.line, image.column) == line_of(text, "ubuntu")
    assert str(image) == f"{file}:{image.line}:{image.column}"


@pytest.mark.parametrize("path", ALL, ids=lambda p: p.name)
def test_example_is_documented(path: Path) -> None:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# ")


def test_default_route_example() -> None:
    lab_file = load_lab(EXAMPLES / "default-route.yaml")
    deployments = lab_file.of_kind("Deployment")
    assert len(deployments) == 1 and isinstance(deployments[0].view, WorkloadView)
    template = deployments[0].pod_template()
    assert template is not None and template.networks is not None
    [element] = json.loads(template.networks)
    assert element["default-route"] == ["192.168.70.1"]
    assert template.locate("metadata", "annotations").line > deployments[0].locate().line


def test_static_and_bridge_examples() -> None:
    static = load_lab(EXAMPLES / "storage-static.yaml")
    [nad] = static.nads()
    assert isinstance(nad.view, NADView) and nad.view.spec.config is not None
    config = json.loads(nad.view.spec.config)
    assert config["ipam"] == {"type": "static"} and config["capabilities"] == {"ips": True}
    assert all(n.dhcp is None for n in static.lab.spec.networks)
    bridge = load_lab(EXAMPLES / "bridge-nad.yaml")
    [nad] = bridge.nads()
    assert isinstance(nad.view, NADView) and nad.view.spec.config is not None
    config = json.loads(nad.view.spec.config)
    assert (config["type"], config["bridge"]) == ("bridge", "br-storage")
    agents = [n for n in bridge.lab.spec.nodes if n.role == "agent"]
    assert agents and all(
        [(nic.name, nic.bridge) for nic in a.nics if nic.bridge] == [("ens224", "br-storage")]
        for a in agents
    )
