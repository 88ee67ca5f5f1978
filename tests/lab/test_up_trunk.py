"""A lab with trunk NICs (root only): ens224 on both agents carries VLAN 50 and 60 tagged
(``ens224.50``, ``vlan60``) and VLAN 70 untagged; a host is on a trunk too (``eth0.60``).
NADs ride on the sub-interfaces (macvlan master ens224.50, dhcp; master vlan60,
whereabouts) and on the trunk NIC itself (VLAN 70). Pods on both agents reach each other
over each VLAN and not across VLANs: verify's reach, isolation and the lab's expect entries
pass. Where the kernel lacks 802.1q (this machine), each sub-interface is its own link on
its VLAN's segment, and ``get`` says so."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkit import ping, sandbox_unavailable_reason
from typer.testing import CliRunner

from multihome import verify
from multihome.cli import app
from multihome.lab import api, netlink, ns, sandbox, trunks
from multihome.plan import build_plan
from multihome.spec import load_lab

LAB = Path(__file__).parent / "labs" / "trunk.yaml"


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    reason = sandbox_unavailable_reason()
    if os.geteuid() != 0 or not os.path.isdir("/usr/lib/cni"):
        reason = "up runs as root here, with containernetworking-plugins"
    if reason:
        pytest.skip(reason)
    mp = pytest.MonkeyPatch()
    mp.setenv("MULTIHOME_STATE_DIR", str(tmp_path_factory.mktemp("trunk") / "state"))
    try:
        yield api.up(load_lab(LAB))
    finally:
        try:
            api.down("trunktest")
        finally:
            mp.undo()


def _links(netns: str) -> dict[str, tuple[str | None, str | None]]:
    """Name -> (kind, master) of every link in ``netns`` ("" : the sandbox's own)."""
    path = netns or ns.ns_file("thread-self", "net")
    with netlink.NetNS(path) as there:
        return {i.name: (i.kind, i.master) for i in there.links()}


def _in_lab(status: dict[str, Any], fn: Any, *args: Any) -> Any:
    return sandbox.Sandbox.from_dict(status["sandbox"]).call(fn, *args)


def test_sub_interfaces_are_built_as_the_kernel_allows(running: dict[str, Any]) -> None:
    mode = trunks.mode(build_plan(load_lab(LAB)))
    assert running["trunks"] == mode.to_dict()
    node = next(n for n in running["nodes"] if n["name"] == "tk-wrk-1")
    inside = _in_lab(running, _links, node["netns"])
    switch = _in_lab(running, _links, "")
    assert {"ens224", "ens224.50", "vlan60"} <= set(inside)
    if mode.mode == trunks.REAL:
        assert inside["ens224.50"][0] == "vlan" and inside["vlan60"][0] == "vlan"
        assert switch["n1-ens224"][1] == trunks.TRUNK_BRIDGE
    else:
        # each sub-interface its own veth, its switch end on its VLAN's segment
        assert inside["ens224.50"][0] == "veth" and inside["vlan60"][0] == "veth"
        assert switch["n1-ens224"][1] == "mh-vlan70"  # untagged: VLAN 70
        assert switch["n1-ens224.50"][1] == "mh-vlan50"
        assert switch["n1-vlan60"][1] == "mh-vlan60"
        assert switch["h0-eth0"][1] is None  # web60's trunk carries VLAN 60 tagged only
        assert switch["h0-eth0.60"][1] == "mh-vlan60"


def test_verify_passes_reach_isolation_and_expect(running: dict[str, Any]) -> None:
    report = verify.run("trunktest")
    failed = [c for c in report.checks if c.status not in ("pass", "skip")]
    assert not failed, report.json_text()
    passed = {(c.id, c.title) for c in report.checks if c.status == "pass"}
    kinds = {check for check, _ in passed}
    assert {"reach", "isolation", "expect"} <= kinds
    assert sum(check == "expect" for check, _ in passed) == 5
    # the pods on VLAN 50 only do not reach VLAN 60's web server, nor VLAN 70
    titles = " / ".join(title for check, title in passed if check == "isolation")
    assert "a-1 does not reach vlan60" in titles and "a-1 does not reach vlan70" in titles


def test_traffic_lands_on_the_vlan_segment(running: dict[str, Any]) -> None:
    """a-1's net1 (macvlan on ens224.50) gets a lease from VLAN 50's DHCP server and
    reaches a-2 on the other agent; b-1 reaches the web server behind eth0.60."""
    pods = {f"{p['namespace']}/{p['name']}": p for p in running["pods"]}
    net1 = {
        ref: next(e["ips"][0] for e in p["network_status"] if e["interface"] == "net1")
        for ref, p in pods.items()
    }
    assert net1["apps/a-1"].startswith("172.16.50.") and net1["apps/b-1"].startswith("172.16.60.")
    assert _in_lab(running, ping, pods["apps/a-1"]["netns"], net1["apps/a-2"]) is True
    assert _in_lab(running, ping, pods["apps/b-1"]["netns"], "172.16.60.31") is True


def test_get_says_how_trunks_are_built(running: dict[str, Any]) -> None:
    note = trunks.Trunking(**running["trunks"]).note
    nodes = CliRunner().invoke(app, ["get", "nodes", "-o", "wide"])
    assert nodes.exit_code == 0, nodes.output
    assert "TRUNKS" in nodes.output
    assert f"ens224[ens224.50=50,vlan60=60] ({note})" in nodes.output
    networks = CliRunner().invoke(app, ["get", "networks"])
    assert networks.exit_code == 0, networks.output
    row = next(line for line in networks.output.splitlines() if line.startswith("vlan50"))
    assert row.rstrip().endswith(f"2 ({note})")
