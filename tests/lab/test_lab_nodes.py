"""nodes.py: a node's network + mount namespace with its own CNI and RKE2 directories."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from labkit import MakeSandbox, host_snapshot

from multihome.lab import netlink, nodes, ns
from multihome.lab.names import InvalidName


def _on_node(node: nodes.Node, argv: list[str]) -> str:
    """Run argv on the node, as a CNI plugin would be run: netns, then mount ns."""
    net, mnt = ns.open_ns(node.netns), ns.open_ns(node.mntns)
    try:

        def enter() -> None:
            ns.setns(net, ns.CLONE_NEWNET)
            ns.setns(mnt, ns.CLONE_NEWNS)

        done = subprocess.run(argv, capture_output=True, text=True, preexec_fn=enter, check=True)
        return done.stdout
    finally:
        os.close(net)
        os.close(mnt)


def test_node_has_its_own_files(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    if not os.path.isdir(nodes.CNI_BIN_DIR):
        pytest.skip(f"CNI plugins not found in {nodes.CNI_BIN_DIR} (containernetworking-plugins)")
    before = host_snapshot()
    host_had = {p: os.path.exists(p) for p in nodes.NODE_MOUNTPOINTS}
    sb = make_sandbox("nodes", mountpoints=nodes.NODE_MOUNTPOINTS)
    roots = {n: str(tmp_path / "nodes" / n) for n in ("cpl-1", "wrk-1")}

    def work() -> dict[str, str]:
        out = {}
        made = [
            nodes.create_node(n, root=r, ns_dir=sb.ns_dir, cpu=sb.cpu) for n, r in roots.items()
        ]
        cpl, wrk = made
        with open(os.path.join(wrk.dir("/etc/rancher/rke2"), "config.yaml"), "w") as fh:
            fh.write("node-ip: 172.16.40.47\n")
        netlink.create_netns("pod-a")  # made after the nodes: still visible on them
        out["ls_bin"] = _on_node(wrk, ["ls", "/opt/cni/bin"])
        out["config"] = _on_node(wrk, ["cat", "/etc/rancher/rke2/config.yaml"])
        out["cpl_config"] = _on_node(cpl, ["ls", "-A", "/etc/rancher/rke2"])
        out["netns"] = _on_node(wrk, ["ls", "/run/netns"])
        out["write"] = _on_node(wrk, ["sh", "-c", "echo x > /var/lib/cni/probe; ls /run/cni"])
        out["links"] = _on_node(wrk, ["ip", "-br", "link"])
        out["sandbox_view"] = str(os.listdir("/etc/rancher/rke2"))
        nodes.delete_node(cpl)
        out["after_delete"] = " ".join(netlink.list_netns())
        return out

    out = sb.call(work)
    assert out["ls_bin"].split() == sorted(os.listdir(nodes.CNI_BIN_DIR))
    assert out["config"] == "node-ip: 172.16.40.47\n"
    assert out["cpl_config"] == ""  # each node has its own
    assert out["netns"].split() == ["cpl-1", "pod-a", "wrk-1"]
    assert out["links"].split()[0] == "lo"
    assert out["sandbox_view"] == "[]"  # the sandbox itself sees the empty mountpoint
    assert out["after_delete"] == "pod-a wrk-1"
    assert (tmp_path / "nodes" / "wrk-1" / "var-lib-cni" / "probe").read_text() == "x\n"
    assert os.path.islink(tmp_path / "nodes" / "wrk-1" / "opt-cni-bin" / "macvlan")
    assert {p: os.path.exists(p) for p in nodes.NODE_MOUNTPOINTS} == host_had
    assert host_snapshot() == before


def test_node_working_files_on_the_sandbox_scratch(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    """A lab's node keeps /var/lib/cni (the CNI result cache, host-local's reservations)
    on the sandbox's scratch tmpfs, its other directories in the state: the node sees the
    same paths, the host none of the scratch's files."""
    sb = make_sandbox("scratch", mountpoints=nodes.NODE_MOUNTPOINTS)
    root = tmp_path / "nodes" / "wrk-1"

    def work() -> dict[str, object]:
        node = nodes.create_node(
            "wrk-1", root=str(root), scratch=nodes.scratch_root(sb.scratch, "wrk-1"),
            ns_dir=sb.ns_dir, cpu=sb.cpu,
        )  # fmt: skip
        out: dict[str, object] = {"dir": node.dir("/var/lib/cni")}
        _on_node(node, ["sh", "-c", "echo x > /var/lib/cni/probe"])
        with open(os.path.join(node.dir("/var/lib/cni"), "probe")) as fh:
            out["seen_inside"] = fh.read()
        out["fs"] = _on_node(node, ["stat", "-f", "-c", "%T", "/var/lib/cni"]).strip()
        nodes.delete_node(node, remove_dirs=True)
        out["left"] = os.path.exists(nodes.scratch_root(sb.scratch, "wrk-1"))
        return out

    out = sb.call(work)
    assert out["dir"] == os.path.join(sb.scratch, "nodes", "wrk-1", "var-lib-cni")
    assert out["seen_inside"] == "x\n"
    assert out["fs"] == "tmpfs"
    assert out["left"] is False
    assert not (root / "var-lib-cni").exists()  # not in the state: on the scratch
    assert os.listdir(sb.scratch) == []  # the host sees the scratch empty
    assert not root.exists()  # remove_dirs took the state's part too


def test_node_command_from_outside(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    sb = make_sandbox("outside", mountpoints=nodes.NODE_MOUNTPOINTS)

    def work() -> tuple[str, str]:
        node = nodes.create_node(
            "wrk-2", root=str(tmp_path / "wrk-2"), ns_dir=sb.ns_dir, cpu=sb.cpu
        )
        with netlink.Netlink() as nl:
            nl.here().add_bridge("vlan40")
            nl.here().add_veth("wrk-2-ens192", "ens192", peer_ns=nl.ns(node.netns))
        return node.netns, node.mntns

    netns, mntns = sb.call(work)
    done = subprocess.run(
        sb.command(
            ["sh", "-c", "ip -br link | cut -d' ' -f1; ls /opt/cni/bin | wc -l"],
            netns=netns,
            mntns=mntns,
        ),
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.split()
    assert lines[:2] == ["ens192@if3", "lo"] or sorted(lines[:2])[1] == "lo"
    assert int(lines[-1]) == len(os.listdir(nodes.CNI_BIN_DIR))


def test_node_names_are_checked(tmp_path: Path) -> None:
    with pytest.raises(InvalidName):
        nodes.create_node("../../etc", root=str(tmp_path), ns_dir=str(tmp_path))
