"""validate's whereabouts checks: each trips on a realistic config and stays quiet on the
forms whereabouts accepts, on one pool shared by two NADs, and on overlaps it protects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multihome.check import run_checks
from multihome.spec import load_lab_text

LAB = (Path(__file__).parents[1] / "lab" / "labs" / "whereabouts.yaml").read_text()
WB_NAD = """---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {{name: {name}, namespace: apps}}
spec:
  config: '{config}'
"""


def _config(master: str, **keys: object) -> str:
    ipam = {"type": "whereabouts", **keys}
    return json.dumps({"cniVersion": "0.3.1", "type": "macvlan", "master": master, "ipam": ipam})


def with_nad(name: str = "other", pods: int = 0, master: str = "ens224", **keys: object) -> str:
    text = LAB + WB_NAD.format(name=name, config=_config(master, **keys))
    for i in range(pods):
        text += (
            f"---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: extra-{i}\n  namespace: apps\n"
            f"  annotations: {{k8s.v1.cni.cncf.io/networks: {name}}}\n"
            "spec:\n  containers: [{name: c, image: ubuntu}]\n"
        )
    return text


def _found(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in run_checks(load_lab_text(text, "lab.yaml")):
        found.setdefault(f.id, []).append(f.message)
    return found


# (finding id, lab text, a fragment the message must contain); test_checks.py runs them too
CASES: list[tuple[str, str, str]] = [
    ("whereabouts-config-invalid", with_nad(range="192.168.80.0"), "invalid CIDR 192.168.80.0"),
    (
        "whereabouts-config-invalid",
        with_nad(range="192.168.81.50-192.168.80.60/24"),
        "invalid range start for CIDR 192.168.80.0/24",
    ),
    ("whereabouts-config-invalid", with_nad(range="10.0.0.0/31"), "no usable IP addresses"),
    (
        "whereabouts-config-invalid",
        with_nad(range="10.0.0.0/24", exclude=["10.0.0.300"]),
        "could not parse exclude range",
    ),
    ("whereabouts-config-invalid", with_nad(gateway="10.0.0.1"), "has no range"),
    (
        "whereabouts-config-invalid",
        with_nad(range="192.168.80.0/24", routes=[{"dst": "10.1.0.0/16", "gw": "<gateway>"}]),
        "invalid IP address: <gateway>",
    ),
    (
        "whereabouts-range-ignored",
        with_nad(range="192.168.80.0/24", range_start="192.168.81.10"),
        "whereabouts ignores it and allocates 192.168.80.1-192.168.80.254",
    ),
    (
        "whereabouts-range-ignored",
        with_nad(range="192.168.80.0/24", range_end="<end>"),
        "drops it silently",
    ),
    (
        "whereabouts-range-ignored",
        with_nad(
            ipRanges=[{"range": "192.168.80.0/24"}, {"range": "fd00:80::/64"}],
            node_slice_size="/26",
        ),
        "slices the first range only",
    ),
    (
        "whereabouts-range-taken",
        with_nad(range="192.168.80.0/24", gateway="192.168.80.1"),
        "192.168.80.1 (the NAD's own gateway) lies in the whereabouts range",
    ),
    (
        "whereabouts-range-taken",
        LAB.replace('"range_start": "192.168.70.10"', '"range_end": "192.168.70.100"').replace(
            "{name: vlan70, vlan: 70, subnet: 192.168.70.0/24}",
            "{name: vlan70, vlan: 70, subnet: 192.168.70.0/24, gateway: 192.168.70.1}",
        ),
        "192.168.70.1 (network vlan70's gateway)",
    ),
    (
        "whereabouts-exclude-outside",
        with_nad(range="192.168.80.0/24", exclude=["192.168.81.0/28"]),
        "excludes nothing",
    ),
    (
        "whereabouts-range-overlap",
        with_nad(range="192.168.70.0/25", enable_overlapping_ranges=False),
        "overlap on 192.168.70.10-192.168.70.126",
    ),
    (
        "whereabouts-range-overlap",
        with_nad(range="192.168.70.0/24", network_name="blue"),
        "their network_name differs",
    ),
    (
        "whereabouts-range-too-small",
        with_nad(range="192.168.80.0/29", exclude=["192.168.80.1"], pods=6),
        "has 5 address(es) for 6 attachment(s)",
    ),
    (
        "whereabouts-range-too-small",
        LAB.replace('"range": "192.168.70.0/24"', '"range": "192.168.70.10-192.168.70.13/24"'),
        "has 3 address(es) for 5 attachment(s)",
    ),
    (
        "whereabouts-range-too-small",
        # Longhorn 1.4 (the cluster's era): engine + replica instance-managers on 2 agents
        with_nad(range="192.168.80.0/29", range_end="192.168.80.3").replace(
            "    canal: {iface: ens192, backend: host-gw}\n",
            "    canal: {iface: ens192, backend: host-gw}\n  longhorn: {storageNetwork: apps/other}\n",
        ),
        "has 3 address(es) for 4 attachment(s)",
    ),
    (
        "whereabouts-range-too-small",
        with_nad(range="192.168.80.0/24", node_slice_size="/25"),
        "into 2 slice(s) for 3 nodes",
    ),
]


@pytest.mark.parametrize(("check_id", "text", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_whereabouts_check_trips(check_id: str, text: str, fragment: str) -> None:
    found = _found(text)
    assert check_id in found, f"{check_id} not raised; got {found}"
    assert any(fragment in m for m in found[check_id]), found[check_id]


@pytest.mark.parametrize(
    "keys",
    [
        {"range": "192.168.80.0/24"},
        {"range": "192.168.80.225/28"},
        {"range": "192.168.80.10-192.168.80.20/24", "exclude": ["192.168.80.12"]},
        {"range": "fd00:80::/64", "range_start": "fd00:80::10", "gateway": "fd00:80::1"},
        {"range": "192.168.80.0/24", "gateway": "192.168.80.1", "exclude": ["192.168.80.1/32"]},
        {"ipRanges": [{"range": "192.168.80.0/24"}, {"range": "fd00:80::/64"}]},
        {"range": "192.168.80.0/24", "node_slice_size": "/26"},
        # one pool shared with the lab's NAD (same CIDR, other bounds): no overlap
        {"range": "192.168.70.0/24", "range_start": "192.168.70.100"},
        # an overlap whereabouts protects (the default, one network_name)
        {"range": "192.168.70.0/25"},
        # the same range on another network_name, on another VLAN: fine
        {"range": "192.168.70.0/24", "network_name": "blue", "master": "ens192"},
    ],
)
def test_forms_whereabouts_accepts_are_clean(keys: dict[str, object]) -> None:
    text = with_nad(pods=2, **keys)  # type: ignore[arg-type]
    found = {k: v for k, v in _found(text).items() if k.startswith("whereabouts-")}
    assert found == {}


def test_the_lab_is_clean() -> None:
    assert run_checks(load_lab_text(LAB, "lab.yaml")) == []
