"""The lab's expect entries in the plan: what source, target and via name, the port, and
where each entry is written."""

from __future__ import annotations

from plan_helpers import LAB, lab

from multihome.plan import build_plan, split_endpoint

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: app
  namespace: apps
  annotations: {k8s.v1.cni.cncf.io/networks: data}
spec:
  containers: [{name: app, image: busybox}]
"""

EXPECT = """\
  cluster: {canal: {iface: eth0, backend: host-gw}}
  expect:
    - {from: apps/app, to: "10.1.0.5:8080", proto: tcp, via: net1}
    - {from: wk-1, to: apps/app, via: data, result: deny, deadline: 1.5, retries: 0}
    - {from: nobody, to: cp-1:22, proto: udp, via: eth9}
"""


def test_expect_entries_resolve() -> None:
    plan = build_plan(
        lab(POD, replace=(("  cluster: {canal: {iface: eth0, backend: host-gw}}\n", EXPECT),))
    )
    first, second, third = plan.expect
    assert (first.index, first.source_kind, first.target, first.target_kind, first.port) == (
        1, "pod", "10.1.0.5", "ip", 8080,
    )  # fmt: skip
    assert (first.via, first.via_kind, first.proto, first.result) == (
        "net1",
        "interface",
        "tcp",
        "allow",
    )
    assert (second.source_kind, second.target_kind, second.port, second.via_kind) == (
        "node", "pod", None, "network",
    )  # fmt: skip
    assert (second.result, second.deadline, second.retries) == ("deny", 1.5, 0)
    assert (third.source_kind, third.target_kind, third.port, third.via_kind) == (
        None, "node", 22, None,
    )  # fmt: skip
    text = LAB.replace("  cluster: {canal: {iface: eth0, backend: host-gw}}\n", EXPECT)
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "from: apps/app" in t)
    assert [e.line for e in plan.expect] == [line, line + 1, line + 2]


def test_split_endpoint() -> None:
    assert split_endpoint("172.16.60.31:80") == ("172.16.60.31", 80)
    assert split_endpoint("[fd00::1]:443") == ("fd00::1", 443)
    assert split_endpoint("fd00::1") == ("fd00::1", None)
    assert split_endpoint("ns/pod") == ("ns/pod", None)
