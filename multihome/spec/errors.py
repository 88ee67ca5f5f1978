"""Where a problem is (``Location``) and the one exception the loader raises (``SpecError``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Location:
    """A place in a file; ``line`` and ``column`` are 1-based."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) collapsed to one space."""
    return " ".join(text.split())


class SpecError(Exception):
    """A problem with the lab file or a manifest it names.

    ``message`` says what is wrong, ``location`` where (None when there is no place in a
    file, e.g. a file that does not exist), ``hint`` how to fix it. ``str()`` is always
    one line: ``file:line:col: message; hint``. Only the first problem (in file order) is
    raised; when one document had several, the others are in ``more`` (same form).
    """

    def __init__(
        self,
        message: str,
        location: Location | None = None,
        hint: str | None = None,
        more: Iterable[SpecError] = (),
    ) -> None:
        self.message = one_line(message)
        self.location = location
        self.hint = one_line(hint) if hint else None
        self.more: tuple[SpecError, ...] = tuple(more)
        super().__init__(str(self))

    def __str__(self) -> str:
        text = self.message
        if self.location is not None:
            text = f"{self.location}: {text}"
        if self.hint:
            text = f"{text}; {self.hint}"
        return text

    def __repr__(self) -> str:
        return f"SpecError({str(self)!r})"
