"""The lab's API with a real kubectl (a 1.32 client) against an up of the seed: get nodes
and pods -o wide print what a cluster prints, the pod's Multus annotations, selectors, NADs,
exec (v5 through kubectl, v4 through a websocket client that offers only v4), errors as the
API server gives them; down stops the server and removes the kubeconfig (root only)."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from labkit import sandbox_unavailable_reason

from multihome.kube import kubeconfig_path
from multihome.lab import api
from multihome.lab.state import LabState
from multihome.multus import format_network_status
from multihome.spec import load_lab

KUBECTL = shutil.which("kubectl")
NS = "multus-network-attachments"

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
    root = tmp_path_factory.mktemp("kubestate")
    home = tmp_path_factory.mktemp("kubehome")  # kubectl's cache goes here, not to ~/.kube
    old = os.environ.get("MULTIHOME_STATE_DIR")
    os.environ["MULTIHOME_STATE_DIR"] = str(root)
    try:
        status = api.up(load_lab(None))
        yield {"status": status, "kubeconfig": kubeconfig_path(), "home": home}
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
        capture_output=True, text=True, env=env, input=stdin, timeout=60, check=False,
    )  # fmt: skip


def table(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """kubectl's printed table as rows of {column: value} (columns split at 2+ spaces)."""
    lines = text.splitlines()
    header = lines[0]
    starts = [
        i
        for i, ch in enumerate(header)
        if ch != " "
        and (i == 0 or (header[i - 1 : i + 1] == " " + ch and header[i - 2 : i] == "  "))
    ]
    names = [header[s:e].strip() for s, e in zip(starts, [*starts[1:], None], strict=True)]
    rows = []
    for line in lines[1:]:
        rows.append(
            {
                n: line[s:e].strip()
                for n, s, e in zip(names, starts, [*starts[1:], None], strict=True)
            }
        )
    return names, rows


def test_kubeconfig_is_in_the_labs_dir(lab: dict[str, Any]) -> None:
    path = lab["kubeconfig"]
    assert path == LabState("multi-homed").dir / "kubeconfig"
    assert (path.stat().st_mode & 0o077) == 0
    doc = yaml.safe_load(path.read_text())
    assert doc["clusters"][0]["cluster"]["server"].startswith("https://127.0.0.1:")
    assert doc["users"][0]["user"]["token"]


def test_get_nodes_wide(lab: dict[str, Any]) -> None:
    done = kubectl(lab, "get", "nodes", "-o", "wide")
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no warning about the server
    names, rows = table(done.stdout)
    assert names == ["NAME", "STATUS", "ROLES", "AGE", "VERSION", "INTERNAL-IP", "EXTERNAL-IP",
                     "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]  # fmt: skip
    nodes = {n["name"]: n for n in lab["status"]["nodes"]}
    assert [r["NAME"] for r in rows] == sorted(nodes)
    for row in rows:
        node = nodes[row["NAME"]]
        assert row["STATUS"] == "Ready"
        assert row["INTERNAL-IP"] == node["internal_ip"]
        assert row["ROLES"] == (
            "control-plane,etcd,master" if node["role"] == "server" else "worker"
        )
        assert row["VERSION"] == node["version"]


def test_get_pods_all_namespaces_wide(lab: dict[str, Any]) -> None:
    done = kubectl(lab, "get", "pods", "-A", "-o", "wide")
    assert done.returncode == 0, done.stderr
    names, rows = table(done.stdout)
    assert names == ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE",
                     "NOMINATED NODE", "READINESS GATES"]  # fmt: skip
    pods = {(p["namespace"], p["name"]): p for p in lab["status"]["pods"]}
    system = [r for r in rows if r["NAMESPACE"] == "kube-system"]  # the charts' DaemonSets'
    rows = [r for r in rows if r["NAMESPACE"] != "kube-system"]
    assert sorted(pods) == [(r["NAMESPACE"], r["NAME"]) for r in rows]
    assert system and all(r["STATUS"] == "Running" for r in system)
    for row in rows:
        pod = pods[(row["NAMESPACE"], row["NAME"])]
        eth0 = next(e for e in pod["network_status"] if e.get("default"))
        assert (row["READY"], row["STATUS"], row["RESTARTS"]) == ("1/1", "Running", "0")
        assert row["IP"] == eth0["ips"][0]
        assert row["NODE"] == pod["node"]


def test_get_pod_json_has_multus_annotations(lab: dict[str, Any]) -> None:
    done = kubectl(lab, "get", "pod", "-n", NS, "net-tools", "-o", "json")
    assert done.returncode == 0, done.stderr
    pod = json.loads(done.stdout)
    built = next(p for p in lab["status"]["pods"] if p["name"] == "net-tools")
    notes = pod["metadata"]["annotations"]
    assert notes["k8s.v1.cni.cncf.io/network-status"] == format_network_status(
        built["network_status"]
    )
    assert notes["k8s.v1.cni.cncf.io/networks"].startswith(f"{NS}/macvlan-longhorn-dhcp")
    assert pod["status"]["phase"] == "Running"
    assert pod["spec"]["nodeName"] == built["node"]


def test_get_net_attach_defs(lab: dict[str, Any]) -> None:
    done = kubectl(lab, "get", "net-attach-def", "-A")
    assert done.returncode == 0, done.stderr
    names, rows = table(done.stdout)
    assert names == ["NAMESPACE", "NAME", "AGE"]
    assert [r["NAME"] for r in rows] == ["macvlan-longhorn-dhcp", "macvlan-private-dhcp"]
    done = kubectl(
        lab, "get", "network-attachment-definitions", "-n", NS, "macvlan-private-dhcp", "-o", "yaml"
    )
    assert "ens256" in yaml.safe_load(done.stdout)["spec"]["config"]


def test_discovery_and_longhorn_settings(lab: dict[str, Any]) -> None:
    done = kubectl(lab, "api-resources")
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines()[1:]}
    assert rows["network-attachment-definitions"] == [
        "net-attach-def",
        "k8s.cni.cncf.io/v1",
        "true",
        "NetworkAttachmentDefinition",
    ]
    assert rows["settings"] == ["lhs", "longhorn.io/v1beta2", "true", "Setting"]
    assert rows["daemonsets"][:2] == ["ds", "apps/v1"]
    done = kubectl(lab, "get", "lhs", "-n", "longhorn-system")
    names, rows_ = table(done.stdout)
    assert names == ["NAME", "VALUE", "AGE"]
    assert rows_[0]["VALUE"] == f"{NS}/macvlan-longhorn-dhcp"
    done = kubectl(lab, "get", "deploy,ds,sts", "-A", "-o", "name")
    # the seed's file has no workload: only the RKE2 charts' kube-system DaemonSets
    assert sorted(done.stdout.split()) == [
        "daemonset.apps/multihome-cni-dhcp", "daemonset.apps/rke2-canal",
        "daemonset.apps/rke2-multus-ds",
    ]  # fmt: skip


def test_selectors_through_kubectl(lab: dict[str, Any]) -> None:
    done = kubectl(
        lab,
        "get",
        "pods",
        "-A",
        "--field-selector",
        "spec.nodeName=multi-homed-wrk-2",
        "-o",
        "name",
    )
    assert done.returncode == 0, done.stderr
    expected = sorted(
        f"pod/{p['name']}" for p in lab["status"]["pods"] if p["node"] == "multi-homed-wrk-2"
    )
    # and one pod per kube-system DaemonSet on the node
    system = [n for n in done.stdout.split() if n.startswith(("pod/rke2-", "pod/multihome-"))]
    assert len(system) == 3, done.stdout
    assert sorted(n for n in done.stdout.split() if n not in system) == expected
    done = kubectl(
        lab,
        "get",
        "pods",
        "-n",
        "longhorn-system",
        "-l",
        "longhorn.io/instance-manager-type=engine",
        "-o",
        "name",
    )
    assert len(done.stdout.split()) == 3 and all("-e-" in n for n in done.stdout.split())
    done = kubectl(lab, "get", "pods", "-A", "--field-selector", "spec.color=red")
    assert done.returncode == 1
    assert "field label not supported: spec.color" in done.stderr


def test_errors_are_api_statuses(lab: dict[str, Any]) -> None:
    done = kubectl(lab, "get", "pod", "-n", NS, "nope")
    assert done.returncode == 1
    assert done.stderr.strip() == 'Error from server (NotFound): pods "nope" not found'
    done = kubectl(lab, "get", "--raw", "/api/v2")
    assert done.returncode == 1 and "NotFound" in done.stderr
    done = kubectl(lab, "delete", "node", "multi-homed-wrk-1", "--wait=false")
    assert done.returncode == 1 and "MethodNotAllowed" in done.stderr


def _raw(
    lab: dict[str, Any], path: str, token: str | None, method: str = "GET"
) -> tuple[int, dict[str, Any]]:
    doc = yaml.safe_load(lab["kubeconfig"].read_text())
    import base64

    ctx = ssl.create_default_context(
        cadata=base64.b64decode(
            doc["clusters"][0]["cluster"]["certificate-authority-data"]
        ).decode()
    )
    req = urllib.request.Request(doc["clusters"][0]["cluster"]["server"] + path, method=method)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_the_token_is_needed_and_checked(lab: dict[str, Any]) -> None:
    token = yaml.safe_load(lab["kubeconfig"].read_text())["users"][0]["user"]["token"]
    assert _raw(lab, "/api/v1/nodes", None)[0] == 401
    code, body = _raw(lab, "/api/v1/nodes", token + "x")
    assert (code, body["reason"], body["kind"]) == (401, "Unauthorized", "Status")
    code, body = _raw(lab, "/api/v1/nodes", token)
    assert code == 200 and body["kind"] == "NodeList"
    code, body = _raw(lab, "/api/v1/nodes", token, method="POST")
    assert (code, body["reason"]) == (405, "MethodNotAllowed")


def test_exec_matches_multihome_exec(lab: dict[str, Any]) -> None:
    done = kubectl(lab, "exec", "-n", NS, "net-tools", "--", "ip", "route")
    assert done.returncode == 0, done.stderr
    direct = subprocess.run(
        api.exec_argv(f"{NS}/net-tools", ["ip", "route"]),
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout == direct.stdout
    assert "default via 169.254.1.1 dev eth0" in done.stdout


def test_exec_exit_code_stderr_and_stdin(lab: dict[str, Any]) -> None:
    done = kubectl(
        lab, "exec", "-n", NS, "net-tools", "--", "sh", "-c", "echo out; echo err >&2; exit 3"
    )
    assert done.returncode == 3
    assert done.stdout == "out\n"
    assert done.stderr.startswith("err\n") and "command terminated with exit code 3" in done.stderr
    done = kubectl(lab, "exec", "-i", "-n", NS, "net-tools", "--", "wc", "-c", stdin="x" * 100000)
    assert done.returncode == 0 and done.stdout.strip() == "100000"


def test_exec_with_a_terminal(lab: dict[str, Any]) -> None:
    """``kubectl exec -it`` from a terminal (``script`` gives kubectl one, sized 33x101): the
    command has a controlling terminal of that size (kubectl's resize message), stdout and
    stderr arrive on it, the exit code comes back, and typed input reaches it."""
    assert KUBECTL is not None
    cmd = " ".join([
        "stty rows 33 cols 101;", KUBECTL, "--kubeconfig", str(lab["kubeconfig"]),
        "--cache-dir", str(lab["home"] / "cache"), "exec", "-it", "-n", NS, "net-tools", "--",
        "sh", "-c", "'tty; stty size; echo err >&2; read line; echo got:$line; exit 4'",
    ])  # fmt: skip
    env = {"PATH": os.environ["PATH"], "HOME": str(lab["home"]), "TERM": "dumb"}
    done = subprocess.run(
        ["script", "-q", "-e", "-c", cmd, "/dev/null"],
        input="hello\n", capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    out = done.stdout.replace("\r", "")
    assert "/dev/pts/" in out, out
    assert "33 101" in out, out
    assert "err" in out and "got:hello" in out, out
    assert done.returncode == 4, out


def test_exec_v4_protocol(lab: dict[str, Any]) -> None:
    """An older client that offers only v4.channel.k8s.io: same channels, status on 3."""
    doc = yaml.safe_load(lab["kubeconfig"].read_text())
    import base64

    cluster, token = doc["clusters"][0]["cluster"], doc["users"][0]["user"]["token"]
    ctx = ssl.create_default_context(
        cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
    )
    url = (
        cluster["server"]
        + f"/api/v1/namespaces/{NS}/pods/net-tools/exec?command=sh&command=-c&command=echo+hi%3Bexit+4&stdout=true&stderr=true"
    )

    async def run() -> tuple[str | None, dict[int, bytes]]:
        got: dict[int, bytes] = {}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(
                url,
                protocols=("v4.channel.k8s.io",),
                ssl=ctx,
                headers={"Authorization": f"Bearer {token}"},
            ) as ws,
        ):
            async for msg in ws:
                if msg.type == aiohttp.WSMsgType.BINARY:
                    got[msg.data[0]] = got.get(msg.data[0], b"") + msg.data[1:]
            return ws.protocol, got

    protocol, got = asyncio.run(run())
    assert protocol == "v4.channel.k8s.io"
    assert got[1] == b"hi\n"
    status = json.loads(got[3])
    assert status["status"] == "Failure" and status["reason"] == "NonZeroExitCode"
    assert status["details"]["causes"] == [{"reason": "ExitCode", "message": "4"}]


def test_describe_pod_shows_its_events(lab: dict[str, Any]) -> None:
    done = kubectl(lab, "describe", "pod", "-n", NS, "net-tools")
    assert done.returncode == 0, done.stderr
    assert (
        "Successfully assigned multus-network-attachments/net-tools to multi-homed-wrk-1"
        in done.stdout
    )
    built = next(p for p in lab["status"]["pods"] if p["name"] == "net-tools")
    net1 = next(e for e in built["network_status"] if e["interface"] == "net1")
    assert f"Add net1 [{net1['ips'][0]}/24] from {NS}/macvlan-longhorn-dhcp" in done.stdout


def test_exec_in_a_missing_pod_is_404(lab: dict[str, Any]) -> None:
    done = kubectl(lab, "exec", "-n", NS, "nope", "--", "true")
    assert done.returncode == 1
    assert 'pods "nope" not found' in done.stderr


def test_get_agrees_with_multihome_get(lab: dict[str, Any]) -> None:
    status = api.status()
    done = kubectl(lab, "get", "pods", "-A", "-o", "json")
    items = [
        p
        for p in json.loads(done.stdout)["items"]
        if p["metadata"]["namespace"] != "kube-system"  # the charts' DaemonSets' pods
    ]
    assert sorted(
        (p["metadata"]["namespace"], p["metadata"]["name"], p["status"]["podIP"]) for p in items
    ) == sorted(
        (
            p["namespace"],
            p["name"],
            next(e for e in p["network_status"] if e.get("default"))["ips"][0],
        )
        for p in status["pods"]
    )


def test_down_stops_the_server_and_removes_the_kubeconfig(lab: dict[str, Any]) -> None:
    state = LabState("multi-homed")
    entry = state.objects()[("process", "kube-apiserver")]
    pid = int(entry["pid"])
    assert "multihome.kube" in Path(f"/proc/{pid}/cmdline").read_text()
    path = lab["kubeconfig"]
    api.down("multi-homed")
    assert (
        not os.path.exists(f"/proc/{pid}")
        or "multihome.kube" not in Path(f"/proc/{pid}/cmdline").read_text()
    )
    assert not path.exists()
    with pytest.raises(api.LabError):
        kubeconfig_path("multi-homed")
