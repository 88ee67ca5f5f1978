"""whereabouts, the cluster-wide IPAM plugin, as the lab runs it on each node
(``/opt/cni/bin/whereabouts``), with one allocation store for the whole lab.

It follows k8snetworkplumbingwg/whereabouts (cmd/whereabouts.go, pkg/config, pkg/allocate,
pkg/iphelpers, pkg/storage/kubernetes):

- config: ``range`` as a CIDR or ``first-last/len`` (the start must lie in the CIDR; the
  dash form sets ``range_start``/``range_end``, overriding the keys), ``range_start`` and
  ``range_end`` (an unparsable one is silently dropped, as whereabouts does), ``exclude``
  (CIDRs or single IPs), ``ipRanges`` (several ranges, one address from each: dual-stack),
  ``gateway`` (put on every address), ``routes``, ``dns``, ``addresses`` (static, appended),
  ``enable_overlapping_ranges`` (default true), ``network_name``, ``node_slice_size``. IPs are
  read as k8s.io/utils ParseIPSloppy does (IPv4 octets with leading zeros are decimal).
  The flat file ``/etc/cni/net.d/whereabouts.d/whereabouts.conf`` (the DaemonSet installs it)
  fills what the NAD leaves out and must exist, as on a node; a kubeconfig is required.
- allocation (IterateForAssignment): the lowest free address from the range's first usable
  (network + 1, or ``range_start`` when it lies inside) to its last usable (broadcast - 1, or
  ``range_end``), skipping reserved ones and whole excluded subnets; a podRef + ifName that
  already holds an address gets it again. One IPPool per range CIDR (and ``network_name``):
  two NADs with the same CIDR share a pool. With ``enable_overlapping_ranges`` an address is
  also reserved cluster-wide (per ``network_name``) so that overlapping pools never hand out
  the same one; without it, they may.
- ``node_slice_size``: the range is cut into slices of that size, given to the nodes in order
  (the node-slice controller's NodeSlicePool); each node allocates from its own slice, in a
  pool named ``[network_name-]node-slice``; ``exclude`` does not apply there (as upstream).
- DEL frees the address held by containerID + ifName (per range; an unknown one is not an
  error); CHECK is not implemented upstream and fails the same way.

Where the lab differs: no IPPool/OverlappingRangeIPReservation/NodeSlicePool objects and no
leader election: the store is a directory of JSON files (``$WHEREABOUTS_STORE``, set by the
launcher, see lab/ipam.py) shared by every node, one file per pool with the same allocation
map (offset from the range's network address -> id, podref, ifName), changed under one
``flock`` (whereabouts serialises every allocation through one Lease).

Stdlib only, and few imports: it runs once per attachment.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import sys

TYPE_CHECKING = False  # typing, dataclasses and contextlib cost a plugin process ~15 ms
if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping
    from typing import Any

IPAddr = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network

SUPPORTED_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0")
FLAT_FILES = (
    "/etc/kubernetes/cni/net.d/whereabouts.d/whereabouts.conf",
    "/etc/cni/net.d/whereabouts.d/whereabouts.conf",
    "/host/etc/cni/net.d/whereabouts.d/whereabouts.conf",
)
STORE_ENV = "WHEREABOUTS_STORE"
NODE_OBJECT = "/var/lib/cni/multihome/node.json"  # where the lab writes the node's name
DATASTORE_RETRIES = 100

E_INCOMPATIBLE = 1
E_INVALID_ENV = 4
E_DECODE = 6
E_INTERNAL = 999  # skel's code for a plain Go error: every whereabouts failure


class PluginError(Exception):
    def __init__(self, msg: str, code: int = E_INTERNAL, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


# -- addresses as Go reads them ---------------------------------------------------------------


def parse_ip(text: str, *, sloppy: bool = True) -> IPAddr | None:
    """An IP as Go's net.ParseIP (``sloppy``: k8s ParseIPSloppy, IPv4 octets with leading
    zeros read as decimal); None when it is not one."""
    if not isinstance(text, str) or not text or "%" in text:
        return None
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        pass
    parts = text.split(".")
    if sloppy and len(parts) == 4 and all(p.isdigit() and p.isascii() for p in parts):
        octets = [int(p) for p in parts]
        if all(o <= 255 for o in octets):
            return ipaddress.IPv4Address(".".join(map(str, octets)))
    return None


def parse_cidr(text: str, *, sloppy: bool = True) -> tuple[IPAddr, IPNet]:
    """Go's ParseCIDR: (the IP as written, its network); ValueError as Go words it."""
    ip_text, slash, bits = text.partition("/") if isinstance(text, str) else ("", "", "")
    ip = parse_ip(ip_text, sloppy=sloppy)
    if not slash or ip is None or not bits.isdigit() or not bits.isascii() or len(bits) > 3:
        raise ValueError(f"invalid CIDR address: {text}")
    if int(bits) > ip.max_prefixlen:
        raise ValueError(f"invalid CIDR address: {text}")
    return ip, ipaddress.ip_network(f"{ip}/{int(bits)}", strict=False)


def go_list(items: list[str]) -> str:
    return "[" + " ".join(items) + "]"


# -- the config -------------------------------------------------------------------------------


class IPRange:
    """One range: its CIDR (as whereabouts normalises it), bounds and exclusions."""

    def __init__(
        self,
        cidr: IPNet,
        start: IPAddr | None = None,
        end: IPAddr | None = None,
        exclude: list[str] | None = None,
    ) -> None:
        self.cidr, self.start, self.end = cidr, start, end
        self.exclude = list(exclude or [])

    def bounds(self) -> tuple[IPAddr, IPAddr]:
        """GetIPRange: the first and last address allocations use."""
        net = self.cidr
        if net.max_prefixlen - net.prefixlen <= 1:
            raise PluginError(
                f"net mask is too short, subnet {net} has no usable IP addresses, it is too small"
            )
        first, last = net.network_address + 1, net.broadcast_address - 1
        if self._inside(self.start, first, last):
            assert self.start is not None
            first = self.start
        if self._inside(self.end, first, last):
            assert self.end is not None
            last = self.end
        return first, last

    def _inside(self, ip: IPAddr | None, first: IPAddr, last: IPAddr) -> bool:
        return ip is not None and ip.version == first.version and int(first) <= int(ip) <= int(last)

    def size(self) -> int:
        """How many addresses the range can hand out (exclusions counted out)."""
        first, last = self.bounds()
        lo, hi = int(first), int(last)
        cut: list[tuple[int, int]] = []
        for net in excluded_nets(self.exclude):
            if net.version == first.version:
                a, b = max(lo, int(net.network_address)), min(hi, int(net.broadcast_address))
                if a <= b:
                    cut.append((a, b))
        count, edge = hi - lo + 1, lo - 1
        for a, b in sorted(cut):
            a = max(a, edge + 1)
            if a <= b:
                count -= b - a + 1
                edge = b
            edge = max(edge, b)
        return count


class Config:
    """A whereabouts IPAM config, loaded as whereabouts' LoadIPAMConfig loads it."""

    def __init__(
        self,
        name: str,
        cni_version: str,
        ranges: list[IPRange],
        *,
        gateway: IPAddr | None = None,
        routes: list[dict[str, Any]] | None = None,
        dns: dict[str, Any] | None = None,
        addresses: list[tuple[str, str | None]] | None = None,
        overlapping: bool = True,
        network_name: str = "",
        node_slice_size: str = "",
        pod_name: str = "",
        pod_namespace: str = "",
    ) -> None:
        self.name, self.cni_version, self.ranges = name, cni_version, ranges
        self.gateway, self.routes, self.dns = gateway, routes or [], dns or {}
        self.addresses, self.overlapping = addresses or [], overlapping
        self.network_name, self.node_slice_size = network_name, node_slice_size
        self.pod_name, self.pod_namespace = pod_name, pod_namespace

    @property
    def pod_ref(self) -> str:
        return f"{self.pod_namespace}/{self.pod_name}"


def _string(ipam: Mapping[str, Any], key: str) -> str:
    value = ipam.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise PluginError(
            f"LoadIPAMConfig - JSON Parsing Error: json: cannot unmarshal {type(value).__name__} "
            f"into Go struct field IPAMConfig.ipam.{key} of type string"
        )
    return value


def _strict_ip(value: Any, key: str) -> IPAddr | None:
    """A net.IP field of a range in ``ipRanges`` (JSON decoding fails on a bad one)."""
    if value is None or value == "":
        return None
    ip = parse_ip(value, sloppy=False) if isinstance(value, str) else None
    if ip is None:
        raise PluginError(
            f"LoadIPAMConfig - JSON Parsing Error: invalid IP address in {key}: {value!r}"
        )
    return ip


def _excludes(value: Any) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise PluginError("LoadIPAMConfig - JSON Parsing Error: exclude must be a list of strings")
    return list(value)


def _routes(value: Any) -> list[dict[str, Any]]:
    """``routes`` as cnitypes.Route decodes them: ``dst`` a CIDR (kept as written), ``gw``
    an IP; other keys dropped (1.1.0's mtu, advmss, priority, table, scope kept)."""
    if value is None:
        return []
    bad = "LoadIPAMConfig - JSON Parsing Error: "
    if not isinstance(value, list):
        raise PluginError(bad + "routes must be a list")
    routes = []
    for item in value:
        if not isinstance(item, dict):
            raise PluginError(bad + "a route must be an object")
        dst = item.get("dst", "")
        try:
            ip, net = parse_cidr(dst if isinstance(dst, str) else "", sloppy=False)
        except ValueError as exc:
            raise PluginError(bad + str(exc)) from None
        route: dict[str, Any] = {"dst": f"{ip}/{net.prefixlen}"}
        gw = item.get("gw")
        if gw not in (None, ""):
            if not isinstance(gw, str) or parse_ip(gw, sloppy=False) is None:
                raise PluginError(bad + f"invalid IP address: {gw}")
            route["gw"] = str(parse_ip(gw, sloppy=False))
        for key in ("mtu", "advmss", "priority", "table", "scope"):
            if isinstance(item.get(key), int) and item[key]:
                route[key] = item[key]
        routes.append(route)
    return routes


def parse_range(text: str, start: IPAddr | None, end: IPAddr | None, exclude: list[str]) -> IPRange:
    """A ``range`` in either form, as LoadIPAMConfig reads it."""
    first_text, dash, rest = text.partition("-")
    if dash:
        first = parse_ip(first_text)
        if first is None:
            raise PluginError(f"invalid range start IP: {first_text}")
        try:
            last, net = parse_cidr(rest)
        except ValueError as exc:
            raise PluginError(
                "invalid CIDR (do you have the 'range' parameter set for Whereabouts?) "
                f"'{rest}': {exc}"
            ) from None
        if first.version != net.version or first not in net:
            raise PluginError(f"invalid range start for CIDR {net}: {first}")
        return IPRange(net, first, last, exclude)
    try:
        _ip, net = parse_cidr(text)
    except ValueError as exc:
        raise PluginError(f"invalid CIDR {text}: {exc}") from None
    # the network address when range_start is not given: GetIPRange then ignores it
    return IPRange(net, start if start is not None else net.network_address, end, exclude)


def load_config(conf: Mapping[str, Any], cni_args: str, flat: Mapping[str, Any] | None) -> Config:
    """The config whereabouts works from: the NAD's ipam section over the flat file."""
    ipam = conf.get("ipam")
    if not isinstance(ipam, dict):
        raise PluginError("IPAM config missing 'ipam' key")
    if ipam.get("type") != "whereabouts":
        raise PluginError(
            "only interested in networks whose IPAM type is 'whereabouts'. "
            f"This one was: {ipam.get('type', '')}"
        )
    if flat is None:
        raise PluginError("config file not found")
    merged = dict(ipam)
    for key, value in flat.items():  # mergo.Merge: the flat file fills what is unset
        if merged.get(key) in (None, "", [], {}, 0, False):
            merged[key] = value
    merged["enable_overlapping_ranges"] = ipam.get("enable_overlapping_ranges", True)
    args = dict(item.split("=", 1) for item in cni_args.split(";") if "=" in item)

    ranges: list[IPRange] = []
    top = _string(merged, "range")
    if top:
        ranges.append(
            parse_range(
                top,
                parse_ip(_string(merged, "range_start")),
                parse_ip(_string(merged, "range_end")),
                _excludes(merged.get("exclude")),
            )
        )
    extra = merged.get("ipRanges") or []
    if not isinstance(extra, list):
        raise PluginError("LoadIPAMConfig - JSON Parsing Error: ipRanges must be a list")
    for item in extra:
        if not isinstance(item, dict):
            raise PluginError(
                "LoadIPAMConfig - JSON Parsing Error: an ipRanges item is not an object"
            )
        ranges.append(
            parse_range(
                _string(item, "range"),
                _strict_ip(item.get("range_start"), "range_start"),
                _strict_ip(item.get("range_end"), "range_end"),
                _excludes(item.get("exclude")),
            )
        )
    kube = merged.get("kubernetes")
    if not isinstance(kube, dict) or not kube.get("kubeconfig"):
        raise PluginError(
            "you have not configured the storage engine (looks like you're using an invalid "
            "`kubernetes.kubeconfig` parameter in your config)"
        )
    gateway = None
    gateway_text = _string(merged, "gateway")
    if gateway_text:
        gateway = parse_ip(gateway_text)
        if gateway is None:
            raise PluginError(f"couldn't parse gateway IP: {gateway_text}")
    addresses: list[tuple[str, str | None]] = []
    for item in merged.get("addresses") or []:
        text = item.get("address", "") if isinstance(item, dict) else ""
        try:
            ip, net = parse_cidr(text)
        except ValueError as exc:
            raise PluginError(f"invalid CIDR in addresses {text}: {exc}") from None
        gw = item.get("gateway") if isinstance(item, dict) else None
        addresses.append((f"{ip}/{net.prefixlen}", gw if isinstance(gw, str) else None))
    routes = _routes(merged.get("routes"))
    dns = merged.get("dns") or {}
    return Config(
        name=str(conf.get("name", "")),
        cni_version=str(conf.get("cniVersion") or ""),
        ranges=ranges,
        gateway=gateway,
        routes=routes,
        dns=dns if isinstance(dns, dict) else {},
        addresses=addresses,
        overlapping=bool(merged["enable_overlapping_ranges"]),
        network_name=_string(merged, "network_name"),
        node_slice_size=_string(merged, "node_slice_size"),
        pod_name=args.get("K8S_POD_NAME", ""),
        pod_namespace=args.get("K8S_POD_NAMESPACE", ""),
    )


# -- allocation -------------------------------------------------------------------------------


def excluded_nets(exclude: list[str]) -> list[IPNet]:
    """parseExcludedRange: each a CIDR or a single IP (Go's strict parsers)."""
    nets = []
    for text in exclude:
        try:
            nets.append(parse_cidr(text, sloppy=False)[1])
            continue
        except ValueError as exc:
            ip = parse_ip(text, sloppy=False)
            if ip is None:
                raise PluginError(f'could not parse exclude range, err: "{exc}"') from None
        nets.append(ipaddress.ip_network(ip))
    return nets


def free_addresses(
    cidr: IPNet, first: IPAddr, last: IPAddr, reserved: set[IPAddr], excluded: list[IPNet]
) -> Iterator[IPAddr]:
    """IterateForAssignment's walk: each free address from ``first`` to ``last``, in order."""
    n, stop, top = int(first), int(last), int(cidr.broadcast_address)
    while int(cidr.network_address) <= n <= min(stop, top):
        ip = ipaddress.ip_address(n) if cidr.version == 4 else ipaddress.IPv6Address(n)
        if ip not in reserved:
            hit = next((x for x in excluded if x.version == ip.version and ip in x), None)
            if hit is None:
                yield ip
            else:
                n = int(hit.broadcast_address)  # skip the whole excluded subnet
        n += 1


def assign(
    rng: IPRange, allocations: list[dict[str, Any]], container_id: str, pod_ref: str, ifname: str
) -> IPAddr:
    """AssignIP: the address podRef + ifName holds already, else the lowest free one (the
    caller records it). ``allocations``: {ip, id, podref, ifName} dicts (``ip`` an address)."""
    for a in allocations:
        if a.get("podref") == pod_ref and a.get("ifName") == ifname:
            a["id"] = container_id
            return a["ip"]  # type: ignore[no-any-return]
    first, last = rng.bounds()
    reserved = {a["ip"] for a in allocations}
    for ip in free_addresses(rng.cidr, first, last, reserved, excluded_nets(rng.exclude)):
        return ip
    raise PluginError(
        f"Could not allocate IP in range: ip: {first} / - {last} / range: {rng.cidr} / "
        f"excludeRanges: {go_list(rng.exclude)}"
    )


def normalize_range(cidr: str) -> str:
    if cidr.endswith(":"):
        cidr += "0"
    return cidr.replace(":", "-").replace("/", "-")


def pool_name(cidr: str, network_name: str = "", node: str = "") -> str:
    """IPPoolName."""
    parts = [p for p in (network_name, node) if p]
    return "-".join([*parts, normalize_range(cidr)])


def normalize_ip(ip: IPAddr, network_name: str = "") -> str:
    """The OverlappingRangeIPReservation's name for ``ip``."""
    text = str(ip)
    if text.endswith(":"):
        text += "0"
    text = text.replace(":", "-")
    return f"{network_name}-{text}" if network_name else text


def node_slices(cidr: IPNet, size: str) -> list[IPNet]:
    """DivideRangeBySize (IPv4 only upstream): the slices of ``cidr``."""
    bits = size.removeprefix("/")
    if not bits.isdigit():
        raise PluginError(f"invalid node_slice_size {size!r}")
    if cidr.version != 4:
        raise PluginError("node_slice_size works on IPv4 ranges only")
    if int(bits) < cidr.prefixlen or int(bits) > 32:
        raise PluginError("subnetMaskSize must be greater or equal than netMaskSize")
    return list(cidr.subnets(new_prefix=int(bits)))


# -- the store --------------------------------------------------------------------------------


class _Lock:
    """The store's one lock (flock), held from ``with`` to its end."""

    def __init__(self, path: str) -> None:
        self.path, self.fd = path, -1

    def __enter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *_: object) -> None:
        os.close(self.fd)


class Store:
    """The lab's whereabouts objects: ``pools/<name>.json`` (an IPPool: range and
    allocations by offset), ``overlapping/<ip>.json`` (podref, ifName),
    ``nodeslices/<name>.json`` (slices and their nodes), ``nodes.json`` (the cluster's nodes,
    in order), all changed under ``lock``."""

    def __init__(self, root: str) -> None:
        self.root = root

    def locked(self) -> _Lock:
        return _Lock(os.path.join(self.root, "lock"))

    def _path(self, kind: str, name: str) -> str:
        if "/" in name or name in ("", ".", ".."):
            raise PluginError(f"invalid object name {name!r}")
        return os.path.join(self.root, kind, name + ".json")

    def read(self, kind: str, name: str) -> dict[str, Any] | None:
        try:
            with open(self._path(kind, name)) as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return None
        return data if isinstance(data, dict) else None

    def write(self, kind: str, name: str, data: Mapping[str, Any]) -> None:
        path = self._path(kind, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.{os.getpid()}.tmp"
        with open(tmp, "w") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)

    def delete(self, kind: str, name: str) -> bool:
        try:
            os.unlink(self._path(kind, name))
            return True
        except FileNotFoundError:
            return False

    def nodes(self) -> list[str]:
        try:
            with open(os.path.join(self.root, "nodes.json")) as fh:
                data = json.load(fh)
        except FileNotFoundError:
            return []
        return [str(n) for n in data] if isinstance(data, list) else []

    # -- pools
    def allocations(self, name: str, cidr: IPNet) -> list[dict[str, Any]]:
        pool = self.read("pools", name) or {}
        base = int(cidr.network_address)
        found = []
        for offset, a in (pool.get("allocations") or {}).items():
            if str(offset).isdigit() and isinstance(a, dict):
                ip = ipaddress.ip_address(base + int(offset))
                found.append({"ip": ip, "id": a.get("id"), "podref": a.get("podref"),
                              "ifName": a.get("ifName")})  # fmt: skip
        return found

    def update_pool(self, name: str, cidr: IPNet, allocations: list[dict[str, Any]]) -> None:
        base = int(cidr.network_address)
        self.write(
            "pools",
            name,
            {
                "range": str(cidr),
                "allocations": {
                    str(int(a["ip"]) - base): {k: a[k] for k in ("id", "podref", "ifName")}
                    for a in allocations
                    if not a.get("dummy")
                },
            },
        )

    def node_slice(self, slice_name: str, cidr: IPNet, size: str, node: str) -> IPNet:
        """The slice of ``node`` (the NodeSlicePool is made on first use, as the controller
        makes it when the NAD appears: slices given to the nodes in order)."""
        pool = self.read("nodeslices", slice_name)
        if pool is None or pool.get("range") != str(cidr) or pool.get("sliceSize") != size:
            slices = node_slices(cidr, size)
            nodes = self.nodes()
            pool = {
                "range": str(cidr),
                "sliceSize": size,
                "allocations": [
                    {"sliceRange": str(s), "nodeName": nodes[i] if i < len(nodes) else ""}
                    for i, s in enumerate(slices)
                ],
            }
            self.write("nodeslices", slice_name, pool)
        for a in pool["allocations"]:
            if a.get("nodeName") == node:
                return ipaddress.ip_network(a["sliceRange"])
        raise PluginError("no allocated node slice for node")


def _node_name() -> str:
    name = os.environ.get("NODENAME", "").strip()
    if name:
        return name
    try:
        with open(NODE_OBJECT) as fh:
            return str(json.load(fh)["metadata"]["name"])
    except (OSError, ValueError, KeyError, TypeError):
        with open("/etc/hostname") as fh:
            return fh.read().strip()


def _pool_for(store: Store, cfg: Config, rng: IPRange) -> tuple[str, IPNet, IPRange]:
    """The pool a range allocates from: its name, its range (offsets count from its network
    address) and the range as allocation sees it. With node slices: the node's slice of the
    first range, for every range (upstream's NodeSlicePool covers ``ipRanges[0]`` only)."""
    if not cfg.node_slice_size:
        return pool_name(str(rng.cidr), cfg.network_name), rng.cidr, rng
    node = _node_name()
    slice_name = cfg.network_name or cfg.name
    piece = store.node_slice(slice_name, cfg.ranges[0].cidr, cfg.node_slice_size, node)
    sliced = IPRange(rng.cidr, piece.network_address + 1, piece.broadcast_address - 1, [])
    return pool_name(str(piece), cfg.network_name, node), piece, sliced


def allocate(store: Store, cfg: Config, container_id: str, ifname: str) -> list[tuple[IPAddr, int]]:
    """ADD's storage work (IPManagementKubernetesUpdate): an address from every range."""
    if not cfg.pod_name:
        raise PluginError("IPAM client initialization error: no pod name")
    got: list[tuple[IPAddr, int]] = []
    with store.locked():
        dummies: list[dict[str, Any]] = []
        skip_overlap_update = False
        for rng in cfg.ranges:
            name, base, effective = _pool_for(store, cfg, rng)
            for _ in range(DATASTORE_RETRIES):
                allocations = store.allocations(name, base) + dummies
                ip = assign(effective, allocations, container_id, cfg.pod_ref, ifname)
                if not any(a["ip"] == ip for a in allocations):
                    allocations.append({"ip": ip, "id": container_id, "podref": cfg.pod_ref,
                                        "ifName": ifname})  # fmt: skip
                if cfg.overlapping:
                    held = store.read("overlapping", normalize_ip(ip, cfg.network_name))
                    if held is not None:
                        if held.get("podref") != cfg.pod_ref:
                            dummies.append({"ip": ip, "dummy": True})
                            continue
                        skip_overlap_update = True
                store.update_pool(name, base, allocations)
                break
            else:
                raise PluginError(f"no free address in {rng.cidr} outside other ranges")
            if cfg.overlapping and not skip_overlap_update:
                store.write(
                    "overlapping",
                    normalize_ip(ip, cfg.network_name),
                    {"podref": cfg.pod_ref, "ifName": ifname},
                )
            got.append((ip, rng.cidr.prefixlen))
    return got


def release(store: Store, cfg: Config, container_id: str, ifname: str) -> None:
    """DEL's storage work: free what containerID + ifName holds (stops at the first range
    where it holds nothing, as upstream does)."""
    if not cfg.pod_name:
        return  # upstream fails before the storage, and DEL ignores that
    with store.locked():
        for rng in cfg.ranges:
            name, base, _ = _pool_for(store, cfg, rng)
            allocations = store.allocations(name, base)
            mine = next(
                (a for a in allocations if a["id"] == container_id and a["ifName"] == ifname), None
            )
            if mine is None:
                return
            allocations.remove(mine)
            store.update_pool(name, base, allocations)
            if cfg.overlapping:
                store.delete("overlapping", normalize_ip(mine["ip"], cfg.network_name))


# -- the result ------------------------------------------------------------------------------


def result(cfg: Config, got: list[tuple[IPAddr, int]], version: str) -> dict[str, Any]:
    """The IPAM result in the config's version (cnitypes.PrintResult)."""
    ips = [(f"{ip}/{plen}", str(cfg.gateway) if cfg.gateway else None) for ip, plen in got]
    ips += cfg.addresses
    if version in ("", "0.1.0", "0.2.0"):
        out: dict[str, Any] = {"cniVersion": version or "0.1.0"}
        for addr, gw in ips:
            key = "ip6" if ":" in addr else "ip4"
            if key in out:
                continue
            entry: dict[str, Any] = {"ip": addr}
            if gw:
                entry["gateway"] = gw
            routes = [r for r in cfg.routes if (":" in str(r.get("dst", ""))) == (key == "ip6")]
            if routes:
                entry["routes"] = routes
            out[key] = entry
        out["dns"] = cfg.dns
        return out
    entries = []
    for addr, gw in ips:
        entry = {"address": addr}
        if version in ("0.3.0", "0.3.1", "0.4.0"):
            entry = {"version": "6" if ":" in addr else "4", **entry}
        if gw:
            entry["gateway"] = gw
        entries.append(entry)
    out = {"cniVersion": version, "ips": entries}
    if cfg.routes:
        out["routes"] = cfg.routes
    out["dns"] = cfg.dns
    return out


# -- the commands ------------------------------------------------------------------------------


def _flat_file(conf: Mapping[str, Any]) -> dict[str, Any] | None:
    ipam = conf.get("ipam") if isinstance(conf.get("ipam"), dict) else {}
    assert isinstance(ipam, dict)
    own = ipam.get("configuration_path")
    paths = ([own] if isinstance(own, str) and own else []) + list(FLAT_FILES)
    for path in paths:
        if not os.path.exists(path):
            continue
        try:
            with open(path) as fh:
                data = json.load(fh)
        except ValueError as exc:
            raise PluginError(
                f"LoadIPAMConfig Flatfile ({path}) - JSON Parsing Error: {exc}"
            ) from None
        return data if isinstance(data, dict) else {}
    return None


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise PluginError(f"required env variable {name} missing", E_INVALID_ENV)
    return value


def _store() -> Store:
    root = os.environ.get(STORE_ENV, "")
    if not root or not os.path.isdir(root):
        raise PluginError(f"the lab's whereabouts store is missing (${STORE_ENV}: {root!r})")
    return Store(root)


def main() -> int:
    command = os.environ.get("CNI_COMMAND", "")
    version = "1.1.0"
    try:
        if command == "VERSION":
            sys.stdout.write(
                json.dumps({"cniVersion": "1.1.0", "supportedVersions": list(SUPPORTED_VERSIONS)})
            )
            return 0
        if command not in ("ADD", "DEL", "CHECK"):
            raise PluginError(f"unknown CNI_COMMAND: {command}", E_INVALID_ENV)
        container_id, ifname = _env("CNI_CONTAINERID"), _env("CNI_IFNAME")
        _env("CNI_PATH")
        if command != "DEL":
            _env("CNI_NETNS")
        try:
            conf = json.loads(sys.stdin.buffer.read())
        except ValueError as exc:
            raise PluginError("error reading from stdin", E_DECODE, str(exc)) from None
        if not isinstance(conf, dict):
            raise PluginError("error reading from stdin", E_DECODE, "not a JSON object")
        version = str(conf.get("cniVersion") or "0.1.0")
        if version not in SUPPORTED_VERSIONS:
            raise PluginError(
                f"incompatible CNI versions; config is {version!r}, plugin supports "
                f"{list(SUPPORTED_VERSIONS)}",
                E_INCOMPATIBLE,
            )
        if command == "CHECK":
            raise PluginError("CNI CHECK method is not implemented")
        cfg = load_config(conf, os.environ.get("CNI_ARGS", ""), _flat_file(conf))
        store = _store()
        if command == "ADD":
            try:
                got = allocate(store, cfg, container_id, ifname)
            except PluginError as exc:
                raise PluginError(f"error at storage engine: {exc.msg}") from None
            sys.stdout.write(json.dumps(result(cfg, got, cfg.cni_version)))
        else:
            try:  # noqa: SIM105 (contextlib costs the plugin's start-up)
                release(store, cfg, container_id, ifname)
            except PluginError:
                pass  # upstream ignores the storage's errors on DEL
        return 0
    except PluginError as exc:
        error = {"cniVersion": version, "code": exc.code, "msg": exc.msg}
        if exc.details:
            error["details"] = exc.details
        sys.stdout.write(json.dumps(error))
        return 1
    except OSError as exc:
        sys.stdout.write(json.dumps({"cniVersion": version, "code": 5, "msg": str(exc)}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
