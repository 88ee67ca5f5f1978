"""What the exec tier reads in a pod, through a ``Runner`` (``cluster.podexec.Exec``): its
interfaces and routes (``ip addr``, ``ip route``, ``ip route get``, parsed from iproute2's
or busybox's text), and probes with the tools its image has (ping; wget, else curl; nc),
as ``ProbeResult``s. A tool the image lacks is ``NOT_MEASURED`` evidence naming it. Without
exec, ``status_facts`` gives a pod's interfaces as its network-status records them."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import re
import time
from typing import Protocol

from multihome.cluster.podexec import ExecResult

from .checks.base import NOT_MEASURED
from .collect import Iface, NetnsFacts, Route, RouteTo
from .liveview import Live
from .probes import Probe, ProbeResult
from .view import PodView

_LINK = re.compile(r"^\d+:\s+([^:@\s]+)(?:@\S+)?:\s+<([^>]*)>")
_ADDR = re.compile(r"^\s+inet\s+(\S+)")
_MAC = re.compile(r"^\s+link/\S+\s+([0-9a-fA-F:]{17})")


def parse_addr(text: str) -> dict[str, Iface]:
    """``ip addr show`` (iproute2's or busybox's) -> interfaces with their IPv4 addresses."""
    found: dict[str, Iface] = {}
    current: Iface | None = None
    for line in text.splitlines():
        if m := _LINK.match(line):
            current = Iface(m.group(1), None, "UP" in m.group(2).split(","), None, ())
            found[current.name] = current
        elif current is not None and (m := _MAC.match(line)):
            current = dataclasses.replace(current, mac=m.group(1).lower())
            found[current.name] = current
        elif current is not None and (m := _ADDR.match(line)):
            current = dataclasses.replace(current, addresses=(*current.addresses, m.group(1)))
            found[current.name] = current
    return found


def _word(words: list[str], key: str) -> str | None:
    return words[words.index(key) + 1] if key in words[:-1] else None


def parse_routes(text: str) -> tuple[Route, ...]:
    """``ip route show`` -> the main table's routes."""
    routes = []
    for line in text.splitlines():
        words = line.split()
        if not words or words[0] in ("broadcast", "local", "unreachable", "prohibit"):
            continue
        routes.append(Route(words[0], _word(words, "via"), _word(words, "dev")))
    return tuple(routes)


def parse_route_get(text: str) -> RouteTo | None:
    words = text.split()
    if "dev" not in words:
        return None
    return RouteTo(_word(words, "dev"), _word(words, "via"), _word(words, "src"))


def status_facts(view: PodView) -> NetnsFacts:
    """A pod's interfaces as its network-status records them (no exec)."""
    ifaces = {
        str(e.get("interface")): Iface(
            str(e.get("interface")),
            e.get("mac"),
            True,
            "network-status",
            tuple(str(ip) for ip in e.get("ips") or ()),
        )
        for e in view.network_status
        if e.get("interface")
    }
    return NetnsFacts(ifaces=ifaces, origin="network-status")


class Runner(Protocol):
    """What runs a command in a pod: ``podexec.Exec`` (or a test's stand-in)."""

    async def run(
        self, namespace: str, pod: str, command: list[str], container: str | None, timeout: float
    ) -> ExecResult: ...


class PodReader:
    """Runs the collector's commands in the design's pods (a ``Runner``)."""

    def __init__(self, live: Live, runner: Runner) -> None:
        self.live = live
        self.runner = runner

    async def run(self, key: str, command: list[str], timeout: float = 10.0) -> ExecResult:
        t = self.live.pods[key]
        return await self.runner.run(t.namespace, t.name, command, t.container, timeout)

    def _who(self, key: str) -> str:
        t = self.live.pods[key]
        return f"{t.namespace}/{t.name}"

    async def facts(self, key: str) -> NetnsFacts:
        addr, route = await asyncio.gather(
            self.run(key, ["ip", "addr", "show"]), self.run(key, ["ip", "route", "show"])
        )
        for result in (addr, route):
            if result.missing:
                return NetnsFacts(error=f"{NOT_MEASURED}{self._who(key)}'s image has no ip")
            if not result.ok:
                why = result.error or result.stderr.strip() or f"exit code {result.code}"
                return NetnsFacts(error=f"ip in {self._who(key)}: {why}")
        return NetnsFacts(ifaces=parse_addr(addr.stdout), routes=parse_routes(route.stdout))

    async def route(self, key: str, dst: str) -> RouteTo | None:
        result = await self.run(key, ["ip", "route", "get", dst])
        return parse_route_get(result.stdout) if result.ok else None

    async def probe(self, probe: Probe) -> ProbeResult:
        """Up to ``attempts`` tries (one for ``deny``), each waiting whole seconds (what
        ping's and busybox's ``-W`` take): an allowed path that needs a moment (a neighbour
        being resolved, a dead gateway given up on) answers a later try, as in the lab's
        own probes."""
        started = time.monotonic()
        attempts = probe.attempts if probe.want == "allow" else 1
        seconds = max(1, math.ceil(probe.deadline / max(1, attempts)))
        result: ProbeResult | None = None
        for tries in range(1, attempts + 1):
            result = await self._once(probe, seconds, tries, started)
            if result.outcome in ("answered", "refused", "error"):
                break
        assert result is not None
        return result

    async def _once(self, probe: Probe, seconds: int, tries: int, started: float) -> ProbeResult:
        host = f"[{probe.dst}]" if ":" in probe.dst else probe.dst
        port = str(probe.port or 80)
        if probe.proto == "icmp":
            choices = [["ping", "-c", "1", "-W", str(seconds), probe.dst]]
        elif probe.proto == "http":
            url = f"http://{host}:{port}/"
            choices = [
                ["wget", "-q", "-O", "/dev/null", "-T", str(seconds), url],
                ["curl", "-s", "-o", "/dev/null", "-m", str(seconds), url],
            ]
        elif probe.proto == "tcp":
            choices = [["nc", "-z", "-w", str(seconds), probe.dst, port]]
        else:
            return ProbeResult(
                "error", f"{NOT_MEASURED}a {probe.proto} probe needs the probes tier", tries, 0.0
            )
        missing = []
        for argv in choices:
            done = await self.run(probe.netns, argv, timeout=seconds + 5)
            if done.missing:
                missing.append(argv[0])
                continue
            elapsed = time.monotonic() - started
            text = (done.stdout + done.stderr).strip()
            if done.ok:
                return ProbeResult("answered", f"{argv[0]}: answered", tries, elapsed)
            if done.code is None:
                return ProbeResult("error", f"{argv[0]}: {done.error}", tries, elapsed)
            if re.search(r"refused", text, re.IGNORECASE):
                return ProbeResult("refused", f"{argv[0]}: connection refused", tries, elapsed)
            if re.search(r"unreachable", text, re.IGNORECASE):
                return ProbeResult("unreachable", f"{argv[0]}: unreachable", tries, elapsed)
            return ProbeResult("timeout", f"{argv[0]}: no answer in {seconds} s", tries, elapsed)
        tools = " or ".join(missing)
        return ProbeResult(
            "error",
            f"{NOT_MEASURED}the image of {self._who(probe.netns)} has no {tools}",
            tries,
            0.0,
        )
