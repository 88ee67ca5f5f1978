"""The lab's ``scenarios``: faults in ``multihome fault`` words, expectations as ``expect``;
a bad fault or a name written twice is one SpecError at its place; the plan resolves a
scenario's expectations where they are written."""

from __future__ import annotations

from spec_helpers import MINIMAL, error_of, line_of

from multihome.plan import build_plan
from multihome.spec import load_lab, load_lab_text

SCENARIOS = """\
  scenarios:
    - name: lan-cut
      faults: ["cut lan", "rate node-1:eth0 1mbit"]
      expect:
        - {from: node-1, to: 10.0.0.1, result: deny}
"""


def test_scenarios_load_and_resolve() -> None:
    text = MINIMAL + SCENARIOS
    plan = build_plan(load_lab_text(text, "lab.yaml"))
    (scenario,) = plan.scenarios
    assert scenario.name == "lan-cut"
    assert scenario.faults == (("cut", "lan"), ("rate", "node-1:eth0", "1mbit"))
    (exp,) = scenario.expect
    assert (exp.source_kind, exp.target_kind, exp.result) == ("node", "ip", "deny")
    assert exp.line == line_of(text, "{from: node-1")[0]
    assert scenario.line == line_of(text, "name: lan-cut")[0]


def test_a_bad_fault_is_named_where_it_is_written() -> None:
    text = MINIMAL + SCENARIOS.replace('"cut lan"', '"cut"')
    err = error_of(text)
    assert "'cut' is not a fault: write one of cut TARGET" in err.message
    assert err.location is not None and err.location.line == line_of(text, '["cut"')[0]
    err = error_of(MINIMAL + SCENARIOS.replace('"cut lan"', '"explode lan"'))
    assert "'explode lan' is not a fault" in err.message


def test_scenario_names_are_unique() -> None:
    twice = SCENARIOS + SCENARIOS.split("\n", 1)[1]
    err = error_of(MINIMAL + twice)
    assert "scenario names must be unique: lan-cut appear twice" in err.message


def test_the_seed_has_its_two_scenarios() -> None:
    plan = build_plan(load_lab(None))
    assert [s.name for s in plan.scenarios] == ["storage-vlan-cut", "agent-services-nic-down"]
    assert plan.scenarios[0].faults == (("cut", "vlan50"),)
    assert plan.scenarios[1].faults == (("link-down", "multi-homed-wrk-1:ens256"),)
