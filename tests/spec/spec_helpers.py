"""Shared bits for the spec tests: a minimal lab, and a way to find a line in a file."""

from __future__ import annotations

from pathlib import Path

import pytest

from multihome.spec import SpecError, load_lab_text

EXAMPLES = Path(__file__).resolve().parents[2] / "multihome" / "examples"

MINIMAL = """\
apiVersion: multihome.dev/v1alpha1
kind: Lab
metadata:
  name: mini
spec:
  networks:
    - name: lan
      subnet: 10.0.0.0/24
  nodes:
    - name: node-1
      role: server
      nics:
        - name: eth0
          network: lan
          address: 10.0.0.10
"""
"""A small valid lab; line 10 is the node's name, line 13 its NIC's name."""


def line_of(text: str, needle: str, nth: int = 0) -> tuple[int, int]:
    """1-based (line, column) of the nth occurrence of ``needle`` in ``text``."""
    start = -1
    for _ in range(nth + 1):
        start = text.index(needle, start + 1)
    before = text[:start]
    return before.count("\n") + 1, start - (before.rfind("\n") + 1) + 1


def error_of(text: str | bytes, filename: str = "lab.yaml") -> SpecError:
    with pytest.raises(SpecError) as info:
        load_lab_text(text, filename)
    return info.value
