"""Rendered trees against their goldens: the seed for both targets, and the other examples;
the seed once more in each rke2-multus chart era (its own v1.25.9: the chart has no
dhcpDaemonSet value, so multihome's DaemonSet; v1.28.6: the chart's value).

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
from multihome.spec import load_lab, load_lab_text, seed_path

GOLDEN = Path(__file__).parent / "golden"
EXAMPLES = seed_path().parent
SEED_VERSION = "v1.25.9+rke2r1"
CASES = [
    ("rke2-multihomed", Target.rke2, None),
    ("rke2-multihomed", Target.rancher, None),
    ("rke2-multihomed", Target.rke2, "v1.28.6+rke2r1"),
    ("rke2-multihomed", Target.rancher, "v1.28.6+rke2r1"),
    ("bridge-nad", Target.rke2, None),
    ("default-route", Target.rke2, None),
    ("storage-static", Target.rancher, None),
]


def _name(example: str, target: Target, version: str | None) -> str:
    return f"{example}-{version.partition('+')[0]}-{target}" if version else f"{example}-{target}"


@pytest.mark.parametrize(("example", "target", "version"), CASES, ids=[_name(*c) for c in CASES])
def test_rendered_tree_matches_golden(
    example: str, target: Target, version: str | None, tmp_path: Path
) -> None:
    path = EXAMPLES / f"{example}.yaml"
    text = path.read_text(encoding="utf-8")
    assert f"version: {SEED_VERSION}" in text
    if version is not None:
        text = text.replace(f"version: {SEED_VERSION}", f"version: {version}")
    lab_file = load_lab_text(text, str(path), base_dir=path.parent)
    result = render_lab(lab_file, tmp_path / "out", target, token_source=TokenSource(environ={}))
    minor = ".".join((version or SEED_VERSION).removeprefix("v").split(".")[:2])
    assert result.schema_version == minor
    check_tree(read_tree(tmp_path / "out"), GOLDEN / _name(example, target, version))


@pytest.mark.parametrize("target", list(Target))
def test_rendering_is_deterministic(target: Target) -> None:
    first = render_in_memory(load_lab(None), target)
    second = render_in_memory(load_lab(None), target)
    assert [(f.path, f.data, f.mode) for f in first.files] == [
        (f.path, f.data, f.mode) for f in second.files
    ]
