"""Each pod's default route is where the design says: via eth0, or via the interface whose
selection sets ``default-route``. A second default route is named with its source (a DHCP
server offering a router, a NAD routing 0.0.0.0/0)."""

from __future__ import annotations

from multihome.plan import PodPlan

from ..collect import Evidence, NetnsFacts, Route, Work
from ..report import CheckResult
from ..view import PodView
from .base import NOT_MEASURED, Context, Judge, nad_default_routes, short


def derive(ctx: Context, work: Work) -> Judge:
    for _, view in ctx.running():
        work.facts.add(view.netns)

    def judge(ev: Evidence) -> list[CheckResult]:
        return [_judge(ctx, pod, view, ev.facts.get(view.netns)) for pod, view in ctx.running()]

    return judge


def _route(route: Route) -> str:
    return f"default via {route.via} dev {route.dev}" if route.via else f"default dev {route.dev}"


def _source(ctx: Context, pod: PodPlan, dev: str | None) -> str:
    """Who put a default route on ``dev``, in a user's words."""
    iface = next((i for i in pod.interfaces if i.name == dev), None)
    if iface is None:
        return f"{dev} is not an interface of the design"
    net = ctx.network(iface.lab_network)
    nad = ctx.plan.nad(iface.network)
    if "dhcp" in iface.ipam_types and net is not None and net.dhcp and net.dhcp.router:
        return (
            f"the DHCP server on {net.name} offers a router ({net.dhcp.router}, "
            f"dhcp.router: true) and the CNI dhcp IPAM of {iface.network} installs it on "
            f"{dev} (multus-cni#786): set router: false on {net.name}'s DHCP server, or set "
            "default-route in the annotation on the one interface that should have it"
        )
    if nad_default_routes(nad):
        return (
            f"NAD {iface.network} routes 0.0.0.0/0 itself (ipam routes or isDefaultGateway): "
            "drop that route from its config"
        )
    return f"NAD {iface.network} ({nad.cni_type if nad else '?'}) installed it on {dev}"


def _judge(ctx: Context, pod: PodPlan, view: PodView, facts: NetnsFacts | None) -> CheckResult:
    chosen = next((i for i in pod.interfaces if i.default_route is not None), None)
    want = chosen.name if chosen else next((i.name for i in pod.interfaces if i.cluster), "eth0")
    gateway = chosen.default_route[0] if chosen and chosen.default_route else None
    how = f"via {want} (default-route in the annotation)" if chosen else f"via {want} only"
    title = f"{short(pod.ref)}'s default route is {how}"
    if facts is None or facts.error:
        why = facts.error if facts else "not read"
        return CheckResult("default-route", pod.ref, title, "fail", (f"cannot read: {why}",))
    if facts.origin != "kernel":
        why = f"{NOT_MEASURED}the pod's routes are read by exec into it: drop --no-exec"
        return CheckResult("default-route", pod.ref, title, "fail", (why,))
    defaults = facts.defaults
    shown = tuple(_route(r) for r in defaults) or ("no default route",)
    right = [r for r in defaults if r.dev == want and (gateway is None or r.via == gateway)]
    if len(defaults) == 1 and right:
        return CheckResult("default-route", pod.ref, title, "pass", shown)
    causes = []
    if not right:
        if chosen is not None:
            causes.append(
                f"the annotation sets default-route on {want}"
                + (f" via {gateway}" if gateway else "")
                + ", but the pod has no such default route: Multus did not move it"
            )
        else:
            causes.append(f"{want} has no default route: the cluster network gave none")
    for route in defaults:
        if route in right[:1]:
            continue
        what = "a second default route" if right else "a default route"
        causes.append(f"{what} on {route.dev}: {_source(ctx, pod, route.dev)}")
    return CheckResult("default-route", pod.ref, title, "fail", shown, "; ".join(causes))
