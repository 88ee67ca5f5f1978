"""Probes: ICMP echo, TCP connect, UDP echo and HTTP GET from a network namespace of the lab,
with a deadline and retries (as netlab's ``validate``: a probe that does not give the wanted
result is tried again until its deadline).

Runs inside the lab's sandbox (``Sandbox.call``). There a process can't start threads, so
probes run concurrently on one asyncio loop in one thread: each socket is made with the
thread in the source namespace for that moment (``ns.thread_in_netns``) and then used
non-blocking; an address literal never needs a resolver (no executor thread).

Outcomes: ``answered`` (echo reply, connection, HTTP response, UDP reply), ``refused``
(the target said no: RST or ICMP port unreachable, so traffic did reach it),
``unreachable`` (an ICMP error or EHOSTUNREACH/ENETUNREACH on the way), ``timeout``,
``error`` (the probe could not be made). ``allow`` wants ``answered``; ``deny`` wants
neither ``answered`` nor ``refused``.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import ipaddress
import os
import random
import re
import socket
import struct
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from multihome.lab import dhcpdiscover, neighbours, netlink, ns

Proto = Literal["icmp", "tcp", "udp", "http", "dhcp"]
Outcome = Literal["answered", "refused", "unreachable", "timeout", "error"]
Want = Literal["allow", "deny"]

UDP_PAYLOAD = b"multihome-verify"
_UNREACH = {errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EADDRNOTAVAIL}
_ICMP_UNREACH_CODES = {
    0: "network unreachable",
    1: "host unreachable",
    3: "port unreachable",
    9: "network prohibited",
    10: "host prohibited",
    13: "administratively prohibited",
}


@dataclass(frozen=True)
class Probe:
    """One probe: from the namespace at ``netns`` to ``dst`` (an address literal)."""

    netns: str
    dst: str
    proto: Proto = "icmp"
    port: int | None = None
    want: Want = "allow"
    deadline: float = 2.0
    attempts: int = 4
    dev: str | None = None
    """dhcp: the NIC the DISCOVER leaves by (``dst`` is the server expected to answer)."""

    def describe(self) -> str:
        if self.proto == "dhcp":
            return f"DHCP DISCOVER out of {self.dev}"
        host = f"[{self.dst}]" if ":" in self.dst else self.dst
        if self.proto == "http":
            return f"http://{host}:{self.port or 80}"
        if self.proto == "icmp":
            return f"ping {self.dst}"
        return f"{self.proto} {host}:{self.port}"


@dataclass(frozen=True)
class ProbeResult:
    outcome: Outcome
    detail: str
    """In a user's words: ``reply in 0.2 ms``, ``HTTP/1.0 200 OK``, ``no reply in 0.5 s``."""
    tries: int
    elapsed: float
    offer: dhcpdiscover.Offer | None = None
    """dhcp: the OFFER that answered."""

    @property
    def answered(self) -> bool:
        return self.outcome == "answered"

    @property
    def reached(self) -> bool:
        """Whether traffic got to the target (it answered, or refused)."""
        return self.outcome in ("answered", "refused")

    def satisfies(self, want: Want) -> bool:
        return self.answered if want == "allow" else self.outcome in ("unreachable", "timeout")


# -- sockets made in a namespace ------------------------------------------------------------
class Namespaces:
    """Open namespace files by path, closed at the end of a run."""

    def __init__(self) -> None:
        self._fds: dict[str, int] = {}

    def socket(self, netns: str, family: int, kind: int, proto: int = 0) -> socket.socket:
        fd = self._fds.get(netns)
        if fd is None:
            fd = self._fds[netns] = ns.open_ns(netns)
        with ns.thread_in_netns(fd):
            sock = socket.socket(family, kind, proto)
        sock.setblocking(False)
        return sock

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()


@contextlib.contextmanager
def namespaces() -> Iterator[Namespaces]:
    found = Namespaces()
    try:
        yield found
    finally:
        found.close()


def family(dst: str) -> int:
    return socket.AF_INET6 if ipaddress.ip_address(dst).version == 6 else socket.AF_INET


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms" if seconds < 0.1 else f"{seconds:.2g} s"


# -- one attempt per protocol ---------------------------------------------------------------
def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return int(~total & 0xFFFF)


_ident = random.randrange(1 << 16)


def _next_ident() -> int:
    global _ident
    _ident = (_ident + 1) & 0xFFFF
    return _ident


async def _icmp(nss: Namespaces, probe: Probe, timeout: float) -> tuple[Outcome, str]:
    if family(probe.dst) != socket.AF_INET:
        return "error", "ICMP probes are IPv4 only here"
    loop = asyncio.get_running_loop()
    ident = _next_ident()
    payload = b"multihome-verify" + os.urandom(8)
    header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
    packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, 1) + payload
    with nss.socket(probe.netns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as sock:
        start = time.monotonic()
        try:
            await loop.sock_sendto(sock, packet, (probe.dst, 0))
        except OSError as exc:
            return _os_outcome(exc)
        while (left := timeout - (time.monotonic() - start)) > 0:
            try:
                data, peer = await asyncio.wait_for(loop.sock_recvfrom(sock, 4096), left)
            except TimeoutError:
                break
            except OSError as exc:
                return _os_outcome(exc)
            ihl = (data[0] & 0x0F) * 4
            if len(data) < ihl + 8:
                continue
            kind, code = data[ihl], data[ihl + 1]
            if kind == 0 and peer[0] == probe.dst:
                rid = struct.unpack("!H", data[ihl + 4 : ihl + 6])[0]
                if rid == ident:
                    return "answered", f"reply in {_ms(time.monotonic() - start)}"
            elif kind in (3, 11):
                inner = data[ihl + 8 :]
                if len(inner) < 28:
                    continue
                inner_ihl = (inner[0] & 0x0F) * 4
                original = inner[inner_ihl : inner_ihl + 8]
                if len(original) == 8 and original[0] == 8:
                    if struct.unpack("!H", original[4:6])[0] != ident:
                        continue
                    if kind == 11:
                        return "unreachable", f"TTL exceeded (ICMP from {peer[0]}): a routing loop"
                    what = _ICMP_UNREACH_CODES.get(code, f"unreachable (code {code})")
                    return "unreachable", f"{what} (ICMP from {peer[0]})"
    return "timeout", f"no reply in {_ms(timeout)}"


def _os_outcome(exc: OSError) -> tuple[Outcome, str]:
    if exc.errno == errno.ECONNREFUSED:
        return "refused", "connection refused"
    if exc.errno in _UNREACH:
        return "unreachable", os.strerror(exc.errno or 0).lower()
    if exc.errno == errno.ENETDOWN:
        return "unreachable", "network is down"
    return "error", f"{exc.strerror or exc}"


async def _connect(
    nss: Namespaces, probe: Probe, timeout: float
) -> tuple[socket.socket | None, Outcome, str]:
    loop = asyncio.get_running_loop()
    sock = nss.socket(probe.netns, family(probe.dst), socket.SOCK_STREAM)
    start = time.monotonic()
    try:
        await asyncio.wait_for(loop.sock_connect(sock, (probe.dst, probe.port or 80)), timeout)
    except TimeoutError:
        sock.close()
        return None, "timeout", f"no connection in {_ms(timeout)}"
    except OSError as exc:
        sock.close()
        return None, *_os_outcome(exc)
    return sock, "answered", f"connected in {_ms(time.monotonic() - start)}"


async def _tcp(nss: Namespaces, probe: Probe, timeout: float) -> tuple[Outcome, str]:
    sock, outcome, detail = await _connect(nss, probe, timeout)
    if sock is not None:
        sock.close()
    return outcome, detail


_TITLE = re.compile(rb"<title>(.*?)</title>", re.IGNORECASE | re.DOTALL)


async def _http(nss: Namespaces, probe: Probe, timeout: float) -> tuple[Outcome, str]:
    loop = asyncio.get_running_loop()
    start = time.monotonic()
    sock, outcome, detail = await _connect(nss, probe, timeout)
    if sock is None:
        return outcome, detail
    host = f"[{probe.dst}]" if ":" in probe.dst else probe.dst
    request = f"GET / HTTP/1.0\r\nHost: {host}\r\nUser-Agent: multihome-verify\r\n\r\n"
    body = b""
    with sock:
        try:
            await loop.sock_sendall(sock, request.encode())
            while len(body) < 65536:
                left = timeout - (time.monotonic() - start)
                if left <= 0:
                    break
                chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), left)
                if not chunk:
                    break
                body += chunk
        except TimeoutError:
            pass
        except OSError as exc:
            if not body:
                return _os_outcome(exc)
    status = body.split(b"\r\n", 1)[0].decode("latin-1", "replace").strip()
    if not status.startswith("HTTP/"):
        if not body:
            return "timeout", f"connected, but no HTTP response in {_ms(timeout)}"
        return "error", f"not an HTTP response: {status[:60]!r}"
    title = _TITLE.search(body)
    said = f" ({title.group(1).decode('utf-8', 'replace').strip()})" if title else ""
    return "answered", f"{status}{said} in {_ms(time.monotonic() - start)}"


async def _udp(nss: Namespaces, probe: Probe, timeout: float) -> tuple[Outcome, str]:
    loop = asyncio.get_running_loop()
    with nss.socket(probe.netns, family(probe.dst), socket.SOCK_DGRAM) as sock:
        start = time.monotonic()
        try:
            sock.connect((probe.dst, probe.port or 0))
            await loop.sock_sendall(sock, UDP_PAYLOAD)
            data = await asyncio.wait_for(loop.sock_recv(sock, 4096), timeout)
        except TimeoutError:
            return "timeout", f"no UDP reply in {_ms(timeout)}"
        except OSError as exc:
            return _os_outcome(exc)
    if data != UDP_PAYLOAD:
        return (
            "answered",
            f"a reply of {len(data)} B (not the echo) in {_ms(time.monotonic() - start)}",
        )
    return "answered", f"echo in {_ms(time.monotonic() - start)}"


async def _dhcp(nss: Namespaces, probe: Probe, timeout: float) -> tuple[Outcome, str]:
    loop = asyncio.get_running_loop()
    if not probe.dev:
        return "error", "a DHCP probe needs the NIC it leaves by"
    xid = dhcpdiscover.new_xid()
    with nss.socket(probe.netns, socket.AF_INET, socket.SOCK_DGRAM) as sock:
        dhcpdiscover.prepare(sock, probe.dev)
        start = time.monotonic()
        await loop.sock_sendto(
            sock, dhcpdiscover.discover_packet(xid), ("255.255.255.255", dhcpdiscover.SERVER_PORT)
        )
        while (left := timeout - (time.monotonic() - start)) > 0:
            try:
                data = await asyncio.wait_for(loop.sock_recv(sock, 4096), left)
            except TimeoutError:
                break
            offer = dhcpdiscover.parse_offer(data, xid)
            if offer is not None:
                _OFFERS[id(probe)] = offer
                return "answered", f"{offer.describe()} in {_ms(time.monotonic() - start)}"
    return "timeout", f"no OFFER in {_ms(timeout)}"


# the OFFER each dhcp probe got, for its result (the attempt functions return text)
_OFFERS: dict[int, dhcpdiscover.Offer] = {}
_ATTEMPT = {"icmp": _icmp, "tcp": _tcp, "udp": _udp, "http": _http, "dhcp": _dhcp}


async def run_one(nss: Namespaces, probe: Probe) -> ProbeResult:
    """Try until the wanted result, the deadline, or the attempts run out; attempts are
    spread over the deadline (a quick failure waits for its turn before trying again)."""
    start = time.monotonic()
    slot = probe.deadline / max(1, probe.attempts)
    tries = 0
    outcome: Outcome = "error"
    detail = "not tried"
    while True:
        tries += 1
        left = probe.deadline - (time.monotonic() - start)
        try:
            outcome, detail = await _ATTEMPT[probe.proto](nss, probe, max(0.01, min(slot, left)))
        except OSError as exc:
            outcome, detail = _os_outcome(exc)
        except Exception as exc:  # a probe that can't run (a bad port, ...) is its verdict
            outcome, detail = "error", f"{type(exc).__name__}: {exc}"
        result = ProbeResult(
            outcome, detail, tries, time.monotonic() - start, _OFFERS.pop(id(probe), None)
        )
        if result.satisfies(probe.want) or outcome == "error" or tries >= probe.attempts:
            return result
        wait = slot * tries - (time.monotonic() - start)
        if time.monotonic() - start + max(0.0, wait) >= probe.deadline:
            return result
        if wait > 0:
            await asyncio.sleep(wait)


MAX_PROBES_AT_ONCE = neighbours.PROBES_AT_ONCE
"""Probes in flight at once. Bounded: a large lab has thousands of probes, each a socket;
every raw ICMP socket of a namespace gets a copy of each ICMP packet there; and each probe
may make a few neighbour entries, which count toward the host's one table for every
namespace (multihome.lab.neighbours; up's preflight counts them)."""


class Flusher:
    """Flushes the neighbour entries the kernel learnt in a namespace (as ``ip neigh flush
    all``: the lab's permanent ones stay) once its probes are done, so that they don't pile
    up in the host's one table. A forked process of its own, fed namespace paths over a
    pipe: the probes' event loop neither waits for it nor starts a process per namespace
    (at 1000 pods that was some 1000 ``ip`` processes, started one after the other by the
    loop), and pyroute2's calls, which run an event loop of their own, stay out of this
    one. ``close`` waits until every namespace sent was flushed."""

    def __init__(self) -> None:
        reader, self._writer = os.pipe()
        with contextlib.suppress(OSError):  # room for every path: a write never blocks
            fcntl.fcntl(self._writer, _F_SETPIPE_SZ, 1 << 20)
        self._pid = os.fork()
        if self._pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                ns.die_with_parent()
                os.close(self._writer)
                with open(reader, "rb") as lines:
                    for line in lines:
                        _flush(line.decode().rstrip("\n"))
                code = 0
            finally:
                os._exit(code)
        os.close(reader)

    def flush(self, netns: str) -> None:
        os.write(self._writer, netns.encode() + b"\n")  # one line < PIPE_BUF: one write

    def close(self) -> None:
        if self._writer < 0:
            return
        os.close(self._writer)
        self._writer = -1
        os.waitpid(self._pid, 0)


_F_SETPIPE_SZ = 1031


def _flush(netns: str) -> None:  # pragma: no cover - runs in the flusher
    with contextlib.suppress(OSError, netlink.NetlinkError), netlink.NetNS(netns) as inside:
        inside.flush_neighbours()


def run_probes(probes: Sequence[Probe], keep: Collection[str] = ()) -> list[ProbeResult]:
    """Run the probes, ``MAX_PROBES_AT_ONCE`` at a time; results in the same order. A
    namespace's learnt neighbour entries are flushed when its last probe is done, so the
    probes' entries don't pile up in the host's one table; not in ``keep``, namespaces
    measured later (a stream's ends): which of two default routes the kernel takes depends
    on its gateways' entries (dead gateway detection), and a stream must find them as the
    probes left them. Call inside the sandbox."""
    if not probes:
        return []
    left: dict[str, int] = {}
    for probe in probes:
        left[probe.netns] = left.get(probe.netns, 0) + 1
    for netns in keep:
        left[netns] = left.get(netns, 0) + 1  # never reaches 0

    async def main(flusher: Flusher) -> list[ProbeResult]:
        gate = asyncio.Semaphore(MAX_PROBES_AT_ONCE)

        async def one(probe: Probe) -> ProbeResult:
            async with gate:
                result = await run_one(nss, probe)
                left[probe.netns] -= 1
                if not left[probe.netns]:
                    flusher.flush(probe.netns)
                return result

        with namespaces() as nss:
            return list(await asyncio.gather(*(one(p) for p in probes)))

    flusher = Flusher()  # forked before the loop starts
    try:
        return asyncio.run(main(flusher))
    finally:
        flusher.close()
