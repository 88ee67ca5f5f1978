"""The lab's daemons: dnsmasq per DHCP network, the CNI dhcp daemon per node, hosts' web
servers. Each is started with :func:`processes.start` (recorded in the journal first) and
waited for until it is ready."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable

from multihome.plan import HostPlan, NetworkPlan

from . import processes
from .nodes import CNI_BIN_DIR, Node

DNSMASQ = "/usr/sbin/dnsmasq"
DHCP_SOCKET = "/run/cni/dhcp.sock"
WELCOME = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>Served by multihome host {host} at {address}.</p>
</body>
</html>
"""

Recorder = Callable[..., None]


class DaemonError(RuntimeError):
    """A daemon did not start or did not become ready."""


def wait_for(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    delay = 0.002
    while not check():
        if time.monotonic() > deadline:
            raise DaemonError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.05)


def dnsmasq_argv(net: NetworkPlan, leasefile: str) -> list[str]:
    """dnsmasq as the network's DHCP server: DHCP only (no DNS), the range and lease time,
    a router only when the lab offers one, ``--no-ping`` (static addresses are outside the
    range: validate checks it)."""
    assert net.dhcp is not None
    dhcp = net.dhcp
    argv = [
        DNSMASQ,
        "--keep-in-foreground",
        "--conf-file=/dev/null",
        "--port=0",
        "--user=root",
        "--group=root",
        "--interface=eth0",
        "--bind-interfaces",
        f"--dhcp-range={dhcp.start},{dhcp.end},{net.subnet.netmask},{dhcp.lease_time}",
        f"--dhcp-leasefile={leasefile}",
        "--pid-file=",
        "--no-ping",
        "--log-dhcp",
    ]
    argv.append(f"--dhcp-option=3,{dhcp.router}" if dhcp.router else "--dhcp-option=3")
    return argv


def start_dnsmasq(net: NetworkPlan, netns: str, lab_dir: str, record: Recorder) -> processes.Daemon:
    leasefile = os.path.join(lab_dir, f"dnsmasq-{net.name}.leases")
    log = os.path.join(lab_dir, f"dnsmasq-{net.name}.log")
    daemon = processes.start(
        f"dnsmasq-{net.name}", dnsmasq_argv(net, leasefile), netns=netns, log=log, record=record
    )
    wait_for(lambda: os.path.exists(leasefile), f"dnsmasq on {net.name} (see {log})")
    if not daemon.alive():
        raise DaemonError(f"dnsmasq on {net.name} exited (see {log})")
    return daemon


def start_dhcp_daemon(node: Node, lab_dir: str, record: Recorder) -> processes.Daemon:
    """The CNI dhcp daemon on ``node``, socket at the node's ``/run/cni/dhcp.sock``."""
    sock = os.path.join(node.dir("/run/cni"), "dhcp.sock")
    if os.path.lexists(sock):  # the 1.1.1 daemon refuses to start over a stale socket
        os.unlink(sock)
    log = os.path.join(lab_dir, f"dhcp-daemon-{node.name}.log")
    daemon = processes.start(
        f"dhcp-daemon-{node.name}",
        [os.path.join(CNI_BIN_DIR, "dhcp"), "daemon", "-socketpath", DHCP_SOCKET],
        netns=node.netns,
        mntns=node.mntns,
        log=log,
        record=record,
    )
    wait_for(lambda: os.path.exists(sock), f"the dhcp daemon on {node.name} (see {log})")
    return daemon


def start_webserver(host: HostPlan, netns: str, lab_dir: str, record: Recorder) -> processes.Daemon:
    """A tiny HTTP server (Python's http.server) in the host's namespace on ``serve.http``,
    answering a welcome page."""
    assert host.http is not None
    address = next((str(n.address.ip) for n in host.nics if n.address is not None), "0.0.0.0")
    root = os.path.join(lab_dir, "hosts", host.name, "www")
    os.makedirs(root, exist_ok=True)
    with open(os.path.join(root, "index.html"), "w") as fh:
        fh.write(WELCOME.format(host=host.name, address=address))
    log = os.path.join(lab_dir, f"http-{host.name}.log")
    argv = [
        sys.executable,
        "-I",
        "-m",
        "http.server",
        str(host.http),
        "--bind",
        address,
        "--directory",
        root,
    ]
    daemon = processes.start(f"http-{host.name}", argv, netns=netns, log=log, record=record)
    wait_for(lambda: _listening(netns, address, host.http or 80), f"http on {host.name}")
    return daemon


def _listening(netns: str, address: str, port: int) -> bool:
    """Whether something accepts TCP connections on address:port inside ``netns`` (the
    port shows in /proc/net/tcp of that namespace, seen through a thread there)."""
    from . import ns

    fd = ns.open_ns(netns)
    try:
        with ns.thread_in_netns(fd):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    finally:
        os.close(fd)
    with sock:
        sock.settimeout(0.2)
        try:
            sock.connect((address, port))
        except OSError:
            return False
    return True
