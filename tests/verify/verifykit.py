"""Helpers for the verify tests: a lab brought up from a lab file in a private state
directory, always taken down (the session guard checks nothing is left)."""

from __future__ import annotations

import inspect
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from labkit import sandbox_unavailable_reason

from multihome.lab import api
from multihome.spec import LabFile


def lab_unavailable_reason() -> str | None:
    """Why ``up`` can't run here, or None."""
    if os.geteuid() != 0:
        return "up of a lab runs as root here"
    if not os.path.isdir("/usr/lib/cni"):
        return "containernetworking-plugins missing"
    if not os.path.exists("/usr/sbin/dnsmasq"):
        return "dnsmasq-base missing"
    return sandbox_unavailable_reason()


@contextmanager
def lab_up(lab_file: LabFile, root: Path, *, keep_going: bool = False) -> Iterator[str]:
    """``up`` the lab with its state under ``root``; yields its name; ``down`` at the end."""
    reason = lab_unavailable_reason()
    if reason:
        pytest.skip(reason)
    kwargs = {}
    if keep_going:
        if "keep_going" not in inspect.signature(api.up).parameters:
            pytest.skip("api.up has no keep_going yet")
        kwargs["keep_going"] = True
    name = lab_file.lab.metadata.name
    old = os.environ.get("MULTIHOME_STATE_DIR")
    os.environ["MULTIHOME_STATE_DIR"] = str(root)
    try:
        api.up(lab_file, **kwargs)
        yield name
    finally:
        try:
            api.down(name)
        finally:
            if old is None:
                os.environ.pop("MULTIHOME_STATE_DIR", None)
            else:
                os.environ["MULTIHOME_STATE_DIR"] = old
