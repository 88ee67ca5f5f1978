"""What-if scenarios (``verify --scenario NAME`` / ``--all-scenarios``): for each, apply its
faults to the running lab (``lab.faults``: recorded first, so ``down`` undoes them even if
verify dies), verify the scenario's ``expect`` entries and the derived checks, and undo the
faults, pass or fail. One ``Report`` a scenario.

A lab that already has faults is refused: its results would mix the two."""

from __future__ import annotations

from collections.abc import Sequence

from multihome.lab import api, faults
from multihome.plan import ScenarioPlan

from . import VerifyError, run
from .report import Report


def _scenarios(name: str | None, wanted: Sequence[str] | None) -> tuple[str, list[ScenarioPlan]]:
    try:
        lab = api.resolve_name(name)
        plan = api.load_plan(lab)
    except (api.LabError, OSError, ValueError) as exc:
        raise VerifyError(f"cannot verify: {exc}") from exc
    known = {s.name: s for s in plan.scenarios}
    if not known:
        raise VerifyError(
            f"lab {lab!r} has no scenarios: write them in its lab file (spec.scenarios) "
            "and run multihome up again"
        )
    if wanted is None:
        return lab, list(plan.scenarios)
    unknown = [w for w in wanted if w not in known]
    if unknown:
        raise VerifyError(
            f"lab {lab!r} has no scenario {', '.join(repr(u) for u in unknown)}: "
            f"its scenarios are {', '.join(known)}"
        )
    return lab, [known[w] for w in wanted]


def run_scenarios(name: str | None = None, wanted: Sequence[str] | None = None) -> list[Report]:
    """Verify the scenarios ``wanted`` (all of the lab's when None), one after the other,
    the lab restored after each. ``VerifyError`` (exit 2) when one can't run."""
    lab, chosen = _scenarios(name, wanted)
    present = faults.active(lab)
    if present:
        said = "; ".join(f"{f.label}: {f.text()}" for f in present)
        raise VerifyError(
            f"lab {lab!r} has faults ({said}): a scenario starts from a whole lab; "
            "multihome fault clear first"
        )
    return [run_scenario(lab, scenario) for scenario in chosen]


def run_scenario(lab: str, scenario: ScenarioPlan) -> Report:
    """Apply the scenario's faults, verify, undo them (also when verify fails)."""
    applied: list[int] = []
    try:
        for words in scenario.faults:
            verb, target, *rate = words
            try:
                made = faults.apply(lab, verb, target, rate[0] if rate else None)
            except faults.FaultError as exc:
                raise VerifyError(
                    f"scenario {scenario.name!r} (line {scenario.line}): {' '.join(words)}: {exc}"
                ) from exc
            applied.append(made.number)
        return run(lab, scenario=scenario)
    finally:
        if applied:
            faults.remove(lab, applied)
