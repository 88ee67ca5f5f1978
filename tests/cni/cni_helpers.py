"""Helpers for the CNI runtime tests: fake plugins, node/pod namespaces, link queries."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kernel import CNI_BIN_DIR, ip, netns_path

from multihome.cni import CNIRuntime, NodeNamespaces, RuntimeConf

ALL_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0"]

FAKE_PLUGIN = """#!{python} -S
# Test-only CNI plugin: records every call, answers VERSION with SUPPORTED, and does what
# the "fake" key of its config says for the command: fail, exit, or add an IP to the result.
import json, os, sys
SUPPORTED = {supported!r}
RECORD = {record!r}
cmd = os.environ.get("CNI_COMMAND", "")
raw = sys.stdin.read()
with open(RECORD, "a") as f:
    f.write(json.dumps({{
        "plugin": os.path.basename(sys.argv[0]),
        "command": cmd,
        "env": {{k: v for k, v in os.environ.items() if k.startswith("CNI_")}},
        "stdin": json.loads(raw) if raw.strip() else None,
    }}) + "\\n")
if cmd == "VERSION":
    print(json.dumps({{"cniVersion": SUPPORTED[-1], "supportedVersions": SUPPORTED}}))
    sys.exit(0)
conf = json.loads(raw)
act = conf.get("fake", {{}}).get(cmd, {{}})
if "fail" in act:
    print(json.dumps(act["fail"]))
    sys.exit(1)
if "exit" in act:
    sys.stdout.write(act.get("stdout", ""))
    sys.stderr.write(act.get("stderr", ""))
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), act["signal"]) if "signal" in act else None
    sys.exit(act["exit"])
if cmd == "ADD":
    if "stdout" in act:
        sys.stdout.write(act["stdout"])
        sys.exit(0)
    version = conf["cniVersion"]
    result = dict(conf.get("prevResult") or {{}})
    result["cniVersion"] = version
    if "ip" in act:
        entry = {{"address": act["ip"]}}
        if version < "1.0.0":
            entry["version"] = "6" if ":" in act["ip"] else "4"
        result.setdefault("ips", []).append(entry)
    print(json.dumps(result))
"""

HANG_PLUGIN = """#!/bin/sh
# Test-only CNI plugin that hangs on ADD: it and a child sleep until killed.
case "$CNI_COMMAND" in
  VERSION) echo '{{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0"]}}'
           exit 0 ;;
  ADD) echo $$ >> {pidfile}
       sleep 300 &
       echo $! >> {pidfile}
       wait
       exit 0 ;;
esac
exit 0
"""


@dataclass
class Fakes:
    """Fake plugins in one directory, and the log of every call they received."""

    dir: Path
    record: Path

    def add(self, name: str, supported: Sequence[str] = ALL_VERSIONS) -> Path:
        path = self.dir / name
        path.write_text(
            FAKE_PLUGIN.format(
                python=sys.executable, supported=list(supported), record=str(self.record)
            )
        )
        path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        return path

    def add_hang(self, name: str, pidfile: Path) -> Path:
        path = self.dir / name
        path.write_text(HANG_PLUGIN.format(pidfile=pidfile))
        path.chmod(0o755)
        return path

    def calls(self, command: str | None = None) -> list[dict[str, Any]]:
        if not self.record.exists():
            return []
        rows = [json.loads(line) for line in self.record.read_text().splitlines()]
        return [r for r in rows if command is None or r["command"] == command]

    def sequence(self) -> list[tuple[str, str]]:
        return [(r["plugin"], r["command"]) for r in self.calls() if r["command"] != "VERSION"]


def fake_rt(**kw: Any) -> RuntimeConf:
    base: dict[str, Any] = {
        "container_id": "c0ffee",
        "netns": "/proc/self/ns/net",
        "ifname": "eth0",
    }
    base.update(kw)
    return RuntimeConf(**base)


@dataclass
class Node:
    """A node netns (where plugins run) and a pod netns (CNI_NETNS), both throw-away."""

    node: str
    pod: str
    tmp: Path

    @property
    def pod_path(self) -> str:
        return netns_path(self.pod)

    def runtime(self, *cni_path: str, timeout: float = 30.0, **kw: Any) -> CNIRuntime:
        return CNIRuntime(
            list(cni_path) or [CNI_BIN_DIR],
            self.tmp / "cache",
            node=NodeNamespaces(netns=netns_path(self.node)),
            timeout=timeout,
            **kw,
        )

    def rt(self, ifname: str = "eth0", container_id: str = "pod0", **kw: Any) -> RuntimeConf:
        return RuntimeConf(container_id=container_id, netns=self.pod_path, ifname=ifname, **kw)

    def pod_links(self) -> list[str]:
        return link_names(self.pod)

    def node_links(self) -> list[str]:
        return link_names(self.node)


def link_names(ns: str) -> list[str]:
    rows = json.loads(ip(ns, "-j", "link", "show"))
    return sorted(r["ifname"] for r in rows)


def addresses(ns: str, dev: str) -> list[str]:
    """The global-scope addresses of ``dev`` (link-local IPv6 left out)."""
    rows = json.loads(ip(ns, "-j", "addr", "show", "dev", dev))
    return [
        f"{a['local']}/{a['prefixlen']}"
        for r in rows
        for a in r["addr_info"]
        if a.get("scope") == "global"
    ]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purposes
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
