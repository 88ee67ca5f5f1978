"""multihome up refusing or failing cleanly: what this kernel lacks (checked before anything
is built), missing packages, a busy lab, a failing attachment (rolled back, or kept as
ContainerCreating with --keep-going). Root only where a lab is built."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from labkit import host_snapshot, sandbox_unavailable_reason
from typer.testing import CliRunner

from multihome.cli import app
from multihome.lab import api, preflight
from multihome.lab.state import LabState
from multihome.spec import load_lab, load_lab_text, seed_path

WORKLOADS = Path(__file__).parent / "labs" / "workloads.yaml"


def _seed_with(old: str, new: str) -> str:
    text = seed_path().read_text()
    assert old in text
    return text.replace(old, new, 1)


def _unavailable(kind: str) -> str | None:
    return preflight.link_kinds_unavailable((kind,)).get(kind)


@pytest.mark.parametrize(
    ("kind", "words"), [("ipvlan", "ipvlan (CONFIG_IPVLAN)"), ("vlan", "802.1q VLAN devices")]
)
def test_a_nad_this_kernel_cannot_make_fails_before_building(
    kind: str, words: str, state_root: Path
) -> None:
    if _unavailable(kind) is None:
        pytest.skip(f"this kernel has {kind}: nothing to refuse")
    text = _seed_with('"type": "macvlan"', f'"type": "{kind}"')
    lab = load_lab_text(text, "broken.yaml", seed_path().parent)
    with pytest.raises(api.LabError) as caught:
        api.up(lab)
    message = str(caught.value)
    assert caught.value.code == 2
    assert f"this kernel has no {words}" in message
    assert f"NAD multus-network-attachments/macvlan-longhorn-dhcp (type {kind})" in message
    assert "pod multus-network-attachments/net-tools (net1)" in message
    assert "Nothing was built" in message
    assert not (state_root / "multi-homed").exists()


def test_the_probe_agrees_with_facts_md_on_what_is_here() -> None:
    # facts.md: macvlan and bridge are here, 802.1q and ipvlan are not (kernel 6.18)
    found = preflight.link_kinds_unavailable(("bridge", "macvlan"))
    assert found == {}


def test_missing_packages_say_what_to_install(
    monkeypatch: pytest.MonkeyPatch, state_root: Path
) -> None:
    monkeypatch.setattr(preflight, "DNSMASQ", "/nonexistent/dnsmasq")
    result = CliRunner().invoke(app, ["up"])
    assert result.exit_code == 2
    assert "missing system packages: dnsmasq-base" in result.output
    assert "apt-get install dnsmasq-base" in result.output
    assert "Traceback" not in result.output
    assert not (state_root / "multi-homed").exists()


@pytest.mark.parametrize("command", [["up"], ["down", "multi-homed"]])
def test_a_busy_lab_gives_a_lock_error(command: list[str], state_root: Path) -> None:
    if command == ["up"] and not os.path.exists(preflight.DNSMASQ):
        pytest.skip("dnsmasq-base missing (up stops at the package check first)")
    other = LabState("multi-homed")
    other.prepare()
    other.acquire()  # another up/down working on it
    try:
        result = CliRunner().invoke(app, command)
    finally:
        other.release()
    assert result.exit_code == 2, result.output
    assert "lab 'multi-homed' is busy: another multihome up/down" in result.output
    assert "Traceback" not in result.output


def _broken_workloads() -> str:
    # wl-wrk-2 has no ens256 in this variant: the macvlan NAD's master is missing there
    text = WORKLOADS.read_text()
    old = """    - name: wl-wrk-2
      role: agent
      nics:
        - {name: ens192, network: vlan40, address: 172.16.40.12}
        - {name: ens256, network: vlan60}
"""
    assert old in text
    return text.replace(old, old.replace("        - {name: ens256, network: vlan60}\n", ""))


@pytest.mark.skipif(os.geteuid() != 0, reason="up runs as root here")
@pytest.mark.skipif(not os.path.isdir("/usr/lib/cni"), reason="containernetworking-plugins")
@pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq"), reason="dnsmasq-base missing")
def test_failing_attachment_rolls_back_or_stays_container_creating(state_root: Path) -> None:
    reason = sandbox_unavailable_reason()
    if reason:
        pytest.skip(reason)
    lab = load_lab_text(_broken_workloads(), "broken.yaml", WORKLOADS.parent)
    before = host_snapshot()
    with pytest.raises(api.LabError) as caught:
        api.up(lab)
    message = str(caught.value)
    assert "rolled back" in message
    assert "on node wl-wrk-2" in message
    assert "apps/services" in message  # the network
    assert "Link not found" in message  # the plugin's own words
    assert (
        "likely cause: node wl-wrk-2 has no NIC ens256, the master of NAD apps/services" in message
    )
    assert not (state_root / "workloads").exists()
    assert host_snapshot() == before

    status = api.up(lab, keep_going=True)
    try:
        stuck = [p for p in status["pods"] if p["phase"] != "Running"]
        assert {p["node"] for p in stuck} == {"wl-wrk-2"}
        assert {p["name"] for p in stuck} >= {"probe-wl-wrk-2"}
        for pod in stuck:
            assert pod["phase"] == "ContainerCreating"
            assert "no NIC ens256" in pod["error"] and pod["network_status"] == []
        fine = [p for p in status["pods"] if p["node"] == "wl-wrk-1"]
        assert fine and all(p["phase"] == "Running" for p in fine)
    finally:
        api.down("workloads")
    assert host_snapshot() == before


def test_seed_is_buildable_here() -> None:
    plan_kinds = ("bridge", "macvlan")
    assert all(_unavailable(k) is None for k in plan_kinds)
    assert load_lab(None).lab.metadata.name == "multi-homed"


def test_a_failing_display_does_not_stall_up() -> None:
    from multihome.lab import bringup
    from multihome.lab.steps import Step

    seen = []

    def broken(step: Step) -> None:
        seen.append(step)
        raise BrokenPipeError("stderr went away")

    with bringup._relay(broken) as emit:
        for i in range(3000):  # more than a pipe holds: the relay must keep draining
            emit(Step("pods", done=i, total=3000))
    assert len(seen) == 3000
