"""multihome capture: a DHCP exchange captured on the segment while a pod is attached (pcap
read back by tcpdump), a short HTTP stream on a pod's interface printed live and stopped with
SIGINT (as Ctrl-C), bad targets and filters refused with exit 2; no tcpdump left behind."""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from multihome.lab import api
from multihome.spec import load_lab_text, seed_path

pytestmark = pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump not installed")
NET_TOOLS = "multus-network-attachments/net-tools"
LATE_POD = """
---
apiVersion: v1
kind: Pod
metadata:
  name: late-comer
  namespace: multus-network-attachments
  annotations:
    k8s.v1.cni.cncf.io/networks: macvlan-longhorn-dhcp
spec:
  nodeName: multi-homed-wrk-2
  containers:
  - {name: c, image: busybox, command: ["sleep", "infinity"]}
"""


def start_capture(*args: str) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    """The capture command, returned once it says it captures; its stderr lines go on
    into the queue (a thread reads them: the pipe never fills)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "multihome", "capture", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in proc.stderr or ():
            lines.put(line)
        lines.put("")  # end of stderr: the command is gone

    threading.Thread(target=read, daemon=True).start()
    seen = []
    try:
        while not (seen and seen[-1].startswith("capturing on")):
            seen.append(lines.get(timeout=30))
    except queue.Empty:
        proc.kill()
        proc.wait()
        pytest.fail(f"capture did not start: {''.join(seen)}")
    return proc, lines


def rest(lines: queue.Queue[str]) -> str:
    """Every stderr line left, up to the end of stderr (the reader thread's mark)."""
    return "".join(iter(lambda: lines.get(timeout=30), ""))


def tcpdumps() -> list[str]:
    done = subprocess.run(["pgrep", "-a", "-x", "tcpdump"], capture_output=True, text=True)
    return done.stdout.splitlines()


def test_dhcp_exchange_of_a_pod_being_attached(seed_lab: str, tmp_path: Path) -> None:
    before = tcpdumps()
    pcap = tmp_path / "dhcp.pcap"
    proc, lines = start_capture(seed_lab, "vlan50", "-c", "4", "-w", str(pcap), "udp", "port", "67")
    api.up(load_lab_text(seed_path().read_text() + LATE_POD, "late.yaml"))
    proc.wait(timeout=60)
    err = rest(lines)
    assert proc.returncode == 0, err
    assert "4 packets captured" in err
    decoded = subprocess.run(
        ["tcpdump", "-r", str(pcap), "-n", "-v"], capture_output=True, text=True, check=True
    ).stdout
    kinds = [line.split(":")[-1].strip() for line in decoded.splitlines() if "DHCP-Message" in line]
    assert kinds == ["Discover", "Offer", "Request", "ACK"]
    assert tcpdumps() == before


def test_stream_live_until_interrupted(seed_lab: str) -> None:
    before = tcpdumps()
    proc, lines = start_capture(f"{NET_TOOLS}:net2", "tcp", "port", "80")
    argv = api.exec_argv(NET_TOOLS, ["curl", "-s", "-o", "/dev/null", "172.16.60.31"], seed_lab)
    subprocess.run(argv, check=True, timeout=30)
    proc.send_signal(signal.SIGINT)
    out = proc.stdout.read() if proc.stdout else ""  # stderr is the reader thread's alone
    proc.wait(timeout=30)
    err = rest(lines)
    assert proc.returncode == 0, err
    assert "172.16.60.31.80: Flags [S]" in out and "HTTP: GET / HTTP/1.1" in out, err
    assert "packets captured" in err
    assert tcpdumps() == before


@pytest.mark.parametrize(
    ("target", "said"),
    [
        ("vlan99", "Networks: vlan40, vlan50, vlan60"),
        ("multi-homed-wrk-1", "its NICs: ens192, ens224, ens256"),
        ("multi-homed-wrk-1:eth7", "has no NIC 'eth7'"),
        (f"{NET_TOOLS}:net9", "its interfaces: eth0, net1, net2"),
        ("web:eth1", "host web has no NIC 'eth1'"),
    ],
)
def test_bad_target(seed_lab: str, target: str, said: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "multihome", "capture", seed_lab, target],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2 and said in done.stderr and "Traceback" not in done.stderr


def test_bad_filter_and_file(seed_lab: str, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "multihome", "capture", "vlan40", "udp", "port"],
        capture_output=True, text=True, timeout=30, env=dict(os.environ),
    )  # fmt: skip
    assert done.returncode == 2 and "refuses the filter 'udp port'" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "multihome", "capture", "vlan40", "-w", str(tmp_path / "no" / "x.pcap")],
        capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    assert done.returncode == 2 and "cannot write" in done.stderr
