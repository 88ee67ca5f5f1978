"""The judges without a kernel: the seed's plan, a made-up running lab (``fakes``) and
evidence written by hand turn into the right verdicts; probes retry as they should; the
report's JSON and JUnit XML hold what was judged."""

from __future__ import annotations

import asyncio
import errno
import json
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import replace
from types import SimpleNamespace

import pytest
from fakes import Verify, answer

from multihome.plan import Plan, build_plan
from multihome.spec import load_lab
from multihome.verify import probes
from multihome.verify.collect import Evidence, Route
from multihome.verify.probes import Outcome, Probe, ProbeResult
from multihome.verify.report import CheckResult, Report

NET_TOOLS = "multus-network-attachments/net-tools"
IM_WRK_1 = "longhorn-system/instance-manager-e-6978d99a2c1d1ca5280807c33f7089f7"
"""The engine instance-manager on multi-homed-wrk-1 (Longhorn 1.4.4, the seed's era)."""
ERRORED = ProbeResult("error", "ValueError: port could not be used", 1, 0.0)


@pytest.fixture(scope="module")
def seed() -> Plan:
    return build_plan(load_lab(None))


@pytest.fixture
def lab(seed: Plan) -> Verify:
    return Verify(seed)


def with_deny(plan: Plan) -> Plan:
    """The seed plus expect #2: net-tools must not reach vlan50's DHCP server over icmp."""
    first = plan.expect[0]
    deny = first.model_copy(
        update={"index": 2, "to": "172.16.50.254", "target": "172.16.50.254", "port": None,
                "proto": "icmp", "result": "deny", "deadline": 0.5, "retries": 0, "line": 130}
    )  # fmt: skip
    return plan.model_copy(update={"expect": (first, deny)})


def netns(lab: Verify, ref: str) -> str:
    return lab.ctx.lab.pods[ref].netns


def one(results: list[CheckResult], check: str, subject: str) -> CheckResult:
    found = [r for r in results if (r.id, r.subject) == (check, subject)]
    assert len(found) == 1, [r.name for r in results]
    return found[0]


def failures(results: list[CheckResult]) -> list[str]:
    return [r.name for r in results if r.status == "fail"]


# -- the judges -----------------------------------------------------------------------------
def test_a_healthy_lab_passes_every_check(lab: Verify) -> None:
    results = lab.judge(lab.healthy())
    assert [r.name for r in results if r.status != "pass"] == []
    assert len(results) == 60  # as test_verify_seed counts them on a real lab
    assert {r.id for r in results} >= {"interfaces", "canal-segment", "longhorn-segment", "expect"}


def test_a_missing_net1_fails_interfaces_with_a_cause(lab: Verify) -> None:
    ev = lab.healthy()
    facts = ev.facts[netns(lab, NET_TOOLS)]
    ifaces = {name: i for name, i in facts.ifaces.items() if name != "net1"}
    ev.facts[netns(lab, NET_TOOLS)] = replace(facts, ifaces=ifaces)
    results = lab.judge(ev)
    check = one(results, "interfaces", NET_TOOLS)
    assert check.status == "fail"
    assert check.evidence[0].startswith("no net1 (for multus-network-attachments/macvlan-longhorn")
    assert check.cause and "net1 was made (network-status records it) and is gone" in check.cause
    # network-status still lists net1; the other pods are unaffected
    assert one(results, "network-status", NET_TOOLS).status == "fail"
    assert one(results, "interfaces", IM_WRK_1).status == "pass"


def test_a_node_nic_gone_is_named_as_the_cause(lab: Verify) -> None:
    """ip link del ens224 on net-tools' node: the macvlan child net1 goes with it."""
    ev = lab.healthy()
    node = lab.ctx.lab.pods[NET_TOOLS].node
    node_ns = lab.ctx.lab.nodes[node].netns
    facts = ev.facts[netns(lab, NET_TOOLS)]
    ev.facts[netns(lab, NET_TOOLS)] = replace(
        facts, ifaces={k: i for k, i in facts.ifaces.items() if k != "net1"}
    )
    node_facts = ev.facts[node_ns]
    ev.facts[node_ns] = replace(
        node_facts, ifaces={k: i for k, i in node_facts.ifaces.items() if k != "ens224"}
    )
    results = lab.judge(ev)
    nics = one(results, "nics", node)
    assert nics.status == "fail" and nics.cause and f"{node} has no ens224" in nics.cause
    cause = one(results, "interfaces", NET_TOOLS).cause or ""
    assert f"its master ens224 is gone from {node}" in cause


def test_a_dead_dhcp_server_and_daemon_are_named(lab: Verify) -> None:
    ev = lab.healthy()
    ev.probes["dhcp:vlan50"] = ProbeResult("timeout", "no OFFER in 2 s", 4, 2.0)
    daemon = next(iter(ev.sockets))
    ev.sockets[daemon] = "Connection refused"
    results = lab.judge(ev)
    server = one(results, "dhcp-server", "vlan50")
    assert server.status == "fail" and "nothing answers DHCP on vlan50" in (server.cause or "")
    failed = [r for r in results if r.id == "dhcp-daemon" and r.status == "fail"]
    assert len(failed) == 1 and "the CNI dhcp daemon is not running" in (failed[0].cause or "")


def test_a_second_default_route_via_net1_is_named(lab: Verify) -> None:
    ev = lab.healthy()
    facts = ev.facts[netns(lab, NET_TOOLS)]
    extra = Route("default", "172.16.50.1", "net1")
    ev.facts[netns(lab, NET_TOOLS)] = replace(facts, routes=(*facts.routes, extra))
    results = lab.judge(ev)
    check = one(results, "default-route", NET_TOOLS)
    assert check.status == "fail"
    assert "default via 172.16.50.1 dev net1" in check.evidence
    assert check.cause and check.cause.startswith("a second default route on net1: NAD ")
    assert failures(results) == [check.name]


def test_canal_traffic_on_vlan50_fails_canal_segment_with_the_figures(lab: Verify) -> None:
    ev = lab.healthy()
    ev.streams["canal-segment"] = lab.crossing("vlan50")
    check = one(lab.judge(ev), "canal-segment", "cluster network")
    assert check.status == "fail"
    assert check.evidence[0].startswith("vlan40 +0 B, vlan50 +276 KiB, vlan60 +0 B while 256 KiB")
    assert check.cause and check.cause.startswith(
        "pod traffic between nodes crossed vlan50, not vlan40"
    )


def test_longhorn_replication_over_vlan40_fails_longhorn_segment(lab: Verify) -> None:
    ev = lab.healthy()
    ev.streams["longhorn-segment"] = lab.crossing("vlan40", echo=True)
    results = lab.judge(ev)
    check = one(results, "longhorn-segment", "multus-network-attachments/macvlan-longhorn-dhcp")
    assert check.status == "fail"
    assert check.evidence[0].startswith("vlan40 +532 KiB, vlan50 +0 B")
    assert check.cause and check.cause.startswith(
        "replication crossed vlan40, the management network"
    )
    assert failures(results) == [check.name]


def test_longhorn_over_vlan40_does_not_misplace_the_nads_master(lab: Verify) -> None:
    ev = lab.healthy()
    ev.streams["longhorn-segment"] = lab.crossing("vlan40", echo=True)
    check = one(
        lab.judge(ev), "longhorn-segment", "multus-network-attachments/macvlan-longhorn-dhcp"
    )
    assert check.cause and "ens224, which is on vlan40" not in check.cause


def test_an_isolation_probe_that_answered_fails_isolation(lab: Verify) -> None:
    ev = lab.healthy()
    ev.probes[f"isolation:{IM_WRK_1}:172.16.60.31"] = answer()
    check = one(lab.judge(ev), "isolation", f"{IM_WRK_1} vlan60")
    assert check.status == "fail"
    assert (
        "host web ping 172.16.60.31: reply in 0.1 ms (out of eth0 via 10.42.3.1)" in check.evidence
    )
    assert check.cause and "reached host web on vlan60 without an interface there" in check.cause


def test_an_allow_expect_that_timed_out_fails(lab: Verify) -> None:
    ev = lab.healthy()
    ev.probes["expect:1"] = answer(False)
    check = one(lab.judge(ev), "expect", "#1")
    assert check.status == "fail"
    assert check.cause == (
        f"no answer within 5 s: {NET_TOOLS} sends it out of net2 (vlan60) and nothing answered there"
    )


def test_a_deny_expect_passes_on_silence_and_fails_when_answered(seed: Plan) -> None:
    lab = Verify(with_deny(seed))
    ev = lab.healthy()
    assert lab.work.probes["expect:2"].want == "deny"
    assert one(lab.judge(ev), "expect", "#2").status == "pass"
    ev.probes["expect:2"] = answer()
    check = one(lab.judge(ev), "expect", "#2")
    assert check.status == "fail"
    assert check.cause == f"172.16.50.254 answered: {NET_TOOLS} reaches it out of net1"


def test_a_deny_expect_whose_probe_errored_does_not_claim_traffic_got_through(seed: Plan) -> None:
    lab = Verify(with_deny(seed))
    ev = lab.healthy()
    ev.probes["expect:2"] = ERRORED
    check = one(lab.judge(ev), "expect", "#2")
    assert check.status == "fail"
    assert check.cause and "refused" not in check.cause and "reaches it" not in check.cause


def test_an_isolation_probe_that_errored_does_not_claim_the_pod_reached_it(lab: Verify) -> None:
    ev = lab.healthy()
    ev.probes[f"isolation:{IM_WRK_1}:172.16.60.31"] = ERRORED
    check = one(lab.judge(ev), "isolation", f"{IM_WRK_1} vlan60")
    assert check.status == "fail"
    assert check.cause and "reached" not in check.cause


# -- probes.run_one -------------------------------------------------------------------------
class Clock:
    """A monotonic clock that only attempts move: no test waits for real time."""

    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


Attempt = Callable[[int, float], Outcome]


def run(
    monkeypatch: pytest.MonkeyPatch, probe: Probe, attempt: Attempt, took: float = 0.0
) -> tuple[ProbeResult, list[float]]:
    """Run ``probe`` with ``attempt(try, timeout)`` as its protocol; each try takes ``took``
    seconds of the fake clock (0: a quick failure, which waits for its slot)."""
    clock, timeouts = Clock(), []

    async def fake(nss: probes.Namespaces, p: Probe, timeout: float) -> tuple[Outcome, str]:
        timeouts.append(timeout)
        clock.now += took
        return attempt(len(timeouts), timeout), f"try {len(timeouts)}"

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    monkeypatch.setattr(probes, "time", SimpleNamespace(monotonic=clock.monotonic))
    monkeypatch.setattr(probes, "asyncio", SimpleNamespace(sleep=sleep))  # run_one only sleeps
    monkeypatch.setitem(probes._ATTEMPT, probe.proto, fake)
    return asyncio.run(probes.run_one(probes.Namespaces(), probe)), timeouts


def test_a_probe_retries_until_it_gets_the_answer_it_wants(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = Probe("/run/netns/a", "10.0.0.1", "tcp", 80, "allow", deadline=2.0, attempts=4)
    result, timeouts = run(monkeypatch, probe, lambda n, _: "answered" if n == 3 else "timeout")
    assert (result.outcome, result.tries, result.detail) == ("answered", 3, "try 3")
    assert timeouts == [0.5, 0.5, 0.5]  # the deadline spread over the attempts


def test_a_probe_stops_after_its_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = Probe("/run/netns/a", "10.0.0.1", deadline=2.0, attempts=3)
    result, _ = run(monkeypatch, probe, lambda n, _: "unreachable")
    assert (result.outcome, result.tries) == ("unreachable", 3)
    assert result.elapsed == pytest.approx(4 / 3)  # quick failures wait for their slot


def test_a_probe_stops_at_its_deadline_before_its_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = Probe("/run/netns/a", "10.0.0.1", deadline=1.0, attempts=10)
    result, _ = run(monkeypatch, probe, lambda n, _: "timeout", took=0.4)
    assert (result.outcome, result.tries) == ("timeout", 3)


def test_an_exception_in_an_attempt_is_an_error_outcome_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(n: int, timeout: float) -> Outcome:
        raise ValueError("port must be 0-65535")

    result, timeouts = run(monkeypatch, Probe("/run/netns/a", "10.0.0.1", "udp", 70000), broken)
    assert (result.outcome, result.detail, result.tries) == (
        "error",
        "ValueError: port must be 0-65535",
        1,
    )
    assert len(timeouts) == 1


def test_an_oserror_in_an_attempt_is_read_as_its_errno(monkeypatch: pytest.MonkeyPatch) -> None:
    def refused(n: int, timeout: float) -> Outcome:
        raise ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused")

    probe = Probe("/run/netns/a", "10.0.0.1", "tcp", 81, attempts=2)
    result, _ = run(monkeypatch, probe, refused)
    assert (result.outcome, result.detail, result.tries) == ("refused", "connection refused", 2)


def test_a_deny_probe_is_satisfied_by_a_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    probe = Probe("/run/netns/a", "10.0.0.1", want="deny", deadline=0.5, attempts=1)
    result, _ = run(monkeypatch, probe, lambda n, _: "timeout", took=0.5)
    assert (result.outcome, result.tries) == ("timeout", 1) and result.satisfies("deny")
    assert not ProbeResult("refused", "", 1, 0.0).satisfies("deny")  # refused: it got there


# -- the report -----------------------------------------------------------------------------
def report(lab: Verify, ev: Evidence) -> Report:
    return Report(lab=lab.plan.name, checks=tuple(lab.judge(ev)), elapsed=1.25)


def test_report_json_is_stable_across_derivations(seed: Plan) -> None:
    texts = []
    for _ in range(2):
        lab = Verify(seed)  # derived and judged afresh: the same text
        ev = lab.healthy()
        ev.streams["canal-segment"] = lab.crossing("vlan50")
        texts.append(report(lab, ev).json_text())
    assert texts[0] == texts[1]
    doc = json.loads(texts[0])
    assert (doc["ok"], doc["passed"], doc["failed"], doc["elapsed"]) == (False, 59, 1, 1.25)
    assert list(doc["checks"][0]) == ["id", "subject", "title", "status", "evidence", "cause"]


def test_junit_has_one_testcase_per_check_and_marks_the_failures(lab: Verify) -> None:
    ev = lab.healthy()
    ev.probes["expect:1"] = answer(False)
    ev.streams["longhorn-segment"] = lab.crossing("vlan40", echo=True)
    done = report(lab, ev)
    suite = ET.fromstring(done.junit()).find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert len(cases) == len(done.checks) == int(suite.get("tests", "0"))
    failed = {(c.get("classname"), c.get("name")) for c in cases if c.find("failure") is not None}
    assert failed == {
        ("multihome.verify.expect", "#1"),
        ("multihome.verify.longhorn-segment", "multus-network-attachments/macvlan-longhorn-dhcp"),
    }
    assert suite.get("failures") == "2"


def test_an_allow_expect_whose_probe_errored_says_so(lab: Verify) -> None:
    ev = lab.healthy()
    ev.probes["expect:1"] = ERRORED
    check = one(lab.judge(ev), "expect", "#1")
    assert check.status == "fail"
    assert check.cause == f"the probe could not run: {ERRORED.detail}"


def test_a_slow_machine_gives_probes_longer_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    """MULTIHOME_VERIFY_SLOWDOWN (make test-kernel's emulated VM) scales allow and deny
    deadlines, never below 1 nor past 100; nonsense is 1."""
    from multihome.verify.checks import base

    for value, factor in (("5", 5.0), ("0.1", 1.0), ("x", 1.0), ("1e9", 100.0)):
        monkeypatch.setenv(base.SLOWDOWN_ENV, value)
        assert base.allow("ns", "10.0.0.1").deadline == base.ALLOW_DEADLINE * factor
        assert base.deny("ns", "10.0.0.1").deadline == base.DENY_DEADLINE * factor
    monkeypatch.delenv(base.SLOWDOWN_ENV)
    assert base.allow("ns", "10.0.0.1").attempts == base.ALLOW_ATTEMPTS
    assert base.allow("ns", "10.0.0.1").deadline == base.ALLOW_DEADLINE
