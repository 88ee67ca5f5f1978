"""up on a lab that runs: a changed file is applied pod by pod (added, removed, replaced),
a change of machines or wires asks for a rebuild (root only)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkit import host_snapshot, sandbox_unavailable_reason

from multihome.lab import api, netlink, sandbox
from multihome.spec import LabFile, load_lab_text

LAB = Path(__file__).parent / "labs" / "workloads.yaml"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="up runs as root here"),
    pytest.mark.skipif(not os.path.isdir("/usr/lib/cni"), reason="containernetworking-plugins"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq"), reason="dnsmasq-base missing"),
]


def _lab(*edits: tuple[str, str]) -> LabFile:
    text = LAB.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return load_lab_text(text, "workloads.yaml", LAB.parent)


@pytest.fixture
def running(state_root: Path) -> Iterator[dict[str, Any]]:
    reason = sandbox_unavailable_reason()
    if reason:
        pytest.skip(reason)
    before = host_snapshot()
    try:
        yield api.up(_lab())
    finally:
        api.down("workloads")
        assert host_snapshot() == before


def _netns_inside(status: dict[str, Any]) -> list[str]:
    sb = sandbox.Sandbox.from_dict(status["sandbox"])
    return list(sb.call(netlink.list_netns))


def _refs(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {f"{p['namespace']}/{p['name']}": p for p in status["pods"]}


def test_pods_are_added_removed_and_replaced_in_place(running: dict[str, Any]) -> None:
    first = _refs(running)
    changed = _lab(
        ("  replicas: 2\n  selector: {matchLabels: {app: web}}", "  replicas: 3\n  selector: {matchLabels: {app: web}}"),
        ('command: ["sleep", "infinity"]', 'command: ["sleep", "3600"]'),
        ("metadata: {name: custom, namespace: apps}", "metadata: {name: custom2, namespace: apps}"),
    )  # fmt: skip
    status = api.up(changed)
    assert status["reconciled"] == "2 added, 1 removed, 2 replaced"
    now = _refs(status)
    assert set(now) - set(first) == {"apps/web-2", "apps/custom2"}
    assert set(first) - set(now) == {"apps/custom"}
    # untouched pods keep their namespace and addresses; the DaemonSet's pods were replaced
    assert now["apps/web-0"]["network_status"] == first["apps/web-0"]["network_status"]
    assert now["apps/probe-wl-wrk-1"]["process"]["argv"][1:] == ["3600"]
    inside = _netns_inside(status)
    assert "apps.custom" not in inside and "apps.custom2" in inside
    assert api.status("workloads")["reconciled"] == status["reconciled"]

    # back to the first file: the removed pod returns, the added ones go
    again = api.up(_lab())
    assert again["reconciled"] == "1 added, 2 removed, 2 replaced"
    assert set(_refs(again)) == set(first)


def test_same_file_is_already_up_and_wires_need_a_rebuild(running: dict[str, Any]) -> None:
    with pytest.raises(api.LabRunning, match="already up and matches the file"):
        api.up(_lab())
    with pytest.raises(
        api.LabError, match=r"its networks, nodes, hosts changed: .* rebuild it"
    ) as caught:
        api.up(_lab(("subnet: 172.16.60.0/24", "subnet: 172.16.60.0/24\n      mtu: 9000")))
    assert caught.value.code == 2


def test_a_change_of_expectations_only_updates_the_plan(running: dict[str, Any]) -> None:
    extra = (
        "  hosts:\n",
        '  expect:\n    - {from: apps/custom, to: "172.16.60.31:5000", proto: tcp, result: deny}\n'
        "  hosts:\n",
    )
    status = api.up(_lab(extra))
    assert status["reconciled"] == "no pod changes, plan updated"
    assert [e.to for e in api.load_plan("workloads").expect] == ["172.16.60.31:5000"]
    assert _refs(status).keys() == _refs(running).keys()
