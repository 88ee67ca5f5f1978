"""The one module of multihome that speaks netlink (pyroute2).

A ``NetNS`` is one network namespace and the one ``IPRoute`` socket the lab uses in it,
reused for every object: bridges, veth pairs (one end created directly in another
namespace under its final name, the other enslaved to a bridge), addresses, routes, link
state and counters, and the namespace's own net.* sysctls. ``Netlink`` keeps one ``NetNS``
per path. Named namespaces (``ip netns add`` semantics: a bind mount of the namespace on
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
import ipaddress
import os
import re
import socket
import struct
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from pyroute2.iproute.linux import IPRoute
from pyroute2.netlink.exceptions import NetlinkError as _PyrNetlinkError

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
_RTM_NEWLINK = 16
_NLM_F_REQUEST_ACK = 0x1 | 0x4
_NLMSG_ERROR = 2
_IFF_UP = 0x1


def set_lo_up(path: str) -> None:
    """``ip link set lo up`` in the namespace at ``path``: one RTM_NEWLINK on a socket made
    there and closed after, without pyroute2's set-up (a pod's namespace needs nothing else
    from this process, and every pod pays it)."""
    fd = ns.open_ns(path)
    try:
        with ns.thread_in_netns(fd):
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
    finally:
        os.close(fd)
    with sock:
        # nlmsghdr (len, type, flags, seq, pid) + ifinfomsg (family, type, index, flags, change)
        body = struct.pack("=BxHiII", 0, 0, _LOOPBACK_INDEX, _IFF_UP, _IFF_UP)
        sock.send(
            struct.pack("=IHHII", 16 + len(body), _RTM_NEWLINK, _NLM_F_REQUEST_ACK, 1, 0) + body
        )
        reply = sock.recv(4096)
    kind = struct.unpack_from("=H", reply, 4)[0] if len(reply) >= 20 else None
    code = struct.unpack_from("=i", reply, 16)[0] if kind == _NLMSG_ERROR else -errno.EPROTO
    if code:
        raise NetlinkError(f"{path}: set lo up: {os.strerror(-code)}", -code)


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
_BATCH_FROM = 8  # routes; below this, one netlink call each is cheaper than starting ip
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80
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
            spec: dict[str, Any] = {"ifname": f"mhprobe-k{n}", "kind": options.pop("kind", kind)}
            if options.pop("parent", False):
                here.add_veth(f"mhprobe{n}a", f"mhprobe{n}b")
                spec["link"] = here.index(f"mhprobe{n}a")
            spec.update(options)
            try:
                here._ipr.link("add", **spec)
            except _PyrNetlinkError as exc:
                found[kind] = f"{exc.args[-1]} (errno {exc.code})"
            else:
                found[kind] = None
    return found


# -- rtnetlink without pyroute2: the lab's hot reads and its neighbour entries ----------------
# pyroute2 (0.9) runs an event loop for every call: ~3-8 ms of CPU for a dump of a few links,
# where the kernel's answer takes ~20 us. verify reads every namespace of the lab (1000 pods:
# 1100 of them) and flushes the neighbours its probes left, and every attachment sets a few
# permanent neighbour entries: those go over a plain socket, decoded here (what LinkInfo,
# routes() and Neighbour hold, nothing more). Everything else stays with pyroute2.
_NLMSG = struct.Struct("=IHHII")
_RTA = struct.Struct("=HH")
_IFINFO = struct.Struct("=BxHiII")
_IFADDR = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_NDMSG = struct.Struct("=BxxxiHBB")
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_NLM_F_REQUEST, _NLM_F_ACK, _NLM_F_DUMP = 0x1, 0x4, 0x300
_NLM_F_REPLACE, _NLM_F_CREATE = 0x100, 0x400
_RTM_NEWLINK, _RTM_GETLINK = 16, 18
_RTM_GETADDR = 22
_RTM_GETROUTE = 26
_RTM_NEWNEIGH, _RTM_DELNEIGH, _RTM_GETNEIGH = 28, 29, 30
_IFLA_ADDRESS, _IFLA_IFNAME, _IFLA_MTU, _IFLA_STATS, _IFLA_MASTER = 1, 3, 4, 7, 10
_IFLA_LINKINFO, _IFLA_STATS64, _IFLA_INFO_KIND = 18, 23, 1
_IFA_ADDRESS, _IFA_LOCAL = 1, 2
_RTA_DST, _RTA_OIF, _RTA_GATEWAY, _RTA_PREFSRC, _RTA_TABLE = 1, 4, 5, 7, 15
_NDA_DST, _NDA_LLADDR = 1, 2
_IFF_UP = 0x1
_STATS_ORDER = ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes", "rx_errors", "tx_errors",
                "rx_dropped", "tx_dropped")  # fmt: skip


def _attrs(data: bytes, offset: int) -> dict[int, bytes]:
    """The rtattrs from ``offset`` to the end of ``data`` (type -> payload, nested bit off)."""
    found: dict[int, bytes] = {}
    end = len(data)
    while offset + 4 <= end:
        length, kind = _RTA.unpack_from(data, offset)
        if length < 4:
            break
        found[kind & 0x3FFF] = data[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return found


def _attr(kind: int, payload: bytes) -> bytes:
    data = _RTA.pack(4 + len(payload), kind) + payload
    return data + b"\0" * (-len(data) % 4)


def _text(raw: bytes | None) -> str | None:
    return None if raw is None else raw.split(b"\0", 1)[0].decode(errors="replace")


def _hw(raw: bytes | None) -> str | None:
    return None if not raw else ":".join(f"{b:02x}" for b in raw)


def _ip(family: int, raw: bytes | None) -> str | None:
    if raw is None:
        return None
    return socket.inet_ntop(socket.AF_INET if family == socket.AF_INET else socket.AF_INET6, raw)


def _u32(raw: bytes | None) -> int | None:
    return None if raw is None or len(raw) < 4 else int.from_bytes(raw[:4], "little")


def _stats(attrs: dict[int, bytes]) -> LinkStats:
    raw, size = attrs.get(_IFLA_STATS64), 8
    if raw is None:
        raw, size = attrs.get(_IFLA_STATS), 4
    values = dict.fromkeys(_STATS_ORDER, 0)
    if raw is not None:
        fmt = "=8Q" if size == 8 else "=8I"
        values = dict(zip(_STATS_ORDER, struct.unpack_from(fmt, raw), strict=True))
    return LinkStats(**{k: values[k] for k in LinkStats.__dataclass_fields__})


def new_links(data: bytes) -> list[tuple[int, int, str | None]]:
    """``(index, flags, name)`` of each RTM_NEWLINK in ``data`` (what a socket subscribed to
    RTMGRP_LINK received)."""
    found = []
    offset = 0
    while offset + _NLMSG.size <= len(data):
        length, mtype, _, _, _ = _NLMSG.unpack_from(data, offset)
        if length < _NLMSG.size:
            break
        if mtype == _RTM_NEWLINK:
            payload = data[offset + _NLMSG.size : offset + length]
            _, _, index, flags, _ = _IFINFO.unpack_from(payload)
            found.append((index, flags, _text(_attrs(payload, _IFINFO.size).get(_IFLA_IFNAME))))
        offset += (length + 3) & ~3
    return found


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

    def request(self, kind: int, flags: int, body: bytes) -> list[tuple[int, bytes]]:
        """``(type, message without its header)`` of each answer."""
        self.seq += 1
        seq = self.seq
        self.sock.send(_NLMSG.pack(_NLMSG.size + len(body), kind, flags | _NLM_F_REQUEST, seq, 0)
                       + body)  # fmt: skip
        found: list[tuple[int, bytes]] = []
        while True:
            data = self.sock.recv(1 << 17)
            offset = 0
            while offset + _NLMSG.size <= len(data):
                length, mtype, _, mseq, _ = _NLMSG.unpack_from(data, offset)
                if length < _NLMSG.size:
                    break
                payload = data[offset + _NLMSG.size : offset + length]
                offset += (length + 3) & ~3
                if mseq != seq:
                    continue  # a late answer to an earlier request
                if mtype == _NLMSG_DONE:
                    return found
                if mtype == _NLMSG_ERROR:
                    code = -int.from_bytes(payload[:4], "little", signed=True)
                    if code:
                        raise OSError(code, os.strerror(code))
                    return found  # an acknowledgement
                found.append((mtype, payload))
                if not flags & _NLM_F_DUMP and not flags & _NLM_F_ACK:
                    return found  # a get's one reply

    def links(
        self, index: int = 0, name: str | None = None
    ) -> list[tuple[int, int, dict[int, bytes]]]:
        """``(index, flags, attributes)`` of every link, or of the one by index or name."""
        body = _IFINFO.pack(0, 0, index, 0, 0)
        if name is not None:
            body += _attr(_IFLA_IFNAME, name.encode() + b"\0")
        flags = _NLM_F_DUMP if not index and name is None else 0
        found = []
        for mtype, payload in self.request(_RTM_GETLINK, flags, body):
            if mtype != _RTM_NEWLINK:
                continue
            _, _, idx, link_flags, _ = _IFINFO.unpack_from(payload)
            found.append((idx, link_flags, _attrs(payload, _IFINFO.size)))
        return found

    def addresses(self, family: int = 0) -> list[tuple[int, int, int, str]]:
        """``(index, family, prefixlen, address)`` of every address."""
        found = []
        for _, payload in self.request(_RTM_GETADDR, _NLM_F_DUMP, _IFADDR.pack(family, 0, 0, 0, 0)):
            fam, prefixlen, _, _, index = _IFADDR.unpack_from(payload)
            attrs = _attrs(payload, _IFADDR.size)
            address = _ip(fam, attrs.get(_IFA_LOCAL) or attrs.get(_IFA_ADDRESS))
            if address is not None:
                found.append((index, fam, prefixlen, address))
        return found

    def routes(self, family: int, table: int) -> list[tuple[int, dict[int, bytes]]]:
        """``(dst_len, attributes)`` of the routes of ``table``."""
        found = []
        body = _RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
        for _, payload in self.request(_RTM_GETROUTE, _NLM_F_DUMP, body):
            _, dst_len, _, _, tab, _, _, _, _ = _RTMSG.unpack_from(payload)
            attrs = _attrs(payload, _RTMSG.size)
            if (_u32(attrs.get(_RTA_TABLE)) or tab) == table:
                found.append((dst_len, attrs))
        return found

    def route_get(self, address: str) -> dict[int, bytes] | None:
        ip = ipaddress.ip_address(address)
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        body = _RTMSG.pack(family, ip.max_prefixlen, 0, 0, 0, 0, 0, 0, 0)
        body += _attr(_RTA_DST, ip.packed)
        found = self.request(_RTM_GETROUTE, 0, body)
        return _attrs(found[0][1], _RTMSG.size) if found else None

    def neighbours(self) -> list[tuple[int, int, int, dict[int, bytes]]]:
        """``(family, ifindex, state, attributes)`` of every ARP and NDP entry."""
        found = []
        for _, payload in self.request(_RTM_GETNEIGH, _NLM_F_DUMP, _NDMSG.pack(0, 0, 0, 0, 0)):
            family, ifindex, state, _, _ = _NDMSG.unpack_from(payload)
            if family in (socket.AF_INET, socket.AF_INET6):
                found.append((family, ifindex, state, _attrs(payload, _NDMSG.size)))
        return found

    def neighbour(self, address: str, ifindex: int, mac: str | None) -> None:
        """Replace (``mac``: a permanent entry) or delete (``mac`` None) an entry."""
        ip = ipaddress.ip_address(address)
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        state = NUD_PERMANENT if mac is not None else 0
        body = _NDMSG.pack(family, ifindex, state, 0, 0) + _attr(_NDA_DST, ip.packed)
        if mac is not None:
            body += _attr(_NDA_LLADDR, bytes.fromhex(mac.replace(":", "")))
            self.request(_RTM_NEWNEIGH, _NLM_F_ACK | _NLM_F_CREATE | _NLM_F_REPLACE, body)
        else:
            self.request(_RTM_DELNEIGH, _NLM_F_ACK, body)

    def link_names(self) -> list[tuple[int, int, str | None]]:
        """``(index, flags, name)`` of every link."""
        return [(i, f, _text(a.get(_IFLA_IFNAME))) for i, f, a in self.links()]

    def set_up(self, index: int, up: bool) -> None:
        body = _IFINFO.pack(0, 0, index, _IFF_UP if up else 0, _IFF_UP)
        self.request(_RTM_NEWLINK, _NLM_F_ACK, body)


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

    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except _PyrNetlinkError as exc:
            raise NetlinkError(f"{self.path}: {what}: {exc.args[-1]}", exc.code) from exc

    # -- links ------------------------------------------------------------------------------
    def index(self, name: str) -> int:
        """The ifindex of link ``name`` (NetlinkError ENODEV if there is none)."""
        known = self._index.get(name)
        if known is not None:
            return known
        check_ifname(name)
        try:
            # one RTM_GETLINK by name, not a dump of every link
            found = self._raw.links(name=name)
        except OSError as exc:
            if exc.errno == errno.ENODEV:
                raise NetlinkError(f"{self.path}: no link {name!r}", errno.ENODEV) from exc
            raise NetlinkError(f"{self.path}: look up {name}: {exc.strerror}", exc.errno) from exc
        if not found:
            raise NetlinkError(f"{self.path}: no link {name!r}", errno.ENODEV)
        idx = found[0][0]
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
        links = self._rtnl("list links", self._raw.links)
        return sorted(str(_text(attrs.get(_IFLA_IFNAME))) for _, _, attrs in links)

    def add_bridge(
        self, name: str, *, mtu: int | None = None, up: bool = True, vlan_aware: bool = False
    ) -> int:
        """A Linux bridge (one emulated VLAN segment). An explicit ``mtu`` is kept by the
        kernel whatever ports join later. ``vlan_aware``: it filters VLANs, and its ports
        carry no VLAN until ``bridge_vlan`` gives them one (default pvid 0, not 1)."""
        check_ifname(name)
        self._forget(name)
        spec: dict[str, Any] = {"ifname": name, "kind": "bridge"}
        if vlan_aware:
            spec.update(br_vlan_filtering=1, br_vlan_default_pvid=0)
        self._call(f"add bridge {name}", self._ipr.link, "add", **spec)
        idx = self.index(name)
        changes: dict[str, Any] = {}
        if mtu is not None:
            changes["mtu"] = mtu
        if up:
            changes["state"] = "up"
        if changes:
            self._call(f"set bridge {name}", self._ipr.link, "set", index=idx, **changes)
        return idx

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
        check_ifname(name)
        check_ifname(peer, "peer name")
        peer_spec: dict[str, Any] = {"ifname": peer}
        if peer_ns is not None:
            peer_spec["net_ns_fd"] = peer_ns.fd
            peer_ns._forget(peer)
        if mtu is not None:
            peer_spec["mtu"] = mtu
        spec: dict[str, Any] = {"ifname": name, "kind": "veth", "peer": peer_spec}
        if mtu is not None:
            spec["mtu"] = mtu
        if master is not None:
            spec["master"] = self.index(master)
        if up:
            spec["state"] = "up"
        self._forget(name)
        self._call(f"add veth {name} (peer {peer})", self._ipr.link, "add", **spec)
        return self.index(name)

    def add_macvlan(
        self, name: str, master: str, *, mode: str = "bridge", mtu: int | None = None
    ) -> int:
        """A macvlan child of ``master`` in this namespace (a host's NIC on a segment)."""
        check_ifname(name)
        if mode not in ("bridge", "private", "vepa", "passthru"):
            raise ValueError(f"macvlan mode {mode!r} is not one of bridge/private/vepa/passthru")
        spec: dict[str, Any] = {
            "ifname": name,
            "kind": "macvlan",
            "link": self.index(master),
            "macvlan_mode": mode,
        }
        if mtu is not None:
            spec["mtu"] = mtu
        self._forget(name)
        self._call(f"add macvlan {name} on {master}", self._ipr.link, "add", **spec)
        return self.index(name)

    def add_vlan(self, name: str, parent: str, vid: int, *, mtu: int | None = None) -> int:
        """An 802.1q sub-interface of ``parent`` (``ip link add link ens224 name ens224.50
        type vlan id 50``)."""
        check_ifname(name)
        if not 1 <= vid <= 4094:
            raise ValueError(f"VLAN id {vid} is not between 1 and 4094")
        spec: dict[str, Any] = {
            "ifname": name,
            "kind": "vlan",
            "link": self.index(parent),
            "vlan_id": vid,
        }
        if mtu is not None:
            spec["mtu"] = mtu
        self._forget(name)
        self._call(f"add vlan {name} (id {vid} on {parent})", self._ipr.link, "add", **spec)
        return self.index(name)

    def bridge_vlan(self, port: str, vid: int, *, untagged: bool = False) -> None:
        """Let a port of a VLAN-aware bridge carry VLAN ``vid`` (``bridge vlan add dev PORT vid
        VID``): tagged, or ``untagged`` (``pvid untagged``: its untagged frames are that VLAN's)."""
        info: dict[str, Any] = {"vid": vid}
        if untagged:
            info["pvid"] = True
        self._call(
            f"bridge vlan add vid {vid} dev {port}",
            self._ipr.vlan_filter, "add", index=self.index(port), vlan_info=info,
        )  # fmt: skip

    def set_link(
        self,
        name: str,
        *,
        up: bool | None = None,
        mtu: int | None = None,
        master: str | None = None,
    ) -> None:
        changes: dict[str, Any] = {}
        if mtu is not None:
            changes["mtu"] = mtu
        if master is not None:
            changes["master"] = self.index(master)
        if up is not None:
            if not changes:  # the common case: one RTM_NEWLINK of our own
                self._rtnl(f"set {name}", self._raw.set_up, self.index(name), up)
                return
            changes["state"] = "up" if up else "down"
        if changes:
            self._call(f"set {name}", self._ipr.link, "set", index=self.index(name), **changes)

    def move_link(self, name: str, target: NetNS, new_name: str | None = None) -> None:
        """Move link ``name`` into ``target``'s namespace, renamed to ``new_name``."""
        changes: dict[str, Any] = {"net_ns_fd": target.fd}
        if new_name is not None:
            changes["ifname"] = check_ifname(new_name)
            target._forget(new_name)
        idx = self.index(name)
        self._call(f"move {name} to {target.path}", self._ipr.link, "set", index=idx, **changes)
        self._forget(name)

    def delete_link(self, name: str, *, missing_ok: bool = True) -> None:
        try:
            idx = self.index(name)
        except NetlinkError as exc:
            if missing_ok and exc.errno == errno.ENODEV:
                return
            raise
        self._forget(name)
        try:
            self._call(f"delete {name}", self._ipr.link, "del", index=idx)
        except NetlinkError as exc:
            if not (missing_ok and exc.errno == errno.ENODEV):
                raise

    def _link(self, name: str) -> tuple[int, int, dict[int, bytes]]:
        return self._rtnl(f"get {name}", self._raw.links, self.index(name))[0]  # type: ignore[no-any-return]

    def is_up(self, name: str) -> bool:
        return bool(self._link(name)[1] & _IFF_UP)

    def mtu(self, name: str) -> int:
        return _u32(self._link(name)[2].get(_IFLA_MTU)) or 0

    def master(self, name: str) -> str | None:
        idx = _u32(self._link(name)[2].get(_IFLA_MASTER))
        if not idx:
            return None
        return _text(self._rtnl("get master", self._raw.links, idx)[0][2].get(_IFLA_IFNAME))

    def link_stats(self, name: str) -> LinkStats:
        return _stats(self._link(name)[2])

    # -- addresses and routes ---------------------------------------------------------------
    def add_address(self, dev: str, cidr: str, *, exist_ok: bool = False) -> None:
        """Add ``cidr`` (``172.16.40.46/24``, IPv4 or IPv6) to ``dev``."""
        iface = ipaddress.ip_interface(cidr)
        spec: dict[str, Any] = {
            "index": self.index(dev),
            "address": str(iface.ip),
            "prefixlen": iface.network.prefixlen,
        }
        if iface.version == 4 and iface.network.prefixlen < 31:
            spec["broadcast"] = str(iface.network.broadcast_address)
        try:
            self._call(f"add address {cidr} to {dev}", self._ipr.addr, "add", **spec)
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
        if via is None and dev is None:
            raise ValueError("a route needs via, dev or both")
        spec: dict[str, Any] = {}
        if dst == "default":
            family = ipaddress.ip_address(via).version if via else 4
            spec["dst"] = "0.0.0.0" if family == 4 else "::"
            spec["dst_len"] = 0
        else:
            net = ipaddress.ip_network(dst, strict=True)
            family = net.version
            spec["dst"] = str(net.network_address)
            spec["dst_len"] = net.prefixlen
        spec["family"] = 2 if family == 4 else 10
        if via is not None:
            spec["gateway"] = str(ipaddress.ip_address(via))
        if dev is not None:
            spec["oif"] = self.index(dev)
        if metric is not None:
            spec["priority"] = metric
        if src is not None:
            spec["prefsrc"] = str(ipaddress.ip_address(src))
        if onlink:
            spec["flags"] = _RTNH_F_ONLINK
        spec["proto"] = proto
        self._call(f"add route {dst}", self._ipr.route, "add", **spec)

    def add_routes(self, routes: Sequence[tuple[str, str, str, bool]]) -> None:
        """Add many ``(dst CIDR, via, dev, onlink)`` routes at once (proto boot, as a program
        such as flannel makes them): one ``ip -batch`` in this
        namespace sends them back to back (a pyroute2 call costs ~0.85 ms each, which a
        node's host-gw routes to 100 other nodes would pay 100 times)."""
        if len(routes) < _BATCH_FROM:  # proto boot, as ip -batch makes them
            for dst, via, dev, onlink in routes:
                self.add_route(dst, via=via, dev=dev, onlink=onlink, proto=RTPROT_BOOT)
            return
        lines = []
        for dst, via, dev, onlink in routes:
            net = ipaddress.ip_network(dst, strict=True)
            gateway = ipaddress.ip_address(via)
            check_ifname(dev)
            lines.append(f"route add {net} via {gateway} dev {dev}{' onlink' if onlink else ''}")
        done = subprocess.run(
            ["nsenter", f"--net={self.path}", "ip", "-batch", "-"],
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            said = done.stderr.strip().replace("\n", "; ")
            raise NetlinkError(f"{self.path}: add {len(lines)} routes: {said}")

    # -- neighbours (lab.neighbours says why) ------------------------------------------------
    def set_neighbours(self, entries: Sequence[tuple[str, str, str]]) -> None:
        """Make each ``(address, mac, dev)`` a permanent neighbour entry, replacing one the
        kernel learnt (one RTM_NEWNEIGH each over the plain socket: ~20 us)."""
        for address, mac, dev in entries:
            ip = ipaddress.ip_address(address)
            self._rtnl(
                f"set neighbour {ip} on {dev}", self._raw.neighbour,
                str(ip), self.index(dev), _mac(mac),
            )  # fmt: skip

    def delete_neighbours(self, entries: Sequence[tuple[str, str]]) -> None:
        """Remove the ``(address, dev)`` entries; one that is gone already is no error."""
        for address, dev in entries:
            ip = ipaddress.ip_address(address)
            try:
                self._raw.neighbour(str(ip), self.index(dev), None)
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
        return [
            Neighbour(
                dst=str(_ip(family, attrs[_NDA_DST])),
                dev=names.get(ifindex),
                mac=_hw(attrs.get(_NDA_LLADDR)),
                state=state,
            )
            for family, ifindex, state, attrs in entries
            if _NDA_DST in attrs
        ]

    def _names(self) -> dict[int, str]:
        return {
            idx: str(_text(attrs.get(_IFLA_IFNAME)))
            for idx, _, attrs in self._rtnl("list links", self._raw.links)
        }

    def flush_neighbours(self) -> int:
        """Remove the entries the kernel learnt (as ``ip neigh flush all``: permanent and
        noarp ones stay); how many went."""
        gone = 0
        for n in self.neighbours():
            if n.state & (NUD_PERMANENT | NUD_NOARP) or n.dev is None:
                continue
            self.delete_neighbours([(n.dst, n.dev)])
            gone += 1
        return gone

    def routes(self, family: int = 4) -> list[dict[str, Any]]:
        """The main table's routes: ``{"dst": "default"|CIDR, "via": ip|None, "dev": name}``."""
        fam = socket.AF_INET if family == 4 else socket.AF_INET6
        routes = self._rtnl("list routes", self._raw.routes, fam, 254)
        names = self._names() if routes else {}
        found = []
        for dst_len, attrs in routes:
            dst = _ip(fam, attrs.get(_RTA_DST))
            found.append(
                {
                    "dst": "default" if dst is None else f"{dst}/{dst_len}",
                    "via": _ip(fam, attrs.get(_RTA_GATEWAY)),
                    "dev": names.get(_u32(attrs.get(_RTA_OIF)) or 0),
                }
            )
        return found

    def links(self) -> list[LinkInfo]:
        """Every link with its MAC, state, kind, master, addresses and counters (one dump
        of links and one of addresses)."""
        raw = self._rtnl("list links", self._raw.links)
        names = {idx: str(_text(attrs.get(_IFLA_IFNAME))) for idx, _, attrs in raw}
        addrs: dict[int, list[str]] = {}
        for index, _, prefixlen, address in self._rtnl("list addresses", self._raw.addresses):
            addrs.setdefault(index, []).append(f"{address}/{prefixlen}")
        found = []
        for index, flags, attrs in raw:
            info = attrs.get(_IFLA_LINKINFO)
            kind = _text(_attrs(info, 0).get(_IFLA_INFO_KIND)) if info is not None else None
            master = _u32(attrs.get(_IFLA_MASTER))
            found.append(
                LinkInfo(
                    name=names[index],
                    index=index,
                    mac=_hw(attrs.get(_IFLA_ADDRESS)),
                    up=bool(flags & _IFF_UP),
                    mtu=_u32(attrs.get(_IFLA_MTU)) or 0,
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
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        oif = _u32(attrs.get(_RTA_OIF)) or 0
        dev = None
        if oif:
            dev = _text(self._rtnl(f"get link {oif}", self._raw.links, oif)[0][2].get(_IFLA_IFNAME))
        return {
            "dev": dev,
            "via": _ip(family, attrs.get(_RTA_GATEWAY)),
            "src": _ip(family, attrs.get(_RTA_PREFSRC)),
        }

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
