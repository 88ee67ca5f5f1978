"""The lab's API server started ahead of its lab (``apiserver.prestart``): ``up`` adopts it
(recorded in the journal, the lab's token in its environment, serving); every other end
stops it, and a server whose ``up`` died ends at once; nothing of it outlives ``down``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from multihome.lab import apiserver, ns, processes
from multihome.lab.state import LabState

LAB = Path(__file__).parent / "labs" / "kill.yaml"
CLI = [sys.executable, "-c", "from multihome.cli import main; main()"]


def _gone(daemon: processes.Daemon, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while daemon.alive():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTIHOME_")}
    env["MULTIHOME_STATE_DIR"] = str(root)
    return env


def _servers_of(root: Path) -> list[int]:
    """The API servers started for state root ``root`` (they inherit it)."""
    servers = ns.pids_with("cmdline", b"multihome.kube")
    return [pid for pid in ns.pids_with("environ", f"MULTIHOME_STATE_DIR={root}".encode())
            if pid in servers]  # fmt: skip


def test_release_stops_a_server_never_adopted() -> None:
    early = apiserver.prestart()
    assert early is not None and early.daemon.alive()
    early.release()
    assert not early.daemon.alive()
    early.release()  # idempotent


def test_a_server_whose_up_died_ends_by_itself() -> None:
    early = apiserver.prestart()
    assert early is not None
    os.close(early.pipe)  # as when up dies: its end of the pipe closes
    early.pipe = -1
    assert _gone(early.daemon), "the early server outlived its up"


def test_a_lab_with_another_token_does_not_adopt_it(tmp_path: Path) -> None:
    (tmp_path / "state").mkdir()
    state = LabState("other", root=tmp_path / "state")
    state.acquire()
    try:
        state.prepare()
        early = apiserver.prestart()
        assert early is not None
        assert state.token != early.lab_token
        assert early.adopt(state) is None
        assert not early.daemon.alive()
        assert ("process", apiserver.KUBE_API) not in state.objects()
    finally:
        state.release()


def test_up_adopts_it_and_down_stops_it(tmp_path: Path, require_sandbox: None) -> None:
    root = tmp_path / "state"
    try:
        up = subprocess.run([*CLI, "up", str(LAB)], env=_env(root), capture_output=True,
                            text=True, timeout=120, check=False)  # fmt: skip
        assert up.returncode == 0, up.stderr
        state = LabState("killme", root=root)
        entry = state.objects()[("process", apiserver.KUBE_API)]
        assert entry["argv"][-2:] == ["serve", "-"]
        pid, started = int(entry["pid"]), int(entry["start_time"])
        assert processes.proves(pid, started, {processes.ENV_LAB: state.token})
        assert _servers_of(root) == [pid]
        kubeconfig = json.dumps(sorted(os.listdir(state.dir)))
        assert "kubeconfig" in kubeconfig
        log = (state.dir / f"{apiserver.KUBE_API}.log").read_text()
        assert "serving lab killme" in log
        # up again: the lab runs; the server it started ahead is stopped, the lab's stays
        again = subprocess.run([*CLI, "up", str(LAB)], env=_env(root), capture_output=True,
                               text=True, timeout=120, check=False)  # fmt: skip
        assert again.returncode == 0, again.stderr
        assert "already up" in again.stdout
        assert _servers_of(root) == [pid]
    finally:
        down = subprocess.run([*CLI, "down"], env=_env(root), capture_output=True, text=True,
                              timeout=120, check=False)  # fmt: skip
    assert down.returncode == 0, down.stderr
    assert _servers_of(root) == []


@pytest.mark.parametrize("how", ["refused", "missing"])
def test_up_that_builds_nothing_leaves_no_server(tmp_path: Path, how: str) -> None:
    root = tmp_path / "state"
    lab = tmp_path / "lab.yaml"
    if how == "refused":  # a NAD config a real cluster's Multus refuses
        lab.write_text(LAB.read_text() + "\n---\n" + BAD_NAD)
    up = subprocess.run([*CLI, "up", str(lab)], env=_env(root), capture_output=True, text=True,
                        timeout=120, check=False)  # fmt: skip
    assert up.returncode != 0
    assert ("not built" if how == "refused" else "does not exist") in up.stderr, up.stderr
    assert _servers_of(root) == []
    assert not root.exists() or os.listdir(root) == []


BAD_NAD = """apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: broken, namespace: default}
spec:
  config: 'null'
"""
