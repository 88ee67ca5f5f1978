"""The runtime against the real reference plugins (Debian 1.1.1) in real namespaces.

Each test gets a throw-away node netns (where plugins run) and pod netns (CNI_NETNS); host-local
keeps its allocations under tmp_path, and nothing touches the host's own network.
"""

from __future__ import annotations

import ctypes
import json
import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cni_helpers import Fakes, Node, addresses, link_names, pid_alive
from kernel import CNI_BIN_DIR, ip, require_link_kind

from multihome.cni import (
    CNIError,
    CNIRuntime,
    CNITimeout,
    NetworkConfigList,
    NodeNamespaces,
    Result,
    load_network_config,
)
from multihome.cni.ns import NodeFS, inside

pytestmark = pytest.mark.netns


def host_local(tmp: Path, subnet: str = "10.10.0.0/24", **extra: Any) -> dict[str, Any]:
    return {"type": "host-local", "subnet": subnet, "dataDir": str(tmp / "ipam"), **extra}


def allocations(tmp: Path, net: str) -> list[str]:
    d = tmp / "ipam" / net
    if not d.exists():
        return []
    return sorted(
        p.name for p in d.iterdir() if p.name[0].isdigit() and "last_reserved" not in p.name
    )


def cache_path(node: Node, net: NetworkConfigList, cid: str = "pod0", ifname: str = "eth0") -> Path:
    return node.tmp / "cache" / "results" / f"{net.name}-{cid}-{ifname}"


@pytest.fixture
def master(node: Node) -> str:
    """A NIC named ens224 in the node (a veth whose peer stays in the node)."""
    require_link_kind("macvlan")
    ip(node.node, "link", "add", "ens224", "type", "veth", "peer", "name", "ens224p")
    ip(node.node, "link", "set", "ens224", "up")
    ip(node.node, "link", "set", "ens224p", "up")
    return "ens224"


def test_config_without_cni_version_runs_as_libcni_runs_it(node: Node, master: str) -> None:
    """No cniVersion: sent as "" without VERSION negotiation; the 1.1.1 plugins answer a 0.1.0
    result (ip4, no interfaces), which is cached as is; DEL gets no prevResult."""
    net = load_network_config(
        {
            "name": "vlan50-old",
            "type": "macvlan",
            "master": master,
            "ipam": {"type": "static", "addresses": [{"address": "172.16.50.11/24"}]},
        }
    )
    assert net.cni_version == ""
    rt = node.rt("net1")
    with node.runtime() as runtime:
        result = runtime.add_network_list(net, rt)
        assert result.cni_version == "0.1.0" and result.interfaces == []
        assert [str(i.address) for i in result.ips] == ["172.16.50.11/24"]
        assert addresses(node.pod, "net1") == ["172.16.50.11/24"]
        cached = json.loads(cache_path(node, net, ifname="net1").read_text())
        assert cached["result"]["cniVersion"] == "0.1.0"
        assert cached["result"]["ip4"] == {"ip": "172.16.50.11/24"}
        runtime.del_network_list(net, rt)
        assert "net1" not in node.pod_links()


def test_static_ipam_takes_ip_and_mac_from_cni_args(node: Node, master: str) -> None:
    """What Multus's DelegateAdd relies on: ``IP=`` and ``MAC=`` in CNI_ARGS reach a static
    IPAM and macvlan that declare no ``ips``/``mac`` capability."""
    net = load_network_config(
        {
            "cniVersion": "0.3.1",
            "name": "vlan50-args",
            "type": "macvlan",
            "master": master,
            "ipam": {"type": "static"},
        }
    )
    rt = node.rt("net1")
    rt.args = [
        ("IgnoreUnknown", "true"),
        ("K8S_POD_NAMESPACE", "pods"),
        ("MAC", "02:00:00:00:00:2a"),
        ("IP", "172.16.50.12/24,fd00:50::12/64"),
    ]
    with node.runtime() as runtime:
        result = runtime.add_network_list(net, rt)
        assert [str(i.address) for i in result.ips] == ["172.16.50.12/24", "fd00:50::12/64"]
        assert result.interfaces[0].mac == "02:00:00:00:00:2a"
        assert "172.16.50.12/24" in addresses(node.pod, "net1")
        runtime.del_network_list(net, rt)


def test_macvlan_static(node: Node, master: str) -> None:
    net = load_network_config(
        {
            "cniVersion": "1.0.0",
            "name": "vlan50-static",
            "type": "macvlan",
            "master": master,
            "mode": "bridge",
            "ipam": {
                "type": "static",
                "addresses": [{"address": "172.16.50.10/24", "gateway": "172.16.50.1"}],
                "routes": [{"dst": "172.16.60.0/24"}],
            },
        }
    )
    rt = node.rt("net1")
    with node.runtime() as runtime:
        result = runtime.add_network_list(net, rt)
        assert addresses(node.pod, "net1") == ["172.16.50.10/24"]
        assert [str(i.address) for i in result.ips] == ["172.16.50.10/24"]
        assert [str(r.dst) for r in result.routes] == ["172.16.60.0/24"]
        pod_if = result.interfaces[result.ips[0].interface or 0]
        assert pod_if.name == "net1" and pod_if.sandbox == node.pod_path
        details = json.loads(ip(node.pod, "-d", "-j", "link", "show", "net1"))[0]
        assert details["linkinfo"]["info_kind"] == "macvlan"
        assert details["linkinfo"]["info_data"]["mode"] == "bridge"
        assert cache_path(node, net, ifname="net1").exists()
        runtime.del_network_list(net, rt)
        assert node.pod_links() == ["lo"]
        assert not cache_path(node, net, ifname="net1").exists()
        runtime.del_network_list(net, rt)  # DEL twice


def test_macvlan_host_local_and_check(node: Node, master: str) -> None:
    net = load_network_config(
        {
            "cniVersion": "1.0.0",
            "name": "vlan50",
            "plugins": [
                {
                    "type": "macvlan",
                    "master": master,
                    "mode": "bridge",
                    "ipam": host_local(node.tmp, "172.16.50.0/24", rangeStart="172.16.50.100"),
                }
            ],
        }
    )
    rt = node.rt(
        "net1",
        args=[
            ("IgnoreUnknown", "true"),
            ("K8S_POD_NAMESPACE", "default"),
            ("K8S_POD_NAME", "net-tools"),
            ("K8S_POD_INFRA_CONTAINER_ID", "pod0"),
        ],
    )
    with node.runtime() as runtime:
        result = runtime.add_network_list(net, rt)
        assert [str(i.address) for i in result.ips] == ["172.16.50.100/24"]
        assert allocations(node.tmp, "vlan50") == ["172.16.50.100"]
        runtime.check_network_list(net, rt)
        # CHECK really looks: with the interface gone it fails
        ip(node.pod, "link", "del", "net1")
        with pytest.raises(CNIError) as err:
            runtime.check_network_list(net, rt)
        assert err.value.command == "CHECK" and err.value.plugin == "macvlan"
        runtime.del_network_list(net, rt)
        assert allocations(node.tmp, "vlan50") == []
        assert runtime.get_cached_result(net, rt) is None


def test_macvlan_del_when_master_is_gone(node: Node, master: str) -> None:
    net = load_network_config(
        {
            "cniVersion": "1.0.0",
            "name": "vlan60",
            "type": "macvlan",
            "master": master,
            "ipam": host_local(node.tmp, "172.16.60.0/24"),
        }
    )
    rt = node.rt("net2")
    with node.runtime() as runtime:
        runtime.add_network_list(net, rt)
        ip(node.node, "link", "del", master)  # takes the macvlan child with it
        runtime.del_network_list(net, rt)  # macvlan says "Link not found": tolerated
        assert not cache_path(node, net, ifname="net2").exists()


def test_bridge_host_local(node: Node) -> None:
    require_link_kind("bridge")
    net = load_network_config(
        {
            "cniVersion": "0.4.0",
            "name": "bridged",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": "mhbr0",
                    "isGateway": True,
                    "ipMasq": False,
                    "ipam": host_local(node.tmp, "10.20.0.0/24"),
                }
            ],
        }
    )
    rt = node.rt()
    with node.runtime() as runtime:
        result = runtime.add_network_list(net, rt)
        assert result.cni_version == "0.4.0"
        assert addresses(node.pod, "eth0") == ["10.20.0.2/24"]
        assert "10.20.0.1/24" in addresses(node.node, "mhbr0")
        assert str(result.ips[0].gateway) == "10.20.0.1"
        runtime.check_network_list(net, rt)
        runtime.del_network_list(net, rt)
        assert node.pod_links() == ["lo"]
        assert allocations(node.tmp, "bridged") == []
        runtime.del_network_list(net, rt)


def ptp_tuning(node: Node, version: str = "1.0.0") -> NetworkConfigList:
    return load_network_config(
        {
            "cniVersion": version,
            "name": "k8s-pod-network",
            "plugins": [
                {"type": "ptp", "ipam": host_local(node.tmp, "10.42.1.0/24")},
                {"type": "tuning", "mtu": 1400, "capabilities": {"mac": True}},
            ],
        }
    )


def test_ptp_and_tuning_conflist(node: Node) -> None:
    net = ptp_tuning(node)
    rt = node.rt(capability_args={"mac": "02:42:00:00:00:07", "portMappings": []})
    with node.runtime() as runtime:
        result = runtime.add_network_list(net, rt)
        link = json.loads(ip(node.pod, "-j", "link", "show", "eth0"))[0]
        assert link["mtu"] == 1400 and link["address"] == "02:42:00:00:00:07"
        assert addresses(node.pod, "eth0") == ["10.42.1.2/24"]
        assert [i.name for i in result.interfaces][-1] == "eth0"
        host_veth = result.interfaces[0].name
        assert host_veth in node.node_links()
        entry = json.loads(cache_path(node, net).read_text())
        assert entry["kind"] == "cniCacheV1" and entry["networkName"] == "k8s-pod-network"
        assert entry["result"] == result.to_json("1.0.0")
        runtime.check_network_list(net, rt)
        runtime.del_network_list(net, rt)
        assert node.pod_links() == ["lo"] and node.node_links() == ["lo"]
        assert not cache_path(node, net).exists()
        runtime.del_network_list(net, rt)


def test_check_after_the_default_route_moved(node: Node) -> None:
    """ptp's CHECK compares the cached routes with the pod's: after a caller (Multus) removed
    the default route, CHECK fails until the cached result says so too."""
    net = load_network_config(
        {
            "cniVersion": "1.0.0",
            "name": "k8s-pod-network",
            "type": "ptp",
            "ipam": host_local(node.tmp, "10.42.1.0/24", routes=[{"dst": "0.0.0.0/0"}]),
        }
    )
    rt = node.rt()
    with node.runtime() as runtime:
        result = runtime.add_network_list(net, rt)
        assert [str(r.dst) for r in result.routes] == ["0.0.0.0/0"]
        runtime.check_network_list(net, rt)
        ip(node.pod, "route", "del", "default", "dev", "eth0")
        with pytest.raises(CNIError) as err:
            runtime.check_network_list(net, rt)
        assert err.value.plugin == "ptp" and err.value.command == "CHECK"
        before = json.loads(cache_path(node, net).read_text())
        moved = Result.from_json(result.to_json())
        moved.routes = [r for r in moved.routes if r.dst.prefixlen != 0]
        assert runtime.set_cached_result(net, rt, moved) is True
        after = json.loads(cache_path(node, net).read_text())
        assert after == {**before, "result": moved.to_json("1.0.0")}
        assert "routes" not in after["result"]
        runtime.check_network_list(net, rt)
        runtime.del_network_list(net, rt)
        assert node.pod_links() == ["lo"] and allocations(node.tmp, net.name) == []
        assert runtime.set_cached_result(net, rt, moved) is False
        assert not cache_path(node, net).exists()


def test_110_list_against_100_plugins(node: Node) -> None:
    net = ptp_tuning(node, "1.1.0")
    rt = node.rt()
    with node.runtime() as runtime:
        result = runtime.add_network_list(net, rt)
        assert result.cni_version == "1.1.0"
        assert json.loads(cache_path(node, net).read_text())["result"]["cniVersion"] == "1.1.0"
        runtime.check_network_list(net, rt)
        runtime.del_network_list(net, rt)
        assert node.pod_links() == ["lo"]


def test_failing_plugin_mid_chain_leaves_nothing(node: Node, fakes: Fakes) -> None:
    fakes.add("fail")
    net = load_network_config(
        {
            "cniVersion": "1.0.0",
            "name": "broken",
            "plugins": [
                {"type": "ptp", "ipam": host_local(node.tmp, "10.30.0.0/24")},
                {"type": "fail", "fake": {"ADD": {"fail": {"code": 104, "msg": "no"}}}},
                {"type": "tuning", "mtu": 1400},
            ],
        }
    )
    rt = node.rt()
    with node.runtime(str(fakes.dir), CNI_BIN_DIR) as runtime, pytest.raises(CNIError) as err:
        runtime.add_network_list(net, rt)
    assert (err.value.plugin, err.value.code, err.value.command) == ("fail", 104, "ADD")
    assert node.pod_links() == ["lo"] and node.node_links() == ["lo"]
    assert allocations(node.tmp, "broken") == []
    assert not cache_path(node, net).exists()


def test_hanging_plugin_is_killed_and_the_chain_cleaned(node: Node, fakes: Fakes) -> None:
    pidfile = node.tmp / "hang.pids"
    fakes.add_hang("hang", pidfile)
    net = load_network_config(
        {
            "cniVersion": "1.0.0",
            "name": "hangs",
            "plugins": [
                {"type": "ptp", "ipam": host_local(node.tmp, "10.31.0.0/24")},
                {"type": "hang"},
            ],
        }
    )
    runtime = node.runtime(str(fakes.dir), CNI_BIN_DIR, timeout=1.0)
    with runtime, pytest.raises(CNITimeout) as err:
        runtime.add_network_list(net, node.rt())
    assert err.value.plugin == "hang"
    pids = [int(p) for p in pidfile.read_text().split()]
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pids and not any(pid_alive(p) for p in pids)
    assert node.pod_links() == ["lo"] and node.node_links() == ["lo"]
    assert allocations(node.tmp, "hangs") == []


@pytest.fixture
def node_mount_ns(node: Node) -> Iterator[tuple[str, Path]]:
    """A mount namespace (held by a sleeping process) where ``bin`` holds the plugins; in
    ours, ``bin`` is empty. Yields (/proc/PID/ns/mnt, bin)."""
    bindir = node.tmp / "nodebin"
    bindir.mkdir()
    holder = subprocess.Popen(
        [
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            f'mount --bind {CNI_BIN_DIR} "$0" && echo ready && exec sleep 600',
            str(bindir),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        if holder.stdout.readline().strip() != "ready":
            pytest.skip("cannot make a private mount namespace here")
        yield f"/proc/{holder.pid}/ns/mnt", bindir
    finally:
        holder.kill()
        holder.wait()


def test_plugins_run_in_the_node_mount_namespace(
    node: Node, node_mount_ns: tuple[str, Path]
) -> None:
    mntns, bindir = node_mount_ns
    assert list(bindir.iterdir()) == []  # not visible from here
    net = ptp_tuning(node)
    rt = node.rt()
    ours = [os.readlink(f"/proc/self/ns/{kind}") for kind in ("net", "mnt")], os.getcwd()
    with CNIRuntime(
        [str(bindir)],
        node.tmp / "cache",
        node=NodeNamespaces(netns=f"/run/netns/{node.node}", mntns=mntns),
    ) as runtime:
        runtime.validate_network_list(net)
        runtime.add_network_list(net, rt)
        assert addresses(node.pod, "eth0") == ["10.42.1.2/24"]
        runtime.del_network_list(net, rt)
    assert link_names(node.pod) == ["lo"]
    # the caller stepped into the node to start each plugin and is back where it was
    assert ([os.readlink(f"/proc/self/ns/{kind}") for kind in ("net", "mnt")], os.getcwd()) == ours
    # and from the caller's mount namespace the same path has no plugins
    with (
        CNIRuntime([str(bindir)], node.tmp / "cache2") as here,
        pytest.raises(CNIError, match="not found"),
    ):
        here.add_network_list(net, rt)


def test_inside_steps_into_the_node_and_back(node: Node, node_mount_ns: tuple[str, Path]) -> None:
    mntns, bindir = node_mount_ns
    target = NodeNamespaces(netns=f"/run/netns/{node.node}", mntns=mntns)
    ours = [os.readlink(f"/proc/self/ns/{kind}") for kind in ("net", "mnt")], os.getcwd()
    with inside(target) as there:
        assert there  # pytest runs the test in its one thread
        assert os.stat(f"/run/netns/{node.node}").st_ino == os.stat("/proc/self/ns/net").st_ino
        assert os.readlink("/proc/self/ns/mnt") == os.readlink(mntns)
        assert os.getcwd() == "/"
    assert ([os.readlink(f"/proc/self/ns/{kind}") for kind in ("net", "mnt")], os.getcwd()) == ours
    with pytest.raises(RuntimeError), inside(target):
        raise RuntimeError("the body failed")  # and it still comes back
    assert ([os.readlink(f"/proc/self/ns/{kind}") for kind in ("net", "mnt")], os.getcwd()) == ours
    assert list(bindir.iterdir()) == []


CLONE_FS = 0x200


def test_inside_with_another_thread(node: Node, node_mount_ns: tuple[str, Path]) -> None:
    """A thread sharing our root and working directory keeps us out of the node's mount
    namespace (the kernel's rule): ``inside`` then stays put and says so; once that thread
    unshared them (as the lab's link-up watcher does), we step in while it runs."""
    mntns, _ = node_mount_ns
    target = NodeNamespaces(netns=f"/run/netns/{node.node}", mntns=mntns)
    ours = [os.readlink(f"/proc/thread-self/ns/{kind}") for kind in ("net", "mnt")], os.getcwd()
    for unshared in (False, True):
        ready, done = threading.Event(), threading.Event()

        def other(
            unshared: bool = unshared, ready: threading.Event = ready, done: threading.Event = done
        ) -> None:
            if unshared:
                assert ctypes.CDLL(None, use_errno=True).unshare(CLONE_FS) == 0
            ready.set()
            done.wait(10)

        thread = threading.Thread(target=other)
        thread.start()
        try:
            ready.wait(10)
            with inside(target) as there:
                assert there == unshared
                mnt = os.readlink("/proc/thread-self/ns/mnt")
                assert (mnt == os.readlink(mntns)) == unshared
        finally:
            done.set()
            thread.join()
        here = [os.readlink(f"/proc/thread-self/ns/{kind}") for kind in ("net", "mnt")]
        assert (here, os.getcwd()) == ours


def test_node_fs_sees_the_node(
    node_mount_ns: tuple[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``NodeFS`` stats paths as the node sees them. A single-threaded caller opens the
    node's root itself, without a fork; one with a thread sharing its root and working
    directory can't enter the mount namespace, and a forked child opens it."""
    mntns, bindir = node_mount_ns
    plugin = str(bindir / sorted(os.listdir(CNI_BIN_DIR))[0])
    assert not os.path.exists(plugin)  # not from here
    real_fork = os.fork
    forks: list[int] = []

    def counted_fork() -> int:
        pid = real_fork()
        if pid:
            forks.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", counted_fork)
    ours = os.readlink("/proc/thread-self/ns/mnt"), os.getcwd()
    fs = NodeFS(mntns)
    try:
        assert stat.S_ISREG(fs.stat(plugin).st_mode)
    finally:
        fs.close()
    assert forks == []
    assert (os.readlink("/proc/thread-self/ns/mnt"), os.getcwd()) == ours
    ready, done = threading.Event(), threading.Event()
    thread = threading.Thread(target=lambda: (ready.set(), done.wait(10)))
    thread.start()
    try:
        ready.wait(10)
        fs = NodeFS(mntns)
        try:
            assert stat.S_ISREG(fs.stat(plugin).st_mode)
        finally:
            fs.close()
    finally:
        done.set()
        thread.join()
    assert len(forks) == 1


def test_unreachable_node_namespace(node: Node) -> None:
    net = ptp_tuning(node)
    with (
        CNIRuntime(
            [CNI_BIN_DIR], node.tmp / "cache", node=NodeNamespaces(netns="/run/netns/mhtest-nope")
        ) as runtime,
        pytest.raises(CNIError, match="cannot enter the node's namespaces"),
    ):
        runtime.add_network_list(net, node.rt())
