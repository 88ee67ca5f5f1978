"""Faults: break a running lab on purpose, and undo it (``multihome fault``).

Each fault is recorded in the lab's journal (``kind: fault``, named by its number) BEFORE it
is applied, with every change it is about to make (its *effects*), and marked ``done`` once
applied; ``clear`` and the inverse verbs undo the effects and mark it ``removed``. A fault
recorded but never (or half) applied, after a crash, is undone the same way: every undo step
is idempotent. ``down`` needs nothing of this: every fault lives inside the lab's sandbox
(links and qdiscs of its namespaces, processes of its PID namespace), which ``down`` removes
whole; a process held by SIGSTOP still dies by the SIGKILL of ``processes.stop_recorded``.

The verbs and what they model:

- ``cut NETWORK``: a dead switch. Every port of the network's bridge (the switch ends of the
  machines' veths, in the sandbox's own namespace) is set down, so each NIC on the segment
  loses its carrier (NO-CARRIER), as a NIC plugged into a powered-off switch does; setting
  the bridge itself down would leave every NIC with carrier, a hung switch nobody notices.
  ``mend NETWORK`` sets the same ports up.
- ``link-down NODE:NIC``: one machine (node or host) loses one NIC: the NIC itself, inside the
  machine, is set down. ``link-up`` sets it up.
- ``stop-dhcp NETWORK``: the network's dnsmasq is frozen (SIGSTOP): it answers nothing, and the
  leases it handed out stay in its memory and lease file until ``start-dhcp`` (SIGCONT), as a
  server that stops and comes back with the same lease database.
- ``stop NODE``: the machine goes away: its NICs down and the processes of its pods, its CNI
  dhcp daemon (a host: its servers) frozen. ``start`` brings them back.
- ``rate NODE:NIC RATE``: the NIC's egress shaped by a tbf qdisc (``RATE`` as tc writes it:
  ``10mbit``, ``500kbit``, ``1gbit``...; ``off`` removes it).

Only a process the lab recorded is signalled, and only when it still proves it is that one
(``processes.proves``: PID + start time + the lab's and its own token). Only links that are
up when the fault is applied are recorded, and an undo leaves down what another active fault
still holds down: faults can overlap (``stop`` a node one of whose NICs is ``link-down``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from . import processes, sandbox
from .names import fit
from .state import LabState

KIND = "fault"
APPLY = ("cut", "link-down", "stop-dhcp", "stop", "rate")
UNDO = {"mend": "cut", "link-up": "link-down", "start-dhcp": "stop-dhcp", "start": "stop"}
VERBS = (*APPLY, *UNDO, "list", "clear")
_RATE = re.compile(r"(?i)(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit|tbit|bps|kbps|mbps|gbps|tbps)")
_RATE_UNITS = {"bit": 1, "kbit": 1e3, "mbit": 1e6, "gbit": 1e9, "tbit": 1e12}
TBF_LATENCY = "50ms"
UP_WAIT = 3.0


class FaultError(RuntimeError):
    """A fault could not be tried (``code`` 2: a bad verb or target, a lab not up) or failed
    (``code`` 1)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Fault:
    """One recorded fault: ``number``, what was asked (``verb``, ``target``, ``rate``), what
    it changes (``effects``) and whether it was applied in full (``applied``)."""

    number: int
    verb: str
    target: str
    effects: tuple[dict[str, Any], ...] = ()
    rate: str | None = None
    applied: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"fault {self.number}"

    @property
    def network(self) -> str | None:
        """The network it breaks whole (cut, stop-dhcp)."""
        return self.target if self.verb in ("cut", "stop-dhcp") else None

    @property
    def machine(self) -> str:
        return self.target.split(":", 1)[0]

    @property
    def nic(self) -> str | None:
        return self.target.split(":", 1)[1] if ":" in self.target else None

    def text(self) -> str:
        """``vlan50 is cut``: what the fault does, in a user's words."""
        words = {
            "cut": f"{self.target} is cut",
            "link-down": f"{self.target} is down",
            "stop-dhcp": f"the DHCP server of {self.target} is stopped",
            "stop": f"{self.target} is stopped",
            "rate": f"{self.target} is shaped to {self.rate}",
        }
        said = words.get(self.verb, f"{self.verb} {self.target}")
        return said if self.applied else f"{said} (recorded, maybe not applied: fault clear)"

    def cause(self) -> str:
        """``vlan50 is cut (fault 1)``: for a check's likely cause."""
        return f"{self.text()} ({self.label})"

    def command(self) -> str:
        return " ".join(w for w in (self.verb, self.target, self.rate) if w)

    def to_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "verb": self.verb,
            "target": self.target,
            "rate": self.rate,
            "applied": self.applied,
            "text": self.text(),
        }


# -- reading --------------------------------------------------------------------------------
def recorded(state: LabState) -> list[Fault]:
    """The lab's active faults (recorded and not removed), by number."""
    found = []
    for (kind, _), entry in state.objects().items():
        if kind != KIND:
            continue
        try:
            number = int(entry["number"])
            effects = tuple(e for e in entry.get("effects") or () if isinstance(e, dict))
            found.append(
                Fault(
                    number=number,
                    verb=str(entry["verb"]),
                    target=str(entry["target"]),
                    effects=effects,
                    rate=str(entry["rate"]) if entry.get("rate") else None,
                    applied=entry.get("phase") == "done",
                )
            )
        except (KeyError, TypeError, ValueError):
            continue
    return sorted(found, key=lambda f: f.number)


def active(name: str | None = None) -> list[Fault]:
    """The active faults of lab ``name`` (the one lab up when None); reads the journal only
    (no lock needed: each entry is one line written at once)."""
    from .api import LabError, resolve_name

    try:
        state = LabState(resolve_name(name))
        return recorded(state) if state.is_lab() else []
    except (LabError, OSError, RuntimeError):
        return []


def _next_number(state: LabState) -> int:
    numbers = [0]
    for entry in state.entries():
        if entry.get("kind") == KIND:
            try:
                numbers.append(int(entry.get("number", 0)))
            except (TypeError, ValueError):
                continue
    return max(numbers) + 1


# -- the lab as the faults see it ----------------------------------------------------------
@dataclass
class _Lab:
    state: LabState
    status: dict[str, Any]
    sb: sandbox.Sandbox

    @property
    def name(self) -> str:
        return self.state.name

    def machines(self) -> dict[str, dict[str, Any]]:
        return {m["name"]: m for m in (*self.status["nodes"], *self.status["hosts"])}

    def networks(self) -> dict[str, dict[str, Any]]:
        return {n["name"]: n for n in self.status["networks"]}

    # -- commands inside the sandbox ------------------------------------------------------
    def run(self, tool: str, args: list[str], netns: str | None, *, quiet: bool = False) -> str:
        argv = self.sb.command([tool, *args], netns=netns)
        done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
        if done.returncode != 0 and not quiet:
            said = (done.stderr or done.stdout).strip() or f"exit code {done.returncode}"
            where = netns or "the lab's switch"
            raise FaultError(f"{tool} {' '.join(args)} in {where} failed: {said}", code=1)
        return done.stdout

    def links(self, netns: str | None) -> list[dict[str, Any]]:
        text = self.run("ip", ["-j", "link", "show"], netns)
        data = json.loads(text or "[]")
        return [d for d in data if isinstance(d, dict)]


def _open(name: str | None) -> _Lab:
    from .api import LabError, resolve_name, status

    try:
        lab = resolve_name(name)
        data = status(lab)
    except LabError as exc:
        raise FaultError(str(exc), code=exc.code or 2) from exc
    if not data.get("running"):
        raise FaultError(f"lab {lab!r} is not running (its sandbox is gone)")
    return _Lab(LabState(lab), data, sandbox.Sandbox.from_dict(data["sandbox"]))


def _names(items: Iterable[str]) -> str:
    listed = sorted(items)
    return ", ".join(listed) if listed else "none"


def _network(lab: _Lab, target: str, *, dhcp: bool = False) -> dict[str, Any]:
    nets = lab.networks()
    if dhcp:
        nets = {k: v for k, v in nets.items() if v.get("dhcp")}
    if target not in nets:
        what, them = ("network with a DHCP server", "networks with one") if dhcp else (
            "network", "networks")  # fmt: skip
        raise FaultError(f"lab {lab.name!r} has no {what} {target!r}: {them} are {_names(nets)}")
    return nets[target]


def _machine(lab: _Lab, target: str) -> dict[str, Any]:
    machines = lab.machines()
    if target not in machines:
        raise FaultError(
            f"lab {lab.name!r} has no node or host {target!r}: there are {_names(machines)}"
        )
    return machines[target]


def _machine_nic(lab: _Lab, target: str) -> tuple[dict[str, Any], str]:
    machine_name, sep, nic = target.partition(":")
    if not sep or not machine_name or not nic:
        raise FaultError(
            f"{target!r} is not NODE:NIC (e.g. multi-homed-wrk-1:ens256): name a node or "
            f"host and one of its NICs"
        )
    machine = _machine(lab, machine_name)
    nics = [c["name"] for c in machine.get("nics") or ()]
    if nic not in nics:
        raise FaultError(f"{machine_name} has no NIC {nic!r}: its NICs are {_names(nics)}")
    return machine, nic


def _rate_bits(rate: str) -> float:
    found = _RATE.fullmatch(rate)
    if not found:
        raise FaultError(
            f"{rate!r} is not a rate: write it as tc does, e.g. 10mbit, 500kbit, 1gbit "
            "(or off to remove the shaping)"
        )
    value, unit = float(found.group(1)), found.group(2).lower()
    if unit in _RATE_UNITS:
        bits = value * _RATE_UNITS[unit]
    else:  # tc's bps are bytes per second
        bits = 8 * value * _RATE_UNITS[unit[:-3] + "bit" if unit != "bps" else "bit"]
    if bits < 8:
        raise FaultError(f"{rate!r} is too slow a rate for tbf: give at least 8bit")
    return bits


# -- effects -------------------------------------------------------------------------------
def _up_links(lab: _Lab, netns: str | None, names: Iterable[str]) -> list[dict[str, Any]]:
    """The links of ``names`` that are up, each with the routes that setting it down makes
    the kernel drop (the static ones, not those of its addresses), to put back as the
    machine's network configuration (netplan) and Canal's routes would when it comes back."""
    wanted = set(names)
    found = []
    for d in lab.links(netns):
        if d.get("ifname") not in wanted or "UP" not in (d.get("flags") or ()):
            continue
        dev = str(d["ifname"])
        routes = json.loads(lab.run("ip", ["-j", "route", "show", "dev", dev], netns) or "[]")
        kept = [_route_args(r) for r in routes if isinstance(r, dict)]
        found.append({"kind": "link", "netns": netns, "dev": dev,
                      "routes": [r for r in kept if r]})  # fmt: skip
    return found


def _route_args(route: dict[str, Any]) -> list[str]:
    """``ip route replace`` arguments for a route as ``ip -j route show dev X`` gives it,
    or ``[]`` for one the kernel makes again itself (an address's link route)."""
    if route.get("protocol") == "kernel" or not route.get("dst"):
        return []
    args = [str(route["dst"])]
    if route.get("gateway"):
        args += ["via", str(route["gateway"])]
    if "onlink" in (route.get("flags") or ()):
        args.append("onlink")
    for key in ("metric", "scope", "protocol"):
        if route.get(key) not in (None, "", "universe"):
            args += [key, str(route[key])]
    if route.get("prefsrc"):
        args += ["src", str(route["prefsrc"])]
    return args


def _processes(lab: _Lab, netns: set[str], names: set[str]) -> list[dict[str, Any]]:
    """The lab's recorded processes in one of ``netns`` or named in ``names``."""
    return [
        {"kind": "process", "name": name}
        for (kind, name), entry in lab.state.objects().items()
        if kind == "process" and (entry.get("netns") in netns or name in names)
    ]


def _effects(lab: _Lab, verb: str, target: str, rate: str | None) -> list[dict[str, Any]]:
    """What ``verb target`` will change (checked against what exists: ``FaultError``)."""
    if verb == "cut":
        bridge = _network(lab, target)["bridge"]
        ports = [d["ifname"] for d in lab.links(None) if d.get("master") == bridge]
        return _up_links(lab, None, ports)
    if verb == "stop-dhcp":
        _network(lab, target, dhcp=True)
        name = fit(f"dnsmasq-{target}")
        return [{"kind": "process", "name": name}]
    if verb == "link-down":
        machine, nic = _machine_nic(lab, target)
        return _up_links(lab, machine["netns"], [nic])
    if verb == "stop":
        machine = _machine(lab, target)
        nics = [c["name"] for c in machine.get("nics") or ()]
        pods = {p["netns"] for p in lab.status["pods"] if p.get("node") == target}
        return [
            *_processes(lab, {machine["netns"], *pods}, set()),
            *_up_links(lab, machine["netns"], nics),
        ]
    if verb == "rate":
        machine, nic = _machine_nic(lab, target)
        assert rate is not None
        bits = _rate_bits(rate)
        mtu = next((int(d.get("mtu", 1500)) for d in lab.links(machine["netns"])
                    if d.get("ifname") == nic), 1500)  # fmt: skip
        burst = max(2 * mtu + 100, int(bits / 8 / 100))  # 10 ms worth, at least 2 frames
        return [{"kind": "qdisc", "netns": machine["netns"], "dev": nic, "rate": rate,
                 "burst": burst}]  # fmt: skip
    raise FaultError(f"unknown fault verb {verb!r}: one of {', '.join(VERBS)}")


def _signal(lab: _Lab, name: str, sig: int) -> None:
    entry = lab.state.objects().get(("process", name))
    if not entry or "pid" not in entry or not entry.get("token"):
        return
    try:
        pid, started = int(entry["pid"]), int(entry["start_time"])
    except (KeyError, TypeError, ValueError):
        return
    env = {processes.ENV_TOKEN: str(entry["token"]), processes.ENV_LAB: lab.state.token}
    if processes.proves(pid, started, env):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        _wait_signalled(pid, stopped=sig == signal.SIGSTOP)


def _wait_signalled(pid: int, *, stopped: bool, timeout: float = 2.0) -> None:
    """Wait until the kernel has acted on a SIGSTOP/SIGCONT (delivery is asynchronous), so
    the fault is in place when the command returns."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return
        if (state in ("T", "t")) == stopped:
            return
        time.sleep(0.005)


def _do(lab: _Lab, effect: dict[str, Any]) -> None:
    kind = effect.get("kind")
    if kind == "link":
        lab.run("ip", ["link", "set", "dev", str(effect["dev"]), "down"], effect.get("netns"))
    elif kind == "process":
        _signal(lab, str(effect["name"]), signal.SIGSTOP)
    elif kind == "qdisc":
        lab.run(
            "tc",
            ["qdisc", "replace", "dev", str(effect["dev"]), "root", "tbf",
             "rate", str(effect["rate"]), "burst", str(effect["burst"]),
             "latency", TBF_LATENCY],
            effect.get("netns"),
        )  # fmt: skip


def _key(effect: dict[str, Any]) -> tuple[Any, ...]:
    return (effect.get("kind"), effect.get("netns"), effect.get("dev"), effect.get("name"))


def _undo_effect(lab: _Lab, effect: dict[str, Any]) -> None:
    kind = effect.get("kind")
    if kind == "link":
        dev, netns = str(effect["dev"]), effect.get("netns")
        lab.run("ip", ["link", "set", "dev", dev, "up"], netns)
        for route in effect.get("routes") or ():
            lab.run("ip", ["route", "replace", *map(str, route), "dev", dev], netns)
    elif kind == "process":
        _signal(lab, str(effect["name"]), signal.SIGCONT)
    elif kind == "qdisc":  # gone already (a crash before it was made): nothing to undo
        lab.run("tc", ["qdisc", "del", "dev", str(effect["dev"]), "root"],
                effect.get("netns"), quiet=True)  # fmt: skip


def _undo(lab: _Lab, fault: Fault, others: list[Fault]) -> None:
    held = {_key(e) for f in others if f.number != fault.number for e in f.effects}
    undone = [e for e in reversed(fault.effects) if _key(e) not in held]
    for effect in undone:
        _undo_effect(lab, effect)
    _settle(lab, [e for e in undone if e.get("kind") == "link"])
    lab.state.record(KIND, str(fault.number), phase="removed")


def _settle(lab: _Lab, links: list[dict[str, Any]], timeout: float = UP_WAIT) -> None:
    """Wait (at most ``timeout`` s) until the links set up again are operationally up: the
    kernel starts a link's queueing only when its link watcher has seen the carrier (up to a
    second later, more on a busy machine); until then what is sent is dropped. A link that
    stays down (another fault holds its peer down) just ends the wait."""
    pending = {(e.get("netns"), str(e["dev"])) for e in links}
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for netns in {n for n, _ in pending}:
            for link in lab.links(netns):
                if link.get("operstate") in ("UP", "UNKNOWN"):
                    pending.discard((netns, str(link.get("ifname"))))
        if pending:
            time.sleep(0.05)


# -- the verbs ------------------------------------------------------------------------------
def _same(fault: Fault, verb: str, target: str) -> bool:
    return fault.verb == verb and fault.target == target


def apply(name: str | None, verb: str, target: str, rate: str | None = None) -> Fault:
    """Record, then apply, the fault ``verb target`` (``rate`` for ``rate``)."""
    if verb not in APPLY:
        raise FaultError(f"unknown fault verb {verb!r}: one of {', '.join(VERBS)}")
    lab = _open(name)
    with lab.state.lock():
        faults = recorded(lab.state)
        if verb == "rate" and rate is not None and rate.lower() == "off":
            _machine_nic(lab, target)
            old = next((f for f in faults if _same(f, verb, target)), None)
            if old is None:
                raise FaultError(f"{target} is not shaped: {_listing(faults)}")
            _undo(lab, old, faults)
            return old
        for fault in faults:
            if _same(fault, verb, target) and verb != "rate":
                raise FaultError(f"{fault.text()} already ({fault.label})")
        effects = _effects(lab, verb, target, rate)
        for old in [f for f in faults if _same(f, verb, target)]:  # a new rate replaces it
            _undo(lab, old, faults)
            faults.remove(old)
        number = _next_number(lab.state)
        data = {"number": number, "verb": verb, "target": target, "rate": rate,
                "effects": effects}  # fmt: skip
        lab.state.record(KIND, str(number), phase="intent", **data)
        for effect in effects:
            _do(lab, effect)
        lab.state.record(KIND, str(number), phase="done")
        return Fault(number, verb, target, tuple(effects), rate)


def undo(name: str | None, verb: str, target: str) -> Fault:
    """The inverse verb (``mend``, ``link-up``, ``start-dhcp``, ``start``): undo the fault it
    names."""
    wanted = UNDO[verb]
    lab = _open(name)
    with lab.state.lock():
        faults = recorded(lab.state)
        fault = next((f for f in faults if _same(f, wanted, target)), None)
        if fault is None:
            _effects(lab, wanted, target, None)  # a target that does not exist says so
            raise FaultError(f"no {wanted} fault on {target} to undo: {_listing(faults)}")
        _undo(lab, fault, faults)
        return fault


def clear(name: str | None) -> list[Fault]:
    """Undo every fault of the lab (newest first); returns them."""
    lab = _open(name)
    with lab.state.lock():
        faults = recorded(lab.state)
        for fault in reversed(faults):
            _undo(lab, fault, [f for f in faults if f.number < fault.number])
        return faults


def _listing(faults: list[Fault]) -> str:
    if not faults:
        return "the lab has no faults"
    return "its faults are " + "; ".join(f"{f.number}: {f.command()}" for f in faults)


def remove(name: str | None, numbers: Iterable[int]) -> list[Fault]:
    """Undo the faults of these numbers (newest first), e.g. those a scenario applied."""
    wanted = set(numbers)
    lab = _open(name)
    with lab.state.lock():
        faults = recorded(lab.state)
        undone = [f for f in faults if f.number in wanted]
        for fault in reversed(undone):
            _undo(lab, fault, faults)
            faults.remove(fault)
        return undone
