"""The verdict: each check's result with its evidence and, for a failure, the likely cause;
shown as a table (rich), JSON, or JUnit XML for CI systems."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any, Literal

from rich import box
from rich.table import Table
from rich.text import Text

Status = Literal["pass", "fail", "skip"]
PASS_LINES = 1
"""Evidence lines the table shows for a check that passed (all of them for a failure;
``-o json`` has every line)."""


@dataclass(frozen=True)
class CheckResult:
    """One check. ``id`` is its kind (``interfaces``, ``default-route``, ``expect``, ...),
    ``subject`` what it is about (a pod, ``cluster network``, ``expect #1``), ``title`` what
    it proves, in a user's words."""

    id: str
    subject: str
    title: str
    status: Status
    evidence: tuple[str, ...] = ()
    cause: str | None = None
    """For a failure: the likely cause and what to change; for a skip: why."""
    tier: str | None = None
    """Against a cluster's API: the tier whose evidence it needs (``read-only``, ``exec``,
    ``probes``); None for the lab's own verify."""

    @property
    def name(self) -> str:
        return f"{self.id} {self.subject}"

    def to_json(self) -> dict[str, Any]:
        found = {
            "id": self.id,
            "subject": self.subject,
            "title": self.title,
            "status": self.status,
            "evidence": list(self.evidence),
            "cause": self.cause,
        }
        if self.tier is not None:
            found["tier"] = self.tier
        return found


@dataclass(frozen=True)
class Report:
    lab: str
    checks: tuple[CheckResult, ...]
    elapsed: float
    timings: dict[str, float] = field(default_factory=dict)
    """Seconds per phase: ``load``, ``collect``, ``judge``."""

    def count(self, status: Status) -> int:
        return sum(1 for c in self.checks if c.status == status)

    @property
    def ok(self) -> bool:
        return self.count("fail") == 0

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(c for c in self.checks if c.status == "fail")

    def summary(self) -> str:
        verdict = "OK" if self.ok else "FAIL"
        parts = [f"{self.count('pass')} passed", f"{self.count('fail')} failed"]
        if self.count("skip"):
            parts.append(f"{self.count('skip')} skipped")
        return f"{verdict} {self.lab}: {', '.join(parts)} in {self.elapsed:.2f} s"

    # -- outputs ----------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "lab": self.lab,
            "ok": self.ok,
            "passed": self.count("pass"),
            "failed": self.count("fail"),
            "skipped": self.count("skip"),
            "elapsed": round(self.elapsed, 3),
            "checks": [c.to_json() for c in self.checks],
        }

    def json_text(self) -> str:
        return json.dumps(self.to_json(), indent=2) + "\n"

    def table(self) -> Table:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, expand=False)
        table.add_column("CHECK", no_wrap=True)
        table.add_column("RESULT", no_wrap=True)
        table.add_column("WHAT AND EVIDENCE")
        colours = {"pass": "green", "fail": "bold red", "skip": "yellow"}
        for check in self.checks:
            details = Text(check.title)
            shown = check.evidence if check.status == "fail" else check.evidence[:PASS_LINES]
            for line in shown:
                details.append("\n  " + line, style="dim" if check.status != "fail" else "")
            if check.cause:
                label = "likely cause: " if check.status == "fail" else "skipped: "
                details.append("\n" + label, style="bold")
                details.append(check.cause)
            table.add_row(
                Text(check.id) + Text(f"\n({check.tier})", style="dim")
                if check.tier
                else Text(check.id),
                Text(check.status.upper(), style=colours[check.status]),
                details,
            )
        return table

    def plain(self) -> str:
        """The table as plain text (a log, CI): CHECK and RESULT aligned, then what it
        proves; the evidence and cause on their own lines below, whole, never wrapped."""
        width = max([len("CHECK"), *(len(c.id) for c in self.checks)])
        lines = [f"{'CHECK'.ljust(width)}   RESULT   WHAT AND EVIDENCE"]
        indent = " " * (width + 12)
        for check in self.checks:
            tier = f" [{check.tier}]" if check.tier else ""
            lines.append(
                f"{check.id.ljust(width)}   {check.status.upper():<6}   {check.title}{tier}"
            )
            shown = check.evidence if check.status == "fail" else check.evidence[:PASS_LINES]
            lines += [f"{indent}  {line}" for line in shown]
            if check.cause:
                label = "likely cause: " if check.status == "fail" else "skipped: "
                lines.append(f"{indent}{label}{check.cause}")
        return "\n".join(lines) + "\n"

    def junit(self) -> str:
        """JUnit XML: one test suite, one test case per check (failures with the cause as
        message and the evidence as text, skips with the reason)."""
        return junit_document([self])

    def junit_suite(self) -> ET.Element:
        """This report as one JUnit test suite."""
        suite = ET.Element(
            "testsuite",
            name=f"multihome verify {self.lab}",
            tests=str(len(self.checks)),
            failures=str(self.count("fail")),
            errors="0",
            skipped=str(self.count("skip")),
            time=f"{self.elapsed:.3f}",
        )
        for check in self.checks:
            case = ET.SubElement(
                suite, "testcase", classname=f"multihome.verify.{check.id}", name=check.subject
            )
            if check.tier is not None:
                props = ET.SubElement(case, "properties")
                ET.SubElement(props, "property", name="tier", value=check.tier)
            if check.status == "fail":
                failure = ET.SubElement(
                    case, "failure", message=check.cause or check.title, type=check.id
                )
                failure.text = "\n".join((check.title, *check.evidence))
            elif check.status == "skip":
                ET.SubElement(case, "skipped", message=check.cause or "skipped")
            else:
                out = ET.SubElement(case, "system-out")
                out.text = "\n".join((check.title, *check.evidence))
        return suite


def junit_document(reports: list[Report]) -> str:
    """JUnit XML with one test suite per report (``verify --all-scenarios``: one a scenario)."""
    root = ET.Element("testsuites", name="multihome verify")
    for report in reports:
        root.append(report.junit_suite())
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"
