"""The lab API's pieces without a lab: objects built from a seed plan and a status as up
writes it, the server-side Table rows of pods and nodes, label and field selectors, ages."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from multihome.kube import tables
from multihome.kube.objects import LabView
from multihome.kube.selectors import SelectorError, field_selector, label_selector
from multihome.lab.bringup import node_status
from multihome.multus import format_network_status
from multihome.plan import build_plan
from multihome.spec import load_lab

CREATED = 1_700_000_000.0


def _status(plan: Any) -> dict[str, Any]:
    """A status as up writes it, for the placed pods of the seed's plan (one left
    ContainerCreating, as up --keep-going leaves a pod whose attachment failed)."""
    facts = {"os_image": "Debian GNU/Linux 12 (bookworm)", "kernel": "6.1.0"}
    nodes = [node_status(plan, n, facts) for n in plan.nodes]
    pods = []
    for i, p in enumerate(q for q in plan.pods if q.node):
        stuck = p.name.startswith("instance-manager-r-")
        entries = [
            {"name": "k8s-pod-network", "interface": "eth0", "ips": [f"10.42.9.{i + 2}"],
             "mac": "42:00:00:00:00:01", "default": True, "dns": {}},
            {"name": "x/y", "interface": "net1", "ips": ["172.16.50.9"], "mac": "42:00:00:00:00:02",
             "dns": {}},
        ]  # fmt: skip
        pods.append(
            {
                "namespace": p.namespace,
                "name": p.name,
                "node": p.node,
                "uid": f"uid-{i}",
                "container_id": "c0ffee",
                "owner": None if p.owner is None else p.owner.model_dump(),
                "network_status": [] if stuck else entries,
                "phase": "ContainerCreating" if stuck else "Running",
                "error": "boom" if stuck else None,
            }
        )
    return {"name": plan.name, "created": CREATED, "running": True, "nodes": nodes, "pods": pods,
            "pending": []}  # fmt: skip


@pytest.fixture(scope="module")
def view() -> LabView:
    plan = build_plan(load_lab(None))
    return LabView(_status(plan), json.loads(plan.to_json()), "42")


def test_nodes_carry_what_kubelet_and_canal_write(view: LabView) -> None:
    plan = view.plan
    for node, planned in zip(view.nodes(), plan["nodes"], strict=True):
        meta, status = node["metadata"], node["status"]
        assert meta["name"] == planned["name"]
        assert {"type": "InternalIP", "address": planned["node_ip"]} in status["addresses"]
        assert meta["annotations"]["flannel.alpha.coreos.com/public-ip"] == planned["node_ip"]
        mgmt = next(c for c in planned["nics"] if c["management"])
        assert meta["annotations"]["projectcalico.org/IPv4Address"] == mgmt["address"]
        assert node["spec"]["podCIDR"] == planned["pod_cidr"]
        for key, value in planned["labels"]:
            assert meta["labels"][key] == value
        ready = next(c for c in status["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "True"
    servers = [
        n
        for n in view.nodes()
        if "node-role.kubernetes.io/control-plane" in n["metadata"]["labels"]
    ]
    assert servers and all(
        n["spec"]["taints"]
        == [{"key": "CriticalAddonsOnly", "value": "true", "effect": "NoExecute"}]
        for n in servers
    )


def test_node_rows_are_the_api_servers(view: LabView) -> None:
    names = [c["name"] for c in tables.NODE_COLUMNS]
    assert names == ["Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP",
                     "OS-Image", "Kernel-Version", "Container-Runtime"]  # fmt: skip
    assert [c["priority"] for c in tables.NODE_COLUMNS] == [0] * 5 + [1] * 5
    rows = {r[0]: r for r in (tables.node_row(n, CREATED + 30) for n in view.nodes())}
    assert rows["multi-homed-cpl-1"][1:5] == [
        "Ready",
        "control-plane,etcd,master",
        "30s",
        "v1.25.9+rke2r1",
    ]
    assert rows["multi-homed-wrk-1"][2] == "worker"
    assert rows["multi-homed-wrk-1"][5:7] == ["172.16.40.47", "<none>"]


def test_pod_rows_running_and_container_creating(view: LabView) -> None:
    assert [c["name"] for c in tables.POD_COLUMNS] == [
        "Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"
    ]  # fmt: skip
    pods = {p["metadata"]["name"]: p for p in view.pods()}
    row = tables.pod_row(pods["net-tools"], CREATED + 7200)
    assert row == ["net-tools", "1/1", "Running", "0", "120m", "10.42.9.2", "multi-homed-wrk-1",
                   "<none>", "<none>"]  # fmt: skip
    stuck = next(p for name, p in pods.items() if name.startswith("instance-manager-r-"))
    row = tables.pod_row(stuck, CREATED)
    assert row[1:4] == ["0/1", "ContainerCreating", "0"]
    assert row[5] == "<none>"
    assert stuck["status"]["phase"] == "Pending"


def test_pod_annotations_are_multus_words(view: LabView) -> None:
    pod = next(p for p in view.pods() if p["metadata"]["name"] == "net-tools")
    built = next(p for p in view.status["pods"] if p["name"] == "net-tools")
    notes = pod["metadata"]["annotations"]
    assert notes["k8s.v1.cni.cncf.io/network-status"] == format_network_status(
        built["network_status"]
    )
    assert notes["k8s.v1.cni.cncf.io/networks"] == (
        "multus-network-attachments/macvlan-longhorn-dhcp,multus-network-attachments/macvlan-private-dhcp"
    )
    assert pod["status"]["podIPs"] == [{"ip": "10.42.9.2"}]
    assert pod["status"]["hostIP"] == "172.16.40.47"
    assert pod["spec"]["containers"][0]["name"] == "samplepod"
    im = next(p for p in view.pods() if p["metadata"]["name"].startswith("instance-manager-e-"))
    assert im["metadata"]["ownerReferences"][0]["kind"] == "InstanceManager"
    assert im["spec"]["containers"][0]["name"] == "engine-manager"


def test_table_rows_carry_metadata(view: LabView) -> None:
    doc = tables.table(tables.POD_COLUMNS, tables.pod_row, view.pods(), "42")
    assert doc["kind"] == "Table" and doc["apiVersion"] == "meta.k8s.io/v1"
    for row, pod in zip(doc["rows"], view.pods(), strict=True):
        assert row["object"]["kind"] == "PartialObjectMetadata"
        assert row["object"]["metadata"]["namespace"] == pod["metadata"]["namespace"]
        assert len(row["cells"]) == len(tables.POD_COLUMNS)


def _lab_pods(view: LabView) -> list[dict[str, Any]]:
    """The pods of the lab file (not the RKE2 charts' kube-system DaemonSet pods)."""
    return [p for p in view.pods() if p["metadata"]["namespace"] != "kube-system"]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("longhorn.io/instance-manager-type=engine", 3),
        ("longhorn.io/instance-manager-type==replica", 3),
        ("longhorn.io/instance-manager-type!=engine", 4),
        ("longhorn.io/instance-manager-type in (engine, replica)", 6),
        ("longhorn.io/instance-manager-type notin (engine)", 4),
        ("longhorn.io/component", 6),
        ("!longhorn.io/component", 1),
        ("longhorn.io/component,longhorn.io/node=multi-homed-wrk-2", 2),
        ("", 7),
    ],
)
def test_label_selectors(view: LabView, selector: str, expected: int) -> None:
    match = label_selector(selector)
    assert sum(1 for p in _lab_pods(view) if match(p)) == expected


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("spec.nodeName=multi-homed-wrk-1", 3),
        ("spec.nodeName!=multi-homed-wrk-1", 4),
        ("status.phase=Running", 4),
        ("status.phase=Pending", 3),
        ("metadata.name=net-tools", 1),
        ("metadata.namespace=longhorn-system,spec.nodeName=multi-homed-wrk-3", 2),
    ],
)
def test_field_selectors(view: LabView, selector: str, expected: int) -> None:
    match = field_selector(selector, "pods")
    assert sum(1 for p in _lab_pods(view) if match(p)) == expected


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("field", "spec.color=red", "field label not supported: spec.color"),
        ("field", "nonsense", "invalid selector"),
        ("label", "a b c", "unable to parse requirement"),
        ("label", "-bad-=x", "invalid label key"),
    ],
)
def test_bad_selectors_are_refused(kind: str, text: str, message: str) -> None:
    with pytest.raises(SelectorError, match=message):
        if kind == "field":
            field_selector(text, "pods")
        else:
            label_selector(text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (119, "119s"), (150, "2m30s"), (600, "10m"), (3 * 3600, "3h"),
     (3 * 3600 + 60 * 5, "3h5m"), (30 * 3600, "30h"), (3 * 86400 + 3600, "3d1h"),
     (40 * 86400, "40d"), (3 * 365 * 86400 + 86400, "3y1d"), (-5, "<invalid>")],
)  # fmt: skip
def test_human_duration(seconds: int, text: str) -> None:
    assert tables.human_duration(seconds) == text


def test_namespaces_include_the_systems_and_the_labs(view: LabView) -> None:
    names = [n["metadata"]["name"] for n in view.namespaces()]
    for name in ("default", "kube-system", "longhorn-system", "multus-network-attachments"):
        assert name in names
    assert time.time() > CREATED


WORKLOADS = Path(__file__).parent.parent / "lab" / "labs" / "workloads.yaml"


def test_workloads_count_their_pods() -> None:
    plan = build_plan(load_lab(WORKLOADS))
    status = _status(plan)
    # one replica of the Deployment left ContainerCreating
    stuck = next(p for p in status["pods"] if p["name"] == "web-1")
    stuck.update(phase="ContainerCreating", network_status=[])
    view = LabView(status, json.loads(plan.to_json()), "1")
    (deploy,) = view.deployments()
    assert deploy["status"] == {
        "availableReplicas": 1, "observedGeneration": 1, "readyReplicas": 1, "replicas": 2,
        "updatedReplicas": 2, "unavailableReplicas": 1,
    }  # fmt: skip
    assert tables.deployment_row(deploy, CREATED)[:5] == ["web", "1/2", 2, 1, "0s"]
    assert tables.deployment_row(deploy, CREATED)[7] == "app=web"
    (ds,) = [d for d in view.daemonsets() if d["metadata"]["namespace"] != "kube-system"]
    assert tables.daemonset_row(ds, CREATED)[:7] == ["probe", 2, 2, 2, 2, 2, "<none>"]
    (sts,) = view.statefulsets()
    assert tables.statefulset_row(sts, CREATED)[:2] == ["echo", "2/2"]
    assert [c["name"] for c in tables.DAEMONSET_COLUMNS][:8] == [
        "Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age"
    ]  # fmt: skip


def test_format_selector() -> None:
    sel = {"matchLabels": {"b": "2", "a": "1"},
           "matchExpressions": [{"key": "c", "operator": "In", "values": ["x", "y"]},
                                {"key": "d", "operator": "DoesNotExist"}]}  # fmt: skip
    assert tables.format_selector(sel) == "a=1,b=2,c in (x,y),!d"
    assert tables.format_selector(None) == "<none>"


def test_events_of_pods(view: LabView) -> None:
    events = view.events()
    net_tools = [e for e in events if e["involvedObject"]["name"] == "net-tools"]
    assert [e["reason"] for e in net_tools] == ["Scheduled", "AddedInterface", "AddedInterface"]
    assert (
        net_tools[0]["message"]
        == "Successfully assigned multus-network-attachments/net-tools to multi-homed-wrk-1"
    )
    assert net_tools[1]["message"] == "Add eth0 [10.42.9.2/32] from k8s-pod-network"
    assert net_tools[2]["message"] == "Add net1 [172.16.50.9/24] from x/y"
    stuck = [e for e in events if e["reason"] == "FailedCreatePodSandBox"]
    assert len(stuck) == 3 and all(e["type"] == "Warning" for e in stuck)
    assert stuck[0]["message"].endswith(
        'plugin type="multus" name="multus-cni-network" failed (add): boom'
    )
    row = tables.event_row(stuck[0], CREATED + 61)
    assert row[:4] == [
        "61s",
        "Warning",
        "FailedCreatePodSandBox",
        f"pod/{stuck[0]['involvedObject']['name']}",
    ]
    assert row[5] == f"kubelet, {stuck[0]['source']['host']}"
    match = field_selector(
        "involvedObject.name=net-tools,involvedObject.namespace=multus-network-attachments",
        "events",
    )
    assert sum(1 for e in events if match(e)) == 3
    assert len({e["metadata"]["name"] for e in events}) == len(events)


def test_network_status_text_follows_the_entries_across_readings() -> None:
    """The annotation's text is kept across readings by the entries it says: a reading where
    a pod's lease changed says the new address, byte for byte as Multus would."""
    plan = build_plan(load_lab(None))
    status = _status(plan)
    first = LabView(status, json.loads(plan.to_json()), "1")
    again = json.loads(json.dumps(status))
    built = next(p for p in again["pods"] if p["name"] == "net-tools")
    built["network_status"][1]["ips"] = ["172.16.50.77"]
    second = LabView(again, json.loads(plan.to_json()), "2")
    texts = []
    for reading in (first, second):
        pod = next(p for p in reading.pods() if p["metadata"]["name"] == "net-tools")
        texts.append(pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"])
    assert texts[0] == format_network_status(
        next(p for p in status["pods"] if p["name"] == "net-tools")["network_status"]
    )
    assert texts[1] == format_network_status(built["network_status"])
    assert "172.16.50.77" in texts[1] and "172.16.50.77" not in texts[0]


def test_server_imports_aiohttp_without_the_system_ca_bundle_and_restores_the_env() -> None:
    """aiohttp builds a verified client context at import: in the API server (it makes no
    client connection) that context gets an empty trust store, and the environment the
    server's commands inherit is the one it was given (a variable unset stays unset)."""
    import os
    import subprocess
    import sys

    probe = (
        "import os, sys\n"
        "from multihome.kube.__main__ import _import_aiohttp\n"
        "assert 'aiohttp' not in sys.modules\n"
        "_import_aiohttp()\n"
        "import aiohttp.connector as c\n"
        "print(c._SSL_CONTEXT_VERIFIED.cert_store_stats()['x509'],"
        " os.environ.get('SSL_CERT_FILE'), os.environ.get('SSL_CERT_DIR'))\n"
        "import ssl; print(ssl.create_default_context().cert_store_stats()['x509'] > 0)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("SSL_CERT_FILE", "SSL_CERT_DIR")}
    env["SSL_CERT_FILE"] = "/etc/ssl/certs/ca-certificates.crt"
    if not os.path.exists(env["SSL_CERT_FILE"]):
        pytest.skip("no system CA bundle at /etc/ssl/certs/ca-certificates.crt")
    out = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    assert out[0] == "0 /etc/ssl/certs/ca-certificates.crt None"
    assert out[1] == "True"  # later contexts of the process see the system's CAs again
