"""``verify --kubeconfig``: the second collector. The lab file says what should be; a real
cluster (or the lab's own API) is read through the Kubernetes API and judged by the same
checks as the lab, into the same ``Report``: ``cluster.read`` lists the objects,
``liveview`` makes the running view the checks walk from them, ``podread`` reads the pods
through exec, and this module gathers what the checks ask for and says each result's tier.

Tiers, each saying on its results which it needs:
- read-only (always): the API's objects, for the view and ``checks.api``. Without exec, a
  pod's interfaces are what its network-status records.
- exec (default; ``--no-exec`` skips it): ``ip`` and the probes run in the design's pods
  through ``pods/exec``, with what the pod's image has.
- probes (a later ``--probes``): what needs a node's NICs or a segment's counters (the
  nics, node-ip, dhcp-server and *-segment checks) is not gathered here.

Evidence a tier can't gather is written as ``NOT_MEASURED`` text: a check that fails only
on it is a skip with that reason, never a failure.
"""

from __future__ import annotations

import asyncio
import dataclasses
import re
import time

import httpx2

from multihome.cluster import ClusterError, read
from multihome.cluster.podexec import Exec
from multihome.plan import Plan

from .checks import FAMILIES, Context
from .checks.base import NOT_MEASURED
from .collect import Evidence, NetnsFacts, RouteTo, Work
from .counters import StreamResult
from .liveview import Live, build_view
from .podread import PodReader, Runner, status_facts
from .probes import Probe, ProbeResult
from .report import CheckResult, Report

READ_ONLY, EXEC, PROBES = "read-only", "exec", "probes"
TIERS = {
    "node-address": READ_ONLY,
    "canal-nic": READ_ONLY,
    "nad": READ_ONLY,
    "multus": READ_ONLY,
    "dhcp-daemon": READ_ONLY,
    "longhorn-setting": READ_ONLY,
    "longhorn-replica": READ_ONLY,
    "default-route": EXEC,
    "pod-to-pod": EXEC,
    "reach": EXEC,
    "isolation": EXEC,
    "expect": EXEC,
    "longhorn-reach": EXEC,
    "nics": PROBES,
    "dhcp-server": PROBES,
    "node-ip": PROBES,
    "canal-segment": PROBES,
    "longhorn-segment": PROBES,
    "dhcp-lease": PROBES,
}
NEEDS_PROBES = f"{NOT_MEASURED}needs the probes tier: a node's NICs and a segment's counters"
NEEDS_EXEC = f"{NOT_MEASURED}needs exec into the pod: drop --no-exec"


# -- collecting ---------------------------------------------------------------------------------


async def gather(live: Live, work: Work, runner: Runner | None) -> Evidence:
    """The evidence ``work`` asks for that the API and exec can give; the rest as
    ``NOT_MEASURED``."""
    ev = Evidence()
    reader = PodReader(live, runner) if runner is not None else None
    pods = live.view.pods.values()
    by_key = {v.netns: v for v in pods}

    async def facts(key: str) -> tuple[str, NetnsFacts]:
        if key not in live.pods:
            return key, NetnsFacts(error=NEEDS_PROBES)
        if reader is None:
            return key, status_facts(by_key[key])
        return key, await reader.facts(key)

    async def route(key: str, dst: str) -> tuple[tuple[str, str], RouteTo | None]:
        if reader is None or key not in live.pods:
            return (key, dst), None
        return (key, dst), await reader.route(key, dst)

    async def probe(name: str, p: Probe) -> tuple[str, ProbeResult]:
        if p.netns not in live.pods:
            return name, ProbeResult("error", NEEDS_PROBES, 0, 0.0)
        if reader is None:
            return name, ProbeResult("error", NEEDS_EXEC, 0, 0.0)
        return name, await reader.probe(p)

    found_facts, found_routes, found_probes = await asyncio.gather(
        asyncio.gather(*(facts(k) for k in sorted(work.facts))),
        asyncio.gather(*(route(k, d) for k, d in sorted(work.routes))),
        asyncio.gather(*(probe(n, p) for n, p in work.probes.items())),
    )
    ev.facts = dict(found_facts)
    ev.routes = {k: v for k, v in found_routes if v is not None}
    ev.probes = dict(found_probes)
    ev.streams = {k: StreamResult(0, 0, False, 0.0, NEEDS_PROBES) for k in work.streams}
    return ev


def _tiered(result: CheckResult, exec_: bool) -> CheckResult:
    """The tier a result needs; a failure on evidence this run could not gather is a skip
    with that reason."""
    tier = TIERS.get(result.id)
    if tier is None:  # interfaces, network-status: exec when it ran, else the annotation
        tier = EXEC if exec_ else READ_ONLY
    # a check puts the text in its cause when nothing it measured failed (``unmeasured``);
    # one with no cause of its own (a namespace it could not read) in its evidence
    texts = (result.cause,) if result.cause else result.evidence
    unmeasured = next((t for t in texts if NOT_MEASURED in t), None)
    if result.status == "fail" and unmeasured is not None:
        reason = unmeasured[unmeasured.index(NOT_MEASURED) + len(NOT_MEASURED) :]
        reason = re.split(r", | \(", reason, maxsplit=1)[0]  # the line goes on after it
        return dataclasses.replace(result, status="skip", cause=reason, tier=tier)
    return dataclasses.replace(result, tier=tier)


async def _run(
    plan: Plan,
    kubeconfig: str,
    context: str | None,
    exec_: bool,
    transport: httpx2.AsyncBaseTransport | None,
    runner: Runner | None,
) -> Report:
    started = time.monotonic()
    config = read.load_config(kubeconfig, context)
    client = read.connect(kubeconfig, context, transport)
    try:
        objects = await read.read_objects(client)
    finally:
        await client.close()
    read_done = time.monotonic()
    live = build_view(plan, objects)
    ctx = Context(plan, live.view)
    work = Work()
    judges = [derive(ctx, work) for derive in FAMILIES]
    if exec_ and runner is None:
        async with Exec(config, context) as ws:
            ev = await gather(live, work, ws)
    else:
        ev = await gather(live, work, runner if exec_ else None)
    ev.cluster = objects
    collected = time.monotonic()
    results = [_tiered(r, exec_) for judge in judges for r in judge(ev)]
    done = time.monotonic()
    timings = {
        "read": read_done - started,
        "collect": collected - read_done,
        "judge": done - collected,
    }
    return Report(
        lab=f"{plan.name} (cluster)", checks=tuple(results), elapsed=done - started, timings=timings
    )


def run(
    plan: Plan,
    kubeconfig: str,
    context: str | None = None,
    *,
    exec_: bool = True,
    transport: httpx2.AsyncBaseTransport | None = None,
    runner: Runner | None = None,
) -> Report:
    """Verify the cluster of ``kubeconfig`` against ``plan``; raises ``ClusterError`` when
    it can't be read. ``transport`` (the reads) and ``runner`` (exec): tests' stand-ins."""
    return asyncio.run(_run(plan, kubeconfig, context, exec_, transport, runner))


__all__ = ["ClusterError", "Runner", "build_view", "run"]
