"""What a design check reports: a finding with its id, severity, place, message and fix, and
its kind: whether a real cluster refuses the design or runs with it (what ``up`` does)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from multihome.spec import Location


class Severity(StrEnum):
    ERROR = "error"
    WARNING = "warning"


class Kind(StrEnum):
    """What a real cluster does with the design, hence what ``up`` does."""

    REFUSED = "refused"
    """The API server or the nodes' set-up refuses it (invalid names, duplicate NICs, unknown
    plugins, malformed configs): ``up`` builds nothing."""
    RUNS = "runs"
    """A design mistake a real cluster runs with: ``up`` builds it and warns, and verify
    shows what it does."""


RUNS_ANYWAY: frozenset[str] = frozenset(
    {
        # errors a real cluster runs with: the traffic goes the wrong way, some pods or nodes
        # fail, as they would there (every warning runs too)
        "node-ip-network",
        "node-ip-duplicate",
        "address-reserved",
        "address-in-dhcp-range",
        "address-duplicate",
        "subnet-overlap",
        "dhcp-range-reserved",
        "canal-iface-missing",
        "canal-iface-network",
        "nad-name-invalid",
        "nad-master-missing",
        "nad-mtu-too-big",
        "nad-dhcp-no-server",
        "nad-dhcp-no-uplink",
        "nad-ipvlan-dhcp",
        "nad-vlan-id-taken",
        "nad-vlan-one-per-node",
        "pod-network-unknown",
        "pod-unschedulable",
        "longhorn-network-unknown",
        "longhorn-master-missing",
        "longhorn-ipam-not-unique",
    }
)
"""Error ids of kind ``runs``; every other error is ``refused`` (a new check refuses until
it is listed here), every warning ``runs`` but those of LAB_CANNOT_BUILD."""

LAB_CANNOT_BUILD: frozenset[str] = frozenset({"nad-plugin-not-emulated"})
"""Warnings of kind ``refused``: a real cluster may run the design, the lab can't build it
(a plugin it does not emulate), so ``up`` builds nothing."""


def kind_of(id: str, severity: Severity) -> Kind:
    if id in LAB_CANNOT_BUILD:
        return Kind.REFUSED
    if severity is Severity.WARNING or id in RUNS_ANYWAY:
        return Kind.RUNS
    return Kind.REFUSED


def refusal_reason(findings: list[Finding]) -> str:
    """Why ``up`` builds nothing, given a design's findings: a real cluster would refuse the
    design, or only the lab can't build it."""
    refused = [f for f in findings if f.kind is Kind.REFUSED]
    if refused and all(f.id in LAB_CANNOT_BUILD for f in refused):
        return "the lab can't emulate this design (a real cluster may run it)"
    if any(f.id in LAB_CANNOT_BUILD for f in refused):
        return "a real cluster would refuse this design, and the lab can't emulate all of it"
    return "a real cluster would refuse this design"


@dataclass(frozen=True)
class Finding:
    """One problem in a design. ``id`` is stable across releases (tests and CI match on it)."""

    id: str
    severity: Severity
    location: Location | None
    message: str
    fix: str
    kind: Kind = Kind.REFUSED

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
            "kind": str(self.kind),
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
