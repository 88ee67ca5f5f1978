"""Where ``up`` is, as it reports it: a ``Step`` per phase (and per pod attached), given to
a ``Progress`` callback (the CLI's live display)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    """A phase of ``up`` (``sandbox``, ``segments``, ``nodes``, ``hosts``, ``dhcp servers``,
    ``dhcp daemons``, ``removing pods``, ``pods``), with a count for pods."""

    phase: str
    done: int | None = None
    total: int | None = None
    item: str | None = None

    def __str__(self) -> str:
        count = f" {self.done}/{self.total}" if self.total is not None else ""
        return f"{self.phase}{count}{f' {self.item}' if self.item else ''}"


Progress = Callable[[Step], None]


def quiet(_: Step) -> None:
    """A Progress that shows nothing."""
