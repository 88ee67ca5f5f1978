"""What ``render`` raises. Each error carries the exit code the command line uses:
1 when the design (or a manifest in it) is at fault, 2 for usage and environment errors."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from multihome.check import Finding

EXIT_FAILED = 1
EXIT_USAGE = 2


class RenderError(Exception):
    """Base of the render errors: ``str()`` is one line, ``exit_code`` 1 or 2."""

    exit_code = EXIT_USAGE


class DesignInvalid(RenderError):
    """The lab fails ``validate``: ``findings`` holds every finding (errors and warnings)."""

    exit_code = EXIT_FAILED

    def __init__(self, findings: Sequence[Finding]) -> None:
        self.findings = tuple(findings)
        errors = sum(1 for f in self.findings if f.severity == "error")
        super().__init__(f"the lab has {errors} error(s); fix them first (multihome validate)")


class InvalidOutput(RenderError):
    """A file that would be written does not validate (e.g. a lab manifest against the
    Kubernetes schema)."""

    exit_code = EXIT_FAILED

    def __init__(self, path: str, problem: str) -> None:
        self.path = path
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class OutputConflict(RenderError):
    """A file to write exists already and ``force`` was not given; nothing was written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        super().__init__(
            f"{path} exists; nothing was written (use --force to overwrite, or another -o DIR)"
        )


class OutputError(RenderError):
    """The output directory can't be used or written."""


class TokenError(RenderError):
    """The token file can't be read, or the token is not usable."""
