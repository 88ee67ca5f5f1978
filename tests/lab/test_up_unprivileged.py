"""The seed lab as an unprivileged user, end to end through the command line: up, get,
exec (addresses from DHCP, the welcome page over net2), down; nothing left behind and the
host's network untouched. The test runs as root and drops to ``nobody`` with setpriv."""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Iterator

import pytest
from labkit import ROOTLESS_SKIPS, Rootless, as_nobody, host_snapshot

NET_TOOLS = "multus-network-attachments/net-tools"

pytestmark = ROOTLESS_SKIPS


@pytest.fixture
def nobody() -> Iterator[Rootless]:
    with as_nobody("mh-unpriv-up-") as rootless:
        yield rootless


def test_seed_up_exec_down_as_nobody(nobody: Rootless) -> None:
    state = nobody.base / "state"
    before = host_snapshot()
    up = nobody.run("up")
    if "user namespaces" in up.stderr and up.returncode == 2:
        pytest.skip(f"unprivileged user namespaces are not allowed here: {up.stderr.strip()}")
    assert up.returncode == 0, up.stderr
    assert re.search(r"instance-manager-r-[0-9a-f]{32}", up.stdout)  # Longhorn 1.4's

    pods = json.loads(nobody.run("get", "pods", "-o", "json").stdout)
    assert [p["phase"] for p in pods["items"]] == ["Running"] * 7

    links = json.loads(nobody.run("exec", NET_TOOLS, "--", "ip", "-j", "-4", "addr").stdout)
    addrs = {
        link["ifname"]: ipaddress.ip_interface(f"{a['local']}/{a['prefixlen']}")
        for link in links
        for a in link["addr_info"]
    }
    assert addrs["net1"].network == ipaddress.ip_network("172.16.50.0/24")
    assert addrs["net2"].network == ipaddress.ip_network("172.16.60.0/24")
    page = nobody.run("exec", NET_TOOLS, "--", "curl", "-s", "--max-time", "5", "172.16.60.31")
    assert page.returncode == 0 and "Welcome to nginx!" in page.stdout

    down = nobody.run("down")
    assert down.returncode == 0, down.stderr
    assert list(state.iterdir()) == []
    assert host_snapshot() == before
