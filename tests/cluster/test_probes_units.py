"""The probes tier's pieces without a cluster: a probe pod's networks selection, the
objects it makes (Pod Security, hostNetwork, the image), the default image read from
rke2-canal, a segment's growth from the nodes' NIC counters (a trunk's VLANs apart), and
TCP/HTTP probes made with bash's /dev/tcp in an image without nc, wget or curl."""

from __future__ import annotations

import asyncio
import json
import types
from collections.abc import AsyncIterator
from pathlib import Path

from variants import SEED

from multihome.cluster import probes
from multihome.cluster.podexec import ExecResult
from multihome.plan import build_plan
from multihome.spec import load_lab_text
from multihome.verify.liveprobes import ProbeReader, grown, segment, selection
from multihome.verify.liveview import Live, Target
from multihome.verify.probes import Probe
from multihome.verify.view import LabView

STATIC = Path(__file__).parents[2] / "examples" / "storage-static.yaml"


def test_a_probe_pods_selection_is_its_design_pods_without_static_addresses() -> None:
    seed = build_plan(load_lab_text(SEED, "seed.yaml"))
    net_tools = next(p for p in seed.pods if p.name == "net-tools")
    assert json.loads(selection(net_tools) or "") == [
        {"name": "macvlan-longhorn-dhcp", "namespace": "multus-network-attachments",
         "interface": "net1"},
        {"name": "macvlan-private-dhcp", "namespace": "multus-network-attachments",
         "interface": "net2"},
    ]  # fmt: skip
    static = build_plan(load_lab_text(STATIC.read_text(), str(STATIC)))
    asks = [p for p in static.pods if any(i.ips for i in p.interfaces)]
    assert asks and all(selection(p) is None for p in asks)


def test_the_objects_are_labelled_for_pod_security_and_found_again() -> None:
    mirror = probes.Mirror("pod:a/b", "wrk-1", '[{"name":"n","namespace":"a"}]')
    ns, ds, pod = probes.manifests("multihome-probes-1a2b", "1a2b", "img:1", {"probe-1": mirror})
    labels = ns["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "privileged"
    assert labels[probes.RUN_LABEL] == "1a2b"
    assert float(ns["metadata"]["annotations"][probes.EXPIRES]) > 0
    template = ds["spec"]["template"]["spec"]
    assert template["hostNetwork"] is True
    assert template["containers"][0]["image"] == "img:1"
    assert pod["spec"]["nodeName"] == "wrk-1"
    assert pod["metadata"]["annotations"][probes.NETWORKS] == mirror.networks
    assert pod["spec"]["containers"][0]["securityContext"]["capabilities"]["add"] == ["NET_RAW"]


def test_the_default_image_is_the_one_rke2_canal_runs() -> None:
    canal = {
        "metadata": {"namespace": "kube-system", "name": "rke2-canal"},
        "spec": {"template": {"spec": {"containers": [
            {"name": "calico-node", "image": "rancher/hardened-calico:v3.28.1-build20240806"},
            {"name": "kube-flannel", "image": "rancher/hardened-flannel:v0.25.5"},
        ]}}},
    }  # fmt: skip
    assert probes.default_image([canal]) == "rancher/hardened-calico:v3.28.1-build20240806"
    assert probes.default_image([]) == probes.FALLBACK_IMAGE


def test_a_segment_grows_by_what_the_nodes_nics_on_it_sent() -> None:
    plan = build_plan(load_lab_text(SEED, "seed.yaml"))
    nodes = {n.name: n for n in plan.nodes}
    wrk = next(n for n in plan.nodes if len(n.nics) > 1)
    before = {
        name: {nic.name: {"tx_bytes": 1000} for nic in node.nics} for name, node in nodes.items()
    }
    after = json.loads(json.dumps(before))
    after[wrk.name][wrk.management_nic]["tx_bytes"] = 1000 + 300_000
    found = grown(plan, before, after)  # type: ignore[arg-type]
    assert isinstance(found, dict)
    assert found[segment(wrk.management_network)] == 300_000
    assert sum(found.values()) == 300_000
    missing = dict(before)
    missing[wrk.name] = "no probe pod on it"  # type: ignore[assignment]
    said = grown(plan, missing, after)  # type: ignore[arg-type]
    assert isinstance(said, str) and "not measured" in said and wrk.name in said


class _Image:
    """A probe pod's image as a runner: no nc, wget or curl; bash answers as told."""

    def __init__(self, bash: ExecResult) -> None:
        self.bash = bash
        self.ran: list[list[str]] = []

    async def run(
        self, namespace: str, pod: str, command: list[str], container: str | None, timeout: float
    ) -> ExecResult:
        self.ran.append(command)
        if command[0] in ("nc", "wget", "curl"):
            return ExecResult(127, "", f"exec: {command[0]}: not found", None, True)
        return self.bash


def _reader(image: _Image) -> ProbeReader:
    live = Live(view=LabView("x", True, {}, {}, {}, {}, {}, ()))
    live.pods["probe:pod:a/b"] = Target("multihome-probes-1", "probe-1", "probe")
    return ProbeReader(live, image)


def test_tcp_and_http_probes_fall_back_to_bash_dev_tcp() -> None:
    probe = Probe("probe:pod:a/b", "172.16.60.31", "http", 80, deadline=1.0, attempts=1)
    image = _Image(ExecResult(0, "HTTP/1.0 200 OK\r\n", ""))
    result = asyncio.run(_reader(image).probe(probe))
    assert result.answered and "HTTP/1.0 200 OK" in result.detail
    assert image.ran[-1][:3] == ["timeout", "1", "bash"]
    refused = _Image(ExecResult(1, "", "bash: connect: Connection refused\n"))
    tcp = Probe("probe:pod:a/b", "172.16.60.31", "tcp", 22, deadline=1.0, attempts=1)
    assert asyncio.run(_reader(refused).probe(tcp)).outcome == "refused"
    silent = _Image(ExecResult(124, "", ""))
    assert asyncio.run(_reader(silent).probe(tcp)).outcome == "timeout"


class _Namespaces:
    """A client whose probes namespaces go after ``lists`` lists."""

    def __init__(self, names: list[str], lists: int) -> None:
        self.names, self.lists = names, lists

    async def list(self, kind: object, labels: object = None) -> AsyncIterator[object]:
        self.lists -= 1
        for name in self.names if self.lists >= 0 else []:
            yield types.SimpleNamespace(metadata=types.SimpleNamespace(name=name))


def test_gone_says_which_namespaces_outlived_the_wait() -> None:
    slow = _Namespaces(["multihome-probes-a"], lists=1000)
    assert asyncio.run(probes.gone(slow, ["multihome-probes-a"], 0.5)) == ["multihome-probes-a"]  # type: ignore[arg-type]
    quick = _Namespaces(["multihome-probes-a"], lists=1)
    assert asyncio.run(probes.gone(quick, ["multihome-probes-a"], 5.0)) == []  # type: ignore[arg-type]
