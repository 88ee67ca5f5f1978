"""The read-only tier of ``verify --kubeconfig`` on objects as real clusters return them
(``fixtures/cluster-seed.json``, each kind's shape from a cited public report): the seed's
cluster passes, and each broken object fails its check with the design's likely cause."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx2
import pytest
import variants
from clusterkit import kubeconfig, recorded, transport

from multihome.plan import build_plan
from multihome.spec import load_lab
from multihome.verify import live
from multihome.verify.report import Report

PLAN = build_plan(load_lab(None))
NS = "multus-network-attachments"
NET_TOOLS = f"{NS}/net-tools"


def verify(tmp_path: Path, objects: dict[str, Any], seen: list[str] | None = None) -> Report:
    config = kubeconfig(tmp_path / "kubeconfig")
    return live.run(PLAN, str(config), exec_=False, transport=transport(objects, seen))


def result(report: Report, check: str, subject: str) -> Any:
    found = [c for c in report.checks if (c.id, c.subject) == (check, subject)]
    assert len(found) == 1, (check, subject, [c.name for c in report.checks])
    return found[0]


def test_the_recorded_seed_cluster_passes_read_only(tmp_path: Path) -> None:
    seen: list[str] = []
    report = verify(tmp_path, recorded(), seen)
    assert report.ok, [c for c in report.checks if c.status == "fail"]
    assert "/api/v1/pods" in seen and "/apis/longhorn.io/v1beta2/settings" in seen
    ids = {c.id for c in report.checks if c.status == "pass"}
    assert {
        "node-address",
        "canal-nic",
        "nad",
        "multus",
        "dhcp-daemon",
        "longhorn-setting",
        "longhorn-replica",
        "interfaces",
        "network-status",
    } <= ids
    # the instance-managers are found by Longhorn's labels, not by the design's hashed names
    ims = [c for c in report.checks if c.id == "interfaces" and "instance-manager" in c.subject]
    assert len(ims) == 6 and all(c.status == "pass" for c in ims)
    assert all(c.tier for c in report.checks)
    # what needs exec or the probes tier is a skip that says so, never a failure
    route = result(report, "default-route", NET_TOOLS)
    assert (route.status, route.tier) == ("skip", "exec") and "--no-exec" in (route.cause or "")
    seg = result(report, "canal-segment", "cluster network")
    assert (seg.status, seg.tier) == ("skip", "probes")
    assert "network-status records" in result(report, "interfaces", NET_TOOLS).evidence[0]


def test_canal_on_the_storage_nic_fails_canal_nic(tmp_path: Path) -> None:
    objects = recorded()
    node = next(n for n in objects["nodes"] if n["metadata"]["name"] == "multi-homed-wrk-2")
    node["metadata"]["annotations"]["flannel.alpha.coreos.com/public-ip"] = "172.16.50.12"
    node["metadata"]["annotations"]["projectcalico.org/IPv4Address"] = "172.16.50.12/24"
    report = verify(tmp_path, objects)
    check = result(report, "canal-nic", "multi-homed-wrk-2")
    assert check.status == "fail"
    assert "flannel 172.16.50.12 is on vlan50" in (check.cause or "")
    assert "pin Canal to ens192" in (check.cause or "")
    assert result(report, "canal-nic", "multi-homed-wrk-1").status == "pass"


def test_a_node_without_canals_annotations_fails(tmp_path: Path) -> None:
    objects = recorded()
    node = next(n for n in objects["nodes"] if n["metadata"]["name"] == "multi-homed-cpl-1")
    del node["metadata"]["annotations"]["flannel.alpha.coreos.com/public-ip"]
    check = result(verify(tmp_path, objects), "canal-nic", "multi-homed-cpl-1")
    assert check.status == "fail" and "has not written its address" in (check.cause or "")


def test_a_wrong_node_ip_fails_node_address(tmp_path: Path) -> None:
    objects = recorded()
    node = next(n for n in objects["nodes"] if n["metadata"]["name"] == "multi-homed-wrk-3")
    node["status"]["addresses"][0]["address"] = "172.16.60.51"
    check = result(verify(tmp_path, objects), "node-address", "multi-homed-wrk-3")
    assert check.status == "fail"
    assert "(on vlan60)" in (check.cause or "") and "node-ip: 172.16.40.51" in (check.cause or "")


def test_a_nad_differing_from_the_design_fails_and_json_spacing_does_not(tmp_path: Path) -> None:
    objects = recorded()
    nad = objects["nads"][0]
    config = json.loads(nad["spec"]["config"])
    config["master"] = "ens256"
    nad["spec"]["config"] = json.dumps(config)  # other spacing than the design's
    report = verify(tmp_path, objects)
    check = result(report, "nad", f"{NS}/{nad['metadata']['name']}")
    assert check.status == "fail"
    assert 'master: design "ens224", cluster "ens256"' in check.evidence
    assert result(report, "nad", f"{NS}/{objects['nads'][1]['metadata']['name']}").status == "pass"


def test_missing_nad_crd_and_missing_longhorn(tmp_path: Path) -> None:
    objects = recorded()
    objects["nads"] = None
    objects["settings"] = None
    report = verify(tmp_path, objects)
    nad = result(report, "nad", f"{NS}/macvlan-private-dhcp")
    assert nad.status == "fail" and "rke2-multus" in (nad.cause or "")
    setting = result(report, "longhorn-setting", f"{NS}/macvlan-longhorn-dhcp")
    assert setting.status == "fail" and "not installed" in (setting.cause or "")


def test_dhcp_daemon_pods_are_found_by_owner_not_by_label(tmp_path: Path) -> None:
    objects = recorded()
    # rke2-multus-dhcp's pods carry the same app label as rke2-multus': drop the dhcp
    # DaemonSet's pod on wrk-2, and Multus' pod there must not stand in for it
    objects["pods"] = [
        p
        for p in objects["pods"]
        if not (
            p["metadata"]["name"].startswith("rke2-multus-dhcp")
            and p["spec"]["nodeName"] == "multi-homed-wrk-2"
        )
    ]
    report = verify(tmp_path, objects)
    check = result(report, "dhcp-daemon", "multi-homed-wrk-2")
    assert check.status == "fail" and "manifests.dhcpDaemonSet: true" in (check.cause or "")
    assert result(report, "multus", "multi-homed-wrk-2").status == "pass"
    assert result(report, "dhcp-daemon", "multi-homed-wrk-1").status == "pass"


def test_no_dhcp_daemonset_at_all_is_the_rke2_1_25_failure(tmp_path: Path) -> None:
    objects = recorded()
    objects["daemonsets"] = [
        d for d in objects["daemonsets"] if "dhcp" not in d["metadata"]["name"]
    ]
    check = result(verify(tmp_path, objects), "dhcp-daemon", "multi-homed-wrk-1")
    assert check.status == "fail" and "no DaemonSet in kube-system runs it" in check.evidence


def test_longhorn_setting_not_applied_or_other_value(tmp_path: Path) -> None:
    objects = recorded()
    objects["settings"][0]["status"]["applied"] = False
    check = result(verify(tmp_path, objects), "longhorn-setting", f"{NS}/macvlan-longhorn-dhcp")
    assert check.status == "fail" and "detached" in (check.cause or "")
    objects["settings"][0]["value"] = ""
    check = result(verify(tmp_path, objects), "longhorn-setting", f"{NS}/macvlan-longhorn-dhcp")
    assert check.status == "fail" and "the cluster network" in (check.cause or "")


def test_longhorn_replicas_serve_on_the_storage_network(tmp_path: Path) -> None:
    """Each running replica's storageIP (Longhorn takes it from the instance-manager's
    lhnet1) is on vlan50; one on its pod IP replicates over the cluster network."""
    subject = f"{NS}/macvlan-longhorn-dhcp"
    objects = recorded()
    check = result(verify(tmp_path, objects), "longhorn-replica", subject)
    assert (check.status, check.tier) == ("pass", "read-only")
    assert "vlan50 (172.16.50.0/24)" in check.title
    assert len(check.evidence) == 3 and "storageIP 172.16.50.42 (on vlan50)" in check.evidence[0]
    replica = objects["replicas"][1]
    replica["status"]["storageIP"] = replica["status"]["ip"]  # no storage network applied
    check = result(verify(tmp_path, objects), "longhorn-replica", subject)
    assert check.status == "fail"
    assert "its instance-manager's pod IP: the cluster network" in check.evidence[1]
    assert (check.cause or "").startswith("1 of 3 running replica(s) serve off vlan50")
    for r in objects["replicas"]:
        r["status"]["currentState"] = "stopped"  # every volume detached
    check = result(verify(tmp_path, objects), "longhorn-replica", subject)
    assert check.status == "skip" and "none running: no volume attached" in (check.cause or "")
    del objects["replicas"]  # a cluster without Longhorn's Replica CRD: 404
    check = result(verify(tmp_path, objects), "longhorn-replica", subject)
    assert check.status == "skip"
    assert "does not serve replicas (longhorn.io) (404)" in (check.cause or "")


def test_a_pod_stuck_creating_gets_the_designs_cause(tmp_path: Path) -> None:
    """net-tools ContainerCreating with Multus' 'Link not found' event: the cause names the
    NAD's master missing on the node (the design's wrk-1 lacking ens256)."""
    plan = build_plan(variants.load(variants.NO_ENS256))
    objects = recorded()
    pod = next(p for p in objects["pods"] if p["metadata"]["name"] == "net-tools")
    del pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"]
    pod["status"] = {
        "phase": "Pending",
        "containerStatuses": [
            {
                "name": "network-multitool",
                "ready": False,
                "restartCount": 0,
                "image": "praqma/network-multitool",
                "imageID": "",
                "state": {"waiting": {"reason": "ContainerCreating"}},
            }
        ],
    }
    objects["events"] = [objects["sandbox_event"]]
    config = kubeconfig(tmp_path / "kubeconfig")
    report = live.run(plan, str(config), exec_=False, transport=transport(objects))
    check = result(report, "interfaces", NET_TOOLS)
    assert check.status == "fail"
    assert check.evidence[0].startswith("ContainerCreating on multi-homed-wrk-1: Failed to create")
    assert "macvlan on ens256, which multi-homed-wrk-1 does not have" in (check.cause or "")
    assert "Link not found" in (check.cause or "")


def test_bad_kubeconfig_and_forbidden_lists_are_clear_errors(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(live.ClusterError, match="cannot read kubeconfig"):
        live.run(PLAN, str(missing), exec_=False)

    def forbid(request: httpx2.Request) -> httpx2.Response:
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": "nodes is forbidden",
            "reason": "Forbidden",
            "code": 403,
        }
        return httpx2.Response(403, json=status)

    config = kubeconfig(tmp_path / "kubeconfig")
    with pytest.raises(live.ClusterError, match=r"not allowed to list .* ClusterRole"):
        live.run(PLAN, str(config), exec_=False, transport=httpx2.MockTransport(forbid))


def test_the_context_is_chosen_and_an_unknown_one_is_a_clear_error(tmp_path: Path) -> None:
    import yaml

    config = kubeconfig(tmp_path / "kubeconfig")
    doc = yaml.safe_load(config.read_text())
    doc["contexts"].append({"name": "other", "context": {"cluster": "c", "user": "u"}})
    doc["current-context"] = "missing"
    config.write_text(yaml.safe_dump(doc))
    report = live.run(PLAN, str(config), "other", exec_=False, transport=transport(recorded()))
    assert report.ok
    with pytest.raises(live.ClusterError, match="Context 'nope' not found"):
        live.run(PLAN, str(config), "nope", exec_=False, transport=transport(recorded()))


def test_junit_says_each_checks_tier(tmp_path: Path) -> None:
    xml = verify(tmp_path, recorded()).junit()
    assert '<property name="tier" value="read-only" />' in xml
    assert '<property name="tier" value="probes" />' in xml


def test_a_design_pod_missing_from_the_cluster(tmp_path: Path) -> None:
    objects = recorded()
    objects["pods"] = [p for p in objects["pods"] if p["metadata"]["name"] != "net-tools"]
    check = result(verify(tmp_path, objects), "interfaces", NET_TOOLS)
    assert check.status == "fail" and check.evidence == ("not in the cluster",)
    assert "apply it" in (check.cause or "")


def test_cluster_only_options_need_kubeconfig() -> None:
    import subprocess
    import sys

    for extra in (["--context", "rke2"], ["--no-exec"]):
        done = subprocess.run(
            [sys.executable, "-m", "multihome", "verify", *extra],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 2 and "go with --kubeconfig" in done.stderr


def test_a_deployments_replicas_are_matched_by_their_replicaset_and_node() -> None:
    """The lab names a Deployment's replicas ``NAME-0``...; a cluster's have a ReplicaSet
    hash and a random suffix: each design replica is the cluster's pod of that Deployment on
    the design's node, whatever its name."""
    from multihome.cluster import Objects
    from multihome.spec import load_lab as load
    from multihome.verify.liveview import build_view

    plan = build_plan(load(Path(live.__file__).parent.parent / "examples" / "default-route.yaml"))
    replicas = [p for p in plan.pods if p.owner is not None and p.owner.kind == "Deployment"]
    pods = []
    for i, replica in enumerate(reversed(replicas)):  # listed in another order than the plan
        pods.append(
            {
                "metadata": {
                    "name": f"{replica.owner.name}-7d9c6b5f4-{'xk2pq' if i else 'm8zrt'}",
                    "namespace": replica.namespace,
                    "uid": f"uid-{i}",
                    "ownerReferences": [
                        {"kind": "ReplicaSet", "name": f"{replica.owner.name}-7d9c6b5f4"}
                    ],
                },
                "spec": {"nodeName": replica.node, "containers": [{"name": "c"}]},
                "status": {"phase": "Running"},
            }
        )
    view = build_view(plan, Objects(pods=pods)).view
    for replica in replicas:
        found = view.pods[replica.ref]
        assert found.node == replica.node and found.running
    names = {v.netns for v in view.pods.values()}
    assert names == {f"pod:{p['metadata']['namespace']}/{p['metadata']['name']}" for p in pods}
