"""The one module of multihome that speaks netlink (pyroute2).

A ``NetNS`` is one network namespace and the socket the lab uses in it, reused for every
object: a plain NETLINK_ROUTE socket that carries pyroute2's message layouts (its message
classes give the fixed parts and decode the attributes asked for; the requests are packed
here): links, bridges (VLAN-aware or not), veth pairs (one end created directly in another
namespace under its final name, the other enslaved to a bridge), macvlan and VLAN links,
addresses, routes, neighbour entries, link state; and the namespace's own net.* sysctls
(through /proc/sys). pyroute2's ``IPRoute`` (an event loop a call, ~0.09 s to import) is
left to the probes of rarer link kinds. ``Netlink`` keeps one ``NetNS`` per path. Named
namespaces (``ip netns add`` semantics: a bind mount of the namespace on
``/run/netns/NAME``) are made and removed by ``create_netns``/``delete_netns`` without a
subprocess.

Everything here runs inside the lab's sandbox (a process that entered it): the paths are
the sandbox's (its own ``/run/netns``), and the calling thread's network namespace is
switched only for the moment a socket or a /proc/sys/net file is opened, then restored.
Errors are ``NetlinkError`` naming the namespace, the operation and the object.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import os
import re
import socket
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Any

from . import pyroute2_parts  # noqa: F401  first: pyroute2's modules without its __init__

# isort: split
from pyroute2.netlink import (
    NLA_F_NESTED,
    NLA_F_NET_BYTEORDER,
    NLM_F_ACK,
    NLM_F_CREATE,
    NLM_F_DUMP,
    NLM_F_REPLACE,
    NLM_F_REQUEST,
    NLMSG_DONE,
    NLMSG_ERROR,
    nla_base,
    nlmsg,
    nlmsgerr,
)
from pyroute2.netlink.exceptions import NetlinkError as _PyrNetlinkError
from pyroute2.netlink.rtnl import (
    RTM_DELNEIGH,
    RTM_GETADDR,
    RTM_GETLINK,
    RTM_GETNEIGH,
    RTM_GETROUTE,
    RTM_NEWADDR,
    RTM_NEWLINK,
    RTM_NEWNEIGH,
    RTM_NEWROUTE,
)
from pyroute2.netlink.rtnl.ifaddrmsg import ifaddrmsg
from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP, ifinfmsg
from pyroute2.netlink.rtnl.ndmsg import NUD_NOARP as NUD_NOARP
from pyroute2.netlink.rtnl.ndmsg import NUD_PERMANENT as NUD_PERMANENT
from pyroute2.netlink.rtnl.ndmsg import ndmsg
from pyroute2.netlink.rtnl.rtmsg import rtmsg

from . import ns
from .names import check_ifname, check_name, check_sysctl

NETNS_DIR = "/run/netns"
_MAC = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}")


class NetlinkError(RuntimeError):
    """A netlink (or namespace) operation failed; ``errno`` is the kernel's error code."""

    def __init__(self, message: str, code: int | None = 0) -> None:
        super().__init__(message)
        self.errno = code or 0


@dataclass(frozen=True)
class LinkStats:
    """A link's counters (IFLA_STATS64), e.g. to see which segment carried traffic."""

    rx_bytes: int
    tx_bytes: int
    rx_packets: int
    tx_packets: int
    rx_dropped: int
    tx_dropped: int

    @classmethod
    def from_netlink(cls, stats: Any) -> LinkStats:
        """From a link message's IFLA_STATS64 (or IFLA_STATS) attribute."""
        return cls(**{name: int(stats[name]) for name in cls.__dataclass_fields__})


@dataclass(frozen=True)
class LinkInfo:
    """A link as ``links()`` reads it: what a verifier compares with the design."""

    name: str
    index: int
    mac: str | None
    up: bool
    mtu: int
    kind: str | None
    """``veth``, ``macvlan``, ``bridge``, ...; None for a plain device (``lo``)."""
    master: str | None
    """The bridge (or bond) it is enslaved to, in the same namespace."""
    addresses: tuple[str, ...]
    """``ip/prefix``, IPv4 and IPv6 (link-local too), in the kernel's order."""
    stats: LinkStats


# -- named namespaces -----------------------------------------------------------------------
def _mac(mac: str) -> str:
    parts = mac.lower().split(":")
    if len(parts) != 6 or not all(
        len(p) == 2 and all(c in "0123456789abcdef" for c in p) for p in parts
    ):
        raise ValueError(f"{mac!r} is not a MAC address")
    return ":".join(parts)


def netns_path(name: str, run_dir: str = NETNS_DIR) -> str:
    return os.path.join(run_dir, check_name(name, "namespace name"))


def create_netns(name: str, run_dir: str = NETNS_DIR) -> str:
    """Make a new network namespace held by a bind mount on ``run_dir/name`` (as
    ``ip netns add`` does) with ``lo`` down, and return its path. Only the calling thread
    unshares, for a moment: no fork, no subprocess."""
    path = netns_path(name, run_dir)
    try:
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
    except FileExistsError as exc:
        raise NetlinkError(f"network namespace {name!r} already exists", errno.EEXIST) from exc
    home = os.open(ns.ns_file("thread-self", "net"), os.O_RDONLY | os.O_CLOEXEC)
    try:
        ns.unshare(ns.CLONE_NEWNET)
        try:
            ns.mount(ns.ns_file("thread-self", "net"), path, None, ns.MS_BIND)
        finally:
            ns.setns(home, ns.CLONE_NEWNET)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(path)
        raise NetlinkError(f"cannot create network namespace {name!r}: {exc}", exc.errno) from exc
    finally:
        os.close(home)
    return path


_LOOPBACK_INDEX = 1  # the kernel's LOOPBACK_IFINDEX: lo is 1 in every namespace


def set_lo_up(path: str) -> None:
    """``ip link set lo up`` in the namespace at ``path``: one RTM_NEWLINK on a socket made
    there and closed after, without pyroute2's set-up (a pod's namespace needs nothing else
    from this process, and every pod pays it)."""
    sock = ns.socket_in(path, socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    with sock:
        sock.send(_encode(_set_up(_LOOPBACK_INDEX, True), RTM_NEWLINK, NLM_F_ACK, 1))
        kind, _, code = next(_messages(sock.recv(4096), ()), (None, 0, None))
    if kind != NLMSG_ERROR:
        code = errno.EPROTO  # not the acknowledgement asked for
    if code:
        raise NetlinkError(f"{path}: set lo up: {os.strerror(code)}", code)


def delete_netns(name: str, run_dir: str = NETNS_DIR) -> None:
    """Remove the named namespace's bind mount and file (missing is fine). The namespace
    itself goes when its last process and link reference go (asynchronously)."""
    path = netns_path(name, run_dir)
    with contextlib.suppress(OSError):
        ns.umount(path, ns.MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def list_netns(run_dir: str = NETNS_DIR) -> list[str]:
    try:
        return sorted(os.listdir(run_dir))
    except FileNotFoundError:
        return []


_RTNH_F_ONLINK = 4
RTPROT_BOOT = 3
RTPROT_STATIC = 4
_RT_TABLE_MAIN = 254  # the kernel's RT_TABLE_MAIN (pyroute2 has no name for it)
_NUD_NAMES = {0x01: "incomplete", 0x02: "reachable", 0x04: "stale", 0x08: "delay",
              0x10: "probe", 0x20: "failed", NUD_NOARP: "noarp",
              NUD_PERMANENT: "permanent"}  # fmt: skip


@dataclass(frozen=True)
class Neighbour:
    """A neighbour (ARP or NDP) entry: ``state`` is the kernel's NUD_* bits."""

    dst: str
    dev: str | None
    mac: str | None
    state: int

    @property
    def permanent(self) -> bool:
        return bool(self.state & NUD_PERMANENT)

    @property
    def state_name(self) -> str:
        return _NUD_NAMES.get(self.state, hex(self.state))


# Link kinds a lab may need, with what creating one needs besides its name.
_PROBES: dict[str, dict[str, Any]] = {
    "bridge": {},
    "macvlan": {"macvlan_mode": "bridge", "parent": True},
    "ipvlan": {"ipvlan_mode": 0, "parent": True},
    "vlan": {"vlan_id": 10, "parent": True},
    "bond": {},
    "vrf": {"vrf_table": 10},
    "dummy": {},
    # not a kind: a bridge that filters VLANs (CONFIG_BRIDGE_VLAN_FILTERING), which the
    # bridge plugin asks for when a NAD sets vlan or vlanTrunk
    "bridge-vlan": {"kind": "bridge", "br_vlan_filtering": 1},
}


def probe_link_kinds(kinds: list[str]) -> dict[str, str | None]:
    """For each link kind, None when this kernel creates one, else why not. Makes throwaway
    links in the calling thread's network namespace and leaves them there: call it in a
    namespace made for the purpose, which takes them along when its last process exits
    (deleting each would wait for the kernel's RCU grace periods: ~30 ms a link). A kind
    that needs a parent gets a veth of its own (ipvlan refuses a macvlan's parent)."""
    here_ns = os.stat(ns.ns_file("thread-self", "net")).st_ino
    try:
        host_ns = os.stat("/proc/1/ns/net").st_ino
    except OSError:  # unprivileged: not ours to look at (the caller made a fresh namespace)
        host_ns = None
    if here_ns == host_ns:
        raise NetlinkError("refusing to probe link kinds in the host's network namespace")
    found: dict[str, str | None] = {}
    with NetNS(ns.ns_file("thread-self", "net")) as here:
        for n, kind in enumerate(kinds):
            options = dict(_PROBES.get(kind, {}))
            name = f"mhprobe-k{n}"
            parent = None
            if options.pop("parent", False):
                here.apply([here.change_veth(f"mhprobe{n}a", f"mhprobe{n}b", peer_ns=here,
                                             master=None, mtu=None)])  # fmt: skip
                parent = here.index(f"mhprobe{n}a")
            plain = _PLAIN_PROBES.get(kind)
            try:
                if plain is not None:
                    here.apply([_new_link(name, *plain, parent=parent)])
                else:
                    spec: dict[str, Any] = {"ifname": name, "kind": options.pop("kind", kind)}
                    if parent is not None:
                        spec["link"] = parent
                    spec.update(options)
                    here._ipr.link("add", **spec)
            except NetlinkError as exc:
                found[kind] = f"{os.strerror(exc.errno)} (errno {exc.errno})"
            except _PyrNetlinkError as exc:
                found[kind] = f"{exc.args[-1]} (errno {exc.code})"
            else:
                found[kind] = None
    return found


# -- rtnetlink over a plain socket: the lab's hot reads and its neighbour entries ------------
# pyroute2's IPRoute (0.9) runs an event loop for every call: ~3-8 ms of CPU for a dump of a
# few links, where the kernel's answer takes ~20 us. verify reads every namespace of the lab
# (1000 pods: 1100 of them) and flushes the neighbours its probes left, and every attachment
# sets a few permanent neighbour entries: those go over a plain NETLINK_ROUTE socket, with no
# event loop, in pyroute2's own messages (ifinfmsg, ifaddrmsg, rtmsg, ndmsg): built and
# encoded by them, and of an answer, the fixed part read with the layout their ``fields``
# give and only the attributes asked for decoded, each by the class pyroute2 decodes it with.
# (Decoding a whole message, pyroute2 makes an object of each of its attributes, ~40 for a
# link, that only the cyclic GC frees: twice the CPU of this, and more memory in each forked
# worker, bench/results/netlink_codec.txt.) Everything else goes through IPRoute.
def _layout(fields: Sequence[tuple[str, str]]) -> struct.Struct:
    return struct.Struct("=" + "".join(fmt for _, fmt in fields))


_HEADER = _layout(nlmsg.header)  # length, type, flags, sequence_number, pid
_ERROR = _layout(nlmsgerr.fields)
_NLA = _layout(nla_base.header)  # length, type
_NLA_TYPE = ~(NLA_F_NESTED | NLA_F_NET_BYTEORDER) & 0xFFFF


class _Kind:
    """What decoding one pyroute2 message class takes: its fixed part's layout and names,
    and by attribute type the attribute's name and the class that decodes it (the table
    pyroute2 compiles for the class when it is first instantiated)."""

    def __init__(self, cls: Any) -> None:
        self.cls = cls
        self.fixed = _layout(cls.fields)
        self.names = tuple(name for name, fmt in cls.fields if not fmt.endswith("x"))
        cls()
        # pyroute2 keeps the table as a name-mangled class attribute; should that change,
        # test_plain_socket_reads_what_pyroute2_reads fails
        table = cls._nlmsg_base__t_nla_map
        self.attrs = {key: (spec["name"], spec["class"]) for key, spec in table.items()}


_KINDS = {RTM_NEWLINK: _Kind(ifinfmsg), RTM_NEWADDR: _Kind(ifaddrmsg),
          RTM_NEWROUTE: _Kind(rtmsg), RTM_NEWNEIGH: _Kind(ndmsg)}  # fmt: skip


class _Reply(dict[str, Any]):
    """A message of an answer: its fixed fields (as items) and the attributes asked for."""

    def __init__(self, kind: int, fields: dict[str, Any], attrs: dict[str, Any]) -> None:
        super().__init__(fields)
        self.kind = kind
        self.attrs = attrs

    def get_attr(self, name: str) -> Any:
        return self.attrs.get(name)


def _decode(kind: int, data: bytes, offset: int, end: int, wanted: Sequence[str]) -> _Reply:
    """The message of type ``kind`` in ``data[offset:end]`` (after its header)."""
    spec = _KINDS[kind]
    fields = dict(zip(spec.names, spec.fixed.unpack_from(data, offset), strict=True))
    attrs: dict[str, Any] = {}
    parent = None  # a pyroute2 message with the fixed fields: an address reads its family
    at = offset + ((spec.fixed.size + 3) & ~3)
    while at + _NLA.size <= end:
        length, nla_type = _NLA.unpack_from(data, at)
        if length < _NLA.size:
            break
        found = spec.attrs.get(nla_type & _NLA_TYPE)
        if found is not None and found[0] in wanted and found[0] not in attrs:
            if parent is None:
                parent = spec.cls()
                parent.update(fields)
            nla = found[1](data, offset=at, length=length, parent=parent)
            nla.decode()
            attrs[found[0]] = nla.getvalue()
        at += (length + 3) & ~3
    return _Reply(kind, fields, attrs)


def _messages(data: bytes, wanted: Sequence[str]) -> Iterator[tuple[int, int, Any]]:
    """``(type, sequence number, body)`` of each message in ``data``: the error code of an
    NLMSG_ERROR (0: an acknowledgement), a ``_Reply`` of the types this module reads,
    None for the others."""
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, kind, _, seq, _ = _HEADER.unpack_from(data, offset)
        if length < _HEADER.size:
            break
        body: Any = None
        start, end = offset + _HEADER.size, min(offset + length, len(data))
        if kind == NLMSG_ERROR:
            body = -_ERROR.unpack_from(data, start)[0]
        elif kind in _KINDS:
            body = _decode(kind, data, start, end, wanted)
        yield kind, seq, body
        offset += (length + 3) & ~3


def _frame(kind: int, flags: int, seq: int, body: bytes) -> bytes:
    """A request: the netlink header, then ``body`` (the message after it)."""
    return _HEADER.pack(_HEADER.size + len(body), kind, flags | NLM_F_REQUEST, seq, 0) + body


def _encode(msg: Any, kind: int, flags: int, seq: int) -> bytes:
    msg["header"]["type"] = kind
    msg["header"]["flags"] = flags | NLM_F_REQUEST
    msg["header"]["sequence_number"] = seq
    msg.encode()
    return bytes(msg.data)


def _set_up(index: int, up: bool) -> Any:
    msg = ifinfmsg()
    msg["index"] = index
    msg["flags"] = IFF_UP if up else 0
    msg["change"] = IFF_UP
    return msg


def _pick(msg: _Reply, *names: str) -> dict[str, Any]:
    return {name: msg.attrs[name] for name in names if name in msg.attrs}


_NAME = ("IFLA_IFNAME",)
_LINK_ATTRS = ("IFLA_IFNAME", "IFLA_ADDRESS", "IFLA_MTU", "IFLA_MASTER", "IFLA_LINKINFO",
               "IFLA_STATS64", "IFLA_STATS")  # fmt: skip


def _stats(attrs: dict[str, Any]) -> LinkStats:
    stats = attrs.get("IFLA_STATS64") or attrs.get("IFLA_STATS")
    if stats is None:
        return LinkStats(0, 0, 0, 0, 0, 0)
    return LinkStats.from_netlink(stats)


def new_links(data: bytes) -> list[tuple[int, int, str | None]]:
    """``(index, flags, name)`` of each RTM_NEWLINK in ``data`` (what a socket subscribed to
    RTMGRP_LINK received)."""
    return [
        (msg["index"], msg["flags"], msg.get_attr("IFLA_IFNAME"))
        for kind, _, msg in _messages(data, _NAME)
        if kind == RTM_NEWLINK
    ]


class Rtnl:
    """A plain NETLINK_ROUTE socket (opened in the caller's network namespace) that sends
    one request at a time and gathers its answer: every message of a dump, the one reply
    of a get, or the acknowledgement of a change. The kernel's refusal is ``OSError``."""

    def __init__(self) -> None:
        self.sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, socket.NETLINK_ROUTE
        )
        self.sock.bind((0, 0))
        self.seq = 0

    def close(self) -> None:
        self.sock.close()

    def request(self, msg: Any, kind: int, flags: int, wanted: Sequence[str] = ()) -> list[_Reply]:
        """Send ``msg`` as a ``kind`` request; the messages of the answer, with their
        ``wanted`` attributes."""
        self.seq += 1
        return self._answer(_encode(msg, kind, flags, self.seq), flags, wanted)

    def request_body(
        self, kind: int, flags: int, body: bytes, wanted: Sequence[str] = ()
    ) -> list[_Reply]:
        """``request`` with the message after its header packed by the caller (as a
        ``Change``'s body: pyroute2's encoder costs ~0.5 ms a message)."""
        self.seq += 1
        return self._answer(_frame(kind, flags, self.seq, body), flags, wanted)

    def _answer(self, request: bytes, flags: int, wanted: Sequence[str]) -> list[_Reply]:
        seq = self.seq
        self.sock.send(request)
        found: list[_Reply] = []
        while True:
            for mtype, mseq, body in _messages(self.sock.recv(1 << 17), wanted):
                if mseq != seq:
                    continue  # a late answer to an earlier request
                if mtype == NLMSG_DONE:
                    return found
                if mtype == NLMSG_ERROR:
                    if body:
                        raise OSError(body, os.strerror(body))
                    return found  # an acknowledgement
                if body is not None:
                    found.append(body)
                if not flags & NLM_F_DUMP and not flags & NLM_F_ACK:
                    return found  # a get's one reply

    def links(
        self, index: int = 0, name: str | None = None, wanted: Sequence[str] = _LINK_ATTRS
    ) -> list[_Reply]:
        """Every link, or the one by index or name."""
        if name is not None and not index:
            body = _IFINFO.pack(0, 0, 0, 0, 0) + _name_attr(_IFLA_IFNAME, name)
            found = self.request_body(RTM_GETLINK, 0, body, wanted)
            return [m for m in found if m.kind == RTM_NEWLINK]
        msg = ifinfmsg()
        msg["index"] = index
        if name is not None:
            msg["attrs"] = [("IFLA_IFNAME", name)]
        flags = NLM_F_DUMP if not index and name is None else 0
        return [m for m in self.request(msg, RTM_GETLINK, flags, wanted) if m.kind == RTM_NEWLINK]

    def addresses(self, family: int = 0) -> list[tuple[int, int, int, str]]:
        """``(index, family, prefixlen, address)`` of every address."""
        msg = ifaddrmsg()
        msg["family"] = family
        found = []
        for reply in self.request(msg, RTM_GETADDR, NLM_F_DUMP, ("IFA_LOCAL", "IFA_ADDRESS")):
            attrs = reply.attrs
            address = attrs.get("IFA_LOCAL") or attrs.get("IFA_ADDRESS")
            if address is not None:
                found.append((reply["index"], reply["family"], reply["prefixlen"], address))
        return found

    def routes(self, family: int, table: int) -> list[tuple[int, dict[str, Any]]]:
        """``(dst_len, attributes)`` of the routes of ``table``."""
        msg = rtmsg()
        msg["family"] = family
        found = []
        wanted = ("RTA_TABLE", "RTA_DST", "RTA_GATEWAY", "RTA_OIF")
        for reply in self.request(msg, RTM_GETROUTE, NLM_F_DUMP, wanted):
            attrs = reply.attrs
            if (attrs.get("RTA_TABLE") or reply["table"]) == table:
                found.append((reply["dst_len"], attrs))
        return found

    def route_get(self, address: str) -> dict[str, Any] | None:
        ip = ipaddress.ip_address(address)
        msg = rtmsg()
        msg["family"] = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        msg["dst_len"] = ip.max_prefixlen
        msg["attrs"] = [("RTA_DST", str(ip))]
        found = self.request(msg, RTM_GETROUTE, 0, ("RTA_OIF", "RTA_GATEWAY", "RTA_PREFSRC"))
        return found[0].attrs if found else None

    def neighbours(self) -> list[_Reply]:
        """Every ARP and NDP entry."""
        found = self.request(ndmsg(), RTM_GETNEIGH, NLM_F_DUMP, ("NDA_DST", "NDA_LLADDR"))
        return [m for m in found if m["family"] in (socket.AF_INET, socket.AF_INET6)]

    def delete_neighbour(self, address: str, ifindex: int) -> None:
        """Delete an entry (permanent ones are made by ``NetNS.change_neighbour``)."""
        ip = ipaddress.ip_address(address)
        msg = ndmsg()
        msg["family"] = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        msg["ifindex"] = ifindex
        msg["attrs"] = [("NDA_DST", str(ip))]
        self.request(msg, RTM_DELNEIGH, NLM_F_ACK)

    def link_names(self) -> list[tuple[int, int, str | None]]:
        """``(index, flags, name)`` of every link."""
        return [
            (m["index"], m["flags"], m.get_attr("IFLA_IFNAME")) for m in self.links(wanted=_NAME)
        ]

    def set_up(self, index: int, up: bool) -> None:
        self.request(_set_up(index, up), RTM_NEWLINK, NLM_F_ACK)


# -- batches: many changes in one send -------------------------------------------------------
# A bring-up makes thousands of small objects (1000 pods: some 10000 host-gw routes and as
# many permanent neighbour entries between 100 nodes). Each ``Change`` is the request
# pyroute2 sends for it (the same fixed part and attributes, in its order), built with
# ``struct`` (pyroute2's encoder takes ~100 us a message); ``NetNS.apply`` sends many in one
# ``send``, which the kernel works through in order, acknowledging each.
_IFINFO = _layout(ifinfmsg.fields)
_IFADDR = _layout(ifaddrmsg.fields)
_RTMSG = _layout(rtmsg.fields)
_NDMSG = _layout(ndmsg.fields)
_U32 = struct.Struct("=I")
_CHUNK = 64  # requests a send: their acknowledgements fit the smallest receive buffer
_NLM_F_EXCL = 0x200
# attribute types: linux/if_link.h, veth.h, if_addr.h, rtnetlink.h, neighbour.h
_IFLA_IFNAME, _IFLA_MTU, _IFLA_LINK, _IFLA_MASTER, _IFLA_LINKINFO = 3, 4, 5, 10, 18
_IFLA_NET_NS_FD, _IFLA_AF_SPEC = 28, 26
_MACVLAN_MODE = 1  # IFLA_MACVLAN_MODE; its values, MACVLAN_MODE_*:
_MACVLAN_MODES = {"private": 1, "vepa": 2, "bridge": 4, "passthru": 8}
_IFLA_VLAN_ID = 1
_IFLA_BR_VLAN_FILTERING, _IFLA_BR_VLAN_DEFAULT_PVID = 7, 39
_IFLA_BRIDGE_VLAN_INFO = 2  # in IFLA_AF_SPEC of an AF_BRIDGE message: struct bridge_vlan_info
_BRIDGE_VLAN_INFO_PVID, _BRIDGE_VLAN_INFO_UNTAGGED = 0x2, 0x4
_IFLA_INFO_KIND, _IFLA_INFO_DATA, _VETH_INFO_PEER = 1, 2, 1
_IFA_ADDRESS, _IFA_LOCAL, _IFA_BROADCAST = 1, 2, 4
_RTA_DST, _RTA_OIF, _RTA_GATEWAY, _RTA_PRIORITY, _RTA_PREFSRC = 1, 4, 5, 6, 7
_NDA_DST, _NDA_LLADDR = 1, 2
_RTN_UNICAST = 1
_RT_SCOPE_UNIVERSE, _RT_SCOPE_LINK = 0, 253
_RTM_DELLINK, _RTM_SETLINK = 17, 19
_U16 = struct.Struct("=H")
_U8 = struct.Struct("=B")
_BRIDGE_VLAN = struct.Struct("=HH")  # flags, vid


@dataclass(frozen=True)
class Change:
    """One request of a batch (``NetNS.apply``): what it does (for its error), its message
    type and flags, and its body (the fixed part and the attributes)."""

    what: str
    kind: int
    flags: int
    body: bytes


def _attr(kind: int, payload: bytes) -> bytes:
    size = _NLA.size + len(payload)
    return _NLA.pack(size, kind) + payload + bytes(-size & 3)


def _new_link(
    name: str, kind: bytes, data: bytes, *, parent: int | None = None, mtu: int | None = None
) -> Change:
    """A request that makes link ``name`` of ``kind`` (down), with its ``IFLA_INFO_DATA``
    (``data``, already encoded), on ``parent`` (an ifindex) and of ``mtu`` if given."""
    info = _attr(_IFLA_INFO_KIND, kind) + (_attr(_IFLA_INFO_DATA, data) if data else b"")
    attrs = _name_attr(_IFLA_IFNAME, name) + _attr(_IFLA_LINKINFO, info)
    if parent is not None:
        attrs += _attr(_IFLA_LINK, _U32.pack(parent))
    if mtu is not None:
        attrs += _attr(_IFLA_MTU, _U32.pack(mtu))
    return Change(f"add {kind.decode()} {name}", RTM_NEWLINK, NLM_F_CREATE | _NLM_F_EXCL,
                  _IFINFO.pack(0, 0, 0, 0, 0) + attrs)  # fmt: skip


def _macvlan_data(mode: str) -> bytes:
    """A macvlan link's ``IFLA_INFO_DATA``: its mode."""
    return _attr(_MACVLAN_MODE, _U32.pack(_MACVLAN_MODES[mode]))


# The probes (``_PROBES``) sent over the plain socket, as (IFLA_INFO_KIND, IFLA_INFO_DATA):
# those whose answer this kernel can confirm; the others go through pyroute2.
_PLAIN_PROBES: dict[str, tuple[bytes, bytes]] = {
    "bridge": (b"bridge", b""),
    "macvlan": (b"macvlan", _macvlan_data("bridge")),
    "dummy": (b"dummy", b""),
    "bond": (b"bond", b""),
}


def _name_attr(kind: int, name: str) -> bytes:
    return _attr(kind, name.encode() + b"\0")


def _family(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> int:
    return socket.AF_INET if ip.version == 4 else socket.AF_INET6


# a batch names the same few addresses many times (100 nodes: each node-ip and pod CIDR
# in 100 requests): each is parsed once
@functools.lru_cache(maxsize=4096)
def _ip(address: str) -> tuple[int, bytes]:
    """(family, packed) of an address."""
    ip = ipaddress.ip_address(address)
    return _family(ip), ip.packed


@functools.lru_cache(maxsize=4096)
def _net(cidr: str) -> tuple[int, int, bytes]:
    """(family, prefix length, packed network address) of a CIDR (host bits unset)."""
    net = ipaddress.ip_network(cidr, strict=True)
    return _family(net.network_address), net.prefixlen, net.network_address.packed


@functools.lru_cache(maxsize=4096)
def _lladdr(mac: str) -> bytes:
    return bytes.fromhex(_mac(mac).replace(":", ""))


def send_all(rtnl: Rtnl, requests: Sequence[tuple[int, int, bytes]]) -> tuple[int, int] | None:
    """Send ``(type, flags, body)`` requests over ``rtnl``, ``_CHUNK`` to a ``send``;
    ``(index, errno)`` of the first the kernel refused (the others of its send were still
    tried), or None. Only a send's last request asks for an acknowledgement: the kernel
    answers a refused one anyway, in order, so once that last answer is in, every
    refusal before it is too (and 10000 routes cost ~160 acknowledgements, not 10000)."""
    for start in range(0, len(requests), _CHUNK):
        chunk = requests[start : start + _CHUNK]
        first = rtnl.seq + 1
        last = rtnl.seq = rtnl.seq + len(chunk)
        rtnl.sock.send(
            b"".join(
                _frame(kind, flags | (NLM_F_ACK if first + n == last else 0), first + n, body)
                for n, (kind, flags, body) in enumerate(chunk)
            )
        )
        done, failed = False, None
        while not done:
            for mtype, seq, code in _messages(rtnl.sock.recv(1 << 17), ()):
                if mtype != NLMSG_ERROR or not first <= seq <= last:
                    continue  # a late answer to an earlier request
                done = done or seq == last
                if code and failed is None:
                    failed = (start + seq - first, code)
        if failed is not None:
            return failed
    return None


# -- one namespace, one socket --------------------------------------------------------------
class NetNS:
    """A network namespace (by path: ``/run/netns/NAME``, ``/proc/PID/ns/net``) and its
    netlink socket. Use as a context manager or ``close()`` it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = ns.open_ns(path)
        try:
            with ns.thread_in_netns(self.fd):
                self._raw = Rtnl()
        except BaseException:
            os.close(self.fd)
            raise
        self._pyroute2: Any = None
        self._index: dict[str, int] = {}

    @property
    def _ipr(self) -> Any:
        """pyroute2's socket in this namespace, made when a call first needs it (the reads
        and neighbour entries go over ``_raw``)."""
        if self._pyroute2 is None:
            from pyroute2.iproute.linux import IPRoute  # ~0.09 s: only the rarer probes

            with ns.thread_in_netns(self.fd):
                self._pyroute2 = IPRoute(groups=0)
        return self._pyroute2

    def _rtnl(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except OSError as exc:
            raise NetlinkError(f"{self.path}: {what}: {exc.strerror}", exc.errno) from exc

    def __enter__(self) -> NetNS:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self.fd >= 0:
            if self._pyroute2 is not None:
                with contextlib.suppress(Exception):
                    self._pyroute2.close()
            self._raw.close()
            os.close(self.fd)
            self.fd = -1

    # -- links ------------------------------------------------------------------------------
    def index(self, name: str) -> int:
        """The ifindex of link ``name`` (NetlinkError ENODEV if there is none)."""
        known = self._index.get(name)
        if known is not None:
            return known
        check_ifname(name)
        try:
            # one RTM_GETLINK by name, not a dump of every link
            found = self._raw.links(name=name, wanted=())
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                raise NetlinkError(f"{self.path}: no link {name!r}", errno.ENODEV) from exc
            raise NetlinkError(f"{self.path}: look up {name}: {exc.strerror}", exc.errno) from exc
        if not found:
            raise NetlinkError(f"{self.path}: no link {name!r}", errno.ENODEV)
        idx = int(found[0]["index"])
        self._index[name] = idx
        return idx

    def _forget(self, name: str) -> None:
        self._index.pop(name, None)

    def has_link(self, name: str) -> bool:
        try:
            self.index(name)
        except NetlinkError as exc:
            if exc.errno == errno.ENODEV:
                return False
            raise
        return True

    def link_names(self) -> list[str]:
        links = self._rtnl("list links", self._raw.links, 0, None, _NAME)
        return sorted(str(link.get_attr("IFLA_IFNAME")) for link in links)

    def add_bridge(
        self, name: str, *, mtu: int | None = None, up: bool = True, vlan_aware: bool = False
    ) -> int:
        """A Linux bridge (one emulated VLAN segment). An explicit ``mtu`` is kept by the
        kernel whatever ports join later. ``vlan_aware``: it filters VLANs, and its ports
        carry no VLAN until ``bridge_vlan`` gives them one (default pvid 0, not 1)."""
        check_ifname(name)
        self._forget(name)
        data = b""
        if vlan_aware:
            data = _attr(_IFLA_BR_VLAN_FILTERING, _U8.pack(1)) + _attr(
                _IFLA_BR_VLAN_DEFAULT_PVID, _U16.pack(0)
            )
        # one send of two requests, the bridge made down and then set (by name): an MTU
        # given after it was made is kept whatever ports join later (the kernel marks it
        # set by the user), one given at its making is not
        own = _name_attr(_IFLA_IFNAME, name)
        changes = [_new_link(name, b"bridge", data)]
        if mtu is not None or up:
            flag = IFF_UP if up else 0
            extra = _attr(_IFLA_MTU, _U32.pack(mtu)) if mtu is not None else b""
            changes.append(
                Change(f"set bridge {name}", RTM_NEWLINK, 0,
                       _IFINFO.pack(0, 0, 0, flag, flag) + own + extra)
            )  # fmt: skip
        self.apply(changes)
        return self.index(name)

    def add_veth(
        self,
        name: str,
        peer: str,
        *,
        peer_ns: NetNS | None = None,
        master: str | None = None,
        mtu: int | None = None,
        up: bool = True,
    ) -> int:
        """A veth pair: ``name`` here (enslaved to bridge ``master``, up), ``peer`` made
        directly inside ``peer_ns`` under its final name (e.g. a node's ``ens224``), left
        down for its namespace to configure. One netlink request; returns ``name``'s index."""
        change = self.change_veth(
            name, peer, peer_ns=self if peer_ns is None else peer_ns, master=master, mtu=mtu,
            up=up,
        )  # fmt: skip
        self.apply([change])
        return self.index(name)

    def add_macvlan(
        self, name: str, master: str, *, mode: str = "bridge", mtu: int | None = None
    ) -> int:
        """A macvlan child of ``master`` in this namespace (a host's NIC on a segment)."""
        check_ifname(name)
        if mode not in _MACVLAN_MODES:
            raise ValueError(f"macvlan mode {mode!r} is not one of bridge/private/vepa/passthru")
        data = _macvlan_data(mode)
        return self._add_on(name, b"macvlan", data, master, mtu, f"add macvlan {name} on {master}")

    def add_vlan(self, name: str, parent: str, vid: int, *, mtu: int | None = None) -> int:
        """An 802.1q sub-interface of ``parent`` (``ip link add link ens224 name ens224.50
        type vlan id 50``)."""
        check_ifname(name)
        if not 1 <= vid <= 4094:
            raise ValueError(f"VLAN id {vid} is not between 1 and 4094")
        what = f"add vlan {name} (id {vid} on {parent})"
        return self._add_on(name, b"vlan", _attr(_IFLA_VLAN_ID, _U16.pack(vid)), parent, mtu, what)

    def _add_on(
        self, name: str, kind: bytes, data: bytes, parent: str, mtu: int | None, what: str
    ) -> int:
        """A link of ``kind`` (its ``IFLA_INFO_DATA``: ``data``) on ``parent`` in this
        namespace (``ip link add link PARENT``); its index."""
        change = _new_link(name, kind, data, parent=self.index(parent), mtu=mtu)
        self._forget(name)
        self.apply([replace(change, what=what)])
        return self.index(name)

    def bridge_vlan(self, port: str, vid: int, *, untagged: bool = False) -> None:
        """Let a port of a VLAN-aware bridge carry VLAN ``vid`` (``bridge vlan add dev PORT vid
        VID``): tagged, or ``untagged`` (``pvid untagged``: its untagged frames are that VLAN's)."""
        flags = _BRIDGE_VLAN_INFO_PVID | _BRIDGE_VLAN_INFO_UNTAGGED if untagged else 0
        spec = _attr(_IFLA_BRIDGE_VLAN_INFO, _BRIDGE_VLAN.pack(flags, vid))
        body = _IFINFO.pack(socket.AF_BRIDGE, 0, self.index(port), 0, 0)
        body += _attr(_IFLA_AF_SPEC, spec)
        self.apply([Change(f"bridge vlan add vid {vid} dev {port}", _RTM_SETLINK, 0, body)])

    def set_link(
        self,
        name: str,
        *,
        up: bool | None = None,
        mtu: int | None = None,
        master: str | None = None,
    ) -> None:
        attrs = b""
        if mtu is not None:
            attrs += _attr(_IFLA_MTU, _U32.pack(mtu))
        if master is not None:
            attrs += _attr(_IFLA_MASTER, _U32.pack(self.index(master)))
        if up is None and not attrs:
            return
        self.apply([self._change_link(name, up, attrs, f"set {name}")])

    def move_link(self, name: str, target: NetNS, new_name: str | None = None) -> None:
        """Move link ``name`` into ``target``'s namespace, renamed to ``new_name``."""
        attrs = _attr(_IFLA_NET_NS_FD, _U32.pack(target.fd))
        if new_name is not None:
            attrs += _name_attr(_IFLA_IFNAME, check_ifname(new_name))
            target._forget(new_name)
        self.apply([self._change_link(name, None, attrs, f"move {name} to {target.path}")])
        self._forget(name)

    def delete_link(self, name: str, *, missing_ok: bool = True) -> None:
        try:
            idx = self.index(name)
        except NetlinkError as exc:
            if missing_ok and exc.errno == errno.ENODEV:
                return
            raise
        self._forget(name)
        body = _IFINFO.pack(0, 0, idx, 0, 0)
        try:
            self.apply([Change(f"delete {name}", _RTM_DELLINK, 0, body)])
        except NetlinkError as exc:
            if not (missing_ok and exc.errno == errno.ENODEV):
                raise

    def _link(self, name: str) -> Any:
        return self._rtnl(f"get {name}", self._raw.links, self.index(name))[0]

    def is_up(self, name: str) -> bool:
        return bool(self._link(name)["flags"] & IFF_UP)

    def mtu(self, name: str) -> int:
        return int(self._link(name).get_attr("IFLA_MTU") or 0)

    def master(self, name: str) -> str | None:
        idx = self._link(name).get_attr("IFLA_MASTER")
        if not idx:
            return None
        return self._link_name(idx)

    def _link_name(self, index: int) -> str | None:
        found = self._rtnl(f"get link {index}", self._raw.links, index, None, _NAME)
        return str(found[0].get_attr("IFLA_IFNAME"))

    def link_stats(self, name: str) -> LinkStats:
        return _stats(_pick(self._link(name), "IFLA_STATS64", "IFLA_STATS"))

    # -- addresses and routes ---------------------------------------------------------------
    def add_address(self, dev: str, cidr: str, *, exist_ok: bool = False) -> None:
        """Add ``cidr`` (``172.16.40.46/24``, IPv4 or IPv6) to ``dev``."""
        try:
            self.apply([self.change_address(dev, cidr)])
        except NetlinkError as exc:
            if not (exist_ok and exc.errno == errno.EEXIST):
                raise

    def addresses(self, dev: str | None = None, family: int | None = None) -> list[str]:
        """Addresses as ``ip/prefix``, of ``dev`` or of every link; ``family`` 4 or 6."""
        index = None if dev is None else self.index(dev)
        fam = 0 if family is None else (socket.AF_INET if family == 4 else socket.AF_INET6)
        found = self._rtnl("list addresses", self._raw.addresses, fam)
        return [f"{a}/{p}" for i, _, p, a in found if index is None or i == index]

    def add_route(
        self,
        dst: str,
        *,
        via: str | None = None,
        dev: str | None = None,
        metric: int | None = None,
        src: str | None = None,
        onlink: bool = False,
        proto: int = RTPROT_STATIC,
    ) -> None:
        """Add a route to ``dst`` (``default`` or a CIDR) via a gateway and/or out of a dev;
        ``onlink``: the gateway is reached on ``dev`` even without an address in its subnet
        there (as flannel host-gw does over an interface it was wrongly pinned to).
        ``proto``: who made it, as ``ip route`` shows it (static: the node's network config;
        boot, which ``ip route`` does not print: a program such as flannel)."""
        change = self.change_route(
            dst, via=via, dev=dev, onlink=onlink, proto=proto, metric=metric, src=src
        )
        self.apply([change])

    # -- neighbours (lab.neighbours says why) ------------------------------------------------
    def set_neighbours(self, entries: Sequence[tuple[str, str, str]]) -> None:
        """Make each ``(address, mac, dev)`` a permanent neighbour entry, replacing one the
        kernel learnt (``change_neighbour``'s requests, in one batch)."""
        if entries:
            self.apply([self.change_neighbour(address, mac, dev) for address, mac, dev in entries])

    def delete_neighbours(self, entries: Sequence[tuple[str, str]]) -> None:
        """Remove the ``(address, dev)`` entries; one that is gone already is no error."""
        for address, dev in entries:
            ip = ipaddress.ip_address(address)
            try:
                self._raw.delete_neighbour(str(ip), self.index(dev))
            except NetlinkError as exc:
                if exc.errno != errno.ENODEV:
                    raise
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ESRCH):
                    raise NetlinkError(
                        f"{self.path}: delete neighbour {ip}: {exc.strerror}", exc.errno
                    ) from exc

    def neighbours(self) -> list[Neighbour]:
        """Every ARP and NDP entry of this namespace (``ip neigh show nud all``)."""
        entries = self._rtnl("list neighbours", self._raw.neighbours)
        if not entries:
            return []
        names = self._names()
        found = []
        for entry in entries:
            attrs = _pick(entry, "NDA_DST", "NDA_LLADDR")
            if "NDA_DST" in attrs:
                found.append(
                    Neighbour(
                        dst=str(attrs["NDA_DST"]),
                        dev=names.get(entry["ifindex"]),
                        mac=attrs.get("NDA_LLADDR") or None,
                        state=entry["state"],
                    )
                )
        return found

    def _names(self) -> dict[int, str]:
        return {
            link["index"]: str(link.get_attr("IFLA_IFNAME"))
            for link in self._rtnl("list links", self._raw.links, 0, None, _NAME)
        }

    def flush_neighbours(self) -> int:
        """Remove the entries the kernel learnt (as ``ip neigh flush all``: permanent and
        noarp ones stay); how many went."""
        gone = 0
        # by ifindex, as the kernel names them: no dump of the links for their names
        for entry in self._rtnl("list neighbours", self._raw.neighbours):
            dst = entry.get_attr("NDA_DST")
            if entry["state"] & (NUD_PERMANENT | NUD_NOARP) or dst is None:
                continue
            try:
                self._raw.delete_neighbour(dst, entry["ifindex"])
            except OSError as exc:
                if exc.errno not in (errno.ENOENT, errno.ESRCH, errno.ENODEV):
                    raise NetlinkError(
                        f"{self.path}: delete neighbour {dst}: {exc.strerror}", exc.errno
                    ) from exc
            gone += 1
        return gone

    def routes(self, family: int = 4) -> list[dict[str, Any]]:
        """The main table's routes: ``{"dst": "default"|CIDR, "via": ip|None, "dev": name}``."""
        fam = socket.AF_INET if family == 4 else socket.AF_INET6
        routes = self._rtnl("list routes", self._raw.routes, fam, _RT_TABLE_MAIN)
        names = self._names() if routes else {}
        found = []
        for dst_len, attrs in routes:
            dst = attrs.get("RTA_DST")
            found.append(
                {
                    "dst": "default" if dst is None else f"{dst}/{dst_len}",
                    "via": attrs.get("RTA_GATEWAY"),
                    "dev": names.get(attrs.get("RTA_OIF") or 0),
                }
            )
        return found

    def links(self) -> list[LinkInfo]:
        """Every link with its MAC, state, kind, master, addresses and counters (one dump
        of links and one of addresses)."""
        raw = [
            (link["index"], link["flags"], _pick(link, *_LINK_ATTRS))
            for link in self._rtnl("list links", self._raw.links)
        ]
        names = {index: str(attrs.get("IFLA_IFNAME")) for index, _, attrs in raw}
        addrs: dict[int, list[str]] = {}
        for index, _, prefixlen, address in self._rtnl("list addresses", self._raw.addresses):
            addrs.setdefault(index, []).append(f"{address}/{prefixlen}")
        found = []
        for index, flags, attrs in raw:
            info = attrs.get("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
            master = attrs.get("IFLA_MASTER")
            found.append(
                LinkInfo(
                    name=names[index],
                    index=index,
                    mac=attrs.get("IFLA_ADDRESS") or None,
                    up=bool(flags & IFF_UP),
                    mtu=int(attrs.get("IFLA_MTU") or 0),
                    kind=kind or None,
                    master=names.get(master) if master else None,
                    addresses=tuple(addrs.get(index, ())),
                    stats=_stats(attrs),
                )
            )
        return found

    def route_to(self, dst: str) -> dict[str, str | None] | None:
        """The route the kernel takes to ``dst`` (``ip route get``): ``{"dev", "via",
        "src"}``; None when it has none (unreachable)."""
        ip = ipaddress.ip_address(dst)
        try:
            attrs = self._rtnl(f"route get {ip}", self._raw.route_get, str(ip))
        except NetlinkError as exc:
            if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EINVAL):
                return None
            raise
        if attrs is None:
            return None
        oif = attrs.get("RTA_OIF")
        return {
            "dev": self._link_name(oif) if oif else None,
            "via": attrs.get("RTA_GATEWAY"),
            "src": attrs.get("RTA_PREFSRC"),
        }

    # -- batches (see ``Change``) ------------------------------------------------------------
    def apply(self, changes: Sequence[Change]) -> None:
        """Make ``changes`` in this namespace, many to a send; the first the kernel refuses
        is a NetlinkError naming it."""
        try:
            failed = send_all(self._raw, [(c.kind, c.flags, c.body) for c in changes])
        except OSError as exc:
            said = f"{self.path}: {len(changes)} changes: {exc.strerror}"
            raise NetlinkError(said, exc.errno) from exc
        if failed is not None:
            index, code = failed
            raise NetlinkError(f"{self.path}: {changes[index].what}: {os.strerror(code)}", code)

    def change_veth(
        self,
        name: str,
        peer: str,
        *,
        peer_ns: NetNS,
        master: str | None,
        mtu: int | None,
        up: bool = True,
    ) -> Change:
        """``add_veth``'s request: ``name`` up (unless not ``up``), ``peer`` down in
        ``peer_ns`` (the kernel can't open a veth's end before the pair is whole:
        ``change_up`` it after)."""
        check_ifname(name)
        check_ifname(peer, "peer name")
        self._forget(name)
        peer_ns._forget(peer)
        own = [_name_attr(_IFLA_IFNAME, name)]
        inner = [_name_attr(_IFLA_IFNAME, peer), _attr(_IFLA_NET_NS_FD, _U32.pack(peer_ns.fd))]
        if mtu is not None:
            own.append(_attr(_IFLA_MTU, _U32.pack(mtu)))
            inner.append(_attr(_IFLA_MTU, _U32.pack(mtu)))
        if master is not None:
            own.append(_attr(_IFLA_MASTER, _U32.pack(self.index(master))))
        peer_msg = _IFINFO.pack(0, 0, 0, 0, 0) + b"".join(inner)
        info = _attr(_IFLA_INFO_KIND, b"veth") + _attr(
            _IFLA_INFO_DATA, _attr(_VETH_INFO_PEER, peer_msg)
        )
        own.append(_attr(_IFLA_LINKINFO, info))
        flag = IFF_UP if up else 0
        body = _IFINFO.pack(0, 0, 0, flag, flag) + b"".join(own)
        return Change(f"add veth {name} (peer {peer})", RTM_NEWLINK,
                      NLM_F_CREATE | _NLM_F_EXCL, body)  # fmt: skip

    def change_up(self, dev: str) -> Change:
        """``set_link(dev, up=True)``'s request."""
        return self._change_link(dev, True, b"", f"set {dev} up")

    def _change_link(self, name: str, up: bool | None, attrs: bytes, what: str) -> Change:
        """An RTM_NEWLINK that changes link ``name``: up or down if ``up`` is given, and
        ``attrs`` (encoded IFLA_* attributes)."""
        change = 0 if up is None else IFF_UP
        flags = IFF_UP if up else 0
        body = _IFINFO.pack(0, 0, self.index(name), flags, change) + attrs
        return Change(what, RTM_NEWLINK, 0, body)

    def change_address(self, dev: str, cidr: str) -> Change:
        """``add_address(dev, cidr)``'s request."""
        iface = ipaddress.ip_interface(cidr)
        ip, prefix = iface.ip, iface.network.prefixlen
        attrs = [_attr(_IFA_ADDRESS, ip.packed)]
        if ip.version == 4:
            if prefix < 31:
                attrs.append(_attr(_IFA_BROADCAST, iface.network.broadcast_address.packed))
            attrs.append(_attr(_IFA_LOCAL, ip.packed))
        body = _IFADDR.pack(_family(ip), prefix, 0, 0, self.index(dev)) + b"".join(attrs)
        return Change(f"add address {cidr} to {dev}", RTM_NEWADDR,
                      NLM_F_CREATE | _NLM_F_EXCL, body)  # fmt: skip

    def change_route(
        self,
        dst: str,
        *,
        via: str | None,
        dev: str | None,
        onlink: bool = False,
        proto: int = RTPROT_STATIC,
        metric: int | None = None,
        src: str | None = None,
    ) -> Change:
        """``add_route``'s request for a route to ``dst`` (a CIDR or ``default``) via a
        gateway and/or out of ``dev``. One without a gateway has the link's scope, as ``ip
        route add`` gives it."""
        if via is None and dev is None:
            raise ValueError("a route needs via, dev or both")
        gateway = _ip(via) if via is not None else None
        attrs = []
        if dst == "default":
            family, dst_len = (gateway[0] if gateway else socket.AF_INET), 0
        else:
            family, dst_len, packed = _net(dst)
            attrs.append(_attr(_RTA_DST, packed))
        if gateway is not None:
            attrs.append(_attr(_RTA_GATEWAY, gateway[1]))
        if dev is not None:
            attrs.append(_attr(_RTA_OIF, _U32.pack(self.index(dev))))
        if metric is not None:
            attrs.append(_attr(_RTA_PRIORITY, _U32.pack(metric)))
        if src is not None:
            attrs.append(_attr(_RTA_PREFSRC, _ip(src)[1]))
        flags = _RTNH_F_ONLINK if onlink else 0
        scope = _RT_SCOPE_UNIVERSE if gateway is not None else _RT_SCOPE_LINK
        fixed = _RTMSG.pack(
            family, dst_len, 0, 0, _RT_TABLE_MAIN, proto, scope, _RTN_UNICAST, flags
        )
        return Change(f"add route {dst}", RTM_NEWROUTE, NLM_F_CREATE | _NLM_F_EXCL,
                      fixed + b"".join(attrs))  # fmt: skip

    def change_neighbour(self, address: str, mac: str, dev: str) -> Change:
        """``set_neighbours``' request for one permanent entry."""
        family, packed = _ip(address)
        body = _NDMSG.pack(family, self.index(dev), NUD_PERMANENT, 0, 0)
        body += _attr(_NDA_DST, packed) + _attr(_NDA_LLADDR, _lladdr(mac))
        return Change(f"set neighbour {address} on {dev}", RTM_NEWNEIGH,
                      NLM_F_CREATE | NLM_F_REPLACE, body)  # fmt: skip

    def link_macs(self) -> dict[str, str | None]:
        """Every link's MAC by name (one dump; the indexes are kept for later requests)."""
        found: dict[str, str | None] = {}
        wanted = ("IFLA_IFNAME", "IFLA_ADDRESS")
        for link in self._rtnl("list links", self._raw.links, 0, None, wanted):
            name = str(link.get_attr("IFLA_IFNAME"))
            self._index[name] = int(link["index"])
            found[name] = link.get_attr("IFLA_ADDRESS") or None
        return found

    # -- sysctls ----------------------------------------------------------------------------
    def _sysctl_path(self, key: str) -> str:
        check_sysctl(key)
        if not key.startswith("net."):
            raise ValueError(f"{key}: only net.* sysctls belong to a network namespace")
        return "/proc/sys/" + key.replace(".", "/")

    def set_sysctl(self, key: str, value: str | int) -> None:
        """Write a net.* sysctl of this namespace (e.g. ``net.ipv4.ip_forward``, 1). The file
        is opened with the thread inside the namespace, which is what selects its copy."""
        path = self._sysctl_path(key)
        with ns.thread_in_netns(self.fd):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise NetlinkError(f"{self.path}: sysctl {key}: {exc.strerror}", exc.errno) from exc
        try:
            os.write(fd, f"{value}\n".encode())
        except OSError as exc:
            raise NetlinkError(
                f"{self.path}: sysctl {key}={value}: {exc.strerror}", exc.errno
            ) from exc
        finally:
            os.close(fd)

    def get_sysctl(self, key: str) -> str:
        path = self._sysctl_path(key)
        with ns.thread_in_netns(self.fd):
            try:
                fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            except OSError as exc:
                raise NetlinkError(f"{self.path}: sysctl {key}: {exc.strerror}", exc.errno) from exc
        try:
            return os.read(fd, 4096).decode().strip()
        finally:
            os.close(fd)


class Netlink:
    """One ``NetNS`` per namespace path, made on first use and reused; close() closes all."""

    def __init__(self) -> None:
        self._open: dict[str, NetNS] = {}

    def __enter__(self) -> Netlink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def ns(self, path: str) -> NetNS:
        found = self._open.get(path)
        if found is None:
            found = self._open[path] = NetNS(path)
        return found

    def named(self, name: str, run_dir: str = NETNS_DIR) -> NetNS:
        return self.ns(netns_path(name, run_dir))

    def here(self) -> NetNS:
        """The calling thread's own namespace (the sandbox's, once entered)."""
        return self.ns(ns.ns_file("thread-self", "net"))

    def forget(self, path: str) -> None:
        found = self._open.pop(path, None)
        if found is not None:
            found.close()

    def close(self) -> None:
        for found in self._open.values():
            found.close()
        self._open.clear()
