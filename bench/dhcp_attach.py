"""Benchmark: attach pods with eth0 (ptp + host-local) and two macvlan + dhcp networks.

Run as ``python -m bench.dhcp_attach [--pods N] [--slow-pods M] [--renewal]`` from the
repository root, as root. The seed's arrangement, really running: two VLAN segments (a bridge
each), a node with NICs ens224 (VLAN50) and ens256 (VLAN60), a DHCP server on each segment
(real dnsmasq, no router option, 2 minute leases: dnsmasq's minimum) and the real CNI
``dhcp daemon`` in the node, as RKE2's dhcp DaemonSet runs it. Each pod gets
``multus-network-attachments/macvlan-longhorn-dhcp`` as net1 and ``macvlan-private-dhcp`` as
net2 through :func:`multihome.multus.attach_pod`, then is detached.

Variants, measured side by side in one run:

- (a) dnsmasq defaults (it pings an address before offering it);
- (b) dnsmasq ``--no-ping``;
- (c) ``--no-ping`` and a link-up watcher in the pod (:mod:`multihome.lab.linkup`);
- (d) dnsmasq defaults with the watcher (separates the two causes).

The slow variants (no watcher, or pinging) take seconds per attachment, so they get
``--slow-pods`` pods (default 3); (c) gets ``--pods`` (default 25). Where the time goes comes
from the wire: a packet socket on each server's NIC timestamps (SO_TIMESTAMPNS) every DHCP
message and dnsmasq's ICMP probes, matched to an attachment by the pod's MAC; the dhcp
daemon's log gives its "link down" and retry counts.

Each lease is checked to be real: the address is in the segment's range and on the pod's
interface, an ACK carried it to that MAC on the wire, dnsmasq's lease file lists it with a
2 minute expiry, the server answers an ICMP echo sent from that address, and after detach a
DHCPRELEASE went out and the lease is gone. Renewal needs only that the daemon keeps running
(it renews at T1, half the lease); ``--renewal`` waits for one renewal on the wire (~70 s).

Namespaces are bind-mounted on files in a temp directory (not /run/netns); the daemons are
killed by PID and everything is removed at the end, also on failure.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import ipaddress
import json
import os
import re
import select
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.nsfile import netns_file
from multihome.cni import CNIRuntime, ExecEvent, NodeNamespaces
from multihome.lab.linkup import LinkUpWatcher
from multihome.multus import NETWORKS_ANNOTATION, Delegate, build_delegates
from multihome.multus.attach import PodSandbox, attach_pod, detach_pod

CNI_BIN = "/usr/lib/cni"
DNSMASQ = "/usr/sbin/dnsmasq"
LEASE = "2m"  # dnsmasq's minimum
LEASE_SECONDS = 120
POD_NAMESPACE = "multus-network-attachments"
CLONE_NEWNET = 0x40000000
SO_TIMESTAMPNS = 35
ETH_P_ALL = 0x0003
DHCP_KINDS = {
    1: "DISCOVER",
    2: "OFFER",
    3: "REQUEST",
    4: "DECLINE",
    5: "ACK",
    6: "NAK",
    7: "RELEASE",
}

_libc = ctypes.CDLL(None, use_errno=True)


@dataclass(frozen=True)
class Segment:
    """One VLAN: its bridge, the node's NIC on it, the NAD that uses it, the DHCP range."""

    vlan: int
    nic: str
    nad: str
    first: str
    last: str

    @property
    def server_ip(self) -> str:
        return f"172.16.{self.vlan}.2"

    def in_range(self, address: str) -> bool:
        ip = ipaddress.IPv4Address(address)
        return ipaddress.IPv4Address(self.first) <= ip <= ipaddress.IPv4Address(self.last)


SEGMENTS = (
    Segment(50, "ens224", "macvlan-longhorn-dhcp", "172.16.50.30", "172.16.50.99"),
    Segment(60, "ens256", "macvlan-private-dhcp", "172.16.60.32", "172.16.60.99"),
)


@dataclass(frozen=True)
class Variant:
    key: str
    title: str
    no_ping: bool
    watcher: bool
    slow: bool


VARIANTS = (
    Variant("a", "dnsmasq defaults", no_ping=False, watcher=False, slow=True),
    Variant("b", "--no-ping", no_ping=True, watcher=False, slow=True),
    Variant("c", "--no-ping + link-up watcher", no_ping=True, watcher=True, slow=False),
    Variant("d", "defaults + link-up watcher", no_ping=False, watcher=True, slow=True),
)


@dataclass(frozen=True)
class Packet:
    """A DHCP message or an ICMP echo request seen on a server's NIC."""

    at: float  # kernel timestamp, time.time() clock
    vlan: int
    kind: str  # DISCOVER, OFFER, REQUEST, ACK, NAK, RELEASE, DECLINE, PING
    mac: str  # chaddr (DHCP); empty for PING
    yiaddr: str
    ciaddr: str
    dst: str  # IP destination (the probed address for PING)


@dataclass
class Attachment:
    """One macvlan + dhcp attachment of one pod, with its wire timeline."""

    variant: str
    pod: str
    ifname: str
    segment: Segment
    mac: str
    address: str
    start: float
    end: float
    phases: dict[str, float] = field(default_factory=dict)
    discovers: int = 0
    pings: int = 0


@dataclass
class VariantResult:
    variant: Variant
    attach_ms: list[float] = field(default_factory=list)
    detach_ms: list[float] = field(default_factory=list)
    watcher_ms: list[float] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    del_ms: dict[str, list[float]] = field(default_factory=dict)  # per plugin
    daemon_link_down: int = 0
    daemon_retries: int = 0
    echo_ms: list[float] = field(default_factory=list)


class BenchFailure(Exception):
    """A check of what the bench built failed."""


# -- namespaces, links and processes ---------------------------------------------------------


def _ip(ns: str, *argv: str) -> str:
    done = subprocess.run(
        ["nsenter", f"--net={ns}", "ip", *argv], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise BenchFailure(f"ip {' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


@contextmanager
def _daemon(netns: str, argv: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``argv`` running in ``netns`` (nsenter execs it: the PID is the daemon's), stopped by
    PID on exit: SIGTERM, then SIGKILL."""
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            ["nsenter", f"--net={netns}", *argv], stdout=out, stderr=subprocess.STDOUT
        )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_for(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.02)
    raise BenchFailure(f"timed out waiting for {what}")


def _in_netns(netns: str, work: Callable[[], Any]) -> Any:
    """Run ``work`` in a short-lived thread that entered ``netns`` (setns changes only the
    calling thread); returns its value or raises its exception."""
    out: dict[str, Any] = {}

    def target() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), f"setns {netns}")
            finally:
                os.close(fd)
            out["value"] = work()
        except BaseException as err:
            out["error"] = err

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out.get("value")


# -- the wire: DHCP and ICMP probes on the servers' NICs -------------------------------------


class Sniffer:
    """Packet sockets on the servers' eth0, read by one thread; ``packets`` in arrival order."""

    def __init__(self, servers: dict[int, str]) -> None:
        self.packets: list[Packet] = []
        self._lock = threading.Lock()
        self._socks: dict[int, int] = {}  # fd -> vlan
        self._objs: list[socket.socket] = []
        for vlan, netns in servers.items():
            sock: socket.socket = _in_netns(netns, _packet_socket)
            self._objs.append(sock)
            self._socks[sock.fileno()] = vlan
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC)
        self._thread = threading.Thread(target=self._run, name="sniffer", daemon=True)
        self._thread.start()

    def close(self) -> None:
        os.write(self._stop_w, b"x")
        self._thread.join()
        for sock in self._objs:
            sock.close()
        os.close(self._stop_r)
        os.close(self._stop_w)

    def since(self, start: float) -> list[Packet]:
        with self._lock:
            return [p for p in self.packets if p.at >= start]

    def _run(self) -> None:
        by_fd = {s.fileno(): s for s in self._objs}
        while True:
            readable, _, _ = select.select([*by_fd, self._stop_r], [], [])
            if self._stop_r in readable:
                return
            for fd in readable:
                sock = by_fd[fd]
                data, anc, _, _ = sock.recvmsg(2048, socket.CMSG_SPACE(16))
                at = time.time()
                for level, kind, raw in anc:
                    if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                        sec, nsec = struct.unpack("qq", raw[:16])
                        at = sec + nsec / 1e9
                packet = _parse(data, at, self._socks[fd])
                if packet is not None:
                    with self._lock:
                        self.packets.append(packet)


def _packet_socket() -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
    sock.bind(("eth0", ETH_P_ALL))
    return sock


def _parse(frame: bytes, at: float, vlan: int) -> Packet | None:
    if len(frame) < 34 or frame[12:14] != b"\x08\x00":
        return None
    ihl = (frame[14] & 0x0F) * 4
    proto = frame[23]
    dst = socket.inet_ntoa(frame[30:34])
    body = 14 + ihl
    if proto == 1 and len(frame) > body and frame[body] == 8:  # ICMP echo request
        return Packet(at, vlan, "PING", "", "", "", dst)
    if proto != 17 or len(frame) < body + 8 + 240:
        return None
    sport, dport = struct.unpack("!HH", frame[body : body + 4])
    if {sport, dport} != {67, 68}:
        return None
    bootp = frame[body + 8 :]
    if bootp[236:240] != b"\x63\x82\x53\x63":
        return None
    kind = ""
    i = 240
    while i < len(bootp) and bootp[i] != 255:
        if bootp[i] == 0:
            i += 1
            continue
        code, size = bootp[i], bootp[i + 1]
        if code == 53:
            kind = DHCP_KINDS.get(bootp[i + 2], f"type{bootp[i + 2]}")
        i += 2 + size
    mac = ":".join(f"{b:02x}" for b in bootp[28:34])
    return Packet(
        at, vlan, kind, mac, socket.inet_ntoa(bootp[16:20]), socket.inet_ntoa(bootp[12:16]), dst
    )


def _icmp_echo(netns: str, ifname: str, source: str, target: str, timeout: float = 2.0) -> float:
    """Send one ICMP echo from ``source`` on ``ifname`` in the pod; the reply's RTT in ms."""

    def work() -> float:
        sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
            sock.bind((source, 0))
            ident = os.getpid() & 0xFFFF
            header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
            payload = b"multihome-bench"
            packet = header[:2] + struct.pack("!H", _checksum(header + payload)) + header[4:]
            started = time.perf_counter()
            sock.sendto(packet + payload, (target, 0))
            deadline = started + timeout
            while (left := deadline - time.perf_counter()) > 0:
                ready, _, _ = select.select([sock], [], [], left)
                if not ready:
                    break
                data, (peer, _) = sock.recvfrom(2048)
                ihl = (data[0] & 0x0F) * 4
                kind, _, _, rid, _ = struct.unpack("!BBHHH", data[ihl : ihl + 8])
                if peer == target and kind == 0 and rid == ident:
                    return (time.perf_counter() - started) * 1000
            raise BenchFailure(f"no echo reply from {target} to {source} on {ifname}")
        finally:
            sock.close()

    rtt: float = _in_netns(netns, work)
    return rtt


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


# -- the bench -----------------------------------------------------------------------------


class Bench:
    """The segments, node, servers, sniffer, dhcp daemon and CNI runtime of one run; each is
    registered on ``stack`` as it is made, so closing the stack removes them (also when
    building fails half way)."""

    def __init__(self, stack: ExitStack, tmp: str) -> None:
        self.tmp = Path(tmp)
        self.switch = stack.enter_context(netns_file(tmp, "switch"))
        self.node = stack.enter_context(netns_file(tmp, "node"))
        self.servers = {
            s.vlan: stack.enter_context(netns_file(tmp, f"dhcp{s.vlan}")) for s in SEGMENTS
        }
        for seg in SEGMENTS:
            bridge = f"br{seg.vlan}"
            _ip(self.switch, "link", "add", bridge, "type", "bridge")
            _ip(self.switch, "link", "set", bridge, "up")
            _ip(self.switch, "link", "add", f"n{seg.vlan}", "type", "veth",
                "peer", "name", seg.nic, "netns", self.node)  # fmt: skip
            _ip(self.switch, "link", "add", f"d{seg.vlan}", "type", "veth",
                "peer", "name", "eth0", "netns", self.servers[seg.vlan])  # fmt: skip
            for port in (f"n{seg.vlan}", f"d{seg.vlan}"):
                _ip(self.switch, "link", "set", port, "master", bridge, "up")
            _ip(self.node, "link", "set", seg.nic, "up")
            server = self.servers[seg.vlan]
            _ip(server, "addr", "add", f"{seg.server_ip}/24", "dev", "eth0")
            _ip(server, "link", "set", "eth0", "up")
        self.sniffer = Sniffer(self.servers)
        stack.callback(self.sniffer.close)
        self.socket = self.tmp / "dhcp.sock"
        self.daemon_log = self.tmp / "dhcp-daemon.log"
        self.daemon = stack.enter_context(
            _daemon(
                self.node,
                [f"{CNI_BIN}/dhcp", "daemon", "-socketpath", str(self.socket)],
                self.daemon_log,
            )
        )
        _wait_for(self.socket.exists, "the dhcp daemon's socket")
        self.events: list[tuple[ExecEvent, float]] = []
        self.runtime = stack.enter_context(
            CNIRuntime(
                [CNI_BIN],
                self.tmp / "cache",
                node=NodeNamespaces(netns=self.node),
                timeout=60,
                on_exec=lambda e: self.events.append((e, time.time())),
            )
        )
        self.cluster: dict[str, Any] = {
            "cniVersion": "0.3.1",
            "name": "k8s-pod-network",
            "plugins": [
                {
                    "type": "ptp",
                    "ipam": {
                        "type": "host-local",
                        "subnet": "10.42.3.0/24",
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.tmp / "ipam"),
                    },
                }
            ],
        }
        self.nads = {
            (POD_NAMESPACE, seg.nad): json.dumps(
                {  # the seed's NADs, with the daemon's socket where this bench runs it
                    "cniVersion": "0.3.0",
                    "type": "macvlan",
                    "master": seg.nic,
                    "mode": "bridge",
                    "ipam": {"type": "dhcp", "daemonSocketPath": str(self.socket)},
                }
            )
            for seg in SEGMENTS
        }

    @contextmanager
    def dnsmasq(self, variant: Variant) -> Iterator[dict[int, Path]]:
        """A dnsmasq per segment for ``variant``; yields their lease files."""
        leases: dict[int, Path] = {}
        with ExitStack() as stack:
            for seg in SEGMENTS:
                lease_file = self.tmp / f"leases-{variant.key}-{seg.vlan}"
                argv = [
                    DNSMASQ, "--keep-in-foreground", "--conf-file=/dev/null", "--port=0",
                    "--user=root", "--interface=eth0", "--bind-interfaces",
                    f"--dhcp-range={seg.first},{seg.last},255.255.255.0,{LEASE}",
                    "--dhcp-option=3", f"--dhcp-leasefile={lease_file}", "--pid-file=",
                    "--log-dhcp", f"--log-facility={self.tmp / f'dnsmasq-{seg.vlan}.log'}",
                ]  # fmt: skip
                if variant.no_ping:
                    argv.append("--no-ping")
                proc = stack.enter_context(
                    _daemon(self.servers[seg.vlan], argv, self.tmp / f"dnsmasq-{seg.vlan}.out")
                )
                _wait_for(lease_file.exists, f"dnsmasq on VLAN{seg.vlan}")
                if proc.poll() is not None:
                    raise BenchFailure(f"dnsmasq on VLAN{seg.vlan} exited {proc.returncode}")
                leases[seg.vlan] = lease_file
            yield leases

    def delegates(self, pod: str) -> list[Delegate]:
        annotation = ",".join(f"{POD_NAMESPACE}/{s.nad}" for s in SEGMENTS)
        return build_delegates(
            POD_NAMESPACE,
            pod,
            {NETWORKS_ANNOTATION: annotation},
            self.cluster,
            lambda ns, name: self.nads.get((ns, name)),
        )


def run_variant(bench: Bench, variant: Variant, pods: int, out: VariantResult) -> None:
    log_start = bench.daemon_log.stat().st_size
    with bench.dnsmasq(variant) as leases:
        for n in range(pods):
            name = f"net-tools-{variant.key}{n}"
            with netns_file(str(bench.tmp), "pod") as pod_ns:
                delegates = bench.delegates(name)
                pod = PodSandbox(
                    POD_NAMESPACE, name, f"uid-{name}", f"{variant.key}{n:05d}", pod_ns
                )
                watcher = None
                found: list[Attachment] = []
                try:
                    if variant.watcher:
                        started = time.perf_counter()
                        watcher = LinkUpWatcher(pod_ns, names=[d.ifname for d in delegates[1:]])
                        watcher.start()
                        out.watcher_ms.append((time.perf_counter() - started) * 1000)
                    bench.events.clear()
                    started = time.perf_counter()
                    status = attach_pod(bench.runtime, pod, delegates)
                    out.attach_ms.append((time.perf_counter() - started) * 1000)
                    if watcher is not None:
                        watcher.stop()
                        if watcher.errors:
                            raise BenchFailure(f"link watcher: {watcher.errors}")
                    found = _check_attached(bench, pod_ns, name, status, leases, variant)
                    out.attachments.extend(found)
                    for att in found:
                        out.echo_ms.append(
                            _icmp_echo(pod_ns, att.ifname, att.address, att.segment.server_ip)
                        )
                finally:
                    if watcher is not None:
                        watcher.stop()
                    bench.events.clear()
                    started = time.perf_counter()
                    detach_pod(bench.runtime, pod, delegates)
                    out.detach_ms.append((time.perf_counter() - started) * 1000)
                    for event, _ in bench.events:
                        if event.command == "DEL":
                            out.del_ms.setdefault(event.plugin, []).append(event.seconds * 1000)
                _check_released(bench, found, leases)
    text = bench.daemon_log.read_bytes()[log_start:].decode(errors="replace")
    out.daemon_link_down = len(re.findall(r"down\. Attempting to set up", text))
    out.daemon_retries = len(re.findall(r"retrying in", text))


def _check_attached(
    bench: Bench,
    pod_ns: str,
    pod: str,
    status: list[dict[str, Any]],
    leases: dict[int, Path],
    variant: Variant,
) -> list[Attachment]:
    """Each DHCP attachment is real: address in range and on the interface, ACKed to its MAC
    on the wire, in dnsmasq's lease file with the 2 minute lease; the pod's only default
    route is eth0's. Returns the attachments with their wire timeline."""
    adds = [(e, end) for e, end in bench.events if e.command == "ADD" and e.plugin == "macvlan"]
    if len(adds) != len(SEGMENTS):
        raise BenchFailure(f"{pod}: expected {len(SEGMENTS)} macvlan ADDs, saw {len(adds)}")
    found = []
    for seg, entry, (event, end) in zip(SEGMENTS, status[1:], adds, strict=True):
        ifname, mac, (address,) = entry["interface"], entry["mac"], entry["ips"]
        if entry["name"] != f"{POD_NAMESPACE}/{seg.nad}" or not seg.in_range(address):
            raise BenchFailure(f"{pod}: {entry} is not a lease from VLAN{seg.vlan}'s range")
        addrs = json.loads(_ip(pod_ns, "-j", "-4", "addr", "show", "dev", ifname))
        if [f"{a['local']}/{a['prefixlen']}" for a in addrs[0]["addr_info"]] != [f"{address}/24"]:
            raise BenchFailure(f"{pod}: {ifname} does not carry {address}/24: {addrs}")
        att = Attachment(variant.key, pod, ifname, seg, mac, address, end - event.seconds, end)
        _timeline(att, bench.sniffer.since(att.start - 0.001))
        lease = _lease_line(leases[seg.vlan], mac)
        if lease is None or lease[1] != address:
            raise BenchFailure(f"{pod}: dnsmasq has no lease of {address} for {mac}: {lease}")
        left = lease[0] - time.time()
        if not LEASE_SECONDS - 15 < left <= LEASE_SECONDS + 1:
            raise BenchFailure(f"{pod}: lease of {address} expires in {left:.0f}s, not ~120s")
        found.append(att)
    routes = json.loads(_ip(pod_ns, "-j", "-4", "route", "show"))
    defaults = [r.get("dev") for r in routes if r["dst"] == "default"]
    if defaults != ["eth0"]:
        raise BenchFailure(f"{pod}: default routes on {defaults}, expected only eth0")
    return found


def _timeline(att: Attachment, packets: list[Packet]) -> None:
    """Phases of one attachment from the wire (seconds): ADD start -> first DISCOVER ->
    OFFER -> ACK -> plugin exit; dnsmasq's probes of the offered address are counted."""
    mine = [p for p in packets if p.vlan == att.segment.vlan and p.mac == att.mac]
    mine = [p for p in mine if p.at <= att.end + 0.001]

    def first(kind: str) -> Packet:
        for p in mine:
            if p.kind == kind:
                return p
        raise BenchFailure(f"{att.pod} {att.ifname}: no DHCP{kind} from/to {att.mac} on the wire")

    discover, offer = first("DISCOVER"), first("OFFER")
    acks = [p for p in mine if p.kind == "ACK" and p.yiaddr == att.address]
    if not acks:
        raise BenchFailure(f"{att.pod} {att.ifname}: no DHCPACK of {att.address} on the wire")
    ack = acks[-1]
    att.discovers = sum(1 for p in mine if p.kind == "DISCOVER")
    att.pings = sum(  # dnsmasq's probes of the address it then offered
        1
        for p in packets
        if p.vlan == att.segment.vlan
        and p.kind == "PING"
        and p.dst == offer.yiaddr
        and discover.at <= p.at <= offer.at
    )
    att.phases = {
        "to DISCOVER": discover.at - att.start,
        "DISCOVER>OFFER": offer.at - discover.at,
        "OFFER>ACK": ack.at - offer.at,
        "ACK>done": att.end - ack.at,
    }


def _lease_line(lease_file: Path, mac: str) -> tuple[float, str] | None:
    """(expiry, address) of ``mac`` in dnsmasq's lease file, waiting up to a second for
    dnsmasq to write it."""
    deadline = time.monotonic() + 1.0
    while True:
        for line in lease_file.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[1].lower() == mac.lower():
                return float(parts[0]), parts[2]
        if time.monotonic() > deadline:
            return None
        time.sleep(0.01)


def _check_released(bench: Bench, attachments: list[Attachment], leases: dict[int, Path]) -> None:
    for att in attachments:
        if not any(
            p.kind == "RELEASE" and p.mac == att.mac and p.ciaddr == att.address
            for p in bench.sniffer.since(att.end)
        ):
            raise BenchFailure(f"{att.pod} {att.ifname}: no DHCPRELEASE of {att.address}")
        lease_file, mac = leases[att.segment.vlan], att.mac
        _wait_for(
            lambda: _lease_line_now(lease_file, mac) is None,  # noqa: B023 (called right here)
            f"dnsmasq to drop the lease of {att.address}",
            5,
        )


def _lease_line_now(lease_file: Path, mac: str) -> str | None:
    for line in lease_file.read_text().splitlines():
        if mac.lower() in line.lower():
            return line
    return None


def check_renewal(bench: Bench) -> str:
    """Attach one pod, wait for the daemon's renewal (a unicast REQUEST at T1, then an ACK
    that extends the lease), detach. Returns a one-line report."""
    variant = Variant("r", "renewal", no_ping=True, watcher=True, slow=False)
    with bench.dnsmasq(variant) as leases, netns_file(str(bench.tmp), "pod") as pod_ns:
        name = "net-tools-renewal"
        delegates = bench.delegates(name)
        pod = PodSandbox(POD_NAMESPACE, name, f"uid-{name}", "r00000", pod_ns)
        try:
            with LinkUpWatcher(pod_ns, names=[d.ifname for d in delegates[1:]]):
                bench.events.clear()
                status = attach_pod(bench.runtime, pod, delegates)
            (att, *_) = _check_attached(bench, pod_ns, name, status, leases, variant)
            first = _lease_line(leases[att.segment.vlan], att.mac)
            assert first is not None

            def renewed() -> bool:
                return any(
                    p.kind == "ACK" and p.mac == att.mac and p.at > att.end + 1
                    for p in bench.sniffer.since(att.end)
                )

            _wait_for(renewed, "the dhcp daemon to renew the lease", LEASE_SECONDS * 0.75)
            request = next(
                p
                for p in bench.sniffer.since(att.end + 1)
                if p.kind == "REQUEST" and p.mac == att.mac
            )
            time.sleep(0.2)
            second = _lease_line(leases[att.segment.vlan], att.mac)
            assert second is not None
        finally:
            detach_pod(bench.runtime, pod, delegates)
    return (
        f"renewal: {att.ifname} {att.address}: REQUEST (ciaddr {request.ciaddr}) "
        f"{request.at - att.end:.1f}s after the lease was bound (T1 = {LEASE_SECONDS // 2}s), "
        f"ACKed; dnsmasq's expiry moved {second[0] - first[0]:+.0f}s"
    )


# -- report --------------------------------------------------------------------------------


def _pct(values: list[float], pct: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(pct / 100 * (len(ordered) - 1)))]


def report(results: list[VariantResult]) -> None:
    print(
        "DHCP attach: eth0 (ptp + host-local) + net1/net2 (macvlan + dhcp, real dnsmasq and "
        f"CNI dhcp daemon 1.1.1), lease {LEASE}"
    )
    print(
        f"{'variant':<34}{'pods':>5}{'attach p50':>12}{'p95':>9}{'detach p50':>12}{'p95':>9}"
        f"{'watch p50':>11}"
    )
    for r in results:
        watch = f"{_pct(r.watcher_ms, 50):11.2f}" if r.watcher_ms else f"{'-':>11}"
        print(
            f"({r.variant.key}) {r.variant.title:<30}{len(r.attach_ms):>5}"
            f"{_pct(r.attach_ms, 50):12.1f}{_pct(r.attach_ms, 95):9.1f}"
            f"{_pct(r.detach_ms, 50):12.1f}{_pct(r.detach_ms, 95):9.1f}{watch}"
        )
    print("all times ms; per DHCP attachment (p50, from wire timestamps):")
    phases = ["to DISCOVER", "DISCOVER>OFFER", "OFFER>ACK", "ACK>done"]
    print(
        f"{'variant':<6}{'atts':>5}"
        + "".join(f"{p:>16}" for p in phases)
        + f"{'DISCOVERs':>11}{'probes':>8}{'link down':>11}{'retries':>9}"
    )
    for r in results:
        atts = r.attachments
        cells = "".join(
            f"{statistics.median(a.phases[p] for a in atts) * 1000:16.1f}" for p in phases
        )
        print(
            f"({r.variant.key}){'':<3}{len(atts):>5}{cells}"
            f"{statistics.fmean(a.discovers for a in atts):11.2f}"
            f"{statistics.fmean(a.pings for a in atts):8.2f}"
            f"{r.daemon_link_down:>11}{r.daemon_retries:>9}"
        )
    echoes = [ms for r in results for ms in r.echo_ms]
    print(
        f"checked: {sum(len(r.attachments) for r in results)} leases in range, on the pod's "
        f"interface, ACKed on the wire, in dnsmasq's lease file ({LEASE}), released on detach; "
        f"{len(echoes)} ICMP echoes from the leased addresses answered (p50 "
        f"{_pct(echoes, 50):.2f} ms)"
    )
    print(
        "columns: DISCOVERs = DHCPDISCOVERs per attachment; probes = dnsmasq's ICMP probes of "
        "the offered address; link down / retries = the dhcp daemon's log lines (whole variant)"
    )
    dels = "; ".join(
        f"({r.variant.key}) "
        + ", ".join(f"{plugin} {statistics.median(ms):.1f}" for plugin, ms in r.del_ms.items())
        for r in results
    )
    print(f"detach, DEL p50 per plugin process (macvlan includes the dhcp release): {dels}")
    for r in results:
        atts = r.attachments
        total = statistics.median(a.end - a.start for a in atts) * 1000
        shares = ", ".join(
            f"{p} {statistics.median(a.phases[p] for a in atts) * 1000:.0f}" for p in phases
        )
        print(f"({r.variant.key}) one DHCP attachment, p50 {total:.0f} ms: {shares}")
    by_key = {r.variant.key: r for r in results}
    if {"a", "b", "c"} <= set(by_key):

        def median_phase(key: str, phase: str) -> float:
            return statistics.median(a.phases[phase] for a in by_key[key].attachments)

        ping = median_phase("a", "DISCOVER>OFFER") - median_phase("b", "DISCOVER>OFFER")
        backoff = median_phase("b", "to DISCOVER") - median_phase("c", "to DISCOVER")
        print(
            f"what dominates: dnsmasq's ping of the address before its OFFER, {ping * 1000:.0f} ms"
            f" (a vs b, DISCOVER>OFFER), and the daemon's retry after finding the link down, "
            f"{backoff * 1000:.0f} ms (b vs c, to DISCOVER); both per attachment"
        )


def run(pods: int, slow_pods: int, renewal: bool) -> tuple[list[VariantResult], str | None]:
    results = []
    renewed = None
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="mhbench-dhcp-"))
        bench = Bench(stack, tmp)
        try:
            for variant in VARIANTS:
                result = VariantResult(variant)
                run_variant(bench, variant, slow_pods if variant.slow else pods, result)
                results.append(result)
            if renewal:
                renewed = check_renewal(bench)
        except BaseException:
            sys.stderr.write(_tail(bench.daemon_log, "dhcp daemon"))
            raise
    return results, renewed


def _tail(path: Path, what: str, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    return f"--- last lines of the {what} log:\n" + "\n".join(text) + "\n"


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.dhcp_attach")
    parser.add_argument("--pods", type=int, default=25, help="pods for the fast variant (c)")
    parser.add_argument("--slow-pods", type=int, default=3, help="pods for variants a, b, d")
    parser.add_argument("--renewal", action="store_true", help="also wait for one renewal")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench.dhcp_attach: needs root (network namespaces)", file=sys.stderr)
        return 2
    for path in (f"{CNI_BIN}/dhcp", f"{CNI_BIN}/macvlan", DNSMASQ):
        if not os.access(path, os.X_OK):
            print(f"bench.dhcp_attach: {path} is missing", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, _terminate)  # unwind (and clean up) on SIGTERM too
    started = time.monotonic()
    try:
        results, renewed = run(args.pods, args.slow_pods, args.renewal)
    except BenchFailure as err:
        print(f"bench.dhcp_attach: FAILED: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as err:
        print(f"bench.dhcp_attach: interrupted ({err or 'SIGINT'}), cleaned up", file=sys.stderr)
        return 130
    report(results)
    if renewed:
        print(renewed)
    else:
        print(
            f"renewal: not waited for; the dhcp daemon renews each lease at T1 "
            f"({LEASE_SECONDS // 2}s of {LEASE}) for as long as it runs (--renewal checks it)"
        )
    print(f"bench time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv[1:]))
    except OSError as err:
        if err.errno == errno.EPERM:
            print(f"bench.dhcp_attach: {err}", file=sys.stderr)
            sys.exit(2)
        raise
