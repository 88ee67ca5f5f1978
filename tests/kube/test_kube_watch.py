"""The lab's API beyond get, with a real kubectl (1.32) against an up of the workloads lab:
``kubectl get -w`` sees the pods a reconcile (``up FILE`` of a changed file) adds and removes,
list and watch resourceVersions agree, 410 Gone and 504 for versions out of range, bookmarks,
selectors and Tables over watch, the bound on open watches (429), ``kubectl wait``,
``kubectl explain`` and ``kubectl apply --dry-run=client`` from the served OpenAPI (no warning),
``kubectl logs`` of a pod's process, and ``kubeconfig --merge`` into a temp HOME that ``multihome
down`` undoes (root only)."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from labkit import sandbox_unavailable_reason

from multihome.kube import kubeconfig_path, watch
from multihome.lab import api
from multihome.spec import LabFile, load_lab_text

KUBECTL = shutil.which("kubectl")
LAB = Path(__file__).parent.parent / "lab" / "labs" / "workloads.yaml"
NS = "apps"
THREE = ("  replicas: 2\n  selector: {matchLabels: {app: web}}",
         "  replicas: 3\n  selector: {matchLabels: {app: web}}")  # fmt: skip

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="up of a lab runs as root here"),
    pytest.mark.skipif(KUBECTL is None, reason="kubectl is not installed (make test installs it)"),
    pytest.mark.skipif(not os.path.isdir("/usr/lib/cni"), reason="containernetworking-plugins"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq"), reason="dnsmasq-base missing"),
]


def _lab(*edits: tuple[str, str]) -> LabFile:
    text = LAB.read_text()
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return load_lab_text(text, "workloads.yaml", LAB.parent)


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    reason = sandbox_unavailable_reason()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("kubewatch")
    home = tmp_path_factory.mktemp("kubewatchhome")
    old = os.environ.get("MULTIHOME_STATE_DIR")
    os.environ["MULTIHOME_STATE_DIR"] = str(root)
    try:
        status = api.up(_lab())
        path = kubeconfig_path()
        doc = yaml.safe_load(path.read_text())
        yield {"status": status, "kubeconfig": path, "home": home, "root": root,
               "server": doc["clusters"][0]["cluster"]["server"],
               "token": doc["users"][0]["user"]["token"]}  # fmt: skip
    finally:
        api.down("workloads")
        if old is None:
            os.environ.pop("MULTIHOME_STATE_DIR", None)
        else:
            os.environ["MULTIHOME_STATE_DIR"] = old


def _env(lab: dict[str, Any]) -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "HOME": str(lab["home"])}


def _argv(lab: dict[str, Any], *args: str) -> list[str]:
    assert KUBECTL is not None
    return [KUBECTL, "--kubeconfig", str(lab["kubeconfig"]), "--cache-dir",
            str(lab["home"] / "cache"), *args]  # fmt: skip


def kubectl(
    lab: dict[str, Any], *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _argv(lab, *args), capture_output=True, text=True, env=_env(lab), input=stdin,
        timeout=60, check=False,
    )  # fmt: skip


def _ssl() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def http(lab: dict[str, Any], path: str, accept: str = "application/json") -> tuple[int, bytes]:
    req = urllib.request.Request(
        lab["server"] + path,
        headers={"Authorization": f"Bearer {lab['token']}", "Accept": accept},
    )
    try:
        with urllib.request.urlopen(req, context=_ssl(), timeout=30) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def events(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


class Lines:
    """A running kubectl's stdout, line by line, with a deadline to wait for one."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        self.proc = proc
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        assert proc.stdout is not None
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, *words: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.seen.append(line)
            if all(w in line.split() for w in words):
                return line
        raise AssertionError(f"no line with {words} in {self.seen}")


def test_get_w_sees_a_reconcile_add_and_remove_a_pod(lab: dict[str, Any]) -> None:
    args = ("get", "pods", "-n", NS, "-w", "-o", "wide", "--output-watch-events")
    proc = subprocess.Popen(_argv(lab, *args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=_env(lab))  # fmt: skip
    try:
        lines = Lines(proc)
        header = lines.wait_for("EVENT", "NAME", "READY", "STATUS", "IP", "NODE")
        assert header.split()[:3] == ["EVENT", "NAME", "READY"]
        lines.wait_for("ADDED", "web-1", "Running")
        status = api.up(_lab(THREE))
        assert status["reconciled"] == "1 added"
        added = lines.wait_for("ADDED", "web-2")
        web2 = next(p for p in status["pods"] if p["name"] == "web-2")
        ip = next(e for e in web2["network_status"] if e.get("default"))["ips"][0]
        assert ip in added.split() and web2["node"] in added.split()
        assert api.up(_lab())["reconciled"] == "1 removed"
        lines.wait_for("DELETED", "web-2")
    finally:
        proc.kill()
        _, err = proc.communicate()
    assert "rror" not in err and "arning" not in err, err


def test_list_and_watch_versions_agree(lab: dict[str, Any]) -> None:
    code, body = http(lab, f"/api/v1/namespaces/{NS}/pods")
    assert code == 200
    listed = json.loads(body)
    list_rv = int(listed["metadata"]["resourceVersion"])
    item_rvs = {
        i["metadata"]["name"]: int(i["metadata"]["resourceVersion"]) for i in listed["items"]
    }
    assert max(item_rvs.values()) <= list_rv
    # nothing changed: a get of each object has the version the list had
    code, body = http(lab, f"/api/v1/namespaces/{NS}/pods/web-0")
    assert int(json.loads(body)["metadata"]["resourceVersion"]) == item_rvs["web-0"]

    async def watch_while_reconciling() -> list[dict[str, Any]]:
        url = f"{lab['server']}/api/v1/namespaces/{NS}/pods?watch=1&resourceVersion={list_rv}"
        headers = {"Authorization": f"Bearer {lab['token']}"}
        got: list[dict[str, Any]] = []
        async with aiohttp.ClientSession() as s, s.get(url, headers=headers, ssl=_ssl()) as r:
            assert r.status == 200
            loop = asyncio.get_running_loop()
            up = loop.run_in_executor(None, lambda: api.up(_lab(THREE)))
            async for line in r.content:
                got.append(json.loads(line))
                if got[-1]["object"]["metadata"]["name"] == "web-2":
                    break
            await up
        return got

    got = asyncio.run(watch_while_reconciling())
    # from the list's version: only what changed after it (no replay of the list)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in got] == [("ADDED", "web-2")]
    event_rv = int(got[0]["object"]["metadata"]["resourceVersion"])
    assert event_rv > list_rv
    code, body = http(lab, f"/api/v1/namespaces/{NS}/pods")
    after = json.loads(body)
    assert int(after["metadata"]["resourceVersion"]) >= event_rv
    again = {i["metadata"]["name"]: int(i["metadata"]["resourceVersion"]) for i in after["items"]}
    assert again["web-2"] == event_rv
    assert all(again[n] == v for n, v in item_rvs.items())  # the others did not change
    # removing it: a DELETED at a newer version, seen by a watch from the last version
    api.up(_lab())
    code, body = http(lab, f"/api/v1/namespaces/{NS}/pods?watch=1&resourceVersion={event_rv}"
                           "&timeoutSeconds=1")  # fmt: skip
    deleted = [e for e in events(body) if e["type"] == "DELETED"]
    assert [e["object"]["metadata"]["name"] for e in deleted] == ["web-2"]
    assert int(deleted[0]["object"]["metadata"]["resourceVersion"]) > event_rv


def test_too_old_and_too_new_versions(lab: dict[str, Any]) -> None:
    code, body = http(lab, "/api/v1/pods?watch=1&resourceVersion=1&timeoutSeconds=5")
    assert code == 200
    (gone,) = events(body)
    assert gone["type"] == "ERROR"
    assert gone["object"]["code"] == 410 and gone["object"]["reason"] == "Expired"
    assert gone["object"]["message"].startswith("too old resource version: 1 (")
    code, body = http(lab, "/api/v1/pods?watch=1&resourceVersion=99999999&timeoutSeconds=5")
    (later,) = events(body)
    assert later["object"]["code"] == 504
    assert later["object"]["details"]["causes"][0]["reason"] == "ResourceVersionTooLarge"
    code, body = http(lab, "/api/v1/pods?watch=1&resourceVersion=abc")
    assert code == 400 and json.loads(body)["reason"] == "BadRequest"
    code, body = http(lab, "/api/v1/pods?watch=1&timeoutSeconds=-1")
    assert code == 400
    code, body = http(lab, "/api/v1/pods?watch=1&labelSelector=app%20in%20(a")
    assert code == 400 and json.loads(body)["kind"] == "Status"
    code, body = http(lab, "/api/v1/pods?watch=1&fieldSelector=spec.nope%3Dx")
    assert code == 400 and "field label not supported" in json.loads(body)["message"]
    code, body = http(lab, "/api/v1/pods?watch=1&resourceVersionMatch=Exact")
    assert code == 400


def test_bookmarks_selectors_timeout_and_tables(lab: dict[str, Any]) -> None:
    started = time.monotonic()
    code, body = http(lab, f"/api/v1/namespaces/{NS}/pods?watch=1&labelSelector=app%3Dweb"
                           "&allowWatchBookmarks=true&timeoutSeconds=2")  # fmt: skip
    took = time.monotonic() - started
    assert code == 200 and 1.5 < took < 10
    got = events(body)
    assert sorted(e["object"]["metadata"]["name"] for e in got if e["type"] == "ADDED") == [
        "web-0", "web-1"]  # fmt: skip
    assert got[-1]["type"] == "BOOKMARK"
    assert set(got[-1]["object"]["metadata"]) == {"resourceVersion"}
    # a field selector, and watch-list's end-of-initial-events bookmark
    code, body = http(lab, f"/api/v1/namespaces/{NS}/pods?watch=1&fieldSelector=metadata.name%3D"
                           "echo-0&sendInitialEvents=true&resourceVersionMatch=NotOlderThan"
                           "&allowWatchBookmarks=true&timeoutSeconds=1")  # fmt: skip
    got = events(body)
    assert [e["object"]["metadata"]["name"] for e in got if e["type"] == "ADDED"] == ["echo-0"]
    ends = [
        e
        for e in got
        if e["type"] == "BOOKMARK"
        and e["object"]["metadata"].get("annotations", {}).get("k8s.io/initial-events-end")
    ]
    assert len(ends) == 1  # fmt: skip
    code, body = http(lab, f"/api/v1/namespaces/{NS}/pods?watch=1&sendInitialEvents=true"
                           "&timeoutSeconds=1")  # fmt: skip
    assert code == 422
    # as=Table over watch: each event a one-row Table with the pod columns
    table = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    code, body = http(lab, f"/api/v1/namespaces/{NS}/pods?watch=1&timeoutSeconds=1", table)
    got = events(body)
    assert got and all(e["object"]["kind"] == "Table" for e in got)
    assert all(len(e["object"]["rows"]) == 1 for e in got)
    names = [c["name"] for c in got[0]["object"]["columnDefinitions"]]
    assert names[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]


def test_open_watches_are_bounded(lab: dict[str, Any]) -> None:
    async def fill() -> tuple[int, str | None, dict[str, Any], int]:
        url = f"{lab['server']}/api/v1/nodes?watch=1&timeoutSeconds=30"
        short = f"{lab['server']}/api/v1/nodes?watch=1&timeoutSeconds=1"
        headers = {"Authorization": f"Bearer {lab['token']}"}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0, ssl=_ssl())) as s:
            held = [await s.get(url, headers=headers) for _ in range(watch.MAX_WATCHES)]
            assert all(r.status == 200 for r in held)
            extra = await s.get(url, headers=headers)
            code, retry, body = extra.status, extra.headers.get("Retry-After"), await extra.json()
            for r in held:
                r.close()
            # the server sees them go within its 1 s look at the connection
            for _ in range(50):
                await asyncio.sleep(0.2)
                again = await s.get(short, headers=headers)
                if again.status == 200:
                    await again.read()
                    return code, retry, body, 200
                again.close()
            return code, retry, body, again.status

    code, retry, body, after = asyncio.run(fill())
    assert code == 429 and retry == "1"
    assert body["reason"] == "TooManyRequests" and body["details"]["retryAfterSeconds"] == 1
    assert after == 200


def test_kubectl_wait_for_ready(lab: dict[str, Any]) -> None:
    done = kubectl(lab, "wait", "-n", NS, "--for=condition=Ready", "pod", "-l", "app=web",
                   "--timeout=20s")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.split("\n")[:2]) == [
        "pod/web-0 condition met", "pod/web-1 condition met"]  # fmt: skip


def test_explain_from_the_served_openapi(lab: dict[str, Any]) -> None:
    done = kubectl(lab, "explain", "pod.spec.containers.ports")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert "FIELD: ports <[]ContainerPort>" in done.stdout
    assert "containerPort\t<integer> -required-" in done.stdout
    done = kubectl(lab, "explain", "net-attach-def.spec")
    assert done.returncode == 0, done.stderr
    assert "GROUP:      k8s.cni.cncf.io" in done.stdout
    assert "NetworkAttachmentDefinition config is a JSON-formatted CNI configuration" in done.stdout
    done = kubectl(lab, "explain", "daemonsets.spec.updateStrategy")
    assert done.returncode == 0 and "rollingUpdate" in done.stdout, done.stderr


NAD = """apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {name: services, namespace: apps}
spec:
  config: '{"cniVersion": "0.3.1", "type": "macvlan", "master": "ens256", "mode": "bridge"}'
"""
POD = """apiVersion: v1
kind: Pod
metadata: {name: NAME, namespace: apps, labels: {app: web}}
spec:
  containers:
    - {name: nginx, image: "nginx:1.27", ports: [{containerPort: 80}]}
"""


def test_apply_dry_run_client_says_no_warning(lab: dict[str, Any]) -> None:
    for text, said in (
        (NAD, "networkattachmentdefinition.k8s.cni.cncf.io/services configured (dry run)"),
        (POD.replace("NAME", "web-0"), "pod/web-0 configured (dry run)"),
        (POD.replace("NAME", "fresh"), "pod/fresh created (dry run)"),
    ):
        done = kubectl(lab, "apply", "--dry-run=client", "-f", "-", stdin=text)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == said
        assert done.stderr == ""
    done = kubectl(lab, "create", "--dry-run=client", "--validate=strict", "-f", "-",
                   stdin=POD.replace("NAME", "other"))  # fmt: skip
    assert done.returncode == 0 and done.stderr == "", done.stderr


def test_openapi_documents(lab: dict[str, Any]) -> None:
    code, body = http(lab, "/openapi/v3")
    index = json.loads(body)["paths"]
    assert set(index) == {"api/v1", "apis/apps/v1", "apis/k8s.cni.cncf.io/v1",
                          "apis/longhorn.io/v1beta2", "apis/helm.cattle.io/v1"}  # fmt: skip
    code, body = http(lab, index["api/v1"]["serverRelativeURL"])
    doc = json.loads(body)
    schemas = doc["components"]["schemas"]
    containers = schemas["io.k8s.api.core.v1.PodSpec"]["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert containers["x-kubernetes-patch-strategy"] == "merge"
    kinds = {
        g["kind"] for s in schemas.values() for g in s.get("x-kubernetes-group-version-kind", [])
    }
    assert {"Pod", "Node", "Namespace", "Event"} <= kinds
    assert "Service" not in kinds and "ConfigMap" not in kinds  # only what the lab serves
    code, body = http(
        lab, "/openapi/v2", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
    )
    assert code == 406
    code, body = http(lab, "/openapi/v2")
    v2 = json.loads(body)
    assert v2["swagger"] == "2.0" and "io.k8s.api.apps.v1.Deployment" in v2["definitions"]
    assert http(lab, "/openapi/v3/apis/batch/v1")[0] == 404


def test_logs_of_a_pods_process(lab: dict[str, Any]) -> None:
    status = api.status("workloads")
    probe = next(p for p in status["pods"] if p["name"] == "probe-wl-wrk-1")
    pid = probe["process"]["pid"]
    # what the pod's process writes to its stdout (through its own descriptor)
    with open(f"/proc/{pid}/fd/1", "a") as out:
        out.write("first line\nsecond line\n")
    done = kubectl(lab, "logs", "-n", NS, "probe-wl-wrk-1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith("first line\nsecond line\n")
    done = kubectl(lab, "logs", "-n", NS, "probe-wl-wrk-1", "--tail", "1")
    assert done.stdout == "second line\n"
    done = kubectl(lab, "logs", "-n", NS, "probe-wl-wrk-1", "--previous")
    assert done.returncode == 1
    assert 'previous terminated container "probe" in pod "probe-wl-wrk-1" not found' in done.stderr
    done = kubectl(lab, "logs", "-n", NS, "script")
    assert done.returncode == 1 and "runs no process in the lab" in done.stderr

    async def follow() -> bytes:
        url = f"{lab['server']}/api/v1/namespaces/{NS}/pods/probe-wl-wrk-1/log?follow=true&tailLines=0"
        headers = {"Authorization": f"Bearer {lab['token']}"}
        async with aiohttp.ClientSession() as s, s.get(url, headers=headers, ssl=_ssl()) as r:
            assert r.status == 200
            await asyncio.sleep(0.3)
            with open(f"/proc/{pid}/fd/1", "a") as out:
                out.write("while following\n")
            return await asyncio.wait_for(r.content.readline(), 10)

    assert asyncio.run(follow()) == b"while following\n"


def test_merge_into_a_temp_home_and_down_takes_it_out(lab: dict[str, Any], tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    theirs = {"apiVersion": "v1", "kind": "Config", "current-context": "prod",
              "clusters": [{"name": "prod", "cluster": {"server": "https://10.0.0.1:6443"}}],
              "users": [{"name": "me", "user": {"token": "abc"}}],
              "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "me"}}]}  # fmt: skip
    config = home / ".kube" / "config"
    config.write_text(yaml.safe_dump(theirs))
    config.chmod(0o644)
    env = {**os.environ, "HOME": str(home)}
    env.pop("KUBECONFIG", None)
    cli = [sys.executable, "-m", "multihome"]
    for _ in range(2):  # idempotent
        done = subprocess.run([*cli, "kubeconfig", "--merge", "workloads"], env=env,
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert f"added context multihome-workloads to {config}" in done.stdout
    merged = yaml.safe_load(config.read_text())
    assert (config.stat().st_mode & 0o777) == 0o600
    assert [c["name"] for c in merged["contexts"]] == ["prod", "multihome-workloads"]
    assert merged["current-context"] == "prod"  # the user's choice stays
    assert merged["users"][0] == theirs["users"][0]
    assert KUBECTL is not None
    got = subprocess.run([KUBECTL, "--context", "multihome-workloads", "get", "nodes", "-o",
                          "name"], env=env, capture_output=True, text=True, check=False)  # fmt: skip
    assert got.stdout.split() == ["node/wl-cpl-1", "node/wl-wrk-1", "node/wl-wrk-2"], got.stderr
    # $KUBECONFIG's first file is the one written
    other = tmp_path / "other.yaml"
    env2 = {**env, "KUBECONFIG": f"{other}{os.pathsep}{config}"}
    done = subprocess.run([*cli, "kubeconfig", "--merge"], env=env2, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert yaml.safe_load(other.read_text())["current-context"] == "multihome-workloads"
    # down takes out what each merge added, and only that
    done = subprocess.run([*cli, "down", "workloads"], env=env2, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"removed context multihome-workloads from {other}" in done.stdout
    assert f"removed context multihome-workloads from {config}" in done.stdout
    left = yaml.safe_load(other.read_text())
    assert left["clusters"] == [] and left["contexts"] == [] and left["current-context"] == ""
    assert yaml.safe_load(config.read_text()) == {**theirs, "preferences": {}}
    assert (config.stat().st_mode & 0o777) == 0o600
