"""multihome.lab.linkup.LinkUpWatcher: links set up the moment they appear in a pod's namespace.

With the real macvlan plugin and a test-only IPAM plugin that looks at the link while it
runs: macvlan calls IPAM before it sets the link up itself, so the link is up during IPAM only
when the watcher set it up (which is what spares the 1.1.1 dhcp daemon its back-off).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from kernel import (
    CNI_BIN_DIR,
    ip,
    netns,
    netns_path,
    require_cni_plugins,
    require_link_kind,
    require_netns,
)

from multihome.cni import CNIRuntime, NodeNamespaces, RuntimeConf, load_network_config
from multihome.lab.linkup import LinkUpWatcher

pytestmark = pytest.mark.netns

PROBE_IPAM = """#!/bin/sh
# Test-only IPAM plugin: on ADD, records whether $CNI_IFNAME is up in the pod (waiting up to
# 0.3 s for it), then hands out a fixed address.
case "$CNI_COMMAND" in
  ADD)
    state=down
    for _ in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do
      if nsenter --net="$CNI_NETNS" ip -o link show "$CNI_IFNAME" | grep -Eq '[<,]UP[,>]'; then
        state=up
        break
      fi
      sleep 0.01
    done
    echo "$CNI_IFNAME $state" >> {record}
    echo '{{"cniVersion":"0.4.0","ips":[{{"version":"4","address":"10.77.0.2/24"}}]}}' ;;
  VERSION)
    echo '{{"cniVersion":"0.4.0","supportedVersions":["0.3.0","0.3.1","0.4.0"]}}' ;;
esac
exit 0
"""


def is_up(ns: str, ifname: str) -> bool:
    return "UP" in json.loads(ip(ns, "-j", "link", "show", ifname))[0]["flags"]


def wait_for(check: Callable[[], bool], timeout: float = 2.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.01)
    return check()


@pytest.fixture
def pod() -> Iterator[str]:
    require_netns()
    with netns("pod") as name:
        yield name


@pytest.mark.parametrize("way", ["thread", "fork"])
def test_named_links_are_set_up_as_they_appear(
    pod: str, way: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In a thread; in a forked child where threads can't start (a process that joined
    the lab's PID namespace)."""
    if way == "fork":

        def refuse(self: threading.Thread) -> None:
            raise RuntimeError("can't start new thread")

        monkeypatch.setattr(threading.Thread, "start", refuse)
    threads = threading.active_count()
    with LinkUpWatcher(netns_path(pod), names=["net1", "net2"]) as watcher:
        ip(pod, "link", "add", "net1", "type", "veth", "peer", "name", "other0")
        assert wait_for(lambda: is_up(pod, "net1"))
        ip(pod, "link", "add", "tmp0", "type", "veth", "peer", "name", "other1")
        ip(pod, "link", "set", "tmp0", "name", "net2")  # appears under its final name later
        assert wait_for(lambda: is_up(pod, "net2"))
        assert not is_up(pod, "other0") and not is_up(pod, "other1")
    assert sorted({u.name for u in watcher.raised}) == ["net1", "net2"]
    assert watcher.errors == []
    assert threading.active_count() == threads  # stopped: the thread is gone
    ip(pod, "link", "add", "net3", "type", "veth", "peer", "name", "other3")
    time.sleep(0.05)
    assert not is_up(pod, "net3")


def test_every_link_without_names_and_links_already_there(pod: str) -> None:
    ip(pod, "link", "add", "early0", "type", "veth", "peer", "name", "early1")
    with LinkUpWatcher(netns_path(pod)) as watcher:
        assert is_up(pod, "early0") and is_up(pod, "early1")  # seen at start
        ip(pod, "link", "add", "late0", "type", "veth", "peer", "name", "late1")
        assert wait_for(lambda: is_up(pod, "late0") and is_up(pod, "late1"))
        assert is_up(pod, "lo")
    assert watcher.errors == []


def test_a_namespace_that_cannot_be_entered(tmp_path: Path) -> None:
    with pytest.raises(OSError, match="link watcher"):
        LinkUpWatcher(str(tmp_path / "nothing")).start()


@pytest.mark.parametrize("watch", [True, False], ids=["watched", "unwatched"])
def test_macvlan_link_is_up_while_ipam_runs(tmp_path: Path, pod: str, watch: bool) -> None:
    require_cni_plugins()
    require_link_kind("macvlan")
    record = tmp_path / "ipam.log"
    fakebin = tmp_path / "bin"
    fakebin.mkdir()
    probe = fakebin / "probe-ipam"
    probe.write_text(PROBE_IPAM.format(record=record))
    probe.chmod(0o755)
    net = load_network_config(
        {
            "cniVersion": "0.4.0",
            "name": "vlan50",
            "type": "macvlan",
            "master": "ens224",
            "mode": "bridge",
            "ipam": {"type": "probe-ipam"},
        }
    )
    with netns("node") as node:
        ip(node, "link", "add", "ens224", "type", "veth", "peer", "name", "ens224p")
        ip(node, "link", "set", "ens224", "up")
        rt = RuntimeConf(container_id="pod0", netns=netns_path(pod), ifname="net1")
        with CNIRuntime(
            [str(fakebin), CNI_BIN_DIR], tmp_path / "cache", node=NodeNamespaces(netns_path(node))
        ) as runtime:
            watcher = LinkUpWatcher(netns_path(pod), names=["net1"])
            if watch:
                watcher.start()
            try:
                result = runtime.add_network_list(net, rt)
            finally:
                watcher.stop()
            try:
                assert [str(i.address) for i in result.ips] == ["10.77.0.2/24"]
                assert is_up(pod, "net1")
                assert record.read_text().split() == ["net1", "up" if watch else "down"]
                assert [u.name for u in watcher.raised] == (["net1"] if watch else [])
            finally:
                runtime.del_network_list(net, rt)
