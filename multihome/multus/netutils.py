"""Default routes in a pod's network namespace (Multus pkg/netutils), over netlink.

The only module of this package that touches the kernel. ``DeleteDefaultGW`` removes every
main-table route with no destination (both families) from one interface; ``SetDefaultGW``
adds ``default via GW dev IF`` and ignores "already exists". Both run through one netlink
socket opened inside the pod's namespace.

The socket is made by a short-lived thread that enters the namespace (``setns`` changes only
the calling thread) and ends right after: no fork, safe while other threads attach other
pods, and the caller's own namespace never changes. pyroute2's ``IPRoute`` then uses that
socket (0.9 dropped the old ``NetNS`` class for ``IPRoute(netns=...)``, which forks a child).
"""

from __future__ import annotations

import ctypes
import errno
import ipaddress
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

CLONE_NEWNET = 0x40000000
NETLINK_ROUTE = 0
RT_TABLE_MAIN = 254
RTPROT_BOOT = 3

_libc = ctypes.CDLL(None, use_errno=True)


def _netlink_error() -> type[Exception]:
    """pyroute2's NetlinkError (pyroute2 is imported on first use: it takes ~0.1 s)."""
    from pyroute2.netlink.exceptions import NetlinkError

    error: type[Exception] = NetlinkError
    return error


class NetlinkFailure(OSError):
    """A route operation in a pod's namespace failed; the message says which and why."""


@dataclass(frozen=True)
class RemovedRoute:
    """A default route that was deleted: its interface, family (4/6) and gateway."""

    ifname: str
    family: int
    gateway: str | None


class DefaultRouteEditor:
    """Default-route edits in one pod namespace over one netlink socket (a context manager).

    ``delete_default_routes(IF)`` is Multus ``DeleteDefaultGW``; ``add_default_route(IF, GW)``
    is ``SetDefaultGW`` for one gateway. Both raise :class:`NetlinkFailure`.
    """

    def __init__(self, netns: str) -> None:
        self.netns = netns
        self._stack = ExitStack()
        self._ipr: Any = None

    def __enter__(self) -> DefaultRouteEditor:
        self._ipr = self._stack.enter_context(_ipr_in(self.netns))
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def delete_default_routes(self, ifname: str) -> list[RemovedRoute]:
        """Delete the main-table default routes (both families) of ``ifname``."""
        index = _link_index(self._ipr, self.netns, ifname)
        return _delete_default_routes(self._ipr, self.netns, ifname, index)

    def add_default_route(self, ifname: str, gateway: str) -> None:
        """Add ``default via gateway dev ifname``; an existing identical route is fine.
        ``""`` is Go's empty IP: vishvananda/netlink refuses a route with neither
        destination, source nor gateway, and so does this, in its words."""
        index = _link_index(self._ipr, self.netns, ifname)
        if gateway == "":
            raise NetlinkFailure("one of Dst.IP, Src, or Gw must not be nil")
        _add_default_route(self._ipr, self.netns, ifname, index, gateway)


def replace_default_routes(
    netns: str, remove_on: Sequence[str], add: Sequence[tuple[str, str]]
) -> list[RemovedRoute]:
    """In the namespace at path ``netns``: delete the default routes of each interface in
    ``remove_on``, then add ``default via GW dev IF`` for each ``(IF, GW)`` of ``add``.
    Returns what was deleted. Raises :class:`NetlinkFailure`."""
    removed: list[RemovedRoute] = []
    with DefaultRouteEditor(netns) as editor:
        for ifname in remove_on:
            removed.extend(editor.delete_default_routes(ifname))
        for ifname, gateway in add:
            editor.add_default_route(ifname, gateway)
    return removed


def default_routes(netns: str) -> list[tuple[str, str | None]]:
    """``(ifname, gateway)`` of every main-table default route in the namespace."""
    with _ipr_in(netns) as ipr:
        names = {link["index"]: link.get_attr("IFLA_IFNAME") for link in ipr.link("dump")}
        out = []
        for route in ipr.route("dump", table=RT_TABLE_MAIN):
            if route["dst_len"] == 0 and route.get_attr("RTA_DST") is None:
                oif = route.get_attr("RTA_OIF")
                out.append((names.get(oif, str(oif)), route.get_attr("RTA_GATEWAY")))
        return out


# -- internals ------------------------------------------------------------------------------


def _netlink_socket_in(netns: str) -> socket.socket:
    """A NETLINK_ROUTE socket that lives in the namespace at ``netns``."""
    made: dict[str, Any] = {}

    def enter_and_open() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
            try:
                if _libc.setns(fd, CLONE_NEWNET) != 0:
                    code = ctypes.get_errno()
                    raise OSError(code, f"setns: {os.strerror(code)}")
            finally:
                os.close(fd)
            made["socket"] = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
        except BaseException as err:  # handed to the caller's thread
            made["error"] = err

    thread = threading.Thread(target=enter_and_open, name="multus-netns", daemon=True)
    thread.start()
    thread.join()
    if "error" in made:
        err = made["error"]
        raise NetlinkFailure(f"cannot open the network namespace {netns}: {err}") from err
    sock: socket.socket = made["socket"]
    return sock


def preload() -> None:
    """Import what the edits use now (pyroute2's ``IPRoute``: ~0.1 s of CPU), in a process
    about to fork the workers that attach pods, so that each does not import it again."""
    from pyroute2.iproute.linux import IPRoute  # noqa: F401


@contextmanager
def _ipr_in(netns: str) -> Iterator[Any]:
    from pyroute2.iproute.linux import IPRoute

    sock = _netlink_socket_in(netns)
    try:
        ipr = IPRoute(fileno=sock.fileno())
    except BaseException:
        sock.close()
        raise
    sock.detach()  # IPRoute owns the descriptor now
    try:
        yield ipr
    finally:
        ipr.close()


def _link_index(ipr: Any, netns: str, ifname: str) -> int:
    found = ipr.link_lookup(ifname=ifname)
    if not found:
        raise NetlinkFailure(f"no interface {ifname!r} in the network namespace {netns}")
    return int(found[0])


def _delete_default_routes(ipr: Any, netns: str, ifname: str, index: int) -> list[RemovedRoute]:
    removed = []
    for route in ipr.route("dump", table=RT_TABLE_MAIN, oif=index):
        if route["dst_len"] != 0 or route.get_attr("RTA_DST") is not None:
            continue
        if route.get_attr("RTA_OIF") != index:
            continue
        gateway = route.get_attr("RTA_GATEWAY")
        spec: dict[str, Any] = {
            "family": route["family"],
            "dst_len": 0,
            "table": RT_TABLE_MAIN,
            "oif": index,
            "priority": route.get_attr("RTA_PRIORITY"),
        }
        if gateway is not None:
            spec["gateway"] = gateway
        try:
            ipr.route("del", **{k: v for k, v in spec.items() if v is not None})
        except _netlink_error() as err:
            code = getattr(err, "code", 0)
            if code != errno.ESRCH:
                raise NetlinkFailure(
                    f"deleting the default route via {gateway} dev {ifname} "
                    f"in {netns}: {os.strerror(code)}"
                ) from err
        family = 4 if route["family"] == socket.AF_INET else 6
        removed.append(RemovedRoute(ifname=ifname, family=family, gateway=gateway))
    return removed


def _add_default_route(ipr: Any, netns: str, ifname: str, index: int, gateway: str) -> None:
    address = ipaddress.ip_address(gateway)
    family = socket.AF_INET if address.version == 4 else socket.AF_INET6
    try:
        ipr.route(
            "add",
            family=family,
            dst_len=0,
            table=RT_TABLE_MAIN,
            oif=index,
            gateway=str(address),
            proto=RTPROT_BOOT,  # what Go's netlink.RouteAdd leaves: "ip route" shows no proto
        )
    except _netlink_error() as err:
        code = getattr(err, "code", 0)
        if code == errno.EEXIST:
            return
        raise NetlinkFailure(
            f"adding the default route via {gateway} dev {ifname} in {netns}: {os.strerror(code)}"
        ) from err
