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
- probes (``--probes``): a throwaway namespace of probe pods (``cluster.probes``): a
  host-network DaemonSet stands for the nodes (their NICs, routes and node-ip probes) and
  reads the NICs' counters around the streams; a probe pod per design pod runs what the
  design pod can't (no exec, a tool its image lacks) (``liveprobes``). The namespace is
  deleted on every way out (``_interruptible``: SIGINT and SIGTERM cancel the run).

Evidence a tier can't gather is written as ``NOT_MEASURED`` text: a check that fails only
on it is a skip with that reason, never a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import re
import signal
import time
from collections.abc import Coroutine
from typing import Any

import httpx2

from multihome.cluster import ClusterError, read
from multihome.cluster import probes as probes_cluster
from multihome.cluster.podexec import Exec
from multihome.plan import Plan

from .checks import FAMILIES, Context
from .checks.base import NOT_MEASURED, unmeasured
from .collect import SWITCH, Evidence, NetnsFacts, RouteTo, Work
from .counters import StreamResult
from .liveprobes import ProbePods, ProbeReader, mirrors, stream
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
NO_SWITCH = (
    f"{NOT_MEASURED}which segment each NIC is plugged into (a cluster's switch ports are not read)"
)
NO_DHCP = (
    f"{NOT_MEASURED}a DHCP DISCOVER out of a node's NIC: the probes tier sends none (the "
    "probe image has no DHCP client)"
)


# -- collecting ---------------------------------------------------------------------------------


async def gather(
    live: Live,
    work: Work,
    runner: Runner | None,
    probes: ProbePods | None = None,
    probe_runner: Runner | None = None,
    plan: Plan | None = None,
) -> Evidence:
    """The evidence ``work`` asks for that the API, exec and (with ``probes``, run by
    ``probe_runner``) the probes' pods can give; the rest as ``NOT_MEASURED``."""
    ev = Evidence()
    reader = PodReader(live, runner) if runner is not None else None
    own = ProbeReader(probes.live, probe_runner) if probes and probe_runner else None
    pods = live.view.pods.values()
    by_key = {v.netns: v for v in pods}

    def stand_in(key: str) -> str | None:
        return probes.mirror_of.get(key) if probes is not None and own is not None else None

    async def facts(key: str) -> tuple[str, NetnsFacts]:
        if key == SWITCH:
            return key, NetnsFacts(error=NO_SWITCH)
        if key not in live.pods:
            if own is not None and key in own.live.pods:
                return key, await own.facts(key)
            return key, NetnsFacts(error=probes.why_not(key) if probes else NEEDS_PROBES)
        if reader is None:
            return key, status_facts(by_key[key])
        return key, await reader.facts(key)

    async def route(key: str, dst: str) -> tuple[tuple[str, str], RouteTo | None]:
        found = None
        if reader is not None and key in live.pods:
            found = await reader.route(key, dst)
        elif own is not None and key in own.live.pods:
            found = await own.route(key, dst)
        mirror = stand_in(key)
        if found is None and mirror is not None:
            assert own is not None
            found = await own.route(mirror, dst)
        return (key, dst), found

    async def probe(name: str, p: Probe) -> tuple[str, ProbeResult]:
        if p.netns not in live.pods:
            if own is not None and p.netns in own.live.pods and p.proto != "dhcp":
                return name, await own.probe(p)
            why = probes.why_not(p.netns) if probes and p.proto != "dhcp" else NEEDS_PROBES
            return name, ProbeResult("error", NO_DHCP if p.proto == "dhcp" else why, 0, 0.0)
        result = (
            await reader.probe(p)
            if reader is not None
            else ProbeResult("error", NEEDS_EXEC, 0, 0.0)
        )
        mirror = stand_in(p.netns)
        if mirror is not None and unmeasured(result.detail):
            assert own is not None
            result = await own.probe(dataclasses.replace(p, netns=mirror))
        return name, result

    found_facts, found_routes, found_probes = await asyncio.gather(
        asyncio.gather(*(facts(k) for k in sorted(work.facts))),
        asyncio.gather(*(route(k, d) for k, d in sorted(work.routes))),
        asyncio.gather(*(probe(n, p) for n, p in work.probes.items())),
    )
    ev.facts = dict(found_facts)
    ev.routes = {k: v for k, v in found_routes if v is not None}
    ev.probes = dict(found_probes)
    if probes is None or own is None or plan is None:
        ev.streams = {k: StreamResult(0, 0, False, 0.0, NEEDS_PROBES) for k in work.streams}
        return ev
    nodes = sorted(live.view.nodes)
    for key, s in work.streams.items():  # one at a time, nothing else on the wire
        ev.streams[key] = await stream(own, probes, plan, nodes, s, reader)
    return ev


def _tiered(result: CheckResult, exec_: bool, probes: bool = False) -> CheckResult:
    """The tier a result needs; a failure on evidence this run could not gather is a skip
    with that reason."""
    tier = TIERS.get(result.id)
    if tier is None:  # interfaces, network-status: exec when it ran, else the annotation
        tier = EXEC if exec_ else READ_ONLY
    elif tier == EXEC and probes and not exec_:  # judged from the probe pods, not exec
        tier = PROBES
    # a check puts the text in its cause when nothing it measured failed (``unmeasured``);
    # one with no cause of its own (a namespace it could not read) in its evidence
    texts = (result.cause,) if result.cause else result.evidence
    unmeasured = next((t for t in texts if NOT_MEASURED in t), None)
    if result.status == "fail" and unmeasured is not None:
        reason = unmeasured[unmeasured.index(NOT_MEASURED) + len(NOT_MEASURED) :]
        reason = re.split(r", | \(", reason, maxsplit=1)[0]  # the line goes on after it
        return dataclasses.replace(result, status="skip", cause=reason, tier=tier)
    return dataclasses.replace(result, tier=tier)


@dataclasses.dataclass(frozen=True)
class Options:
    """What a run does beyond the read-only tier."""

    exec_: bool = True
    probes: bool = False
    probe_image: str | None = None
    """None: the image rke2-canal runs (``cluster.probes.default_image``)."""


async def _run(
    plan: Plan,
    kubeconfig: str,
    context: str | None,
    options: Options,
    transport: httpx2.AsyncBaseTransport | None,
    runner: Runner | None,
) -> Report:
    started = time.monotonic()
    config = read.load_config(kubeconfig, context)
    client = read.connect(kubeconfig, context, transport)
    space: probes_cluster.ProbeSpace | None = None
    deleting: list[str] = []
    timings: dict[str, float] = {}
    try:
        removed = await probes_cluster.remove_expired(client) if options.probes else []
        objects = await read.read_objects(client)
        read_done = time.monotonic()
        timings["read"] = read_done - started
        live = build_view(plan, objects)
        ctx = Context(plan, live.view)
        work = Work()
        judges = [derive(ctx, work) for derive in FAMILIES]
        async with contextlib.AsyncExitStack() as stack:
            ws: Runner | None = runner
            if ws is None and (options.exec_ or options.probes):
                ws = await stack.enter_async_context(Exec(config, context))
            pods = None
            if options.probes:
                made = mirrors(plan, live)
                image = options.probe_image or probes_cluster.default_image(objects.daemonsets)
                space = probes_cluster.ProbeSpace(client, image, made)
                await space.create()
                placed = await space.wait(sorted(live.view.nodes))
                pods = ProbePods.of(live, space.namespace, placed, made)
                timings["probes up"] = time.monotonic() - read_done
            collect_start = time.monotonic()
            ev = await gather(live, work, ws if options.exec_ else None, pods, ws, plan)
            timings["collect"] = time.monotonic() - collect_start
        ev.cluster = objects
    finally:
        try:
            if space is not None:
                cleanup_start = time.monotonic()
                deleting = await asyncio.shield(space.delete())
                timings["cleanup"] = time.monotonic() - cleanup_start
        finally:
            await client.close()
    judge_start = time.monotonic()
    results = [_tiered(r, options.exec_, options.probes) for judge in judges for r in judge(ev)]
    done = time.monotonic()
    timings["judge"] = done - judge_start
    lab = f"{plan.name} (cluster)"
    if removed:
        lab += f"; removed {', '.join(removed)}, left by a killed run"
    if deleting:
        lab += f"; namespace {', '.join(deleting)} is still being deleted (the cluster goes on)"
    return Report(lab=lab, checks=tuple(results), elapsed=done - started, timings=timings)


def run(
    plan: Plan,
    kubeconfig: str,
    context: str | None = None,
    *,
    exec_: bool = True,
    probes: bool = False,
    probe_image: str | None = None,
    transport: httpx2.AsyncBaseTransport | None = None,
    runner: Runner | None = None,
) -> Report:
    """Verify the cluster of ``kubeconfig`` against ``plan``; raises ``ClusterError`` when
    it can't be read. ``probes``: the probes tier too (its namespace is deleted on every
    way out: a failure, Ctrl-C, SIGTERM). ``transport`` (the reads) and ``runner`` (exec):
    tests' stand-ins."""
    options = Options(exec_, probes, probe_image)
    return _interruptible(_run(plan, kubeconfig, context, options, transport, runner))


def _interruptible(main: Coroutine[Any, Any, Report]) -> Report:
    """Run ``main``; Ctrl-C (SIGINT) and SIGTERM cancel it, its cleanup runs to the end
    (the probes' namespace deleted), then KeyboardInterrupt is raised."""
    with asyncio.Runner() as runner:
        loop = runner.get_loop()
        task = loop.create_task(main)
        stopped = False

        def stop() -> None:
            nonlocal stopped
            if not stopped:  # a second signal while cleaning up: the cleanup goes on
                stopped = True
                task.cancel()

        handled = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(RuntimeError, ValueError):  # not the main thread
                loop.add_signal_handler(sig, stop)
                handled.append(sig)
        try:
            return runner.run(_await(task))
        except asyncio.CancelledError:
            if stopped:
                raise KeyboardInterrupt from None
            raise
        finally:
            for sig in handled:
                with contextlib.suppress(RuntimeError, ValueError):
                    loop.remove_signal_handler(sig)


async def _await(task: asyncio.Task[Report]) -> Report:
    return await task


__all__ = ["ClusterError", "Runner", "build_view", "run"]
