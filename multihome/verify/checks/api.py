"""What a cluster's API says of the design, read-only: each node is there and Ready with
the design's node-ip as its InternalIP; Canal runs on the management network (the address
flannel and Calico wrote on the node); each NAD is there with the design's config; Multus
and its CNI dhcp daemon run on the nodes that need them; Longhorn's ``storage-network``
Setting is the design's and applied, and its running replicas serve on the storage network
(their ``status.storageIP``, which Longhorn takes from the instance-manager's lhnet1).

The evidence is ``Evidence.cluster`` (the objects, ``cluster.read``): only ``verify
--kubeconfig`` reads the API, so against the lab's own collector this family says nothing.
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from multihome.plan import NADPlan, NodePlan

from ..collect import Evidence, Work
from ..report import CheckResult
from .base import Context, Judge

FLANNEL_IP = "flannel.alpha.coreos.com/public-ip"
CALICO_IP = "projectcalico.org/IPv4Address"
STORAGE_NETWORK = "storage-network"
KUBE_SYSTEM = "kube-system"


def derive(ctx: Context, work: Work) -> Judge:
    def judge(ev: Evidence) -> list[CheckResult]:
        objects = ev.cluster
        if objects is None:
            return []
        nodes = {n["metadata"]["name"]: n for n in objects.nodes}
        results = [_node(ctx, plan, nodes.get(plan.name)) for plan in ctx.plan.nodes]
        results += [
            _canal(ctx, plan, nodes[plan.name]) for plan in ctx.plan.nodes if plan.name in nodes
        ]
        results += [_nad(nad, objects.nads, objects.missing.get("nads")) for nad in ctx.plan.nads]
        results += _daemons(ctx, objects.daemonsets, objects.pods)
        if ctx.plan.longhorn is not None:
            results.append(_longhorn(ctx, objects.settings, objects.missing.get("settings")))
            results.append(_replicas(ctx, objects.replicas, objects.missing.get("replicas")))
        return results

    return judge


# -- nodes -----------------------------------------------------------------------------------


def _internal_ip(node: dict[str, Any]) -> str | None:
    for address in (node.get("status") or {}).get("addresses") or ():
        if address.get("type") == "InternalIP":
            return str(address.get("address"))
    return None


def _ready(obj: dict[str, Any]) -> bool:
    conditions = (obj.get("status") or {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _node(ctx: Context, plan: NodePlan, node: dict[str, Any] | None) -> CheckResult:
    title = f"{plan.name} is in the cluster, Ready, with node-ip {plan.node_ip} (InternalIP)"
    if node is None:
        return CheckResult(
            "node-address",
            plan.name,
            title,
            "fail",
            ("not in the cluster",),
            f"no node {plan.name}: join it (RKE2 config.yaml server/token), or "
            "fix its name in the lab file",
        )
    found = _internal_ip(node)
    ready = _ready(node)
    line = f"InternalIP {found or 'none'}, {'Ready' if ready else 'not Ready'}"
    if found != str(plan.node_ip):
        net = _network_of(ctx, found)
        return CheckResult(
            "node-address",
            plan.name,
            title,
            "fail",
            (line,),
            f"the kubelet registered {found or 'no address'}"
            + (f" (on {net})" if net else "")
            + f", not {plan.node_ip} on "
            f"{ctx.management}: set node-ip: {plan.node_ip} in {plan.name}'s "
            "/etc/rancher/rke2/config.yaml",
        )
    if not ready:
        return CheckResult(
            "node-address",
            plan.name,
            title,
            "fail",
            (line,),
            f"{plan.name} is not Ready: its kubelet or CNI is not running",
        )
    return CheckResult("node-address", plan.name, title, "pass", (line,))


def _network_of(ctx: Context, address: str | None) -> str | None:
    if not address:
        return None
    try:
        ip = ipaddress.ip_interface(address).ip
    except ValueError:
        return None
    return next((n.name for n in ctx.plan.networks if ip in n.subnet), None)


def _canal(ctx: Context, plan: NodePlan, node: dict[str, Any]) -> CheckResult:
    mgmt = ctx.management
    title = f"Canal on {plan.name} uses its NIC on {mgmt} (flannel's public-ip, Calico's address)"
    notes = (node.get("metadata") or {}).get("annotations") or {}
    flannel, calico = notes.get(FLANNEL_IP), notes.get(CALICO_IP)
    line = f"{FLANNEL_IP}={flannel or '(none)'}, {CALICO_IP}={calico or '(none)'}"
    iface = ctx.plan.cluster.canal_iface or plan.management_nic
    pin = (
        f"pin Canal to {plan.management_nic}, {plan.name}'s NIC on {mgmt}, in both "
        "calico.ipAutoDetectionMethod and flannel.iface (rke2-canal HelmChartConfig)"
    )
    if not flannel or not calico:
        where = ctx.nic_network(plan.name, iface)
        has = f"on {where}" if where else f"which {plan.name} does not have"
        return CheckResult(
            "canal-nic",
            plan.name,
            title,
            "fail",
            (line,),
            f"flannel or Calico has not written its address on {plan.name}: "
            f"it found no IPv4 address on the NIC it is pinned to ({iface}, "
            f"{has}) and does not run there: {pin}",
        )
    wrong = [
        f"{what} {value} is on {_network_of(ctx, value) or 'no network of the design'}"
        for what, value in (("flannel", flannel), ("Calico", calico))
        if _network_of(ctx, value) != mgmt
    ]
    if wrong:
        return CheckResult(
            "canal-nic",
            plan.name,
            title,
            "fail",
            (line,),
            f"{'; '.join(wrong)}, not {mgmt}: pod traffic between nodes "
            f"leaves by that NIC (rancher/rke2#1353): {pin}",
        )
    return CheckResult("canal-nic", plan.name, title, "pass", (line,))


# -- NADs ------------------------------------------------------------------------------------


def _nad(nad: NADPlan, found: list[dict[str, Any]] | None, why: str | None) -> CheckResult:
    title = f"NAD {nad.key} is in the cluster with the design's config"
    if found is None:
        return CheckResult(
            "nad",
            nad.key,
            title,
            "fail",
            (why or "not served",),
            "Multus's CRD (k8s.cni.cncf.io NetworkAttachmentDefinition) is not "
            "installed: is rke2-multus enabled (cni: [multus, canal])?",
        )
    obj = next(
        (
            o
            for o in found
            if (o["metadata"].get("namespace"), o["metadata"]["name"]) == (nad.namespace, nad.name)
        ),
        None,
    )
    if obj is None:
        return CheckResult(
            "nad",
            nad.key,
            title,
            "fail",
            ("not in the cluster",),
            f"apply it (multihome render writes it): pods that name {nad.key} "
            "stay ContainerCreating",
        )
    config = str((obj.get("spec") or {}).get("config") or "")
    try:
        theirs, ours = json.loads(config), json.loads(nad.config)
    except json.JSONDecodeError as exc:
        return CheckResult(
            "nad",
            nad.key,
            title,
            "fail",
            (f"its config is not JSON: {exc}",),
            "Multus can't read it: apply the design's",
        )
    if theirs == ours:
        kind = ours.get("type") if isinstance(ours, dict) else None
        return CheckResult("nad", nad.key, title, "pass", (f"config equal ({kind or 'conflist'})",))
    diffs = _diff(ours, theirs)
    return CheckResult(
        "nad",
        nad.key,
        title,
        "fail",
        tuple(diffs[:8]),
        "the cluster's NAD differs from the design: apply the design's, then "
        "recreate the pods that use it (Multus reads a NAD when a pod starts)",
    )


def _diff(ours: Any, theirs: Any, path: str = "") -> list[str]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found = []
        for key in sorted(set(ours) | set(theirs), key=str):
            found += _diff(ours.get(key), theirs.get(key), f"{path}.{key}" if path else key)
        return found
    if ours != theirs:
        return [f"{path or 'config'}: design {json.dumps(ours)}, cluster {json.dumps(theirs)}"]
    return []


# -- Multus and the dhcp daemon ---------------------------------------------------------------


def _runs(ds: dict[str, Any]) -> str:
    """What a DaemonSet's pods run (images, commands, args), for telling them apart."""
    spec = ((ds.get("spec") or {}).get("template") or {}).get("spec") or {}
    words = []
    for c in spec.get("containers") or ():
        words += [
            str(c.get("image", "")),
            *map(str, c.get("command") or ()),
            *map(str, c.get("args") or ()),
        ]
    return " ".join(words).lower()


def _owned(pods: list[dict[str, Any]], ds: dict[str, Any]) -> list[dict[str, Any]]:
    """The DaemonSet's pods, by their ownerReferences (not by label)."""
    uid = ds["metadata"].get("uid")
    return [
        p
        for p in pods
        if any(
            o.get("kind") == "DaemonSet" and o.get("uid") == uid
            for o in p["metadata"].get("ownerReferences") or ()
        )
    ]


def _daemons(
    ctx: Context, daemonsets: list[dict[str, Any]], pods: list[dict[str, Any]]
) -> list[CheckResult]:
    system = [d for d in daemonsets if d["metadata"].get("namespace") == KUBE_SYSTEM]
    dhcp_ds = [d for d in system if "dhcp" in _runs(d) and "daemon" in _runs(d)]
    multus_ds = [d for d in system if "multus" in _runs(d) and d not in dhcp_ds]
    attached = {
        p.node for p in ctx.plan.pods if p.node and any(not i.cluster for i in p.interfaces)
    }
    dhcp = {
        p.node
        for p in ctx.plan.pods
        if p.node and any("dhcp" in i.ipam_types for i in p.interfaces)
    }
    order = [n.name for n in ctx.plan.nodes]
    results = []
    for node in (n for n in order if n in attached):
        results.append(
            _daemon(
                node,
                "multus",
                "Multus (rke2-multus) runs",
                multus_ds,
                pods,
                bool(system),
                "pods there get only eth0 (Multus reads the networks annotation, makes the rest)",
            )
        )
    for node in (n for n in order if n in dhcp):
        results.append(
            _daemon(
                node,
                "dhcp-daemon",
                "the CNI dhcp daemon runs",
                dhcp_ds,
                pods,
                bool(system),
                "pods there with dhcp IPAM fail with 'dial unix "
                "/run/cni/dhcp.sock' and stay ContainerCreating: set "
                "rke2-multus' manifests.dhcpDaemonSet: true (chart "
                "v4.0.2-build2023081104 or later, RKE2 v1.26.13+)",
            )
        )
    return results


def _daemon(
    node: str,
    check: str,
    what: str,
    sets: list[dict[str, Any]],
    pods: list[dict[str, Any]],
    any_system: bool,
    harm: str,
) -> CheckResult:
    title = f"{what} on {node}, Ready"
    if not any_system:
        return CheckResult(
            check,
            node,
            title,
            "skip",
            cause=f"the API lists no DaemonSet in {KUBE_SYSTEM} (the credentials need "
            "get/list of daemonsets and pods there)",
        )
    if not sets:
        return CheckResult(
            check, node, title, "fail", (f"no DaemonSet in {KUBE_SYSTEM} runs it",), harm
        )
    mine = [
        p for d in sets for p in _owned(pods, d) if (p.get("spec") or {}).get("nodeName") == node
    ]
    names = ", ".join(d["metadata"]["name"] for d in sets)
    if not mine:
        return CheckResult(
            check,
            node,
            title,
            "fail",
            (f"no pod of {names} on {node}",),
            f"{names} does not run on {node} (its nodeSelector/tolerations?): " + harm,
        )
    ready = [p for p in mine if _ready(p)]
    line = ", ".join(
        f"{p['metadata']['name']} {(p.get('status') or {}).get('phase')}"
        + (" Ready" if _ready(p) else " not Ready")
        for p in mine
    )
    if not ready:
        return CheckResult(check, node, title, "fail", (line,), f"not Ready on {node}: " + harm)
    return CheckResult(check, node, title, "pass", (line,))


# -- Longhorn --------------------------------------------------------------------------------


def _longhorn(ctx: Context, settings: list[dict[str, Any]] | None, why: str | None) -> CheckResult:
    assert ctx.plan.longhorn is not None
    want = ctx.plan.longhorn.storage_network
    title = f"Longhorn's storage-network Setting is {want}, applied"
    if settings is None:
        return CheckResult(
            "longhorn-setting",
            want,
            title,
            "fail",
            (why or "not served",),
            "Longhorn is not installed (no settings.longhorn.io)",
        )
    found = next((s for s in settings if s["metadata"]["name"] == STORAGE_NETWORK), None)
    if found is None:
        return CheckResult(
            "longhorn-setting",
            want,
            title,
            "fail",
            ("no storage-network Setting",),
            f"set Longhorn's defaultSettings.storageNetwork: {want}",
        )
    value = str(found.get("value") or "")
    status = found.get("status")
    applied = status.get("applied") if isinstance(status, dict) else None
    said = {True: "applied", False: "not applied", None: "applied or not: not reported"}[applied]
    line = f"value {value or '(empty: the cluster network)'}, {said}"
    if value != want:
        return CheckResult(
            "longhorn-setting",
            want,
            title,
            "fail",
            (line,),
            f"Longhorn's storage network is {value or 'the cluster network'}, "
            f"not {want}: set it (all volumes detached first)",
        )
    if applied is False:
        return CheckResult(
            "longhorn-setting",
            want,
            title,
            "fail",
            (line,),
            "Longhorn has not applied it: it waits for every volume to be "
            "detached, then restarts the instance-managers with lhnet1",
        )
    return CheckResult("longhorn-setting", want, title, "pass", (line,))


def _storage_subnet(ctx: Context) -> tuple[str, Any] | None:
    """The storage network's name and subnet: where the storage NAD lands."""
    assert ctx.plan.longhorn is not None
    key = ctx.plan.longhorn.storage_network
    for pod in ctx.plan.pods:
        for i in pod.interfaces:
            if i.network == key and i.subnet is not None and i.lab_network is not None:
                return i.lab_network, i.subnet
    return None


SHOWN_REPLICAS = 8


def _replicas(ctx: Context, replicas: list[dict[str, Any]] | None, why: str | None) -> CheckResult:
    assert ctx.plan.longhorn is not None
    key = ctx.plan.longhorn.storage_network
    found = _storage_subnet(ctx)
    where = f"{found[0]} ({found[1]})" if found else key
    title = f"Longhorn's running replicas serve on {where}, the storage network (storageIP)"
    if replicas is None:
        cause = f"{why or 'not served'}: no Longhorn replicas to read"
        return CheckResult("longhorn-replica", key, title, "skip", cause=cause)
    running = [r for r in replicas if (r.get("status") or {}).get("currentState") == "running"]
    if not running:
        return CheckResult(
            "longhorn-replica", key, title, "skip",
            cause=f"no running Longhorn replica ({len(replicas)} replica(s), none running: no "
            "volume attached): attach a volume and verify again",
        )  # fmt: skip
    lines, off = [], []
    for r in sorted(running, key=lambda r: str(r["metadata"]["name"])):
        status, spec = r.get("status") or {}, r.get("spec") or {}
        ip = str(status.get("storageIP") or "")
        inside = found is not None and bool(ip) and _within(ip, found[1])
        if not ip:
            said = "no storageIP"
        elif ip == status.get("ip"):
            said = "its instance-manager's pod IP: the cluster network"
        else:
            said = f"on {_network_of(ctx, ip) or 'no network of the design'}"
        name, node = r["metadata"]["name"], spec.get("nodeID") or "?"
        line = f"{name} on {node}: storageIP {ip or '-'} ({said})"
        lines.append(line)
        if not inside:
            off.append(line)
    shown = lines[:SHOWN_REPLICAS]
    if len(lines) > SHOWN_REPLICAS:
        shown.append(f"... and {len(lines) - SHOWN_REPLICAS} more")
    if off:
        return CheckResult(
            "longhorn-replica", key, title, "fail", tuple(shown),
            f"{len(off)} of {len(running)} running replica(s) serve off {where}: Longhorn "
            "replicates there instead; it moves replicas to the storage network when it "
            "restarts their instance-managers with lhnet1, which it does only once every "
            "volume is detached (see longhorn-setting)",
        )  # fmt: skip
    return CheckResult("longhorn-replica", key, title, "pass", tuple(shown))


def _within(ip: str, subnet: Any) -> bool:
    try:
        return ipaddress.ip_address(ip) in subnet
    except ValueError:
        return False
