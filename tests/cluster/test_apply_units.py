"""``multihome apply``'s pure parts: the dependency order, the per-object diff, the Canal
refusal judged from the nodes' flannel annotations, and which rendered files go through the
API (no cluster)."""

from __future__ import annotations

from typing import Any

from multihome.cluster.apply import (
    STEPS,
    Wanted,
    canal_refusal,
    diff,
    ordered,
    shown,
)
from multihome.plan import build_plan
from multihome.render import render_in_memory
from multihome.render.apiset import api_objects, off_api
from multihome.spec import load_lab


def _obj(api: str, kind: str, name: str, ns: str | None = "default") -> Wanted:
    meta: dict[str, Any] = {"name": name}
    if ns is not None:
        meta["namespace"] = ns
    return Wanted({"apiVersion": api, "kind": kind, "metadata": meta})


def test_order_namespaces_then_custom_resources_then_settings_then_workloads() -> None:
    daemon = _obj("apps/v1", "DaemonSet", "dhcp", "kube-system")
    daemon.body["spec"] = {"template": {"spec": {"hostNetwork": True}}}
    given = [
        _obj("v1", "Pod", "p"),
        _obj("apps/v1", "DaemonSet", "app"),
        daemon,
        _obj("apps/v1", "Deployment", "d"),
        _obj("longhorn.io/v1beta2", "Setting", "storage-network", "longhorn-system"),
        _obj("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition", "n1"),
        _obj("helm.cattle.io/v1", "HelmChartConfig", "rke2-canal", "kube-system"),
        _obj("v1", "Namespace", "ns", None),
        _obj("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition", "n0"),
    ]
    names = [w.name for w in ordered(given)]
    assert names == ["ns", "n1", "rke2-canal", "n0", "storage-network", "dhcp", "p", "app", "d"]
    assert STEPS[ordered(given)[0].step] == "namespaces"
    # a host-network DaemonSet (a node daemon such as the CNI dhcp daemon) goes before the pods
    assert STEPS[daemon.step] == "node daemons" and STEPS[given[1].step] == "workloads"


def test_the_seeds_objects_in_apply_order_and_what_is_not_applied() -> None:
    rendering = render_in_memory(load_lab(None))
    wanted = ordered([Wanted(o.body, o.source) for o in api_objects(rendering)])
    assert [w.label() for w in wanted] == [
        "Namespace multus-network-attachments",
        "NetworkAttachmentDefinition multus-network-attachments/macvlan-longhorn-dhcp",
        "NetworkAttachmentDefinition multus-network-attachments/macvlan-private-dhcp",
        "HelmChartConfig kube-system/rke2-canal",
        "Setting longhorn-system/storage-network",
        "DaemonSet kube-system/multihome-cni-dhcp",
        "Pod multus-network-attachments/net-tools",
    ]
    off = {o.rendered for o in off_api(rendering)}
    assert "nodes/<node>/etc/rancher/rke2/config.yaml" in off
    assert "nodes/<node>/etc/netplan/60-multihome.yaml" in off
    # the dhcp daemon's DaemonSet goes through the API (render also writes it for the
    # servers' manifests directory, whose objects RKE2 applies through the same API)
    assert not any("multihome-cni-dhcp" in o for o in off)
    assert any("DHCP server of vlan50" in o.what for o in off_api(rendering))


def test_diff_ignores_status_and_server_metadata() -> None:
    live = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": "a", "uid": "u", "resourceVersion": "7", "managedFields": [{}]},
        "status": {"phase": "Active"},
    }
    after = {**live, "metadata": {**live["metadata"], "resourceVersion": "8"}}
    assert diff("Namespace a", live, after) == ("unchanged", "")
    assert shown(live) == {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "a"}}
    labelled = {**after, "metadata": {**after["metadata"], "labels": {"x": "y"}}}
    action, text = diff("Namespace a", live, labelled)
    assert action == "changed"
    assert "+  labels:\n" in text and "+    x: y\n" in text and "--- Namespace a (cluster)" in text
    action, text = diff("Namespace a", None, live)
    assert action == "created" and "+kind: Namespace\n" in text and "status" not in text


def _node(name: str, public_ip: str | None) -> dict[str, Any]:
    annotations = {} if public_ip is None else {"flannel.alpha.coreos.com/public-ip": public_ip}
    return {"metadata": {"name": name, "annotations": annotations}}


def test_canal_refusal_names_each_node_whose_nic_would_move() -> None:
    plan = build_plan(load_lab(None))
    rendering = render_in_memory(load_lab(None))
    wanted = [Wanted(o.body, o.source) for o in api_objects(rendering)]
    same = [_node(n.name, str(n.node_ip)) for n in plan.nodes]
    assert canal_refusal(plan, wanted, same) is None  # the seed pins Canal to ens192
    moved = [*same[:3], _node("multi-homed-wrk-1", "172.16.50.40"), *same[4:]]
    found = canal_refusal(plan, wanted, moved)
    assert found is not None
    assert (
        "on 1 node(s): multi-homed-wrk-1: the NIC with 172.16.50.40 -> ens192 (172.16.40.47)"
        in found.what
    )
    assert "pod traffic between nodes" in found.disrupts
    # a node without the annotation (flannel not up yet) is not judged
    assert canal_refusal(plan, wanted, [_node("multi-homed-wrk-1", None)]) is None


def _client(answers: dict[str, tuple[int, dict[str, Any]]], seen: list[Any] | None = None) -> Any:
    """A lightkube client whose cluster answers ``answers`` by ``METHOD path`` or path
    (anything else: 500); ``seen`` gets every request."""
    import httpx2
    from lightkube import Client, KubeConfig

    def handle(request: httpx2.Request) -> httpx2.Response:
        if seen is not None:
            seen.append(request)
        key = f"{request.method} {request.url.path}"
        code, body = answers.get(key, answers.get(request.url.path, (500, {"code": 500})))
        return httpx2.Response(code, json=body)

    config = KubeConfig.from_dict(
        {
            "clusters": [{"name": "c", "cluster": {"server": "http://cluster.invalid"}}],
            "users": [{"name": "u", "user": {"token": "not-a-secret"}}],
            "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
            "current-context": "x",
        }
    )
    return Client(config, transport=httpx2.MockTransport(handle))


VOLUMES = "/apis/longhorn.io/v1beta2/volumes"
NOT_SERVED = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 404,
              "reason": "NotFound", "message": "the server could not find the requested resource"}  # fmt: skip


def _volumes_client(answer: tuple[int, dict[str, Any]]) -> Any:
    return _client({VOLUMES: answer})


def _volume(name: str, state: str, node: str) -> dict[str, Any]:
    # the fields of longhorn-manager's VolumeStatus (k8s/pkg/apis/longhorn/v1beta2/volume.go)
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "Volume",
        "metadata": {"name": name, "namespace": "longhorn-system"},
        "spec": {"numberOfReplicas": 3},
        "status": {"state": state, "currentNodeID": node},
    }


def test_a_storage_network_change_is_refused_while_volumes_are_attached() -> None:
    from multihome.cluster.apply import storage_refusal

    setting = Wanted(
        {
            "apiVersion": "longhorn.io/v1beta2",
            "kind": "Setting",
            "metadata": {"name": "storage-network", "namespace": "longhorn-system"},
            "value": "multus-network-attachments/new",
        }
    )
    before: dict[str, dict[str, Any] | None] = {setting.label(): {"value": "ns/old"}}
    volumes = {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "VolumeList",
        "metadata": {"resourceVersion": "1"},
        "items": [
            _volume("pvc-1", "attached", "multi-homed-wrk-1"),
            _volume("pvc-2", "detached", ""),
        ],
    }
    refusal, note = storage_refusal(_volumes_client((200, volumes)), [setting], before)
    assert note is None and refusal is not None
    assert "from 'ns/old' to 'multus-network-attachments/new' while 1 volume(s)" in refusal.what
    assert "pvc-1 on multi-homed-wrk-1" in refusal.what and "pvc-2" not in refusal.what
    assert "detach every volume first" in refusal.disrupts
    volumes["items"] = [_volume("pvc-2", "detached", "")]
    assert storage_refusal(_volumes_client((200, volumes)), [setting], before) == (None, None)
    refusal, note = storage_refusal(_volumes_client((404, NOT_SERVED)), [setting], before)
    assert refusal is None and note is not None
    assert "could not be checked (the cluster does not serve volumes.longhorn.io)" in note
    same: dict[str, dict[str, Any] | None] = {setting.label(): {"value": setting.body["value"]}}
    assert storage_refusal(_volumes_client((500, {})), [setting], same) == (None, None)


def test_a_cluster_without_multus_crd_is_a_clear_error_before_anything_is_applied() -> None:
    import pytest

    from multihome.cluster.apply import ApplyError, run

    rendering = render_in_memory(load_lab(None))
    wanted = [Wanted(o.body, o.source) for o in api_objects(rendering)]
    empty = {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": []}
    client = _client(
        {
            "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions": (404, NOT_SERVED),
            "/apis/helm.cattle.io/v1/helmchartconfigs": (200, empty),
            "/apis/longhorn.io/v1beta2/settings": (200, empty),
        }
    )
    with pytest.raises(ApplyError) as caught:
        run(rendering.plan, wanted, client, dry_run=True)
    assert str(caught.value) == (
        "the cluster does not serve network-attachment-definitions.k8s.cni.cncf.io: Multus's "
        "CRD is missing (RKE2 installs it when the servers' config.yaml has cni: [multus, "
        "canal]); nothing was applied"
    )
    assert caught.value.code == 2


def test_waiting_gives_up_at_the_timeout_saying_what_each_pod_does() -> None:
    from multihome.cluster.apply import wait_ready

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "net-tools", "namespace": "multus-network-attachments"},
        "spec": {"containers": [{"name": "c", "image": "ubuntu"}]},
        "status": {
            "phase": "Pending",
            "conditions": [{"type": "Ready", "status": "False"}],
            "containerStatuses": [
                {"name": "c", "image": "ubuntu", "imageID": "", "ready": False,
                 "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}
            ],
        },
    }  # fmt: skip
    client = _client({"/api/v1/namespaces/multus-network-attachments/pods/net-tools": (200, pod)})
    wanted = [Wanted(pod)]
    said: list[str] = []
    left = wait_ready(client, wanted, timeout=0.3, say=said.append, interval=0.1)
    assert left == {"Pod multus-network-attachments/net-tools": "ContainerCreating"}
    assert len(said) == 1  # a line only when something changes
    assert (
        "0/1 ready; waiting for Pod multus-network-attachments/net-tools (ContainerCreating)"
        in (said[0])
    )
    pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
    said.clear()
    assert wait_ready(client, wanted, timeout=5, say=said.append) == {}
    assert said[0].endswith("1/1 ready")


def test_a_pod_the_server_cannot_change_says_to_make_it_anew() -> None:
    from multihome.cluster.apply import run

    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "net-tools", "namespace": "multus-network-attachments"},
        "spec": {"containers": [{"name": "c", "image": "ubuntu", "command": ["sleep", "1"]}]},
    }
    path = "/api/v1/namespaces/multus-network-attachments/pods/net-tools"
    # the API server's answer to a pod update that changes more than it may (pods' validation)
    forbidden = {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 422,
        "reason": "Invalid",
        "message": 'Pod "net-tools" is invalid: spec: Forbidden: pod updates may not change '
                   "fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
                   "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing "
                   "tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 "
                   "if it was previously negative)",
    }  # fmt: skip
    nodes = {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": []}
    client = _client(
        {
            f"GET {path}": (200, {**pod, "spec": {"containers": [{"name": "c", "image": "x"}]}}),
            f"PATCH {path}": (422, forbidden),
            "/api/v1/nodes": (200, nodes),
        }
    )
    plan = build_plan(load_lab(None))
    result = run(plan, [Wanted(pod)], client)
    (outcome,) = result.outcomes
    assert outcome.action == "failed" and not result.ok
    assert outcome.note.startswith('Pod "net-tools" is invalid: spec: Forbidden')
    assert outcome.note.endswith(
        "(a pod's spec can't change: kubectl -n multus-network-attachments delete pod "
        "net-tools, then apply again)"
    )


def test_credentials_that_may_not_patch_are_exit_2_naming_the_verb() -> None:
    import pytest

    from multihome.cluster import ClusterError
    from multihome.cluster.apply import run

    ns = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "tools"}}
    forbidden = {
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403,
        "reason": "Forbidden",
        "message": 'namespaces "tools" is forbidden: User "viewer" cannot patch resource '
                   '"namespaces" in API group "" at the cluster scope',
    }  # fmt: skip
    nodes = {"kind": "NodeList", "apiVersion": "v1", "metadata": {}, "items": []}
    client = _client(
        {
            "GET /api/v1/namespaces/tools": (404, NOT_SERVED),
            "PATCH /api/v1/namespaces/tools": (403, forbidden),
            "/api/v1/nodes": (200, nodes),
        }
    )
    with pytest.raises(ClusterError) as caught:
        run(build_plan(load_lab(None)), [Wanted(ns)], client)
    assert caught.value.code == 2
    assert str(caught.value).startswith("not allowed to apply Namespace tools (403 Forbidden)")


def test_each_object_is_one_server_side_apply_by_multihome_force_only_when_asked() -> None:
    from multihome.cluster.apply import run

    rendering = render_in_memory(load_lab(None))
    wanted = [Wanted(o.body, o.source) for o in api_objects(rendering)]
    hcc = next(w for w in wanted if w.kind == "HelmChartConfig")
    path = "/apis/helm.cattle.io/v1/namespaces/kube-system/helmchartconfigs/rke2-canal"
    empty = {"kind": "List", "apiVersion": "v1", "metadata": {}, "items": []}
    applied = {**hcc.body, "metadata": {**hcc.body["metadata"], "uid": "u1"}}
    answers = {
        "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions": (200, empty),
        "/apis/helm.cattle.io/v1/helmchartconfigs": (200, empty),
        "/apis/longhorn.io/v1beta2/settings": (200, empty),
        "/api/v1/nodes": (200, {**empty, "kind": "NodeList"}),
        f"GET {path}": (404, NOT_SERVED),
        f"PATCH {path}": (200, applied),
    }
    for force, dry_run in ((False, True), (True, False)):
        seen: list[Any] = []
        result = run(rendering.plan, [hcc], _client(answers, seen), dry_run=dry_run, force=force)
        (outcome,) = result.outcomes
        assert outcome.action == "created", outcome
        assert "+  valuesContent:" in outcome.diff and "iface: ens192" in outcome.diff
        (patch,) = [r for r in seen if r.method == "PATCH"]
        assert patch.headers["content-type"] == "application/apply-patch+yaml"
        query = dict(patch.url.params)
        assert query["fieldManager"] == "multihome"
        assert query.get("force") == ("true" if force else None)
        assert query.get("dryRun") == ("All" if dry_run else None)


def test_a_workload_is_ready_once_its_controller_rolled_the_applied_generation_out() -> None:
    """As kubectl rollout status judges it: Ready counts of an older generation (a rolling
    update not started, a DaemonSet whose controller has not counted its nodes yet) are not
    the applied spec's."""
    from multihome.cluster.apply import _workload_ready

    ds: dict[str, Any] = {"metadata": {"name": "d", "generation": 2}, "status": {}}
    assert _workload_ready("DaemonSet", ds) == (
        False, "generation 2 not seen by its controller yet"
    )  # fmt: skip
    ds["status"] = {"observedGeneration": 1, "desiredNumberScheduled": 3, "numberReady": 3,
                    "updatedNumberScheduled": 3}  # fmt: skip
    assert _workload_ready("DaemonSet", ds)[0] is False  # the old pods, all Ready
    ds["status"].update(observedGeneration=2, updatedNumberScheduled=1)
    assert _workload_ready("DaemonSet", ds) == (False, "1/3 updated")
    ds["status"].update(updatedNumberScheduled=3, numberReady=2)
    assert _workload_ready("DaemonSet", ds) == (False, "2/3 ready")
    ds["status"].update(numberReady=3)
    assert _workload_ready("DaemonSet", ds) == (True, "3/3 ready")
    deploy = {"metadata": {"generation": 1}, "spec": {"replicas": 2},
              "status": {"observedGeneration": 1, "updatedReplicas": 2, "readyReplicas": 2}}  # fmt: skip
    assert _workload_ready("Deployment", deploy) == (True, "2/2 ready")
    deploy["status"]["updatedReplicas"] = 1
    assert _workload_ready("Deployment", deploy) == (False, "1/2 updated")
