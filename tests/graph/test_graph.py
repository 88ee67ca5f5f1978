"""multihome graph: the seed's DOT kept as a golden, every format rendered by Graphviz, a
100-node lab folded to a readable picture, and bad output paths refused with exit 2."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from multihome.graph import GraphError, picture, to_dot, to_mermaid, write_picture
from multihome.plan import build_plan
from multihome.spec import load_lab, load_lab_text

GOLDEN = Path(__file__).parent / "golden"
ROOT = Path(__file__).parents[2]
needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot not installed")


def seed_picture():  # type: ignore[no-untyped-def]
    return picture(build_plan(load_lab(None)))


def test_seed_dot_matches_golden() -> None:
    source = to_dot(seed_picture()).source
    golden = GOLDEN / "seed.dot"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(source)
    assert source == golden.read_text(), "UPDATE_GOLDEN=1 pytest tests/graph to accept"


def test_seed_shows_the_design() -> None:
    source = to_dot(seed_picture()).source
    # every NIC named as in the file, wired to its segment, Canal's NIC marked
    for node in ("multi-homed-wrk-1", "multi-homed-wrk-2", "multi-homed-wrk-3"):
        for nic, net in (("ens192", "vlan40"), ("ens224", "vlan50"), ("ens256", "vlan60")):
            key = f"node_{node.replace('-', '_')}_{nic}"
            assert re.search(rf"net_{net} -- {key} ", source), (node, nic)
    assert "ens192 (Canal)" in source
    assert "Longhorn storage network (multus-network-attachments/macvlan-longhorn-dhcp)" in source
    assert "serves http:80" in source
    # the pod's interfaces inside its node, tied to the segment they land on
    assert re.search(
        r"net_vlan60 -- node_multi_homed_wrk_1_pod_multus_network_attachments_net_tools_net2",
        source,
    )
    assert "lhnet1" in source


@needs_dot
@pytest.mark.parametrize("suffix", [".svg", ".png", ".dot", ".mmd"])
def test_every_format_is_written(tmp_path: Path, suffix: str) -> None:
    target = tmp_path / f"seed{suffix}"
    write_picture(seed_picture(), str(target))
    data = target.read_bytes()
    expected = {".svg": b"<svg", ".png": b"\x89PNG", ".dot": b"graph", ".mmd": b"%% multi-homed"}
    assert expected[suffix] in data[:400]


def test_mermaid_has_every_segment_and_pod() -> None:
    text = to_mermaid(seed_picture())
    assert text.splitlines()[1] == "flowchart TB"
    for name in ("net_vlan40", "net_vlan50", "net_vlan60", "net-tools", "instance-manager-e"):
        assert name in text


@needs_dot
def test_hundred_nodes_fold_into_a_readable_picture(tmp_path: Path) -> None:
    sys.path.insert(0, str(ROOT))
    from bench.scale import generate

    lab = load_lab_text(generate(100, 3), "scale.yaml")
    pic = picture(build_plan(lab))
    agents = [m for m in pic.machines if m.kind == "agent"]
    assert len(agents) == 1 and agents[0].count == 100
    assert [p.count for p in agents[0].pods] == [300]
    target = tmp_path / "scale.svg"
    write_picture(pic, str(target))
    width = int(re.search(rb'<svg width="(\d+)pt"', target.read_bytes()).group(1))  # type: ignore[union-attr]
    assert width < 2000  # folded: one group, not 100 boxes side by side


def test_bad_suffix_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match=r"\.svg, \.png, \.dot or \.mmd"):
        write_picture(seed_picture(), str(tmp_path / "x.txt"))


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, MULTIHOME_STATE_DIR="/nonexistent-multihome-state")
    return subprocess.run(
        [sys.executable, "-m", "multihome", *args], capture_output=True, text=True, env=env
    )


def test_cli_stdout_and_errors(tmp_path: Path) -> None:
    done = _cli("graph", "-o", "-")
    assert done.returncode == 0 and done.stdout.startswith('graph "multi-homed" {')
    bad = _cli("graph", "-o", str(tmp_path / "none" / "x.dot"))
    assert bad.returncode == 2 and "cannot write" in bad.stderr and "Traceback" not in bad.stderr
    gone = _cli("graph", "no-such-lab", "-o", str(tmp_path / "x.dot"))
    assert gone.returncode == 2 and "not up" in gone.stderr
