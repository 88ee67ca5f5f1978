"""Rendered trees against their goldens: the seed for both targets, and the other examples.

The seed's goldens were checked by eye against the blog post: node-ips .46/.49/.50 for the
servers and .47/.48/.51 for the agents, Canal pinned to ens192 in both Calico and Flannel,
Flannel's backend host-gw, macvlan NADs on ens224 / ens256 with DHCP (so the Multus dhcp
daemon), Longhorn's storage network on macvlan-longhorn-dhcp.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from render_golden import check_tree, read_tree

from multihome.render import Target, TokenSource, render_in_memory, render_lab
from multihome.spec import load_lab, seed_path

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = seed_path().parent
CASES = [
    ("rke2-multihomed", Target.rke2),
    ("rke2-multihomed", Target.rancher),
    ("bridge-nad", Target.rke2),
    ("default-route", Target.rke2),
    ("storage-static", Target.rancher),
]


@pytest.mark.parametrize(("example", "target"), CASES, ids=[f"{e}-{t}" for e, t in CASES])
def test_rendered_tree_matches_golden(example: str, target: Target, tmp_path: Path) -> None:
    lab_file = load_lab(EXAMPLES / f"{example}.yaml")
    result = render_lab(lab_file, tmp_path / "out", target, token_source=TokenSource(environ={}))
    assert result.schema_version == "1.25"
    check_tree(read_tree(tmp_path / "out"), GOLDEN / f"{example}-{target}")


@pytest.mark.parametrize("target", list(Target))
def test_rendering_is_deterministic(target: Target) -> None:
    first = render_in_memory(load_lab(None), target)
    second = render_in_memory(load_lab(None), target)
    assert [(f.path, f.data, f.mode) for f in first.files] == [
        (f.path, f.data, f.mode) for f in second.files
    ]
