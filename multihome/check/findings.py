"""What a design check reports: a finding with its id, severity, place, message and fix."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from multihome.spec import Location


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """One problem in a design. ``id`` is stable across releases (tests and CI match on it)."""

    id: str
    severity: Severity
    location: Location | None
    message: str
    fix: str

    def sort_key(self) -> tuple[str, int, int, str, str]:
        loc = self.location
        return (
            (loc.file, loc.line, loc.column, self.id, self.message)
            if loc
            else (
                "",
                0,
                0,
                self.id,
                self.message,
            )
        )

    def to_json(self) -> dict[str, Any]:
        loc = self.location
        return {
            "id": self.id,
            "severity": str(self.severity),
            "where": str(loc) if loc else None,
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "message": self.message,
            "fix": self.fix,
        }


def nodes_phrase(names: list[str], noun: str = "node") -> str:
    """``node a1`` or ``nodes a1, a2``: messages name every node concerned."""
    return f"{noun}{'s' if len(names) != 1 else ''} {', '.join(names)}"
