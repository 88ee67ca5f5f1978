"""Longhorn's checks follow the release: in 1.4 the replication stream goes from an engine
instance-manager to the replica instance-manager of another agent, in 1.5+ between the
all-in-one ones; on lhnet1, to the replica's data port. Judged without a kernel (``fakes``)
and on real labs (the seed at 1.4, a quick 1.6 variant)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import variants
from fakes import Verify
from verifykit import lab_up

from multihome import verify
from multihome.plan import Plan, PodPlan, build_plan
from multihome.spec import load_lab
from multihome.verify.checks import FAMILIES
from multihome.verify.collect import Work

ENGINE = re.compile(r"instance-manager-e-[0-9a-f]{32}")
REPLICA = re.compile(r"instance-manager-r-[0-9a-f]{32}")
AIO = re.compile(r"instance-manager-[0-9a-f]{32}")
LINE = re.compile(r"(instance-manager-\S+) on (\S+) -> (instance-manager-\S+) on (\S+) (\S+):")


def _by_netns(plan: Plan, lab: Verify) -> dict[str, PodPlan]:
    return {lab.ctx.lab.pods[p.ref].netns: p for p in plan.pods if p.ref in lab.ctx.lab.pods}


def _pairs(evidence: tuple[str, ...]) -> list[tuple[str, str, str, str]]:
    return [m.groups()[:4] for line in evidence if (m := LINE.match(line))]


def test_1_4_pairs_engine_managers_with_other_agents_replica_managers() -> None:
    plan = build_plan(load_lab(None))
    lab = Verify(plan)
    results = {r.id: r for r in lab.judge(lab.healthy())}
    reach = results["longhorn-reach"]
    assert reach.status == "pass"
    assert reach.title.startswith("engine instance-managers reach the replica instance-managers")
    pairs = _pairs(reach.evidence)
    assert len(pairs) == 6  # 3 engines x the replicas of the 2 other agents
    for src, src_node, dst, dst_node in pairs:
        assert ENGINE.fullmatch(src) and REPLICA.fullmatch(dst) and src_node != dst_node
    stream = lab.work.streams["longhorn-segment"]
    pods = _by_netns(plan, lab)
    assert ENGINE.fullmatch(pods[stream.netns].name)
    target = next(p for p in plan.pods if lab.ctx.lab.pods[p.ref].address("lhnet1") == stream.dst)
    assert REPLICA.fullmatch(target.name) and target.node != pods[stream.netns].node
    assert stream.port == 10001 and stream.echo  # the replica's data port, on lhnet1
    segment = results["longhorn-segment"]
    assert segment.status == "pass"
    assert ":10001" in " ".join(segment.evidence)


def test_1_6_pairs_all_in_one_managers_once_each() -> None:
    plan = build_plan(variants.load(variants.LONGHORN_1_6))
    lab = Verify(plan)
    results = {r.id: r for r in lab.judge(lab.healthy())}
    reach = results["longhorn-reach"]
    assert reach.title == "instance-managers on different agents reach each other on lhnet1"
    pairs = _pairs(reach.evidence)
    assert len(pairs) == 3
    assert all(AIO.fullmatch(a) and AIO.fullmatch(b) and na != nb for a, na, b, nb in pairs)
    stream = lab.work.streams["longhorn-segment"]
    assert AIO.fullmatch(_by_netns(plan, lab)[stream.netns].name) and stream.port == 10001


def test_1_4_without_replica_managers_skips_and_says_why() -> None:
    plan = build_plan(load_lab(None))
    lab = Verify(plan)
    for pod in plan.pods:  # the replica instance-managers are not in the lab (Pending)
        if REPLICA.fullmatch(pod.name):
            del lab.ctx.lab.pods[pod.ref]
    lab.work = Work(bridges=lab.work.bridges)
    lab.judges = [derive(lab.ctx, lab.work) for derive in FAMILIES]
    results = {r.id: r for r in lab.judge(lab.healthy()) if r.id.startswith("longhorn")}
    assert results["longhorn-reach"].status == "skip"
    cause = results["longhorn-reach"].cause or ""
    assert "no engine and replica instance-managers on different nodes" in cause
    assert "instance-manager-r-" in cause  # named as having no lhnet1
    assert "longhorn-segment" not in lab.work.streams


# -- real labs ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def longhorn_1_6(tmp_path_factory: pytest.TempPathFactory) -> Iterator[verify.Report]:
    root = tmp_path_factory.mktemp("verify-longhorn-1-6")
    with lab_up(variants.load(variants.LONGHORN_1_6), root) as name:
        yield verify.run(name)


def test_1_6_lab_replicates_between_all_in_one_managers_over_vlan50(
    longhorn_1_6: verify.Report,
) -> None:
    failed = [
        f"{c.name}: {c.evidence} / {c.cause}" for c in longhorn_1_6.checks if c.status != "pass"
    ]
    assert failed == []
    checks = {c.id: c for c in longhorn_1_6.checks if c.id.startswith("longhorn")}
    pairs = _pairs(checks["longhorn-reach"].evidence)
    assert len(pairs) == 3 and all(AIO.fullmatch(a) and AIO.fullmatch(b) for a, _, b, _ in pairs)
    segment = " ".join(checks["longhorn-segment"].evidence)
    assert re.search(r"vlan50 \+\d+ KiB", segment) and ":10001" in segment
    assert "vlan40 +" not in segment or re.search(r"vlan40 \+\d+ B\b", segment)


def _many_agents(count: int, version: str) -> str:
    agents = "".join(
        f"    - name: wk-{i}\n      role: agent\n"
        f"      nics: [{{name: eth0, network: mgmt, address: 10.0.0.{10 + i}}},"
        " {name: eth1, network: data}]\n"
        for i in range(1, count + 1)
    )
    return f"""\
apiVersion: multihome.dev/v1alpha1
kind: Lab
metadata: {{name: many}}
spec:
  networks:
    - {{name: mgmt, subnet: 10.0.0.0/24, gateway: 10.0.0.1}}
    - {{name: data, subnet: 10.1.0.0/16, dhcp: {{range: 10.1.0.10-10.1.250.250}}}}
  nodes:
    - name: cp-1
      role: server
      nics: [{{name: eth0, network: mgmt, address: 10.0.0.10}}]
{agents}  cluster: {{canal: {{iface: eth0, backend: host-gw}}}}
  longhorn: {{storageNetwork: storage/data, version: {version}}}
---
apiVersion: v1
kind: Namespace
metadata: {{name: storage}}
---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {{name: data, namespace: storage}}
spec:
  config: '{{"cniVersion": "0.4.0", "type": "macvlan", "master": "eth1",
            "ipam": {{"type": "dhcp"}}}}'
"""


@pytest.mark.parametrize(("version", "per_node"), [("1.4.4", 3), ("1.6.4", 3)])
def test_a_large_lab_pairs_each_node_with_a_few_others(version: str, per_node: int) -> None:
    plan = build_plan(variants.load(_many_agents(40, version)))
    lab = Verify(plan)
    reach = next(r for r in lab.judge(lab.healthy()) if r.id == "longhorn-reach")
    assert reach.status == "pass"
    pairs = _pairs(reach.evidence)
    # 40 nodes x 3 others around the ring, not 40 x 39: the probes stay linear in the nodes
    assert len(pairs) == 40 * per_node
    assert all(a_node != b_node for _, a_node, _, b_node in pairs)
    if version == "1.4.4":
        assert all(ENGINE.fullmatch(a) and REPLICA.fullmatch(b) for a, _, b, _ in pairs)
