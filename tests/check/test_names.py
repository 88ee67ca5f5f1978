"""Object names, labels, annotation keys and container names as the API server checks them,
with its messages (apimachinery's validation), at their file:line."""

from __future__ import annotations

import pytest

from multihome.check import Kind, run_checks
from multihome.check.names import (
    LABEL_RULE,
    SUBDOMAIN_RULE,
    label_value_problems,
    qualified_name_problems,
    rfc1123_label_problems,
    rfc1123_subdomain_problems,
)
from multihome.spec import load_lab_text, seed_path

SEED = seed_path().read_text()
DOC = """---
apiVersion: {api}
kind: {kind}
metadata:
  name: {name}
  namespace: multus-network-attachments
spec:
  selector: {{matchLabels: {{app: x}}}}
  template:
    metadata: {{labels: {{app: x}}}}
    spec:
      containers: [{{name: main, image: ubuntu}}]
"""
POD = """---
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  namespace: multus-network-attachments
  labels: {labels}
  annotations: {annotations}
spec:
  nodeSelector: {selector}
  containers: {containers}
"""


def _pod(
    name: str = "p",
    labels: str = "{}",
    annotations: str = "{}",
    selector: str = "{}",
    containers: str = "[{name: main, image: ubuntu}]",
) -> str:
    return SEED + POD.format(
        name=name,
        labels=labels,
        annotations=annotations,
        selector=selector,
        containers=containers,
    )


def _findings(text: str, finding_id: str) -> list[tuple[int, str]]:
    found = run_checks(load_lab_text(text, "lab.yaml"))
    lines = text.splitlines()
    out = []
    for f in found:
        if f.id != finding_id:
            continue
        assert f.location is not None and f.kind is Kind.REFUSED
        out.append((f.location.line, f"{lines[f.location.line - 1]} | {f.message}"))
    return out


def test_the_rules_and_their_messages() -> None:
    assert SUBDOMAIN_RULE == (
        "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
        "'-' or '.', and must start and end with an alphanumeric character (e.g. "
        "'example.com', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
    )
    assert LABEL_RULE.endswith(
        "(e.g. 'my-name', or '123-abc', regex used for validation is "
        "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
    )
    assert rfc1123_subdomain_problems("a.b-c") == []
    assert rfc1123_subdomain_problems("x" * 254) == ["must be no more than 253 characters"]
    for bad in ("../../x", "-rf", "a\0b", "A", "a_b", "a.", "", "ü", "a\n"):
        assert rfc1123_subdomain_problems(bad) == [SUBDOMAIN_RULE], bad
    assert rfc1123_label_problems("a.b") == [LABEL_RULE]
    assert rfc1123_label_problems("x" * 64)[0] == "must be no more than 63 characters"
    assert qualified_name_problems("example.com/My_Name-1") == []
    assert qualified_name_problems("/x") == ["prefix part must be non-empty"]
    assert qualified_name_problems("Example.com/x")[0].startswith("prefix part a lowercase")
    assert "name part must be non-empty" in qualified_name_problems("example.com/")
    assert "with an optional DNS subdomain prefix" in qualified_name_problems("a/b/c")[0]
    assert label_value_problems("") == [] and label_value_problems("A_b.1") == []
    assert label_value_problems("-x")[0].startswith("a valid label must be an empty string")


@pytest.mark.parametrize("name", ['"../../x"', '"-rf"', '"a\\0b"', "Net-Tools", "a_b"])
def test_pod_names_the_api_server_refuses(name: str) -> None:
    text = _pod(name=name)
    (line, message), *_ = _findings(text, "object-name-invalid")
    assert "name:" in text.splitlines()[line - 1]
    assert "is invalid: metadata.name: Invalid value: " in message
    assert SUBDOMAIN_RULE in message
    assert "\0" not in message


@pytest.mark.parametrize(
    ("api", "kind", "name", "rule"),
    [
        ("apps/v1", "StatefulSet", "db.main", LABEL_RULE),
        ("apps/v1", "Deployment", "web_1", SUBDOMAIN_RULE),
        ("apps/v1", "DaemonSet", "-ds", SUBDOMAIN_RULE),
    ],
)
def test_each_kind_has_its_rule(api: str, kind: str, name: str, rule: str) -> None:
    text = SEED + DOC.format(api=api, kind=kind, name=name)
    found = _findings(text, "object-name-invalid")
    assert len(found) == 1 and rule in found[0][1], found
    assert f'{kind} "{name}" is invalid' in found[0][1]


def test_accepted_names_pass() -> None:
    text = SEED + DOC.format(api="apps/v1", kind="Deployment", name="web.v1")
    assert _findings(text, "object-name-invalid") == []


def test_namespace_names_are_labels() -> None:
    text = SEED.replace(
        "kind: Namespace\nmetadata:\n  name: multus-network-attachments\n",
        "kind: Namespace\nmetadata:\n  name: multus.attachments\n",
    )
    found = _findings(text, "object-name-invalid")
    assert any(
        'Namespace "multus.attachments" is invalid' in m and LABEL_RULE in m for _, m in found
    )


def test_labels_selectors_annotations_and_containers() -> None:
    text = _pod(
        labels="{app: ok, bad/key/x: v, k: -v}",
        annotations='{"Example.com/ok": x, "-bad": y}',
        selector="{zone: a_b, -x: y}",
        containers="[{name: Main, image: ubuntu}, {name: Main, image: ubuntu}]",
    )
    labels = _findings(text, "label-invalid")
    assert any('metadata.labels: Invalid value: "bad/key/x"' in m for _, m in labels)
    assert any('metadata.labels: Invalid value: "-v"' in m for _, m in labels)
    assert any('spec.nodeSelector: Invalid value: "-x"' in m for _, m in labels)
    assert not any('"a_b"' in m for _, m in labels)
    keys = _findings(text, "annotation-key-invalid")
    assert len(keys) == 1 and '"-bad"' in keys[0][1] and "-bad" in keys[0][1].split(" | ")[0]
    containers = _findings(text, "container-name-invalid")
    assert sum("Duplicate value" in m for _, m in containers) == 1
    assert sum(LABEL_RULE in m for _, m in containers) == 2


def test_node_labels() -> None:
    text = SEED.replace(
        "    - name: multi-homed-wrk-1\n      role: agent\n",
        "    - name: multi-homed-wrk-1\n      role: agent\n      labels: {zone/a/b: x}\n",
    )
    found = _findings(text, "label-invalid")
    assert len(found) == 1 and "zone/a/b" in found[0][1] and "labels:" in found[0][1]


def test_a_nul_byte_in_a_nic_name() -> None:
    text = SEED.replace("{name: ens224, network: vlan50}", '{name: "ens\\0x", network: vlan50}', 1)
    found = [f for f in run_checks(load_lab_text(text, "lab.yaml")) if f.id == "nic-name-invalid"]
    assert len(found) == 1 and "NUL byte" in found[0].message and found[0].kind is Kind.REFUSED
    assert found[0].location is not None
    assert '"ens\\0x"' in text.splitlines()[found[0].location.line - 1]
