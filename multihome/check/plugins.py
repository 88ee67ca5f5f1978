"""Checks of the plugin and IPAM types a NAD names: a typo of a known plugin (no node has
it), and a plugin the lab does not emulate (a real cluster with it installed may run the
design; ``up`` can't build it, and says so before building anything)."""

from __future__ import annotations

import difflib
from collections.abc import Iterator

from multihome.check.context import Context, NADInfo
from multihome.check.findings import Finding
from multihome.check.registry import check
from multihome.multus import SelectionError, parse_network_selection
from multihome.spec import DEFAULT_NETWORK_ANNOTATION

MULTUS_NAMESPACE = "kube-system"
"""Where Multus looks up a default-network NAD that names no namespace."""

REFERENCE_PLUGINS = frozenset(
    # containernetworking-plugins 1.1.1 as Debian installs it in /usr/lib/cni, which the lab
    # binds as each node's /opt/cni/bin (facts.md)
    {
        *("bandwidth", "bridge", "dhcp", "firewall", "host-device", "host-local", "ipvlan"),
        *("loopback", "macvlan", "portmap", "ptp", "sbr", "static", "tuning", "vlan", "vrf"),
    }
)
LAB_PLUGINS = REFERENCE_PLUGINS | {"whereabouts"}
"""Plugin types a lab node runs for a NAD: the reference plugins and the lab's whereabouts
(issue 11.2). The lab's ``calico`` makes Canal's eth0 only (see NOT_EMULATED)."""
LAB_IPAM = frozenset({"host-local", "static", "dhcp", "whereabouts"})

OTHER_PLUGINS = frozenset(
    # real plugins a cluster may have in /opt/cni/bin that the lab does not run for a NAD:
    # RKE2's own, newer reference plugins, and the usual third-party ones
    {
        *("calico", "calico-ipam", "flannel", "multus", "multus-shim", "canal", "cilium-cni"),
        *("tap", "dummy", "sriov", "ib-sriov", "ovs", "ovn-k8s-cni-overlay", "kube-ovn"),
        *("antrea", "weave-net", "macvtap", "bond", "userspace", "nv-ipam", "spiderpool"),
        *("ipoib", "rdma", "route-override", "aws-cni", "azure-vnet", "infoblox"),
    }
)
KNOWN_TYPES = LAB_PLUGINS | LAB_IPAM | OTHER_PLUGINS

NOT_EMULATED = {
    "calico": "multihome's calico plugin makes Canal's eth0 only: it names the node's end of "
    "the veth after the pod alone (cali + a hash of namespace.pod), so a second calico "
    "interface in a pod would replace eth0's",
    "calico-ipam": "Calico's IPAM needs Calico's datastore, which the lab does not run",
    "flannel": "the lab makes Canal's pod network (eth0, host-gw routes) itself, not with "
    "flannel's CNI plugin, so flannel as a NAD's delegate has no subnet.env to read",
    "multus": "a NAD that delegates to Multus again is not something the lab nests",
    "sriov": "SR-IOV needs virtual functions of a real NIC",
    "ib-sriov": "InfiniBand SR-IOV needs a real InfiniBand NIC",
    "ovs": "Open vSwitch is not in this kernel (facts.md) nor in the lab",
}


def _did_you_mean(kind: str) -> str | None:
    """A known type ``kind`` is a typo of (None: it does not look like one)."""
    near = difflib.get_close_matches(kind.lower(), sorted(KNOWN_TYPES), n=1, cutoff=0.75)
    return near[0] if near and near[0] != kind else None


@check
def nad_plugin_types(ctx: Context) -> Iterator[Finding]:
    for nad in ctx.nads.values():
        if nad.conf is None:
            continue
        for plugin in nad.conf.plugins:
            yield from _judge(ctx, nad, "plugin", plugin.type, LAB_PLUGINS)
        ipam = nad.ipam_type
        if ipam is not None:
            yield from _judge(ctx, nad, "IPAM", ipam, LAB_IPAM)


def _judge(
    ctx: Context, nad: NADInfo, what: str, kind: str, lab: frozenset[str]
) -> Iterator[Finding]:
    if kind in lab:
        return
    typo = _did_you_mean(kind) if kind not in KNOWN_TYPES else None
    if typo is not None:
        args = (
            nad.locate_config(),
            f"NAD {nad.key}: {what} type {kind!r} is no CNI plugin: did you mean {typo!r}? "
            f'(a node fails every pod using it with: failed to find plugin "{kind}" in path '
            "[/opt/cni/bin])",
            f'write "type": "{typo}"',
        )
        if what == "plugin":
            yield ctx.error("nad-plugin-unknown", *args)
        else:
            yield ctx.error("nad-ipam-unknown", *args)
        return
    why = NOT_EMULATED.get(kind, f"there is no {kind!r} in the lab nodes' /opt/cni/bin")
    used = _used_by(ctx, nad)
    message = (
        f"NAD {nad.key} uses the {what} {kind!r}, which multihome does not emulate: {why}. "
        "A real cluster with it installed may run this design; the lab can't"
    )
    if used:
        yield ctx.warning(
            "nad-plugin-not-emulated",
            nad.locate_config(),
            f"{message}, so up builds nothing while {used} use it",
            f"to try the rest in the lab, take {nad.key} out of what uses it (the pods' "
            "k8s.v1.cni.cncf.io/networks, Longhorn's storage network); validate and render "
            "still cover the whole design",
        )
    else:
        yield ctx.warning(
            "nad-plugin-not-emulated-unused",
            nad.locate_config(),
            f"{message}; no pod uses it, so up builds the lab without running it",
            "nothing to do for the lab; check it on the real cluster",
        )


def _used_by(ctx: Context, nad: NADInfo) -> str:
    """Who uses the NAD (``pods a, b``, ``Longhorn``), or "" when nothing does."""
    refs = [p.ref for p in ctx.users_of(nad.key)]
    for pod in ctx.pods:  # as eth0: v1.multus-cni.io/default-network
        value = pod.template.annotations.get(DEFAULT_NETWORK_ANNOTATION)
        try:
            chosen = parse_network_selection(value, MULTUS_NAMESPACE)[:1] if value else []
        except SelectionError:
            continue
        if chosen and chosen[0].qualified_name == nad.key and pod.ref not in refs:
            refs.append(f"{pod.ref} (as eth0)")
    longhorn = ctx.spec.longhorn.storage_network if ctx.spec.longhorn else None
    if longhorn == nad.key:
        refs.append("Longhorn's instance-managers (storage network)")
    if not refs:
        return ""
    return ", ".join(refs[:3]) + (f" and {len(refs) - 3} more" if len(refs) > 3 else "")
