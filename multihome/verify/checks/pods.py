"""Each pod's interfaces: the ones its annotation asks for, with the right names, addresses in
the expected subnet (or exactly the requested ``ips``/``mac``); and its network-status (what
Longhorn and other tools read) agreeing with the kernel."""

from __future__ import annotations

import ipaddress

from multihome.plan import InterfacePlan, PodPlan

from ..collect import Evidence, Iface, NetnsFacts, Work
from ..report import CheckResult
from ..view import PodView
from .base import Context, Judge, address_source, attach_cause, short


def derive(ctx: Context, work: Work) -> Judge:
    for _, view in ctx.running():
        work.facts.add(view.netns)
        if view.node in ctx.lab.nodes:  # to tell an interface lost with its master NIC
            work.facts.add(ctx.lab.nodes[view.node].netns)

    def judge(ev: Evidence) -> list[CheckResult]:
        results = []
        for pod, view in ctx.pods():
            results.append(_interfaces(ctx, pod, view, ev))
            if view is not None and view.running:
                results.append(_network_status(pod, view, ev.facts.get(view.netns)))
        return results

    return judge


def _title(pod: PodPlan) -> str:
    names = ", ".join(i.name for i in pod.interfaces)
    return f"{short(pod.ref)} has {names} as its annotation asks"


def _ips(addresses: tuple[str, ...]) -> set[str]:
    return {str(ipaddress.ip_interface(a).ip) for a in addresses}


def _lost(ctx: Context, pod: PodPlan, view: PodView, iface: InterfacePlan, ev: Evidence) -> str:
    """Why a running pod lacks ``iface``: never made, or made and gone since (its master
    NIC removed from the node takes a macvlan/ipvlan child with it)."""
    node = ctx.lab.nodes.get(view.node)
    node_facts = ev.facts.get(node.netns) if node is not None else None
    nad = ctx.plan.nad(iface.network)
    gone = None
    known = node_facts is not None and not node_facts.error
    if nad is not None and nad.master and known and nad.master not in node_facts.ifaces:  # type: ignore[union-attr]
        gone = (
            f"its master {nad.master} is gone from {view.node} (the kernel deletes a "
            f"{nad.cni_type} with its master): see {view.node}'s nics check"
        )
    if any(e.get("interface") == iface.name for e in view.network_status):
        return f"{iface.name} was made (network-status records it) and is gone since: " + (
            gone or "something removed it inside the pod"
        )
    return f"Multus did not make {iface.name}: {gone or attach_cause(ctx, pod, None)}"


def _interfaces(ctx: Context, pod: PodPlan, view: PodView | None, ev: Evidence) -> CheckResult:
    title = _title(pod)
    if view is None and ctx.lab.source == "cluster":
        return CheckResult(
            "interfaces",
            pod.ref,
            title,
            "fail",
            ("not in the cluster",),
            f"no pod {pod.ref} in the cluster (by name, by its workload on "
            f"{pod.node or 'its node'}): apply it (multihome render writes it), or fix its "
            "name or namespace in the lab file",
        )
    if pod.node is not None and view is None:
        return CheckResult(
            "interfaces",
            pod.ref,
            title,
            "fail",
            (f"placed on {pod.node}, but not in the running lab",),
            "up did not record it: bring the lab up again (multihome down, then up)",
        )
    if pod.node is None or view is None:
        return CheckResult(
            "interfaces",
            pod.ref,
            title,
            "fail",
            ("Pending: no node can run it",),
            "no node matches its nodeName/nodeSelector and tolerations (servers are tainted "
            "CriticalAddonsOnly unless serversRunWorkloads): fix its placement",
        )
    if not view.running:
        return CheckResult(
            "interfaces",
            pod.ref,
            title,
            "fail",
            (f"{view.phase} on {view.node}: {view.error or 'no error recorded'}",),
            attach_cause(ctx, pod, view.error),
        )
    facts = ev.facts.get(view.netns) or NetnsFacts(error="not read")
    if facts.error:
        return CheckResult(
            "interfaces", pod.ref, title, "fail", (f"cannot read its namespace: {facts.error}",)
        )
    lines: list[str] = []
    problems: list[str] = []
    causes: list[str] = []
    for iface in pod.interfaces:
        found = facts.ifaces.get(iface.name)
        where = iface.lab_network or ("its pod CIDR" if iface.cluster else "an unknown network")
        if found is None:
            problems.append(f"no {iface.name} (for {iface.network})")
            causes.append(_lost(ctx, pod, view, iface, ev))
            continue
        shown = ", ".join(found.addresses) or "no address"
        lines.append(f"{iface.name} {shown} on {where} ({iface.network})")
        _compare(ctx, pod, iface, found, problems, causes)
    planned = {i.name for i in pod.interfaces}
    for name, found in sorted(facts.ifaces.items()):
        if name != "lo" and name not in planned and (found.up or found.addresses):
            problems.append(f"an interface the design does not have: {name}")
    if problems:
        cause = "; ".join(dict.fromkeys(causes)) or "the pod's interfaces differ from the design"
        return CheckResult("interfaces", pod.ref, title, "fail", (*problems, *lines), cause)
    summary = ", ".join(
        f"{i.name} {', '.join(facts.ifaces[i.name].addresses) or '-'}"
        + (f" on {i.lab_network}" if i.lab_network else "")
        for i in pod.interfaces
    )
    if facts.origin != "kernel":
        summary += f" (as {facts.origin} records them)"
    return CheckResult("interfaces", pod.ref, title, "pass", (summary, *lines))


def _compare(
    ctx: Context,
    pod: PodPlan,
    iface: InterfacePlan,
    found: Iface,
    problems: list[str],
    causes: list[str],
) -> None:
    if not found.up and found.kind != "network-status":
        problems.append(f"{iface.name} is down")
        causes.append(f"{iface.name} was left down after the attachment")
    if not found.addresses and (iface.cluster or iface.ipam_types):
        problems.append(f"{iface.name} has no address")
        causes.append(f"{address_source(ctx, pod, iface)} gave {iface.name} no address")
    ips = _ips(found.addresses)
    for wanted in iface.ips:
        if str(ipaddress.ip_interface(wanted).ip) not in ips:
            problems.append(f"{iface.name} lacks the requested {wanted}")
            causes.append(
                f"the annotation asks for ips {wanted} but NAD {iface.network}'s IPAM does not "
                "take them (only static IPAM does, with the 'ips' capability)"
            )
    if iface.mac and (found.mac or "").lower() != iface.mac.lower():
        problems.append(f"{iface.name} has MAC {found.mac}, not the requested {iface.mac}")
        causes.append(f"NAD {iface.network} does not apply the annotation's mac (tuning plugin)")
    if iface.subnet is None:
        return
    outside = [a for a in found.addresses if ipaddress.ip_interface(a).ip not in iface.subnet]
    if not outside:
        return
    where = iface.lab_network or "its pod CIDR"
    problems.append(f"{iface.name} has {', '.join(outside)}, outside {where}'s {iface.subnet}")
    if iface.cluster:
        causes.append(f"eth0's address is not from {pod.node}'s pod CIDR {iface.subnet}")
        return
    nad = ctx.plan.nad(iface.network)
    master = f" (its master {nad.master} is on {where} on {pod.node})" if nad and nad.master else ""
    causes.append(
        f"{address_source(ctx, pod, iface)} gives an address of another subnet than "
        f"{where}'s {iface.subnet}{master}: nothing on {where} can talk to it; use an "
        f"address in {iface.subnet}, or attach the network whose subnet it is"
    )


def _network_status(pod: PodPlan, view: PodView, facts: NetnsFacts | None) -> CheckResult:
    title = f"{short(pod.ref)}'s network-status agrees with its interfaces"
    if facts is None or facts.error:
        why = facts.error if facts else "not read"
        return CheckResult("network-status", pod.ref, title, "fail", (f"cannot read: {why}",))
    entries = view.network_status
    problems = []
    listed = [str(e.get("interface")) for e in entries]
    planned = [i.name for i in pod.interfaces]
    if listed != planned:
        problems.append(
            f"lists {', '.join(listed) or 'nothing'}; the design has {', '.join(planned)}"
        )
    for entry in entries:
        name = str(entry.get("interface"))
        found = facts.ifaces.get(name)
        if found is None:
            problems.append(f"{name} ({entry.get('name')}): no such interface in the pod")
            continue
        said = {str(ip) for ip in entry.get("ips") or ()}
        kernel = _ips(found.addresses)
        if said != kernel:
            problems.append(
                f"{name}: says {', '.join(sorted(said)) or 'no IP'}, "
                f"the kernel has {', '.join(sorted(kernel)) or 'no IP'}"
            )
        mac = entry.get("mac")
        if mac and found.mac and str(mac).lower() != found.mac.lower():
            problems.append(f"{name}: says MAC {mac}, the kernel has {found.mac}")
    defaults = [str(e.get("interface")) for e in entries if e.get("default")]
    cluster = next((i.name for i in pod.interfaces if i.cluster), "eth0")
    if defaults != [cluster]:
        problems.append(
            f"the entry marked default is {', '.join(defaults) or 'none'}, not {cluster} "
            "(the cluster network)"
        )
    if problems:
        return CheckResult(
            "network-status",
            pod.ref,
            title,
            "fail",
            tuple(problems),
            "what Multus recorded differs from the pod's interfaces: tools that read the "
            "annotation (Longhorn reads its storage IP there) will use wrong addresses",
        )
    summary = ", ".join(
        f"{e.get('interface')}={'/'.join(e.get('ips') or ()) or '-'}" for e in entries
    )
    match = "match the kernel" if facts.origin == "kernel" else "match the design (kernel not read)"
    return CheckResult(
        "network-status",
        pod.ref,
        title,
        "pass",
        (f"{len(entries)} entries {match}: {summary}; default: {cluster}",),
    )
