"""graph and capture as an unprivileged user, where the lab runs: the seed up as ``nobody``
(setpriv), its picture drawn, an HTTP request captured on the host's NIC; down leaves nothing."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from labkit import ROOTLESS_SKIPS, as_nobody, run_quiet

NET_TOOLS = "multus-network-attachments/net-tools"

pytestmark = [
    *ROOTLESS_SKIPS,
    pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump missing"),
    pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz missing"),
]


@pytest.fixture
def nobody() -> Iterator[tuple[list[str], Path]]:
    with as_nobody("mh-unpriv-graph-", ("out",)) as rootless:
        yield rootless.mh, rootless.base / "out"


run = run_quiet


def test_graph_and_capture_as_nobody(nobody: tuple[list[str], Path]) -> None:
    mh, out = nobody
    up = run(*mh, "up")
    if up.returncode != 0 and "user namespace" in up.stderr:
        pytest.skip(f"unprivileged user namespaces not allowed: {up.stderr.strip()}")
    assert up.returncode == 0, up.stderr
    drawn = run(*mh, "graph", "-o", str(out / "seed.svg"))
    assert drawn.returncode == 0, drawn.stderr
    assert "172.16.50." in (out / "seed.svg").read_text()  # a lease, from the running lab

    capture = subprocess.Popen(
        # SYNs only: a capture that starts while a request is in flight would
        # otherwise count that request's later segments
        [*mh, "capture", "web:eth0", "-c", "3", "tcp dst port 80 and tcp[tcpflags] & tcp-syn != 0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd="/",
    )  # fmt: skip
    try:
        for _ in range(100):  # until the capture listens, then a request through it
            get = run(*mh, "exec", NET_TOOLS, "--", "curl", "-s", "-o", "/dev/null", "172.16.60.31")
            assert get.returncode == 0, get.stderr
            if capture.poll() is not None:
                break
            time.sleep(0.1)
        stdout, stderr = capture.communicate(timeout=30)
    finally:
        if capture.poll() is None:
            capture.kill()
            capture.wait()
    assert capture.returncode == 0, stderr
    assert len(stdout.splitlines()) == 3  # COUNT
    assert all("> 172.16.60.31.80: Flags [S]" in line for line in stdout.splitlines())
    assert "a packet socket: the lab runs without root" in stderr
