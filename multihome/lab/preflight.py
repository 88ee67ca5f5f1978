"""What a lab needs from this machine, checked before anything is built: the system
packages (CNI plugins, dnsmasq, nsenter) and the kernel's link kinds its NADs use (this
kernel, for one, has no ipvlan, 802.1q vlan or bond).

Link kinds are probed by really creating one of each in a throwaway user + network
namespace of a forked child, so the answer is the kernel's own, and nothing of the host is
touched. The answer is kept for the life of the process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import gzip
import json
import os
import pickle
import shutil
import signal
from collections.abc import Callable
from typing import Any, NoReturn

from multihome.cni import installed
from multihome.multus.gojson import fold
from multihome.plan import Plan, vlan_id
from multihome.spec import ConfigJSONError, parse_cni_json

from . import canal, neighbours, netlink, ns
from .daemons import DNSMASQ
from .forkpool import attach_workers
from .nodes import CNI_BIN_DIR

# CNI plugin type -> the kernel link kind it makes.
LINK_KIND = {
    "bridge": "bridge",
    "macvlan": "macvlan",
    "ipvlan": "ipvlan",
    "vlan": "vlan",
    "bond": "bond",
    "vrf": "vrf",
}
BRIDGE_VLAN = "bridge-vlan"
"""The probe of a bridge with ``vlan_filtering 1``: the bridge plugin turns it on when a NAD
sets ``vlan`` or ``vlanTrunk`` (plugins/main/bridge/bridge.go: ``vlanFiltering := n.Vlan != 0
|| n.VlanTrunk != nil``); ``vlanTrunk`` only from v1.3.0 on: older plugins (Debian's 1.1.1)
ignore the key and need no filtering for it (check/bridgevlan.py says what they do)."""


@dataclasses.dataclass(frozen=True)
class Feature:
    """A kernel feature a link kind needs: its words, config option and module."""

    words: str
    option: str
    module: str | None
    """The module that provides it (None: built into another one, no module to load)."""


FEATURES = {
    "vlan": Feature("802.1q VLAN devices", "CONFIG_VLAN_8021Q", "8021q"),
    "ipvlan": Feature("ipvlan", "CONFIG_IPVLAN", "ipvlan"),
    BRIDGE_VLAN: Feature("bridge VLAN filtering", "CONFIG_BRIDGE_VLAN_FILTERING", None),
    "bond": Feature("bonding", "CONFIG_BONDING", "bonding"),
    "vrf": Feature("VRF devices", "CONFIG_NET_VRF", "vrf"),
    "macvlan": Feature("macvlan", "CONFIG_MACVLAN", "macvlan"),
    "bridge": Feature("bridges", "CONFIG_BRIDGE", "bridge"),
}
KERNEL_CONFIGS = ("/proc/config.gz", "/boot/config-{release}")
_SHOWN_PODS = 4


class PreflightError(RuntimeError):
    """The machine lacks what the lab needs; the message says what and how to get it."""


def missing_packages() -> list[str]:
    """Debian packages the lab needs and this machine lacks."""
    missing = []
    if not os.path.isdir(CNI_BIN_DIR):
        missing.append("containernetworking-plugins")
    if not os.path.exists(DNSMASQ):
        missing.append("dnsmasq-base")
    if shutil.which("nsenter") is None:
        missing.append("util-linux")
    if shutil.which("ip") is None:  # host-gw routes of larger labs go in one ip -batch
        missing.append("iproute2")
    return missing


@functools.cache
def link_kinds_unavailable(kinds: tuple[str, ...]) -> dict[str, str]:
    """The kinds among ``kinds`` this kernel can't create, with the kernel's reason."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        _probe_child(kinds, reader, writer)
    try:
        os.close(writer)
        with open(reader, "rb") as fh:
            data = fh.read()
    except BaseException:  # Ctrl-C: the probe is of no use any more
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        raise
    finally:
        os.waitpid(pid, 0)
    found = pickle.loads(data) if data else "the probe died"
    if isinstance(found, str):
        raise PreflightError(f"cannot check the kernel's link kinds: {found}")
    return {kind: why for kind, why in found.items() if why is not None}


def _probe_child(kinds: tuple[str, ...], reader: int, writer: int) -> NoReturn:
    """The forked probe: answer over ``writer`` and leave with ``os._exit`` whatever
    happens (Ctrl-C, ``up`` killed so the pipe is broken), never returning into the
    caller's stack: a child that did would run on as a second copy of the CLI."""
    code = 1
    try:
        ns.die_with_parent()
        os.close(reader)
        try:
            ns.unshare(ns.CLONE_NEWUSER | ns.CLONE_NEWNET)
            result: object = netlink.probe_link_kinds(list(kinds))
        except Exception as exc:
            result = f"cannot probe: {exc}"
        with open(writer, "wb") as out:
            out.write(pickle.dumps(result))
        code = 0
    finally:
        os._exit(code)


def kernel_config() -> dict[str, str] | None:
    """This kernel's build options (``CONFIG_X`` -> ``y``/``m``/``n`` for "is not set"), from
    /proc/config.gz or /boot/config-<release>; None when neither can be read."""
    release = os.uname().release
    for path in KERNEL_CONFIGS:
        path = path.format(release=release)
        try:
            with open(path, "rb") as fh:
                raw = fh.read(4 << 20)
            text = (gzip.decompress(raw) if path.endswith(".gz") else raw).decode(errors="replace")
        except (OSError, EOFError, gzip.BadGzipFile):
            continue
        found: dict[str, str] = {}
        for line in text.splitlines():
            if line.startswith("# CONFIG_") and line.endswith(" is not set"):
                found[line[2:].split()[0]] = "n"
            elif line.startswith("CONFIG_") and "=" in line:
                key, _, value = line.partition("=")
                found[key] = value.strip('"')
        return found
    return None


def how_to_get(feature: Feature, config: dict[str, str] | None) -> str:
    """What gives this kernel ``feature``: the module to load, or the kernel to boot."""
    build = f"boot a kernel built with {feature.option}=y"
    if feature.module:
        build += " (or =m)"
    if feature.option == "CONFIG_BRIDGE_VLAN_FILTERING":
        build += ", which needs CONFIG_VLAN_8021Q; it is part of the bridge, no module adds it"
    build += "; Debian's and Ubuntu's stock kernels have it"
    if config is None:
        if feature.module:
            module = feature.module
            return f"load it (modprobe {module}) if this kernel has it as a module, else {build}"
        return build
    value = config.get(feature.option, "n")
    if value == "m" and feature.module:
        return f"load it: modprobe {feature.module}"
    said = f"this kernel is built without it ({feature.option} is not set"
    if config.get("CONFIG_MODULES", "n") == "n":
        said += ", and it loads no modules"
    return f"{said}): {build}"


def _needs(plan: Plan) -> dict[str, dict[str, list[str]]]:
    """Probe name -> NAD (or the lab itself) -> the pods' interfaces that need it."""

    def reads_trunk() -> bool:  # asks dpkg (~0.1 s): only for a NAD that sets vlanTrunk
        release = installed.release()
        return release is None or release.at_least(installed.BRIDGE_VLAN_TRUNK)

    needs: dict[str, dict[str, list[str]]] = {
        "bridge": {f"lab {plan.name} (its VLAN segments)": []}
    }
    read: dict[str, tuple[str | None, int | None]] = {}  # NAD -> its config read once

    def keys(network: str) -> tuple[str | None, int | None]:
        if network not in read:
            nad = plan.nad(network)
            said = bridge_vlans(nad.config, reads_trunk) if nad is not None else None
            read[network] = (said, vlan_id(nad) if nad is not None else None)
        return read[network]

    for pod in plan.pods:
        if pod.node is None or pod.host_network:
            continue
        for iface in pod.interfaces:
            if iface.cluster:
                continue
            used = f"pod {pod.ref} ({iface.name})"
            nad = plan.nad(iface.network)
            kind = LINK_KIND.get(iface.cni_type or "")
            label = f"NAD {iface.network} (type {iface.cni_type})"
            if kind is not None:
                needs.setdefault(kind, {}).setdefault(label, []).append(used)
            said, vid = keys(iface.network)
            if said:
                label = f"NAD {iface.network} (bridge with {said})"
                needs.setdefault(BRIDGE_VLAN, {}).setdefault(label, []).append(used)
            if nad is not None and vid is not None and iface.lab_network is not None:
                # lab/trunks.py: its master's switch port becomes a trunk carrying the VLAN
                label = f"NAD {iface.network} (vlanId {vid}: {nad.master}'s port a VLAN trunk)"
                needs.setdefault(BRIDGE_VLAN, {}).setdefault(label, []).append(used)
    return needs


def bridge_vlans(config: str, reads_trunk: Callable[[], bool] = lambda: True) -> str | None:
    """The bridge plugin's VLAN keys a NAD's first plugin sets (``vlan`` other than 0,
    ``vlanTrunk`` not null when the installed plugin reads it: ``reads_trunk()``), as
    written; None when it sets neither (or is no bridge)."""
    try:
        raw: Any = parse_cni_json(config)
    except ConfigJSONError:
        return None
    if isinstance(raw, dict) and isinstance(raw.get("plugins"), list) and raw["plugins"]:
        raw = raw["plugins"][0]
    if not isinstance(raw, dict) or raw.get("type") != "bridge":
        return None
    # Go's encoding/json matches keys without regard to case; the last one wins
    vlan = trunk = None
    for key, value in raw.items():
        if fold(key) == "VLAN":
            vlan = value
        elif fold(key) == "VLANTRUNK":
            trunk = value
    said = []
    if vlan not in (None, 0):
        said.append(f"vlan {json.dumps(vlan)}")
    if trunk is not None and reads_trunk():
        said.append(f"vlanTrunk {json.dumps(trunk)}")
    return ", ".join(said) or None


NEIGH_SYSCTL = "/proc/sys/net/{family}/neigh/default/gc_thresh{n}"


def gc_thresholds(family: str = "ipv4") -> tuple[int, int, int] | None:
    """The host's neighbour-table GC thresholds (gc_thresh1/2/3) for ``family`` (``ipv4``:
    ARP, ``ipv6``: NDP), read only; None when they can't be read."""
    try:
        values = []
        for n in (1, 2, 3):
            with open(NEIGH_SYSCTL.format(family=family, n=n)) as fh:
                values.append(int(fh.read().strip()))
    except (OSError, ValueError):
        return None
    return values[0], values[1], values[2]


def neighbour_budget(plan: Plan, workers: int, probes_at_once: int) -> str | None:
    """Why the host's neighbour tables can't hold what ``plan`` learns at once (None: they
    can). The lab keeps its learnt entries to half of gc_thresh3, the rest being the
    host's and other labs'; it never changes a sysctl itself."""
    need = neighbours.estimate(plan, workers, probes_at_once)
    families = ["ipv4"] + (["ipv6"] if any(n.subnet.version == 6 for n in plan.networks) else [])
    for family in families:
        found = gc_thresholds(family)
        if found is None:
            continue
        one, two, three = found
        share = three // 2
        if need.dynamic <= share:
            continue
        table = "ARP" if family == "ipv4" else "NDP"
        key = f"net.{family}.neigh.default"
        bigger = max(4096, 1 << (2 * need.dynamic).bit_length())
        return (
            f"lab {plan.name} may need {need.dynamic} learnt {table} entries at once "
            f"({need.why}), beyond its share of the host's neighbour table: {share}, half of "
            f"{key}.gc_thresh3={three} (gc_thresh1={one}, gc_thresh2={two}), which every "
            f"network namespace of this machine shares; past it the kernel refuses entries "
            f"('neighbor table overflow!') and traffic fails, the host's own too. Its "
            f"{need.permanent} permanent entries do not count. To build it, raise the "
            f"thresholds on the host (as root; multihome never changes them): sysctl -w "
            f"{key}.gc_thresh1={bigger // 4} {key}.gc_thresh2={bigger // 2} "
            f"{key}.gc_thresh3={bigger}; or attach fewer pods at once "
            f"(MULTIHOME_ATTACH_WORKERS={max(1, workers // 2)})"
        )
    return None


def check(plan: Plan) -> None:
    """Raise PreflightError when the machine can't build ``plan``."""
    packages = missing_packages()
    if packages:
        raise PreflightError(
            f"missing system packages: {', '.join(packages)} "
            f"(install them: apt-get install {' '.join(packages)})"
        )
    calico = canal.plugin_problem()
    if calico:
        raise PreflightError(f"{calico}.\nNothing was built.")
    short = neighbour_budget(plan, attach_workers(), neighbours.PROBES_AT_ONCE)
    if short:
        raise PreflightError(f"{short}.\nNothing was built.")
    needs = _needs(plan)
    lacking = link_kinds_unavailable(tuple(sorted(needs)))
    if not lacking:
        return
    config = kernel_config()
    lines = []
    for kind, why in sorted(lacking.items()):
        feature = FEATURES.get(kind, Feature(kind, kind, None))
        users = "; ".join(
            f"{label}: {_first(pods)}" if pods else label for label, pods in needs[kind].items()
        )
        lines.append(
            f"this kernel has no {feature.words} ({feature.option}): making one fails with "
            f"{why!r}. Needed by {users}. To get it: {how_to_get(feature, config)}"
        )
    raise PreflightError("\n".join(lines) + "\nNothing was built.")


def _first(users: list[str]) -> str:
    shown = users[:_SHOWN_PODS]
    more = len(users) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")
