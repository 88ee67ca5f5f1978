"""Running labs for the picture, report and capture tests: the seed, and the seed with
Longhorn's NAD on the wrong NIC (replication crosses vlan60), each up once per session in a
private state root and taken down after, pass or fail."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "lab"))
from labkit import sandbox_unavailable_reason

from multihome.lab import api
from multihome.spec import load_lab, load_lab_text, seed_path

WRONG_VLAN = "wrong-vlan"


def wrong_vlan_text() -> str:
    text = seed_path().read_text()
    text = text.replace("name: multi-homed\n", f"name: {WRONG_VLAN}\n", 1)
    # Longhorn's NAD on the services NIC: its replication takes vlan60, not vlan50
    head, sep, tail = text.partition("name: macvlan-longhorn-dhcp")
    return head + sep + tail.replace('"master": "ens224"', '"master": "ens256"', 1)


def _can_up() -> str | None:
    if os.geteuid() != 0:
        return "up of the seed runs as root here"
    if not os.path.isdir("/usr/lib/cni") or not os.path.exists("/usr/sbin/dnsmasq"):
        return "containernetworking-plugins and dnsmasq-base needed"
    return sandbox_unavailable_reason()


@pytest.fixture(scope="session")
def state_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    reason = _can_up()
    if reason:
        pytest.skip(reason)
    root = tmp_path_factory.mktemp("graphstate")
    old = os.environ.get("MULTIHOME_STATE_DIR")
    os.environ["MULTIHOME_STATE_DIR"] = str(root)
    try:
        yield root
    finally:
        api.down(None)
        if old is None:
            os.environ.pop("MULTIHOME_STATE_DIR", None)
        else:
            os.environ["MULTIHOME_STATE_DIR"] = old


@pytest.fixture(scope="session")
def seed_lab(state_dir: Path) -> str:
    api.up(load_lab(None))
    return "multi-homed"


@pytest.fixture(scope="session")
def wrong_lab(state_dir: Path) -> str:
    api.up(load_lab_text(wrong_vlan_text(), "wrong-vlan.yaml"))
    return WRONG_VLAN
