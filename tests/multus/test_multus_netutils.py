"""netutils: default routes in a namespace, over netlink (Multus DeleteDefaultGW/SetDefaultGW)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from kernel import ip, netns, netns_path, require_netns

from multihome.multus.netutils import (
    DefaultRouteEditor,
    NetlinkFailure,
    RemovedRoute,
    default_routes,
    replace_default_routes,
)

pytestmark = pytest.mark.netns


@pytest.fixture
def pod() -> Iterator[str]:
    """A namespace with a0 (10.9.0.2/24, fd00::2/64, default routes of both families) and
    a1 (10.8.0.2/24, no default route)."""
    require_netns()
    with netns("pod") as name:
        ip(name, "link", "add", "a0", "type", "veth", "peer", "a1")
        ip(name, "addr", "add", "10.9.0.2/24", "dev", "a0")
        ip(name, "-6", "addr", "add", "fd00::2/64", "dev", "a0", "nodad")
        ip(name, "addr", "add", "10.8.0.2/24", "dev", "a1")
        ip(name, "link", "set", "a0", "up")
        ip(name, "link", "set", "a1", "up")
        ip(name, "route", "add", "default", "via", "10.9.0.1", "dev", "a0")
        ip(name, "-6", "route", "add", "default", "via", "fd00::1", "dev", "a0")
        yield name


def test_move_default_route(pod: str) -> None:
    path = netns_path(pod)
    assert sorted(default_routes(path)) == [("a0", "10.9.0.1"), ("a0", "fd00::1")]
    removed = replace_default_routes(path, ["a0", "a1"], [("a1", "10.8.0.1")])
    assert removed == [
        RemovedRoute("a0", 4, "10.9.0.1"),
        RemovedRoute("a0", 6, "fd00::1"),
    ]
    assert default_routes(path) == [("a1", "10.8.0.1")]
    assert ip(pod, "route", "show", "default").split() == [
        "default",
        "via",
        "10.8.0.1",
        "dev",
        "a1",
    ]
    # the rest of a0 is untouched
    assert "10.9.0.0/24 dev a0" in ip(pod, "route")


def test_adding_an_existing_route_is_fine(pod: str) -> None:
    with DefaultRouteEditor(netns_path(pod)) as editor:
        editor.add_default_route("a0", "10.9.0.1")
        editor.add_default_route("a0", "fd00::1")
        assert editor.delete_default_routes("a1") == []
    assert sorted(default_routes(netns_path(pod))) == [("a0", "10.9.0.1"), ("a0", "fd00::1")]


def test_errors_name_what_failed(pod: str) -> None:
    path = netns_path(pod)
    with pytest.raises(NetlinkFailure, match=r"via 192\.0\.2\.1 dev a1 .*unreachable"):
        replace_default_routes(path, [], [("a1", "192.0.2.1")])
    with pytest.raises(NetlinkFailure, match="no interface 'eth9'"):
        replace_default_routes(path, ["eth9"], [])
    with pytest.raises(NetlinkFailure, match="cannot open the network namespace"):
        replace_default_routes(path + "-missing", ["a0"], [])


def test_caller_stays_in_its_namespace(pod: str) -> None:
    before = os.stat("/proc/thread-self/ns/net").st_ino
    replace_default_routes(netns_path(pod), ["a0"], [])
    assert os.stat("/proc/thread-self/ns/net").st_ino == before
    assert default_routes(netns_path(pod)) == []
