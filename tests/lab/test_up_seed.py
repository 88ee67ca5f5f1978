"""multihome up on the seed design: the blog's net-tools pod and Longhorn's lhnet1, real
DHCP and a real web server; down leaves nothing behind (root only)."""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkit import host_snapshot, ping, sandbox_unavailable_reason, tcp_echo
from typer.testing import CliRunner

from multihome.cli import app
from multihome.lab import api, sandbox
from multihome.lab.state import LabState
from multihome.plan import build_plan
from multihome.spec import load_lab

NET_TOOLS = "multus-network-attachments/net-tools"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="up of the seed runs as root here"),
    pytest.mark.skipif(not os.path.isdir("/usr/lib/cni"), reason="containernetworking-plugins"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq"), reason="dnsmasq-base missing"),
]


def _recorded_pids(name: str) -> list[tuple[int, int]]:
    objects = LabState(name).objects()
    return [
        (int(v["pid"]), int(v["start_time"]))
        for (kind, _), v in objects.items()
        if kind in ("process", "sandbox") and "pid" in v and "start_time" in v
    ]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    reason = sandbox_unavailable_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("upstate")
    old = os.environ.get("MULTIHOME_STATE_DIR")
    os.environ["MULTIHOME_STATE_DIR"] = str(root)
    before = host_snapshot()
    try:
        status = api.up(load_lab(None))
        yield {"status": status, "before": before, "root": root}
    finally:
        api.down("multi-homed")
        if old is None:
            os.environ.pop("MULTIHOME_STATE_DIR", None)
        else:
            os.environ["MULTIHOME_STATE_DIR"] = old


def _exec(target: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        api.exec_argv(target, list(argv)), capture_output=True, text=True, check=False
    )


def _addrs(target: str) -> dict[str, list[ipaddress.IPv4Interface]]:
    links = json.loads(_exec(target, "ip", "-j", "-4", "addr").stdout)
    return {
        link["ifname"]: [
            ipaddress.IPv4Interface(f"{a['local']}/{a['prefixlen']}") for a in link["addr_info"]
        ]
        for link in links
    }


def test_net_tools_has_eth0_net1_net2_from_dhcp(lab: dict[str, Any]) -> None:
    status = lab["status"]
    pod = next(p for p in status["pods"] if p["name"] == "net-tools")
    node = next(n for n in status["nodes"] if n["name"] == pod["node"])
    addrs = _addrs(NET_TOOLS)
    assert sorted(addrs) == ["eth0", "lo", "net1", "net2"]
    (eth0,) = addrs["eth0"]
    assert eth0.ip in ipaddress.ip_network(node["pod_cidr"])
    (net1,) = addrs["net1"]
    (net2,) = addrs["net2"]
    assert net1.network == ipaddress.ip_network("172.16.50.0/24")
    assert net2.network == ipaddress.ip_network("172.16.60.0/24")
    # from the DHCP ranges, as dnsmasq's lease files say
    assert 30 <= int(str(net1.ip).rsplit(".", 1)[1]) <= 99
    assert 32 <= int(str(net2.ip).rsplit(".", 1)[1]) <= 99
    leases = (lab["root"] / "multi-homed" / "dnsmasq-vlan60.leases").read_text()
    assert str(net2.ip) in leases
    names = [e["name"] for e in pod["network_status"]]
    assert names == [
        "k8s-pod-network",
        "multus-network-attachments/macvlan-longhorn-dhcp",
        "multus-network-attachments/macvlan-private-dhcp",
    ]


def test_default_route_only_via_eth0(lab: dict[str, Any]) -> None:
    routes = json.loads(_exec(NET_TOOLS, "ip", "-j", "-4", "route").stdout)
    defaults = [r["dev"] for r in routes if r["dst"] == "default"]
    assert defaults == ["eth0"]
    assert {r["dst"]: r["dev"] for r in routes if r["dst"].startswith("172.16.")} == {
        "172.16.50.0/24": "net1",
        "172.16.60.0/24": "net2",
    }


def test_ip_route_in_net_tools_is_the_posts(lab: dict[str, Any]) -> None:
    """The post's four lines, with the lab's DHCP addresses (Canal's eth0: the link-local
    gateway; the macvlan networks' kernel routes)."""
    addrs = _addrs(NET_TOOLS)
    net1, net2 = addrs["net1"][0].ip, addrs["net2"][0].ip
    done = _exec(NET_TOOLS, "ip", "route")
    assert done.stdout.splitlines() == [
        "default via 169.254.1.1 dev eth0 ",
        "169.254.1.1 dev eth0 scope link ",
        f"172.16.50.0/24 dev net1 proto kernel scope link src {net1} ",
        f"172.16.60.0/24 dev net2 proto kernel scope link src {net2} ",
    ]


def test_eth0_is_canals_as_calico_makes_it(lab: dict[str, Any]) -> None:
    """The pod side: /32, mtu 1450, no qlen, the peer named by netnsid as in a container;
    the node side: cali + sha1 of the pod, ee:ee:ee:ee:ee:ee, proxy ARP, a /32 route."""
    import hashlib

    status = lab["status"]
    pod = next(p for p in status["pods"] if p["name"] == "net-tools")
    shown = _exec(NET_TOOLS, "ip", "addr", "show", "eth0").stdout
    first, link, inet = shown.splitlines()[:3]
    assert "eth0@if" in first and "mtu 1450 qdisc noqueue state UP group default" in first
    assert "qlen" not in first
    assert link.strip().endswith("link-netnsid 0")
    (eth0,) = _addrs(NET_TOOLS)["eth0"]
    assert inet.strip() == f"inet {eth0.ip}/32 scope global eth0"
    veth = "cali" + hashlib.sha1(b"multus-network-attachments.net-tools").hexdigest()[:11]
    node = pod["node"]
    link_json = json.loads(_exec(node, "ip", "-j", "link", "show", veth).stdout)[0]
    assert link_json["address"] == "ee:ee:ee:ee:ee:ee" and link_json["mtu"] == 1450
    sysctls = _exec(
        node, "cat", f"/proc/sys/net/ipv4/conf/{veth}/proxy_arp",
        f"/proc/sys/net/ipv4/conf/{veth}/forwarding",
        f"/proc/sys/net/ipv4/conf/{veth}/route_localnet",
        f"/proc/sys/net/ipv4/neigh/{veth}/proxy_delay",
    ).stdout.split()  # fmt: skip
    assert sysctls == ["1", "1", "1", "0"]
    routes = _exec(node, "ip", "route", "show", "dev", veth).stdout.splitlines()
    assert routes == [f"{eth0.ip} scope link "]
    # the conflist is rke2-canal's shape: calico (host-local over usePodCidr), portmap, bandwidth
    conf = json.loads(_exec(node, "cat", "/etc/cni/net.d/10-canal.conflist").stdout)
    assert [p["type"] for p in conf["plugins"]] == ["calico", "portmap", "bandwidth"]
    assert conf["plugins"][0]["ipam"] == {
        "type": "host-local",
        "ranges": [[{"subnet": "usePodCidr"}]],
    }
    # the node's host-gw routes to other nodes' pod CIDRs: proto boot, as flannel adds them
    node_routes = _exec(node, "ip", "route").stdout
    assert "10.42." in node_routes and "proto static" not in node_routes.replace(
        "default via 172.16.40.1 dev ens192 proto static", ""
    )


def test_curl_the_web_server_over_net2(lab: dict[str, Any]) -> None:
    done = _exec(NET_TOOLS, "curl", "-s", "--max-time", "5", "172.16.60.31")
    assert done.returncode == 0, done.stderr
    assert "<title>Welcome to nginx!</title>" in done.stdout


def test_exec_exit_code_is_the_commands(lab: dict[str, Any]) -> None:
    assert _exec(NET_TOOLS, "sh", "-c", "exit 7").returncode == 7
    out = _exec("multi-homed-wrk-1", "cat", "/etc/rancher/rke2/config.yaml").stdout
    assert "node-ip: 172.16.40.47" in out
    ls = _exec("multi-homed-wrk-1", "ls", "/opt/cni/bin").stdout.split()
    assert {"macvlan", "dhcp", "host-local", "ptp"} <= set(ls)


def _manager(kind: str, node: str) -> str:
    """The name of Longhorn's ``kind`` instance-manager on ``node`` in the seed's plan."""
    plan = build_plan(load_lab(None))
    return next(
        p.name
        for p in plan.pods
        if p.node == node and ("longhorn.io/instance-manager-type", kind) in p.labels
    )


def test_instance_managers_have_lhnet1_on_vlan50(lab: dict[str, Any]) -> None:
    managers = [p for p in lab["status"]["pods"] if p["namespace"] == "longhorn-system"]
    assert len(managers) == 6  # Longhorn 1.4: an engine and a replica one per agent
    seen = set()
    for pod in managers:
        addrs = _addrs(f"longhorn-system/{pod['name']}")
        (lhnet1,) = addrs["lhnet1"]
        assert lhnet1.network == ipaddress.ip_network("172.16.50.0/24")
        seen.add(lhnet1.ip)
    assert len(seen) == 6


def test_instance_managers_take_replication_traffic_on_lhnet1(lab: dict[str, Any]) -> None:
    status = lab["status"]
    sb = sandbox.Sandbox.from_dict(status["sandbox"])
    pods = {p["name"]: p for p in status["pods"]}
    one = pods[_manager("engine", "multi-homed-wrk-1")]
    two = pods[_manager("replica", "multi-homed-wrk-2")]
    lhnet1 = str(two["network_status"][1]["ips"][0])
    ports = [10000, 10001, 10002]  # the replica's control, data and sync ports
    assert two["serves"] == {"address": lhnet1, "http": [], "tcp": ports, "udp": []}
    block = bytes(range(256)) * 1024
    assert sb.call(tcp_echo, one["netns"], lhnet1, 10001, block) == block
    # bound to the storage address only: not on eth0
    eth0 = str(two["network_status"][0]["ips"][0])
    assert sb.call(tcp_echo, one["netns"], eth0, 10001, b"x") == b""


def test_pod_to_pod_across_nodes_and_over_vlan50(lab: dict[str, Any]) -> None:
    status = lab["status"]
    sb = sandbox.Sandbox.from_dict(status["sandbox"])
    pods = {p["name"]: p for p in status["pods"]}
    src = pods["net-tools"]["netns"]
    other = pods[_manager("replica", "multi-homed-wrk-2")]
    eth0 = other["network_status"][0]["ips"][0]
    lhnet1 = other["network_status"][1]["ips"][0]
    assert sb.call(ping, src, eth0)  # host-gw over ens192 (wrk-1 -> wrk-2)
    assert sb.call(ping, src, lhnet1)  # macvlan on VLAN50


def test_get_nodes_wide_and_pods_json(lab: dict[str, Any]) -> None:
    runner = CliRunner()
    done = runner.invoke(app, ["get", "nodes", "-o", "wide"])
    assert done.exit_code == 0, done.output
    lines = done.output.splitlines()
    assert lines[0].split() == [
        "NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP",
        "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME",
    ]  # fmt: skip
    wrk1 = next(line for line in lines if line.startswith("multi-homed-wrk-1"))
    assert wrk1.split()[:6] == [
        "multi-homed-wrk-1", "Ready", "worker", wrk1.split()[3], "v1.25.9+rke2r1", "172.16.40.47",
    ]  # fmt: skip
    done = runner.invoke(app, ["get", "pods", "-o", "json"])
    assert done.exit_code == 0, done.output
    items = json.loads(done.output)["items"]
    status = json.loads(items[0]["annotations"]["k8s.v1.cni.cncf.io/network-status"])
    assert [e["interface"] for e in status] == ["eth0", "net1", "net2"]
    assert [e.get("default", False) for e in status] == [True, False, False]


def test_every_daemon_is_the_labs_init_child(lab: dict[str, Any]) -> None:
    """dnsmasq, the hosts' servers, the dhcp daemons, the pods' processes: once up returned,
    each is a child of the lab's supervisor (PID 1 of its PID namespace), which reaps it,
    whichever process started it; none waits on the host's init."""
    holder = lab["status"]["sandbox"]["pid"]
    objects = LabState("multi-homed").objects()
    daemons = {
        name: int(v["pid"])
        for (kind, name), v in objects.items()
        if kind == "process" and "pid" in v and not name.startswith("kube-apiserver")
    }
    assert any(n.startswith("dnsmasq-") for n in daemons)
    assert any(n.startswith("serve-") for n in daemons)
    for name, pid in daemons.items():
        with open(f"/proc/{pid}/stat") as fh:
            parent = int(fh.read().rsplit(")", 1)[1].split()[1])
        assert parent == holder, f"{name} (pid {pid}) is a child of {parent}, not {holder}"


def test_up_again_says_it_runs(lab: dict[str, Any]) -> None:
    with pytest.raises(api.LabRunning, match="already up"):
        api.up(load_lab(None))


def test_zz_down_leaves_nothing(lab: dict[str, Any]) -> None:
    """Runs last in the module (name order): down, then compare the host with before up."""
    pids = _recorded_pids("multi-homed")
    assert len(pids) >= 6  # sandbox, web, 2 dnsmasq, dhcp daemons, net-tools' sleep
    assert api.down("multi-homed") == ["multi-homed"]
    assert api.down("multi-homed") == []  # idempotent
    assert not (lab["root"] / "multi-homed").exists()
    for pid, started in pids:
        assert not sandbox.ns.is_running(pid, started), pid
    assert host_snapshot() == lab["before"]


def test_sigkill_during_up_then_down(state_root: Path, require_sandbox: None) -> None:
    before = host_snapshot()
    env = dict(os.environ, MULTIHOME_STATE_DIR=str(state_root))
    proc = subprocess.Popen(
        [sys.executable, "-c", "from multihome.cli import main; main()", "up"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # kill it once it is building nodes (the journal names one)
        deadline = time.monotonic() + 20
        journal = state_root / "multi-homed" / "journal.jsonl"
        while time.monotonic() < deadline:
            if journal.exists() and '"mntns"' in journal.read_text():
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        pids = _recorded_pids("multi-homed")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        api.down("multi-homed")
    assert not (state_root / "multi-homed").exists()
    for pid, started in pids:
        assert not sandbox.ns.is_running(pid, started)
    assert host_snapshot() == before
