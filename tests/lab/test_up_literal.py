"""A real ``up`` whose plugin error quotes markup-like text from the lab file: the bridge
plugin refuses the bridge name ``[/x][bold]:100:`` and echoes it; the command line prints it
as written (no MarkupError, no lost ``[bold]``, no emoji for ``:100:``), with the right exit
codes, as validate's warning, up's error, up --keep-going's stuck pod and get's table."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from labkit import host_snapshot, sandbox_unavailable_reason

NAME = "[/x][bold]:100:"  # 15 bytes: a name the plugin takes, and the kernel refuses
LAB = """\
apiVersion: multihome.dev/v1alpha1
kind: Lab
metadata: {name: literal}
spec:
  networks:
    - {name: vlan40, vlan: 40, subnet: 172.16.40.0/24, gateway: 172.16.40.1}
  nodes:
    - name: lit-cpl-1
      role: server
      nics: [{name: ens192, network: vlan40, address: 172.16.40.10}]
    - name: lit-wrk-1
      role: agent
      nics: [{name: ens192, network: vlan40, address: 172.16.40.11}]
  cluster:
    distribution: rke2
    version: v1.25.9+rke2r1
    cni: [multus, canal]
    canal: {iface: ens192, backend: host-gw}
---
apiVersion: v1
kind: Namespace
metadata: {name: apps}
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: odd, namespace: apps}
spec:
  config: '{"cniVersion": "0.3.1", "type": "bridge", "bridge": "BRIDGE",
    "ipam": {"type": "host-local", "subnet": "10.99.0.0/24"}}'
---
apiVersion: v1
kind: Pod
metadata:
  name: probe
  namespace: apps
  annotations: {k8s.v1.cni.cncf.io/networks: odd}
spec:
  containers:
    - {name: probe, image: ubuntu, command: ["sleep", "infinity"]}
""".replace("BRIDGE", NAME)


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "multihome", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def _literal(text: str) -> None:
    assert NAME in text, text
    assert "💯" not in text and "Traceback" not in text and "MarkupError" not in text, text


@pytest.mark.skipif(os.geteuid() != 0, reason="up runs as root here")
@pytest.mark.skipif(not os.path.isdir("/usr/lib/cni"), reason="containernetworking-plugins")
@pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq"), reason="dnsmasq-base missing")
def test_a_plugin_error_quoting_markup_arrives_verbatim(tmp_path: Path, state_root: Path) -> None:
    reason = sandbox_unavailable_reason()
    if reason:
        pytest.skip(reason)
    lab = tmp_path / "lab.yaml"
    lab.write_text(LAB)
    before = host_snapshot()

    done = _cli("validate", str(lab))
    assert done.returncode == 0, done.stdout + done.stderr
    _literal(done.stdout)

    done = _cli("up", str(lab))
    assert done.returncode == 1, done.stdout + done.stderr
    _literal(done.stderr)
    assert f'bridge ADD (network odd): failed to create bridge "{NAME}"' in done.stderr
    assert not (state_root / "literal").exists()  # rolled back

    try:
        done = _cli("up", "--keep-going", str(lab))
        assert done.returncode == 1, done.stdout + done.stderr  # a pod is not Running
        _literal(done.stdout)
        assert "apps/probe is ContainerCreating: " in done.stdout
        done = _cli("get", "pods", "-o", "wide")
        assert done.returncode == 0 and "ContainerCreating" in done.stdout
    finally:
        done = _cli("down", "literal")
    assert done.returncode == 0 and "removed lab literal" in done.stdout
    assert host_snapshot() == before
