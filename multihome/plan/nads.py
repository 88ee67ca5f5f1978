"""NetworkAttachmentDefinitions resolved: the CNI type, IPAM and the node interface each rides
on, and which lab network an attachment lands on for a given node (a ``vlan`` plugin's: the
network of its ``vlanId``, whose tag its frames carry over the master)."""

from __future__ import annotations

from typing import Any

from multihome.plan.model import NADPlan, NetworkPlan, NICPlan
from multihome.spec import ConfigJSONError, LabFile, parse_cni_json

_MASTER_KEYS = {"macvlan": "master", "ipvlan": "master", "vlan": "master", "host-device": "device"}


def _plugins(config: str) -> list[dict[str, Any]]:
    """The plugin dicts of a conf or conflist ([] when it is not JSON of that shape)."""
    try:
        raw = parse_cni_json(config)  # as validate reads it
    except ConfigJSONError:
        return []
    plugins = raw.get("plugins") if "plugins" in raw else [raw]
    if not isinstance(plugins, list):
        return []
    return [p for p in plugins if isinstance(p, dict)]


def nad_plan(namespace: str, name: str, config: str) -> NADPlan:
    """One NAD from its ``spec.config``."""
    plugins = _plugins(config)
    main = plugins[0] if plugins else {}
    kind = main.get("type") if isinstance(main.get("type"), str) else None
    ipams = []
    for plugin in plugins:
        ipam = plugin.get("ipam")
        if isinstance(ipam, dict) and isinstance(ipam.get("type"), str):
            ipams.append(ipam["type"])
    master = None
    if kind in _MASTER_KEYS:
        value = main.get(_MASTER_KEYS[kind])
        master = value if isinstance(value, str) and value else None
    bridge = None
    if kind == "bridge":
        value = main.get("bridge", "cni0")
        bridge = value if isinstance(value, str) and value else None
    return NADPlan(
        namespace=namespace,
        name=name,
        config=config,
        cni_type=kind,
        ipam_types=tuple(ipams),
        master=master,
        bridge=bridge,
    )


def nad_plans(lab_file: LabFile) -> tuple[NADPlan, ...]:
    """Every NAD, in lab order (the first of a duplicated namespace/name)."""
    plans: dict[str, NADPlan] = {}
    for manifest in lab_file.nads():
        spec = manifest.body.get("spec")
        config = spec.get("config") if isinstance(spec, dict) else None
        plan = nad_plan(manifest.namespace or "default", manifest.name, config or "")
        plans.setdefault(plan.key, plan)
    return tuple(plans.values())


def vlan_id(nad: NADPlan) -> int | None:
    """A ``vlan`` plugin NAD's ``vlanId`` (None: another plugin, or no valid id). Keys match
    as Go's encoding/json matches them, without regard to case, the last one winning."""
    if nad.cni_type != "vlan":
        return None
    plugins = _plugins(nad.config)
    found = None
    for key, value in (plugins[0] if plugins else {}).items():
        if key.lower() == "vlanid":
            found = value
    return found if isinstance(found, int) and not isinstance(found, bool) else None


def lab_network_on(
    nad: NADPlan, nics: tuple[NICPlan, ...], networks: tuple[NetworkPlan, ...] = ()
) -> str | None:
    """The lab network the NAD's interfaces land on for a node with these NICs: the master's
    (or the bridge's NIC's) network; for a ``vlan`` plugin NAD whose master the node has, the
    network that is VLAN ``vlanId`` (None when the lab has none): the tag decides where its
    frames go, not the master's own network."""
    if nad.master is not None:
        on = next((nic for nic in nics if nad.master in (nic.name, nic.bridge)), None)
        if on is None:
            return None
        vid = vlan_id(nad)
        if vid is None:
            return on.network
        return next((n.name for n in networks if n.vlan == vid), None)
    if nad.bridge is not None:
        return next((nic.network for nic in nics if nic.bridge == nad.bridge), None)
    return None
