"""Which segment carried traffic: byte counters of the lab's switch during a stream.

Every VLAN of the lab is one bridge in the sandbox's own network namespace (the "switch"),
and every NIC plugged into it is a port there (``n<i>-<nic>``, ``h<i>-<nic>``, ``d<i>``).
A bridge's own counters see only what goes up to the bridge itself, not what it forwards,
so a segment's traffic is the sum of what its ports received (what entered the segment).

``measure`` sends a stream of ``size`` bytes over TCP from one namespace to an address and
reads the counters of every bridge before and after: the segment that carried the stream
grew by at least ``size``. The target either echoes (the lab's listeners do: the stream is
counted back) or is a sink this module opens for the moment in the target's namespace.

Runs inside the lab's sandbox, one stream at a time (nothing else of verify is on the wire
then, so the counts are the stream's).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from multihome.lab import netlink

from .probes import Namespaces, family, namespaces

CHUNK = 16384
OVER_TCP = "over TCP"


@dataclass(frozen=True)
class Stream:
    """``size`` bytes over TCP from ``netns`` to ``dst``:``port``. ``port`` None: a sink is
    opened in ``sink_netns`` on ``dst`` for the stream (an ephemeral port)."""

    netns: str
    dst: str
    size: int
    port: int | None = None
    sink_netns: str | None = None
    echo: bool = False
    """Whether the target sends back what it gets (the lab's TCP listeners do)."""
    timeout: float = 5.0

    def describe(self) -> str:
        kib = self.size // 1024
        return f"{kib} KiB over TCP to {self.dst}:{self.port or 'sink'}"


@dataclass(frozen=True)
class StreamResult:
    sent: int
    received: int
    """What came back (an echoing target), or what the sink got."""
    echo: bool
    elapsed: float
    error: str | None
    segments: dict[str, int] = field(default_factory=dict)
    """Bridge -> bytes that entered it during the stream."""
    how: str = OVER_TCP
    """How the bytes went, in the checks' words (``OVER_TCP``; a cluster's probes send
    ICMP echoes)."""


def snapshot(bridges: Sequence[str]) -> dict[str, int]:
    """Bridge -> bytes received so far by its ports (this thread's namespace: the switch)."""
    wanted = set(bridges)
    totals = dict.fromkeys(bridges, 0)
    with netlink.Netlink() as nl:
        for link in nl.here().links():
            if link.master in wanted:
                totals[link.master] += link.stats.rx_bytes
    return totals


async def _sink(server: socket.socket) -> int:
    loop = asyncio.get_running_loop()
    conn, _ = await loop.sock_accept(server)
    got = 0
    with conn:
        conn.setblocking(False)
        while chunk := await loop.sock_recv(conn, 65536):
            got += len(chunk)
    return got


async def _send(nss: Namespaces, stream: Stream, port: int) -> tuple[int, int]:
    loop = asyncio.get_running_loop()
    sock = nss.socket(stream.netns, family(stream.dst), socket.SOCK_STREAM)
    received = 0

    async def reader() -> None:
        nonlocal received
        while chunk := await loop.sock_recv(sock, 65536):
            received += len(chunk)

    with sock:
        await loop.sock_connect(sock, (stream.dst, port))
        reading = asyncio.create_task(reader())
        sent = 0
        block = b"\xa5" * CHUNK
        while sent < stream.size:
            piece = block[: min(CHUNK, stream.size - sent)]
            await loop.sock_sendall(sock, piece)
            sent += len(piece)
        sock.shutdown(socket.SHUT_WR)
        await reading
    return sent, received


async def _run(nss: Namespaces, stream: Stream) -> tuple[int, int]:
    if stream.port is not None:
        return await _send(nss, stream, stream.port)
    if stream.sink_netns is None:
        raise ValueError("a stream without a port needs a sink namespace")
    server = nss.socket(stream.sink_netns, family(stream.dst), socket.SOCK_STREAM)
    with server:
        server.bind((stream.dst, 0))
        server.listen(1)
        port = server.getsockname()[1]
        sink = asyncio.create_task(_sink(server))
        try:
            sent, _ = await _send(nss, stream, port)
            got = await sink
        finally:
            sink.cancel()
            with contextlib.suppress(BaseException):
                await sink
    return sent, got


def measure(stream: Stream, bridges: Sequence[str]) -> StreamResult:
    """Send the stream and count what entered each bridge meanwhile."""
    before = snapshot(bridges)
    start = time.monotonic()
    error = None
    sent = received = 0

    async def main() -> tuple[int, int]:
        with namespaces() as nss:
            return await asyncio.wait_for(_run(nss, stream), stream.timeout)

    try:
        sent, received = asyncio.run(main())
    except TimeoutError:
        error = f"the stream did not finish in {stream.timeout:.0f} s"
    except OSError as exc:
        error = exc.strerror or str(exc)
    elapsed = time.monotonic() - start
    after = snapshot(bridges)
    return StreamResult(
        sent=sent,
        received=received,
        echo=stream.echo,
        elapsed=elapsed,
        error=error,
        segments={b: after[b] - before[b] for b in bridges},
    )
