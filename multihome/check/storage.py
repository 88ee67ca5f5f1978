"""Checks of Longhorn's storage network."""

from __future__ import annotations

from collections.abc import Iterator

from multihome.check.context import Context
from multihome.check.findings import Finding, nodes_phrase
from multihome.check.nads import NODE_WIDE_IPAM, nad_network
from multihome.check.registry import check

UNIQUE_IPAM = frozenset({"dhcp", "whereabouts"})


@check
def longhorn_storage_network(ctx: Context) -> Iterator[Finding]:
    longhorn = ctx.spec.longhorn
    settings = [m for m in ctx.lf.of_kind("Setting") if m.name == "storage-network"]
    value = longhorn.storage_network if longhorn else None
    where = ctx.at("spec", "longhorn", "storageNetwork")
    for setting in settings:
        setting_value = setting.body.get("value")
        if value is None:
            value, where = setting_value, setting.locate("value")
        elif setting_value != value:
            yield ctx.error(
                "longhorn-setting-mismatch",
                setting.locate("value"),
                f"Longhorn Setting storage-network is {setting_value!r} but spec.longhorn "
                f"says {value!r}",
                "make them the same NAD",
            )
    if not value:
        return
    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name or "/" in name:
        yield ctx.error(
            "longhorn-network-format",
            where,
            f"Longhorn's storage network {value!r} must be written namespace/name",
            "write e.g. multus-network-attachments/macvlan-longhorn-dhcp",
        )
        return
    nad = ctx.nads.get(value)
    if nad is None:
        yield ctx.error(
            "longhorn-network-unknown",
            where,
            f"Longhorn's storage network {value} is not a NetworkAttachmentDefinition of the lab",
            "define that NAD, or point the setting at an existing one",
        )
        return
    if nad.master is not None:
        lacking = [n.name for n in ctx.agents if not ctx.has_interface(n, nad.master)]
        if lacking:
            yield ctx.error(
                "longhorn-master-missing",
                where,
                f"Longhorn's storage network {value} rides on {nad.master}, "
                + "missing on "
                + nodes_phrase(lacking, "agent")
                + ": their instance-managers can't start there (multus-cni#871)",
                f"give every agent a NIC named {nad.master}",
            )
    ipam = nad.ipam_type
    if ipam in NODE_WIDE_IPAM or ipam == "static":
        yield ctx.error(
            "longhorn-ipam-not-unique",
            where,
            f"Longhorn's storage network {value} uses {ipam} IPAM: instance-managers on different "
            "agents would get the same address (or need per-pod ips Longhorn can't set)",
            "use dhcp or whereabouts IPAM for the storage network",
        )
    mgmt = ctx.management_network
    on_mgmt = [n.name for n in ctx.agents if mgmt and nad_network(ctx, nad, n) == mgmt]
    if on_mgmt:
        yield ctx.warning(
            "longhorn-on-management-network",
            where,
            f"Longhorn's storage network {value} lands on the management network {mgmt} on "
            + ", ".join(on_mgmt)
            + ": replication traffic shares the node <-> node VLAN",
            "point the NAD's master at the storage VLAN's NIC",
        )
