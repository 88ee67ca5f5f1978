"""The lab's calico plugin, run from a node's /opt/cni/bin over the CNI protocol by the CNI
runtime and Multus, as kubelet runs Canal's: eth0 as Calico makes it, DEL undoes all of it,
and its errors are CNI errors with Calico's words."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from labkit import MakeSandbox, host_snapshot, ping

from multihome.cni import CNIRuntime, NodeNamespaces
from multihome.lab import canal, netlink, nodes, ns
from multihome.multus import PodSandbox, attach_pod, build_delegates, detach_pod
from multihome.plan import build_plan
from multihome.spec import load_lab

pytestmark = pytest.mark.skipif(
    not os.path.isdir(nodes.CNI_BIN_DIR), reason="containernetworking-plugins missing"
)


def veth_name(namespace: str, pod: str) -> str:
    """The node end Calico names for a pod (cali + 11 hex digits of sha1("<ns>.<pod>"))."""
    return "cali" + hashlib.sha1(f"{namespace}.{pod}".encode()).hexdigest()[:11]


def _on(netns: str, argv: list[str], mntns: str | None = None) -> str:
    net = ns.open_ns(netns)
    mnt = ns.open_ns(mntns) if mntns else None
    try:

        def enter() -> None:
            ns.setns(net, ns.CLONE_NEWNET)
            if mnt is not None:
                ns.setns(mnt, ns.CLONE_NEWNS)

        return subprocess.run(
            argv, capture_output=True, text=True, preexec_fn=enter, check=True
        ).stdout
    finally:
        os.close(net)
        if mnt is not None:
            os.close(mnt)


def _pod(name: str, netns: str) -> PodSandbox:
    digest = hashlib.sha256(name.encode()).hexdigest()
    return PodSandbox("apps", name, f"uid-{name}", digest, netns)


def test_calico_makes_eth0_and_del_undoes_it(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    before = host_snapshot()
    plan = build_plan(load_lab(None))
    node_plan = plan.node("multi-homed-wrk-1")
    sb = make_sandbox("calico", mountpoints=nodes.NODE_MOUNTPOINTS)

    def work() -> dict[str, Any]:
        node = nodes.create_node(
            node_plan.name, root=str(tmp_path / "wrk-1"), ns_dir=sb.ns_dir, cpu=sb.cpu
        )
        conf = canal.write_conflist(node_plan, node)
        canal.install_plugin(canal.write_launcher(os.path.join(sb.scratch, "cni-bin")), node)
        # a node has a default route; proxy ARP answers 169.254.1.1 only for a routed address
        with netlink.Netlink() as nl:
            nl.here().add_bridge("vlan40")
            nl.here().add_veth("wrk-1-ens192", "ens192", peer_ns=nl.ns(node.netns))
        for argv in (
            ["ip", "addr", "add", "172.16.40.47/24", "dev", "ens192"],
            ["ip", "link", "set", "ens192", "up"],
            ["ip", "route", "add", "default", "via", "172.16.40.1"],
        ):
            _on(node.netns, argv)
        runtime = CNIRuntime(
            ["/opt/cni/bin"],
            node.dir("/var/lib/cni"),
            node=NodeNamespaces(netns=node.netns, mntns=node.mntns),
            timeout=30,
        )
        out: dict[str, Any] = {}
        pods = {}
        for name in ("a", "b"):
            path = netlink.create_netns(f"pod-{name}")
            pods[name] = _pod(name, path)
            delegates = build_delegates("apps", name, {}, conf, lambda *_: None)
            out[f"status-{name}"] = attach_pod(runtime, pods[name], delegates)
        out["routes-a"] = _on(pods["a"].netns, ["ip", "route"])
        out["addr-a"] = json.loads(_on(pods["a"].netns, ["ip", "-j", "addr", "show", "eth0"]))
        out["forward-a"] = _on(pods["a"].netns, ["cat", "/proc/sys/net/ipv4/ip_forward"])
        out["node-links"] = json.loads(
            _on(node.netns, ["ip", "-j", "link", "show", "type", "veth"])
        )
        out["node-routes"] = _on(node.netns, ["ip", "route"])
        # pod a reaches pod b through the node: proxy ARP answers 169.254.1.1
        b_ip = out["status-b"][0]["ips"][0]
        out["ping"] = ping(pods["a"].netns, b_ip)
        out["neigh"] = _on(pods["a"].netns, ["ip", "neigh", "show", "169.254.1.1"])
        detach_pod(runtime, pods["a"], build_delegates("apps", "a", {}, conf, lambda *_: None))
        out["after-del-routes"] = _on(node.netns, ["ip", "route"])
        out["after-del-links"] = _on(node.netns, ["ip", "-br", "link"])
        out["after-del-pod"] = _on(pods["a"].netns, ["ip", "-br", "link"])
        out["reserved"] = sorted(
            os.listdir(os.path.join(node.dir("/var/lib/cni"), "networks", "k8s-pod-network"))
        )
        # a second DEL is fine (CNI: DEL must succeed when things are already gone)
        detach_pod(runtime, pods["a"], build_delegates("apps", "a", {}, conf, lambda *_: None))
        for name in pods:
            netlink.delete_netns(f"pod-{name}")
        nodes.delete_node(node)
        return out

    out = sb.call(work)
    a_ip = out["status-a"][0]["ips"][0]
    assert out["status-a"][0]["name"] == "k8s-pod-network" and out["status-a"][0]["default"]
    assert a_ip.startswith("10.42.3.")
    assert out["routes-a"].splitlines() == [
        "default via 169.254.1.1 dev eth0 ",
        "169.254.1.1 dev eth0 scope link ",
    ]
    (eth0,) = out["addr-a"]
    assert eth0["mtu"] == 1450 and eth0.get("txqlen", 0) == 0  # ip -j omits a txqlen of 0
    assert [(a["local"], a["prefixlen"]) for a in eth0["addr_info"] if a["family"] == "inet"] == [
        (a_ip, 32)
    ]
    assert eth0["address"] == out["status-a"][0]["mac"]
    assert int(eth0["address"].split(":")[0], 16) & 0x03 == 0x02  # unicast, locally administered
    assert out["forward-a"].strip() == "0"
    veth_a = veth_name("apps", "a")
    assert veth_a == "cali" + hashlib.sha1(b"apps.a").hexdigest()[:11]
    cali = {link["ifname"]: link for link in out["node-links"]}
    assert cali[veth_a]["address"] == "ee:ee:ee:ee:ee:ee" and cali[veth_a]["mtu"] == 1450
    assert f"{a_ip} dev {veth_a} scope link " in out["node-routes"].splitlines()
    assert out["ping"] is True
    assert "ee:ee:ee:ee:ee:ee" in out["neigh"]
    assert veth_a not in out["after-del-routes"] and veth_a not in out["after-del-links"]
    assert "eth0" not in out["after-del-pod"]
    assert a_ip not in out["reserved"]
    assert out["status-b"][0]["ips"][0] in out["reserved"]
    assert host_snapshot() == before


def _run_plugin(
    node: nodes.Node, env: dict[str, str], stdin: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any]]:
    net, mnt = ns.open_ns(node.netns), ns.open_ns(node.mntns)
    try:

        def enter() -> None:
            ns.setns(net, ns.CLONE_NEWNET)
            ns.setns(mnt, ns.CLONE_NEWNS)

        done = subprocess.run(
            ["/opt/cni/bin/calico"],
            input=json.dumps(stdin or {}).encode(),
            capture_output=True,
            preexec_fn=enter,
            env={"PATH": os.environ.get("PATH", ""), "CNI_PATH": "/opt/cni/bin", **env},
            check=False,
        )
        return done.returncode, json.loads(done.stdout) if done.stdout else {}
    finally:
        os.close(net)
        os.close(mnt)


def test_calico_errors_are_cni_errors(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    plan = build_plan(load_lab(None))
    node_plan = plan.node("multi-homed-wrk-2")
    sb = make_sandbox("calico-errors", mountpoints=nodes.NODE_MOUNTPOINTS)

    def work() -> dict[str, Any]:
        node = nodes.create_node(
            node_plan.name, root=str(tmp_path / "wrk-2"), ns_dir=sb.ns_dir, cpu=sb.cpu
        )
        conf = canal.write_conflist(node_plan, node)
        canal.install_plugin(canal.write_launcher(os.path.join(sb.scratch, "cni-bin")), node)
        plugin = dict(conf["plugins"][0], name=conf["name"], cniVersion=conf["cniVersion"])
        path = netlink.create_netns("pod-x")
        base = {
            "CNI_COMMAND": "ADD",
            "CNI_CONTAINERID": "x1",
            "CNI_NETNS": path,
            "CNI_IFNAME": "eth0",
        }
        pod_args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=apps;K8S_POD_NAME=x"
        out = {
            "version": _run_plugin(node, {"CNI_COMMAND": "VERSION"}),
            "no-args": _run_plugin(node, base, plugin),
            "wrong-node": _run_plugin(
                node, {**base, "CNI_ARGS": pod_args}, dict(plugin, nodename="other")
            ),
            "new-version": _run_plugin(
                node, {**base, "CNI_ARGS": pod_args}, dict(plugin, cniVersion="1.1.0")
            ),
        }
        out["left"] = _on(path, ["ip", "-br", "link"])
        netlink.delete_netns("pod-x")
        nodes.delete_node(node)
        return out

    out = sb.call(work)
    code, version = out["version"]
    assert code == 0 and "0.3.1" in version["supportedVersions"]
    code, error = out["no-args"]
    assert code == 1 and error["code"] == 4 and "K8S_POD_NAME" in error["msg"]
    code, error = out["wrong-node"]
    assert code == 1 and error["msg"] == 'nodes "other" not found'
    code, error = out["new-version"]
    assert code == 1 and error["code"] == 1 and "incompatible CNI versions" in error["msg"]
    assert out["left"].split()[0] == "lo" and "eth0" not in out["left"]


def test_calico_failure_rolls_back_through_multus(
    make_sandbox: MakeSandbox, tmp_path: Path
) -> None:
    """host-local over a /30 pod CIDR has room for one pod: the second ADD fails with
    host-local's words, and nothing of it is left on the node."""
    plan = build_plan(load_lab(None))
    node_plan = plan.node("multi-homed-wrk-3").model_copy(
        update={"pod_cidr": ipaddress.ip_network("10.42.9.0/30")}
    )
    sb = make_sandbox("calico-full", mountpoints=nodes.NODE_MOUNTPOINTS)

    def work() -> dict[str, Any]:
        node = nodes.create_node(
            node_plan.name, root=str(tmp_path / "wrk-3"), ns_dir=sb.ns_dir, cpu=sb.cpu
        )
        conf = canal.write_conflist(node_plan, node)
        canal.install_plugin(canal.write_launcher(os.path.join(sb.scratch, "cni-bin")), node)
        runtime = CNIRuntime(
            ["/opt/cni/bin"],
            node.dir("/var/lib/cni"),
            node=NodeNamespaces(netns=node.netns, mntns=node.mntns),
            timeout=30,
        )
        out: dict[str, Any] = {}
        for name in ("p", "q"):
            path = netlink.create_netns(f"pod-{name}")
            delegates = build_delegates("apps", name, {}, conf, lambda *_: None)
            try:
                out[name] = attach_pod(runtime, _pod(name, path), delegates)
            except Exception as exc:  # AttachError
                out[name] = str(exc)
        out["links"] = _on(node.netns, ["ip", "-br", "link"])
        for name in ("p", "q"):
            netlink.delete_netns(f"pod-{name}")
        nodes.delete_node(node)
        return out

    out = sb.call(work)
    assert out["p"][0]["ips"] == ["10.42.9.2"]
    assert isinstance(out["q"], str) and "no IP addresses available" in out["q"], out["q"]
    assert veth_name("apps", "q") not in out["links"]
    assert veth_name("apps", "p") in out["links"]


def _reserved(node: nodes.Node, network: str) -> list[str]:
    path = os.path.join(node.dir("/var/lib/cni"), "networks", network)
    if not os.path.isdir(path):
        return []
    return sorted(f for f in os.listdir(path) if f[0].isdigit() or ":" in f)


def test_calico_netlink_cases(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    """The plugin's links, addresses and routes are made over netlink: dual stack through a
    netns path with spaces (proto boot, scope link, IPv6 via the node end's link-local),
    CHECK, an old node end of the same name replaced, and failures before and after the
    veth is made each leave no veth and give the address back, with errors that name the
    operation and the kernel's reason."""
    plan = build_plan(load_lab(None))
    node_plan = plan.node("multi-homed-wrk-1")
    sb = make_sandbox("calico-nl", mountpoints=nodes.NODE_MOUNTPOINTS)

    def work() -> dict[str, Any]:
        node = nodes.create_node(
            node_plan.name, root=str(tmp_path / "wrk-1"), ns_dir=sb.ns_dir, cpu=sb.cpu
        )
        conf = canal.write_conflist(node_plan, node)
        canal.install_plugin(canal.write_launcher(os.path.join(sb.scratch, "cni-bin")), node)
        plugin = dict(conf["plugins"][0], name="k8s-pod-network", cniVersion="0.3.1")
        dual = dict(
            plugin,
            ipam={
                "type": "host-local",
                "ranges": [[{"subnet": "usePodCidr"}], [{"subnet": "fd00:42:3::/64"}]],
            },
        )

        def env(pod: str, netns: str, command: str = "ADD") -> dict[str, str]:
            return {
                "CNI_COMMAND": command,
                "CNI_CONTAINERID": f"c-{pod}",
                "CNI_NETNS": netns,
                "CNI_IFNAME": "eth0",
                "CNI_ARGS": f"IgnoreUnknown=1;K8S_POD_NAMESPACE=apps;K8S_POD_NAME={pod}",
            }

        out: dict[str, Any] = {}
        # dual stack, the pod's namespace reached through a path with spaces
        real = netlink.create_netns("pod-ds")
        spaced = tmp_path / "a dir" / "pod ns"
        spaced.parent.mkdir()
        spaced.symlink_to(real)
        out["ds"] = _run_plugin(node, env("ds", str(spaced)), dual)
        out["ds-pod-route"] = _on(real, ["ip", "-d", "route"])
        out["ds-pod-route6"] = _on(real, ["ip", "-d", "-6", "route"])
        out["ds-pod-addr"] = json.loads(_on(real, ["ip", "-j", "-d", "addr", "show", "eth0"]))
        out["ds-node-route"] = _on(node.netns, ["ip", "-d", "route"])
        out["ds-node-route6"] = _on(node.netns, ["ip", "-d", "-6", "route"])
        out["ds-node-link"] = json.loads(
            _on(node.netns, ["ip", "-j", "-d", "link", "show", veth_name("apps", "ds")])
        )
        prev = out["ds"][1]
        out["ds-check"] = _run_plugin(
            node, env("ds", str(spaced), "CHECK"), dict(dual, prevResult=prev)
        )
        lacking = dict(prev, ips=[*prev["ips"], dict(prev["ips"][0], address="10.42.3.99/32")])
        out["ds-check-lacks"] = _run_plugin(
            node, env("ds", str(spaced), "CHECK"), dict(dual, prevResult=lacking)
        )
        out["ds-del"] = _run_plugin(node, env("ds", str(spaced), "DEL"), dual)
        out["ds-check-gone"] = _run_plugin(
            node, env("ds", str(spaced), "CHECK"), dict(dual, prevResult=prev)
        )
        netlink.delete_netns("pod-ds")

        # an old node end of the same name (a pod not cleaned up): deleted, then made anew
        stale = veth_name("apps", "stale")
        _on(node.netns, ["ip", "link", "add", stale, "type", "veth", "peer", "name", "old-peer"])
        path = netlink.create_netns("pod-stale")
        out["stale"] = _run_plugin(node, env("stale", path), plugin)
        out["stale-links"] = json.loads(_on(node.netns, ["ip", "-j", "link"]))
        _run_plugin(node, env("stale", path, "DEL"), plugin)
        netlink.delete_netns("pod-stale")

        # the pod already has an eth0: the pair can't be made, nothing of ours is deleted
        path = netlink.create_netns("pod-taken")
        _on(path, ["ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p"])
        out["taken"] = _run_plugin(node, env("taken", path), plugin)
        out["taken-pod"] = _on(path, ["ip", "-br", "link"])
        netlink.delete_netns("pod-taken")

        # the kernel refuses a route in the pod (host bits set): after the pair was made
        path = netlink.create_netns("pod-badroute")
        bad = dict(
            plugin,
            ipam={
                "type": "host-local",
                "ranges": [[{"subnet": "usePodCidr"}]],
                "routes": [{"dst": "10.96.0.1/12"}],
            },
        )
        out["badroute"] = _run_plugin(node, env("badroute", path), bad)
        out["badroute-pod"] = _on(path, ["ip", "-br", "link"])
        netlink.delete_netns("pod-badroute")

        # no namespace at CNI_NETNS
        out["nons"] = _run_plugin(node, env("nons", str(tmp_path / "gone")), plugin)

        out["node-links"] = _on(node.netns, ["ip", "-br", "link"])
        out["node-routes"] = _on(node.netns, ["ip", "route"]) + _on(
            node.netns, ["ip", "-6", "route"]
        )
        out["reserved"] = _reserved(node, "k8s-pod-network")
        nodes.delete_node(node)
        return out

    out = sb.call(work)
    code, ds = out["ds"]
    assert code == 0, ds
    v4, v6 = (ip["address"] for ip in ds["ips"])
    assert v4.startswith("10.42.3.") and v4.endswith("/32")
    assert v6.startswith("fd00:42:3::") and v6.endswith("/128")
    veth = veth_name("apps", "ds")
    assert [i["name"] for i in ds["interfaces"]] == [veth, "eth0"]
    assert out["ds-pod-route"].splitlines() == [
        "unicast default via 169.254.1.1 dev eth0 proto boot scope global ",
        "unicast 169.254.1.1 dev eth0 proto boot scope link ",
    ]
    assert (
        "unicast default via fe80::ecee:eeff:feee:eeee dev eth0 proto boot scope global "
        "metric 1024 pref medium" in out["ds-pod-route6"].splitlines()
    )
    (eth0,) = out["ds-pod-addr"]
    assert eth0["mtu"] == 1450 and eth0.get("txqlen", 0) == 0
    assert eth0["address"] == ds["interfaces"][1]["mac"]
    assert sorted(
        f"{a['local']}/{a['prefixlen']}" for a in eth0["addr_info"] if a["scope"] == "global"
    ) == sorted([v4, v6])
    assert f"unicast {v4[:-3]} dev {veth} proto boot scope link " in out["ds-node-route"]
    assert f"unicast {v6[:-4]} dev {veth} proto boot scope global" in out["ds-node-route6"]
    (link,) = out["ds-node-link"]
    assert link["address"] == "ee:ee:ee:ee:ee:ee" and link["mtu"] == 1450
    assert link.get("txqlen", 0) == 0 and "UP" in link["flags"]
    assert link["linkinfo"]["info_kind"] == "veth"
    assert out["ds-check"] == (0, {})
    code, error = out["ds-check-lacks"]
    assert code == 1 and error["msg"] == "eth0 lacks 10.42.3.99/32", error
    assert out["ds-del"][0] == 0
    code, error = out["ds-check-gone"]
    assert code == 1 and error["msg"] == f"the node has no interface {veth}"
    assert error["details"] == f"link show {veth}: No such device"

    code, result = out["stale"]
    assert code == 0, result
    stale = veth_name("apps", "stale")
    links = {link["ifname"]: link for link in out["stale-links"]}
    assert links[stale]["address"] == "ee:ee:ee:ee:ee:ee" and "old-peer" not in links

    taken = veth_name("apps", "taken")
    code, error = out["taken"]
    assert code == 1 and error["code"] == 100, error
    assert error["msg"] == f"failed to set up the veth pair and the host side routes of {taken}"
    assert error["details"].startswith(f"link add {taken} type veth peer name eth0 netns ")
    assert error["details"].endswith(": File exists"), error
    assert "eth0" in out["taken-pod"]  # the pod's own eth0 is left alone

    code, error = out["badroute"]
    assert code == 1 and error["msg"] == "failed to configure the pod's interface", error
    assert error["details"] == (  # strerror and the kernel's extended ack
        "route add 10.96.0.1/12 via 169.254.1.1 dev eth0: Invalid argument "
        "(Invalid prefix for given prefix length)"
    ), error
    assert "eth0" not in out["badroute-pod"]

    gone = tmp_path / "gone"
    code, error = out["nons"]
    assert code == 1 and error["code"] == 100, error
    nons = veth_name("apps", "nons")
    assert error["msg"] == f"failed to set up the veth pair and the host side routes of {nons}"
    assert error["details"] == f'cannot open network namespace "{gone}": No such file or directory'

    # every failed or deleted pod left nothing on the node, and its address was given back
    assert "cali" not in out["node-links"], out["node-links"]
    assert "cali" not in out["node-routes"]
    assert out["reserved"] == [], out["reserved"]
