"""``multihome fault`` on a running seed lab: each verb changes what it says inside the
lab's namespaces (and nothing of the host), is listed by ``fault list`` and ``get``, is named
by verify as the likely cause of what it broke, and is undone by its inverse verb and by
``fault clear``; bad targets get one message (exit 2) naming what exists; ``down`` after
faults, and after a crash between a fault's record and its application, leaves nothing."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from labkit import host_snapshot
from typer.testing import CliRunner
from verifykit import lab_up

from multihome import verify
from multihome.cli import app
from multihome.lab import api, faults
from multihome.lab.state import LabState
from multihome.spec import load_lab

WRK1, WRK2, WRK3 = (f"multi-homed-wrk-{i}" for i in (1, 2, 3))


def _mh(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, list(args))
    return done.exit_code, done.output


def _in(lab: str, target: str, *argv: str) -> str:
    done = subprocess.run(
        api.exec_argv(target, list(argv), lab), capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _link(lab: str, machine: str, nic: str) -> dict[str, object]:
    found = json.loads(_in(lab, machine, "ip", "-j", "link", "show", "dev", nic))
    return dict(found[0])


def _state(lab: str, process: str) -> str:
    """The state letter of a recorded process (R, S, T ...), from /proc."""
    entry = LabState(lab).objects()[("process", process)]
    stat = Path(f"/proc/{entry['pid']}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def _failed(lab: str) -> dict[tuple[str, str], verify.CheckResult]:
    return {(c.id, c.subject): c for c in verify.run(lab).checks if c.status == "fail"}


def test_each_fault_is_applied_named_and_undone(tmp_path: Path) -> None:
    before = host_snapshot()
    with lab_up(load_lab(None), tmp_path) as lab:
        # bad targets: one message naming what exists, exit 2, nothing recorded
        for args, said in (
            (("cut", "vlan51"), "networks are vlan40, vlan50, vlan60"),
            (("stop-dhcp", "vlan40"), "networks with one are vlan50, vlan60"),
            (("link-down", f"{WRK1}:ens999"), "its NICs are ens192, ens224, ens256"),
            (("link-down", WRK1), "is not NODE:NIC"),
            (("stop", "nosuch"), "there are multi-homed-cpl-1"),
            (("rate", f"{WRK1}:ens224", "fast"), "is not a rate"),
            (("mend", "vlan50"), "the lab has no faults"),
            (("frobnicate", "vlan50"), "no fault verb in 'frobnicate vlan50'"),
        ):
            code, output = _mh("fault", *args)
            assert code == 2, output
            assert said in output, output
        assert faults.active(lab) == []

        # cut: every switch port of vlan50 down, so each NIC on it loses its carrier
        assert _mh("fault", "cut", "vlan50")[0] == 0
        assert "NO-CARRIER" in _link(lab, WRK1, "ens224")["flags"]  # type: ignore[operator]
        assert "NO-CARRIER" not in _link(lab, WRK1, "ens192")["flags"]  # type: ignore[operator]
        # stop-dhcp: vlan60's dnsmasq frozen
        assert _mh("fault", "stop-dhcp", "vlan60")[0] == 0
        assert _state(lab, "dnsmasq-vlan60") == "T"
        # link-down: one NIC of one node
        assert _mh("fault", "link-down", f"{WRK1}:ens256")[0] == 0
        assert "UP" not in _link(lab, WRK1, "ens256")["flags"]  # type: ignore[operator]
        # stop: every NIC of the node down, its dhcp daemon frozen
        assert _mh("fault", "stop", WRK2)[0] == 0
        for nic in ("ens192", "ens224", "ens256"):
            assert "UP" not in _link(lab, WRK2, nic)["flags"]  # type: ignore[operator]
        assert _state(lab, f"dhcp-daemon-{WRK2}") == "T"
        # rate: a tbf on the NIC
        assert _mh("fault", "rate", f"{WRK3}:ens224", "10mbit")[0] == 0
        assert "tbf" in _in(lab, WRK3, "tc", "qdisc", "show", "dev", "ens224")
        # the same fault twice is refused
        code, output = _mh("fault", "cut", "vlan50")
        assert code == 2 and "vlan50 is cut already (fault 1)" in output

        code, listed = _mh("fault", "list")
        assert code == 0
        for line in ("1 ", "cut", "vlan50", f"{WRK3}:ens224 10mbit", "stop-dhcp"):
            assert line in listed
        code, shown = _mh("get", "nodes")
        assert code == 0 and "FAULTS fault 1: vlan50 is cut" in shown

        failed = _failed(lab)
        assert "vlan50 is cut (fault 1)" in (failed[("dhcp-server", "vlan50")].cause or "")
        assert "the DHCP server of vlan60 is stopped (fault 2)" in (
            failed[("dhcp-server", "vlan60")].cause or ""
        )
        segment = failed[("longhorn-segment", "multus-network-attachments/macvlan-longhorn-dhcp")]
        assert "vlan50 is cut (fault 1)" in (segment.cause or "")
        assert f"{WRK2} is stopped (fault 4)" in (failed[("nics", WRK2)].cause or "")

        # the inverse verbs undo one fault each; clear the rest
        assert _mh("fault", "link-up", f"{WRK1}:ens256")[0] == 0
        assert "UP" in _link(lab, WRK1, "ens256")["flags"]  # type: ignore[operator]
        assert _mh("fault", "mend", "vlan50")[0] == 0
        assert "NO-CARRIER" not in _link(lab, WRK1, "ens224")["flags"]  # type: ignore[operator]
        code, output = _mh("fault", "clear")
        assert code == 0 and "stop multi-homed-wrk-2" in output, output
        assert faults.active(lab) == []
        assert _state(lab, "dnsmasq-vlan60") != "T"
        assert "tbf" not in _in(lab, WRK3, "tc", "qdisc", "show", "dev", "ens224")
        # the lab is whole again: routes the kernel dropped with the links are back
        report = verify.run(lab)
        assert report.ok, [c for c in report.checks if c.status == "fail"]
    assert host_snapshot() == before


def test_down_undoes_faults_also_recorded_but_never_applied(tmp_path: Path) -> None:
    before = host_snapshot()
    with lab_up(load_lab(None), tmp_path) as lab:
        assert _mh("fault", "stop", WRK1)[0] == 0
        assert _mh("fault", "stop-dhcp", "vlan50")[0] == 0
        # a crash between the record and the application: the intent is in the journal
        state = LabState(lab)
        with state.lock():
            state.record(
                "fault", "3", phase="intent", number=3, verb="link-down",
                target=f"{WRK3}:ens192", rate=None,
                effects=[{"kind": "link", "netns": f"/run/netns/{WRK3}", "dev": "ens192",
                          "routes": []}],
            )  # fmt: skip
        listed = faults.active(lab)
        assert [f.number for f in listed] == [1, 2, 3]
        assert not listed[2].applied and "maybe not applied" in listed[2].text()
        frozen = [
            int(LabState(lab).objects()[("process", p)]["pid"])
            for p in ("dnsmasq-vlan50", f"dhcp-daemon-{WRK1}")
        ]
    # lab_up's down ran: nothing of the lab is left, the frozen processes included
    for pid in frozen:
        assert not Path(f"/proc/{pid}").exists() or ") Z " in Path(f"/proc/{pid}/stat").read_text()
    assert not (tmp_path / "multi-homed").exists()
    assert host_snapshot() == before


def test_clear_undoes_a_fault_recorded_but_never_applied(tmp_path: Path) -> None:
    with lab_up(load_lab(None), tmp_path) as lab:
        state = LabState(lab)
        with state.lock():
            state.record(
                "fault", "1", phase="intent", number=1, verb="rate",
                target=f"{WRK1}:ens224", rate="1mbit",
                effects=[{"kind": "qdisc", "netns": f"/run/netns/{WRK1}", "dev": "ens224",
                          "rate": "1mbit", "burst": 3100}],
            )  # fmt: skip
        code, output = _mh("fault", "clear")
        assert code == 0 and "fault 1: rate" in output
        assert faults.active(lab) == []
        # the numbers go on after a cleared fault
        assert _mh("fault", "cut", "vlan60")[0] == 0
        assert [f.number for f in faults.active(lab)] == [2]
