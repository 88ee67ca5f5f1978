"""The lab's Python API, used by the CLI and the tests: ``up``, ``down``, ``status``,
``exec_argv``, ``load_plan``, ``check_design``.

``up`` is ``bringup.up`` (imported when called: the planner and netlink are not needed by
the other commands). ``down`` is the teardown from the journal: idempotent, and it works
after ``up`` was killed (SIGKILL) half-way; it removes only directories a lab made (with
its marker) and signals only processes that prove they are the lab's (see ``state``).
``status`` and ``exec_argv`` read the ``status.json`` that ``up`` wrote. A state
directory that can't be trusted (a link, a FIFO, another owner, ...) is a ``LabError``
with code 2.

``up`` is gated by validate's checks (``check_design``): a design a real cluster would refuse
is not built at all (``DesignRefused``); the mistakes a real cluster runs with are built.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import ns, sandbox
from .state import LabLocked, LabState, StateError, check_root, lab_names, list_labs, state_root
from .steps import Progress, quiet

if TYPE_CHECKING:
    from multihome.check import Finding
    from multihome.plan import Plan
    from multihome.spec import LabFile

    from . import apiserver

STATUS_FILE = "status.json"
PLAN_FILE = "plan.json"
SERVER_ROLES = "control-plane,etcd,master"
AGENT_ROLES = "worker"


class LabError(RuntimeError):
    """A lab action failed (``code`` 1) or could not be tried (``code`` 2)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


class LabRunning(LabError):
    """``up`` of a lab that already runs."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=0)


class DesignRefused(LabError):
    """``up`` of a design that a real cluster would refuse: nothing was built. ``findings``
    are validate's (every one of them, refused first); ``str()`` is a heading line, then one
    line (``file:line:col: message``) for each refused finding."""

    def __init__(self, findings: list[Finding]) -> None:
        from multihome.check import Kind
        from multihome.check.findings import refusal_reason

        self.findings = sorted(findings, key=lambda f: f.kind is not Kind.REFUSED)
        refused = [f for f in findings if f.kind is Kind.REFUSED]
        lines = [f"{f.location}: {f.message}" if f.location else f.message for f in refused]
        super().__init__(
            f"not built: {refusal_reason(refused)} ({len(refused)} "
            "problem(s); multihome validate shows them all):\n" + "\n".join(lines),
            code=1,
        )


def check_design(lab_file: LabFile) -> list[Finding]:
    """validate's findings of a design that ``up`` builds (the mistakes a real cluster runs
    with, which ``up`` builds anyway); :class:`DesignRefused` when a real cluster would refuse
    it (the checks take milliseconds: the CLI and ``up`` each run them)."""
    from multihome.check import refusals, run_checks

    findings = run_checks(lab_file)
    if refusals(findings):
        raise DesignRefused(findings)
    return findings


def status_path(state: LabState) -> Path:
    return state.dir / STATUS_FILE


def running(state: LabState) -> bool:
    """Whether the lab's sandbox is alive and its status was written (``up`` finished)."""
    if not state.is_lab():
        return False
    sb = state.sandbox()
    return sb is not None and sb.alive() and state.has(status_path(state))


def up(
    lab_file: LabFile,
    progress: Progress = quiet,
    *,
    keep_going: bool = False,
    checked: bool = False,
    early: apiserver.Early | None = None,
) -> dict[str, Any]:
    """Build the lab (see ``bringup.up``); returns its status (as ``status()`` would).
    First the gate: :class:`DesignRefused` (nothing built) for a design a real cluster
    would refuse (see :func:`check_design`); ``checked``: the caller ran it on this
    ``lab_file`` already (the CLI, which prints the findings). ``early``: the lab's API
    server started ahead (``apiserver.prestart``; the caller releases it whatever
    happens)."""
    from . import bringup

    if not checked:
        check_design(lab_file)

    return bringup.up(lab_file, progress, keep_going=keep_going, early=early)


def down(name: str | None = None) -> list[str]:
    """Tear down lab ``name`` (every lab there is when None); returns the names removed.
    What has a lab's name but was not made by a lab is left untouched: a ``LabError``
    (code 2) says what was found, after the labs there are were removed."""
    try:
        if name:
            names = [name]
        else:
            root = state_root()
            if not os.path.lexists(root):
                return []
            check_root(root)
            names = lab_names(root)
    except StateError as exc:
        raise LabError(str(exc), code=2) from exc
    removed: list[str] = []
    refused: list[str] = []
    for lab in names:
        state = LabState(lab)
        if not state.exists():
            continue
        try:
            _teardown(state)
        except StateError as exc:
            refused.append(str(exc))
            continue
        removed.append(lab)
    if refused:
        done = f" (removed lab {', '.join(removed)})" if removed else ""
        raise LabError("\n".join(refused) + done, code=2)
    return removed


def _teardown(state: LabState, grace: float = 3.0, own_wait: float = 60.0) -> None:
    """Teardown; when the lock's holder is dead (``up`` killed) its children may hold the
    lock a moment longer while they die: wait for them, up to ``grace`` seconds. A holder
    that is the lab's own (its API server's reconcile of a write: it carries the lab's
    token) is waited for, up to ``own_wait`` seconds."""
    now = time.monotonic()
    deadline, own_deadline = now + grace, now + own_wait
    while True:
        try:
            state.teardown()
            return
        except LabLocked as exc:
            alive = _lock_holder_alive(state)
            if alive and _lock_holder_is_the_labs(state) and time.monotonic() < own_deadline:
                time.sleep(0.05)
                continue
            if alive or time.monotonic() > deadline:
                raise LabError(str(exc), code=2) from exc
            time.sleep(0.01)


def _lock_holder_is_the_labs(state: LabState) -> bool:
    from .processes import ENV_LAB, environment

    pid = state.lock_holder()
    try:
        token = state.token
    except StateError:
        return False
    return pid is not None and f"{ENV_LAB}={token}".encode() in environment(pid)


def _lock_holder_alive(state: LabState) -> bool:
    pid = state.lock_holder()
    return pid is not None and ns.is_running(pid)


def resolve_name(name: str | None) -> str:
    """The lab a command means: ``name``, else the one lab there is."""
    if name:
        return name
    try:
        labs = list_labs()
    except StateError as exc:
        raise LabError(str(exc), code=2) from exc
    if len(labs) == 1:
        return labs[0]
    if not labs:
        raise LabError("no lab is up (multihome up first)", code=2)
    raise LabError(f"several labs are up ({', '.join(labs)}): name one", code=2)


def load_plan(name: str | None = None) -> Plan:
    """The plan the running lab was built from (``up`` keeps it beside the status)."""
    from multihome.plan import Plan

    state = LabState(resolve_name(name))
    try:
        text = state.read_text(state.dir / PLAN_FILE)
    except FileNotFoundError:
        raise LabError(f"lab {state.name!r} is not up (no plan recorded)", code=2) from None
    except StateError as exc:
        raise LabError(str(exc), code=2) from exc
    return Plan.model_validate_json(text)


def status(name: str | None = None) -> dict[str, Any]:
    """The status ``up`` wrote, with ``running`` (the sandbox is alive) and node ages."""
    state = LabState(resolve_name(name))
    try:
        data: dict[str, Any] = json.loads(state.read_text(status_path(state)))
        data["running"] = running(state)
    except FileNotFoundError:
        raise LabError(
            f"lab {state.name!r} is not up (or its up is still running)", code=2
        ) from None
    except StateError as exc:
        raise LabError(str(exc), code=2) from exc
    return data


# A container does not see the node's /run/netns: ``ip`` in a pod names its peers by
# link-netnsid, as in the post's pods, not by the lab's namespace names.
_CONTAINER_VIEW = (
    "unshare", "--mount", "--", "sh", "-c",
    'mount -t tmpfs -o size=4k,mode=0755 tmpfs /run/netns && exec "$@"', "sh",
)  # fmt: skip


def exec_argv(target: str, argv: Sequence[str], name: str | None = None) -> list[str]:
    """The argv that runs ``argv`` in TARGET: ``NAMESPACE/POD``, a node or a host."""
    if not argv:
        raise LabError("exec needs a command after --", code=2)
    data = status(name)
    if not data["running"]:
        raise LabError(f"lab {data['name']!r} is not running (its sandbox is gone)", code=2)
    sb = sandbox.Sandbox.from_dict(data["sandbox"])
    if "/" in target:
        for pod in data["pods"]:
            if f"{pod['namespace']}/{pod['name']}" == target:
                return sb.command([*_CONTAINER_VIEW, *argv], netns=pod["netns"])
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
