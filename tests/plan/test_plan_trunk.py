"""Trunk NICs in the plan: each 802.1q sub-interface a NICPlan with its ``parent`` and
``vlan`` on its VLAN's network (its MTU, its attachments), a trunk with tagged VLANs only no
NICPlan of its own, the node-ip on a sub-interface, and NADs whose master is a
sub-interface landing on its VLAN."""

from __future__ import annotations

from pathlib import Path

import pytest

from multihome.plan import PlanError, build_plan
from multihome.plan.networks import trunks
from multihome.spec import load_lab, load_lab_text

LAB = Path(__file__).parents[1] / "lab" / "labs" / "trunk.yaml"


def _plan(*edits: tuple[str, str]):  # type: ignore[no-untyped-def]
    text = LAB.read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return build_plan(load_lab_text(text, str(LAB), LAB.parent))


def test_sub_interfaces_are_nics_on_their_vlan() -> None:
    plan = build_plan(load_lab(LAB))
    wrk = plan.node("tk-wrk-2")
    sub = next(n for n in wrk.nics if n.name == "ens224.50")
    assert (sub.parent, sub.vlan, sub.network, sub.address, sub.management) == (
        "ens224",
        50,
        "vlan50",
        None,
        False,
    )
    vlan50 = next(n for n in plan.networks if n.name == "vlan50")
    assert [(a.machine, a.nic) for a in vlan50.attachments] == [
        ("tk-wrk-1", "ens224.50"),
        ("tk-wrk-2", "ens224.50"),
    ]
    vlan60 = next(n for n in plan.networks if n.name == "vlan60")
    assert [(a.machine, a.nic, str(a.address)) for a in vlan60.attachments][-1] == (
        "web60",
        "eth0.60",
        "172.16.60.31/24",
    )
    web60 = next(h for h in plan.hosts if h.name == "web60")
    assert [n.name for n in web60.nics] == ["eth0.60"]  # eth0 carries VLAN 60 tagged only
    own, subs = trunks(web60.nics)["eth0"]
    assert own is None and [s.name for s in subs] == ["eth0.60"]
    # the pods' interfaces land on the sub-interfaces' VLANs
    a1 = next(p for p in plan.pods if p.name == "a-1")
    assert [i.lab_network for i in a1.interfaces] == [None, "vlan50"]
    b1 = next(p for p in plan.pods if p.name == "b-1")
    assert [i.lab_network for i in b1.interfaces] == [None, "vlan60", "vlan70"]


def test_node_ip_and_bridge_on_sub_interfaces() -> None:
    plan = _plan(
        (
            "        - {name: ens192, network: vlan40, address: 172.16.40.11}\n",
            "        - {name: ens192, vlans: [{name: ens192.40, id: 40, address: 172.16.40.11}]}\n",
        ),
        (
            "- {name: vlan60, vlan: 60, subnet: 172.16.60.0/24}",
            "- {name: vlan60, vlan: 60, subnet: 172.16.60.0/24, mtu: 9000}",
        ),
        (
            "            - {name: vlan60, id: 60}\n",
            "            - {name: vlan60, id: 60, bridge: br60}\n",
        ),
    )
    wrk = plan.node("tk-wrk-1")
    assert (wrk.management_nic, wrk.management_network, str(wrk.node_ip)) == (
        "ens192.40",
        "vlan40",
        "172.16.40.11",
    )
    assert [n.name for n in wrk.nics if n.management] == ["ens192.40"]
    assert wrk.bridges == ("br60",)
    vlan60 = next(n for n in wrk.nics if n.name == "vlan60")
    assert (vlan60.mtu, vlan60.bridge) == (9000, "br60")


def test_a_vlan_no_network_is_a_plan_error() -> None:
    with pytest.raises(
        PlanError, match=r"ens224.50 \(VLAN 55 on ens224\): no network has vlan: 55"
    ):
        _plan(
            (
                "            - {name: ens224.50, id: 50}\n",
                "            - {name: ens224.50, id: 55}\n",
            )
        )
