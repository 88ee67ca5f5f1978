"""What up does once before the attach workers fork: Multus' route editor (pyroute2's
IPRoute, ~0.1 s to import) is loaded there when more than one pod asks for default-route,
so the workers inherit it instead of each importing it."""

from __future__ import annotations

import subprocess
import sys

import pytest

SCRIPT = """
import sys
from multihome.lab import canal, pods
from multihome.plan import build_plan
from multihome.spec import load_lab, seed_path

plan = build_plan(load_lab(seed_path().parent / sys.argv[1]))
placed = [p for p in plan.pods if p.node is not None]
editing = [p for p in placed if "default-route" in (p.networks_annotation or "")]
todo = {"all": placed, "one": editing[:1] + [p for p in placed if p not in editing]}[sys.argv[2]]
assert "pyroute2.iproute.linux" not in sys.modules
pods.prepare_attach(plan, todo, [], canal.conflist(plan.node(todo[0].node)))
print(len([p for p in todo if p in editing]), "pyroute2.iproute.linux" in sys.modules)
"""


@pytest.mark.parametrize(
    ("example", "which", "expected"),
    [
        ("default-route.yaml", "all", "3 True"),
        ("default-route.yaml", "one", "1 False"),
        ("rke2-multihomed.yaml", "all", "0 False"),
    ],
)
def test_the_route_editor_is_loaded_before_the_fork_only_for_two_pods_or_more(
    example: str, which: str, expected: str
) -> None:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, example, which],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == expected
