"""rtnetlink for the lab's plugins: the few link, address and route requests the calico
plugin makes, as ``ip`` would send them, over a netlink socket of the calling process.

A plugin runs once per pod, so this module imports only CPython's C module ``_socket``
(``socket`` would pull in ``enum``, ``selectors`` and ``collections``) and packs its structs
with ``int.to_bytes`` (``_struct`` is one more shared library to load). A socket
belongs to the network namespace its process was in when it was made: make one after
entering the namespace to work on. Requests are sent one at a time and each waits for the
kernel's answer; a refusal raises :class:`NetlinkError` with the kernel's errno and, where
it gives one, its extended-ack message (what ``ip`` prints after ``Error:``).
"""

from __future__ import annotations

import _socket
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

# linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/veth.h, linux/if_addr.h
NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11
NLM_F_REQUEST = 0x1
NLM_F_ACK = 0x4
NLM_F_DUMP = 0x300
NLM_F_EXCL = 0x200
NLM_F_CREATE = 0x400
NLM_F_CAPPED = 0x100
NLM_F_ACK_TLVS = 0x200
NLMSG_ERROR = 2
NLMSG_DONE = 3
NLMSGERR_ATTR_MSG = 1
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
RTM_NEWROUTE = 24
IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_TXQLEN, IFLA_LINKINFO = 1, 3, 4, 13, 18
IFLA_NET_NS_FD = 28
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_DST, RTA_OIF, RTA_GATEWAY = 1, 4, 5
IFF_UP = 0x1
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3  # what `ip route add` sets
RT_SCOPE_UNIVERSE, RT_SCOPE_LINK = 0, 253
RTN_UNICAST = 1


class _Layout:
    """A C struct of unsigned fields of these sizes, in the host's byte order (as netlink
    has them): ``_struct.Struct``'s pack and unpack_from, without loading ``_struct``."""

    def __init__(self, *sizes: int) -> None:
        self.sizes = sizes
        self.size = sum(sizes)

    def pack(self, *values: int) -> bytes:
        fields = zip(values, self.sizes, strict=True)
        return b"".join(v.to_bytes(n, sys.byteorder) for v, n in fields)

    def unpack_from(self, data: bytes, offset: int = 0) -> tuple[int, ...]:
        values = []
        for n in self.sizes:
            values.append(int.from_bytes(data[offset : offset + n], sys.byteorder))
            offset += n
        return tuple(values)


_HEADER = _Layout(4, 2, 2, 4, 4)  # nlmsghdr: len, type, flags, seq, pid
_IFINFO = _Layout(1, 1, 2, 4, 4, 4)  # ifinfomsg: family, pad, type, index, flags, change
_IFADDR = _Layout(1, 1, 1, 1, 4)  # ifaddrmsg: family, prefixlen, flags, scope, index
_RTMSG = _Layout(1, 1, 1, 1, 1, 1, 1, 1, 4)  # rtmsg: family .. type, flags
_ATTR = _Layout(2, 2)  # rtattr: len, type
_U32 = _Layout(4)
_BY_NAME = _IFINFO.pack(0, 0, 0, 0, 0, 0)  # an ifinfomsg with no index: IFLA_IFNAME names the link


class NetlinkError(OSError):
    """The kernel refused a request: ``errno``, ``strerror`` and its extended ack, if any."""

    def __init__(self, errno: int, extack: str = "") -> None:
        super().__init__(errno, os.strerror(errno))
        self.extack = extack

    def __str__(self) -> str:
        return f"{self.strerror} ({self.extack})" if self.extack else str(self.strerror)


def attr(kind: int, payload: bytes) -> bytes:
    """One rtattr, padded to 4 bytes."""
    size = 4 + len(payload)
    return _ATTR.pack(size, kind) + payload + b"\0" * (-size & 3)


def _name(name: str) -> bytes:
    return name.encode() + b"\0"


def _mac(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


def family_of(address: str) -> int:
    return _socket.AF_INET6 if ":" in address else _socket.AF_INET


def _attrs(data: bytes, offset: int) -> Iterator[tuple[int, bytes]]:
    while offset + 4 <= len(data):
        size, kind = _ATTR.unpack_from(data, offset)
        if size < 4:
            return
        yield kind & 0x3FFF, data[offset + 4 : offset + size]  # without NESTED/BYTEORDER
        offset += (size + 3) & ~3


class Rtnl:
    """A NETLINK_ROUTE socket in the current network namespace."""

    def __init__(self) -> None:
        self.sock = _socket.socket(
            _socket.AF_NETLINK, _socket.SOCK_RAW | _socket.SOCK_CLOEXEC, NETLINK_ROUTE
        )
        try:
            # errors without the request echoed back, with the kernel's message if any
            self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
            self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 1)
        except OSError:  # older kernels: plain errors
            pass
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Rtnl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the exchange ----------------------------------------------------------------------

    def request(self, kind: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
        """Send one request with an ack asked; its answers (type, payload) before the ack.
        Raises NetlinkError if the kernel refused it."""
        self.seq += 1
        seq = self.seq
        flags |= NLM_F_REQUEST | NLM_F_ACK
        self.sock.send(_HEADER.pack(_HEADER.size + len(body), kind, flags, seq, 0) + body)
        answers: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(1 << 16)
            offset = 0
            while offset + _HEADER.size <= len(data):
                size, kind_, flags_, seq_, _ = _HEADER.unpack_from(data, offset)
                if size < _HEADER.size:
                    break
                payload = data[offset + _HEADER.size : offset + size]
                offset += (size + 3) & ~3
                if seq_ != seq:
                    continue  # not ours (none is expected: one request at a time)
                if kind_ not in (NLMSG_ERROR, NLMSG_DONE):
                    answers.append((kind_, payload))
                    continue
                # the ack, or a dump's end (no ack follows it): its error code first
                error = int.from_bytes(payload[:4], sys.byteorder, signed=True)
                if error == 0:
                    return answers
                raise NetlinkError(-error, _extack(payload, kind_, flags_))

    # -- links -----------------------------------------------------------------------------

    def add_veth(
        self,
        name: str,
        mac: str,
        peer: str,
        peer_mac: str,
        peer_netns_fd: int,
        *,
        mtu: int,
        txqlen: int,
    ) -> None:
        """``ip link add NAME address MAC mtu MTU txqueuelen Q type veth peer name PEER
        address PEER_MAC mtu MTU txqueuelen Q netns FD``."""
        peer_attrs = (
            attr(IFLA_IFNAME, _name(peer))
            + attr(IFLA_ADDRESS, _mac(peer_mac))
            + attr(IFLA_MTU, _U32.pack(mtu))
            + attr(IFLA_TXQLEN, _U32.pack(txqlen))
            + attr(IFLA_NET_NS_FD, _U32.pack(peer_netns_fd))
        )
        info = attr(IFLA_INFO_KIND, b"veth") + attr(
            IFLA_INFO_DATA, attr(VETH_INFO_PEER, _BY_NAME + peer_attrs)
        )
        body = (
            _BY_NAME
            + attr(IFLA_IFNAME, _name(name))
            + attr(IFLA_ADDRESS, _mac(mac))
            + attr(IFLA_MTU, _U32.pack(mtu))
            + attr(IFLA_TXQLEN, _U32.pack(txqlen))
            + attr(IFLA_LINKINFO, info)
        )
        self.request(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, body)

    def link_index(self, name: str) -> int:
        """The index of the link ``name``; NetlinkError ENODEV if there is none."""
        body = _BY_NAME + attr(IFLA_IFNAME, _name(name))
        for kind, payload in self.request(RTM_GETLINK, 0, body):
            if kind == RTM_NEWLINK:
                return _IFINFO.unpack_from(payload)[3]
        raise NetlinkError(19)  # ENODEV

    def set_up(self, index: int) -> None:
        """``ip link set DEV up``."""
        self.request(RTM_NEWLINK, 0, _IFINFO.pack(0, 0, 0, index, IFF_UP, IFF_UP))

    def delete_link(self, name: str) -> None:
        """``ip link del NAME`` (a veth's peer goes with it)."""
        self.request(RTM_DELLINK, 0, _BY_NAME + attr(IFLA_IFNAME, _name(name)))

    # -- addresses and routes --------------------------------------------------------------

    def add_address(self, address: str, prefixlen: int, index: int) -> None:
        """``ip addr add ADDRESS/PREFIXLEN dev DEV``: scope global, no broadcast."""
        family = family_of(address)
        raw = _socket.inet_pton(family, address)
        body = _IFADDR.pack(family, prefixlen, 0, RT_SCOPE_UNIVERSE, index)
        body += attr(IFA_LOCAL, raw) + attr(IFA_ADDRESS, raw)
        self.request(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, body)

    def addresses(self, index: int) -> list[tuple[str, int, int]]:
        """The addresses of link ``index``: (address, prefixlen, scope)."""
        found = []
        for kind, payload in self.request(RTM_GETADDR, NLM_F_DUMP, _IFADDR.pack(0, 0, 0, 0, 0)):
            if kind != RTM_NEWADDR:
                continue
            family, prefixlen, _, scope, at = _IFADDR.unpack_from(payload)
            if at != index:
                continue
            attrs = dict(_attrs(payload, _IFADDR.size))
            raw = attrs.get(IFA_LOCAL) or attrs.get(IFA_ADDRESS)
            if raw is not None:
                found.append((_socket.inet_ntop(family, raw), prefixlen, scope))
        return found

    def add_route(
        self,
        dst: str,
        prefixlen: int,
        index: int,
        *,
        via: str = "",
        scope: int = RT_SCOPE_UNIVERSE,
    ) -> None:
        """``ip route add DST/PREFIXLEN [via VIA] dev DEV [scope SCOPE]``: table main,
        proto boot, unicast."""
        family = family_of(dst)
        body = _RTMSG.pack(
            family, prefixlen, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, scope, RTN_UNICAST, 0
        )
        body += attr(RTA_DST, _socket.inet_pton(family, dst))
        if via:
            body += attr(RTA_GATEWAY, _socket.inet_pton(family_of(via), via))
        body += attr(RTA_OIF, _U32.pack(index))
        self.request(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, body)


def _extack(payload: bytes, kind: int, flags: int) -> str:
    """The kernel's message in an error ack or a dump's end (NETLINK_EXT_ACK), or ""."""
    if not flags & NLM_F_ACK_TLVS:
        return ""
    offset = 4  # the error code; an error ack then has the request (capped: its header)
    if kind == NLMSG_ERROR:
        echoed = _HEADER.size if flags & NLM_F_CAPPED else _HEADER.unpack_from(payload, 4)[0]
        offset += (echoed + 3) & ~3
    for kind_, value in _attrs(payload, offset):
        if kind_ == NLMSGERR_ATTR_MSG:
            return value.rstrip(b"\0").decode(errors="replace")
    return ""
