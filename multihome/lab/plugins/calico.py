"""Canal's ``calico`` CNI plugin, as the lab runs it on each node (``/opt/cni/bin/calico``).

It makes a pod's eth0 the way Calico's CNI plugin does in Kubernetes mode (projectcalico/calico,
cni-plugin/pkg/k8s/k8s.go and pkg/dataplane/linux/dataplane_linux.go):

- IPAM: with ``host-local``, ``"subnet": "usePodCidr"`` (any case) becomes the node's pod
  CIDR, read from the Node object, and the IPAM plugin is executed from ``CNI_PATH``;
- a veth pair: ``cali`` + the first 11 hex digits of sha1("<namespace>.<pod>") on the node,
  with the MAC ee:ee:ee:ee:ee:ee, the conf's ``mtu`` and txqlen 0 on both ends; the pod's end is
  ``CNI_IFNAME`` with a random locally administered MAC, as the kernel would pick;
- on the node side: ``route_localnet=1``, ``proxy_arp=1``, ``neigh.proxy_delay=0``,
  ``forwarding=1``, ``accept_ra=0`` (IPv6: ``accept_dad=0``, ``proxy_ndp=1``), then a /32
  (/128) route per pod address ``dev cali... scope link``;
- in the pod: the address as a /32 (/128), ``169.254.1.1 dev eth0 scope link`` and each route
  (default: 0.0.0.0/0, or the host-local ``routes``) via 169.254.1.1, answered by proxy ARP on
  the node's end; IPv6 routes via the node end's link-local address; ``ip_forward=0`` unless
  ``container_settings.allow_ip_forwarding``;
- the result: IPAM's, with the addresses as /32 (/128), interfaces [cali..., eth0], every IP
  on interface 1.

Where the lab differs from a node: Calico reads the Node's podCIDR from the Kubernetes API;
this plugin reads the Node object the lab writes at ``NODE_OBJECT`` (see lab/canal.py). It
writes no WorkloadEndpoint (there is no Felix to program policy from it).

The links, addresses and routes are made over rtnetlink from this process (``rtnl.py``), as
Calico's plugin makes them with netlink: the IPAM plugin is the only process it starts.

Stdlib only, and few imports: it runs once per pod.
"""

from __future__ import annotations

import os
import sys

from . import rtnl
from .jsoncodec import dumps, loads

# imports are this plugin's start-up cost, paid once per pod: no typing, contextlib, json
# (jsoncodec calls json's C accelerator) or hashlib (OpenSSL) at run time
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from typing import Any

NODE_OBJECT = "/var/lib/cni/multihome/node.json"
HOST_SIDE_MAC = "ee:ee:ee:ee:ee:ee"
HOST_SIDE_LL6 = "fe80::ecee:eeff:feee:eeee"  # the link-local address of HOST_SIDE_MAC
GATEWAY_V4 = "169.254.1.1"
SUPPORTED_VERSIONS = ("0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0")
DEFAULT_ROUTES = ("0.0.0.0/0", "::/0")
_CLONE_NEWNET = 0x40000000
_RTLD_NOW = 2
# Calico of the seed's era (3.25) built the veth from a LinkAttrs literal, so netlink sent
# txqlen 0 for both ends: the post's eth0 shows no qlen
TXQLEN = 0
_EEXIST, _ENODEV = 17, 19

# CNI error codes (SPEC.md)
E_INCOMPATIBLE = 1
E_INVALID_ENV = 4
E_IO = 5
E_DECODE = 6
E_INVALID_CONFIG = 7
E_PLUGIN = 100


class PluginError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def veth_name(namespace: str, pod: str) -> str:
    """The node-side interface of a pod, as Calico names it (VethNameForWorkload)."""
    import _sha1  # type: ignore[import-not-found]  # CPython's SHA-1, no OpenSSL to load

    return "cali" + str(_sha1.sha1(f"{namespace}.{pod}".encode()).hexdigest())[:11]


# -- running things -------------------------------------------------------------------------


def _spawn(argv: Sequence[str], stdin: bytes, env: Mapping[str, str]) -> tuple[int, bytes, bytes]:
    """Run ``argv`` with ``stdin``; (exit code, stdout, stderr). Lighter than subprocess."""
    in_r, in_w = os.pipe()
    out_r, out_w = os.pipe()
    err_r, err_w = os.pipe()
    try:
        pid = os.posix_spawn(
            argv[0],
            list(argv),
            dict(env),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, in_r, 0),
                (os.POSIX_SPAWN_DUP2, out_w, 1),
                (os.POSIX_SPAWN_DUP2, err_w, 2),
            ],
        )
    finally:
        for fd in (in_r, out_w, err_w):
            os.close(fd)
    try:
        os.write(in_w, stdin)  # small: fits the pipe
    except BrokenPipeError:  # it did not read its input: its exit code tells
        stdin = b""
    os.close(in_w)
    with os.fdopen(out_r, "rb") as out, os.fdopen(err_r, "rb") as err:
        stdout, stderr = out.read(), err.read()
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), stdout, stderr


def _nl(what: str, op: str, call: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """``call(*args, **kw)``, a netlink request; a refusal becomes a PluginError ``what``
    whose details name the operation (``op``, as ip would say it) and the kernel's reason."""
    try:
        return call(*args, **kw)
    except (OSError, ValueError) as exc:
        raise PluginError(E_PLUGIN, what, f"{op}: {exc}") from None


_light_setns: list[Any] = []  # found once a process


def _libc_setns() -> Any:
    """A caller of libc's setns(fd, nstype) -> int through ``_ctypes``, the C half of
    ctypes: ``import ctypes`` builds its Python types first, which costs a plugin process
    more than a third of its start-up. None where ``_ctypes`` lacks these calls."""
    try:
        import _ctypes

        c: Any = _ctypes  # typeshed types dlopen's name narrower than it takes (None: us)
        address = c.dlsym(c.dlopen(None, _RTLD_NOW), "setns")
        call = c.call_function
    except (ImportError, AttributeError, OSError):
        return None
    return lambda fd, kind: call(address, (fd, kind))


def _setns(path: str) -> None:
    setns = getattr(os, "setns", None)  # Python 3.12+: no ctypes (libffi) to load
    if setns is not None:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(fd, _CLONE_NEWNET)
        except OSError as exc:
            raise PluginError(
                E_PLUGIN, f"failed to enter netns {path}", exc.strerror or str(exc)
            ) from None
        finally:
            os.close(fd)
        return
    if not _light_setns:
        _light_setns.append(_libc_setns())
    light = _light_setns[0]
    if light is not None:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            if light(fd, _CLONE_NEWNET) == 0:
                return
        finally:
            os.close(fd)
        # failed: ctypes below says why (errno), on the failure path only
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if libc.setns(fd, _CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise PluginError(E_PLUGIN, f"failed to enter netns {path}", os.strerror(errno))
    finally:
        os.close(fd)


def _sysctl(name: str, value: str, *, required: bool = True) -> None:
    path = "/proc/sys/" + name.replace(".", "/")
    try:
        with open(path, "w") as fh:
            fh.write(value)
    except OSError as exc:
        if required:
            raise PluginError(E_PLUGIN, f"failed to set {name}={value}", str(exc)) from None


def _sysctl_dev(family: str, kind: str, dev: str, key: str, value: str, **kw: bool) -> None:
    # an interface name may hold a '.', which sysctl's dotted form can't say: write the path
    path = f"/proc/sys/net/{family}/{kind}/{dev}/{key}"
    try:
        with open(path, "w") as fh:
            fh.write(value)
    except OSError as exc:
        if kw.get("required", True):
            name = f"net.{family}.{kind}.{dev}.{key}"
            raise PluginError(E_PLUGIN, f"failed to set {name}={value}", str(exc)) from None


# -- IPAM ------------------------------------------------------------------------------------


def _pod_cidrs(conf: Mapping[str, Any]) -> tuple[str, str]:
    """The node's IPv4 and IPv6 pod CIDRs, from its Node object."""
    try:
        with open(NODE_OBJECT) as fh:
            node = loads(fh.read())
    except FileNotFoundError:
        raise PluginError(
            E_PLUGIN, "cannot read this node's Node object", f"{NODE_OBJECT} is missing"
        ) from None
    except (OSError, ValueError) as exc:
        raise PluginError(E_PLUGIN, "cannot read this node's Node object", str(exc)) from None
    name = node.get("metadata", {}).get("name")
    wanted = conf.get("nodename") or name
    if wanted != name:
        raise PluginError(E_PLUGIN, f'nodes "{wanted}" not found')
    spec = node.get("spec", {})
    cidrs = spec.get("podCIDRs") or ([spec["podCIDR"]] if spec.get("podCIDR") else [])
    v4 = next((c for c in cidrs if ":" not in c), "")
    v6 = next((c for c in cidrs if ":" in c), "")
    return v4, v6


def _use_pod_cidr(ipam: dict[str, Any], conf: Mapping[str, Any]) -> None:
    """Swap host-local's ``usePodCidr``/``usePodCidrIPv6`` for the node's pod CIDRs."""
    found: tuple[str, str] | None = None

    def swap(section: Any) -> None:
        nonlocal found
        if not isinstance(section, dict):
            raise PluginError(
                E_INVALID_CONFIG,
                f"failed to parse host-local IPAM data; was expecting a dict, not: {section}",
            )
        subnet = section.get("subnet")
        if not isinstance(subnet, str) or subnet.lower() not in ("usepodcidr", "usepodcidripv6"):
            return
        found = found or _pod_cidrs(conf)
        v6 = subnet.lower() == "usepodcidripv6"
        cidr = found[1] if v6 else found[0]
        if not cidr:
            family = "IPv6" if v6 else "IPv4"
            raise PluginError(E_PLUGIN, f"{subnet} found but there is no {family} CIDR configured")
        section["subnet"] = cidr

    swap(ipam)
    ranges = ipam.get("ranges")
    if ranges is not None:
        if not isinstance(ranges, list):
            raise PluginError(E_INVALID_CONFIG, "failed to parse host-local IPAM ranges section")
        for range_set in ranges:
            if not isinstance(range_set, list):
                raise PluginError(E_INVALID_CONFIG, "failed to parse host-local IPAM range set")
            for section in range_set:
                swap(section)


def _find_plugin(kind: str) -> str:
    for directory in os.environ.get("CNI_PATH", "").split(":"):
        path = os.path.join(directory, kind)
        if directory and os.access(path, os.X_OK):
            return path
    raise PluginError(
        E_PLUGIN, f'failed to find plugin "{kind}" in path [{os.environ.get("CNI_PATH", "")}]'
    )


def _ipam_exec(conf: Mapping[str, Any], command: str) -> dict[str, Any] | None:
    ipam = conf.get("ipam")
    assert isinstance(ipam, dict)
    env = dict(os.environ, CNI_COMMAND=command)
    code, out, _ = _spawn([_find_plugin(str(ipam.get("type")))], dumps(conf).encode(), env)
    if code != 0:
        try:
            error = loads(out)
        except ValueError:
            error = {"code": E_PLUGIN, "msg": out.decode(errors="replace").strip()}
        raise PluginError(
            int(error.get("code", E_PLUGIN)),
            str(error.get("msg", "")),
            str(error.get("details", "")),
        )
    if command != "ADD":
        return None
    try:
        result = loads(out)
    except ValueError:
        raise PluginError(E_DECODE, "the IPAM plugin's result is not JSON") from None
    if not isinstance(result, dict):
        raise PluginError(E_DECODE, "the IPAM plugin's result is not a JSON object")
    return result


def _ipam_conf(conf: dict[str, Any]) -> dict[str, Any]:
    ipam = conf.get("ipam")
    if not isinstance(ipam, dict) or not isinstance(ipam.get("type"), str):
        raise PluginError(E_INVALID_CONFIG, "the calico plugin needs an ipam section with a type")
    if ipam["type"] == "host-local":
        ipam = loads(dumps(ipam))
        _use_pod_cidr(ipam, conf)
        return dict(conf, ipam=ipam)
    return conf


def _routes(conf: Mapping[str, Any]) -> list[str]:
    """The routes to put in the pod via the node: host-local's ``routes`` dsts if any (the
    gateway is ignored: the link is point to point), else the default ones."""
    ipam = conf.get("ipam", {})
    custom = [str(r["dst"]) for r in ipam.get("routes", []) or [] if isinstance(r, dict)]
    if ipam.get("type") != "host-local" or not custom:
        return list(DEFAULT_ROUTES)
    if conf.get("include_default_routes"):
        return [*DEFAULT_ROUTES, *custom]
    return custom


def _addresses(result: Mapping[str, Any]) -> list[str]:
    """The IPAM result's addresses (``A.B.C.D/N``), any result version."""
    if "ips" in result:
        return [str(ip["address"]) for ip in result["ips"]]
    return [str(result[k]["ip"]) for k in ("ip4", "ip6") if isinstance(result.get(k), dict)]


def _host_prefix(address: str) -> str:
    ip = address.split("/", 1)[0]
    return f"{ip}/128" if ":" in ip else f"{ip}/32"


# -- the commands ----------------------------------------------------------------------------


def _pod_args() -> tuple[str, str]:
    args = dict(
        item.split("=", 1) for item in os.environ.get("CNI_ARGS", "").split(";") if "=" in item
    )
    namespace, pod = args.get("K8S_POD_NAMESPACE", ""), args.get("K8S_POD_NAME", "")
    if not namespace or not pod:
        raise PluginError(
            E_INVALID_ENV,
            "K8S_POD_NAMESPACE and K8S_POD_NAME must be set in CNI_ARGS",
            "this calico runs in Kubernetes mode only",
        )
    return namespace, pod


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise PluginError(E_INVALID_ENV, f"required env variable {name} missing")
    return value


def _random_mac() -> str:
    raw = bytearray(os.urandom(6))
    raw[0] = (raw[0] & 0xFE) | 0x02  # unicast, locally administered (the kernel's choice)
    return ":".join(f"{b:02x}" for b in raw)


def cmd_add(conf: dict[str, Any]) -> dict[str, Any]:
    netns, ifname = _env("CNI_NETNS"), _env("CNI_IFNAME")
    _env("CNI_CONTAINERID")
    namespace, pod = _pod_args()
    mtu = int(conf.get("mtu") or 1500)
    ipam_conf = _ipam_conf(conf)
    result = _ipam_exec(ipam_conf, "ADD")
    assert result is not None
    try:
        addresses = _addresses(result)
        if not addresses:
            raise PluginError(E_PLUGIN, "IPAM plugin returned missing IP config")
        host = veth_name(namespace, pod)
        mac = _setup(conf, netns, ifname, host, mtu, addresses)
    except BaseException:
        _release(ipam_conf, veth_name(namespace, pod))
        raise
    return _result(result, host, ifname, mac, netns)


def _release(ipam_conf: Mapping[str, Any], host: str) -> None:
    """Undo a failed ADD: give the address back, remove the veth pair (if it was made)."""
    # the ADD's error is the one to report; the veth may not have been made
    try:  # noqa: SIM105 (contextlib's import costs every pod)
        _ipam_exec(ipam_conf, "DEL")
    except PluginError:
        pass
    try:
        with rtnl.Rtnl() as nl:
            nl.delete_link(host)
    except OSError:
        pass


def _prefix(cidr: str) -> tuple[str, int]:
    """("A.B.C.D", N) of "A.B.C.D/N"; an address alone is a host route, as ip reads it."""
    ip, _, length = cidr.partition("/")
    return ip, int(length) if length else (128 if ":" in ip else 32)


def _add_veth(
    nl: rtnl.Rtnl, netns: str, ifname: str, host: str, mac: str, mtu: int, what: str
) -> None:
    """The veth pair, its pod end made in the pod's namespace. Where the node already has
    a link of the node end's name (a pod that was not cleaned up), it is deleted and the
    pair made again, as Calico deletes an old hostVeth."""
    try:
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise PluginError(
            E_PLUGIN, what, f'cannot open network namespace "{netns}": {exc.strerror}'
        ) from None
    op = f"link add {host} type veth peer name {ifname} netns {netns}"

    def add() -> None:
        nl.add_veth(host, HOST_SIDE_MAC, ifname, mac, fd, mtu=mtu, txqlen=TXQLEN)

    try:
        try:
            add()
            return
        except rtnl.NetlinkError as exc:
            if exc.errno != _EEXIST:
                raise PluginError(E_PLUGIN, what, f"{op}: {exc}") from None
            first = exc
        try:
            nl.delete_link(host)
        except rtnl.NetlinkError as exc:
            if exc.errno == _ENODEV:  # the name taken is the pod's: nothing of ours to delete
                raise PluginError(E_PLUGIN, what, f"{op}: {first}") from None
            raise PluginError(
                E_PLUGIN, f"failed to delete old hostVeth {host}", f"link del {host}: {exc}"
            ) from None
        _nl(what, op, add)
    finally:
        os.close(fd)


def _setup(
    conf: Mapping[str, Any], netns: str, ifname: str, host: str, mtu: int, addresses: list[str]
) -> str:
    """Make the veth pair, the node side and the pod side; returns the pod side's MAC."""
    has4 = any(":" not in a for a in addresses)
    has6 = any(":" in a for a in addresses)
    mac = _random_mac()
    # the pair, the node end up and its /32 routes; the node end's sysctls follow, before
    # the pod's end gets its address (Calico sets them first: nothing reaches the pair in
    # between)
    what = f"failed to set up the veth pair and the host side routes of {host}"
    with rtnl.Rtnl() as nl:
        _add_veth(nl, netns, ifname, host, mac, mtu, what)
        index = _nl(what, f"link show {host}", nl.link_index, host)
        _nl(what, f"link set {host} up", nl.set_up, index)
        for a in addresses:
            dst = _host_prefix(a)
            op = f"route add {dst} dev {host} scope link"
            _nl(what, op, nl.add_route, *_prefix(dst), index, scope=rtnl.RT_SCOPE_LINK)
    if has4:
        _sysctl_dev("ipv4", "conf", host, "route_localnet", "1")
        _sysctl_dev("ipv4", "neigh", host, "proxy_delay", "0", required=False)
        _sysctl_dev("ipv4", "conf", host, "proxy_arp", "1")
        _sysctl_dev("ipv4", "conf", host, "forwarding", "1")
    if has6:
        _sysctl_dev("ipv6", "conf", host, "accept_dad", "0")
        _sysctl_dev("ipv6", "conf", host, "disable_ipv6", "0")
        _sysctl_dev("ipv6", "conf", host, "proxy_ndp", "1")
        _sysctl_dev("ipv6", "conf", host, "forwarding", "1")
    _sysctl_dev("ipv6", "conf", host, "accept_ra", "0", required=False)

    node_ns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(netns)
        if has6:
            _sysctl_dev("ipv6", "conf", ifname, "accept_dad", "0")
            for key in ("all", "default", "lo"):
                _sysctl(f"net.ipv6.conf.{key}.disable_ipv6", "0")
        _pod_side(conf, ifname, addresses)
        forward = "1" if conf.get("container_settings", {}).get("allow_ip_forwarding") else "0"
        if has4:
            _sysctl("net.ipv4.ip_forward", forward)
        if has6:
            _sysctl("net.ipv6.conf.all.forwarding", forward)
    finally:
        _setns_fd(node_ns)
    return mac


def _pod_side(conf: Mapping[str, Any], ifname: str, addresses: list[str]) -> None:
    """In the pod's namespace: its end up, 169.254.1.1 on link, the routes via it (IPv6:
    via the node end's link-local), then the addresses."""
    what = "failed to configure the pod's interface"
    routes = _routes(conf)
    with rtnl.Rtnl() as nl:  # made in the pod's namespace
        index = _nl(what, f"link show {ifname}", nl.link_index, ifname)
        _nl(what, f"link set {ifname} up", nl.set_up, index)
        if any(":" not in a for a in addresses):
            op = f"route add {GATEWAY_V4}/32 dev {ifname} scope link"
            _nl(what, op, nl.add_route, GATEWAY_V4, 32, index, scope=rtnl.RT_SCOPE_LINK)
            for r in routes:
                if ":" not in r:
                    op = f"route add {r} via {GATEWAY_V4} dev {ifname}"
                    _nl(what, op, nl.add_route, *_prefix(r), index, via=GATEWAY_V4)
        if any(":" in a for a in addresses):
            for r in routes:
                if ":" in r:
                    op = f"route add {r} via {HOST_SIDE_LL6} dev {ifname}"
                    _nl(what, op, nl.add_route, *_prefix(r), index, via=HOST_SIDE_LL6)
        for a in addresses:
            cidr = _host_prefix(a)
            _nl(what, f"addr add {cidr} dev {ifname}", nl.add_address, *_prefix(cidr), index)


def _setns_fd(fd: int) -> None:
    try:
        _setns(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


def _result(ipam: dict[str, Any], host: str, ifname: str, mac: str, netns: str) -> dict[str, Any]:
    result = dict(ipam)
    if "ips" in result:
        result["interfaces"] = [{"name": host}, {"name": ifname, "mac": mac, "sandbox": netns}]
        result["ips"] = [
            dict(ip, address=_host_prefix(str(ip["address"])), interface=1) for ip in result["ips"]
        ]
    else:  # 0.1.0 / 0.2.0
        for key in ("ip4", "ip6"):
            if isinstance(result.get(key), dict):
                result[key] = dict(result[key], ip=_host_prefix(str(result[key]["ip"])))
    return result


def cmd_del(conf: dict[str, Any]) -> None:
    ifname = _env("CNI_IFNAME")
    _env("CNI_CONTAINERID")
    _pod_args()
    errors: list[PluginError] = []
    try:
        _ipam_exec(_ipam_conf(conf), "DEL")
    except PluginError as exc:
        errors.append(exc)
    netns = os.environ.get("CNI_NETNS", "")
    if netns and os.path.exists(netns):
        node_ns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(netns)
            try:
                with rtnl.Rtnl() as nl:
                    nl.delete_link(ifname)
            except OSError as exc:
                if exc.errno != _ENODEV:  # already gone: DEL must succeed then
                    errors.append(
                        PluginError(
                            E_PLUGIN,
                            "failed to clean up the pod's interface",
                            f"link del {ifname}: {exc}",
                        )
                    )
        finally:
            _setns_fd(node_ns)
    if errors:
        raise errors[0]


def cmd_check(conf: dict[str, Any]) -> None:
    """The pod's interface and the node's veth exist, with the addresses of ``prevResult``."""
    netns, ifname = _env("CNI_NETNS"), _env("CNI_IFNAME")
    namespace, pod = _pod_args()
    prev = conf.get("prevResult")
    if not isinstance(prev, dict):
        raise PluginError(E_INVALID_CONFIG, "CHECK needs a prevResult")
    want = {_host_prefix(a) for a in _addresses(prev)}
    host = veth_name(namespace, pod)
    with rtnl.Rtnl() as nl:
        _nl(f"the node has no interface {host}", f"link show {host}", nl.link_index, host)
    node_ns = os.open("/proc/self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _setns(netns)
        with rtnl.Rtnl() as nl:
            what = f"the pod has no interface {ifname}"
            index = _nl(what, f"link show {ifname}", nl.link_index, ifname)
            found = _nl(f"cannot read {ifname}'s addresses", "addr show", nl.addresses, index)
    finally:
        _setns_fd(node_ns)
    have = {f"{a}/{length}" for a, length, scope in found if scope == rtnl.RT_SCOPE_UNIVERSE}
    if want - have:
        raise PluginError(
            E_PLUGIN, f"{ifname} lacks {', '.join(sorted(want - have))}", f"it has {sorted(have)}"
        )


def main() -> int:
    command = os.environ.get("CNI_COMMAND", "")
    version = "1.0.0"
    try:
        if command == "VERSION":
            sys.stdout.write(
                dumps({"cniVersion": "1.0.0", "supportedVersions": list(SUPPORTED_VERSIONS)})
            )
            return 0
        try:
            conf = loads(sys.stdin.buffer.read())
        except ValueError as exc:
            raise PluginError(E_DECODE, "failed to load netconf", str(exc)) from None
        if not isinstance(conf, dict):
            raise PluginError(E_DECODE, "failed to load netconf", "not a JSON object")
        version = str(conf.get("cniVersion") or "0.1.0")
        if version not in SUPPORTED_VERSIONS:
            raise PluginError(
                E_INCOMPATIBLE,
                f"incompatible CNI versions; config is {version!r}, plugin supports "
                f"{list(SUPPORTED_VERSIONS)}",
            )
        if command == "ADD":
            sys.stdout.write(dumps(cmd_add(conf)))
        elif command == "DEL":
            cmd_del(conf)
        elif command == "CHECK":
            cmd_check(conf)
        else:
            raise PluginError(E_INVALID_ENV, f"unknown CNI_COMMAND: {command}")
        return 0
    except PluginError as exc:
        error = {"cniVersion": version, "code": exc.code, "msg": exc.msg}
        if exc.details:
            error["details"] = exc.details
        sys.stdout.write(dumps(error))
        return 1
    except OSError as exc:
        sys.stdout.write(dumps({"cniVersion": version, "code": E_IO, "msg": str(exc)}))
        return 1


if __name__ == "__main__":
    sys.exit(main())
