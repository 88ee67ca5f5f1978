"""The RKE2 join token: read from a file the user names, else from ``MULTIHOME_RKE2_TOKEN``.
Never invented: without one, the rendered configs carry a placeholder telling the user to
set it."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from multihome.render.errors import TokenError

TOKEN_ENV = "MULTIHOME_RKE2_TOKEN"
MAX_TOKEN = 4096


@dataclass(frozen=True)
class Token:
    """A token and where it came from (``--token-file PATH`` or the variable's name)."""

    value: str
    source: str

    def __repr__(self) -> str:
        return f"Token(source={self.source!r})"  # never the value


def _checked(value: str, source: str) -> Token:
    value = value.strip()
    if not value:
        raise TokenError(f"the token from {source} is empty")
    if len(value) > MAX_TOKEN:
        raise TokenError(f"the token from {source} is longer than {MAX_TOKEN} characters")
    if any(c.isspace() or not c.isprintable() for c in value):
        raise TokenError(
            f"the token from {source} contains whitespace or control characters; "
            "a file should hold the token alone (e.g. a copy of the server's node-token)"
        )
    return Token(value, source)


@dataclass(frozen=True)
class TokenSource:
    """Where to look for the token: ``token_file`` first, else ``TOKEN_ENV`` in ``environ``
    (``None``: the process environment)."""

    token_file: Path | None = None
    environ: Mapping[str, str] | None = None

    def read(self) -> Token | None:
        """The token, or None when none is given; :class:`TokenError` when unusable."""
        if self.token_file is not None:
            path = self.token_file
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
                raise TokenError(f"cannot read the token file {path}: {reason}") from None
            return _checked(text, f"--token-file {path}")
        environ = os.environ if self.environ is None else self.environ
        value = environ.get(TOKEN_ENV)
        if value is None or not value.strip():
            return None
        return _checked(value, f"${TOKEN_ENV}")
