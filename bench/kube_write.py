"""Benchmark: a write through the lab's Kubernetes API, to the pod running: ``kubectl apply``
of one new pod (a Multus pod with a macvlan + DHCP attachment, as the seed's net-tools) until
the API serves it Ready, and ``kubectl delete`` until it is gone (detached, lease released).

Run as ``python -m bench.kube_write [--rounds N]`` from the repository root, as root. On the
seed lab (``multihome up``, not measured): one unmeasured apply + delete (kubectl's discovery
cache, the server's imports), then N rounds of: ``kubectl apply -f`` (the whole command:
kubectl's start-up, TLS, the POST answered at once with the pod Pending), then polling the pod
over HTTPS every 10 ms until its Ready condition is True (the reconcile: validate, plan,
attach for real, status.json); then ``kubectl delete --wait=false`` and polling until 404.
The server's own times come from its log: the POST handler (validate + plan + record) and the
reconcile process (``python -m multihome.kube.reconciler``: start-up, plan, detach/attach).
Side by side, interleaved in the same rounds: the same change made with a lab file
(``multihome up FILE`` with one pod more, then without it), the path the API's writes share.
Then ``multihome down``; the bench fails if anything of the lab is left.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import shutil
import ssl
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from bench.labcli import MULTIHOME, Stats, code, leftovers, machine, run, state_dir

NS = "multus-network-attachments"
POST = re.compile(r"POST /api/v1/namespaces/\S+/pods\S* 201 ([0-9.]+)ms")
RECONCILE = re.compile(r"reconcile done in ([0-9.]+)ms")


def pod(name: str) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": name,
                "namespace": NS,
                "annotations": {"k8s.v1.cni.cncf.io/networks": "macvlan-private-dhcp"},
            },
            "spec": {"containers": [{"name": "tools", "image": "praqma/network-multitool"}]},
        }
    )


class Http:
    def __init__(self, kubeconfig: str) -> None:
        doc = yaml.safe_load(Path(kubeconfig).read_text())
        cluster = doc["clusters"][0]["cluster"]
        self.server = cluster["server"]
        self.token = doc["users"][0]["user"]["token"]
        self.ctx = ssl.create_default_context(
            cadata=base64.b64decode(cluster["certificate-authority-data"]).decode()
        )

    def get(self, path: str) -> tuple[int, Any]:
        req = urllib.request.Request(self.server + path)
        req.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(req, context=self.ctx, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, None


def ready(obj: Any) -> bool:
    conds = (obj or {}).get("status", {}).get("conditions", [])
    return any(c["type"] == "Ready" and c["status"] == "True" for c in conds)


def until(check: Any, timeout: float = 120.0) -> float:
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > timeout:
            raise SystemExit("bench.kube_write: timed out")
        time.sleep(0.01)
    return time.perf_counter() - started


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kube_write")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("bench.kube_write: kubectl is not installed", file=sys.stderr)
        return 2
    print(machine())
    print(code())
    apply_s, to_ready, delete_s, to_gone = Stats(), Stats(), Stats(), Stats()
    file_up, file_down = Stats(), Stats()
    with state_dir("mh-bench-kubewrite-") as env, tempfile.TemporaryDirectory() as home:
        env = dict(env, HOME=home)
        run([MULTIHOME, "up"], env).check()
        kubeconfig = run([MULTIHOME, "kubeconfig", "multi-homed"], env).check().stdout.strip()
        log = Path(kubeconfig).with_name("kube-apiserver.log")
        http = Http(kubeconfig)
        has_openapi = http.get("/openapi/v2")[0] == 200
        base = [kubectl, "--kubeconfig", kubeconfig, "--cache-dir", f"{home}/cache"]
        validate = [] if has_openapi else ["--validate=false"]
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.rounds + 1):
                name = f"bench-{i}"
                path = Path(tmp) / f"{name}.yaml"
                path.write_text(pod(name))
                url = f"/api/v1/namespaces/{NS}/pods/{name}"
                started = time.perf_counter()
                done = run([*base, "apply", *validate, "-f", str(path)], env).check()
                until(lambda u=url: ready(http.get(u)[1]))
                whole = time.perf_counter() - started
                d = run([*base, "delete", "pod", "-n", NS, name, "--wait=false"], env).check()
                gone = until(lambda u=url: http.get(u)[0] == 404)
                # side by side: the same pod added and removed by a changed lab file
                design = (Path(kubeconfig).with_name("design.yaml")).read_text()
                grown = Path(tmp) / f"{name}-lab.yaml"
                grown.write_text(design + "---\n" + pod(name + "-file"))
                same = Path(tmp) / "lab.yaml"
                same.write_text(design)
                added = run([MULTIHOME, "up", str(grown)], env).check()
                removed = run([MULTIHOME, "up", str(same)], env).check()
                if i == 0:
                    continue  # warm-up
                file_up.values.append(added.wall)
                file_down.values.append(removed.wall)
                apply_s.values.append(done.wall)
                to_ready.values.append(whole)
                delete_s.values.append(d.wall)
                to_gone.values.append(d.wall + gone)
        text = log.read_text()
        posts = Stats([float(m) / 1000 for m in POST.findall(text)][1:])
        reconciles = Stats([float(m) / 1000 for m in RECONCILE.findall(text)][2:])
        run([MULTIHOME, "down", "multi-homed"], env).check()
        left = leftovers(env, "multi-homed")
        if left:
            raise SystemExit(f"bench.kube_write: left behind: {left}")
    client = run([kubectl, "version", "--client"], {"PATH": "/usr/bin:/bin"}).stdout.split()[2]
    print(
        f"kubectl {client} against the seed lab's API, {args.rounds} rounds (after one warm-up), "
        f"median (min-max), ms; openapi served: {has_openapi}"
    )
    rows = [
        ("kubectl apply -f (new pod: answered Pending)", apply_s),
        ("apply -> pod Ready (attached for real)", to_ready),
        ("  server: POST (validate, plan, record)", posts),
        ("  server: one reconcile (process, plan, attach or detach)", reconciles),
        ("kubectl delete --wait=false", delete_s),
        ("delete -> pod gone (detached, lease released)", to_gone),
        ("side by side: multihome up FILE (+1 pod, whole command)", file_up),
        ("side by side: multihome up FILE (-1 pod, whole command)", file_down),
    ]
    for label, stats in rows:
        print(f"{label:<58} {stats.fmt(1000, 0):>18}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
