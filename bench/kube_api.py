"""Benchmark: the lab's Kubernetes API beyond a single get, with the real kubectl: ``kubectl get
pods -A`` as a whole command and as the server's own handler time (its log), the same list by
a direct HTTPS GET (no kubectl: TLS, request, JSON), an exec round trip (``kubectl exec POD --
true``), and a watch event's latency: from the moment ``multihome up FILE`` (a reconcile
adding or removing one pod) rewrote ``status.json`` (its mtime) to the ADDED/DELETED event
reaching a client watching ``/api/v1/pods`` (the server looks at the file every
``watch.POLL`` s while a watch is open, then rebuilds and diffs every object).

Run as ``python -m bench.kube_api [--rounds N] [--agents 100]`` from the repository root, as
root: the seed lab, then bench.scale's lab of 1 server + N agents (10 pods each). Each lab is
``multihome up`` (not measured), warmed by one unmeasured ``kubectl get pods -A`` (kubectl's
discovery cache), measured, and taken down; the bench fails if anything of a lab is left.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import ssl
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import aiohttp
import yaml

from bench import scale
from bench.labcli import MULTIHOME, Stats, code, leftovers, machine, run, state_dir
from multihome.spec.loader import seed_path

LIST = re.compile(r"GET /api/v1/pods\?limit=500 200 ([0-9.]+)ms")
READING = re.compile(r"new reading: \d+ objects, [1-9]\d* changed, .* ([0-9.]+)ms")
EXTRA = """---
apiVersion: v1
kind: Pod
metadata: {name: bench-watch, namespace: default}
spec:
  containers:
    - {name: app, image: busybox, command: ["sleep", "infinity"]}
"""


def _ssl() -> ssl.SSLContext:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


class Watcher:
    """A client watching all pods from a thread: (arrival time, type, name) per event."""

    def __init__(self, server: str, token: str, version: str) -> None:
        self.url = f"{server}/api/v1/pods?watch=1&resourceVersion={version}"
        self.headers = {"Authorization": f"Bearer {token}"}
        self.seen: list[tuple[float, str, str]] = []
        self.ready = threading.Event()
        self.stop = False
        self.thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)
        self.thread.start()
        self.ready.wait(30)

    async def _run(self) -> None:
        try:
            await self._watch()
        except (TimeoutError, aiohttp.ClientError):
            return  # the lab went down under it

    async def _watch(self) -> None:
        async with (
            aiohttp.ClientSession() as s,
            s.get(self.url, headers=self.headers, ssl=_ssl(), timeout=aiohttp.ClientTimeout()) as r,
        ):
            self.ready.set()
            async for line in r.content:
                event = json.loads(line)
                self.seen.append((time.time(), event["type"], event["object"]["metadata"]["name"]))
                if self.stop:
                    return

    def wait_for(self, kind: str, name: str, timeout: float = 120) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for when, k, n in self.seen:
                if (k, n) == (kind, name):
                    self.seen.remove((when, k, n))
                    return when
            time.sleep(0.005)
        raise SystemExit(f"bench.kube_api: no {kind} of {name} in {timeout} s")


def measure(label: str, text: str, lab: str, pods: int, rounds: int) -> str:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    with (
        state_dir("mh-bench-kubeapi-") as env,
        tempfile.TemporaryDirectory() as home,
    ):
        env = dict(env, HOME=home)
        lab_file = Path(home) / "lab.yaml"
        lab_file.write_text(text)
        run([MULTIHOME, "up", str(lab_file)], env).check()
        kubeconfig = run([MULTIHOME, "kubeconfig", lab], env).check().stdout.strip()
        doc = yaml.safe_load(Path(kubeconfig).read_text())
        server, token = doc["clusters"][0]["cluster"]["server"], doc["users"][0]["user"]["token"]
        log = Path(kubeconfig).with_name("kube-apiserver.log")
        status_file = Path(kubeconfig).with_name("status.json")
        base = [kubectl, "--kubeconfig", kubeconfig, "--cache-dir", f"{home}/cache"]
        first = run([*base, "get", "pods", "-A"], env).check()
        got = len(first.stdout.splitlines()) - 1
        if got != pods:
            raise SystemExit(f"bench.kube_api: kubectl listed {got} pods, the lab has {pods}")
        ns, pod = first.stdout.splitlines()[1].split()[:2]
        plain, direct, execs, latency = Stats(), Stats(), Stats(), Stats()
        request = urllib.request.Request(
            f"{server}/api/v1/pods", headers={"Authorization": f"Bearer {token}"}
        )
        version = ""
        for _ in range(rounds):
            plain.values.append(run([*base, "get", "pods", "-A"], env).check().wall)
            started = time.perf_counter()
            with urllib.request.urlopen(request, context=_ssl()) as resp:
                version = json.loads(resp.read())["metadata"]["resourceVersion"]
            direct.values.append(time.perf_counter() - started)
            execs.values.append(run([*base, "exec", "-n", ns, pod, "--", "true"], env).check().wall)
        server_times = Stats([float(m) / 1000 for m in LIST.findall(log.read_text())][1:])
        watcher = Watcher(server, token, version)
        for _ in range(rounds):
            for content, kind in ((text + EXTRA, "ADDED"), (text, "DELETED")):
                lab_file.write_text(content)
                run([MULTIHOME, "up", str(lab_file)], env).check()
                written = os.stat(status_file).st_mtime
                arrived = watcher.wait_for(kind, "bench-watch")
                latency.values.append(arrived - written)
        watcher.stop = True
        # the server's rebuild and comparison of every object per change (after the first)
        rebuild = Stats([float(m) / 1000 for m in READING.findall(log.read_text())])
        run([MULTIHOME, "down", lab], env).check()
        left = leftovers(env, lab)
        if left:
            raise SystemExit(f"bench.kube_api: left behind: {left}")
    return (
        f"{label:<24} {pods:>5}  {plain.fmt(1000, 0):>16}  {server_times.fmt(1000, 1):>18}  "
        f"{direct.fmt(1000, 1):>18}  {execs.fmt(1000, 0):>16}  {latency.fmt(1000, 0):>16}  "
        f"{rebuild.fmt(1000, 0):>16}"
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kube_api")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--agents", type=int, default=100, help="scale lab size (0: seed only)")
    args = parser.parse_args(argv)
    if shutil.which("kubectl") is None:
        print("bench.kube_api: kubectl is not installed", file=sys.stderr)
        return 2
    print(machine())
    print(code())
    client = run(["kubectl", "version", "--client"], {"PATH": "/usr/bin:/bin"}).stdout.split()[2]
    print(
        f"kubectl {client} against the lab's API (python -m multihome.kube), {args.rounds} "
        "rounds, median (min-max), ms. get: the whole command; server: the list request's "
        "handler time (its log); GET: a direct HTTPS list (JSON, no kubectl); exec: whole "
        "command; watch: status.json rewritten by a reconcile -> the event at a client "
        "(one pod added, then removed, per round); of which rebuild: the server's rebuild and "
        "comparison of every object (its log)"
    )
    print(
        f"{'lab':<24} {'pods':>5}  {'get pods -A':>16}  {'server (list)':>18}  "
        f"{'GET /api/v1/pods':>18}  {'exec -- true':>16}  {'watch event':>16}  "
        f"{'of which rebuild':>16}"
    )
    print(measure("seed (built-in)", seed_path().read_text(), "multi-homed", 7, args.rounds),
          flush=True)  # fmt: skip
    if args.agents:
        text = scale.generate(args.agents, 10)
        label = f"scale ({args.agents} agents x 10)"
        print(measure(label, text, scale.lab_name(args.agents), args.agents * 10, args.rounds),
              flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
