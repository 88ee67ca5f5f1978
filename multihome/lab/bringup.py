"""Bringing a lab up (``api.up``): plan, preflight, lock, sandbox, realize, status; or, on a
lab that runs, reconciling its pods with a changed file. Kept apart from ``api`` so that
``down``, ``get`` and ``exec`` start without importing the planner and netlink.

``up`` plans the lab, takes its lock, records and starts the sandbox, realizes the plan
inside it (``realize.realize`` through ``Sandbox.call``) and writes ``status.json`` and
``plan.json`` into the lab's directory, which ``get``, ``exec`` and ``verify`` read. Any
failure tears down what was built (from the journal). What runs inside the sandbox has the
lab's token in its environment (``MULTIHOME_LAB``), so every process it starts carries it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from multihome.plan import NodePlan, Plan, build_plan
from multihome.spec import LabFile

from . import (
    apiserver,
    daemons,
    design,
    netlink,
    nodes,
    preflight,
    realize,
    reconcile,
    sandbox,
)
from .api import (
    AGENT_ROLES,
    PLAN_FILE,
    SERVER_ROLES,
    LabError,
    LabRunning,
    load_plan,
    running,
    status_path,
)
from .names import host_netns
from .processes import ENV_LAB
from .state import LabLocked, LabState, StateError
from .steps import Progress, Step, quiet

T = TypeVar("T")


def up(
    lab_file: LabFile,
    progress: Progress = quiet,
    *,
    keep_going: bool = False,
    early: apiserver.Early | None = None,
) -> dict[str, Any]:
    """Build the lab; returns its status (as ``status()`` would). A pod whose attachment
    fails fails ``up`` (rolled back), or with ``keep_going`` stays ContainerCreating with
    its error, as on a real cluster. On a lab that runs, applies a change of its pods
    (``reconcile``; the status then says what in ``reconciled``), or raises
    ``LabRunning`` when nothing changed. ``early``: the lab's API server, started ahead
    (``apiserver.prestart``), to adopt."""
    state = LabState(lab_file.lab.metadata.name, new_token=early.lab_token if early else None)
    try:
        is_running = state.exists() and running(state)
    except StateError as exc:
        raise LabError(str(exc), code=2) from exc
    if is_running:
        return _reconcile(state, lab_file, progress, keep_going)
    plan = _checked_plan(lab_file, None)
    _collect_again()
    started = time.monotonic()
    try:
        state.acquire()
    except (LabLocked, StateError) as exc:
        raise LabError(str(exc), code=2) from exc
    try:
        if state.leftovers():  # left by a crashed up: clean it first
            state.teardown()
            state.acquire()
        state.prepare()
        token = state.token
        state.record("sandbox", plan.name, token=token)
        progress(Step("sandbox"))
        # its child mounts and starts the supervisor while this process writes the plan
        # and starts the API server (each waits on the kernel and a new process)
        starting = sandbox.begin(
            plan.name, str(state.scratch), mountpoints=nodes.NODE_MOUNTPOINTS, token=token
        )
        try:
            _write_plan(state, plan)
            design.write(state, lab_file)
            api_server = apiserver.start(state, early)  # its start-up runs while we build
        except BaseException:
            starting.abandon()
            raise
        sb = starting.wait()
        state.record("sandbox", plan.name, phase="done", **sb.to_dict())
        with _relay(progress) as emit:
            built = sb.call(_in_lab, token, realize.realize, plan, state, sb, emit, keep_going)
        progress(Step("api server"))
        apiserver.wait(state, api_server)
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


def reconcile_running(
    lab_file: LabFile, progress: Progress = quiet, *, keep_going: bool = False
) -> dict[str, Any]:
    """Apply a changed design to the lab that runs (as ``up`` does), never build one: a lab
    taken down meanwhile is a ``LabError`` (checked under the lab's lock)."""
    state = LabState(lab_file.lab.metadata.name)
    try:
        if not state.exists():
            raise LabError(f"lab {state.name!r} is not up", code=2)
    except StateError as exc:
        raise LabError(str(exc), code=2) from exc
    return _reconcile(state, lab_file, progress, keep_going)


def _placed(state: LabState) -> dict[str, str]:
    """Where the running lab's pods are: ``namespace/name`` -> node."""
    data = json.loads(state.read_text(status_path(state)))
    return {f"{p['namespace']}/{p['name']}": p["node"] for p in data["pods"]}


def _collect_again() -> None:
    """The cyclic garbage collector back on, if the caller (the CLI's ``up``) held it off
    through the start-up: what was made so far is frozen out of its passes. Before the
    build, whose forked processes run long at scale."""
    if not gc.isenabled():
        gc.enable()
        gc.freeze()


def _checked_plan(lab_file: LabFile, placed: dict[str, str] | None) -> Plan:
    plan = build_plan(lab_file, placed)
    try:
        preflight.check(plan)
    except preflight.PreflightError as exc:
        raise LabError(str(exc), code=2) from exc
    return plan


def _reconcile(
    state: LabState, lab_file: LabFile, progress: Progress, keep_going: bool
) -> dict[str, Any]:
    started = time.monotonic()
    try:
        state.acquire()  # first: what runs is read and changed by one process at a time
    except (LabLocked, StateError) as exc:
        raise LabError(str(exc), code=2) from exc
    try:
        if not running(state):  # taken down meanwhile: don't leave a lock-only directory
            state.teardown()
            raise LabError(f"lab {state.name!r} went down while up started: run up again")
        old = load_plan(state.name)
        plan = _checked_plan(lab_file, _placed(state))
        _collect_again()
        changed = reconcile.infrastructure_changes(old, plan)
        if changed:
            raise LabError(
                f"lab {plan.name!r} is up, and its {', '.join(changed)} changed: a running "
                f"lab takes changes of pods and NADs only; rebuild it (multihome down "
                f"{plan.name}, then up)",
                code=2,
            )
        if plan == old:
            raise LabRunning(
                f"lab {plan.name!r} is already up and matches the file (multihome down "
                f"{plan.name} to rebuild it)"
            )
        diff = reconcile.pod_diff(old, plan)
        before: dict[str, Any] = json.loads(state.read_text(status_path(state)))
        sb = sandbox.Sandbox.from_dict(before["sandbox"])
        gone = {p.ref for p in diff.removed}
        kept = {
            f"{p['namespace']}/{p['name']}": p
            for p in before["pods"]
            if f"{p['namespace']}/{p['name']}" not in gone
        }
        added: list[dict[str, Any]] = []
        if diff:
            try:
                with _relay(progress) as emit:
                    added = sb.call(
                        _in_lab, state.token, reconcile.apply,
                        old, plan, diff, state, sb, emit, keep_going,
                    )  # fmt: skip
            except Exception as exc:
                # what runs now: the kept pods; the plan stays the old one, so up retries
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
            "trunks": before.get("trunks"),
        }
        status = _status(plan, sb, built, time.monotonic() - started)
        status["created"] = before["created"]
        # e.g. only the expect entries changed: verify reads them from the plan
        status["reconciled"] = diff.summary() if diff else "no pod changes, plan updated"
        _write_plan(state, plan)
        design.write(state, lab_file)
        _write_status(state, status)
        return status
    finally:
        state.release()


def _in_lab(token: str, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` with the lab's token in the environment of what it starts (run in
    the sandbox's child, which exits after)."""
    os.environ[ENV_LAB] = token
    return fn(*args)


def _write_plan(state: LabState, plan: Plan) -> None:
    state.write_atomic(state.dir / PLAN_FILE, plan.model_dump_json(indent=2) + "\n")


def _write_status(state: LabState, status: dict[str, Any]) -> None:
    # no indent: json's C encoder then does it (indented, the Python one took ~0.1 s at 1000
    # pods, as up returns); `python -m json.tool` shows it indented
    state.write_atomic(status_path(state), json.dumps(status) + "\n")


_END = "end\n"


@contextlib.contextmanager
def _relay(progress: Progress) -> Iterator[Progress]:
    """A progress callback for the sandbox's child (and its workers): each step goes over a
    pipe to a thread here that calls ``progress``, so the caller's display stays in the
    caller's process."""
    reader, writer = os.pipe()

    def emit(step: Step) -> None:  # in the child; one write per step (< PIPE_BUF)
        os.write(writer, (json.dumps(dataclasses.asdict(step)) + "\n").encode())

    def pump() -> None:
        with open(reader, encoding="utf-8") as lines:
            for line in lines:
                if line == _END:
                    return
                # a display that fails (stderr closed, ...) must not stop the draining: the
                # child would block on a full pipe
                with contextlib.suppress(Exception):
                    progress(Step(**json.loads(line)))

    thread = threading.Thread(target=pump, name="up-progress", daemon=True)
    thread.start()
    try:
        yield emit
    finally:
        # the end is said, not inferred from EOF: a straggler of the child may hold the pipe
        os.write(writer, _END.encode())
        os.close(writer)
        thread.join()


def node_status(plan: Plan, node: NodePlan, facts: dict[str, str]) -> dict[str, Any]:
    """A node as ``status.json`` keeps it (what ``get nodes`` and the API's Node show),
    without the sandbox's paths; ``facts``: :func:`realize.host_facts`."""
    return {
        "name": node.name,
        "role": node.role,
        "roles": SERVER_ROLES if node.role == "server" else AGENT_ROLES,
        "version": plan.cluster.version,
        "internal_ip": str(node.node_ip),
        "external_ip": None,
        "os_image": facts["os_image"],
        "kernel": facts["kernel"],
        "container_runtime": "multihome://netns",
        "pod_cidr": str(node.pod_cidr),
        "taints": list(node.taints),
        "nics": [
            {
                "name": c.name,
                "network": c.network,
                "address": str(c.address) if c.address else None,
                "parent": c.parent,
                "vlan": c.vlan,
            }
            for c in node.nics
        ],
    }


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
                **node_status(plan, n, facts),
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
                "netns": netlink.netns_path(host_netns(h.name)),
                "nics": [
                    {
                        "name": c.name,
                        "network": c.network,
                        "address": str(c.address) if c.address else None,
                    }
                    for c in h.nics
                ],
                "http": h.http,
                "serves": serves.to_dict() if (serves := daemons.host_serves(h)) else None,
            }
            for h in plan.hosts
        ],
        "pods": built["pods"],
        "pending": built["pending"],
        "trunks": built.get("trunks"),
    }


def progress_to_stderr(step: Step) -> None:
    sys.stderr.write(f"  {step}\n")
    sys.stderr.flush()
