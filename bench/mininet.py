"""Benchmark: multihome against Mininet, the tool people know for one-machine network
emulation (issue 13, item 5), side by side in one run.

Run as ``python -m bench.mininet [--hosts 200] [--agents 4] [--rounds 3]`` from the
repository root, as root; ``python -m bench mininet`` keeps the result in
bench/results/mininet.txt. Installs Debian's ``mininet`` (2.3.0) and ``bridge-utils`` with
apt when they are missing (without Open vSwitch: Mininet's default switch and controller
are not used).

- **Mininet**: ``Mininet(topo=SingleSwitchTopo(H), switch=LinuxBridge, controller=None)``
  then ``start()`` (build), and ``stop()`` (teardown), timed inside a driver process (this
  module with ``--driver``, run by the system's Python, where Debian puts ``mininet``).
  Mininet makes its links and bridge in the network namespace it runs in, kills processes
  by name and removes files from /tmp (``mn -c``), and raises host sysctls
  (``fixLimits``): so the driver runs in namespaces of its own (``unshare``: network,
  mount, PID; a tmpfs on /tmp and $HOME, /proc/sys read-only), skips ``fixLimits`` (only
  its per-process file limit is raised), and runs ``mn -c`` in there after each round. The
  bench checks that none of Mininet's links shows in the host's ``ip -br link`` while it
  runs, and that nothing is left after.
- **plugins floor** (bench.plugins_floor's, at multihome's attach concurrency): the same
  pods attached by running the same plugins directly (calico with host-local, portmap,
  bandwidth; CNI env + stdin) in the same namespaces, no multihome: what the real plugins
  cost by themselves, so the report splits multihome's build into the plugins' share and
  its own overhead;
- **multihome**: a generated lab (1 server + A agents on one VLAN, Canal host-gw; H pods
  spread over the agents, each with eth0 only, from Canal's conflist: the lab's calico
  plugin, host-local, portmap, bandwidth, and its process ``sleep infinity``), through the
  CLI: ``multihome up FILE`` and ``multihome down NAME``, whole commands (Python start-up,
  loading and planning included); after up every pod must be attached with an address.

Rounds alternate Mininet, the plugins floor and multihome, each after the machine settled.
Prints medians (min-max), per host/pod, and the ratio; goal: multihome's build per pod at most half
Mininet's per host. Mininet's figures exclude its Python start-up and imports (they are
shown apart as the driver's whole time to built); multihome's include them.

Only the standard library at module level: the driver runs under the system's Python.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SYSTEM_PYTHON = "/usr/bin/python3"
APT_PACKAGES = ("mininet", "bridge-utils")
GOAL = 0.5  # multihome build per pod / Mininet build per host
# the names Mininet gives SingleSwitchTopo's links and bridge
MININET_LINK = re.compile(r"^(h\d+-eth\d+|s\d+|s\d+-eth\d+)(@\S+)?$")
NAMESPACE = "vs-mininet"
ROOT = Path(__file__).resolve().parent.parent

# the driver's private namespaces: /tmp and $HOME on a tmpfs (mn -c removes /tmp/*.log,
# ~/.ssh/mn/*), /proc/sys read-only (no host sysctl can change), then the driver
ISOLATE = (
    "set -e; mount -t tmpfs mn-tmp /tmp; mount --bind /proc/sys /proc/sys; "
    'mount -o remount,bind,ro /proc/sys; exec "$@"'
)


# -- the driver (system Python, inside its own namespaces) -----------------------------------
def driver(hosts: int) -> int:  # pragma: no cover - runs under the system's Python
    import resource

    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from mininet.nodelib import LinuxBridge
    from mininet.topo import SingleSwitchTopo
    from mininet.util import rlimitTestAndSet

    def say(**what: Any) -> None:
        sys.stdout.write(json.dumps(what) + "\n")
        sys.stdout.flush()

    setLogLevel("error")  # LinuxBridge warns about bridge-nf-call-*: not a concern here
    Mininet.inited = True  # no fixLimits(): it raises host-wide sysctls
    rlimitTestAndSet(resource.RLIMIT_NOFILE, 16384)  # this process's own limit
    t0 = time.perf_counter()
    net = Mininet(topo=SingleSwitchTopo(hosts), switch=LinuxBridge, controller=None)
    t1 = time.perf_counter()
    net.start()
    t2 = time.perf_counter()
    last = net.hosts[-1]
    addr = last.cmd(f"ip -br addr show dev {last.name}-eth0").split()
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    say(
        event="built",
        build=t1 - t0,
        start=t2 - t1,
        hosts=len(net.hosts),
        links=len(links.splitlines()),
        last=f"{last.name} {' '.join(addr[2:3])}",
        expect=f"{last.name} {last.IP()}/8",
    )
    sys.stdin.readline()  # the bench looked at the host: stop
    t3 = time.perf_counter()
    net.stop()
    t4 = time.perf_counter()
    say(event="stopped", stop=t4 - t3)
    clean = subprocess.run(["mn", "-c"], capture_output=True, text=True)
    links = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True).stdout
    say(event="cleaned", code=clean.returncode, links=len(links.splitlines()))
    return 0


# -- the bench side --------------------------------------------------------------------------
def ensure_mininet() -> str | None:
    """Install mininet and bridge-utils if missing; None when ready, else why not."""
    ready = (
        shutil.which("mnexec")
        and shutil.which("brctl")
        and subprocess.run(
            [SYSTEM_PYTHON, "-c", "import mininet.net"], capture_output=True, check=False
        ).returncode
        == 0
    )
    if ready:
        return None
    print(f"installing {' '.join(APT_PACKAGES)} (apt-get)", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    done = subprocess.run(
        ["apt-get", "install", "-y", "--no-install-recommends", *APT_PACKAGES],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        return f"apt-get install {' '.join(APT_PACKAGES)} failed: {done.stderr.strip()[-500:]}"
    return None


def host_links() -> set[str]:
    out = subprocess.run(["ip", "-br", "link"], capture_output=True, text=True, check=True)
    return {line.split()[0] for line in out.stdout.splitlines() if line.strip()}


@dataclass
class MininetRound:
    build: float  # Mininet() + start(), in the driver
    build_whole: float  # spawn to built: namespaces, Python start-up, imports, build
    stop: float
    links: int
    cleaned_links: int


def mininet_round(hosts: int) -> MininetRound:
    before = host_links()
    argv = [
        "unshare", "--net", "--mount", "--pid", "--fork", "--kill-child", "--mount-proc",
        "--propagation", "private", "--", "/bin/sh", "-c", ISOLATE, "sh",
        SYSTEM_PYTHON, "-m", "bench.mininet", "--driver", str(hosts),
    ]  # fmt: skip
    env = dict(os.environ, HOME="/tmp", PYTHONPATH=str(ROOT))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        built = _event(proc, "built")
        whole = time.perf_counter() - t0
        seen = {n.split("@")[0] for n in host_links() - before if MININET_LINK.match(n)}
        if seen:
            raise RuntimeError(f"Mininet's links showed in the host: {sorted(seen)[:5]}")
        if built["hosts"] != hosts or built["last"] != built["expect"]:
            raise RuntimeError(f"Mininet built {built}")
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        stopped = _event(proc, "stopped")
        cleaned = _event(proc, "cleaned")
        if proc.wait(timeout=60) != 0:
            raise RuntimeError(f"the Mininet driver exited {proc.returncode}")
    finally:
        if proc.poll() is None:  # our own child: unshare --kill-child takes its tree along
            proc.kill()
            proc.wait()
    left = {n for n in host_links() - before if MININET_LINK.match(n.split("@")[0])}
    if left:
        raise RuntimeError(f"Mininet left links in the host: {sorted(left)[:5]}")
    return MininetRound(
        built["build"] + built["start"], whole, stopped["stop"], built["links"], cleaned["links"]
    )


def _event(proc: subprocess.Popen[str], name: str) -> dict[str, Any]:
    assert proc.stdout is not None
    for line in proc.stdout:
        try:
            got: dict[str, Any] = json.loads(line)
        except ValueError:
            continue
        if got.get("event") == name:
            return got
    raise RuntimeError(f"the Mininet driver ended before {name!r} (exit {proc.wait()})")


# -- multihome -------------------------------------------------------------------------------
def generate(agents: int, hosts: int) -> str:
    """1 server + ``agents`` agents on VLAN40 (Canal host-gw), ``hosts`` pods with eth0
    only, spread evenly over the agents."""
    import yaml

    nodes: list[dict[str, Any]] = [
        {
            "name": "vs-cpl-1",
            "role": "server",
            "nics": [{"name": "ens192", "network": "vlan40", "address": "172.16.40.10"}],
        }
    ]
    for i in range(1, agents + 1):
        nodes.append(
            {
                "name": f"vs-wrk-{i}",
                "role": "agent",
                "nics": [{"name": "ens192", "network": "vlan40", "address": f"172.16.40.{10 + i}"}],
            }
        )
    docs: list[dict[str, Any]] = [
        {
            "apiVersion": "multihome.dev/v1alpha1",
            "kind": "Lab",
            "metadata": {"name": "vs-mininet"},
            "spec": {
                "networks": [
                    {
                        "name": "vlan40",
                        "vlan": 40,
                        "subnet": "172.16.40.0/24",
                        "gateway": "172.16.40.1",
                    }
                ],
                "nodes": nodes,
                "cluster": {
                    "distribution": "rke2",
                    "version": "v1.25.9+rke2r1",
                    "cni": ["multus", "canal"],
                    "canal": {"iface": "ens192", "backend": "host-gw"},
                },
            },
        },
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}},
    ]
    for k in range(hosts):
        docs.append(
            {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": f"h{k + 1}", "namespace": NAMESPACE},
                "spec": {
                    "nodeName": f"vs-wrk-{k % agents + 1}",
                    "containers": [
                        {"name": "app", "image": "busybox", "command": ["sleep", "infinity"]}
                    ],
                },
            }
        )
    return yaml.safe_dump_all(docs, sort_keys=False, width=200)


@dataclass
class LabRound:
    up: float
    down: float
    pods_step: float | None


def lab_round(path: Path, env: dict[str, str], hosts: int) -> LabRound:
    from bench.labcli import MULTIHOME, leftovers, run
    from bench.scale import _phase_times

    up = run([MULTIHOME, "up", str(path)], env, stamp_stderr=True, timeout=600).check()
    try:
        status = json.loads((Path(env["MULTIHOME_STATE_DIR"]) / "vs-mininet" / "status.json")
                            .read_text())  # fmt: skip
        pods = status["pods"]
        bad = [
            p["name"]
            for p in pods
            if [n.get("interface") for n in p.get("network_status") or []] != ["eth0"]
            or not p["network_status"][0].get("ips")
        ]
        if len(pods) != hosts or bad:
            raise RuntimeError(f"{len(pods)} pods of {hosts} attached; without eth0: {bad[:5]}")
    finally:
        down = run([MULTIHOME, "down", "vs-mininet"], env, timeout=300).check()
    if found := leftovers(env, "vs-mininet"):
        raise RuntimeError(f"down left: {', '.join(found)}")
    return LabRound(up.wall, down.wall, _phase_times(up.stamped, up.wall).get("pods"))


# -- report ----------------------------------------------------------------------------------
@dataclass
class Results:
    hosts: int
    agents: int
    mininet: list[MininetRound] = field(default_factory=list)
    floors: list[Any] = field(default_factory=list)  # bench.plugins_floor.PluginRound
    labs: list[LabRound] = field(default_factory=list)


def _fmt(values: list[float], scale: float = 1.0, digits: int = 2) -> str:
    v = [x * scale for x in values]
    if len(v) == 1:
        return f"{v[0]:.{digits}f}"
    return f"{statistics.median(v):.{digits}f} ({min(v):.{digits}f}-{max(v):.{digits}f})"


def report(res: Results, rounds: int) -> None:
    h = res.hosts
    print(
        f"mininet: {h} single-interface hosts. Mininet 2.3.0: SingleSwitchTopo({h}), "
        "LinuxBridge, no controller, in its own network + mount + PID namespaces. "
        f"multihome: {h} pods (eth0 via Canal: calico + host-local, portmap, bandwidth; "
        f"sleep infinity) over {res.agents} agents + 1 server, CLI up/down"
    )
    print(f"{rounds} round(s), interleaved; median (min-max)")
    print()
    print(f"{'':>34}{'build s':>22}{'per host ms':>22}{'teardown s':>22}")
    m_build = [x.build for x in res.mininet]
    m_whole = [x.build_whole for x in res.mininet]
    m_stop = [x.stop for x in res.mininet]
    up = [x.up for x in res.labs]
    down = [x.down for x in res.labs]
    rows = [
        ("Mininet (Mininet() + start())", m_build, m_stop),
        ("Mininet driver, spawn to built", m_whole, None),
        ("multihome (up / down, whole CLI)", up, down),
    ]
    for label, build, stop in rows:
        print(
            f"{label:>34}{_fmt(build):>22}{_fmt(build, 1000 / h, 1):>22}"
            f"{_fmt(stop) if stop else '':>22}"
        )
    steps = [x.pods_step for x in res.labs if x.pods_step is not None]
    if steps:
        print(f"{'multihome up, its pods step':>34}{_fmt(steps):>22}{_fmt(steps, 1000 / h, 1):>22}")
    floor = [f.build for f in res.floors]
    if floor:
        label = f"plugins floor (x{res.floors[0].workers})"
        print(f"{label:>34}{_fmt(floor):>22}{_fmt(floor, 1000 / h, 1):>22}")
    ratio = statistics.median(up) / statistics.median(m_build)
    print()
    if floor:
        f_med, up_med, m_med = (statistics.median(v) for v in (floor, up, m_build))
        print(
            f"per pod: the real plugins by themselves {f_med / h * 1000:.1f} ms "
            f"({f_med / m_med:.2f}x Mininet's per host), multihome's own overhead over them "
            f"{(up_med - f_med) / h * 1000:.1f} ms (up / plugins floor {up_med / f_med:.2f}x)"
        )
    whole = statistics.median(up) / statistics.median(m_whole)
    print(
        f"multihome / Mininet: build {ratio:.2f}x (against the driver's whole time "
        f"{whole:.2f}x), teardown {statistics.median(down) / statistics.median(m_stop):.2f}x"
    )
    print(
        f"Mininet's links: {res.mininet[0].links} in its namespace while up "
        f"({res.mininet[0].cleaned_links} after stop + mn -c), none in the host's ip -br link"
    )
    verdict = "ok" if ratio <= GOAL else "OVER TARGET"
    print(f"target multihome build per pod <= {GOAL}x Mininet's per host: {ratio:.2f}x, {verdict}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.mininet")
    parser.add_argument("--hosts", type=int, default=200)
    parser.add_argument("--agents", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--driver", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.driver is not None:
        return driver(args.driver)
    if os.geteuid() != 0:
        print("bench.mininet: run as root (namespaces, apt)", file=sys.stderr)
        return 2
    if not 1 <= args.agents <= args.hosts <= 1000:
        print("bench.mininet: 1 <= --agents <= --hosts <= 1000", file=sys.stderr)
        return 2
    if problem := ensure_mininet():
        print(f"bench.mininet: {problem}", file=sys.stderr)
        return 2
    from bench.labcli import MULTIHOME, code, machine, run, settle, state_dir

    print(machine())
    print(code())
    version = subprocess.run(["mn", "--version"], capture_output=True, text=True, check=False)
    print(f"mininet: {version.stdout.strip() or version.stderr.strip()}")
    res = Results(args.hosts, args.agents)
    started = time.monotonic()
    with state_dir("mh-bench-mininet-") as env, tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "vs-mininet.yaml"
        path.write_text(generate(args.agents, args.hosts))
        checked = run([MULTIHOME, "validate", str(path), "-o", "json"], env)
        if checked.code != 0 or json.loads(checked.stdout or "{}").get("findings"):
            print(f"bench.mininet: validate: {checked.stdout[:500]}", file=sys.stderr)
            return 1
        from bench.plugins_floor import plugins_round, prepare
        from multihome.lab.forkpool import attach_workers

        spec = prepare(path)
        try:
            for r in range(args.rounds):
                settle()
                res.mininet.append(mininet_round(args.hosts))
                settle()
                res.floors.append(plugins_round(spec, attach_workers()))
                settle()
                res.labs.append(lab_round(path, env, args.hosts))
                print(
                    f"  round {r + 1}/{args.rounds}: Mininet build {res.mininet[-1].build:.2f} s"
                    f", stop {res.mininet[-1].stop:.2f} s; plugins floor "
                    f"{res.floors[-1].build:.2f} s; multihome up {res.labs[-1].up:.2f} s"
                    f", down {res.labs[-1].down:.2f} s",
                    flush=True,
                )
        except (RuntimeError, subprocess.SubprocessError, OSError) as exc:
            print(f"bench.mininet: FAILED: {exc}", file=sys.stderr)
            return 1
    report(res, args.rounds)
    print(f"bench time {time.monotonic() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
