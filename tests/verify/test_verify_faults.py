"""Faults inside a running seed lab are named by verify and by up's likely cause: a dead
DHCP server (dnsmasq killed), a dead CNI dhcp daemon, a node NIC deleted."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import time
from pathlib import Path

from verifykit import lab_up

from multihome import verify
from multihome.lab import api, nodes, pods, sandbox
from multihome.lab.state import LabState
from multihome.plan import build_plan
from multihome.spec import load_lab


def _kill_recorded(lab: str, name: str) -> None:
    """SIGKILL a process the lab started, by the PID its journal recorded, once /proc
    confirms it is that process (its start time)."""
    entries = [
        json.loads(line)
        for line in (LabState(lab).dir / "journal.jsonl").read_text().splitlines()
        if line.strip()
    ]
    entry = next(
        e for e in entries if e.get("kind") == "process" and e.get("name") == name and "pid" in e
    )
    pid, started = int(entry["pid"]), int(entry["start_time"])
    stat = Path(f"/proc/{pid}/stat").read_text()
    assert int(stat.rsplit(")", 1)[1].split()[19]) == started
    with contextlib.suppress(ProcessLookupError):  # gone already: the fault is there
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # gone, or a zombie of the sandbox
        try:
            if ") Z " in Path(f"/proc/{pid}/stat").read_text():
                break
        except (FileNotFoundError, ProcessLookupError):  # reaped (ESRCH while being reaped)
            break
        time.sleep(0.02)


def test_dead_services_and_a_lost_nic_are_named(tmp_path: Path) -> None:
    lab_file = load_lab(None)
    with lab_up(lab_file, tmp_path) as name:
        _kill_recorded(name, "dnsmasq-vlan50")
        _kill_recorded(name, "dhcp-daemon-multi-homed-wrk-2")
        done = subprocess.run(
            api.exec_argv("multi-homed-wrk-3", ["ip", "link", "del", "ens224"], name),
            capture_output=True,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        report = verify.run(name)
        failed = {(c.id, c.subject): c for c in report.checks if c.status == "fail"}
        assert "nothing answers DHCP on vlan50" in (failed[("dhcp-server", "vlan50")].cause or "")
        assert ("dhcp-server", "vlan60") not in failed
        daemon = failed[("dhcp-daemon", "multi-homed-wrk-2")]
        assert "the CNI dhcp daemon is not running on multi-homed-wrk-2" in (daemon.cause or "")
        nics = failed[("nics", "multi-homed-wrk-3")]
        assert "multi-homed-wrk-3 has no ens224" in (nics.cause or "")
        status = api.status(name)
        ims = {  # Longhorn's instance-managers by node (one or two a node, by version)
            p["node"]: f"{p['namespace']}/{p['name']}"
            for p in status["pods"]
            if p["namespace"] == "longhorn-system"
        }
        lost = failed[("interfaces", ims["multi-homed-wrk-3"])]
        assert "its master ens224 is gone from multi-homed-wrk-3" in (lost.cause or "")

        # what up would name, had a pod failed to attach on wrk-1 (vlan50's DHCP) or wrk-2
        sb = sandbox.Sandbox.from_dict(status["sandbox"])
        plan = build_plan(
            lab_file, {p["namespace"] + "/" + p["name"]: p["node"] for p in status["pods"]}
        )
        where = {n["name"]: n for n in status["nodes"]}

        def cause(pod_ref: str) -> str | None:
            pod = next(p for p in plan.pods if p.ref == pod_ref)
            entry = where[pod.node or ""]
            node = nodes.Node(
                entry["name"],
                entry["netns"],
                entry["mntns"],
                str(LabState(name).node_dir(entry["name"])),
            )
            return sb.call(pods.likely_cause, plan, pod, node)

        on_wrk1 = cause("multus-network-attachments/net-tools")
        assert on_wrk1 and "the DHCP server on vlan50 (172.16.50.254) does not answer" in on_wrk1
        on_wrk2 = cause(ims["multi-homed-wrk-2"])
        assert on_wrk2 and "the CNI dhcp daemon on multi-homed-wrk-2 does not answer" in on_wrk2
