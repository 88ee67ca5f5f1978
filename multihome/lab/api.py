"""The lab's Python API, used by the CLI and the tests: ``up``, ``down``, ``status``,
``exec_argv``.

``up`` plans the lab, takes its lock, records and starts the sandbox, realizes the plan
inside it (``realize.realize`` through ``Sandbox.call``) and writes ``status.json`` into the
lab's directory, which ``get`` and ``exec`` read. Any failure tears down what was built
(from the journal). ``down`` is that teardown: idempotent, and it works after ``up`` was
killed (SIGKILL) half-way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from multihome.plan import Plan, build_plan
from multihome.spec import LabFile

from . import daemons, netlink, nodes, ns, preflight, realize, reconcile, sandbox
from .state import LabLocked, LabState, list_labs

STATUS_FILE = "status.json"
PLAN_FILE = "plan.json"
SERVER_ROLES = "control-plane,etcd,master"
AGENT_ROLES = "worker"

Progress = Callable[[realize.Step], None]


class LabError(RuntimeError):
    """A lab action failed (``code`` 1) or could not be tried (``code`` 2)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class LabRunning(LabError):
    """``up`` of a lab that already runs."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=0)


def _quiet(_: realize.Step) -> None:
    return None


def _status_path(state: LabState) -> Path:
    return state.dir / STATUS_FILE


def running(state: LabState) -> bool:
    """Whether the lab's sandbox is alive and its status was written (``up`` finished)."""
    sb = state.sandbox()
    return sb is not None and sb.alive() and _status_path(state).exists()


def up(
    lab_file: LabFile, progress: Progress = _quiet, *, keep_going: bool = False
) -> dict[str, Any]:
    """Build the lab; returns its status (as ``status()`` would). A pod whose attachment
    fails fails ``up`` (rolled back), or with ``keep_going`` stays ContainerCreating with
    its error, as on a real cluster. On a lab that runs, applies a change of its pods
    (``reconcile``; the status then says what in ``reconciled``), or raises
    ``LabRunning`` when nothing changed."""
    state = LabState(lab_file.lab.metadata.name)
    placed = _placed(state) if state.exists() and running(state) else None
    plan = build_plan(lab_file, placed)
    try:
        preflight.check(plan)
    except preflight.PreflightError as exc:
        raise LabError(str(exc), code=2) from exc
    if placed is not None:
        return _reconcile(state, plan, progress, keep_going)
    started = time.monotonic()
    try:
        state.acquire()
    except LabLocked as exc:
        raise LabError(str(exc), code=2) from exc
    try:
        if state.journal_path.exists():  # left by a crashed up: clean it first
            state.teardown()
            state.acquire()
        state.prepare()
        (state.dir / PLAN_FILE).write_text(plan.model_dump_json(indent=2) + "\n")
        token = sandbox.new_token()
        state.record("sandbox", plan.name, token=token)
        progress(realize.Step("sandbox"))
        sb = sandbox.create(
            plan.name, str(state.scratch), mountpoints=nodes.NODE_MOUNTPOINTS, token=token
        )
        state.record("sandbox", plan.name, phase="done", **sb.to_dict())
        with _relay(progress) as emit:
            built = sb.call(realize.realize, plan, state, sb, emit, keep_going)
        status = _status(plan, sb, built, time.monotonic() - started)
        _write_status(state, status)
        return status
    except BaseException as exc:
        try:
            state.teardown()
        except Exception as cleanup:  # pragma: no cover - reported with the first error
            exc.add_note(f"rollback failed: {cleanup}")
        if isinstance(exc, Exception) and not isinstance(exc, LabError):
            raise LabError(f"up {plan.name!r} failed (rolled back): {exc}") from exc
        raise
    finally:
        state.release()


def _placed(state: LabState) -> dict[str, str]:
    """Where the running lab's pods are: ``namespace/name`` -> node."""
    data = json.loads(_status_path(state).read_text())
    return {f"{p['namespace']}/{p['name']}": p["node"] for p in data["pods"]}


def _reconcile(state: LabState, plan: Plan, progress: Progress, keep_going: bool) -> dict[str, Any]:
    started = time.monotonic()
    old = load_plan(plan.name)
    changed = reconcile.infrastructure_changes(old, plan)
    if changed:
        raise LabError(
            f"lab {plan.name!r} is up, and its {', '.join(changed)} changed: a running lab "
            f"takes changes of pods and NADs only; rebuild it (multihome down {plan.name}, "
            "then up)",
            code=2,
        )
    diff = reconcile.pod_diff(old, plan)
    if not diff:
        raise LabRunning(
            f"lab {plan.name!r} is already up and matches the file (multihome down "
            f"{plan.name} to rebuild it)"
        )
    try:
        state.acquire()
    except LabLocked as exc:
        raise LabError(str(exc), code=2) from exc
    try:
        before: dict[str, Any] = json.loads(_status_path(state).read_text())
        sb = sandbox.Sandbox.from_dict(before["sandbox"])
        gone = {p.ref for p in diff.removed}
        kept = {
            f"{p['namespace']}/{p['name']}": p
            for p in before["pods"]
            if f"{p['namespace']}/{p['name']}" not in gone
        }
        try:
            with _relay(progress) as emit:
                added = sb.call(reconcile.apply, old, plan, diff, state, sb, emit, keep_going)
        except Exception as exc:
            # what runs now: the kept pods; the file stays the old one, so up again retries
            before["pods"] = list(kept.values())
            _write_status(state, before)
            raise LabError(
                f"up {plan.name!r} could not apply the change ({diff.summary()}): {exc}. "
                f"The pods it was adding were removed again; not running now: "
                f"{', '.join(sorted(gone)) or 'none'}"
            ) from exc
        by_ref = {**kept, **{f"{p['namespace']}/{p['name']}": p for p in added}}
        built = {
            "pods": [by_ref[p.ref] for p in realize.placed_pods(plan) if p.ref in by_ref],
            "pending": [p.ref for p in plan.pods if p.node is None],
        }
        status = _status(plan, sb, built, time.monotonic() - started)
        status["created"] = before["created"]
        status["reconciled"] = diff.summary()
        (state.dir / PLAN_FILE).write_text(plan.model_dump_json(indent=2) + "\n")
        _write_status(state, status)
        return status
    finally:
        state.release()


def _write_status(state: LabState, status: dict[str, Any]) -> None:
    tmp = _status_path(state).with_suffix(".tmp")
    tmp.write_text(json.dumps(status, indent=2) + "\n")
    os.replace(tmp, _status_path(state))


_END = "end\n"


@contextlib.contextmanager
def _relay(progress: Progress) -> Iterator[Progress]:
    """A progress callback for the sandbox's child (and its workers): each step goes over a
    pipe to a thread here that calls ``progress``, so the caller's display stays in the
    caller's process."""
    reader, writer = os.pipe()

    def emit(step: realize.Step) -> None:  # in the child; one write per step (< PIPE_BUF)
        os.write(writer, (json.dumps(dataclasses.asdict(step)) + "\n").encode())

    def pump() -> None:
        with open(reader, encoding="utf-8") as lines:
            for line in lines:
                if line == _END:
                    return
                with contextlib.suppress(ValueError, TypeError):
                    progress(realize.Step(**json.loads(line)))

    thread = threading.Thread(target=pump, name="up-progress", daemon=True)
    thread.start()
    try:
        yield emit
    finally:
        # the end is said, not inferred from EOF: a straggler of the child may hold the pipe
        os.write(writer, _END.encode())
        os.close(writer)
        thread.join()


def down(name: str | None = None) -> list[str]:
    """Tear down lab ``name`` (every lab there is when None); returns the names removed."""
    names = [name] if name else list_labs()
    removed = []
    for lab in names:
        state = LabState(lab)
        if not state.exists():
            continue
        _teardown(state)
        removed.append(lab)
    return removed


def _teardown(state: LabState, grace: float = 3.0) -> None:
    """Teardown; when the lock's holder is dead (``up`` killed) its children may hold the
    lock a moment longer while they die: wait for them, up to ``grace`` seconds."""
    deadline = time.monotonic() + grace
    while True:
        try:
            state.teardown()
            return
        except LabLocked as exc:
            if _lock_holder_alive(state) or time.monotonic() > deadline:
                raise LabError(str(exc), code=2) from exc
            time.sleep(0.01)


def _lock_holder_alive(state: LabState) -> bool:
    try:
        pid = int((state.dir / "lock").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return False
    return ns.is_running(pid)


def resolve_name(name: str | None) -> str:
    """The lab a command means: ``name``, else the one lab there is."""
    if name:
        return name
    labs = list_labs()
    if len(labs) == 1:
        return labs[0]
    if not labs:
        raise LabError("no lab is up (multihome up first)", code=1)
    raise LabError(f"several labs are up ({', '.join(labs)}): name one", code=2)


def load_plan(name: str | None = None) -> Plan:
    """The plan the running lab was built from (``up`` keeps it beside the status)."""
    state = LabState(resolve_name(name))
    path = state.dir / PLAN_FILE
    if not path.exists():
        raise LabError(f"lab {state.name!r} is not up (no plan recorded)")
    return Plan.model_validate_json(path.read_text())


def status(name: str | None = None) -> dict[str, Any]:
    """The status ``up`` wrote, with ``running`` (the sandbox is alive) and node ages."""
    state = LabState(resolve_name(name))
    path = _status_path(state)
    if not path.exists():
        raise LabError(f"lab {state.name!r} is not up (or its up is still running)")
    data: dict[str, Any] = json.loads(path.read_text())
    data["running"] = running(state)
    return data


def exec_argv(target: str, argv: Sequence[str], name: str | None = None) -> list[str]:
    """The argv that runs ``argv`` in TARGET: ``NAMESPACE/POD``, a node or a host."""
    if not argv:
        raise LabError("exec needs a command after --", code=2)
    data = status(name)
    if not data["running"]:
        raise LabError(f"lab {data['name']!r} is not running (its sandbox is gone)")
    sb = sandbox.Sandbox.from_dict(data["sandbox"])
    if "/" in target:
        for pod in data["pods"]:
            if f"{pod['namespace']}/{pod['name']}" == target:
                return sb.command(argv, netns=pod["netns"])
        raise LabError(f"no pod {target!r} in lab {data['name']!r}", code=2)
    for node in data["nodes"]:
        if node["name"] == target:
            return sb.command(argv, netns=node["netns"], mntns=node["mntns"])
    for host in data["hosts"]:
        if host["name"] == target:
            return sb.command(argv, netns=host["netns"])
    raise LabError(f"no node, host or pod {target!r} in lab {data['name']!r}", code=2)


def run(target: str, argv: Sequence[str], name: str | None = None) -> int:
    """Run ``argv`` in TARGET with this process's stdin/stdout/stderr; its exit code."""
    return subprocess.run(exec_argv(target, argv, name), check=False).returncode


def _status(
    plan: Plan, sb: sandbox.Sandbox, built: dict[str, Any], elapsed: float
) -> dict[str, Any]:
    facts = realize.host_facts()
    return {
        "name": plan.name,
        "created": time.time(),
        "elapsed": round(elapsed, 3),
        "sandbox": sb.to_dict(),
        "nodes": [
            {
                "name": n.name,
                "role": n.role,
                "roles": SERVER_ROLES if n.role == "server" else AGENT_ROLES,
                "version": plan.cluster.version,
                "internal_ip": str(n.node_ip),
                "external_ip": None,
                "os_image": facts["os_image"],
                "kernel": facts["kernel"],
                "container_runtime": "multihome://netns",
                "pod_cidr": str(n.pod_cidr),
                "taints": list(n.taints),
                "nics": [
                    {
                        "name": c.name,
                        "network": c.network,
                        "address": str(c.address) if c.address else None,
                    }
                    for c in n.nics
                ],
                "netns": netlink.netns_path(n.name),
                "mntns": os.path.join(sb.ns_dir, n.name),
            }
            for n in plan.nodes
        ],
        "networks": [
            {
                "name": n.name,
                "vlan": n.vlan,
                "subnet": str(n.subnet),
                "gateway": str(n.gateway) if n.gateway else None,
                "mtu": n.mtu,
                "bridge": n.bridge,
                "dhcp": None
                if n.dhcp is None
                else {
                    "range": f"{n.dhcp.start}-{n.dhcp.end}",
                    "lease_time": n.dhcp.lease_time,
                    "router": str(n.dhcp.router) if n.dhcp.router else None,
                    "server": str(n.dhcp.server),
                },
                "attachments": [f"{a.machine}/{a.nic}" for a in n.attachments],
            }
            for n in plan.networks
        ],
        "hosts": [
            {
                "name": h.name,
                "netns": netlink.netns_path(f"host-{h.name}"),
                "nics": [
                    {
                        "name": c.name,
                        "network": c.network,
                        "address": str(c.address) if c.address else None,
                    }
                    for c in h.nics
                ],
                "http": h.http,
                "serves": daemons.host_serves(h).to_dict() if daemons.host_serves(h) else None,
            }
            for h in plan.hosts
        ],
        "pods": built["pods"],
        "pending": built["pending"],
    }


def progress_to_stderr(step: realize.Step) -> None:
    sys.stderr.write(f"  {step}\n")
    sys.stderr.flush()
