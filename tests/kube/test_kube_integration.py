"""Reads, watches and writes as one API, with the real kubectl against an up of the seed:
``kubectl get -w`` sees a pod applied through the API ADDED Pending at once, MODIFIED to
Running by the reconcile, then Terminating and DELETED after ``kubectl delete --wait``, each
with a resourceVersion greater than the last and the one ``get`` serves; an update with a
stale resourceVersion is a 409; ``fieldValidation=Strict`` refuses unknown fields as the API
server words it; client-side apply (strategic merge from the served OpenAPI) of a Pod and a
Deployment; and the RKE2 charts' kube-system DaemonSets (rke2-canal, rke2-multus, the CNI
dhcp daemon's) with their pods per node, Ready from the lab's real state and read-only."""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

import pytest
import yaml
from test_kube_write import KUBECTL, NS, kubectl, lab, ok, pod_yaml, raw, until

from multihome.lab import processes
from multihome.lab.daemons import dhcp_daemon_name
from multihome.lab.state import LabState

__all__ = ["lab"]  # the module-scoped up of the seed

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="up of the seed runs as root here"),
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (make test installs it)"),
    pytest.mark.skipif(not os.path.isdir("/usr/lib/cni"), reason="containernetworking-plugins"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq"), reason="dnsmasq-base missing"),
]


def _watch(lab: dict[str, Any], *args: str) -> subprocess.Popen[str]:
    assert KUBECTL is not None
    env = {"PATH": os.environ["PATH"], "HOME": str(lab["home"])}
    return subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(lab["kubeconfig"]), "--cache-dir", str(lab["home"] / "cache"),
         "get", "-w", "--output-watch-events", "-o", "json", *args],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )  # fmt: skip


def _events(proc: subprocess.Popen[str]) -> list[dict[str, Any]]:
    proc.terminate()
    out, _ = proc.communicate(timeout=30)
    decoder = json.JSONDecoder()
    found, at = [], 0
    out = out.strip()
    while at < len(out):
        event, end = decoder.raw_decode(out, at)
        found.append(event)
        at = end
        while at < len(out) and out[at].isspace():
            at += 1
    return found


def _phase(event: dict[str, Any]) -> str:
    obj = event["object"]
    if obj["metadata"].get("deletionTimestamp"):
        return "Terminating"
    return str(obj["status"].get("phase"))


def test_apply_wait_watch_and_delete_together(lab: dict[str, Any]) -> None:
    watcher = _watch(lab, "pods", "-n", NS, "--field-selector", "metadata.name=together")
    try:
        time.sleep(2)  # the watch's initial list is done before the write
        out = ok(kubectl(lab, "apply", "-f", "-", stdin=pod_yaml("together")))
        assert "pod/together created" in out
        ok(kubectl(lab, "wait", "--for=condition=Ready", "pod/together", "-n", NS,
                   "--timeout=90s"))  # fmt: skip
        got = json.loads(ok(kubectl(lab, "get", "pod", "-n", NS, "together", "-o", "json")))
        time.sleep(1)
        ok(kubectl(lab, "delete", "pod", "-n", NS, "together", "--wait", "--timeout=90s"))
        gone = kubectl(lab, "get", "pod", "-n", NS, "together")
        assert gone.returncode != 0 and "NotFound" in gone.stderr
        time.sleep(1)
    finally:
        events = _events(watcher)
    kinds = [(e["type"], _phase(e)) for e in events]
    assert kinds[0] == ("ADDED", "Pending"), kinds
    assert ("MODIFIED", "Running") in kinds, kinds
    assert ("MODIFIED", "Terminating") in kinds, kinds
    assert kinds[-1][0] == "DELETED", kinds
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions) and len(set(versions)) == len(versions), versions
    running = [e for e in events if _phase(e) == "Running"]
    assert (
        got["metadata"]["resourceVersion"] == running[-1]["object"]["metadata"]["resourceVersion"]
    )
    uids = {e["object"]["metadata"]["uid"] for e in events}
    assert uids == {got["metadata"]["uid"]}


def test_a_stale_resource_version_is_a_conflict(lab: dict[str, Any]) -> None:
    ok(kubectl(lab, "apply", "-f", "-", stdin=pod_yaml("stale")))
    # Ready first: the reconcile's Running is a change of its own (a new version)
    ok(kubectl(lab, "wait", "--for=condition=Ready", "pod/stale", "-n", NS, "--timeout=90s"))
    old = json.loads(ok(kubectl(lab, "get", "pod", "-n", NS, "stale", "-o", "json")))
    ok(kubectl(lab, "label", "pod", "-n", NS, "stale", "step=one"))
    time.sleep(3)  # the label's reconcile (it changes nothing of the pod's status)
    new = json.loads(ok(kubectl(lab, "get", "pod", "-n", NS, "stale", "-o", "json")))
    assert int(new["metadata"]["resourceVersion"]) > int(old["metadata"]["resourceVersion"])
    old["metadata"].setdefault("labels", {})["step"] = "two"
    done = kubectl(lab, "replace", "-f", "-", stdin=json.dumps(old))
    assert done.returncode != 0
    assert "the object has been modified; please apply your changes" in done.stderr
    new["metadata"]["labels"]["step"] = "two"
    ok(kubectl(lab, "replace", "-f", "-", stdin=json.dumps(new)))
    # a list's version is the newest of its objects', and a watch can start from it
    code, listed = raw(lab, "GET", f"/api/v1/namespaces/{NS}/pods")
    assert code == 200
    newest = max(int(p["metadata"]["resourceVersion"]) for p in listed["items"])
    assert int(listed["metadata"]["resourceVersion"]) >= newest
    # a delete's preconditions are checked against the same versions
    stale = json.dumps({"preconditions": {"resourceVersion": old["metadata"]["resourceVersion"]}})
    code, status = raw(lab, "DELETE", f"/api/v1/namespaces/{NS}/pods/stale", stale.encode())
    assert (code, status["reason"]) == (409, "Conflict"), status
    assert "Precondition failed: ResourceVersion in precondition" in status["message"]
    current = json.loads(ok(kubectl(lab, "get", "pod", "-n", NS, "stale", "-o", "json")))
    fresh = json.dumps(
        {"preconditions": {"resourceVersion": current["metadata"]["resourceVersion"]}}
    )
    code, status = raw(lab, "DELETE", f"/api/v1/namespaces/{NS}/pods/stale", fresh.encode())
    assert code == 200, status


def test_strict_field_validation(lab: dict[str, Any]) -> None:
    doc = yaml.safe_load(pod_yaml("strict"))
    doc["spec"]["containers"][0]["bogus"] = 1
    doc["spec"]["extra"] = "x"
    done = kubectl(lab, "apply", "-f", "-", stdin=yaml.safe_dump(doc))
    assert done.returncode != 0
    assert (
        'Pod in version "v1" cannot be handled as a Pod: strict decoding error: unknown field '
        '"spec.containers[0].bogus", unknown field "spec.extra"'
    ) in done.stderr, done.stderr
    assert kubectl(lab, "get", "pod", "-n", NS, "strict").returncode != 0
    ok(kubectl(lab, "apply", "-f", "-", stdin=pod_yaml("strict")))
    # kubectl patch sends no fieldValidation: Warn, the field left out
    done = kubectl(lab, "patch", "pod", "-n", NS, "strict", "--type=merge",
                   "-p", '{"spec":{"nope":1}}')  # fmt: skip
    assert done.returncode == 0 and 'Warning: unknown field "spec.nope"' in done.stderr
    got = json.loads(ok(kubectl(lab, "get", "pod", "-n", NS, "strict", "-o", "json")))
    assert "nope" not in got["spec"]
    # a patch's unknown field under Strict: the API server's 422
    code, status = raw(lab, "PATCH", f"/api/v1/namespaces/{NS}/pods/strict?fieldValidation=Strict",
                       b'{"spec":{"nope":1}}', "application/merge-patch+json")  # fmt: skip
    assert (code, status["reason"]) == (422, "Invalid")
    assert 'strict decoding error: unknown field "spec.nope"' in status["message"]
    done = kubectl(lab, "label", "pod", "-n", NS, "strict", "checked=yes")
    assert done.returncode == 0 and "Warning" not in done.stderr
    code, _ = raw(lab, "PATCH", f"/api/v1/namespaces/{NS}/pods/strict?fieldValidation=Bogus",
                  b"{}", "application/merge-patch+json")  # fmt: skip
    assert code == 400
    ok(kubectl(lab, "delete", "pod", "-n", NS, "strict", "--wait=false"))


def test_client_side_apply_of_a_deployment(lab: dict[str, Any]) -> None:
    pod = yaml.safe_load(pod_yaml("x"))
    deploy: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "csa", "namespace": NS},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "csa"}},
                       "template": {"metadata": {"labels": {"app": "csa"},
                                                 "annotations": pod["metadata"]["annotations"]},
                                    "spec": pod["spec"]}}}  # fmt: skip
    assert "deployment.apps/csa created" in ok(
        kubectl(lab, "apply", "-f", "-", stdin=yaml.safe_dump(deploy))
    )
    deploy["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "A", "value": "1"}]
    out = ok(kubectl(lab, "apply", "-f", "-", stdin=yaml.safe_dump(deploy)))
    assert "deployment.apps/csa configured" in out
    got = json.loads(ok(kubectl(lab, "get", "deploy", "-n", NS, "csa", "-o", "json")))
    assert got["spec"]["template"]["spec"]["containers"][0]["env"] == [{"name": "A", "value": "1"}]
    assert got["metadata"]["generation"] == 2
    out = ok(kubectl(lab, "apply", "-f", "-", stdin=yaml.safe_dump(deploy)))
    assert "deployment.apps/csa unchanged" in out
    ok(kubectl(lab, "delete", "deploy", "-n", NS, "csa", "--wait", "--timeout=90s"))


def test_the_charts_daemonsets_and_their_pods(lab: dict[str, Any]) -> None:
    sets = json.loads(ok(kubectl(lab, "get", "ds", "-n", "kube-system", "-o", "json")))["items"]
    by_name = {d["metadata"]["name"]: d for d in sets}
    # RKE2 v1.25.9+rke2r1: rke2-canal, rke2-multus v3.9.3-build2023010902 (its DaemonSet
    # still "-ds", no dhcp DaemonSet in the chart: multihome's own runs the daemon)
    assert {"rke2-canal", "rke2-multus-ds", "multihome-cni-dhcp"} <= set(by_name), by_name
    canal = by_name["rke2-canal"]
    assert canal["metadata"]["labels"] == {"k8s-app": "canal"}
    containers = [c["name"] for c in canal["spec"]["template"]["spec"]["containers"]]
    assert containers == ["calico-node", "kube-flannel"]
    multus = by_name["rke2-multus-ds"]["spec"]["template"]["spec"]["containers"][0]
    assert multus["image"] == "rancher/hardened-multus-cni:v3.9.3-build20230109"
    nodes = json.loads(ok(kubectl(lab, "get", "nodes", "-o", "json")))["items"]
    pods = json.loads(ok(kubectl(lab, "get", "pods", "-n", "kube-system", "-o", "json")))["items"]
    for ds in by_name.values():
        mine = [p for p in pods if p["metadata"].get("ownerReferences", [{}])[0].get("uid")
                == ds["metadata"]["uid"]]  # fmt: skip
        assert len(mine) == ds["status"]["desiredNumberScheduled"] > 0
        assert ds["status"]["numberReady"] == len(mine)
        for p in mine:
            assert p["spec"]["hostNetwork"] is True
            node = next(n for n in nodes if n["metadata"]["name"] == p["spec"]["nodeName"])
            internal = next(a["address"] for a in node["status"]["addresses"]
                            if a["type"] == "InternalIP")  # fmt: skip
            assert p["status"]["podIP"] == internal
    assert len([p for p in pods if p["metadata"]["name"].startswith("rke2-canal-")]) == len(nodes)
    # read-only
    done = kubectl(lab, "delete", "ds", "-n", "kube-system", "rke2-canal")
    assert done.returncode != 0 and "MethodNotAllowed" in done.stderr, done.stderr
    canal_pod = next(p for p in pods if p["metadata"]["name"].startswith("rke2-canal-"))
    done = kubectl(lab, "label", "pod", "-n", "kube-system", canal_pod["metadata"]["name"], "a=b")
    assert done.returncode != 0 and "run by DaemonSet rke2-canal" in done.stderr, done.stderr


def _seed_rendering() -> Any:
    from multihome.render import render_in_memory
    from multihome.spec import load_lab

    return render_in_memory(load_lab(None))


def _rendered(kind: str, name: str) -> dict[str, Any]:
    from multihome.render.apiset import api_objects

    return next(
        o.body
        for o in api_objects(_seed_rendering())
        if o.body["kind"] == kind and o.body["metadata"]["name"] == name
    )


def _apply(lab: dict[str, Any], path: str, body: dict[str, Any], *query: str) -> tuple[int, Any]:
    q = "&".join(("fieldManager=multihome", *query))
    return raw(lab, "PATCH", f"{path}?{q}", json.dumps(body).encode(),
               "application/apply-patch+yaml")  # fmt: skip


DS_PATH = "/apis/apps/v1/namespaces/kube-system/daemonsets/multihome-cni-dhcp"
HCC_PATH = "/apis/helm.cattle.io/v1/namespaces/kube-system/helmchartconfigs"


def test_an_apply_that_changes_nothing_of_the_labs_own_objects_is_taken(
    lab: dict[str, Any],
) -> None:
    """The dhcp DaemonSet and the HelmChartConfigs render writes: a server-side apply of the
    rendered object is a 200 (managedFields gain the manager, as the API server's), a change a
    422 saying the lab runs it from its lab file; other writes stay refused."""
    ds = _rendered("DaemonSet", "multihome-cni-dhcp")
    before = json.loads(ok(kubectl(lab, "get", "ds", "-n", "kube-system", "multihome-cni-dhcp",
                                   "-o", "json")))  # fmt: skip
    code, dry = _apply(lab, DS_PATH, ds, "dryRun=All")
    assert code == 200, dry
    assert [m["manager"] for m in dry["metadata"]["managedFields"]] == ["multihome"]
    code, got = _apply(lab, DS_PATH, ds)
    assert code == 200, got
    assert got["spec"] == before["spec"] and got["status"] == before["status"]
    assert got["metadata"]["uid"] == before["metadata"]["uid"]
    entry = got["metadata"]["managedFields"][0]
    assert entry["manager"] == "multihome" and entry["operation"] == "Apply"
    assert "f:affinity" in entry["fieldsV1"]["f:spec"]["f:template"]["f:spec"]
    out = ok(kubectl(lab, "get", "ds", "-n", "kube-system", "multihome-cni-dhcp", "-o", "json",
                     "--show-managed-fields"))  # fmt: skip
    assert json.loads(out)["metadata"]["managedFields"] == got["metadata"]["managedFields"]
    changed = json.loads(json.dumps(ds))
    changed["spec"]["template"]["spec"]["containers"][0]["image"] = "busybox:latest"
    code, status = _apply(lab, DS_PATH, changed, "force=true")
    assert code == 422 and status["reason"] == "Invalid", status
    assert status["message"].startswith(
        'DaemonSet "multihome-cni-dhcp" is invalid: spec.template.spec.containers: Forbidden: '
        "the lab makes the CNI dhcp daemon's DaemonSet from its lab file"
    ), status["message"]
    assert "change the lab file and rebuild the lab" in status["message"]
    # a manager that applies another value of a field multihome applied: a conflict first
    code, status = raw(lab, "PATCH", DS_PATH + "?fieldManager=other",
                       json.dumps(changed).encode(), "application/apply-patch+yaml")  # fmt: skip
    assert code == 409 and 'conflict with "multihome"' in status["message"], status

    hcc = _rendered("HelmChartConfig", "rke2-canal")
    listed = json.loads(ok(kubectl(lab, "get", "helmchartconfigs", "-A", "-o", "json")))["items"]
    assert [(h["metadata"]["namespace"], h["metadata"]["name"]) for h in listed] == [
        ("kube-system", "rke2-canal")
    ]  # the seed gives rke2-multus no values (its chart can't start the dhcp daemon)
    assert listed[0]["spec"] == hcc["spec"]
    assert "iface: ens192" in hcc["spec"]["valuesContent"]
    code, got = _apply(lab, f"{HCC_PATH}/rke2-canal", hcc)
    assert code == 200, got
    assert got["metadata"]["managedFields"][0]["fieldsV1"] == {"f:spec": {"f:valuesContent": {}}}
    moved = {**hcc, "spec": {"valuesContent": hcc["spec"]["valuesContent"].replace(
        "ens192", "ens224")}}  # fmt: skip
    code, status = _apply(lab, f"{HCC_PATH}/rke2-canal", moved, "force=true")
    assert code == 422, status
    assert "spec.valuesContent: Forbidden" in status["message"]
    new = {**hcc, "metadata": {"name": "rke2-multus", "namespace": "kube-system"}}
    code, status = _apply(lab, f"{HCC_PATH}/rke2-multus", new)
    assert code == 422 and "gives rke2-multus no values" in status["message"], status
    done = kubectl(lab, "delete", "helmchartconfigs", "-n", "kube-system", "rke2-canal")
    assert done.returncode != 0 and "MethodNotAllowed" in done.stderr, done.stderr
    done = kubectl(lab, "label", "ds", "-n", "kube-system", "multihome-cni-dhcp", "a=b")
    assert done.returncode != 0 and "MethodNotAllowed" in done.stderr, done.stderr


def test_a_killed_dhcp_daemon_is_a_pod_not_ready(lab: dict[str, Any]) -> None:
    """Last: it breaks the lab's daemon (the lab is taken down after)."""
    pods = json.loads(ok(kubectl(lab, "get", "pods", "-n", "kube-system", "-o", "json",
                                 "-l", "app.kubernetes.io/name=multihome-cni-dhcp")))["items"]  # fmt: skip
    assert pods
    node = pods[0]["spec"]["nodeName"]
    state = LabState("multi-homed")
    entry = state.objects()[("process", dhcp_daemon_name(node))]
    assert processes.stop_recorded(entry, lab_token=state.token)
    name = pods[0]["metadata"]["name"]
    ok(kubectl(lab, "wait", "--for=condition=Ready=false", f"pod/{name}", "-n", "kube-system",
               "--timeout=30s"))  # fmt: skip

    def unready() -> dict[str, Any] | None:
        out = ok(kubectl(lab, "get", "ds", "-n", "kube-system", "multihome-cni-dhcp", "-o", "json"))
        found: dict[str, Any] = json.loads(out)
        return found if found["status"].get("numberUnavailable") else None

    ds = until(unready)
    assert ds is not None
    assert ds["status"]["numberReady"] == ds["status"]["desiredNumberScheduled"] - 1
