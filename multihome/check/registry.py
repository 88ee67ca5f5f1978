"""The list of design checks and the runner that applies them to a loaded lab."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from multihome.check.context import Context
from multihome.check.findings import Finding, Kind
from multihome.spec import LabFile

Check = Callable[[Context], Iterable[Finding]]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    """Register a design check (a function of the context yielding findings)."""
    CHECKS.append(fn)
    return fn


def run_checks(lab_file: LabFile) -> list[Finding]:
    """Every finding of every check, sorted by place then id; duplicates dropped."""
    ctx = Context(lab_file)
    seen: set[Finding] = set()
    findings: list[Finding] = []
    for fn in CHECKS:
        for finding in fn(ctx):
            if finding not in seen:
                seen.add(finding)
                findings.append(finding)
    return sorted(findings, key=Finding.sort_key)


def refusals(findings: list[Finding]) -> list[Finding]:
    """The findings a real cluster would refuse (``up`` builds nothing when there is one)."""
    return [f for f in findings if f.kind is Kind.REFUSED]
