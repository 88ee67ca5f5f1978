"""Shared bits for the plan tests: small labs as text, and golden JSON files."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from multihome.spec import LabFile, load_lab_text

UPDATE = os.environ.get("MULTIHOME_UPDATE_GOLDEN") == "1"
"""``MULTIHOME_UPDATE_GOLDEN=1 pytest tests/plan tests/render`` rewrites the goldens."""

LAB = """\
apiVersion: multihome.dev/v1alpha1
kind: Lab
metadata:
  name: small
spec:
  networks:
    - {name: mgmt, subnet: 10.0.0.0/24, gateway: 10.0.0.1}
    - name: data
      subnet: 10.1.0.0/24
      dhcp: {range: 10.1.0.100-10.1.0.200}
  nodes:
    - name: cp-1
      role: server
      nics: [{name: eth0, network: mgmt, address: 10.0.0.10}]
    - name: wk-1
      role: agent
      nics: [{name: eth0, network: mgmt, address: 10.0.0.11}, {name: eth1, network: data}]
    - name: wk-2
      role: agent
      labels: {zone: b}
      nics: [{name: eth0, network: mgmt, address: 10.0.0.12}, {name: eth1, network: data}]
    - name: wk-3
      role: agent
      nics: [{name: eth0, network: mgmt, address: 10.0.0.13}, {name: eth1, network: data}]
  cluster: {canal: {iface: eth0, backend: host-gw}}
---
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: data, namespace: apps}
spec:
  config: '{"cniVersion": "0.4.0", "type": "macvlan", "master": "eth1",
            "ipam": {"type": "dhcp"}}'
"""
"""One server, three agents (wk-2 labelled zone=b), a DHCP data network and its NAD."""


def lab(*documents: str, base: str = LAB, replace: tuple[tuple[str, str], ...] = ()) -> LabFile:
    """The small lab (edited by ``replace`` pairs) with more YAML documents appended."""
    text = base
    for old, new in replace:
        assert old in text, old
        text = text.replace(old, new)
    for doc in documents:
        text += "---\n" + doc
    return load_lab_text(text, "lab.yaml")


def check_golden(actual: str, golden: Path) -> None:
    """``actual`` equals the golden file (rewritten instead under MULTIHOME_UPDATE_GOLDEN=1)."""
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(actual, encoding="utf-8")
        return
    assert golden.exists(), f"no golden {golden}; run with MULTIHOME_UPDATE_GOLDEN=1"
    expected = golden.read_text(encoding="utf-8")
    if actual != expected:
        diff = difflib.unified_diff(
            expected.splitlines(True), actual.splitlines(True), str(golden), "actual", n=2
        )
        raise AssertionError("".join(list(diff)[:200]))
