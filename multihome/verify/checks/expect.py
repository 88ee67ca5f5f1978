"""The lab's ``expect`` entries: from a pod, node or host to a pod, node, host, IP or
IP:port, optionally ``via`` a network or interface, over icmp, tcp, udp or http, allowed or
denied, each with its deadline and retries."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from multihome.plan import ExpectPlan

from ..collect import Evidence, Work
from ..probes import Probe
from ..report import CheckResult
from ..view import MachineView, PodView
from .base import Context, Judge, keeps_cluster_route, route_text


@dataclass(frozen=True)
class _Source:
    label: str
    netns: str
    networks: dict[str, str | None]
    """Interface -> the network it is on."""


@dataclass(frozen=True)
class _Resolved:
    source: _Source
    address: str
    port: int | None
    probe: Probe


def _source(ctx: Context, exp: ExpectPlan) -> _Source | str:
    """The source's namespace and interfaces, or why there is none."""
    if exp.source_kind == "pod":
        pod = next((p for p in ctx.plan.pods if p.ref == exp.from_), None)
        view = ctx.lab.pods.get(exp.from_)
        if pod is not None and view is None and ctx.lab.source == "cluster":
            return f"{exp.from_} is not in the cluster"
        if pod is None or view is None:
            return f"{exp.from_} is not running (Pending: no node can run it)"
        if not view.running:
            return f"{exp.from_} is {view.phase}: its attachment failed (see its interfaces check)"
        nets = {i.name: i.lab_network for i in pod.interfaces}
        return _Source(exp.from_, view.netns, nets)
    if exp.source_kind in ("node", "host"):
        machine = ctx.lab.machine(exp.from_)
        if machine is None:
            return f"{exp.from_} is not in the running lab"
        return _Source(exp.from_, machine.netns, {n.name: n.network for n in machine.nics})
    return f"{exp.from_!r} is not a pod (namespace/name), node or host of the lab"


def _pod_address(
    ctx: Context, view: PodView, via: str | None, shared: Collection[str] = ()
) -> str | None:
    """The pod's address on ``via`` (an interface or network) if given; else on one of the
    ``shared`` networks (the source's, when it can't use the cluster network); else eth0's."""
    pod = next((p for p in ctx.plan.pods if p.ref == view.ref), None)
    if via is not None and pod is not None:
        for iface in pod.interfaces:
            if via in (iface.name, iface.lab_network) and view.address(iface.name):
                return view.address(iface.name)
    if via is None and pod is not None:
        for iface in pod.interfaces:
            if iface.lab_network in shared and view.address(iface.name):
                return view.address(iface.name)
    return view.address("eth0") or next(
        (str(e["ips"][0]) for e in view.network_status if e.get("ips")), None
    )


def _machine_address(machine: MachineView, via: str | None) -> str | None:
    if via is not None:
        found = machine.address_on(via) or next(
            (n.address for n in machine.nics if n.name == via and n.address), None
        )
        if found:
            return found
    return machine.first_address


def _off_cluster_network(ctx: Context, exp: ExpectPlan, source: _Source) -> set[str]:
    """The source's networks, when it reaches pods through them rather than the cluster
    network: a host (outside the cluster), or a pod whose default route left eth0
    (default-route in its annotation: eth0 keeps only its link route)."""
    if exp.source_kind == "host":
        return {n for n in source.networks.values() if n}
    pod = next((p for p in ctx.plan.pods if p.ref == exp.from_), None)
    if pod is not None and not keeps_cluster_route(pod):
        return {n for n in source.networks.values() if n}
    return set()


def _target(ctx: Context, exp: ExpectPlan, source: _Source) -> str:
    """The target's address, or raise ValueError saying why there is none."""
    if exp.target_kind == "ip":
        return exp.target
    if exp.target_kind == "pod":
        view = ctx.lab.pods.get(exp.target)
        if view is None or not view.running:
            raise ValueError(f"target pod {exp.target} is not running")
        address = _pod_address(ctx, view, exp.via, _off_cluster_network(ctx, exp, source))
        if address is None:
            raise ValueError(f"target pod {exp.target} has no address")
        return address
    if exp.target_kind in ("node", "host"):
        machine = ctx.lab.machine(exp.target)
        address = _machine_address(machine, exp.via) if machine else None
        if address is None:
            raise ValueError(f"{exp.target} has no address")
        return address
    raise ValueError(f"{exp.to!r} is not an IP, IP:port, pod, node or host of the lab")


def derive(ctx: Context, work: Work) -> Judge:
    resolved: dict[int, _Resolved | str] = {}
    for exp in ctx.plan.expect:
        source = _source(ctx, exp)
        if isinstance(source, str):
            resolved[exp.index] = source
            continue
        try:
            address = _target(ctx, exp, source)
        except ValueError as exc:
            resolved[exp.index] = str(exc)
            continue
        port = exp.port if exp.port is not None else (80 if exp.proto == "http" else None)
        if exp.proto in ("tcp", "udp") and port is None:
            resolved[exp.index] = f"a {exp.proto} probe needs a port: write {exp.target}:PORT"
            continue
        probe = Probe(
            source.netns, address, exp.proto, port, exp.result, exp.deadline, exp.retries + 1
        )
        resolved[exp.index] = _Resolved(source, address, port, probe)
        work.probe(f"expect:{exp.index}", probe)
        work.route(source.netns, address)

    def judge(ev: Evidence) -> list[CheckResult]:
        return [_judge(exp, resolved[exp.index], ev) for exp in ctx.plan.expect]

    return judge


def _title(exp: ExpectPlan) -> str:
    verb = "reaches" if exp.result == "allow" else "does not reach"
    via = f" via {exp.via}" if exp.via else ""
    return f"#{exp.index} (line {exp.line}): {exp.from_} {verb} {exp.to} ({exp.proto}{via})"


def _judge(exp: ExpectPlan, found: _Resolved | str, ev: Evidence) -> CheckResult:
    subject = f"#{exp.index}"
    title = _title(exp)
    if isinstance(found, str):
        return CheckResult("expect", subject, title, "fail", ("not probed",), found)
    result = ev.probes[f"expect:{exp.index}"]
    route = ev.routes.get((found.source.netns, found.address))
    dev = route.dev if route else None
    line = (
        f"{found.probe.describe()} from {found.source.label}: {result.detail} "
        f"({result.tries} tr{'y' if result.tries == 1 else 'ies'}), {route_text(route)}"
    )
    via_ok = exp.via is None or (
        dev is not None and exp.via in (dev, found.source.networks.get(dev))
    )
    if exp.result == "allow":
        if result.answered and via_ok:
            return CheckResult("expect", subject, title, "pass", (line,))
        if result.answered:
            went = found.source.networks.get(dev or "") or "?"
            cause = f"it got through, but out of {dev} ({went}), not via {exp.via}"
        elif result.outcome == "refused":
            cause = f"{found.address} refused port {found.port}: nothing listens there"
        elif result.outcome == "error":
            cause = f"the probe could not run: {result.detail}"
        elif route is None:
            cause = f"{found.source.label} has no route to {found.address}"
        else:
            net = found.source.networks.get(dev or "")
            cause = (
                f"no answer within {exp.deadline:g} s: {found.source.label} sends it out of {dev}"
                + (f" ({net})" if net else "")
                + " and nothing answered there"
            )
        return CheckResult("expect", subject, title, "fail", (line,), cause)
    if result.satisfies("deny"):
        return CheckResult("expect", subject, title, "pass", (line,))
    if result.outcome == "error":
        cause = f"the probe could not run, so nothing proves the path is closed: {result.detail}"
        return CheckResult("expect", subject, title, "fail", (line,), cause)
    what = "answered" if result.answered else "refused the connection, so traffic reached it"
    cause = f"{found.address} {what}: {found.source.label} reaches it {route_text(route)}"
    return CheckResult("expect", subject, title, "fail", (line,), cause)
