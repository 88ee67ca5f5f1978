"""The probes tier's pieces without a cluster: the probe pods' networks annotation, the
objects it makes (Pod Security, hostNetwork, the image), the default image read from
rke2-canal, and a segment's growth from the nodes' NIC counters (a trunk's VLANs apart)."""

from __future__ import annotations

import json

from variants import SEED

from multihome.cluster import probes
from multihome.plan import build_plan
from multihome.spec import load_lab_text
from multihome.verify.liveprobes import grown, segment


def test_mirror_networks_qualifies_names_and_drops_ips_and_mac() -> None:
    short = probes.mirror_networks("other/a@lh1, b", "ns")
    assert json.loads(short or "") == [
        {"name": "a", "namespace": "other", "interface": "lh1"},
        {"name": "b", "namespace": "ns"},
    ]
    long = probes.mirror_networks(
        '[{"name": "a", "ips": ["10.0.0.5/24"], "mac": "02:00:00:00:00:01", "interface": "x"}]',
        "ns",
    )
    assert json.loads(long or "") == [{"name": "a", "interface": "x", "namespace": "ns"}]
    assert probes.mirror_networks(None, "ns") is None
    assert probes.mirror_networks("[not json", "ns") is None


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
