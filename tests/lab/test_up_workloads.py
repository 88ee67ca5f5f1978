"""multihome up beyond the seed: Deployments, DaemonSets and StatefulSets become pods on the
agents; the servers the lab stands in for (nginx, agnhost netexec, declared ports, hosts'
http/tcp/udp) really answer; commands the lab can't run safely are not run (root only)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkit import http_get, sandbox_unavailable_reason, tcp_echo, udp_echo

from multihome.lab import api, sandbox
from multihome.spec import load_lab

LAB = Path(__file__).parent / "labs" / "workloads.yaml"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="up runs as root here"),
    pytest.mark.skipif(not os.path.isdir("/usr/lib/cni"), reason="containernetworking-plugins"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq"), reason="dnsmasq-base missing"),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    reason = sandbox_unavailable_reason()
    if reason:
        pytest.skip(reason)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MULTIHOME_STATE_DIR", str(tmp_path_factory.mktemp("wlstate")))
        try:
            yield api.up(load_lab(LAB))
        finally:
            api.down("workloads")


def _pods(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in status["pods"]}


def _eth0(pod: dict[str, Any]) -> str:
    return str(pod["network_status"][0]["ips"][0])


def _call(status: dict[str, Any], fn: Any, *args: Any) -> Any:
    return sandbox.Sandbox.from_dict(status["sandbox"]).call(fn, *args)


def test_workloads_become_pods_on_agents(lab: dict[str, Any]) -> None:
    pods = _pods(lab)
    assert sorted(pods) == [
        "custom", "echo-0", "echo-1", "probe-wl-wrk-1", "probe-wl-wrk-2", "script", "web-0",
        "web-1",
    ]  # fmt: skip
    assert {p["node"] for p in pods.values()} == {"wl-wrk-1", "wl-wrk-2"}  # servers tainted
    assert pods["probe-wl-wrk-1"]["node"] == "wl-wrk-1"  # a DaemonSet: one per agent
    assert pods["web-0"]["owner"] == {"kind": "Deployment", "name": "web"}
    assert pods["echo-1"]["owner"] == {"kind": "StatefulSet", "name": "echo"}
    for name in ("web-0", "web-1", "probe-wl-wrk-1", "probe-wl-wrk-2"):
        assert [e["interface"] for e in pods[name]["network_status"]] == ["eth0", "net1"]
    assert all(p["phase"] == "Running" for p in pods.values())


def test_host_serves_http_tcp_and_udp_over_vlan60(lab: dict[str, Any]) -> None:
    src = _pods(lab)["probe-wl-wrk-1"]["netns"]
    assert "Welcome to nginx!" in _call(lab, http_get, src, "172.16.60.31", 80)
    assert _call(lab, tcp_echo, src, "172.16.60.31", 5000, b"x" * 100_000) == b"x" * 100_000
    assert _call(lab, udp_echo, src, "172.16.60.31", 5001, b"ping") == b"ping"


def test_pod_servers_answer_across_nodes(lab: dict[str, Any]) -> None:
    pods = _pods(lab)
    src = pods["probe-wl-wrk-1"]["netns"]
    web = pods["web-1"]  # on the other agent: host-gw over ens192
    assert web["serves"]["http"] == [80]
    assert "Welcome to nginx!" in _call(lab, http_get, src, _eth0(web), 80)
    echo = pods["echo-1"]  # agnhost netexec: HTTP 8080, UDP 8081
    assert _call(lab, http_get, src, _eth0(echo), 8080)
    assert _call(lab, udp_echo, src, _eth0(echo), 8081, b"hostname?") == b"hostname?"
    custom = pods["custom"]  # an image the lab can't run: echo on its declared ports
    assert custom["serves"] == {"address": "0.0.0.0", "http": [], "tcp": [9000], "udp": [9001]}
    assert _call(lab, tcp_echo, src, _eth0(custom), 9000, b"abc") == b"abc"
    assert _call(lab, udp_echo, src, _eth0(custom), 9001, b"abc") == b"abc"


def test_commands_it_cannot_vouch_for_are_not_run(lab: dict[str, Any]) -> None:
    pods = _pods(lab)
    assert pods["script"]["process"] is None
    assert pods["probe-wl-wrk-1"]["process"]["argv"][1:] == ["infinity"]
    # a port nobody declared is closed
    src = pods["probe-wl-wrk-1"]["netns"]
    assert _call(lab, tcp_echo, src, _eth0(pods["script"]), 9000, b"abc") == b""


def test_get_hosts_lists_what_each_serves(lab: dict[str, Any]) -> None:
    from typer.testing import CliRunner

    from multihome.cli import app

    result = CliRunner().invoke(app, ["get", "hosts"])
    assert result.exit_code == 0, result.output
    assert "svc    eth0=172.16.60.31/24   http:80,tcp:5000,udp:5001" in result.output


def test_two_labs_run_side_by_side(lab: dict[str, Any]) -> None:
    from multihome.spec import load_lab

    seed = api.up(load_lab(None))  # same 172.16.x.x addresses, its own sandbox
    try:
        assert sorted(api.list_labs()) == ["multi-homed", "workloads"]
        page = subprocess.run(
            api.exec_argv("multus-network-attachments/net-tools", ["curl", "-s", "172.16.60.31"], "multi-homed"),
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        assert "Welcome to nginx!" in page.stdout
        assert seed["sandbox"]["pid"] != lab["sandbox"]["pid"]
        src = _pods(lab)["probe-wl-wrk-1"]["netns"]
        assert _call(lab, udp_echo, src, "172.16.60.31", 5001, b"still here") == b"still here"
        with pytest.raises(api.LabError, match="several labs are up"):
            api.status(None)
    finally:
        assert api.down("multi-homed") == ["multi-homed"]
    assert api.list_labs() == ["workloads"]
