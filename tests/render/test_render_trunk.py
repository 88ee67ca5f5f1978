"""A trunk NIC in ``render``'s netplan: the sub-interfaces in ``vlans:`` (``id``, ``link``),
the trunk NIC in ``ethernets:`` (no address when it carries tagged VLANs only, an MTU that
holds its VLANs'), a node-ip and a bridge on a sub-interface; against a golden tree and
through the real ``netplan generate``, whose networkd files must make the 802.1q devices."""

from __future__ import annotations

from pathlib import Path

import pytest
from render_golden import check_tree
from test_netplan_generate import NETPLAN, _check_node, _generate

from multihome.render import render_in_memory
from multihome.spec import load_lab_text

LAB = Path(__file__).parents[1] / "lab" / "labs" / "trunk.yaml"
GOLDEN = Path(__file__).parent / "golden" / "trunk-netplan"
# the server's node-ip on a tagged VLAN; wrk-2's VLAN 60 bridged with an address, at MTU 9000
EDITS = (
    (
        "      nics: [{name: ens192, network: vlan40, address: 172.16.40.10}]\n",
        "      nics: [{name: ens192, vlans: [{name: ens192.40, id: 40, address: 172.16.40.10}]}]\n",
    ),
    (
        "            - {name: vlan60, id: 60}\n  hosts:",
        "            - {name: vlan60, id: 60, bridge: br60, address: 172.16.60.12}\n  hosts:",
    ),
    (
        "- {name: vlan60, vlan: 60, subnet: 172.16.60.0/24}",
        "- {name: vlan60, vlan: 60, subnet: 172.16.60.0/24, mtu: 9000}",
    ),
)


def _rendering():  # type: ignore[no-untyped-def]
    text = LAB.read_text(encoding="utf-8")
    for old, new in EDITS:
        assert old in text, old
        text = text.replace(old, new, 1)
    return render_in_memory(load_lab_text(text, str(LAB), LAB.parent))


def _netplans() -> dict[str, str]:
    return {f.path: f.text for f in _rendering().files if f.kind == "netplan"}


def test_trunk_netplan_matches_golden() -> None:
    check_tree(_netplans(), GOLDEN)


@pytest.mark.skipif(NETPLAN is None, reason="netplan is not installed (netplan.io)")
def test_netplan_generate_makes_the_vlan_devices(tmp_path: Path) -> None:
    rendering = _rendering()
    netplans = _netplans()
    for node in rendering.plan.nodes:
        text = netplans[f"nodes/{node.name}/etc/netplan/60-multihome.yaml"]
        root = tmp_path / node.name
        units = _generate(text, root)
        _check_node(rendering.plan, node, units)
        for nic in node.nics:
            if nic.parent is None:
                continue
            netdev = (root / f"run/systemd/network/10-netplan-{nic.name}.netdev").read_text()
            assert "Kind=vlan" in netdev and f"Id={nic.vlan}" in netdev, netdev
            assert nic.name in units[nic.parent]["Network"]["VLAN"]
    wrk2 = _generate(netplans["nodes/tk-wrk-2/etc/netplan/60-multihome.yaml"], tmp_path / "again")
    assert wrk2["vlan60"]["Network"]["Bridge"] == ["br60"]
    assert wrk2["br60"]["Network"]["Address"] == ["172.16.60.12/24"]
    assert wrk2["ens224"]["Link"]["MTUBytes"] == ["9000"]  # holds its VLAN 60's frames
    server = _generate(netplans["nodes/tk-cpl-1/etc/netplan/60-multihome.yaml"], tmp_path / "s")
    assert server["ens192.40"]["Network"]["Address"] == ["172.16.40.10/24"]
    assert server["ens192.40"]["Route"]["Gateway"] == ["172.16.40.1"]
    assert "Address" not in server["ens192"]["Network"]
