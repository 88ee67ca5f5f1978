"""``verify --kubeconfig --probes`` end to end against the lab's own Kubernetes API: the
probes' namespace, host-network DaemonSet and probe pods are written through the API (the lab
attaches the pods for real; exec runs in them), and the probes tier gives the verdicts and
causes of the lab's own verify for the checks it judges (the nodes' NICs, node-ip, which
segment pod and storage traffic crosses), on the seed and on broken variants; its namespace
is gone after a run, a failed run and SIGTERM, and a killed run's is deleted by the next."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import variants
from lightkube import Client, KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace
from verifykit import lab_up

from multihome import verify
from multihome.cluster import probes
from multihome.cluster.podexec import ExecResult
from multihome.kube import kubeconfig_path
from multihome.plan import Plan, build_plan
from multihome.verify import live
from multihome.verify.report import Report

CASES = {
    "seed": (variants.SEED, False),
    "canal-on-ens224": (variants.CANAL_ENS224, False),
    "agent-without-ens256": (variants.NO_ENS256, True),
}
JUDGED = {"nics", "node-ip", "canal-segment", "longhorn-segment"}
"""The probes tier's checks it judges on the lab (dhcp-server and dhcp-lease: skipped)."""


@dataclass
class Runs:
    name: str
    kubeconfig: Path
    plan: Plan
    plan_file: Path
    lab: Report
    probes: Report


@pytest.fixture(scope="module", params=list(CASES))
def runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Runs]:
    text, keep_going = CASES[request.param]
    root = tmp_path_factory.mktemp(f"probes-{request.param}")
    lab_file = root / "lab.yaml"
    lab_file.write_text(text)
    with lab_up(variants.load(text, str(lab_file)), root / "state", keep_going=keep_going) as name:
        plan = build_plan(variants.load(text, str(lab_file)))
        config = kubeconfig_path(name)
        lab = verify.run(name)
        report = live.run(plan, str(config), probes=True)
        yield Runs(request.param, config, plan, lab_file, lab, report)


def _client(config: Path) -> Client:
    return Client(KubeConfig.from_file(config))


def _probe_namespaces(config: Path) -> dict[str, bool]:
    """The probes' namespaces in the cluster -> whether being deleted."""
    return {
        str(ns.metadata.name): ns.metadata.deletionTimestamp is not None  # type: ignore[union-attr]
        for ns in _client(config).list(Namespace, labels={probes.RUN_LABEL: None})
    }


def _cleaned_up(config: Path) -> bool:
    """Every probes namespace is being deleted, and then gone. The CLI waits a while for
    the deletion; a lab under load may take longer to detach the probe pods."""
    left = _probe_namespaces(config)
    if not all(left.values()):
        return False
    deadline = time.monotonic() + 60
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = _probe_namespaces(config)
    return not left


def _by_key(report: Report) -> dict[tuple[str, str], tuple[str, str | None]]:
    return {(c.id, c.subject): (c.status, c.cause) for c in report.checks}


def test_the_probes_tier_judges_as_the_labs_verify(runs: Runs) -> None:
    ours, theirs = _by_key(runs.lab), _by_key(runs.probes)
    tiered = [c for c in runs.probes.checks if c.tier == "probes"]
    assert {c.id for c in tiered if c.status != "skip"} >= JUDGED, [
        (c.name, c.cause) for c in tiered if c.status == "skip"
    ]
    for check in tiered:
        key = (check.id, check.subject)
        if check.status == "skip":
            assert check.cause and check.id in ("dhcp-server", "dhcp-lease"), key
            continue
        assert theirs[key][0] == ours[key][0], (key, ours[key], theirs[key])
        if check.status == "fail":  # the same cause, in the same words
            assert theirs[key][1] == ours[key][1], key
    differ = [
        k for k in ours.keys() & theirs.keys()
        if "skip" not in (ours[k][0], theirs[k][0]) and ours[k][0] != theirs[k][0]
    ]  # fmt: skip
    assert differ == []
    assert runs.lab.ok == runs.probes.ok
    assert _cleaned_up(runs.kubeconfig), _probe_namespaces(runs.kubeconfig)


def test_the_variants_fail_where_the_design_says(runs: Runs) -> None:
    failed = {c.id: c for c in runs.probes.failed if c.tier == "probes"}
    if runs.name == "seed":
        assert runs.probes.ok and not failed
        segment = next(c for c in runs.probes.checks if c.id == "canal-segment")
        assert segment.evidence[0].startswith("vlan40 +"), segment.evidence
    elif runs.name == "canal-on-ens224":
        cause = failed["canal-segment"].cause or ""
        assert "crossed vlan50, not vlan40" in cause and "Canal is pinned to ens224" in cause
    else:  # the design gives wrk-1 no ens256: its NICs are as designed, net-tools can't attach
        assert not failed
        interfaces = next(c for c in runs.probes.failed if c.id == "interfaces")
        assert "macvlan on ens256, which multi-homed-wrk-1 does not have" in (
            interfaces.cause or ""
        )


def _leftover(client: Client, name: str, expires: float) -> None:
    meta = ObjectMeta(
        name=name,
        labels={probes.RUN_LABEL: name[len(probes.PREFIX) :]},
        annotations={probes.EXPIRES: str(int(expires))},
    )
    client.create(Namespace(metadata=meta))


class _Broken:
    """An exec that fails the run in the middle (after the probes' namespace is made)."""

    async def run(self, *args: object, **kwargs: object) -> ExecResult:
        raise RuntimeError("the connection broke")


def test_a_failed_run_cleans_up_and_removes_a_killed_runs_namespace(runs: Runs) -> None:
    if runs.name != "seed":
        pytest.skip("the seed is enough")
    client = _client(runs.kubeconfig)
    killed, running = probes.PREFIX + "killed00", probes.PREFIX + "running0"
    _leftover(client, killed, time.time() - 1)  # its run would be over by now
    _leftover(client, running, time.time() + 600)  # another run, still going
    try:
        with pytest.raises(RuntimeError, match="the connection broke"):
            live.run(runs.plan, str(runs.kubeconfig), probes=True, runner=_Broken())
        assert set(_probe_namespaces(runs.kubeconfig)) == {running}
    finally:
        client.delete(Namespace, running)
    deadline = time.monotonic() + 20
    while _probe_namespaces(runs.kubeconfig) and time.monotonic() < deadline:
        time.sleep(0.3)


def _cli(runs: Runs, *more: str) -> list[str]:
    return [sys.executable, "-m", "multihome", "verify", str(runs.plan_file), "--kubeconfig",
            str(runs.kubeconfig), "--probes", *more]  # fmt: skip


def test_without_exec_the_probe_pods_probe_for_the_design_pods(runs: Runs) -> None:
    """--no-exec --probes: reach, isolation and expect run from the probe pods attached as
    the design's pods are, with the lab's verdicts."""
    if runs.name != "seed":
        pytest.skip("the seed is enough")
    report = live.run(runs.plan, str(runs.kubeconfig), exec_=False, probes=True)
    ours = _by_key(runs.lab)
    judged = [c for c in report.checks if c.id in ("reach", "isolation", "expect")]
    assert judged and all(c.status != "skip" and c.tier == "probes" for c in judged), [
        (c.name, c.status, c.cause) for c in judged if c.status == "skip"
    ]
    assert [c.name for c in judged if c.status != ours[(c.id, c.subject)][0]] == []
    assert report.ok


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_clean_up(runs: Runs, sig: signal.Signals) -> None:
    if runs.name != "seed":
        pytest.skip("the seed is enough")
    proc = subprocess.Popen(
        _cli(runs), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while not _probe_namespaces(runs.kubeconfig):
            assert proc.poll() is None and time.monotonic() < deadline, proc.poll()
            time.sleep(0.1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert _cleaned_up(runs.kubeconfig), _probe_namespaces(runs.kubeconfig)


def test_cli_json_junit_and_exit_codes(runs: Runs, tmp_path: Path) -> None:
    if runs.name not in ("seed", "agent-without-ens256"):
        pytest.skip("one passing and one failing lab are enough for the command line")
    junit = tmp_path / "verify.xml"
    done = subprocess.run(
        _cli(runs, "-o", "json", "--junit", str(junit)), capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert done.returncode == (0 if runs.name == "seed" else 1), done.stderr
    report = json.loads(done.stdout)
    assert "probes" in {c["tier"] for c in report["checks"]}
    assert "<testsuite" in junit.read_text()
    bad = subprocess.run(
        [*_cli(runs)[:4], "--probe-image", "x"], capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 2 and "go with --kubeconfig" in bad.stderr
