"""Faults as an unprivileged user: every verb inside the rootless seed lab (its links, tbf on
a NIC, its processes frozen), undone by clear, and down after faults leaves nothing. The
test runs as root and drops to ``nobody`` with setpriv."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from labkit import ROOTLESS_SKIPS, Rootless, as_nobody, host_snapshot

NET_TOOLS = "multus-network-attachments/net-tools"

pytestmark = ROOTLESS_SKIPS


@pytest.fixture
def nobody() -> Iterator[Rootless]:
    with as_nobody("mh-unpriv-faults-") as rootless:
        yield rootless


WRK1 = "multi-homed-wrk-1"


def test_faults_as_nobody(nobody: Rootless) -> None:
    state = nobody.base / "state"
    before = host_snapshot()
    up = nobody.run("up")
    if "user namespaces" in up.stderr and up.returncode == 2:
        pytest.skip(f"unprivileged user namespaces are not allowed here: {up.stderr.strip()}")
    assert up.returncode == 0, up.stderr
    page = ["exec", NET_TOOLS, "--", "curl", "-s", "--max-time", "2", "172.16.60.31"]
    assert nobody.run(*page).returncode == 0

    for fault in (
        ("cut", "vlan60"),
        ("stop-dhcp", "vlan50"),
        ("link-down", f"{WRK1}:ens224"),
        ("rate", "multi-homed-wrk-2:ens224", "5mbit"),
        ("stop", "multi-homed-wrk-3"),
    ):
        done = nobody.run("fault", *fault)
        assert done.returncode == 0, done.stderr
    assert nobody.run(*page).returncode != 0  # vlan60 is cut: net2 reaches nothing
    qdisc = nobody.run("exec", "multi-homed-wrk-2", "--", "tc", "qdisc", "show", "dev", "ens224")
    assert "tbf" in qdisc.stdout, qdisc.stderr
    listed = json.loads(nobody.run("fault", "list", "-o", "json").stdout)
    assert [f["verb"] for f in listed] == ["cut", "stop-dhcp", "link-down", "rate", "stop"]

    cleared = nobody.run("fault", "clear")
    assert cleared.returncode == 0, cleared.stderr
    # mended: the page comes back (ARP of a segment just back may take a try or two)
    assert any(nobody.run(*page).returncode == 0 for _ in range(5))
    assert nobody.run("verify").returncode == 0

    for fault in (("stop-dhcp", "vlan60"), ("stop", WRK1)):  # down with faults in place
        assert nobody.run("fault", *fault).returncode == 0
    down = nobody.run("down")
    assert down.returncode == 0, down.stderr
    assert list(state.iterdir()) == []
    assert host_snapshot() == before
