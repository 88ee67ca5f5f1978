"""Broken variants of the seed fail in the right check, with an explanation that names the
cause. Each variant is brought up once (a module-scoped fixture per variant)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import variants
from verifykit import lab_up

from multihome import verify
from multihome.plan import build_plan
from multihome.spec import load_lab


@dataclass(frozen=True)
class Variant:
    text: str
    failed: set[tuple[str, str]]
    """(check id, subject) of every check that must fail, and no other."""
    says: tuple[str, ...]
    """Phrases the failures' causes must contain."""
    keep_going: bool = False


NET_TOOLS = "multus-network-attachments/net-tools"
IMS = [p.ref for p in build_plan(load_lab(None)).pods if p.namespace == "longhorn-system"]
"""Longhorn 1.4's instance-managers (the seed's era): an engine and a replica one per agent."""
LONGHORN_NAD = "multus-network-attachments/macvlan-longhorn-dhcp"

VARIANTS = {
    "canal-on-ens224": Variant(
        variants.CANAL_ENS224,
        {("canal-segment", "cluster network")},
        ("crossed vlan50, not vlan40", "Canal is pinned to ens224", "rancher/rke2#1353"),
    ),
    "dhcp-offers-a-router": Variant(
        variants.DHCP_ROUTER,
        {("default-route", NET_TOOLS)} | {("default-route", im) for im in IMS},
        ("a second default route on net1", "the DHCP server on vlan50 offers a router"),
    ),
    "agent-without-ens256": Variant(
        variants.NO_ENS256,
        {("interfaces", NET_TOOLS), ("expect", "#1")},
        ("macvlan on ens256, which multi-homed-wrk-1 does not have", "ContainerCreating"),
        keep_going=True,
    ),
    "longhorn-nad-on-ens256": Variant(
        variants.LONGHORN_ENS256,
        {("longhorn-segment", LONGHORN_NAD)},
        ("replication crossed vlan60", "host web", "macvlan on ens256", "ens224, on vlan50"),
    ),
    "node-ip-network-without-gateway": Variant(
        variants.NO_GATEWAY,
        {("pod-to-pod", "cluster network"), ("canal-segment", "cluster network")},
        ("has no route to 169.254.1.1 (no default route)", "Give vlan40 a gateway"),
    ),
    "annotation-network-unreachable": Variant(
        variants.UNREACHABLE_NETWORK,
        {
            ("interfaces", "multus-network-attachments/probe"),
            ("reach", "multus-network-attachments/probe vlan60"),
        },
        ("the annotation's ips 172.16.50.40/24", "no route onto vlan60"),
    ),
}


@pytest.fixture(scope="module", params=sorted(VARIANTS))
def broken(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Variant, verify.Report]]:
    variant = VARIANTS[request.param]
    root = tmp_path_factory.mktemp(f"verify-{request.param}")
    with lab_up(variants.load(variant.text), root, keep_going=variant.keep_going) as name:
        yield variant, verify.run(name)


def test_fails_in_the_right_check_and_says_why(broken: tuple[Variant, verify.Report]) -> None:
    variant, report = broken
    failed = {(c.id, c.subject) for c in report.checks if c.status == "fail"}
    assert failed == variant.failed, report.json_text()
    told = " ".join(f"{c.cause} {' '.join(c.evidence)}" for c in report.failed)
    for phrase in variant.says:
        assert phrase in told, f"{phrase!r} not in: {told}"
    assert all(c.cause for c in report.failed)
