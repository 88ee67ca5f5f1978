"""validate's trunk checks (``vlans:`` on a NIC): each trips on a realistic mistake; the trunk
lab is clean, and a NAD whose master is a sub-interface (or a trunk NIC with tagged VLANs
only) counts as present on the nodes that have it."""

from __future__ import annotations

from pathlib import Path

from multihome.check import run_checks
from multihome.spec import load_lab_text

LAB = (Path(__file__).parents[1] / "lab" / "labs" / "trunk.yaml").read_text()
WRK1_50 = "            - {name: ens224.50, id: 50}\n            - {name: vlan60, id: 60}\n    - name: tk-wrk-2"
WEB60 = "nics: [{name: eth0, vlans: [{name: eth0.60, id: 60, address: 172.16.60.31}]}]"


def edit(old: str, new: str) -> str:
    assert old in LAB, old
    return LAB.replace(old, new, 1)


CASES = [
    (
        "nic-network-missing",
        edit(
            "nics: [{name: eth0, network: vlan70, address: 172.16.70.31}]",
            "nics: [{name: eth0, network: vlan70, address: 172.16.70.31}, {name: eth1}]",
        ),
        "neither network: nor vlans:",
    ),
    (
        "trunk-address-untagged",
        edit(WEB60, WEB60.replace("{name: eth0, ", "{name: eth0, address: 172.16.60.9, ")),
        "no untagged network",
    ),
    (
        "trunk-vlan-name-invalid",
        edit(WRK1_50, WRK1_50.replace("ens224.50", "ens224.storage50")),
        "'ens224.50'",
    ),
    (
        "trunk-vlan-name-duplicate",
        edit(WRK1_50, WRK1_50.replace("{name: vlan60", "{name: ens192")),
        "ens192 (VLAN 60 on ens224)",
    ),
    (
        "trunk-vlan-unknown",
        edit(WRK1_50, WRK1_50.replace("id: 50", "id: 55")),
        "no network of the lab is VLAN 55",
    ),
    (
        "trunk-vlan-twice",
        edit(WRK1_50, WRK1_50.replace("{name: vlan60, id: 60}", "{name: vlan70, id: 70}")),
        "VLAN 70 twice: as vlan70 and untagged (network vlan70)",
    ),
    (
        "nad-master-trunk-tagged",
        LAB.replace("          network: vlan70\n", "").replace(
            '"master": "vlan60"', '"master": "ens224"'
        ),
        "master ens224 on nodes tk-wrk-1, tk-wrk-2 is a trunk carrying tagged VLANs only",
    ),
    (
        "trunk-vlan-address",
        edit(WEB60, WEB60.replace("172.16.60.31", "172.16.61.31")),
        "outside 172.16.60.0/24 of VLAN 60",
    ),
    (  # the vlan plugin tagging 50 over ens224, whose ens224.50 already is VLAN 50
        "nad-vlan-id-taken",
        LAB.replace(
            '"type": "macvlan", "master": "ens224.50", "mode": "bridge"',
            '"type": "vlan", "master": "ens224", "vlanId": 50',
        ),
        "already has VLAN 50 as ens224.50 on nodes tk-wrk-1, tk-wrk-2",
    ),
    (  # VLAN 60 by the vlan plugin for b-1 and b-2, and a third pod on tk-wrk-1
        "nad-vlan-one-per-node",
        LAB.replace(
            '"type": "macvlan", "master": "vlan60", "mode": "bridge"',
            '"type": "vlan", "master": "ens224", "vlanId": 61',
        ).replace(
            "    - {name: vlan70, vlan: 70",
            "    - {name: v61, vlan: 61, subnet: 172.16.61.0/24}\n    - {name: vlan70, vlan: 70",
        )
        + """---
apiVersion: v1
kind: Pod
metadata:
  name: b-3
  namespace: apps
  annotations: {k8s.v1.cni.cncf.io/networks: vlan60-wb}
spec:
  nodeName: tk-wrk-1
  containers: [{name: c, image: busybox, command: ["sleep", "infinity"]}]
""",
        "3 attachments (Pod apps/b-1, Pod apps/b-2, Pod apps/b-3) on 2 nodes",
    ),
]


def _found(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in run_checks(load_lab_text(text, "lab.yaml")):
        found.setdefault(f.id, []).append(f"{f.message} (fix: {f.fix})")
    return found


def test_trunk_lab_is_clean() -> None:
    assert _found(LAB) == {}


def test_a_sub_interface_missing_on_a_node_is_a_missing_master() -> None:
    text = edit(WRK1_50, WRK1_50.replace("{name: ens224.50, id: 50}", "{name: vlan50, id: 50}"))
    found = _found(text)
    assert list(found) == ["nad-master-missing"], found
    (message,) = found["nad-master-missing"]
    assert "master ens224.50 does not exist on node tk-wrk-1:" in message


def test_a_trunk_with_tagged_vlans_only_is_a_master_that_exists() -> None:
    text = LAB.replace("          network: vlan70\n", "").replace(
        '"master": "vlan60"', '"master": "ens224"'
    )
    found = _found(text)
    assert "nad-master-missing" not in found
    assert "nic-network-missing" not in found
    assert list(found) == ["nad-master-trunk-tagged"], found  # present, but on no VLAN


def test_node_ip_on_a_sub_interface() -> None:
    text = edit(
        "        - {name: ens192, network: vlan40, address: 172.16.40.11}\n",
        "        - {name: ens192, vlans: [{name: ens192.40, id: 40, address: 172.16.40.11}]}\n",
    )
    assert _found(text) == {}


def test_the_vlan_plugin_over_a_trunk_one_pod_per_node_is_clean() -> None:
    """b-1 and b-2 (one per node) tag VLAN 61 over ens224 with the vlan plugin: fine."""
    text = LAB.replace(
        '"type": "macvlan", "master": "vlan60", "mode": "bridge"',
        '"type": "vlan", "master": "ens224", "vlanId": 61',
    ).replace(
        "    - {name: vlan70, vlan: 70",
        "    - {name: v61, vlan: 61, subnet: 172.16.61.0/24}\n    - {name: vlan70, vlan: 70",
    )
    found = _found(text)
    assert "nad-vlan-one-per-node" not in found and "nad-vlan-id-taken" not in found, found
