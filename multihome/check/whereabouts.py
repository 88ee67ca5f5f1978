"""Checks of whereabouts IPAM configs: ranges whereabouts can't read or silently narrows,
exclusions outside their range, overlapping pools that hand out the same addresses, and
ranges too small for the pods that use them.

The config is read by the lab's whereabouts plugin itself (``lab/plugins/whereabouts.py``, a
stdlib-only module with no lab dependencies): validate says what the plugin will do.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from dataclasses import dataclass

from multihome.check.context import Context, NADInfo, PodInfo
from multihome.check.findings import Finding
from multihome.check.nads import nad_network
from multihome.check.registry import check
from multihome.lab.plugins import whereabouts as wb
from multihome.plan import PlanError
from multihome.plan.longhorn import longhorn_plan

# what the whereabouts DaemonSet's flat file gives every node (the lab writes the same)
_FLAT = {"kubernetes": {"kubeconfig": "/etc/cni/net.d/whereabouts.d/whereabouts.kubeconfig"}}
_ARGS = "IgnoreUnknown=true;K8S_POD_NAMESPACE=validate;K8S_POD_NAME=validate"


@dataclass
class _Loaded:
    nad: NADInfo
    cfg: wb.Config


def _ipam(nad: NADInfo) -> dict[str, object]:
    ipam = nad.main.get("ipam")
    return ipam if isinstance(ipam, dict) else {}


def _load(ctx: Context) -> Iterator[Finding | _Loaded]:
    for nad in ctx.nads.values():
        if nad.ipam_type != "whereabouts" or nad.conf is None:
            continue
        conf = dict(nad.main, name=nad.conf.name, cniVersion=nad.conf.cni_version)
        try:
            cfg = wb.load_config(conf, _ARGS, _FLAT)
            for rng in cfg.ranges:
                wb.excluded_nets(rng.exclude)
                rng.bounds()
            if cfg.node_slice_size:
                wb.node_slices(cfg.ranges[0].cidr, cfg.node_slice_size)
        except wb.PluginError as exc:
            yield ctx.error(
                "whereabouts-config-invalid",
                nad.locate_config(),
                f"NAD {nad.key}: whereabouts fails every attachment: {exc.msg}",
                'write "range" as a CIDR ("192.168.2.0/24") or "first-last/len" '
                '("192.168.2.10-192.168.2.50/24"), exclude as CIDRs or IPs, IPs as dotted quads',
            )
            continue
        if not cfg.ranges:
            yield ctx.error(
                "whereabouts-config-invalid",
                nad.locate_config(),
                f"NAD {nad.key}: whereabouts IPAM has no range: the attachment gets no address",
                'add "range": "<CIDR>" (or "ipRanges": [{"range": ...}])',
            )
            continue
        yield _Loaded(nad, cfg)


def _loaded(ctx: Context) -> list[_Loaded]:
    return [item for item in _load(ctx) if isinstance(item, _Loaded)]


@check
def whereabouts_configs(ctx: Context) -> Iterator[Finding]:
    for item in _load(ctx):
        if isinstance(item, Finding):
            yield item
            continue
        nad, cfg = item.nad, item.cfg
        ipam = _ipam(nad)
        for key in ("range_start", "range_end"):
            value = ipam.get(key)
            if isinstance(value, str) and value and wb.parse_ip(value) is None:
                yield ctx.warning(
                    "whereabouts-range-ignored",
                    nad.locate_config(),
                    f"NAD {nad.key}: {key} {value!r} is not an IP address: whereabouts drops it "
                    "silently and uses the whole range",
                    f"write {key} as an IP inside the range",
                )
        if cfg.node_slice_size and len(cfg.ranges) > 1:
            yield ctx.warning(
                "whereabouts-range-ignored",
                nad.locate_config(),
                f"NAD {nad.key}: node_slice_size slices the first range only "
                f"({cfg.ranges[0].cidr}): every other range allocates from that node's slice "
                "too, so the pod gets the same address again instead of one from "
                f"{', '.join(str(r.cidr) for r in cfg.ranges[1:])}",
                "use one range with node_slice_size (or drop node_slice_size)",
            )
        for rng in cfg.ranges:
            first, last = rng.bounds()
            lo, hi = rng.cidr.network_address + 1, rng.cidr.broadcast_address - 1
            for key, ip in (("range_start", rng.start), ("range_end", rng.end)):
                if ip is None or (ip == rng.cidr.network_address and key == "range_start"):
                    continue
                if (
                    ip.version != rng.cidr.version
                    or not int(lo) <= int(ip) <= int(hi)
                    or (key == "range_end" and int(ip) < int(first))
                ):
                    yield ctx.warning(
                        "whereabouts-range-ignored",
                        nad.locate_config(),
                        f"NAD {nad.key}: {key} {ip} is outside {rng.cidr}'s usable addresses "
                        f"(or before the start): whereabouts ignores it and allocates "
                        f"{first}-{last}",
                        f"put {key} inside {rng.cidr}",
                    )
            for text, net in zip(rng.exclude, wb.excluded_nets(rng.exclude), strict=True):
                inside = net.version == first.version and not (
                    int(net.broadcast_address) < int(first) or int(net.network_address) > int(last)
                )
                if not inside:
                    yield ctx.warning(
                        "whereabouts-exclude-outside",
                        nad.locate_config(),
                        f"NAD {nad.key}: exclude {text!r} is outside the range {first}-{last}: "
                        "it excludes nothing",
                        f"exclude addresses inside {rng.cidr} (or drop the entry)",
                    )


# -- addresses already taken -------------------------------------------------------------------


def _taken(ctx: Context, nad: NADInfo, cfg: wb.Config) -> list[tuple[str, str]]:
    """(address, whose) on the VLANs this NAD lands on: the NAD's gateway, the network's
    gateway and DHCP server side, the nodes' and hosts' static addresses."""
    found = [(str(cfg.gateway), "the NAD's own gateway")] if cfg.gateway else []
    for name in sorted(n for n in _networks(ctx, nad) if n is not None):
        net = ctx.networks.get(name)
        if net is None:
            continue
        if net.gateway is not None:
            found.append((str(net.gateway), f"network {name}'s gateway"))
        for kind, machines in (("node", ctx.spec.nodes), ("host", ctx.spec.hosts)):
            for machine in machines:
                for nic in machine.nics:
                    if nic.network == name and nic.address is not None:
                        found.append((str(nic.address), f"{kind} {machine.name} ({nic.name})"))
    return found


@check
def whereabouts_taken(ctx: Context) -> Iterator[Finding]:
    for item in _loaded(ctx):
        nad, cfg = item.nad, item.cfg
        if cfg.node_slice_size:
            continue
        for rng in cfg.ranges:
            first, last = rng.bounds()
            excluded = wb.excluded_nets(rng.exclude)
            for text, whose in _taken(ctx, nad, cfg):
                ip = ipaddress.ip_address(text)
                if ip.version != first.version or not int(first) <= int(ip) <= int(last):
                    continue
                if any(ip in x for x in excluded if x.version == ip.version):
                    continue
                yield ctx.warning(
                    "whereabouts-range-taken",
                    nad.locate_config(),
                    f"NAD {nad.key}: {ip} ({whose}) lies in the whereabouts range "
                    f"{first}-{last} and is not excluded: whereabouts hands it to a pod, which "
                    "then clashes with it",
                    f'add "{ip}/{ip.max_prefixlen}" to exclude, or start the range after it',
                )


# -- overlapping pools -------------------------------------------------------------------------


def _span(cfg: wb.Config, rng: wb.IPRange) -> tuple[int, int]:
    first, last = rng.bounds()
    return int(first), int(last)


def _networks(ctx: Context, nad: NADInfo) -> set[str | None]:
    return {nad_network(ctx, nad, node) for node in ctx.nodes_running(nad.key)}


@check
def whereabouts_overlaps(ctx: Context) -> Iterator[Finding]:
    loaded = _loaded(ctx)
    for i, a in enumerate(loaded):
        for b in loaded[i + 1 :]:
            if a.cfg.node_slice_size or b.cfg.node_slice_size:
                continue
            protected = (
                a.cfg.overlapping and b.cfg.overlapping and a.cfg.network_name == b.cfg.network_name
            )
            if protected:
                continue
            nets_a, nets_b = _networks(ctx, a.nad), _networks(ctx, b.nad)
            known = None not in nets_a and None not in nets_b
            if known and not nets_a & nets_b:
                continue  # different segments: the same address twice does no harm
            for ra in a.cfg.ranges:
                for rb in b.cfg.ranges:
                    if ra.cidr.version != rb.cidr.version:
                        continue
                    if wb.pool_name(str(ra.cidr), a.cfg.network_name) == wb.pool_name(
                        str(rb.cidr), b.cfg.network_name
                    ):
                        continue  # one pool: whereabouts never hands out an address twice
                    (a0, a1), (b0, b1) = _span(a.cfg, ra), _span(b.cfg, rb)
                    lo, hi = max(a0, b0), min(a1, b1)
                    if lo > hi:
                        continue
                    span = f"{ipaddress.ip_address(lo)}-{ipaddress.ip_address(hi)}"
                    why = (
                        "their network_name differs"
                        if a.cfg.network_name != b.cfg.network_name
                        else "enable_overlapping_ranges is false"
                    )
                    yield ctx.warning(
                        "whereabouts-range-overlap",
                        b.nad.locate_config(),
                        f"NADs {a.nad.key} ({ra.cidr}) and {b.nad.key} ({rb.cidr}) are separate "
                        f"whereabouts pools that overlap on {span}, and {why}: both hand out "
                        "those addresses, so pods on the same VLAN get the same IP",
                        "give them the same range (one pool), ranges that do not overlap, or "
                        "leave enable_overlapping_ranges on (the default) with one network_name",
                    )


# -- ranges too small ------------------------------------------------------------------------


def _instances(pod: PodInfo) -> int:
    """How many pods this Pod/workload makes (a DaemonSet: one per node it may run on)."""
    manifest = pod.template.manifest
    if manifest.kind == "DaemonSet":
        return len(pod.eligible)
    if manifest.kind == "Pod":
        return 1
    spec = manifest.body.get("spec") if isinstance(manifest.body, dict) else None
    replicas = spec.get("replicas") if isinstance(spec, dict) else None
    return replicas if isinstance(replicas, int) and replicas >= 0 else 1


def _attachments(ctx: Context, key: str) -> int:
    """The attachments to NAD ``key``: its pods' (times their replicas), and Longhorn's
    instance-managers' when it is the storage network."""
    count = sum(
        _instances(pod) * sum(1 for s in pod.selections if f"{s.namespace}/{s.name}" == key)
        for pod in ctx.users_of(key)
    )
    try:
        longhorn = longhorn_plan(ctx.lf)
    except PlanError:
        return count  # the storage checks report it
    if longhorn is not None and longhorn.storage_network == key:
        count += len(ctx.workload_nodes) * len(longhorn.instance_manager_types)
    return count


def _capacity(item: _Loaded, rng: wb.IPRange, want: int) -> set[int]:
    """Up to ``want`` addresses the NAD may hand out from ``rng``."""
    first, last = rng.bounds()
    found: set[int] = set()
    for ip in wb.free_addresses(rng.cidr, first, last, set(), wb.excluded_nets(rng.exclude)):
        found.add(int(ip))
        if len(found) >= want:
            break
    return found


@check
def whereabouts_sizes(ctx: Context) -> Iterator[Finding]:
    pools: dict[str, list[tuple[_Loaded, wb.IPRange]]] = {}
    for item in _loaded(ctx):
        if item.cfg.node_slice_size:
            continue
        for rng in item.cfg.ranges:
            name = wb.pool_name(str(rng.cidr), item.cfg.network_name)
            pools.setdefault(name, []).append((item, rng))
    for users in pools.values():
        want = sum(_attachments(ctx, item.nad.key) for item, _ in users)
        if want == 0:
            continue
        have: set[int] = set()
        for item, rng in users:
            have |= _capacity(item, rng, want)
        if len(have) >= want:
            continue
        item, rng = users[-1]
        keys = ", ".join(sorted({i.nad.key for i, _ in users}))
        yield ctx.warning(
            "whereabouts-range-too-small",
            item.nad.locate_config(),
            f"whereabouts pool {rng.cidr} (NAD {keys}) has {len(have)} address(es) for {want} "
            f'attachment(s): the last pods fail with "Could not allocate IP in range"',
            "widen the range (range_start/range_end, the prefix) or exclude less",
        )
    for item in _loaded(ctx):
        size = item.cfg.node_slice_size
        if not size:
            continue
        slices = wb.node_slices(item.cfg.ranges[0].cidr, size)
        nodes = ctx.spec.nodes
        if len(slices) < len(nodes):
            yield ctx.warning(
                "whereabouts-range-too-small",
                item.nad.locate_config(),
                f"NAD {item.nad.key}: node_slice_size {size} cuts {item.cfg.ranges[0].cidr} "
                f"into {len(slices)} slice(s) for {len(nodes)} nodes: pods on the nodes left "
                'without a slice fail ("no allocated node slice for node")',
                "use a smaller node_slice_size (a longer prefix) or a wider range",
            )
