"""The bridge plugin's ``vlanTrunk`` against the plugins this machine runs (the lab's nodes'
/opt/cni/bin): the key came in containernetworking-plugins v1.3.0; older ones, Debian's 1.1.1
among them, drop it unread and make an ordinary port (cni/installed.py).

What such a plugin does, from its source (plugins/main/bridge/bridge.go at v1.1.1): VLAN
filtering is turned on only for ``vlan`` (``vlanFiltering := n.Vlan != 0``) and only when
the plugin creates the bridge; a port gets a VLAN only from ``vlan`` (PVID, untagged). So
with ``vlanTrunk`` alone the pod's port is a plain port: on a bridge without filtering it
passes the pod's frames as they are, tagged with any VLAN or none; on a bridge that filters
(made for a NAD with ``vlan``) it is on the default VLAN 1 only and tagged frames are
dropped. With ``vlan`` too, the port is an access port of ``vlan``; v1.3.0 and later refuse
that config ("cannot set vlan and vlanTrunk at the same time").
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from multihome.check.context import Context, NADInfo
from multihome.check.findings import Finding
from multihome.check.nads import go_field
from multihome.check.registry import check
from multihome.cni.installed import BRIDGE_VLAN_TRUNK

TRUNK_SINCE = "v" + ".".join(str(n) for n in BRIDGE_VLAN_TRUNK)


def _vlan(nad: NADInfo) -> int:
    value: Any = go_field(nad.main, "vlan")
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _trunk(nad: NADInfo) -> Any:
    """The NAD's ``vlanTrunk`` as written (None: not set, or not a bridge NAD)."""
    if nad.conf is None or nad.main_type != "bridge":
        return None
    return go_field(nad.main, "vlanTrunk")


def _what_happens(ctx: Context, nad: NADInfo, vlan: int) -> str:
    bridge = nad.bridge or "cni0"
    if vlan:
        return (
            f"each pod's port is an access port of VLAN {vlan} (untagged), as its vlan says, "
            "and carries none of vlanTrunk's VLANs (plugins from "
            f"{TRUNK_SINCE} on refuse this config: 'cannot set vlan and vlanTrunk at the "
            "same time')"
        )
    filtering = sorted(
        other.key
        for other in ctx.nads.values()
        if other is not nad and other.main_type == "bridge" and other.bridge == bridge
        if _vlan(other)
    )
    if filtering:
        return (
            f"bridge {bridge} filters VLANs where NAD {', '.join(filtering)} (vlan) made it, "
            "and there the pod's port is on the default VLAN 1 only: frames the pod tags are "
            "dropped; where this NAD made it, it has no VLAN filtering and passes them"
        )
    return (
        f"bridge {bridge} is made without VLAN filtering, so the pod's port passes its "
        "frames as they are, tagged with any VLAN or untagged, to every port of the bridge: "
        "the pod reaches its VLANs only by tagging them itself (a vlan sub-interface in the "
        "pod), and nothing keeps it to the VLANs listed"
    )


@check
def bridge_vlan_trunk(ctx: Context) -> Iterator[Finding]:
    for nad in ctx.nads.values():
        if _trunk(nad) is None:
            continue
        plugins = ctx.plugins_release  # asks dpkg: only for a NAD that sets vlanTrunk
        if plugins is None or plugins.at_least(BRIDGE_VLAN_TRUNK):
            return
        vlan = _vlan(nad)
        yield ctx.warning(
            "nad-bridge-vlantrunk-ignored",
            nad.locate_config(),
            f"NAD {nad.key}: this machine's bridge plugin is {plugins.text} "
            f"({plugins.source}), older than vlanTrunk ({TRUNK_SINCE}), and ignores the key "
            f"(Go's JSON decoding drops it): in the lab, {_what_happens(ctx, nad, vlan)}",
            f"the lab can't make a VLAN trunk port with the bridge plugin {plugins.text}: "
            "use the vlan plugin over a trunk NIC (vlans:) for tagged VLANs, or one bridge NAD "
            "with vlan per VLAN; a cluster whose plugins are "
            f"{TRUNK_SINCE} or later applies vlanTrunk as written",
        )
