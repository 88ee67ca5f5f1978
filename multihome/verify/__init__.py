"""Probes and checks against a running lab: ``run(name) -> Report``.

``run`` reads what ``up`` left (the plan and the status), derives the checks
(``checks/``), gathers the evidence inside the lab's sandbox in one go (``collect``: the
kernel's view of the namespaces, probes run concurrently, streams measured on the switch's
counters) and judges it into a ``Report`` (``report``: table, JSON, JUnit XML).
"""

from __future__ import annotations

import dataclasses
import time

from multihome.lab import api, faults, sandbox
from multihome.lab.state import LabState
from multihome.plan import ScenarioPlan

from .checks import FAMILIES, Context
from .checks.base import explain, faults_behind
from .checks.leases import read_leases
from .collect import Evidence, Work, collect
from .probes import MAX_PROBES_AT_ONCE
from .report import CheckResult, Report
from .view import LabView, lab_view

__all__ = ["CheckResult", "Report", "VerifyError", "run"]


class VerifyError(RuntimeError):
    """verify could not run (no lab, lab not up): exit code 2."""

    code = 2


def load(name: str | None) -> tuple[Context, sandbox.Sandbox]:
    """The running lab ``name`` (the one lab up when None): its plan, status and sandbox."""
    try:
        status = api.status(name)
        plan = api.load_plan(status["name"])
    except (api.LabError, OSError, ValueError) as exc:
        raise VerifyError(f"cannot verify: {exc}") from exc
    view: LabView = lab_view(status)
    state = LabState(view.name)
    view = dataclasses.replace(
        view,
        node_dirs={n: str(state.node_dir(n)) for n in view.nodes},
        faults=tuple(faults.recorded(state)),
    )
    if not view.running:
        raise VerifyError(f"cannot verify: lab {view.name!r} is not running (its sandbox is gone)")
    return Context(plan, view), sandbox.Sandbox.from_dict(view.sandbox)


def _budget(work: Work) -> float:
    """How long collecting may take at most: the slowest probe for each round of probes run
    at once, every stream (one after the other), and time to read the namespaces."""
    slowest = max((p.deadline for p in work.probes.values()), default=0.0)
    rounds = -(-len(work.probes) // MAX_PROBES_AT_ONCE)
    return 30.0 + slowest * max(1, rounds) + sum(s.timeout for s in work.streams.values())


def run(name: str | None = None, *, scenario: ScenarioPlan | None = None) -> Report:
    """Verify the running lab ``name``; raises :class:`VerifyError` when it can't run.
    With ``scenario`` (its faults applied: see ``scenarios.run``): its ``expect`` entries
    instead of the lab's, and a derived check that fails where one of its faults is the
    likely cause is a skip (broken as the scenario means it to be), not a failure."""
    started = time.monotonic()
    ctx, sb = load(name)
    if scenario is not None:
        ctx.plan = ctx.plan.model_copy(update={"expect": scenario.expect})
    loaded = time.monotonic()
    work = Work(bridges=tuple(n.bridge for n in ctx.lab.networks.values()))
    judges = [derive(ctx, work) for derive in FAMILIES]
    try:
        evidence: Evidence = sb.call(collect, work, timeout=_budget(work))
    except (sandbox.SandboxError, OSError) as exc:
        raise VerifyError(f"cannot verify lab {ctx.lab.name!r}: {exc}") from exc
    evidence.leases = read_leases(ctx.lab.name, work.leases)  # the state's files, not the kernel's
    collected = time.monotonic()
    results = [explain(ctx, r) for judge in judges for r in judge(evidence)]
    if scenario is not None:
        results = [_expected(ctx, r) for r in results]
    done = time.monotonic()
    return Report(
        lab=ctx.lab.name if scenario is None else f"{ctx.lab.name} scenario {scenario.name}",
        checks=tuple(results),
        elapsed=done - started,
        timings={
            "load": loaded - started,
            "collect": collected - loaded,
            "judge": done - collected,
        },
    )


def _expected(ctx: Context, result: CheckResult) -> CheckResult:
    """Under a scenario, a derived check its faults break is a skip that says so."""
    if result.status != "fail" or result.id == "expect" or not faults_behind(ctx, result):
        return result
    cause = f"broken by the scenario's faults, as meant: {result.cause}"
    return dataclasses.replace(result, status="skip", cause=cause)
