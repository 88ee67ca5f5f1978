"""Render for the versions people run: who starts the CNI dhcp daemon in each rke2-multus chart
era (the chart's ``manifests.dhcpDaemonSet`` where the release's chart has it and reaches
every node that needs it, else multihome's DaemonSet), the Rancher form of the same, and the
registration flags that pin each node's address the Rancher way."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from multihome.render import DesignInvalid, Target, render_in_memory
from multihome.render.kube import schema_version
from multihome.render.validate import document_problem
from multihome.spec import load_lab_text, seed_path

SEED_VERSION = "v1.25.9+rke2r1"
MANIFESTS = "server/var/lib/rancher/rke2/server/manifests"
OWN = f"{MANIFESTS}/multihome-cni-dhcp.yaml"
AGENTS = ["multi-homed-wrk-1", "multi-homed-wrk-2", "multi-homed-wrk-3"]


def _seed(version: str = SEED_VERSION) -> str:
    text = seed_path().read_text(encoding="utf-8")
    return text.replace(f"version: {SEED_VERSION}", f"version: {version}")


def _files(text: str, target: Target = Target.rke2) -> dict[str, str]:
    lab_file = load_lab_text(text, "lab.yaml", seed_path().parent)
    return {f.path: f.text for f in render_in_memory(lab_file, target).files}


def _multus_values(files: dict[str, str]) -> dict[str, Any] | None:
    text = files.get(f"{MANIFESTS}/rke2-multus-config.yaml")
    if text is None:
        return None
    values = yaml.safe_load(yaml.safe_load(text)["spec"]["valuesContent"])
    assert isinstance(values, dict)
    return values


def _tainted_agent(version: str) -> str:
    """The seed with wrk-3 tainted and net-tools pinned there (tolerating it)."""
    node = "    - name: multi-homed-wrk-3\n      role: agent\n"
    pod = "spec:\n  containers:\n  - name: samplepod\n"
    text = _seed(version)
    assert node in text and pod in text
    text = text.replace(node, node + "      taints: [{key: dedicated, effect: NoSchedule}]\n")
    return text.replace(
        pod,
        "spec:\n  nodeName: multi-homed-wrk-3\n  tolerations: [{key: dedicated, "
        "operator: Exists}]\n  containers:\n  - name: samplepod\n",
    )


def _hostnames(daemonset: dict[str, Any]) -> list[str]:
    affinity = daemonset["spec"]["template"]["spec"]["affinity"]["nodeAffinity"]
    terms = affinity["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    (term,) = terms
    (expression,) = term["matchExpressions"]
    assert (expression["key"], expression["operator"]) == ("kubernetes.io/hostname", "In")
    values = expression["values"]
    assert isinstance(values, list)
    return values


def test_before_the_value_multihome_runs_the_daemon() -> None:
    files = _files(_seed())
    assert _multus_values(files) is None  # v3.9.3's chart would ignore dhcpDaemonSet
    (daemonset,) = yaml.safe_load_all(files[OWN])
    pod = daemonset["spec"]["template"]["spec"]
    assert pod["hostNetwork"] is True
    assert _hostnames(daemonset) == AGENTS  # the nodes that may run DHCP pods
    assert {"operator": "Exists", "effect": "NoExecute"} in pod["tolerations"]
    (container,) = pod["containers"]
    assert container["command"] == ["/opt/cni/bin/dhcp", "daemon"]
    assert container["securityContext"] == {"privileged": True}
    mounts = {m["name"]: m for m in container["volumeMounts"]}
    volumes = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"]}
    assert (mounts["socket-dir"]["mountPath"], volumes["socket-dir"]) == ("/run/cni", "/run/cni")
    netns = mounts["netns-dir"]
    assert (netns["mountPath"], netns["mountPropagation"]) == ("/var/run/netns", "HostToContainer")
    assert volumes["netns-dir"] == "/run/netns"
    (cleanup,) = pod["initContainers"]
    assert cleanup["command"] == ["rm", "-f", "/run/cni/dhcp.sock"]
    assert cleanup["volumeMounts"][0]["mountPath"] == "/run/cni"
    readme = files["README.md"]
    assert "kubectl -n kube-system get ds multihome-cni-dhcp" in readme
    assert "DESIRED = READY = 3" in readme
    assert "sudo install -m 644 server/var/lib/rancher/rke2/server/manifests/*.yaml" in readme


@pytest.mark.parametrize(
    ("version", "desired"),
    [("v1.26.13+rke2r1", 3), ("v1.28.6+rke2r1", 3), ("v1.28.11+rke2r1", 6), ("v1.30.2+rke2r1", 6)],
)
def test_from_the_value_on_the_chart_runs_it(version: str, desired: int) -> None:
    files = _files(_seed(version))
    assert _multus_values(files) == {"manifests": {"dhcpDaemonSet": True}}
    assert OWN not in files
    readme = files["README.md"]
    assert "kubectl -n kube-system get ds rke2-multus-dhcp" in readme
    # without tolerations (before chart v4.0.204) the chart's DaemonSet skips the servers
    assert f"DESIRED = READY = {desired}" in " ".join(readme.split())


def test_v1_29_0_ships_a_chart_without_the_value() -> None:
    files = _files(_seed("v1.29.0+rke2r1"))
    assert _multus_values(files) is None and OWN in files


def test_a_tainted_node_the_chart_skips_gets_multihomes_daemon() -> None:
    files = _files(_tainted_agent("v1.28.6+rke2r1"))
    assert _multus_values(files) is None
    (daemonset,) = yaml.safe_load_all(files[OWN])
    assert _hostnames(daemonset) == ["multi-homed-wrk-1", "multi-homed-wrk-2", "multi-homed-wrk-3"]
    later = _files(_tainted_agent("v1.28.11+rke2r1"))  # the chart tolerates taints there
    assert _multus_values(later) == {"manifests": {"dhcpDaemonSet": True}} and OWN not in later


def test_rancher_carries_the_daemonset_as_an_additional_manifest() -> None:
    files = _files(_seed(), Target.rancher)
    (cluster,) = yaml.safe_load_all(files["rancher/cluster.yaml"])
    rke = cluster["spec"]["rkeConfig"]
    assert "rke2-multus" not in rke["chartValues"]
    (daemonset,) = yaml.safe_load_all(rke["additionalManifest"])
    assert daemonset == yaml.safe_load(_files(_seed())[OWN].partition("---\n")[2])
    assert "additionalManifest" in files["README.md"]
    later = yaml.safe_load(_files(_seed("v1.28.6+rke2r1"), Target.rancher)["rancher/cluster.yaml"])
    assert "additionalManifest" not in later["spec"]["rkeConfig"]
    assert later["spec"]["rkeConfig"]["chartValues"]["rke2-multus"] == {
        "manifests": {"dhcpDaemonSet": True}
    }


def test_an_additional_manifest_is_validated_document_by_document() -> None:
    (cluster,) = yaml.safe_load_all(_files(_seed(), Target.rancher)["rancher/cluster.yaml"])
    version = schema_version(SEED_VERSION)
    assert document_problem(cluster, version) is None
    broken = cluster["spec"]["rkeConfig"]["additionalManifest"].replace(
        "hostNetwork: true", "hostNetwork: yes-please"
    )
    cluster["spec"]["rkeConfig"]["additionalManifest"] = broken
    problem = document_problem(cluster, version)
    assert problem is not None and "additionalManifest document 1 (DaemonSet" in problem


def test_rancher_registration_pins_each_nodes_address() -> None:
    files = _files(_seed(), Target.rancher)
    readme = files["README.md"]
    assert "| multi-homed-cpl-1 | `--etcd --controlplane --internal-address 172.16.40.46` |" in (
        readme
    )
    assert "| multi-homed-wrk-3 | `--worker --internal-address 172.16.40.51` |" in readme
    assert "50-rancher.yaml" in readme
    config = files["nodes/multi-homed-wrk-1/etc/rancher/rke2/config.yaml"]
    assert "#   --worker --internal-address 172.16.40.47\n" in config
    assert yaml.safe_load(config) == {"node-ip": "172.16.40.47"}


def test_a_cni_value_the_version_refuses_is_not_rendered() -> None:
    text = _seed().replace("cni: [multus, canal]", "cni: [multus, flannel]")
    with pytest.raises(DesignInvalid) as caught:
        _files(text)
    assert "cni-unsupported-version" in [f.id for f in caught.value.findings]
    assert _files(text.replace(SEED_VERSION, "v1.30.0+rke2r1"))  # accepted from v1.30.0
