"""Benchmark: the lab's Kubernetes API with the real kubectl: ``kubectl get pods -A`` (and
``-o wide``) and an exec round trip (``kubectl exec POD -- true``), on the seed lab and on a
scale lab (bench.scale's: 1 server + N agents, 10 pods per agent).

Run as ``python -m bench.kube_get [--rounds N] [--agents 100]`` from the repository root, as
root. For each lab: ``multihome up`` (not measured here: bench.up_down and bench.scale do),
one unmeasured ``kubectl get pods -A`` (fills kubectl's discovery cache, as a user's second
command finds it), then N rounds of each command, as whole commands (kubectl's start-up, TLS,
the request, printing); the server's own time for the list request comes from its log
(``kube-apiserver.log``: handler time, from the request read to the response made: reading
status.json when it changed, building the objects, the Table, JSON). Then ``multihome
down``; the bench fails if anything of the lab is left.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
import tempfile
from pathlib import Path

from bench import scale
from bench.labcli import MULTIHOME, Stats, code, leftovers, machine, run, state_dir

LIST = re.compile(r"GET /api/v1/pods\?limit=500 200 ([0-9.]+)ms")


def measure(label: str, lab_file: str | None, lab: str, pods: int, rounds: int) -> list[str]:
    kubectl = shutil.which("kubectl")
    assert kubectl is not None
    lines = []
    with state_dir("mh-bench-kube-") as env, tempfile.TemporaryDirectory() as home:
        env = dict(env, HOME=home)
        run([MULTIHOME, "up", *([lab_file] if lab_file else [])], env).check()
        kubeconfig = run([MULTIHOME, "kubeconfig", lab], env).check().stdout.strip()
        log = Path(kubeconfig).with_name("kube-apiserver.log")
        base = [kubectl, "--kubeconfig", kubeconfig, "--cache-dir", f"{home}/cache"]
        first = run([*base, "get", "pods", "-A"], env).check()
        got = len(first.stdout.splitlines()) - 1
        if got != pods:
            raise SystemExit(f"bench.kube_get: kubectl listed {got} pods, the lab has {pods}")
        ns, pod = first.stdout.splitlines()[1].split()[:2]
        plain, wide, execs = Stats(), Stats(), Stats()
        for _ in range(rounds):
            plain.values.append(run([*base, "get", "pods", "-A"], env).check().wall)
            wide.values.append(run([*base, "get", "pods", "-A", "-o", "wide"], env).check().wall)
            execs.values.append(run([*base, "exec", "-n", ns, pod, "--", "true"], env).check().wall)
        server = Stats([float(m) / 1000 for m in LIST.findall(log.read_text())][1:])
        run([MULTIHOME, "down", lab], env).check()
        left = leftovers(env, lab)
        if left:
            raise SystemExit(f"bench.kube_get: left behind: {left}")
    lines.append(
        f"{label:<28} {pods:>5}  {plain.fmt(1000, 0):>18}  {wide.fmt(1000, 0):>18}  "
        f"{server.fmt(1000, 1):>20}  {execs.fmt(1000, 0):>18}"
    )
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.kube_get")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--agents", type=int, default=100, help="scale lab size (0: seed only)")
    args = parser.parse_args(argv)
    if shutil.which("kubectl") is None:
        print("bench.kube_get: kubectl is not installed", file=sys.stderr)
        return 2
    print(machine())
    print(code())
    client = run(["kubectl", "version", "--client"], {"PATH": "/usr/bin:/bin"}).stdout.split()[2]
    print(
        f"kubectl {client} against the lab's API (python -m multihome.kube), {args.rounds} "
        "rounds, median (min-max), ms; whole commands; server: the list request's handler time"
    )
    print(
        f"{'lab':<28} {'pods':>5}  {'get pods -A':>18}  {'get pods -A -o wide':>18}  "
        f"{'server (list, Table)':>20}  {'exec -- true':>18}"
    )
    rows = measure("seed (built-in)", None, "multi-homed", 7, args.rounds)
    print(*rows, sep="\n", flush=True)
    if args.agents:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "scale.yaml"
            path.write_text(scale.generate(args.agents, 10))
            label = f"scale ({args.agents} agents x 10)"
            rows = measure(label, str(path), scale.lab_name(args.agents), args.agents * 10,
                           args.rounds)  # fmt: skip
            print(*rows, sep="\n", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
