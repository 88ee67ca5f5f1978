"""``verify --scenario`` on a running seed lab: each scenario's faults are applied, its
expectations and the derived checks verified (those its faults break are skips naming the
fault), and the lab restored, pass or fail; one JUnit suite a scenario; a wrong expectation
fails naming the fault; a bad target or a lab with faults is exit 2, the lab left whole."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path

from typer.testing import CliRunner
from verifykit import lab_up

from multihome import verify
from multihome.cli import app
from multihome.lab import faults
from multihome.spec import load_lab_text, seed_path

EXTRA = """\
    - name: wrong-expectation
      faults: ["cut vlan60"]
      expect:
        - {from: multus-network-attachments/net-tools, to: "172.16.60.31:80", proto: http, deadline: 1}
    - name: bad-target
      faults: ["cut vlan50", "stop no-such-node"]
"""


def _seed_with_extra_scenarios() -> str:
    text = seed_path().read_text()
    anchor = "  scenarios:\n"
    assert anchor in text
    return text.replace(anchor, anchor + EXTRA, 1)


def _mh(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(app, list(args))
    return done.exit_code, done.output


def test_scenarios_apply_verify_and_restore(tmp_path: Path) -> None:
    lab_file = load_lab_text(_seed_with_extra_scenarios(), "seed-extra.yaml")
    with lab_up(lab_file, tmp_path) as lab:
        junit = tmp_path / "scenarios.xml"
        code, output = _mh(
            "verify", "--scenario", "storage-vlan-cut", "--scenario", "agent-services-nic-down",
            "--junit", str(junit), "-o", "json",
        )  # fmt: skip
        assert code == 0, output
        doc = json.loads(output)
        cut, nic = doc["scenarios"]
        assert cut["lab"] == "multi-homed scenario storage-vlan-cut"
        by = {(c["id"], c["subject"]): c for c in cut["checks"]}
        segment = by[("longhorn-segment", "multus-network-attachments/macvlan-longhorn-dhcp")]
        assert segment["status"] == "skip"
        assert "vlan50 is cut (fault 1)" in segment["cause"]
        expects = [c for c in cut["checks"] if c["id"] == "expect"]
        assert [c["status"] for c in expects] == ["pass"] * 3
        assert any("does not reach 172.16.50.254" in c["title"] for c in expects)
        by = {(c["id"], c["subject"]): c for c in nic["checks"]}
        assert by[("nics", "multi-homed-wrk-1")]["status"] == "skip"
        assert by[("nics", "multi-homed-wrk-2")]["status"] == "pass"
        suites = ET.parse(junit).getroot().findall("testsuite")
        assert [s.get("name") for s in suites] == [
            "multihome verify multi-homed scenario storage-vlan-cut",
            "multihome verify multi-homed scenario agent-services-nic-down",
        ]
        assert faults.active(lab) == []  # restored

        # an expectation the faults break fails, naming the fault
        code, output = _mh("verify", "--scenario", "wrong-expectation", "-o", "json")
        assert code == 1, output
        (wrong,) = json.loads(output)["scenarios"]
        (failed,) = [c for c in wrong["checks"] if c["status"] == "fail"]
        assert failed["id"] == "expect"
        assert re.match(r"vlan60 is cut \(fault \d+\); what the check read: ", failed["cause"])
        assert faults.active(lab) == []

        # a target that does not exist: exit 2, the faults applied before it undone
        code, output = _mh("verify", "--scenario", "bad-target")
        assert code == 2 and "no node or host 'no-such-node'" in output, output
        assert faults.active(lab) == []

        # no such scenario; a lab with faults of its own
        code, output = _mh("verify", "--scenario", "nosuch")
        assert (
            code == 2
            and "its scenarios are wrong-expectation, bad-target, storage-vlan-cut" in output
        )
        assert _mh("fault", "cut", "vlan60")[0] == 0
        code, output = _mh("verify", "--all-scenarios")
        assert code == 2 and "multihome fault clear first" in output
        assert _mh("fault", "clear")[0] == 0

        assert verify.run(lab).ok
