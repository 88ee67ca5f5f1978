"""The neighbour budget (issue 13.1): what the lab can foresee is a permanent neighbour entry,
out of the kernel's GC count for the host's one table of every namespace, so up leaves no
learnt ARP entry behind; verify's probes flush what they learnt; up refuses, before
building, a lab the host's thresholds can't hold (read only: no sysctl is written)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from labkit import sandbox_unavailable_reason

from multihome import verify
from multihome.lab import api, neighbours, netlink, preflight, sandbox
from multihome.lab.names import dhcp_netns, host_netns
from multihome.spec import load_lab

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="up of the seed runs as root here"),
    pytest.mark.skipif(not os.path.isdir("/usr/lib/cni"), reason="containernetworking-plugins"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq"), reason="dnsmasq-base missing"),
]

Census = dict[str, list[netlink.Neighbour]]


def _census() -> Census:
    status = api.status("multi-homed")
    sb = sandbox.Sandbox.from_dict(status["sandbox"])
    return sb.call(neighbours.census)


def _learnt(found: Census) -> dict[str, list[netlink.Neighbour]]:
    """IPv4 entries the kernel learnt (neither permanent nor noarp), by namespace."""
    return {
        name: learnt
        for name, entries in found.items()
        if (
            learnt := [
                e
                for e in entries
                if ":" not in e.dst and not e.state & (netlink.NUD_PERMANENT | netlink.NUD_NOARP)
            ]
        )
    }


def _permanent(found: Census, name: str) -> dict[tuple[str, str | None], str | None]:
    return {(e.dst, e.dev): e.mac for e in found[name] if e.permanent}


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    reason = sandbox_unavailable_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("neighstate")
    old = os.environ.get("MULTIHOME_STATE_DIR")
    os.environ["MULTIHOME_STATE_DIR"] = str(root)
    try:
        status = api.up(load_lab(None))
        yield {"status": status, "census": _census()}
    finally:
        api.down("multi-homed")
        if old is None:
            os.environ.pop("MULTIHOME_STATE_DIR", None)
        else:
            os.environ["MULTIHOME_STATE_DIR"] = old


def _mac(found: Census, name: str, dev: str) -> str:
    status = api.status("multi-homed")
    sb = sandbox.Sandbox.from_dict(status["sandbox"])

    def read() -> str:
        with netlink.NetNS(netlink.netns_path(name)) as inside:
            return next(str(link.mac) for link in inside.links() if link.name == dev)

    return sb.call(read)


def test_up_leaves_no_learnt_arp_entry(lab: dict[str, Any]) -> None:
    assert _learnt(lab["census"]) == {}


def test_pods_and_their_servers_and_hosts_know_each_other(lab: dict[str, Any]) -> None:
    found = lab["census"]
    pod = next(p for p in lab["status"]["pods"] if p["name"] == "net-tools")
    by_if = {e["interface"]: e for e in pod["network_status"] if e.get("interface")}
    net1, net2 = by_if["net1"], by_if["net2"]
    pod_ns = os.path.basename(pod["netns"])
    server50 = _mac(found, dhcp_netns("vlan50"), "eth0")
    server60 = _mac(found, dhcp_netns("vlan60"), "eth0")
    web = _mac(found, host_netns("web"), "eth0")
    mine = _permanent(found, pod_ns)
    assert mine[("172.16.50.254", "net1")] == server50
    assert mine[("172.16.60.254", "net2")] == server60
    assert mine[("172.16.60.31", "net2")] == web
    # and back: the DHCP servers hold the leases, the web host the pod's net2
    assert _permanent(found, dhcp_netns("vlan50"))[(net1["ips"][0], "eth0")] == net1["mac"]
    assert _permanent(found, dhcp_netns("vlan60"))[(net2["ips"][0], "eth0")] == net2["mac"]
    assert _permanent(found, host_netns("web"))[(net2["ips"][0], "eth0")] == net2["mac"]


def test_nodes_know_each_others_node_ip(lab: dict[str, Any]) -> None:
    found = lab["census"]
    nodes = {n["name"]: n for n in lab["status"]["nodes"]}
    for name, _node in nodes.items():
        held = {dst for (dst, _), _ in _permanent(found, name).items()}
        others = {n["internal_ip"] for other, n in nodes.items() if other != name}
        assert others <= held, name


def test_nodes_hold_their_pods_eth0_as_calicos_felix_does(lab: dict[str, Any]) -> None:
    """Felix adds a static ARP entry on the cali veth for each workload (IPv4)."""
    found = lab["census"]
    checked = 0
    for pod in lab["status"]["pods"]:
        eth0 = next(e for e in pod["network_status"] if e.get("default"))
        held = _permanent(found, pod["node"])
        (dev,) = [d for (dst, d) in held if dst == eth0["ips"][0]]
        assert dev is not None and dev.startswith("cali"), dev
        assert held[(eth0["ips"][0], dev)] == eth0["mac"]
        checked += 1
    assert checked == len(lab["status"]["pods"]) > 0


def test_verify_passes_and_leaves_nothing_learnt(lab: dict[str, Any]) -> None:
    """Each namespace's probes flush what they learnt when its last one is done, and verify
    ends by flushing what the streams and the probes' targets learnt."""
    report = verify.run("multi-homed")
    assert report.ok, report.failed
    assert _learnt(_census()) == {}
    # the lab's own entries stay
    assert _census().keys() == lab["census"].keys()
    for name, entries in lab["census"].items():
        kept = _permanent(_census(), name)
        assert {(e.dst, e.dev) for e in entries if e.permanent} <= kept.keys()


def _fake_thresholds(tmp_path: Path, values: tuple[int, int, int]) -> str:
    for family in ("ipv4", "ipv6"):
        for n, value in zip((1, 2, 3), values, strict=True):
            path = tmp_path / family / f"gc_thresh{n}"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(f"{value}\n")
    return str(tmp_path / "{family}" / "gc_thresh{n}")


def test_up_refuses_a_lab_the_hosts_thresholds_cant_hold(
    tmp_path: Path, state_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a host whose thresholds are small (read from files here: no sysctl is touched)
    monkeypatch.setattr(preflight, "NEIGH_SYSCTL", _fake_thresholds(tmp_path, (16, 32, 64)))
    with pytest.raises(api.LabError) as caught:
        api.up(load_lab(None))
    message = str(caught.value)
    assert caught.value.code == 2
    assert "lab multi-homed may need" in message
    assert "learnt ARP entries at once" in message
    assert "half of net.ipv4.neigh.default.gc_thresh3=64" in message
    assert "sysctl -w net.ipv4.neigh.default.gc_thresh1=" in message
    assert "multihome never changes them" in message
    assert message.endswith("Nothing was built.")
    assert not (state_root / "multi-homed").exists()


def test_the_hosts_thresholds_are_read_not_written() -> None:
    found = preflight.gc_thresholds("ipv4")
    if found is None:
        pytest.skip("no /proc/sys/net/ipv4/neigh/default here")
    with open("/proc/sys/net/ipv4/neigh/default/gc_thresh3") as fh:
        assert found[2] == int(fh.read())
    assert found[0] <= found[1] <= found[2]


def test_a_large_design_fits_the_default_thresholds() -> None:
    """What stays learnt is bounded by what runs at once, not by the number of pods (the
    bench's generator: its labs in the seed's style, 2 DHCP attachments a pod)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    try:
        from bench.scale import generate
    finally:
        sys.path.pop(0)
    from multihome.plan import build_plan
    from multihome.spec import load_lab_text

    small = build_plan(load_lab_text(generate(2, 2, dhcp=True), "s.yaml", Path.cwd()))
    large = build_plan(load_lab_text(generate(100, 10, dhcp=True), "l.yaml", Path.cwd()))
    a = neighbours.estimate(small, 4, neighbours.PROBES_AT_ONCE)
    b = neighbours.estimate(large, 4, neighbours.PROBES_AT_ONCE)
    assert b.dynamic - a.dynamic == 100 - 2  # one per node more, none per pod
    assert b.dynamic <= 1024 // 2
    assert b.permanent >= 2 * 2 * 1000  # each lease both ways
