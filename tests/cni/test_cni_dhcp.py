"""macvlan + dhcp IPAM against a real dnsmasq, with the real CNI dhcp daemon in the node.

Topology: a "segment" netns holds a bridge (the VLAN) with one veth to the node (its NIC
ens224) and one to a "dhcp server" netns running dnsmasq. The 1.1.1 dhcp daemon finds the new
macvlan link down and backs off, so an attachment takes seconds here (facts.md); the lab sets
the link up at once later. Both daemons are killed by PID, pass or fail.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
from cni_helpers import Node, addresses
from kernel import CNI_BIN_DIR, ip, netns, require_link_kind

from multihome.cni import ExecEvent, load_network_config

pytestmark = pytest.mark.netns

DNSMASQ = "/usr/sbin/dnsmasq"


@dataclass
class DhcpSegment:
    socket: Path
    leases: Path
    log: Path


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_for(check: object, what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(check) and check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def segment(node: Node) -> Iterator[DhcpSegment]:
    require_link_kind("macvlan")
    require_link_kind("bridge")
    if not os.access(DNSMASQ, os.X_OK):
        pytest.skip(f"dnsmasq not found at {DNSMASQ} (dnsmasq-base)")
    tmp = node.tmp
    leases, log = tmp / "dnsmasq.leases", tmp / "daemons.log"
    sock = tmp / "dhcp.sock"
    with ExitStack() as stack:
        seg = stack.enter_context(netns("seg"))
        srv = stack.enter_context(netns("dhcpsrv"))
        ip(seg, "link", "add", "br0", "type", "bridge")
        ip(seg, "link", "set", "br0", "up")
        ip(seg, "link", "add", "n0", "type", "veth", "peer", "name", "ens224", "netns", node.node)
        ip(seg, "link", "add", "d0", "type", "veth", "peer", "name", "eth0", "netns", srv)
        for port in ("n0", "d0"):
            ip(seg, "link", "set", port, "master", "br0", "up")
        ip(node.node, "link", "set", "ens224", "up")
        ip(srv, "addr", "add", "172.16.50.2/24", "dev", "eth0")
        ip(srv, "link", "set", "eth0", "up")
        logf = stack.enter_context(open(log, "ab"))
        dnsmasq = subprocess.Popen(
            ["ip", "netns", "exec", srv, DNSMASQ, "--keep-in-foreground", "--no-ping",
             "--conf-file=/dev/null", "--port=0", "--user=root", "--interface=eth0",
             "--bind-interfaces", "--dhcp-range=172.16.50.30,172.16.50.99,255.255.255.0,1h",
             "--dhcp-option=3", f"--dhcp-leasefile={leases}", "--pid-file=",
             "--log-dhcp", "--log-facility=-"],
            stdout=logf,
            stderr=logf,
        )  # fmt: skip
        stack.callback(_stop, dnsmasq)
        daemon = subprocess.Popen(
            ["ip", "netns", "exec", node.node, f"{CNI_BIN_DIR}/dhcp", "daemon",
             "-socketpath", str(sock)],
            stdout=logf,
            stderr=logf,
        )  # fmt: skip
        stack.callback(_stop, daemon)
        _wait_for(sock.exists, "the dhcp daemon's socket")
        _wait_for(leases.exists, "dnsmasq to start")
        assert dnsmasq.poll() is None and daemon.poll() is None, log.read_text()
        yield DhcpSegment(sock, leases, log)


def lease_count(seg: DhcpSegment) -> int:
    return len([line for line in seg.leases.read_text().splitlines() if line.strip()])


def test_macvlan_with_dhcp_from_dnsmasq(node: Node, segment: DhcpSegment) -> None:
    net = load_network_config(
        {
            "cniVersion": "1.0.0",
            "name": "macvlan-longhorn-dhcp",
            "type": "macvlan",
            "master": "ens224",
            "mode": "bridge",
            "ipam": {"type": "dhcp", "daemonSocketPath": str(segment.socket)},
        }
    )
    events: list[ExecEvent] = []
    rt = node.rt("lhnet1")
    with node.runtime(timeout=60, on_exec=events.append) as runtime:
        result = runtime.add_network_list(net, rt)
        (address,) = [str(i.address) for i in result.ips]
        host = int(address.split("/")[0].split(".")[-1])
        assert address.startswith("172.16.50.") and address.endswith("/24"), address
        assert 30 <= host <= 99
        assert addresses(node.pod, "lhnet1") == [address]
        routes = json.loads(ip(node.pod, "-j", "route", "show"))
        assert [(r["dst"], r["dev"]) for r in routes] == [("172.16.50.0/24", "lhnet1")]
        assert lease_count(segment) == 1

        # CHECK is never sent to the dhcp plugin: it would leak a lease
        runtime.check_network_list(net, rt)
        assert not [e for e in events if e.command == "CHECK"]
        assert lease_count(segment) == 1

        runtime.del_network_list(net, rt)
        assert node.pod_links() == ["lo"]
        _wait_for(lambda: lease_count(segment) == 0, "dnsmasq to drop the released lease", 5)
        assert runtime.get_cached_result(net, rt) is None
