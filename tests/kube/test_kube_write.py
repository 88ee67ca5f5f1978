"""Writes through the lab's API with a real kubectl (a 1.32 client) and lightkube against an
up of the seed: a created pod is attached for real (its net1 address in the kernel, its DHCP
lease) and a deleted one detached with its lease released; client-side and server-side apply
(managedFields, conflicts, --force-conflicts), every patch type, dry runs, namespaces and
workloads, and bad input answered with the API server's Status (root only)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from labkit import sandbox_unavailable_reason

from multihome.kube import kubeconfig_path
from multihome.lab import api
from multihome.lab.state import LabState
from multihome.spec import load_lab

KUBECTL = shutil.which("kubectl")
NS = "multus-network-attachments"
NAD = "macvlan-private-dhcp"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="up of the seed runs as root here"),
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (make test installs it)"),
    pytest.mark.skipif(not os.path.isdir("/usr/lib/cni"), reason="containernetworking-plugins"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq"), reason="dnsmasq-base missing"),
]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    reason = sandbox_unavailable_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("kubewrite")
    home = tmp_path_factory.mktemp("kubewritehome")
    old = os.environ.get("MULTIHOME_STATE_DIR")
    os.environ["MULTIHOME_STATE_DIR"] = str(root)
    try:
        status = api.up(load_lab(None))
        info = {"status": status, "kubeconfig": kubeconfig_path(), "home": home,
                "dir": LabState("multi-homed").dir}  # fmt: skip
        # kubectl validates against /openapi/v2 where the server has it (served by kube/openapi)
        info["validate"] = [] if raw(info, "GET", "/openapi/v2")[0] == 200 else ["--validate=false"]
        yield info
    finally:
        api.down("multi-homed")
        if old is None:
            os.environ.pop("MULTIHOME_STATE_DIR", None)
        else:
            os.environ["MULTIHOME_STATE_DIR"] = old


def kubectl(
    lab: dict[str, Any], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    assert KUBECTL is not None
    env = {"PATH": os.environ["PATH"], "HOME": str(lab["home"])}
    return subprocess.run(
        [KUBECTL, "--kubeconfig", str(lab["kubeconfig"]), "--cache-dir", str(lab["home"] / "cache"), *args],
        capture_output=True, text=True, env=env, input=stdin, timeout=120, check=False,
    )  # fmt: skip


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def raw(
    lab: dict[str, Any],
    method: str,
    path: str,
    body: bytes | None = None,
    ctype: str = "application/json",
) -> tuple[int, Any]:
    doc = yaml.safe_load(Path(lab["kubeconfig"]).read_text())
    cluster = doc["clusters"][0]["cluster"]
    ctx = ssl.create_default_context(
        cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
    )
    req = urllib.request.Request(cluster["server"] + path, data=body, method=method)
    req.add_header("Authorization", f"Bearer {doc['users'][0]['user']['token']}")
    if body is not None:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=60) as resp:
            data = resp.read()
            code = resp.status
    except urllib.error.HTTPError as exc:
        data, code = exc.read(), exc.code
    try:
        return code, json.loads(data)
    except ValueError:
        return code, data


def pod_yaml(name: str, image: str = "praqma/network-multitool", ns: str = NS) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": ns,
                "annotations": {"k8s.v1.cni.cncf.io/networks": f"{NS}/{NAD}"},
            },
            "spec": {"containers": [{"name": "tools", "image": image}]},
        }
    )


def net1(name: str, ns: str = NS) -> str:
    """The pod's net1 address as the kernel has it (``ip`` run in the pod's namespace)."""
    argv = api.exec_argv(f"{ns}/{name}", ["ip", "-j", "-4", "addr", "show", "dev", "net1"])
    out = subprocess.run(argv, capture_output=True, text=True, timeout=30, check=True).stdout
    return str(json.loads(out)[0]["addr_info"][0]["local"])


def leases(lab: dict[str, Any]) -> str:
    return "".join(p.read_text() for p in Path(lab["dir"]).glob("dnsmasq-*.leases"))


def until(check: Any, timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def running_pods(ns: str) -> set[str]:
    return {
        p["name"]
        for p in api.status()["pods"]
        if p["namespace"] == ns and p.get("phase", "Running") == "Running"
    }


def test_create_attaches_for_real_and_delete_releases(lab: dict[str, Any]) -> None:
    out = ok(kubectl(lab, "create", *lab["validate"], "-f", "-", stdin=pod_yaml("tools-a")))
    assert out.strip() == "pod/tools-a created"
    first = json.loads(ok(kubectl(lab, "get", "pod", "-n", NS, "tools-a", "-o", "json")))
    ok(kubectl(lab, "wait", "-n", NS, "--for=condition=Ready", "pod/tools-a", "--timeout=90s"))
    pod = json.loads(ok(kubectl(lab, "get", "pod", "-n", NS, "tools-a", "-o", "json")))
    assert pod["status"]["phase"] == "Running"
    for field in ("uid", "creationTimestamp"):  # kept from the create on
        assert pod["metadata"][field] == first["metadata"][field]
    assert int(pod["metadata"]["resourceVersion"]) >= int(first["metadata"]["resourceVersion"])
    address = net1("tools-a")
    assert address.startswith("172.16.60.")
    status = json.loads(pod["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"])
    assert status[1]["interface"] == "net1" and status[1]["ips"] == [address]
    assert f" {address} " in leases(lab)
    done = kubectl(lab, "delete", "pod", "-n", NS, "tools-a", "--wait", "--timeout=90s")
    assert done.returncode == 0 and 'pod "tools-a" deleted' in done.stdout
    gone = kubectl(lab, "get", "pod", "-n", NS, "tools-a")
    assert gone.stderr.strip() == 'Error from server (NotFound): pods "tools-a" not found'
    assert "tools-a" not in {p["name"] for p in api.status()["pods"]}
    assert f" {address} " not in leases(lab)  # the lease was released (DHCP release on DEL)
    assert "net-tools" in running_pods(NS)  # the rest of the lab is untouched


def test_client_side_apply_of_a_pod_and_a_nad(lab: dict[str, Any]) -> None:
    nad = json.loads(ok(kubectl(lab, "get", "net-attach-def", "-n", NS, NAD, "-o", "json")))
    extra = {
        "apiVersion": "k8s.cni.cncf.io/v1",
        "kind": "NetworkAttachmentDefinition",
        "metadata": {"name": "macvlan-extra", "namespace": NS, "labels": {"tier": "one"}},
        "spec": {"config": nad["spec"]["config"]},
    }
    apply = ("apply", *lab["validate"], "-f", "-")
    out = ok(kubectl(lab, *apply, stdin=yaml.safe_dump(extra)))
    assert "macvlan-extra created" in out
    extra["metadata"]["labels"] = {"tier": "two"}  # type: ignore[index]
    out = ok(kubectl(lab, *apply, stdin=yaml.safe_dump(extra)))
    assert "macvlan-extra configured" in out
    got = json.loads(
        ok(kubectl(lab, "get", "net-attach-def", "-n", NS, "macvlan-extra", "-o", "json"))
    )
    assert got["metadata"]["labels"] == {"tier": "two"}
    assert got["metadata"]["generation"] == 1  # labels are not the spec
    assert "kubectl.kubernetes.io/last-applied-configuration" in got["metadata"]["annotations"]
    ok(kubectl(lab, *apply, stdin=pod_yaml("tools-c")))
    ok(kubectl(lab, "wait", "-n", NS, "--for=condition=Ready", "pod/tools-c", "--timeout=90s"))
    out = ok(kubectl(lab, *apply, stdin=pod_yaml("tools-c", image="busybox")))
    assert "pod/tools-c configured" in out
    image = ok(kubectl(lab, "get", "pod", "-n", NS, "tools-c", "-o",
                       "jsonpath={.spec.containers[0].image}"))  # fmt: skip
    assert image == "busybox"
    ok(kubectl(lab, "delete", "pod", "-n", NS, "tools-c", "--wait", "--timeout=90s"))
    ok(kubectl(lab, "delete", "net-attach-def", "-n", NS, "macvlan-extra", "--wait"))
    assert "tools-c" not in {p["name"] for p in api.status()["pods"]}


def test_server_side_apply_owns_fields_and_conflicts(lab: dict[str, Any]) -> None:
    ssa = ("apply", "--server-side", *lab["validate"], "-f", "-")
    assert "pod/tools-s serverside-applied" in ok(kubectl(lab, *ssa, stdin=pod_yaml("tools-s")))
    pod = json.loads(ok(kubectl(lab, "get", "pod", "-n", NS, "tools-s", "-o", "json",
                                "--show-managed-fields")))  # fmt: skip
    (entry,) = pod["metadata"]["managedFields"]
    assert (entry["manager"], entry["operation"], entry["fieldsType"]) == (
        "kubectl", "Apply", "FieldsV1",
    )  # fmt: skip
    assert entry["fieldsV1"]["f:spec"]["f:containers"] == {
        'k:{"name":"tools"}': {".": {}, "f:image": {}, "f:name": {}}
    }
    ok(kubectl(lab, "patch", "pod", "-n", NS, "tools-s", "-p",
               '{"spec":{"containers":[{"name":"tools","image":"busybox"}]}}'))  # fmt: skip
    done = kubectl(lab, *ssa, stdin=pod_yaml("tools-s", image="nginx"))
    assert done.returncode == 1
    assert ('Apply failed with 1 conflict: conflict with "kubectl-patch" using v1: '
            '.spec.containers[name="tools"].image') in done.stderr  # fmt: skip
    code, body = raw(lab, "PATCH", f"/api/v1/namespaces/{NS}/pods/tools-s?fieldManager=kubectl",
                     pod_yaml("tools-s", image="nginx").encode(),
                     "application/apply-patch+yaml")  # fmt: skip
    assert (code, body["reason"]) == (409, "Conflict")
    assert body["details"]["causes"] == [
        {"reason": "FieldManagerConflict", "message": 'conflict with "kubectl-patch" using v1',
         "field": '.spec.containers[name="tools"].image'}
    ]  # fmt: skip
    ok(kubectl(lab, *ssa[:2], "--force-conflicts", *ssa[2:], stdin=pod_yaml("tools-s", "nginx")))
    pod = json.loads(ok(kubectl(lab, "get", "pod", "-n", NS, "tools-s", "-o", "json",
                                "--show-managed-fields")))  # fmt: skip
    assert pod["spec"]["containers"][0]["image"] == "nginx"
    owners = {e["manager"]: e["fieldsV1"] for e in pod["metadata"]["managedFields"]}
    assert "f:image" in json.dumps(owners["kubectl"])
    assert "f:image" not in json.dumps(owners.get("kubectl-patch", {}))
    ok(kubectl(lab, "delete", "pod", "-n", NS, "tools-s", "--wait", "--timeout=90s"))


def test_every_patch_type(lab: dict[str, Any]) -> None:
    ok(kubectl(lab, "create", *lab["validate"], "-f", "-", stdin=pod_yaml("tools-p")))
    pod = ("patch", "pod", "-n", NS, "tools-p")
    ok(kubectl(lab, *pod, "--type=merge", "-p", '{"metadata":{"labels":{"a":"1"}}}'))
    ok(kubectl(lab, *pod, "--type=json", "-p",
               '[{"op":"add","path":"/metadata/labels/b","value":"2"}]'))  # fmt: skip
    ok(kubectl(lab, *pod, "--type=strategic", "-p",
               '{"spec":{"containers":[{"name":"tools","image":"busybox"}]}}'))  # fmt: skip
    # as a kubelet, the lab then reports the new image in the pod's status (a new
    # resourceVersion): the PUT below reads the pod once that is done, or it races it
    ok(kubectl(lab, "wait", "-n", NS, "--for=jsonpath={.status.containerStatuses[0].image}=busybox",
               "pod/tools-p", "--timeout=90s"))  # fmt: skip
    got = json.loads(ok(kubectl(lab, "get", "pod", "-n", NS, "tools-p", "-o", "json")))
    assert got["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert got["spec"]["containers"] == [{"name": "tools", "image": "busybox"}]
    got["metadata"]["labels"]["c"] = "3"  # replace: a PUT with the resourceVersion read
    out = ok(kubectl(lab, "replace", *lab["validate"], "-f", "-", stdin=json.dumps(got)))
    assert out.strip() == "pod/tools-p replaced"
    done = kubectl(lab, "replace", *lab["validate"], "-f", "-", stdin=json.dumps(got))
    assert done.returncode == 1 and "the object has been modified" in done.stderr
    done = kubectl(
        lab, *pod, "--type=json", "-p", '[{"op":"test","path":"/metadata/name","value":"x"}]'
    )
    assert done.returncode == 1 and done.stderr.startswith("The request is invalid: ")
    assert "tools-p is not equal to tested value x" in done.stderr
    nad = ("patch", "net-attach-def", "-n", NS, NAD)
    ok(kubectl(lab, *nad, "--type=merge", "-p", '{"metadata":{"labels":{"seen":"yes"}}}'))
    done = kubectl(lab, *nad, "-p", '{"metadata":{"labels":{"seen":"no"}}}')  # strategic: a CRD
    assert done.returncode == 1
    assert ("application/strategic-merge-patch+json is not supported by k8s.cni.cncf.io/v1, "
            "Kind=NetworkAttachmentDefinition") in done.stderr  # fmt: skip
    labels = ok(kubectl(lab, "get", "net-attach-def", "-n", NS, NAD, "-o",
                        "jsonpath={.metadata.labels.seen}"))  # fmt: skip
    assert labels == "yes"
    ok(kubectl(lab, "delete", "pod", "-n", NS, "tools-p", "--wait", "--timeout=90s"))


def test_dry_run_changes_nothing(lab: dict[str, Any]) -> None:
    design = (Path(lab["dir"]) / "design.yaml").read_bytes()
    out = ok(kubectl(lab, "create", *lab["validate"], "--dry-run=server", "-o", "json", "-f", "-",
                     stdin=pod_yaml("tools-d")))  # fmt: skip
    assert json.loads(out)["metadata"]["name"] == "tools-d"
    done = kubectl(lab, "get", "pod", "-n", NS, "tools-d")
    assert "NotFound" in done.stderr
    assert (Path(lab["dir"]) / "design.yaml").read_bytes() == design
    ok(kubectl(lab, "create", *lab["validate"], "-f", "-", stdin=pod_yaml("tools-d")))
    ok(kubectl(lab, "wait", "-n", NS, "--for=condition=Ready", "pod/tools-d", "--timeout=90s"))
    design = (Path(lab["dir"]) / "design.yaml").read_bytes()
    out = ok(kubectl(lab, "delete", "pod", "-n", NS, "tools-d", "--dry-run=server"))
    assert out.strip() == 'pod "tools-d" deleted (server dry run)'
    assert (Path(lab["dir"]) / "design.yaml").read_bytes() == design
    assert "tools-d" in running_pods(NS)
    ok(kubectl(lab, "delete", "pod", "-n", NS, "tools-d", "--wait", "--timeout=90s"))
    # the lab's expect names net-tools: deleting it would leave the design invalid
    done = kubectl(lab, "delete", "pod", "-n", NS, "net-tools", "--dry-run=server")
    assert done.returncode == 1
    assert done.stderr.startswith('The Pod "net-tools" is invalid: Lab multi-homed spec.expect[')
    assert "is not a pod (namespace/name), node or host" in done.stderr


def test_bad_input_gets_the_api_servers_status(lab: dict[str, Any]) -> None:
    pods = f"/api/v1/namespaces/{NS}/pods"
    code, body = raw(lab, "POST", pods, b"{not json")
    assert (code, body["kind"], body["reason"]) == (400, "Status", "BadRequest")
    code, body = raw(lab, "POST", pods, json.dumps(yaml.safe_load(pod_yaml("net-tools"))).encode())
    assert (code, body["reason"], body["message"]) == (
        409, "AlreadyExists", 'pods "net-tools" already exists',
    )  # fmt: skip
    code, body = raw(lab, "PATCH", f"{pods}/nope", b"{}", "application/merge-patch+json")
    assert (code, body["reason"]) == (404, "NotFound")
    bad = yaml.safe_load(pod_yaml("tools-bad"))
    del bad["spec"]["containers"][0]["name"]
    done = kubectl(lab, "create", *lab["validate"], "-f", "-", stdin=yaml.safe_dump(bad))
    assert done.returncode == 1
    assert done.stderr.startswith('The Pod "tools-bad" is invalid: spec.containers[0]: ')
    code, body = raw(lab, "POST", pods, json.dumps(bad).encode())
    assert (code, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "spec.containers[0]"
    net_tools = raw(lab, "GET", f"{pods}/net-tools")[1]
    net_tools["metadata"]["resourceVersion"] = "1"
    code, body = raw(lab, "PUT", f"{pods}/net-tools", json.dumps(net_tools).encode())
    assert (code, body["reason"]) == (409, "Conflict")
    for deep in (b"[" * 100000 + b"]" * 100000, b"[" * 500 + b"]" * 500):
        code, body = raw(lab, "POST", pods, deep)
        assert (code, body["reason"]) == (400, "BadRequest")
    bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    code, body = raw(lab, "PATCH", f"{pods}/net-tools?fieldManager=x", bomb.encode(),
                     "application/apply-patch+yaml")  # fmt: skip
    assert (code, body["reason"]) == (400, "BadRequest")
    code, body = raw(lab, "POST", pods, b"{" + b" " * (2 * 1024 * 1024) + b"}")
    assert (code, body["reason"]) == (413, "RequestEntityTooLarge")
    code, body = raw(
        lab, "POST", "/api/v1/namespaces", b"k8s\x00\xff\xff", "application/vnd.kubernetes.protobuf"
    )
    assert (code, body["reason"]) == (415, "UnsupportedMediaType")
    done = kubectl(lab, "delete", "node", "multi-homed-wrk-1")
    assert done.returncode == 1 and "(MethodNotAllowed)" in done.stderr
    manager = next(p["name"] for p in api.status()["pods"] if p["namespace"] == "longhorn-system")
    done = kubectl(lab, "delete", "pod", "-n", "longhorn-system", manager)
    assert "(MethodNotAllowed)" in done.stderr and "Longhorn's instance manager" in done.stderr
    done = kubectl(lab, "delete", "namespace", "default")
    assert "(MethodNotAllowed)" in done.stderr
    assert raw(lab, "GET", "/version")[0] == 200  # still serving
    assert running_pods(NS) == {"net-tools"}  # nothing was half-applied


def test_namespace_deployment_statefulset_and_setting(lab: dict[str, Any]) -> None:
    assert ok(kubectl(lab, "create", "namespace", "team")).strip() == "namespace/team created"
    pod = yaml.safe_load(pod_yaml("x", ns="team"))
    # a pod template has no apiVersion/kind (kubectl's strict field validation refuses them)
    template = {
        "metadata": {"labels": {"app": "web"}, "annotations": pod["metadata"]["annotations"]},
        "spec": pod["spec"],
    }
    deploy = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "web", "namespace": "team"},
              "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                       "template": template}}  # fmt: skip
    sts = dict(deploy, kind="StatefulSet", metadata={"name": "db", "namespace": "team"})
    ok(kubectl(lab, "apply", *lab["validate"], "-f", "-", stdin=yaml.safe_dump_all([deploy, sts])))
    assert until(lambda: len(running_pods("team")) == 2), api.status()["pods"]
    names = running_pods("team")
    assert "db-0" in names and any(n.startswith("web-") for n in names)
    web = next(n for n in names if n.startswith("web-"))
    assert net1(web, "team").startswith("172.16.60.")
    done = kubectl(lab, "delete", "pod", "-n", "team", web)
    assert "run by Deployment web" in done.stderr
    ok(kubectl(lab, "patch", "deployment", "-n", "team", "web", "-p", '{"spec":{"replicas":2}}'))
    assert until(lambda: len(running_pods("team")) == 3)
    gen = ok(
        kubectl(lab, "get", "deploy", "-n", "team", "web", "-o", "jsonpath={.metadata.generation}")
    )
    assert gen == "2"
    # the lab reports the generation it runs: kubectl's rollout status waits for it
    done = ok(kubectl(lab, "rollout", "status", "deployment/web", "-n", "team", "--timeout=60s"))
    assert 'deployment "web" successfully rolled out' in done, done
    ok(kubectl(lab, "delete", "namespace", "team", "--wait=false"))
    terminating = ok(kubectl(lab, "get", "pods", "-n", "team", "--no-headers"))
    assert all(" Terminating " in line for line in terminating.splitlines()), terminating
    ok(kubectl(lab, "wait", "--for=delete", "namespace/team", "--timeout=90s"))
    assert not running_pods("team")
    setting = ("-n", "longhorn-system", "storage-network")
    ok(kubectl(lab, "label", "settings.longhorn.io", *setting, "checked=yes"))
    got = json.loads(ok(kubectl(lab, "get", "settings.longhorn.io", *setting, "-o", "json")))
    assert got["metadata"]["labels"] == {"checked": "yes"}
    assert got["value"] == f"{NS}/macvlan-longhorn-dhcp"


def test_metadata_is_kept_in_the_labs_dir(lab: dict[str, Any]) -> None:
    ok(kubectl(lab, "label", "pod", "-n", NS, "net-tools", "kept=yes"))
    first = json.loads(ok(kubectl(lab, "get", "pod", "-n", NS, "net-tools", "-o", "json")))
    listed = raw(lab, "GET", f"/api/v1/namespaces/{NS}/pods")[1]
    assert int(listed["metadata"]["resourceVersion"]) >= int(first["metadata"]["resourceVersion"])
    saved = json.loads((Path(lab["dir"]) / "api-objects.json").read_text())
    entry = saved["objects"][f"Pod/{NS}/net-tools"]
    assert entry["uid"] == first["metadata"]["uid"]
    assert entry["creationTimestamp"] == first["metadata"]["creationTimestamp"]
    assert until(lambda: "net-tools" in running_pods(NS))
    again = json.loads(ok(kubectl(lab, "get", "pod", "-n", NS, "net-tools", "-o", "json")))
    assert again["metadata"]["uid"] == first["metadata"]["uid"]


def test_lightkube_pod_and_nad(lab: dict[str, Any]) -> None:
    from lightkube import ApiError, Client, KubeConfig
    from lightkube.generic_resource import create_namespaced_resource
    from lightkube.models.core_v1 import Container, PodSpec
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Pod

    client = Client(KubeConfig.from_file(str(lab["kubeconfig"])), field_manager="lightkube-test")
    nad_type = create_namespaced_resource(
        "k8s.cni.cncf.io", "v1", "NetworkAttachmentDefinition", "network-attachment-definitions"
    )
    config = client.get(nad_type, NAD, namespace=NS)["spec"]["config"]
    nad = nad_type(metadata=ObjectMeta(name="lk-net", namespace=NS), spec={"config": config})
    created = client.create(nad)
    assert created.metadata.uid and created.metadata.name == "lk-net"
    meta = ObjectMeta(name="lk-pod", namespace=NS,
                      annotations={"k8s.v1.cni.cncf.io/networks": "lk-net"})  # fmt: skip
    pod = Pod(metadata=meta, spec=PodSpec(containers=[Container(name="c", image="busybox")]))
    client.create(pod)
    assert until(lambda: client.get(Pod, "lk-pod", namespace=NS).status.phase == "Running")
    assert net1("lk-pod").startswith("172.16.60.")
    pod.metadata.labels = {"via": "apply"}
    applied = client.apply(pod, force=True)
    assert applied.metadata.labels == {"via": "apply"}
    with pytest.raises(ApiError) as err:
        client.create(pod)
    assert err.value.status.code == 409 and err.value.status.reason == "AlreadyExists"
    client.delete(Pod, "lk-pod", namespace=NS)
    assert until(lambda: "lk-pod" not in {p["name"] for p in api.status()["pods"]})
    client.delete(nad_type, "lk-net", namespace=NS)
    with pytest.raises(ApiError) as err:
        until(lambda: client.get(nad_type, "lk-net", namespace=NS) and False, timeout=30)
    assert err.value.status.code == 404


def test_a_failing_pod_stays_creating_and_the_lab_goes_on(lab: dict[str, Any]) -> None:
    broken = pod_yaml("tools-f").replace(f"{NS}/{NAD}", f"{NS}/nope-nad")
    ok(kubectl(lab, "create", *lab["validate"], "-f", "-", stdin=broken))

    def phase() -> str:
        return ok(kubectl(lab, "get", "pod", "-n", NS, "tools-f", "-o",
                          "jsonpath={.status.containerStatuses[0].state.waiting.reason}"))  # fmt: skip

    assert until(lambda: phase() == "ContainerCreating")
    described = ok(kubectl(lab, "describe", "pod", "-n", NS, "tools-f"))
    assert "FailedCreatePodSandBox" in described and '"nope-nad" not found' in described
    ok(kubectl(lab, "create", *lab["validate"], "-f", "-", stdin=pod_yaml("tools-g")))
    ok(kubectl(lab, "wait", "-n", NS, "--for=condition=Ready", "pod/tools-g", "--timeout=90s"))
    for name in ("tools-f", "tools-g"):
        ok(kubectl(lab, "delete", "pod", "-n", NS, name, "--wait", "--timeout=90s"))
    assert {p["name"] for p in api.status()["pods"] if p["namespace"] == NS} == {"net-tools"}
    # the reconcile really removed them (a failed one keeps the old plan)
    assert {p.name for p in api.load_plan().pods if p.namespace == NS} == {"net-tools"}


def test_a_changed_file_and_the_api_share_the_design(lab: dict[str, Any]) -> None:
    from multihome.spec import load_lab_text

    design = (Path(lab["dir"]) / "design.yaml").read_text()
    grown = load_lab_text(design + "---\n" + pod_yaml("tools-file"), "grown.yaml")
    api.up(grown)  # what `multihome up grown.yaml` does to the running lab
    assert "tools-file" in (Path(lab["dir"]) / "design.yaml").read_text()
    phase = ok(kubectl(lab, "get", "pod", "-n", NS, "tools-file", "-o", "jsonpath={.status.phase}"))
    assert phase == "Running"
    ok(kubectl(lab, "delete", "pod", "-n", NS, "tools-file", "--wait", "--timeout=90s"))
    assert "tools-file" not in (Path(lab["dir"]) / "design.yaml").read_text()
    assert "tools-file" not in {p["name"] for p in api.status()["pods"]}


def test_down_while_a_write_is_reconciled(lab: dict[str, Any]) -> None:
    """Last: down waits for the lab's own reconcile, and nothing builds the lab again."""
    ok(kubectl(lab, "create", *lab["validate"], "-f", "-", stdin=pod_yaml("tools-z")))
    assert api.down("multi-homed") == ["multi-homed"]
    time.sleep(1.0)  # a reconcile that went on would have made the lab again by now
    assert not LabState("multi-homed").exists()
    ours = [
        pid
        for pid in os.listdir("/proc")
        if pid.isdigit() and str(lab["dir"]).encode() in _cmdline(pid)
    ]
    assert ours == []


def _cmdline(pid: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""
