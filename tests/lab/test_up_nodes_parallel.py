"""The nodes step's workers (``nodeup``): a node failing half-way in a worker, or a worker
killed half-way through a node, fails ``up`` with the node named and rolls everything back
(the other nodes, their links and the dhcp daemons other workers started); and a lab made
by several workers is the one a single process makes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from labkit import host_snapshot

from multihome.lab import api, canal, processes
from multihome.spec import load_lab_text

AGENTS = 5
FAILING = "par-wrk-4"


def _lab_text() -> str:
    nodes = ["    - {name: par-cpl-1, role: server, nics: "
             "[{name: ens192, network: vlan40, address: 172.16.40.10}]}"]  # fmt: skip
    pods = []
    for i in range(1, AGENTS + 1):
        nodes.append(
            f"    - {{name: par-wrk-{i}, role: agent, nics: [{{name: ens192, network: vlan40, "
            f"address: 172.16.40.{10 + i}}}, {{name: ens256, network: vlan60}}]}}"
        )
        pods.append(
            f"""---
apiVersion: v1
kind: Pod
metadata:
  name: probe-{i}
  namespace: apps
  annotations: {{k8s.v1.cni.cncf.io/networks: services}}
spec:
  nodeName: par-wrk-{i}
  containers:
    - {{name: probe, image: ubuntu, command: ["sleep", "infinity"]}}
"""
        )
    return (
        """apiVersion: multihome.dev/v1alpha1
kind: Lab
metadata:
  name: parnodes
spec:
  networks:
    - {name: vlan40, vlan: 40, subnet: 172.16.40.0/24, gateway: 172.16.40.1}
    - name: vlan60
      vlan: 60
      subnet: 172.16.60.0/24
      dhcp: {range: 172.16.60.100-172.16.60.199, router: false}
  nodes:
"""
        + "\n".join(nodes)
        + """
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
metadata: {name: services, namespace: apps}
spec:
  config: '{"cniVersion": "0.3.1", "type": "macvlan", "master": "ens256", "mode": "bridge", "ipam": {"type": "dhcp"}}'
"""
        + "".join(pods)
    )


def _processes_of(root: Path) -> list[int]:
    """Processes that carry the run's state dir in their environment (every one a lab
    starts does), this one's excepted."""
    wanted = f"MULTIHOME_STATE_DIR={root}".encode()
    return [
        int(pid)
        for pid in os.listdir("/proc")
        if pid.isdigit() and int(pid) != os.getpid() and wanted in processes.environment(int(pid))
    ]


@pytest.fixture
def lab(state_root: Path, require_sandbox: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    if os.geteuid() != 0:
        pytest.skip("up runs as root here")
    monkeypatch.setenv("MULTIHOME_NODE_WORKERS", "2")
    return load_lab_text(_lab_text(), "parnodes.yaml", state_root)


@pytest.mark.parametrize("how", ["raises", "worker killed"])
def test_a_node_failing_in_a_worker_rolls_back_everything(
    how: str, lab: Any, state_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = host_snapshot()
    real = canal.write_conflist
    seen = tmp_path / "seen"

    def failing(node: Any, where: Any) -> Any:  # runs in a worker, after the node's links
        if node.name == FAILING:
            # fail once the nodes made before (by either worker) run their dhcp daemons
            deadline = time.monotonic() + 10
            while len(_processes_of(state_root)) < 3 and time.monotonic() < deadline:
                time.sleep(0.01)
            seen.write_text(str(len(_processes_of(state_root))))
            if how == "worker killed":
                os.kill(os.getpid(), signal.SIGKILL)
            raise OSError(28, "No space left on device (injected)")
        return real(node, where)

    monkeypatch.setattr(canal, "write_conflist", failing)
    with pytest.raises(api.LabError) as caught:
        api.up(lab)
    message = str(caught.value)
    assert "rolled back" in message
    if how == "raises":
        assert f"node {FAILING}: [Errno 28] No space left on device (injected)" in message
    else:
        assert "a worker making nodes died" in message and f"not made: {FAILING}" in message
    assert int(seen.read_text()) >= 3  # the other nodes' daemons ran when it failed
    assert not (state_root / "parnodes").exists()
    assert _processes_of(state_root) == []
    assert host_snapshot() == before


def test_workers_make_the_lab_one_process_makes(
    lab: Any, state_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same links, addresses, routes and neighbour entries in every node, with two
    workers as with one (MACs and indexes aside), and every dhcp daemon up."""
    views = []
    for workers in ("2", "1"):
        monkeypatch.setenv("MULTIHOME_NODE_WORKERS", workers)
        status = api.up(lab)
        try:
            assert all(p["phase"] == "Running" for p in status["pods"])
            views.append(_view())
        finally:
            api.down("parnodes")
    assert views[0] == views[1]
    assert len(views[0]) == AGENTS + 1


def _view() -> dict[str, Any]:
    """Each node's links (name, kind, state, mtu, master), addresses, routes and
    permanent neighbours (by address), read through ``exec``."""
    found: dict[str, Any] = {}
    for node in [f"par-wrk-{i}" for i in range(1, AGENTS + 1)] + ["par-cpl-1"]:
        out = []
        for argv in (
            ["ip", "-br", "-4", "addr"],
            ["ip", "route", "show", "table", "main"],
            ["ip", "-4", "neigh", "show", "nud", "permanent"],
            ["cat", "/etc/rancher/rke2/config.yaml", "/etc/cni/net.d/10-canal.conflist"],
            ["ls", "/opt/cni/bin"],
        ):
            done = subprocess.run(
                api.exec_argv(node, argv, "parnodes"), capture_output=True, text=True, check=True
            )
            lines = sorted(_no_cali(_no_mac(line)) for line in done.stdout.splitlines())
            out.append([line for line in lines if line])
        found[node] = out
    return found


def _no_mac(line: str) -> str:
    """Without MACs and the peer's index in ``ens192@if7`` (the order the switch's ports
    were made in)."""
    words = ("MAC" if word.count(":") == 5 else word for word in line.split())
    return " ".join(re.sub(r"@if[0-9]+$", "", word) for word in words)


def _no_cali(line: str) -> str:
    """A pod's cali veth is named from its container id: per run."""
    return " ".join("cali" if word.startswith("cali") else word for word in line.split())
