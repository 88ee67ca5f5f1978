"""attach_pod / detach_pod with the real reference plugins, in throw-away namespaces.

A "node" namespace has two NICs (veth, each with its peer in the node: a segment of its
own); each pod has its own namespace. The plugins run inside the node namespace. eth0 comes
from ptp + host-local (a Canal-like ``k8s-pod-network``), the extras are macvlan NADs with
static IPAM.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kernel import ip, netns, netns_path, require_cni_plugins, require_link_kind, require_netns

from multihome.cni import CNIError, CNIRuntime, ExecEvent, NodeNamespaces, load_network_config
from multihome.multus import (
    NETWORKS_ANNOTATION,
    AttachError,
    Delegate,
    DetachError,
    build_delegates,
)
from multihome.multus.attach import PodSandbox, attach_pod, attach_pod_detailed, detach_pod

pytestmark = pytest.mark.netns


@dataclass
class Node:
    name: str
    runtime: CNIRuntime
    cache_dir: Path
    ipam_dir: Path
    nads: dict[tuple[str, str], str]

    @property
    def cluster_network(self) -> dict[str, Any]:
        return {
            "cniVersion": "0.4.0",
            "name": "k8s-pod-network",
            "plugins": [
                {
                    "type": "ptp",
                    "ipam": {
                        "type": "host-local",
                        "subnet": "10.42.1.0/24",
                        "routes": [{"dst": "0.0.0.0/0"}],
                        "dataDir": str(self.ipam_dir),
                    },
                }
            ],
        }

    def delegates(self, networks: str, pod: str = "web") -> list[Delegate]:
        return build_delegates(
            "pods",
            pod,
            {NETWORKS_ANNOTATION: networks},
            self.cluster_network,
            lambda ns, name: self.nads.get((ns, name)),
        )

    def allocations(self) -> list[str]:
        """host-local's reserved addresses (files named after an IP)."""
        found = []
        for _, _, files in os.walk(self.ipam_dir):
            found += [f for f in files if f[0].isdigit() and "_" not in f]
        return found

    def cache_files(self) -> list[str]:
        return sorted(p.name for p in self.cache_dir.rglob("*") if p.is_file())


def _macvlan(master: str, address: str, gateway: str | None = None) -> str:
    entry: dict[str, str] = {"address": address}
    if gateway:
        entry["gateway"] = gateway
    return json.dumps(
        {
            "cniVersion": "0.4.0",
            "type": "macvlan",
            "master": master,
            "mode": "bridge",
            "ipam": {"type": "static", "addresses": [entry]},
        }
    )


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    require_netns()
    require_cni_plugins()
    require_link_kind("macvlan")
    with netns("node") as name:
        for nic in ("ens224", "ens256"):
            ip(name, "link", "add", nic, "type", "veth", "peer", f"p{nic}")
            ip(name, "link", "set", nic, "up")
            ip(name, "link", "set", f"p{nic}", "up")
        runtime = CNIRuntime(
            ["/usr/lib/cni"], tmp_path / "cache", node=NodeNamespaces(netns=netns_path(name))
        )
        nads = {
            ("pods", "lan50"): _macvlan("ens224", "172.16.50.10/24"),
            ("pods", "lan60"): _macvlan("ens256", "172.16.60.10/24", "172.16.60.1"),
            ("pods", "broken"): _macvlan("nope0", "172.16.70.10/24"),
            ("pods", "far"): _macvlan("ens256", "172.16.61.10/24"),
            ("pods", "old"): json.dumps(  # no cniVersion: libcni sends "", plugins answer 0.1.0
                {"type": "macvlan", "master": "ens224", "ipam": {"type": "static"}}
            ),
            ("pods", "bare"): json.dumps(  # static IPAM, no "ips"/"mac" capabilities
                {
                    "cniVersion": "1.0.0",
                    "type": "macvlan",
                    "master": "ens256",
                    "ipam": {"type": "static"},
                }
            ),
            ("pods", "badtune"): json.dumps(
                {  # macvlan makes net2, then tuning fails on a sysctl that does not exist
                    "cniVersion": "0.4.0",
                    "plugins": [
                        json.loads(_macvlan("ens256", "172.16.62.10/24")),
                        {"type": "tuning", "sysctl": {"net.ipv4.conf.net2.no_such_knob": "1"}},
                    ],
                }
            ),
        }
        with runtime:
            yield Node(name, runtime, tmp_path / "cache", tmp_path / "ipam", nads)


@pytest.fixture
def pod_ns() -> Iterator[str]:
    with netns("pod") as name:
        yield name


def sandbox(pod_ns: str, name: str = "web", container_id: str = "c0ffee") -> PodSandbox:
    return PodSandbox("pods", name, f"uid-{name}", container_id, netns_path(pod_ns))


def links(ns: str) -> list[str]:
    out = json.loads(ip(ns, "-j", "link", "show"))
    return sorted(link["ifname"] for link in out)


def mac(ns: str, ifname: str) -> str:
    return str(json.loads(ip(ns, "-j", "link", "show", ifname))[0]["address"])


def addresses(ns: str, ifname: str) -> list[str]:
    out = json.loads(ip(ns, "-j", "-4", "addr", "show", ifname))
    return [f"{a['local']}/{a['prefixlen']}" for a in out[0]["addr_info"]]


def routes(ns: str) -> list[str]:
    return [" ".join(line.split()) for line in ip(ns, "-4", "route", "show").splitlines()]


# -- attach / detach ------------------------------------------------------------------------


def test_ips_and_mac_reach_plugins_through_cni_args(node: Node, pod_ns: str) -> None:
    """Multus DelegateAdd: the selection's ips/mac go into CNI_ARGS too, so static IPAM and
    macvlan without the capabilities still get them (Multus's own e2e default-route tests)."""
    value = json.dumps(
        [{"name": "bare", "ips": ["172.16.60.20/24"], "mac": "02:00:00:00:00:3c",
          "default-route": ["172.16.60.1"]}]
    )  # fmt: skip
    pod = sandbox(pod_ns)
    delegates = node.delegates(value)
    try:
        status = attach_pod(node.runtime, pod, delegates)
        assert addresses(pod_ns, "net1") == ["172.16.60.20/24"]
        assert mac(pod_ns, "net1") == "02:00:00:00:00:3c"
        assert "default via 172.16.60.1 dev net1" in routes(pod_ns)
        assert status[1]["gateway"] == ["172.16.60.1"]
        cached = json.loads((node.cache_dir / "results" / "bare-c0ffee-net1").read_text())
        assert cached["cniArgs"][-2:] == [["MAC", "02:00:00:00:00:3c"], ["IP", "172.16.60.20/24"]]
    finally:
        detach_pod(node.runtime, pod, delegates)


def test_nad_without_cni_version_attaches_like_libcni(node: Node, pod_ns: str) -> None:
    """A 0.1.0 result has no interfaces: Multus writes no network-status entry for it."""
    pod = sandbox(pod_ns)
    delegates = node.delegates('[{"name":"old","ips":["172.16.50.30/24"]}]')
    try:
        status = attach_pod(node.runtime, pod, delegates)
        assert addresses(pod_ns, "net1") == ["172.16.50.30/24"]
        assert [s["name"] for s in status] == ["k8s-pod-network"]
        cached = json.loads((node.cache_dir / "results" / "old-c0ffee-net1").read_text())
        assert cached["result"]["cniVersion"] == "0.1.0"
    finally:
        detach_pod(node.runtime, pod, delegates)
    assert links(pod_ns) == ["lo"]


def test_empty_default_route_fails_as_multus_does(node: Node, pod_ns: str) -> None:
    pod = sandbox(pod_ns)
    delegates = node.delegates('[{"name":"lan50","default-route":[""]}]')
    with pytest.raises(
        AttachError, match=r"error setting default gateway: one of Dst\.IP, Src, or Gw"
    ):
        attach_pod(node.runtime, pod, delegates)
    assert links(pod_ns) == ["lo"]


def test_attach_three_networks_and_detach(node: Node, pod_ns: str) -> None:
    delegates = node.delegates("lan50, lan60")
    pod = sandbox(pod_ns)
    try:
        status = attach_pod(node.runtime, pod, delegates)
        assert links(pod_ns) == ["eth0", "lo", "net1", "net2"]
        assert addresses(pod_ns, "eth0") == ["10.42.1.2/24"]
        assert addresses(pod_ns, "net1") == ["172.16.50.10/24"]
        assert addresses(pod_ns, "net2") == ["172.16.60.10/24"]
        got = routes(pod_ns)
        assert "default via 10.42.1.1 dev eth0" in got
        assert "172.16.50.0/24 dev net1 proto kernel scope link src 172.16.50.10" in got
        assert "172.16.60.0/24 dev net2 proto kernel scope link src 172.16.60.10" in got
        assert status == [
            {
                "name": "k8s-pod-network",
                "interface": "eth0",
                "ips": ["10.42.1.2"],
                "mac": mac(pod_ns, "eth0"),
                "default": True,
                "dns": {},
            },
            {
                "name": "pods/lan50",
                "interface": "net1",
                "ips": ["172.16.50.10"],
                "mac": mac(pod_ns, "net1"),
                "dns": {},
            },
            {
                "name": "pods/lan60",
                "interface": "net2",
                "ips": ["172.16.60.10"],
                "mac": mac(pod_ns, "net2"),
                "dns": {},
            },
        ]
        assert node.cache_files() == [
            "k8s-pod-network-c0ffee-eth0",
            "lan50-c0ffee-net1",
            "lan60-c0ffee-net2",
        ]
        assert node.allocations() == ["10.42.1.2"]
        for d in delegates:  # what the cache says is what the pod has
            node.runtime.check_network_list(load_network_config(d.config), pod.runtime_conf(d))
        cached = json.loads((node.cache_dir / "results" / "lan50-c0ffee-net1").read_text())
        assert cached["cniArgs"] == [
            ["IgnoreUnknown", "true"],
            ["K8S_POD_NAMESPACE", "pods"],
            ["K8S_POD_NAME", "web"],
            ["K8S_POD_INFRA_CONTAINER_ID", "c0ffee"],
            ["K8S_POD_UID", "uid-web"],
        ]
    finally:
        detach_pod(node.runtime, pod, delegates)
    assert links(pod_ns) == ["lo"]
    assert node.cache_files() == []
    assert node.allocations() == []
    detach_pod(node.runtime, pod, delegates)  # DEL twice is fine


def test_default_route_moves_to_net2(node: Node, pod_ns: str) -> None:
    delegates = node.delegates(
        '[{"name": "lan50"}, {"name": "lan60", "default-route": ["172.16.60.1"]}]'
    )
    pod = sandbox(pod_ns)
    try:
        attachments = attach_pod_detailed(node.runtime, pod, delegates)
        got = routes(pod_ns)
        defaults = [r for r in got if r.startswith("default")]
        assert defaults == ["default via 172.16.60.1 dev net2"]
        assert "10.42.1.1 dev eth0 scope link src 10.42.1.2" in got  # the rest of eth0 stays
        status = [e for a in attachments for e in a.network_status]
        assert [e.get("gateway") for e in status] == [None, None, ["172.16.60.1"]]
        assert [e.get("default") for e in status] == [True, None, None]
        eth0, _, net2 = attachments
        assert all(r.dst.prefixlen for r in eth0.result.routes)
        assert [(str(r.dst), str(r.gw)) for r in net2.result.routes] == [
            ("0.0.0.0/0", "172.16.60.1")
        ]
        for d in delegates:  # the cache follows (Multus rewrites it), so CHECK still passes
            rt = pod.runtime_conf(d)
            net = load_network_config(d.config)
            cached = node.runtime.get_cached_result(net, rt)
            assert cached is not None
            has_default = any(r.dst.prefixlen == 0 for r in cached.routes)
            assert has_default == (d.ifname == "net2")
            node.runtime.check_network_list(net, rt)
    finally:
        detach_pod(node.runtime, pod, delegates)
    assert links(pod_ns) == ["lo"]
    assert node.cache_files() == [] and node.allocations() == []


def test_failing_second_delegate_leaves_nothing(node: Node, pod_ns: str) -> None:
    delegates = node.delegates("broken, lan60")
    pod = sandbox(pod_ns)
    try:
        with pytest.raises(AttachError) as info:
            attach_pod(node.runtime, pod, delegates)
    finally:
        detach_pod(node.runtime, pod, delegates)
    err = info.value
    assert str(err).startswith("pods/web:pods/broken: error adding container to network 'broken': ")
    assert (err.pod, err.network) == ("pods/web", "pods/broken")
    assert isinstance(err.cause, CNIError)
    assert str(err.cause) in str(err)
    assert "nope0" in str(err) or "Link not found" in str(err)
    assert links(pod_ns) == ["lo"]
    assert node.cache_files() == []
    assert node.allocations() == []


def test_failing_chain_is_deleted_once(node: Node, pod_ns: str) -> None:
    """The runtime DELs a failed ADD's chain itself; the rollback DELs only the delegates
    added before it (no second DEL of the failing one), and nothing is left."""
    events: list[ExecEvent] = []
    delegates = node.delegates("lan50, badtune")
    pod = sandbox(pod_ns)
    with CNIRuntime(
        ["/usr/lib/cni"],
        node.cache_dir,
        node=NodeNamespaces(netns=netns_path(node.name)),
        on_exec=events.append,
    ) as runtime:
        with pytest.raises(AttachError, match=r"^pods/web:pods/badtune: error adding") as info:
            attach_pod(runtime, pod, delegates)
        assert info.value.cause is not None
        assert isinstance(info.value.cause, CNIError)
        assert info.value.cause.plugin == "tuning"
        assert [(e.plugin, e.command) for e in events if e.command != "VERSION"] == [
            ("ptp", "ADD"),
            ("macvlan", "ADD"),
            ("macvlan", "ADD"),
            ("tuning", "ADD"),
            ("tuning", "DEL"),  # the runtime's cleanup of the failed chain, in reverse
            ("macvlan", "DEL"),
            ("macvlan", "DEL"),  # the rollback: lan50, then eth0
            ("ptp", "DEL"),
        ]
    assert links(pod_ns) == ["lo"]
    assert node.cache_files() == [] and node.allocations() == []


def test_unreachable_default_route_gateway_rolls_back(node: Node, pod_ns: str) -> None:
    delegates = node.delegates('[{"name": "lan50", "default-route": ["192.0.2.1"]}]')
    pod = sandbox(pod_ns)
    try:
        with pytest.raises(
            AttachError, match=r"^pods/web:pods/lan50: error setting default gateway"
        ):
            attach_pod(node.runtime, pod, delegates)
    finally:
        detach_pod(node.runtime, pod, delegates)
    assert links(pod_ns) == ["lo"]
    assert node.cache_files() == [] and node.allocations() == []


def test_detach_goes_on_past_errors(node: Node, pod_ns: str) -> None:
    delegates = node.delegates("lan50")
    pod = sandbox(pod_ns)
    bogus = Delegate(
        network="pods/bogus",
        ifname="net9",
        config={"cniVersion": "0.4.0", "name": "bogus", "type": "no-such-plugin"},
    )
    try:
        attach_pod(node.runtime, pod, delegates)
        with pytest.raises(DetachError) as info:
            detach_pod(node.runtime, pod, [delegates[0], bogus, delegates[1]])
        assert str(info.value).startswith("pods/web: error deleting networks: pods/bogus: ")
        assert [network for network, _ in info.value.errors] == ["pods/bogus"]
        assert links(pod_ns) == ["lo"]  # eth0 was deleted after bogus failed
    finally:
        detach_pod(node.runtime, pod, delegates)
    assert node.cache_files() == [] and node.allocations() == []


def test_pods_attach_concurrently(node: Node) -> None:
    count = 4
    errors: list[BaseException] = []
    statuses: dict[int, list[dict[str, Any]]] = {}
    with (
        netns("pod") as ns0,
        netns("pod") as ns1,
        netns("pod") as ns2,
        netns("pod") as ns3,
    ):
        names = [ns0, ns1, ns2, ns3]
        pods = [sandbox(names[i], f"web{i}", f"c{i}") for i in range(count)]
        delegates = [node.delegates("lan50@lan, lan60", f"web{i}") for i in range(count)]

        def run(i: int) -> None:
            try:
                statuses[i] = attach_pod(node.runtime, pods[i], delegates[i])
            except BaseException as err:
                errors.append(err)

        threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
        try:
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert errors == []
            eth0_ips = sorted(statuses[i][0]["ips"][0] for i in range(count))
            assert len(set(eth0_ips)) == count
            for i in range(count):
                assert links(names[i]) == ["eth0", "lan", "lo", "net2"]
        finally:
            for i in range(count):
                detach_pod(node.runtime, pods[i], delegates[i])
    assert node.cache_files() == [] and node.allocations() == []
