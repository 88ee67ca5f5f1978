"""``multihome apply --kubeconfig`` end to end against the lab's own Kubernetes API on a
running seed: a dry run of the seed's own design changes nothing (the HelmChartConfig and the
dhcp daemon's DaemonSet included: the lab serves them); a changed design (a new pod, a
relabelled NAD) is created and changed for real (the pod attached: its net1 in the kernel) and
a second apply finds everything unchanged, the lab's own objects carrying multihome's fields; a
Canal NIC change is refused without --force, and with it reaches the server (which, the lab's,
can't move Canal: a 422 said literally); a bad kubeconfig is exit 2 without a traceback."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import variants
from verifykit import lab_up

from multihome.kube import kubeconfig_path
from multihome.lab import api

NS = "multus-network-attachments"
CHANGED = (
    variants.edit(
        (
            "  name: macvlan-private-dhcp\n  namespace: multus-network-attachments\n",
            "  name: macvlan-private-dhcp\n  namespace: multus-network-attachments\n"
            "  labels: {tier: services}\n",
        )
    )
    + """---
apiVersion: v1
kind: Pod
metadata:
  name: tools-b
  namespace: multus-network-attachments
  annotations:
    k8s.v1.cni.cncf.io/networks: multus-network-attachments/macvlan-private-dhcp
spec:
  containers:
  - name: tools
    command: ["/bin/bash", "-c", "sleep 2000000000000"]
    image: ubuntu
"""
)


@pytest.fixture(scope="module")
def kubeconfig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("liveapply")
    with lab_up(variants.load(variants.SEED), root / "state"):
        yield kubeconfig_path("multi-homed")


def apply(
    *args: str, lab: str | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "multihome", "apply"]
    if lab is not None:
        argv.append(lab)
    return subprocess.run(
        [*argv, *args], capture_output=True, text=True, timeout=300, check=False, cwd=cwd
    )


def lines(done: subprocess.CompletedProcess[str]) -> dict[str, str]:
    """Object label -> action, from the per-object lines."""
    found = {}
    for line in done.stdout.splitlines():
        m = re.match(r"^  (created|changed|unchanged|skipped|failed|not applied) +(\S+ \S+)", line)
        if m:
            found[m.group(2).rstrip(":")] = m.group(1)
    return found


def test_dry_run_of_the_seeds_own_design_changes_nothing(kubeconfig: Path) -> None:
    done = apply("--kubeconfig", str(kubeconfig), "--dry-run")
    assert done.returncode == 0, done.stderr
    seen = lines(done)
    assert set(seen.values()) == {"unchanged"}, done.stdout
    assert len(seen) == 7
    assert seen["HelmChartConfig kube-system/rke2-canal"] == "unchanged"
    assert seen["DaemonSet kube-system/multihome-cni-dhcp"] == "unchanged"
    assert "node daemons\n  unchanged   DaemonSet kube-system/multihome-cni-dhcp\n" in done.stdout
    assert "nodes/<node>/etc/rancher/rke2/config.yaml" in done.stdout
    assert "waiting" not in done.stdout  # a dry run waits for nothing


def test_a_changed_design_is_applied_for_real_then_unchanged(
    kubeconfig: Path, tmp_path: Path
) -> None:
    lab = tmp_path / "changed.yaml"
    lab.write_text(CHANGED)
    dry = apply(str(lab), "--kubeconfig", str(kubeconfig), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert lines(dry)["Pod multus-network-attachments/tools-b"] == "created"
    assert "+    tier: services" in dry.stdout
    assert "tools-b" not in {p["name"] for p in api.status("multi-homed")["pods"]}
    done = apply(str(lab), "--kubeconfig", str(kubeconfig), "--timeout", "120")
    assert done.returncode == 0, done.stdout + done.stderr
    seen = lines(done)
    assert seen["Pod multus-network-attachments/tools-b"] == "created"
    assert seen["NetworkAttachmentDefinition multus-network-attachments/macvlan-private-dhcp"] == (
        "changed"
    )
    # the dhcp daemon's DaemonSet and the two pods
    assert "3/3 ready" in done.stdout and "verify (read-only tier):" in done.stdout
    assert "interfaces         PASS     tools-b has eth0, net1" in done.stdout
    argv = api.exec_argv(f"{NS}/tools-b", ["ip", "-j", "-4", "addr", "show", "dev", "net1"])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(out)[0]["addr_info"][0]["local"].startswith("172.16.60.")
    again = apply(str(lab), "--kubeconfig", str(kubeconfig), "--timeout", "60")
    assert again.returncode == 0, again.stdout + again.stderr
    seen = lines(again)
    assert set(seen.values()) == {"unchanged"}, again.stdout
    assert "multihome-cni-dhcp" not in again.stdout.split("Not through the API")[1]
    from lightkube import Client, KubeConfig
    from lightkube.resources.apps_v1 import DaemonSet

    from multihome.cluster.apply import HelmChartConfig

    client = Client(KubeConfig.from_file(kubeconfig))
    for kind, name in ((DaemonSet, "multihome-cni-dhcp"), (HelmChartConfig, "rke2-canal")):
        obj = client.get(kind, name, namespace="kube-system")
        assert obj.metadata is not None and obj.metadata.managedFields is not None
        assert [(m.manager, m.operation) for m in obj.metadata.managedFields] == [
            ("multihome", "Apply")
        ]


CANAL_MOVED = variants.edit(
    ("      iface: ens192\n", "      iface: ens224\n"),
    (
        "        - {name: ens224, network: vlan50}\n",
        "        - {name: ens224, network: vlan50, address: 172.16.50.11}\n",
    ),
    name="canal-moved",
)
"""A lab whose Canal runs on ens224 (wrk-1's has an address there: flannel's public-ip)."""


def test_a_canal_nic_change_is_refused_without_force(tmp_path: Path) -> None:
    with lab_up(variants.load(CANAL_MOVED), tmp_path / "state"):
        config = str(kubeconfig_path("canal-moved"))
        done = apply("--kubeconfig", config, "--dry-run")  # the seed: Canal on ens192
        assert done.returncode == 1, done.stdout + done.stderr
        assert "refused: Canal's NIC (rke2-canal's flannel.iface ens192)" in done.stderr
        assert (
            "multi-homed-wrk-1: the NIC with 172.16.50.11 -> ens192 (172.16.40.47)" in done.stderr
        )
        assert "it would disrupt: flannel and Calico restart on every node" in done.stderr
        assert "--force applies it anyway" in done.stderr
        assert "unchanged" not in done.stdout
        forced = apply("--kubeconfig", config, "--dry-run", "--force")
        assert "forced past: Canal's NIC" in forced.stdout
        # past the refusal, the server answers: a real one takes the new values (RKE2's
        # helm-controller then rolls rke2-canal out); the lab's can't move Canal, and says so
        assert forced.returncode == 1, forced.stdout + forced.stderr
        seen = lines(forced)
        assert seen["HelmChartConfig kube-system/rke2-canal"] == "failed"
        assert (
            'HelmChartConfig "rke2-canal" is invalid: spec.valuesContent: Forbidden: the lab '
            "makes helmchartconfig 'rke2-canal' from its lab file" in forced.stdout
        ), forced.stdout
        assert seen["Pod multus-network-attachments/net-tools"] == "not applied"


def test_a_bad_kubeconfig_is_exit_2(tmp_path: Path) -> None:
    done = apply("--kubeconfig", str(tmp_path / "none"), "--dry-run")
    assert done.returncode == 2
    assert "cannot read kubeconfig" in done.stderr and "Traceback" not in done.stderr
    bad = tmp_path / "bad"
    bad.write_text("apiVersion: v1\nkind: Config\nclusters: [\n")
    done = apply("--kubeconfig", str(bad))
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr


def test_fields_of_another_manager_are_a_conflict_without_force(
    kubeconfig: Path, tmp_path: Path
) -> None:
    from lightkube import Client, KubeConfig
    from lightkube.types import PatchType

    from multihome.cluster.read import NAD

    client = Client(KubeConfig.from_file(kubeconfig))
    theirs = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "macvlan-private-dhcp", "namespace": NS, "labels": {"tier": "x"}},
    }
    client.patch(
        NAD, "macvlan-private-dhcp", theirs, namespace=NS, patch_type=PatchType.APPLY,
        field_manager="someone-else", force=True,
    )  # fmt: skip
    lab = tmp_path / "changed.yaml"
    lab.write_text(CHANGED)
    done = apply(str(lab), "--kubeconfig", str(kubeconfig), "--timeout", "60")
    assert done.returncode == 1
    nad = "NetworkAttachmentDefinition multus-network-attachments/macvlan-private-dhcp"
    assert lines(done)[nad] == "failed"
    assert 'conflict with "someone-else"' in done.stdout and "--force takes" in done.stdout
    assert lines(done)["Pod multus-network-attachments/net-tools"] == "not applied"
    forced = apply(str(lab), "--kubeconfig", str(kubeconfig), "--force", "--timeout", "60")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert lines(forced)[nad] == "changed" and "+    tier: services" in forced.stdout
    got = client.get(NAD, "macvlan-private-dhcp", namespace=NS)
    assert got.metadata is not None and got.metadata.labels == {"tier": "services"}


def test_a_design_that_validate_refuses_is_not_applied(kubeconfig: Path, tmp_path: Path) -> None:
    lab = tmp_path / "bad.yaml"
    lab.write_text(variants.CANAL_ENS224)
    done = apply(str(lab), "--kubeconfig", str(kubeconfig), "--dry-run")
    assert done.returncode == 1
    assert "canal-iface-missing" in done.stdout + done.stderr
    assert "not applied: fix the errors above first" in done.stderr


def test_a_storage_network_change_says_the_volume_check_could_not_be_made(
    kubeconfig: Path, tmp_path: Path
) -> None:
    lab = tmp_path / "storage.yaml"
    old, new = (
        "storageNetwork: multus-network-attachments/macvlan-longhorn-dhcp",
        ("storageNetwork: multus-network-attachments/macvlan-private-dhcp"),
    )
    lab.write_text(
        variants.edit(
            (old, new),
            (
                "value: multus-network-attachments/macvlan-longhorn-dhcp",
                "value: multus-network-attachments/macvlan-private-dhcp",
            ),
        )
    )
    done = apply(str(lab), "--kubeconfig", str(kubeconfig), "--dry-run")
    # the lab's API keeps its Setting equal to its Lab document's spec.longhorn (a 422; a
    # real cluster takes it): the server's refusal is the object's failure, said literally,
    # and the workloads after it are not applied
    assert done.returncode == 1, done.stdout + done.stderr
    seen = lines(done)
    assert seen["Setting longhorn-system/storage-network"] == "failed"
    assert 'Setting "storage-network" is invalid: value:' in done.stdout
    assert seen["Pod multus-network-attachments/net-tools"] == "not applied"
    assert (
        "note: Longhorn's storage-network changes ('multus-network-attachments/macvlan-longhorn"
        "-dhcp' -> 'multus-network-attachments/macvlan-private-dhcp'): whether volumes are "
        "attached could not be checked (the cluster does not serve volumes.longhorn.io)"
    ) in done.stdout


def test_an_unknown_context_is_exit_2(kubeconfig: Path) -> None:
    done = apply("--kubeconfig", str(kubeconfig), "--context", "nowhere", "--dry-run")
    assert done.returncode == 2
    assert "Context 'nowhere' not found" in done.stderr and "Traceback" not in done.stderr


def test_a_dry_run_into_a_namespace_the_run_creates(kubeconfig: Path, tmp_path: Path) -> None:
    lab = tmp_path / "newns.yaml"
    lab.write_text(
        variants.SEED
        + """---
apiVersion: v1
kind: Namespace
metadata:
  name: tools
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: macvlan-private-dhcp
  namespace: tools
spec:
  config: '{"cniVersion": "0.3.0", "type": "macvlan", "master": "ens256", "mode": "bridge",
    "ipam": {"type": "dhcp"}}'
"""
    )
    done = apply(str(lab), "--kubeconfig", str(kubeconfig), "--dry-run")
    assert done.returncode == 0, done.stdout + done.stderr
    seen = lines(done)
    assert seen["Namespace tools"] == "created"
    assert seen["NetworkAttachmentDefinition tools/macvlan-private-dhcp"] == "created"
    # the server can't dry-run an object in a namespace that does not exist yet
    assert "its namespace tools is created first (not dry-run by the server)" in done.stdout
    assert "1 unchanged" not in done.stdout and "2 created" in done.stdout
    get = subprocess.run(
        [sys.executable, "-m", "multihome", "get", "networks"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert "tools" not in get.stdout.split()  # a dry run created nothing


NEWER = variants.edit(("version: v1.25.9+rke2r1", "version: v1.28.6+rke2r1"), name="newer-rke2")
"""The seed on an RKE2 release whose rke2-multus chart starts the dhcp daemon itself."""


def test_the_rke2_multus_values_on_a_release_whose_chart_runs_the_dhcp_daemon(
    tmp_path: Path,
) -> None:
    """Render gives rke2-multus values (manifests.dhcpDaemonSet) instead of a DaemonSet of
    its own: apply puts that HelmChartConfig through the API, unchanged on the lab built
    from the same design, and no dhcp DaemonSet (the chart's is the chart's to make)."""
    lab = tmp_path / "newer.yaml"
    lab.write_text(NEWER)
    with lab_up(variants.load(NEWER), tmp_path / "state"):
        config = str(kubeconfig_path("newer-rke2"))
        done = apply(str(lab), "--kubeconfig", config, "--dry-run")
        assert done.returncode == 0, done.stdout + done.stderr
        seen = lines(done)
        assert seen["HelmChartConfig kube-system/rke2-multus"] == "unchanged", done.stdout
        assert seen["HelmChartConfig kube-system/rke2-canal"] == "unchanged"
        assert not any(k.startswith("DaemonSet") for k in seen), seen
        assert "node daemons" not in done.stdout
        from lightkube import Client, KubeConfig

        from multihome.cluster.apply import HelmChartConfig

        got = Client(KubeConfig.from_file(config)).get(
            HelmChartConfig, "rke2-multus", namespace="kube-system"
        )
        assert "dhcpDaemonSet: true" in got.to_dict()["spec"]["valuesContent"]
