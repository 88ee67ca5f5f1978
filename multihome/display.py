"""The live view of ``multihome up`` on stderr: each phase with a tick and how long it took,
the pods counted as they are attached. On a terminal it is a rich Live display; otherwise
(CI logs, pipes) one plain line per finished phase. Phases and items are printed as
``rich.text.Text``: literal whatever they hold, on any console."""

from __future__ import annotations

import time
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from multihome.lab.steps import Step


class BuildDisplay:
    """Feed it ``Step``s (it is the ``progress`` callback of ``api.up``)."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.done: list[tuple[str, float, str]] = []  # phase, seconds, detail
        self.current: Step | None = None
        self.started = time.monotonic()
        self.phase_started = self.started
        self._live: Live | None = None
        self._spinner = Spinner("dots", style="cyan")

    def __enter__(self) -> BuildDisplay:
        if self.console.is_terminal:
            self._live = Live(
                self._render(), console=self.console, refresh_per_second=12, transient=False
            )
            self._live.__enter__()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self._finish_phase()
        if self._live is not None:
            self._live.update(self._render(final=True))
            self._live.__exit__(exc_type, exc, tb)

    def __call__(self, step: Step) -> None:
        if self.current is None or step.phase != self.current.phase:
            self._finish_phase()
            self.phase_started = time.monotonic()
        self.current = step
        if self._live is not None:
            self._live.update(self._render())

    def _finish_phase(self) -> None:
        step = self.current
        if step is None:
            return
        seconds = time.monotonic() - self.phase_started
        detail = f"{step.done}/{step.total}" if step.total is not None else ""
        self.done.append((step.phase, seconds, detail))
        self.current = None
        if self._live is None:
            extra = f" {detail}" if detail else ""
            self.console.print(Text(f"  {step.phase}{extra} ({seconds:.2f} s)"), highlight=False)

    def _render(self, final: bool = False) -> RenderableType:
        table = Table.grid(padding=(0, 1))
        table.add_column(width=2)
        table.add_column(min_width=14)
        table.add_column(justify="right", min_width=7)
        table.add_column()
        for phase, seconds, detail in self.done:
            table.add_row(Text("✓", "green"), Text(phase), Text(f"{seconds:.2f} s"), Text(detail))
        step = self.current
        if step is not None and not final:
            count = f"{step.done}/{step.total}" if step.total is not None else ""
            text = Text(count)
            if step.item:
                text.append(f" {step.item}", style="dim")
            table.add_row(self._spinner, Text(step.phase), Text(""), text)
        return Group(table)
