"""The lab's API when the lab runs as an unprivileged user (``nobody``, through setpriv): up
starts the server without root (loopback and files only), kubectl reads it and execs through
it, down stops it; nothing left behind."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import NOBODY, ROOTLESS_SKIPS, Rootless, as_nobody, run_quiet

from multihome.lab import processes

KUBECTL = shutil.which("kubectl")

pytestmark = [
    *ROOTLESS_SKIPS,
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (make test installs it)"),
]


@pytest.fixture
def nobody() -> Iterator[Rootless]:
    with as_nobody("mh-unpriv-kube-") as rootless:
        yield rootless


def test_api_of_a_rootless_lab(nobody: Rootless) -> None:
    base, mh, run = nobody.base, nobody.mh, run_quiet
    up = run(*mh, "up")
    if "user namespaces" in up.stderr and up.returncode == 2:
        pytest.skip(f"unprivileged user namespaces are not allowed here: {up.stderr.strip()}")
    assert up.returncode == 0, up.stderr
    path = run(*mh, "kubeconfig").stdout.strip()
    assert path == str(base / "state" / "multi-homed" / "kubeconfig")
    assert os.stat(path).st_uid == NOBODY
    kubectl = [*nobody.setpriv, "env", f"HOME={base / 'home'}", str(KUBECTL), "--kubeconfig", path]
    nodes = run(*kubectl, "get", "nodes", "-o", "name")
    assert nodes.returncode == 0, nodes.stderr
    assert len(nodes.stdout.split()) == 6
    done = run(
        *kubectl, "exec", "-n", "multus-network-attachments", "net-tools", "--", "ip", "-br", "addr"
    )
    assert done.returncode == 0, done.stderr
    assert "net1" in done.stdout and "net2" in done.stdout
    # a write: the reconcile runs as nobody too, and attaches the new pod for real
    pod = (
        '{"apiVersion":"v1","kind":"Pod","metadata":{"name":"np","namespace":'
        '"multus-network-attachments","annotations":{"k8s.v1.cni.cncf.io/networks":'
        '"macvlan-private-dhcp"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}'
    )
    made = subprocess.run([*kubectl, "create", "--validate=false", "-f", "-"], input=pod,
                          capture_output=True, text=True, check=False, cwd="/", timeout=120)  # fmt: skip
    assert made.returncode == 0, made.stderr
    jsonpath = ["-o", "jsonpath={.status.phase}"]
    ns = ["-n", "multus-network-attachments"]
    deadline = time.monotonic() + 120
    while run(*kubectl, "get", "pod", *ns, "np", *jsonpath).stdout != "Running":
        assert time.monotonic() < deadline, run(*kubectl, "get", "pod", *ns, "np", "-o", "yaml")
        time.sleep(0.2)
    done = run(*kubectl, "exec", *ns, "np", "--", "ip", "-br", "-4", "addr", "show", "net1")
    assert done.returncode == 0 and "172.16.60." in done.stdout, done.stderr
    gone = run(*kubectl, "delete", "pod", *ns, "np", "--timeout=120s")
    assert gone.returncode == 0, gone.stderr
    # the lab's (its server, started before the lab existed, names it in its environment)
    mine = f"MULTIHOME_STATE_DIR={base / 'state'}".encode()
    ours = [
        int(pid)
        for pid in os.listdir("/proc")
        if pid.isdigit()
        and b"multihome.kube" in _cmdline(pid)
        and (
            str(base) in _cmdline(pid).decode(errors="replace")
            or mine in processes.environment(int(pid))
        )
    ]
    server = [pid for pid in ours if b"multihome.kube\0serve" in _cmdline(str(pid))]
    assert len(server) == 1 and os.stat(f"/proc/{server[0]}").st_uid == NOBODY
    # the reconcile it keeps ready for the next write runs as nobody too
    assert all(os.stat(f"/proc/{pid}").st_uid == NOBODY for pid in ours)
    down = run(*mh, "down")
    assert down.returncode == 0, down.stderr
    for pid in ours:
        assert not os.path.exists(f"/proc/{pid}") or b"multihome.kube" not in _cmdline(str(pid))
    assert list((base / "state").iterdir()) == []


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
