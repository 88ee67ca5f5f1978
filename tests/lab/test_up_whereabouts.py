"""A lab with whereabouts IPAM (root only): the real macvlan plugin runs the lab's whereabouts
on each node over CNI; addresses are unique across nodes, pods reach each other over the
VLAN, a removed pod's address is released on reconcile and the store survives it."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkit import host_snapshot, ping, sandbox_unavailable_reason
from typer.testing import CliRunner

from multihome.cli import app
from multihome.lab import api, ipam, sandbox
from multihome.spec import LabFile, load_lab_text

LAB = Path(__file__).parent / "labs" / "whereabouts.yaml"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="up runs as root here"),
    pytest.mark.skipif(not os.path.isdir("/usr/lib/cni"), reason="containernetworking-plugins"),
]


def _lab(*edits: tuple[str, str]) -> LabFile:
    text = LAB.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return load_lab_text(text, "whereabouts.yaml", LAB.parent)


@pytest.fixture
def running(state_root: Path) -> Iterator[dict[str, Any]]:
    reason = sandbox_unavailable_reason()
    if reason:
        pytest.skip(reason)
    before = host_snapshot()
    try:
        yield api.up(_lab())
    finally:
        api.down("wbtest")
        assert host_snapshot() == before


def _net1(status: dict[str, Any]) -> dict[str, str]:
    found = {}
    for pod in status["pods"]:
        for entry in pod["network_status"]:
            if entry["interface"] == "net1":
                found[f"{pod['namespace']}/{pod['name']}"] = entry["ips"][0]
    return found


def _reach(status: dict[str, Any], src: str, dst: str) -> bool:
    sb = sandbox.Sandbox.from_dict(status["sandbox"])
    netns = next(p["netns"] for p in status["pods"] if f"{p['namespace']}/{p['name']}" == src)
    return bool(sb.call(ping, netns, dst))


MACVLAN_PODS = (
    "apps/probe-wb-wrk-1",
    "apps/probe-wb-wrk-2",
    "apps/web-0",
    "apps/web-1",
    "apps/web-2",
)


def test_unique_addresses_across_nodes_reachable_and_released(running: dict[str, Any]) -> None:
    both = _net1(running)
    net1 = {ref: both[ref] for ref in MACVLAN_PODS}
    nodes = {p["node"] for p in running["pods"]}
    assert nodes == {"wb-wrk-1", "wb-wrk-2"}
    # the bridge NAD (cniVersion 1.0.0, a conflist) has its own pool (network_name vlan71)
    assert {both["apps/left"], both["apps/right"]} == {"192.168.71.1", "192.168.71.2"}
    assert _reach(running, "apps/left", both["apps/right"])
    # one pool for the cluster: five distinct addresses, the lowest from range_start on,
    # 192.168.70.12 excluded
    addresses = sorted(ipaddress.ip_address(a) for a in net1.values())
    assert [str(a) for a in addresses] == [f"192.168.70.{i}" for i in (10, 11, 13, 14, 15)]

    # pods on different nodes reach each other over the VLAN
    assert _reach(running, "apps/probe-wb-wrk-1", net1["apps/probe-wb-wrk-2"])
    assert _reach(running, "apps/probe-wb-wrk-2", net1["apps/probe-wb-wrk-1"])

    # the store as get pools reads it: who holds what, on which node
    pools = {p["name"]: p for p in ipam.lab_pools(running)}
    assert set(pools) == {"192.168.70.0-24", "vlan71-192.168.71.0-24"}
    pool = pools["192.168.70.0-24"]
    held = {a["ip"]: (a["podref"], a["node"], a["ifName"]) for a in pool["allocations"]}
    assert held[net1["apps/probe-wb-wrk-2"]] == ("apps/probe-wb-wrk-2", "wb-wrk-2", "net1")
    shown = CliRunner().invoke(app, ["get", "pools"])
    assert shown.exit_code == 0, shown.output
    row = next(r.split() for r in shown.output.splitlines() if "apps/probe-wb-wrk-2" in r)
    assert row == ["192.168.70.0-24", "192.168.70.0/24", net1["apps/probe-wb-wrk-2"],
                   "apps/probe-wb-wrk-2", "wb-wrk-2", "net1"]  # fmt: skip

    # reconcile: one replica fewer releases its address; the others keep theirs
    status = api.up(_lab(("replicas: 3", "replicas: 2")))
    after = _net1(status)
    assert "apps/web-2" not in after
    assert all(after[ref] == both[ref] for ref in after)
    pool = next(p for p in ipam.lab_pools(status) if p["name"] == "192.168.70.0-24")
    assert net1["apps/web-2"] not in {a["ip"] for a in pool["allocations"]}
    # and a new pod gets the lowest free address: the one released
    status = api.up(_lab())
    assert _net1(status)["apps/web-2"] == net1["apps/web-2"]
    assert len(set(_net1(status).values())) == 7
