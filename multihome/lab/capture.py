"""``multihome capture``: Debian's tcpdump on any wire of a running lab, run inside the lab's
namespaces through the sandbox (as ``exec`` runs commands).

A target is a network (its whole segment: the bridge that is the VLAN), a node's or a host's
NIC (``multi-homed-wrk-1:ens224``), or a pod's interface (``ns/pod:net1``). Without root,
tcpdump can't run inside the lab (see ``SNIFFER``): a packet socket there streams the pcap to
tcpdump outside. tcpdump (or the sniffer) is our child's child (nsenter forks into the
sandbox's PID namespace); it is stopped by its PID, proven by its start time and a token in
its environment, with SIGINT (so a pcap is complete and tcpdump prints its counts), and
SIGKILLed if it does not go: nothing is left running.
"""

from __future__ import annotations

import os
import secrets
import signal
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import IO, Any

from . import api, processes, sandbox

TCPDUMP = "tcpdump"
SHOWN = 12
"""At most this many names of each kind in an error message."""


class CaptureError(api.LabError):
    """A bad target or filter (code 2), or tcpdump that could not start."""


@dataclass(frozen=True)
class Wire:
    """Where tcpdump listens: ``iface`` in ``netns`` (None: the sandbox's own namespace,
    where the segments' bridges are)."""

    what: str
    iface: str
    netns: str | None


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    more = len(items) - SHOWN
    return shown + (f" and {more} more" if more > 0 else "") if items else "(none)"


def _pod_ifaces(pod: Mapping[str, Any]) -> list[str]:
    return [e["interface"] for e in pod.get("network_status", []) if e.get("interface")]


def resolve(target: str, data: Mapping[str, Any]) -> Wire:
    """The wire TARGET names in the running lab ``data`` (its status)."""
    lab = data["name"]
    networks = {n["name"]: n for n in data["networks"]}
    if target in networks:
        net = networks[target]
        return Wire(f"network {target} (segment {net['bridge']})", net["bridge"], None)
    owner, sep, iface = target.rpartition(":")
    machines: dict[str, tuple[str, str, list[str]]] = {}
    for node in data["nodes"]:
        machines[node["name"]] = ("node", node["netns"], [c["name"] for c in node["nics"]])
    for host in data["hosts"]:
        machines[host["name"]] = ("host", host["netns"], [c["name"] for c in host["nics"]])
    pods = {f"{p['namespace']}/{p['name']}": p for p in data["pods"]}
    name = owner if sep else target
    if name in machines:
        kind, netns, nics = machines[name]
        if sep and iface in nics:
            return Wire(f"{kind} {name} NIC {iface}", iface, netns)
        said = f"{kind} {name} has no NIC {iface!r}" if sep else f"{name} is a {kind}"
        raise CaptureError(
            f"{said}; its NICs: {_names(nics)} (name one: {name}:{nics[0] if nics else 'NIC'})",
            code=2,
        )
    if name in pods:
        pod = pods[name]
        ifaces = _pod_ifaces(pod)
        if pod.get("phase", "Running") != "Running" or not pod.get("netns"):
            raise CaptureError(f"pod {name} is {pod.get('phase')}: no interfaces to capture on")
        if sep and iface in ifaces:
            return Wire(f"pod {name} interface {iface}", iface, pod["netns"])
        said = f"pod {name} has no interface {iface!r}" if sep else f"{name} is a pod"
        raise CaptureError(
            f"{said}; its interfaces: {_names(ifaces)} (name one: {name}:{ifaces[0]})", code=2
        )
    nics = [f"{m}:{n}" for m, (_, _, ns) in machines.items() for n in ns]
    pod_ifs = [f"{ref}:{i}" for ref, p in pods.items() for i in _pod_ifaces(p)]
    raise CaptureError(
        f"no network, NIC or pod interface {target!r} in lab {lab!r}. "
        f"Networks: {_names(list(networks))}. NICs: {_names(nics)}. "
        f"Pod interfaces: {_names(pod_ifs)}",
        code=2,
    )


def tcpdump_argv(
    wire: Wire, expression: Sequence[str], *, count: int | None, to_pcap: bool
) -> list[str]:
    """tcpdump's argv: no name lookups, no privilege drop (inside the sandbox's user
    namespace "root" is the user who runs the lab), each packet handed over as it comes
    (``--immediate-mode``: else a stop within the kernel's block timeout loses the last
    packets), a pcap on stdout or decoded lines."""
    argv = [TCPDUMP, "-i", wire.iface, "-n", "-Z", "root", "--immediate-mode"]
    argv += ["-U", "-w", "-"] if to_pcap else ["-l"]
    if count is not None:
        argv += ["-c", str(count)]
    return [*argv, "--", *expression]


@dataclass
class _Child:
    pid: int
    started: int
    token: str

    def signal(self, sig: int) -> None:
        if processes.proves(self.pid, self.started, {processes.ENV_TOKEN: self.token}):
            os.kill(self.pid, sig)


def _tcpdump_of(nsenter: subprocess.Popen[bytes], token: str, timeout: float) -> _Child | None:
    """The tcpdump that nsenter forked (None: nsenter ended first)."""
    deadline = time.monotonic() + timeout
    path = f"/proc/{nsenter.pid}/task/{nsenter.pid}/children"
    while time.monotonic() < deadline and nsenter.poll() is None:
        try:
            with open(path) as fh:
                pids = [int(p) for p in fh.read().split()]
        except OSError:
            pids = []
        for pid in pids:
            started = processes.start_time(pid)
            if started is not None and processes.proves(pid, started, {processes.ENV_TOKEN: token}):
                return _Child(pid, started, token)
        time.sleep(0.01)
    return None


def _reader_argv(expression: Sequence[str], count: int | None, to_pcap: bool) -> list[str]:
    """tcpdump reading the sniffer's pcap stream: filters, counts, decodes or writes it."""
    argv = [TCPDUMP, "-r", "-", "-n", *(["-U", "-w", "-"] if to_pcap else ["-l"])]
    if count is not None:
        argv += ["-c", str(count)]
    return [*argv, "--", *expression]


def _relay(proc: subprocess.Popen[bytes], listening: threading.Event) -> None:
    """tcpdump's stderr to ours, as it comes; ``listening`` set once the capture is open."""
    assert proc.stderr is not None
    for line in iter(proc.stderr.readline, b""):
        if b"listening on " in line:
            listening.set()
        sys.stderr.buffer.write(line)
        sys.stderr.buffer.flush()


PCAP_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1)
"""A pcap file's global header: Ethernet, microseconds, 256 KiB snapshots."""


def _check_filter(expression: Sequence[str]) -> None:
    """tcpdump compiles the filter (``-d``, for Ethernet) before capturing: a bad one is one
    message (tcpdump's own words) and exit 2."""
    if not expression:
        return
    argv = [TCPDUMP, "-r", "-", "-d", "--", *expression]
    done = subprocess.run(argv, input=PCAP_HEADER, capture_output=True, check=False)
    if done.returncode != 0:
        why = done.stderr.decode(errors="replace").strip().splitlines()
        raise CaptureError(
            f"tcpdump refuses the filter {' '.join(expression)!r}: {why[-1] if why else '?'}",
            code=2,
        )


# Without root, the sandbox's user namespace can't set groups, and Debian's tcpdump drops its
# privileges (initgroups) after opening the capture, which fails there. So an unprivileged lab
# reads the wire with a packet socket inside the namespace, streams a pcap out, and tcpdump
# (run as the user, outside: it drops nothing) filters, decodes or writes it.
SNIFFER = r"""
import signal, socket, struct, sys, time
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
iface, out = sys.argv[1], sys.stdout.buffer
sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
sock.bind((iface, 0))
try:
    out.write(bytes.fromhex(sys.argv[2])); out.flush()
    sys.stderr.write("listening on %s, link-type EN10MB (Ethernet) (a packet socket: "
                     "the lab runs without root)\n" % iface); sys.stderr.flush()
    while True:
        data = sock.recv(262144)
        now = time.time()
        out.write(struct.pack("<IIII", int(now), int(now % 1 * 1e6), len(data), len(data)))
        out.write(data); out.flush()
except BrokenPipeError:
    pass
"""


def capture(
    target: str,
    expression: Sequence[str] = (),
    *,
    name: str | None = None,
    count: int | None = None,
    pcap: IO[bytes] | None = None,
    started: Any = None,
) -> int:
    """Capture on TARGET until COUNT packets, or SIGINT/SIGTERM/SIGHUP to this process;
    returns tcpdump's exit code (0 when stopped). ``pcap``: where the pcap goes (else decoded
    lines on stdout). ``started(wire)`` is called once tcpdump runs."""
    data = api.status(name)
    if not data["running"]:
        raise CaptureError(f"lab {data['name']!r} is not running (its sandbox is gone)", code=2)
    wire = resolve(target, data)
    sb = sandbox.Sandbox.from_dict(data["sandbox"])
    _check_filter(expression)
    token = secrets.token_hex(16)
    env = dict(os.environ, **{processes.ENV_TOKEN: token, processes.ENV_LAB: sb.token})
    reader: subprocess.Popen[bytes] | None = None
    if os.geteuid() == 0:
        inner = tcpdump_argv(wire, expression, count=count, to_pcap=pcap is not None)
    else:
        inner = [sys.executable, "-I", "-S", "-c", SNIFFER, wire.iface, PCAP_HEADER.hex()]
    argv = sb.command(inner, netns=wire.netns)
    stop_requested: list[int] = []
    child: _Child | None = None

    def stop(signum: int, _frame: Any) -> None:
        stop_requested.append(signum)
        if child is not None:
            child.signal(signal.SIGINT)

    handled = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    old = {s: signal.signal(s, stop) for s in handled}
    if os.geteuid() == 0:
        proc = subprocess.Popen(
            argv, stdout=pcap, stderr=subprocess.PIPE, env=env, start_new_session=True
        )
    else:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, start_new_session=True
        )
        reader = subprocess.Popen(
            _reader_argv(expression, count, pcap is not None),
            stdin=proc.stdout,
            stdout=pcap,
            start_new_session=True,
        )
        assert proc.stdout is not None
        proc.stdout.close()  # the reader's now: its end makes the sniffer's writes fail
    listening = threading.Event()
    relay = threading.Thread(target=_relay, args=(proc, listening), daemon=True)
    relay.start()
    try:
        child = _tcpdump_of(proc, token, timeout=10.0)
        if child is not None and stop_requested:
            child.signal(signal.SIGINT)
        # "listening on" is tcpdump's word that the capture is open: from then on, no
        # packet on the wire is missed
        deadline = time.monotonic() + 10.0
        while child is not None and not listening.wait(0.05):
            if proc.poll() is not None or time.monotonic() > deadline:
                break
        if listening.is_set() and started is not None:
            started(wire)
        if reader is not None:
            code = reader.wait()  # COUNT reached, or the sniffer stopped (its pipe ended)
            if child is not None:
                child.signal(signal.SIGINT)
            proc.wait()
        else:
            code = proc.wait()
        relay.join(5.0)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        _reap(proc, child)
        if reader is not None and reader.poll() is None:
            reader.terminate()
            reader.wait()
    return 0 if stop_requested and code in (0, -signal.SIGINT, 130) else code


def _reap(proc: subprocess.Popen[bytes], child: _Child | None, grace: float = 3.0) -> None:
    """tcpdump and nsenter gone, whatever happened (SIGINT first, SIGKILL after ``grace``)."""
    if child is not None:
        deadline = time.monotonic() + grace
        child.signal(signal.SIGINT)
        while processes.proves(child.pid, child.started, {processes.ENV_TOKEN: child.token}):
            if time.monotonic() > deadline:
                child.signal(signal.SIGKILL)
            time.sleep(0.02)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
