"""``render_lab`` as the command line uses it: refusal of broken labs, no overwriting without
force (and nothing written then), the token, validation of everything written, paths."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import pytest
import yaml

from multihome.check import Severity
from multihome.render import (
    TOKEN_ENV,
    DesignInvalid,
    InvalidOutput,
    OutputConflict,
    OutputError,
    PlanFailed,
    RenderedFile,
    Target,
    TokenError,
    TokenSource,
    render_in_memory,
    render_lab,
)
from multihome.render.kube import schema_version
from multihome.render.validate import document_problem, validate_file
from multihome.spec import load_lab, load_lab_text, seed_path

NO_TOKEN = TokenSource(environ={})
SECRET = "K10abcdef0123456789::server:s3cr3t-for-tests"


def seed_text() -> str:
    return seed_path().read_text(encoding="utf-8")


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# -- the design must pass validate -----------------------------------------------------------


def test_lab_with_errors_is_not_rendered(tmp_path: Path) -> None:
    broken = load_lab_text(seed_text().replace("iface: ens192", "iface: ens224"), "lab.yaml")
    with pytest.raises(DesignInvalid) as info:
        render_lab(broken, tmp_path / "out", token_source=NO_TOKEN)
    assert info.value.exit_code == 1
    assert any(f.id == "canal-iface-network" for f in info.value.findings)
    assert any(f.severity is Severity.ERROR for f in info.value.findings)
    assert not (tmp_path / "out").exists()


def test_invalid_manifest_is_not_rendered(tmp_path: Path) -> None:
    text = seed_text().replace("    image: ubuntu\n", "    image: ubuntu\n    imagePullPolicy: 3\n")
    with pytest.raises(InvalidOutput) as info:
        render_lab(load_lab_text(text, "lab.yaml"), tmp_path / "out", token_source=NO_TOKEN)
    assert info.value.exit_code == 1
    assert info.value.path == "manifests/20-workloads.yaml"
    assert "imagePullPolicy" in str(info.value) and "Kubernetes 1.25 schema" in str(info.value)
    assert not (tmp_path / "out").exists()


def test_unknown_field_in_a_manifest_is_caught() -> None:
    text = seed_text().replace("  containers:\n", "  contianers: []\n  containers:\n")
    with pytest.raises(InvalidOutput, match="contianers"):
        render_in_memory(load_lab_text(text, "lab.yaml"))


# -- writing -------------------------------------------------------------------------------


def test_existing_file_is_not_overwritten_and_nothing_is_written(tmp_path: Path) -> None:
    out = tmp_path / "out"
    target = out / "nodes/multi-homed-wrk-1/etc/rancher/rke2/config.yaml"
    target.parent.mkdir(parents=True)
    target.write_text("mine\n")
    (out / "README.md").write_text("also mine\n")
    with pytest.raises(OutputConflict) as info:
        render_lab(load_lab(None), out, token_source=NO_TOKEN)
    assert info.value.exit_code == 2
    assert info.value.path == out / "README.md"  # the first in path order
    assert "--force" in str(info.value)
    assert files_under(out) == ["README.md", "nodes/multi-homed-wrk-1/etc/rancher/rke2/config.yaml"]
    assert target.read_text() == "mine\n"


def test_force_overwrites_and_keeps_other_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "README.md").write_text("old\n")
    (out / "notes.txt").write_text("keep\n")
    result = render_lab(load_lab(None), out, force=True, token_source=NO_TOKEN)
    assert (out / "README.md").read_text().startswith("# multi-homed")
    assert (out / "notes.txt").read_text() == "keep\n"
    assert out / "README.md" in result.files and out / "notes.txt" not in result.files


def test_files_modes(tmp_path: Path) -> None:
    render_lab(load_lab(None), tmp_path, force=True, token_source=NO_TOKEN)
    node = tmp_path / "nodes/multi-homed-wrk-1/etc"
    assert stat.S_IMODE((node / "rancher/rke2/config.yaml").stat().st_mode) == 0o600
    assert stat.S_IMODE((node / "netplan/60-multihome.yaml").stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "README.md").stat().st_mode) == 0o644
    assert not list(tmp_path.rglob("*multihome-tmp*"))


def test_symlinked_directory_is_refused(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "nodes").symlink_to(elsewhere)
    with pytest.raises(OutputError, match="symbolic link"):
        render_lab(load_lab(None), out, force=True, token_source=NO_TOKEN)
    assert list(elsewhere.iterdir()) == []


def test_output_that_is_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("x")
    with pytest.raises(OutputError, match="not a directory"):
        render_lab(load_lab(None), out, token_source=NO_TOKEN)


@pytest.mark.parametrize("path", ["../escape.yaml", "nodes/../x", "a//b", "/abs", "nodes/a b"])
def test_rendered_paths_must_be_plain_names(path: str) -> None:
    with pytest.raises(ValueError, match="can't be used"):
        RenderedFile(path, "", "markdown")


# -- the token -------------------------------------------------------------------------------


def test_without_token_joining_nodes_get_a_placeholder() -> None:
    rendering = render_in_memory(load_lab(None), Target.rke2, None)
    files = {f.path: f.text for f in rendering.files}
    first = files["nodes/multi-homed-cpl-1/etc/rancher/rke2/config.yaml"]
    agent = files["nodes/multi-homed-wrk-1/etc/rancher/rke2/config.yaml"]
    assert "token" not in yaml.safe_load(first) and "node-token" in first
    assert "TOKEN NOT SET" in agent and "token" not in yaml.safe_load(agent)


def test_result_reports_the_missing_token(tmp_path: Path) -> None:
    result = render_lab(load_lab(None), tmp_path, token_source=NO_TOKEN)
    assert result.token_source is None
    assert any("TOKEN NOT SET" in note for note in result.notes)


def test_token_from_the_environment_goes_into_every_config(tmp_path: Path) -> None:
    source = TokenSource(environ={TOKEN_ENV: SECRET + "\n"})
    result = render_lab(load_lab(None), tmp_path, token_source=source)
    assert result.token_source == f"${TOKEN_ENV}"
    configs = sorted(tmp_path.glob("nodes/*/etc/rancher/rke2/config.yaml"))
    assert len(configs) == 6
    for config in configs:
        assert yaml.safe_load(config.read_text())["token"] == SECRET
    others = [p for p in tmp_path.rglob("*") if p.is_file() and p not in configs]
    assert all(SECRET not in p.read_text() for p in others)
    assert any("out of version control" in note for note in result.notes)


def test_token_file_wins_over_the_environment(tmp_path: Path) -> None:
    token_file = tmp_path / "node-token"
    token_file.write_text("from-file\n")
    source = TokenSource(token_file=token_file, environ={TOKEN_ENV: "from-env"})
    rendering = render_in_memory(load_lab(None), Target.rke2, source.read())
    config = next(
        f for f in rendering.files if f.path.endswith("wrk-2/etc/rancher/rke2/config.yaml")
    )
    assert yaml.safe_load(config.text)["token"] == "from-file"
    assert "from-file" not in repr(source.read())


@pytest.mark.parametrize("content", ["", "two words\n", "a\x00b"])
def test_unusable_token_files_are_refused(tmp_path: Path, content: str) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(content)
    with pytest.raises(TokenError) as info:
        render_lab(load_lab(None), tmp_path / "out", token_source=TokenSource(token_file))
    assert info.value.exit_code == 2
    assert not (tmp_path / "out").exists()


def test_missing_token_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(TokenError, match="cannot read the token file"):
        TokenSource(tmp_path / "nope").read()


def test_default_source_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, "abc")
    token = TokenSource().read()
    assert token is not None and token.value == "abc"
    monkeypatch.delenv(TOKEN_ENV)
    assert TokenSource().read() is None


def test_rancher_target_ignores_the_token(tmp_path: Path) -> None:
    result = render_lab(
        load_lab(None),
        tmp_path,
        Target.rancher,
        token_source=TokenSource(environ={TOKEN_ENV: SECRET}),
    )
    assert all(SECRET not in p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    assert any("not used for --target rancher" in n for n in result.notes)
    config = yaml.safe_load(
        (tmp_path / "nodes/multi-homed-wrk-1/etc/rancher/rke2/config.yaml").read_text()
    )
    assert config == {"node-ip": "172.16.40.47"}  # as in the post's tip


# -- what the files say --------------------------------------------------------------------


def test_seed_config_of_a_server_and_an_agent() -> None:
    files = {f.path: f.text for f in render_in_memory(load_lab(None)).files}
    server = yaml.safe_load(files["nodes/multi-homed-cpl-2/etc/rancher/rke2/config.yaml"])
    assert server == {
        "server": "https://172.16.40.46:9345",
        "node-ip": "172.16.40.49",
        "node-taint": ["CriticalAddonsOnly=true:NoExecute"],
        "cni": ["multus", "canal"],
        "cluster-cidr": "10.42.0.0/16",
        "service-cidr": "10.43.0.0/16",
    }
    agent = yaml.safe_load(files["nodes/multi-homed-wrk-3/etc/rancher/rke2/config.yaml"])
    assert agent == {"server": "https://172.16.40.46:9345", "node-ip": "172.16.40.51"}


def test_seed_helm_chart_configs() -> None:
    files = {f.path: f.text for f in render_in_memory(load_lab(None)).files}
    base = "server/var/lib/rancher/rke2/server/manifests"
    canal = yaml.safe_load(files[f"{base}/rke2-canal-config.yaml"])
    assert yaml.safe_load(canal["spec"]["valuesContent"]) == {
        "calico": {"ipAutoDetectionMethod": "interface=ens192"},
        "flannel": {"backend": "host-gw", "iface": "ens192"},
    }
    # v1.25.9's rke2-multus chart has no dhcpDaemonSet value: multihome's DaemonSet instead
    assert f"{base}/rke2-multus-config.yaml" not in files
    (daemonset,) = yaml.safe_load_all(files[f"{base}/multihome-cni-dhcp.yaml"])
    assert daemonset["kind"] == "DaemonSet"


def test_manifests_are_verbatim_and_in_apply_order() -> None:
    lab_file = load_lab(None)
    files = {f.path: f.text for f in render_in_memory(lab_file).files}
    rendered = [
        doc
        for path in (
            "manifests/00-namespaces.yaml",
            "manifests/10-networks.yaml",
            "manifests/20-workloads.yaml",
            "manifests/longhorn/settings.yaml",
        )
        for doc in yaml.safe_load_all(files[path])
    ]
    assert rendered == [m.body for m in lab_file.manifests]
    values = yaml.safe_load(files["manifests/longhorn/values.yaml"])
    assert values == {
        "defaultSettings": {"storageNetwork": "multus-network-attachments/macvlan-longhorn-dhcp"}
    }


def test_storage_network_setting_is_made_when_the_lab_has_none() -> None:
    text = seed_text()
    text = text[: text.index("---\n# Longhorn's storage network, as the Setting")]
    files = {f.path: f.text for f in render_in_memory(load_lab_text(text, "lab.yaml")).files}
    (setting,) = yaml.safe_load_all(files["manifests/longhorn/settings.yaml"])
    assert setting == {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "Setting",
        "metadata": {"name": "storage-network", "namespace": "longhorn-system"},
        "value": "multus-network-attachments/macvlan-longhorn-dhcp",
    }


def test_labels_taints_and_mask_size_reach_the_config() -> None:
    text = (
        seed_text()
        .replace(
            "    - name: multi-homed-wrk-1\n      role: agent\n",
            "    - name: multi-homed-wrk-1\n      role: agent\n      labels: {zone: a}\n"
            "      taints: [{key: dedicated, value: storage, effect: NoSchedule}]\n",
        )
        .replace(
            "    clusterCIDR: 10.42.0.0/16\n",
            "    clusterCIDR: 10.42.0.0/16\n    nodeCIDRMaskSize: 25\n",
        )
    )
    files = {f.path: f.text for f in render_in_memory(load_lab_text(text, "lab.yaml")).files}
    agent = yaml.safe_load(files["nodes/multi-homed-wrk-1/etc/rancher/rke2/config.yaml"])
    assert agent["node-label"] == ["zone=a"]
    assert agent["node-taint"] == ["dedicated=storage:NoSchedule"]
    server = yaml.safe_load(files["nodes/multi-homed-cpl-1/etc/rancher/rke2/config.yaml"])
    assert server["kube-controller-manager-arg"] == ["node-cidr-mask-size=25"]


def test_whereabouts_enables_the_chart() -> None:
    text = seed_text().replace(
        '"type": "dhcp"', '"type": "whereabouts", "range": "172.16.50.0/24"', 1
    )
    rendering = render_in_memory(load_lab_text(text, "lab.yaml"))
    multus = next(f for f in rendering.files if f.path.endswith("rke2-multus-config.yaml"))
    values = yaml.safe_load(yaml.safe_load(multus.text)["spec"]["valuesContent"])
    assert values == {"rke2-whereabouts": {"enabled": True}}
    comment = " ".join(line.lstrip("# ") for line in multus.text.partition("---")[0].splitlines())
    assert "whereabouts IPAM of multus-network-attachments/macvlan-longhorn-dhcp" in comment
    assert "multihome-cni-dhcp.yaml" in comment  # the other NAD's dhcp daemon: not the chart's


def test_whereabouts_only_says_nothing_of_dhcp() -> None:
    text = seed_text().replace(
        '"type": "dhcp"', '"type": "whereabouts", "range": "172.16.50.0/24"', 1
    )
    text = text.replace('"type": "dhcp"', '"type": "whereabouts", "range": "172.16.60.0/24"', 1)
    files = {f.path: f.text for f in render_in_memory(load_lab_text(text, "lab.yaml")).files}
    multus = next(t for p, t in files.items() if p.endswith("rke2-multus-config.yaml"))
    comment = multus.partition("---")[0]
    for nad in ("macvlan-longhorn-dhcp", "macvlan-private-dhcp"):
        comment = comment.replace(nad, "")
    assert "dhcp" not in comment
    assert not any(p.endswith("multihome-cni-dhcp.yaml") for p in files)
    assert "dhcp daemon" not in files["README.md"]


# -- validation ------------------------------------------------------------------------------


def test_every_rendered_file_validates() -> None:
    for target in Target:
        rendering = render_in_memory(load_lab(None), target)
        for rendered in rendering.files:
            validate_file(rendered, rendering.schema)


@pytest.mark.parametrize(
    ("version", "used", "noted"),
    [
        ("v1.25.9+rke2r1", "1.25", False),
        ("v1.30.1+rke2r1", "1.30", False),
        ("v1.24.17+rke2r1", "1.25", True),
        ("v1.99.0+rke2r1", None, True),
        (None, None, True),
    ],
)
def test_schema_version(version: str | None, used: str | None, noted: bool) -> None:
    found = schema_version(version)
    if used is not None:
        assert found.version == used
    else:
        assert found.version.startswith("1.")
    assert (found.note is not None) == noted


V125 = schema_version("v1.25.9")
NAD = {
    "apiVersion": "k8s.cni.cncf.io/v1",
    "kind": "NetworkAttachmentDefinition",
    "metadata": {"name": "net", "namespace": "ns"},
    "spec": {"config": '{"cniVersion": "0.3.1", "type": "macvlan", "master": "eth1"}'},
}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({}, None),
        ({"spec": {"config": "{not json"}}, "not valid JSON"),
        ({"spec": {"config": '{"cniVersion": "0.3.1"}'}}, "not a valid CNI configuration"),
        ({"spec": {"config": '{"cniVersion": "9.9.9", "type": "macvlan"}'}}, "CNI"),
        ({"spec": {}}, "'config' is a required property"),
        ({"metadata": {"name": "Bad_Name"}}, "does not match"),
        ({"extra": 1}, "Additional properties"),
    ],
)
def test_nad_validation(change: dict[str, object], problem: str | None) -> None:
    found = document_problem({**NAD, **change}, V125)
    if problem is None:
        assert found is None
    else:
        assert found is not None and problem in found


def test_helm_chart_config_validation() -> None:
    hcc = {
        "apiVersion": "helm.cattle.io/v1",
        "kind": "HelmChartConfig",
        "metadata": {"name": "rke2-canal", "namespace": "kube-system"},
        "spec": {"valuesContent": "flannel:\n  backend: host-gw\n"},
    }
    assert document_problem(hcc, V125) is None
    assert "valuesContent" in (
        document_problem({**hcc, "spec": {"valuesContent": "- a"}}, V125) or ""
    )
    wrong_ns = {**hcc, "metadata": {"name": "rke2-canal", "namespace": "default"}}
    assert "kube-system" in (document_problem(wrong_ns, V125) or "")
    bad_policy = {**hcc, "spec": {"failurePolicy": "sometimes"}}
    assert "sometimes" in (document_problem(bad_policy, V125) or "")


def test_unknown_custom_kind_has_no_schema() -> None:
    doc = {"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "x"}}
    assert document_problem(doc, V125) == "no schema for Thing example.com/v1"


@pytest.mark.parametrize(
    ("kind", "text", "problem"),
    [
        ("rke2-config", "node-ip: 10.0.0.1\nnode-ipp: 10.0.0.2\n", "node-ipp"),
        ("rke2-config", "node-ip: not-an-ip\n", "node-ip"),
        ("rke2-config", "node-taint: [CriticalAddonsOnly=true]\n", "node-taint"),
        ("netplan", "network: {version: 3}\n", "version"),
        ("netplan", "network: {version: 2, ethernets: {averyveryverylongname: {}}}\n", "ethernets"),
        ("helm-values", "defaultSettings: {storageNetwork: nonamespace}\n", "storageNetwork"),
        ("manifests", "a: [\n", "not valid YAML"),
    ],
)
def test_plain_files_are_validated(kind: str, text: str, problem: str) -> None:
    with pytest.raises(InvalidOutput, match=problem):
        validate_file(RenderedFile("x.yaml", text, kind), V125)  # type: ignore[arg-type]


def test_environment_is_left_alone() -> None:
    assert TOKEN_ENV not in os.environ or os.environ[TOKEN_ENV] != SECRET


def test_design_errors_come_before_token_errors(tmp_path: Path) -> None:
    broken = load_lab_text(seed_text().replace("iface: ens192", "iface: ens224"), "lab.yaml")
    source = TokenSource(token_file=tmp_path / "missing")
    with pytest.raises(DesignInvalid):
        render_lab(broken, tmp_path / "out", token_source=source)


def test_lab_that_cannot_be_planned_fails_with_exit_1(tmp_path: Path) -> None:
    text = seed_text().replace("clusterCIDR: 10.42.0.0/16", "clusterCIDR: 10.42.0.0/22")
    with pytest.raises(PlanFailed, match="node ranges") as info:
        render_lab(load_lab_text(text, "lab.yaml"), tmp_path / "out", token_source=NO_TOKEN)
    assert info.value.exit_code == 1
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("version", "names"),
    [
        (None, r"instance-manager-[er]-[0-9a-f]{32}"),  # the seed's era: 1.4.4
        ("1.6.4", r"instance-manager-[0-9a-f]{32}"),
    ],
)
def test_longhorn_files_follow_the_release(version: str | None, names: str) -> None:
    text = seed_text()
    if version is not None:
        old = "    storageNetwork: multus-network-attachments/macvlan-longhorn-dhcp\n"
        text = text.replace(old, old + f"    version: {version}\n")
    files = {f.path: f.text for f in render_in_memory(load_lab_text(text, "lab.yaml")).files}
    want = version or "1.4.4"
    values = files["manifests/longhorn/values.yaml"]
    assert f"helm install longhorn longhorn/longhorn --version {want} \\" in values
    assert yaml.safe_load(values) == {
        "defaultSettings": {"storageNetwork": "multus-network-attachments/macvlan-longhorn-dhcp"}
    }
    (setting,) = yaml.safe_load_all(files["manifests/longhorn/settings.yaml"])
    assert setting["apiVersion"] == "longhorn.io/v1beta2"  # from Longhorn 1.3 on
    readme = files["README.md"]
    assert f"Longhorn {want} (" in readme
    listed = re.findall(r"\| `(instance-manager-[a-z0-9-]+)` \|", readme)
    assert len(listed) == (6 if version is None else 3)
    assert all(re.fullmatch(names, n) for n in listed)
