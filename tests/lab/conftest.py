"""Fixtures for the lab tests: sandboxes (always destroyed) and a private state root."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from labkit import MakeSandbox, sandbox_unavailable_reason

from multihome.lab import sandbox


@pytest.fixture
def require_sandbox() -> None:
    reason = sandbox_unavailable_reason()
    if reason:
        pytest.skip(reason)


@pytest.fixture
def make_sandbox(tmp_path: Path, require_sandbox: None) -> Iterator[MakeSandbox]:
    """Make sandboxes with their scratch dirs under tmp_path; all destroyed at the end."""
    made: list[sandbox.Sandbox] = []

    def make(name: str = "lab", mountpoints: Iterable[str] = ()) -> sandbox.Sandbox:
        scratch = tmp_path / f"{name}-{len(made)}" / "scratch"
        scratch.mkdir(parents=True)
        sb = sandbox.create(name, str(scratch), mountpoints=mountpoints)
        made.append(sb)
        return sb

    yield make
    for sb in made:
        sb.destroy()


@pytest.fixture
def state_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "state"
    monkeypatch.setenv("MULTIHOME_STATE_DIR", str(root))
    return root
