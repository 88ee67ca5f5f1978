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

pyroute2 is loaded by its parts (``_parts_of_pyroute2``): its package's ``__init__``
imports the whole library (conntrack, ethtool, IPDB, NDB, ...), some 60 modules and tens of
ms of every ``up`` that the lab never uses; it runs when something asks the package for a
name that is not loaded (``from pyroute2 import NDB``), so other users see it whole.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import importlib.util
import ipaddress
import os
import re
import subprocess
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any

from . import ns
from .names import check_ifname, check_name, check_sysctl


def _parts_of_pyroute2() -> None:
    """Let ``import pyroute2.x.y`` load x.y without running pyroute2/__init__.py first: the
    package is a module that loads a part asked for by name (``from pyroute2 import
    config``) and runs that ``__init__`` at the first lookup of any other name it lacks."""
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    loader = spec.loader if spec is not None else None
    if spec is None or spec.submodule_search_locations is None or loader is None:
        return  # the import below says what is wrong
    get_code: Any = getattr(loader, "get_code", None)
    if get_code is None:
        return

    class _Package(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            if name.startswith("__"):
                raise AttributeError(name)
            if importlib.util.find_spec(f"pyroute2.{name}") is not None:  # a part: load it
                return importlib.import_module(f"pyroute2.{name}")
            self.__class__ = types.ModuleType  # type: ignore[assignment]  # once, then whole
            exec(get_code("pyroute2"), self.__dict__)
            return getattr(self, name)

    package = _Package("pyroute2")
    package.__spec__ = spec
    package.__loader__ = loader
    package.__file__ = spec.origin
    package.__path__ = list(spec.submodule_search_locations)
    package.__package__ = "pyroute2"
    sys.modules["pyroute2"] = package


_parts_of_pyroute2()

from pyroute2.iproute.linux import IPRoute  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError as _PyrNetlinkError  # noqa: E402

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


# -- one namespace, one socket --------------------------------------------------------------
class NetNS:
    """A network namespace (by path: ``/run/netns/NAME``, ``/proc/PID/ns/net``) and its
    netlink socket. Use as a context manager or ``close()`` it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = ns.open_ns(path)
        try:
            with ns.thread_in_netns(self.fd):
                self._ipr: Any = IPRoute(groups=0)
        except BaseException:
            os.close(self.fd)
            raise
        self._index: dict[str, int] = {}

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
            with contextlib.suppress(Exception):
                self._ipr.close()
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
        found = self._index.get(name)
        if found is not None:
            return found
        check_ifname(name)
        try:
            # one RTM_GETLINK by name, not a dump of every link
            found = self._ipr.link("get", ifname=name)
        except _PyrNetlinkError as exc:
            if exc.code == errno.ENODEV:
                raise NetlinkError(f"{self.path}: no link {name!r}", errno.ENODEV) from exc
            raise NetlinkError(f"{self.path}: look up {name}: {exc.args[-1]}", exc.code) from exc
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
        links = self._call("list links", self._ipr.get_links)
        return sorted(str(link.get_attr("IFLA_IFNAME")) for link in links)

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

    def is_up(self, name: str) -> bool:
        link = self._call(f"get {name}", self._ipr.get_links, self.index(name))[0]
        return bool(link["flags"] & 1)

    def mtu(self, name: str) -> int:
        link = self._call(f"get {name}", self._ipr.get_links, self.index(name))[0]
        return int(link.get_attr("IFLA_MTU"))

    def master(self, name: str) -> str | None:
        link = self._call(f"get {name}", self._ipr.get_links, self.index(name))[0]
        idx = link.get_attr("IFLA_MASTER")
        if not idx:
            return None
        return str(self._call("get master", self._ipr.get_links, idx)[0].get_attr("IFLA_IFNAME"))

    def link_stats(self, name: str) -> LinkStats:
        link = self._call(f"get {name}", self._ipr.get_links, self.index(name))[0]
        stats = link.get_attr("IFLA_STATS64") or link.get_attr("IFLA_STATS")
        return LinkStats.from_netlink(stats)

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
        kwargs: dict[str, Any] = {} if dev is None else {"index": self.index(dev)}
        if family is not None:
            kwargs["family"] = 2 if family == 4 else 10
        found = self._call("list addresses", self._ipr.get_addr, **kwargs)
        return [f"{a.get_attr('IFA_ADDRESS')}/{a['prefixlen']}" for a in found]

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
        kernel learnt; many at once go in one ``ip -batch``, as ``add_routes``."""
        if len(entries) < _BATCH_FROM:
            for address, mac, dev in entries:
                ip = ipaddress.ip_address(address)
                self._call(
                    f"set neighbour {ip} on {dev}", self._ipr.neigh, "replace",
                    dst=str(ip), lladdr=_mac(mac), ifindex=self.index(dev),
                    family=2 if ip.version == 4 else 10, state=NUD_PERMANENT,
                )  # fmt: skip
            return
        lines = [
            f"neigh replace {ipaddress.ip_address(a)} lladdr {_mac(m)} dev {check_ifname(d)} "
            "nud permanent"
            for a, m, d in entries
        ]
        self._batch(lines, f"set {len(lines)} neighbours")

    def delete_neighbours(self, entries: Sequence[tuple[str, str]]) -> None:
        """Remove the ``(address, dev)`` entries; one that is gone already is no error."""
        for address, dev in entries:
            ip = ipaddress.ip_address(address)
            try:
                ifindex = self.index(dev)
                self._ipr.neigh(
                    "del", dst=str(ip), ifindex=ifindex, family=2 if ip.version == 4 else 10
                )
            except NetlinkError as exc:
                if exc.errno != errno.ENODEV:
                    raise
            except _PyrNetlinkError as exc:
                if exc.code not in (errno.ENOENT, errno.ESRCH):
                    raise NetlinkError(f"{self.path}: delete neighbour {ip}: {exc}") from exc

    def neighbours(self) -> list[Neighbour]:
        """Every ARP and NDP entry of this namespace (``ip neigh show nud all``)."""
        names = {
            int(link["index"]): str(link.get_attr("IFLA_IFNAME"))
            for link in self._call("list links", self._ipr.get_links)
        }
        return [
            Neighbour(
                dst=str(n.get_attr("NDA_DST")),
                dev=names.get(int(n["ifindex"])),
                mac=n.get_attr("NDA_LLADDR"),
                state=int(n["state"]),
            )
            for n in self._call("list neighbours", self._ipr.get_neighbours)
            if n.get_attr("NDA_DST") is not None
        ]

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

    def _batch(self, lines: list[str], what: str) -> None:
        done = subprocess.run(
            ["nsenter", f"--net={self.path}", "ip", "-batch", "-"],
            input="\n".join(lines) + "\n",
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            said = done.stderr.strip().replace("\n", "; ")
            raise NetlinkError(f"{self.path}: {what}: {said}")

    def routes(self, family: int = 4) -> list[dict[str, Any]]:
        """The main table's routes: ``{"dst": "default"|CIDR, "via": ip|None, "dev": name}``."""
        names = {
            int(link["index"]): str(link.get_attr("IFLA_IFNAME"))
            for link in self._call("list links", self._ipr.get_links)
        }
        found = []
        fam = 2 if family == 4 else 10
        for route in self._call("list routes", self._ipr.get_routes, family=fam, table=254):
            dst = route.get_attr("RTA_DST")
            found.append(
                {
                    "dst": "default" if dst is None else f"{dst}/{route['dst_len']}",
                    "via": route.get_attr("RTA_GATEWAY"),
                    "dev": names.get(int(route.get_attr("RTA_OIF") or 0)),
                }
            )
        return found

    def links(self) -> list[LinkInfo]:
        """Every link with its MAC, state, kind, master, addresses and counters (one dump
        of links and one of addresses)."""
        raw = self._call("list links", self._ipr.get_links)
        names = {int(link["index"]): str(link.get_attr("IFLA_IFNAME")) for link in raw}
        addrs: dict[int, list[str]] = {}
        for addr in self._call("list addresses", self._ipr.get_addr):
            local = addr.get_attr("IFA_LOCAL") or addr.get_attr("IFA_ADDRESS")
            addrs.setdefault(int(addr["index"]), []).append(f"{local}/{addr['prefixlen']}")
        found = []
        for link in raw:
            index = int(link["index"])
            info = link.get_attr("IFLA_LINKINFO")
            kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
            stats = link.get_attr("IFLA_STATS64") or link.get_attr("IFLA_STATS")
            master = link.get_attr("IFLA_MASTER")
            found.append(
                LinkInfo(
                    name=names[index],
                    index=index,
                    mac=link.get_attr("IFLA_ADDRESS"),
                    up=bool(link["flags"] & 1),
                    mtu=int(link.get_attr("IFLA_MTU") or 0),
                    kind=str(kind) if kind else None,
                    master=names.get(int(master)) if master else None,
                    addresses=tuple(addrs.get(index, ())),
                    stats=LinkStats.from_netlink(stats),
                )
            )
        return found

    def route_to(self, dst: str) -> dict[str, str | None] | None:
        """The route the kernel takes to ``dst`` (``ip route get``): ``{"dev", "via",
        "src"}``; None when it has none (unreachable)."""
        address = str(ipaddress.ip_address(dst))
        try:
            found = self._call(f"route get {address}", self._ipr.route, "get", dst=address)
        except NetlinkError as exc:
            if exc.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EINVAL):
                return None
            raise
        if not found:
            return None
        route = found[0]
        oif = int(route.get_attr("RTA_OIF") or 0)
        dev = None
        if oif:
            link = self._call(f"get link {oif}", self._ipr.get_links, oif)[0]
            dev = str(link.get_attr("IFLA_IFNAME"))
        return {
            "dev": dev,
            "via": route.get_attr("RTA_GATEWAY"),
            "src": route.get_attr("RTA_PREFSRC"),
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
