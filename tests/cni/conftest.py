"""Fixtures for the CNI runtime tests: node/pod namespaces and test-only fake plugins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from cni_helpers import Fakes, Node
from kernel import netns, require_cni_plugins, require_netns

from multihome.cni import CNIRuntime


@pytest.fixture
def fakes(tmp_path: Path) -> Fakes:
    d = tmp_path / "fakebin"
    d.mkdir()
    return Fakes(d, tmp_path / "calls.jsonl")


@pytest.fixture
def fake_runtime(fakes: Fakes, tmp_path: Path) -> Iterator[CNIRuntime]:
    with CNIRuntime([str(fakes.dir)], tmp_path / "cache", timeout=20) as rt:
        yield rt


@pytest.fixture
def node(tmp_path: Path) -> Iterator[Node]:
    require_netns()
    require_cni_plugins()
    with netns("node") as node_ns, netns("pod") as pod_ns:
        yield Node(node_ns, pod_ns, tmp_path)
