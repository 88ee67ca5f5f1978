"""The package's exceptions: invalid configs (ConfigError) and failed plugin calls (CNIError).

A CNIError carries the CNI error triple (code, msg, details) that a plugin printed, plus which
plugin and command failed. Failures the runtime itself sees (a plugin that is missing, crashed
without printing an error, printed garbage, or ran past its deadline) use code 0, which the CNI
spec leaves unassigned, so a caller can tell them from plugin-reported errors.
"""

from __future__ import annotations

# Well-known CNI error codes (SPEC.md, "Error"); 100 and up belong to plugins.
INCOMPATIBLE_VERSION = 1
UNSUPPORTED_FIELD = 2
UNKNOWN_CONTAINER = 3
INVALID_ENV = 4
IO_FAILURE = 5
DECODE_FAILURE = 6
INVALID_CONFIG = 7
TRY_AGAIN_LATER = 11
RUNTIME_FAILURE = 0  # not a plugin-reported code: the runtime saw the failure itself


class ConfigError(ValueError):
    """An invalid network config or runtime parameter; the message names the bad field."""

    def __init__(self, field: str, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


def _one_line(text: str) -> str:
    return " ".join(text.split())


class CNIError(Exception):
    """A plugin call that failed: the CNI error triple plus which plugin and command."""

    def __init__(
        self,
        code: int,
        msg: str,
        details: str = "",
        *,
        plugin: str | None = None,
        command: str | None = None,
        network: str | None = None,
    ) -> None:
        self.code = code
        self.msg = msg
        self.details = details
        self.plugin = plugin
        self.command = command
        self.network = network
        super().__init__(code, msg, details)

    def __str__(self) -> str:
        where = " ".join(part for part in (self.plugin, self.command) if part)
        if self.network:
            where = f"{where} (network {self.network})" if where else f"network {self.network}"
        text = _one_line(self.msg) or "failed"
        if self.details:
            text = f"{text}: {_one_line(self.details)}"
        code = f" [code {self.code}]" if self.code else ""
        return f"{where}: {text}{code}" if where else f"{text}{code}"

    def to_json(self) -> dict[str, object]:
        """The error as a CNI plugin would print it."""
        out: dict[str, object] = {"code": self.code, "msg": self.msg}
        if self.details:
            out["details"] = self.details
        return out


class CNITimeout(CNIError):
    """A plugin ran past the runtime's deadline; its process group was killed."""
