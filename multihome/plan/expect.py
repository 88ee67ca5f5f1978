"""The lab's ``expect`` entries resolved: what the source and target are (pod, node, host or
an IP), the port, what ``via`` names, and where the entry is written in the lab file.

Addresses of pods are not known here (DHCP gives them when the lab runs): the verifier picks
them from the running lab. Names that match nothing resolve to a kind of None; the design
checks report those (``expect-unknown-*``) and the verifier fails the entry."""

from __future__ import annotations

from collections.abc import Sequence
from ipaddress import ip_address

from multihome.plan.model import (
    EndpointKind,
    ExpectPlan,
    HostPlan,
    NetworkPlan,
    NodePlan,
    PodPlan,
    ScenarioPlan,
    TargetKind,
    ViaKind,
)
from multihome.spec import LabFile
from multihome.spec.models import Expect


def split_endpoint(value: str) -> tuple[str, int | None]:
    """``host``, ``ip``, ``ip:port``, ``[v6]:port`` -> (target, port)."""
    if value.startswith("["):
        host, _, rest = value[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else None
    head, sep, tail = value.rpartition(":")
    if sep and tail.isdigit() and head.count(":") == 0:
        return head, int(tail)
    return value, None


def is_ip(value: str) -> bool:
    try:
        ip_address(value)
    except ValueError:
        return False
    return True


def _kind(ref: str, pods: set[str], nodes: set[str], hosts: set[str]) -> EndpointKind | None:
    if ref in pods:
        return "pod"
    if ref in nodes:
        return "node"
    if ref in hosts:
        return "host"
    return None


def expect_plans(
    lab_file: LabFile,
    networks: tuple[NetworkPlan, ...],
    nodes: tuple[NodePlan, ...],
    hosts: tuple[HostPlan, ...],
    pods: tuple[PodPlan, ...],
    entries: Sequence[Expect] | None = None,
    at: tuple[str | int, ...] = ("spec", "expect"),
) -> tuple[ExpectPlan, ...]:
    """Every ``expect`` entry, in lab order (``entries`` written at ``at`` in the lab file:
    a scenario's; default the lab's own)."""
    pod_refs = {p.ref for p in pods}
    node_names = {n.name for n in nodes}
    host_names = {h.name for h in hosts}
    nets = {n.name for n in networks}
    ifnames = {"eth0"}
    ifnames |= {nic.name for n in nodes for nic in n.nics}
    ifnames |= {nic.name for h in hosts for nic in h.nics}
    ifnames |= {i.name for p in pods for i in p.interfaces}
    found = []
    listed = lab_file.lab.spec.expect if entries is None else entries
    for index, exp in enumerate(listed):
        target, port = split_endpoint(exp.to)
        target_kind: TargetKind | None = (
            "ip" if is_ip(target) else _kind(target, pod_refs, node_names, host_names)
        )
        via_kind: ViaKind | None = None
        if exp.via is not None:
            via_kind = "network" if exp.via in nets else "interface" if exp.via in ifnames else None
        where = lab_file.locate(*at, index)
        found.append(
            ExpectPlan(
                index=index + 1,
                from_=exp.from_,
                source_kind=_kind(exp.from_, pod_refs, node_names, host_names),
                to=exp.to,
                target=target,
                target_kind=target_kind,
                port=port,
                via=exp.via,
                via_kind=via_kind,
                proto=exp.proto,
                result=exp.result,
                deadline=exp.deadline,
                retries=exp.retries,
                line=where.line,
                column=where.column,
            )
        )
    return tuple(found)


def scenario_plans(
    lab_file: LabFile,
    networks: tuple[NetworkPlan, ...],
    nodes: tuple[NodePlan, ...],
    hosts: tuple[HostPlan, ...],
    pods: tuple[PodPlan, ...],
) -> tuple[ScenarioPlan, ...]:
    """The lab's scenarios, their ``expect`` entries resolved as the lab's are."""
    return tuple(
        ScenarioPlan(
            name=sc.name,
            description=sc.description,
            faults=tuple(tuple(f.split()) for f in sc.faults),
            expect=expect_plans(
                lab_file,
                networks,
                nodes,
                hosts,
                pods,
                sc.expect,
                ("spec", "scenarios", index, "expect"),
            ),
            line=lab_file.locate("spec", "scenarios", index).line,
        )
        for index, sc in enumerate(lab_file.lab.spec.scenarios)
    )
