"""A DHCP DISCOVER that takes no lease: is a DHCP server answering on a segment?

The DISCOVER leaves a NIC (any, even one without an address: the socket is bound to the
device, to UDP port 68, and sends to 255.255.255.255) with a random locally administered
client MAC and the broadcast flag; the OFFER is read and nothing more is sent (no REQUEST),
so the server hands out nothing (RFC 2131 4.3.1: an offered address is not committed).

``discover_packet``/``parse_offer``/``prepare`` serve an asyncio caller that makes its own
socket (verify's probes); ``discover`` is the blocking whole for a caller in a namespace.
"""

from __future__ import annotations

import os
import socket
import struct
import time
from dataclasses import dataclass

MAGIC = b"\x63\x82\x53\x63"
BOOTREQUEST, BOOTREPLY = 1, 2
DHCPDISCOVER, DHCPOFFER = 1, 2
CLIENT_PORT, SERVER_PORT = 68, 67
_BOOTP = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")


@dataclass(frozen=True)
class Offer:
    address: str
    """The address offered (yiaddr)."""
    server: str | None
    """The server identifier (option 54)."""
    routers: tuple[str, ...]
    """The routers offered (option 3): what the CNI dhcp IPAM would install."""
    lease: int | None
    """Seconds (option 51)."""

    def describe(self) -> str:
        router = ", ".join(self.routers) if self.routers else "none"
        lease = f", lease {self.lease} s" if self.lease is not None else ""
        return f"OFFER of {self.address} from {self.server or '?'} (router {router}{lease})"


def new_xid() -> int:
    return int.from_bytes(os.urandom(4), "big")


def discover_packet(xid: int) -> bytes:
    """A DHCPDISCOVER asking for subnet mask, router and DNS, broadcast flag set."""
    mac = bytes([0x02]) + os.urandom(5)  # locally administered: nobody's real NIC
    header = _BOOTP.pack(
        BOOTREQUEST, 1, 6, 0, xid, 0, 0x8000, *(b"\0" * 4,) * 4, mac + b"\0" * 10, b"", b""
    )
    options = bytes([53, 1, DHCPDISCOVER, 55, 3, 1, 3, 6, 255])
    return header + MAGIC + options


def parse_offer(data: bytes, xid: int) -> Offer | None:
    """The OFFER in ``data`` if it answers ``xid``, else None."""
    if len(data) < _BOOTP.size + 4 or data[0] != BOOTREPLY:
        return None
    fields = _BOOTP.unpack_from(data)
    if fields[4] != xid or data[_BOOTP.size : _BOOTP.size + 4] != MAGIC:
        return None
    options: dict[int, bytes] = {}
    at = _BOOTP.size + 4
    while at < len(data):
        code = data[at]
        if code == 255:
            break
        if code == 0:
            at += 1
            continue
        if at + 1 >= len(data):
            break
        size = data[at + 1]
        options[code] = data[at + 2 : at + 2 + size]
        at += 2 + size
    if options.get(53) != bytes([DHCPOFFER]):
        return None
    server = options.get(54)
    routers = options.get(3, b"")
    lease = options.get(51)
    return Offer(
        address=socket.inet_ntoa(fields[8]),
        server=socket.inet_ntoa(server) if server and len(server) == 4 else None,
        routers=tuple(socket.inet_ntoa(routers[i : i + 4]) for i in range(0, len(routers) - 3, 4)),
        lease=struct.unpack("!I", lease)[0] if lease and len(lease) == 4 else None,
    )


def prepare(sock: socket.socket, ifname: str) -> None:
    """Make a UDP socket a DHCP client's on ``ifname``: bound to the device and port 68
    (several probes on different devices of one namespace may hold port 68 at once)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, ifname.encode())
    sock.bind(("0.0.0.0", CLIENT_PORT))


def discover(ifname: str, timeout: float) -> Offer | None:
    """Send a DISCOVER out of ``ifname`` (in this thread's network namespace) and wait up to
    ``timeout`` seconds for an OFFER; None when none came."""
    xid = new_xid()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        prepare(sock, ifname)
        sock.sendto(discover_packet(xid), ("255.255.255.255", SERVER_PORT))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                return None
            offer = parse_offer(data, xid)
            if offer is not None:
                return offer
    return None
