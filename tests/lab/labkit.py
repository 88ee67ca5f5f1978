"""Helpers for the lab tests: sandbox availability, host snapshots, an ICMP ping in Python.

Every sandbox a test makes goes through the ``make_sandbox`` fixture (conftest.py), which
destroys it pass or fail; the session guard then checks no supervisor is left.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import shutil
import socket
import struct
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from multihome.lab import ns, sandbox

MakeSandbox = Callable[..., sandbox.Sandbox]


@functools.cache
def sandbox_unavailable_reason() -> str | None:
    """Why a sandbox can't be made here (no user namespaces, ...), or None."""
    if not os.path.exists("/proc/self/ns/user"):
        return "this kernel has no user namespaces"
    with tempfile.TemporaryDirectory(prefix="mh-probe-") as tmp:
        scratch = os.path.join(tmp, "scratch")
        os.mkdir(scratch)
        try:
            sb = sandbox.create("probe", scratch)
        except (sandbox.SandboxError, OSError) as exc:
            return f"cannot create a sandbox here: {exc}"
        sb.destroy()
    return None


def _lines(*argv: str) -> list[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    # other test sessions may make mhtest-* namespaces meanwhile: not ours to judge
    return sorted(line for line in done.stdout.splitlines() if "mhtest-" not in line)


def host_snapshot() -> dict[str, list[str]]:
    """The host's links, addresses, routes, named namespaces and mount points."""
    watched = ("/run/netns", "/etc", "/opt", "/var/lib", "/run/cni", "/tmp/pytest-of-")
    mounts = []
    with open("/proc/self/mountinfo") as fh:
        for line in fh:
            fields = line.split()
            point, source = fields[4], fields[fields.index("-") + 2]
            # other sessions on this machine mount their own namespaces meanwhile: only
            # mounts the lab could make are compared (ours are all named "multihome")
            if source == "multihome" or point.startswith(watched) or "multihome" in point:
                mounts.append(point)
    return {
        "links": _lines("ip", "-br", "link"),
        "addrs": _lines("ip", "addr"),
        "routes": _lines("ip", "route", "show", "table", "all"),
        "routes6": _lines("ip", "-6", "route", "show", "table", "all"),
        "netns": _lines("ip", "netns", "list"),
        "mounts": sorted(m for m in mounts if "mhtest-" not in m),
        "ip_forward": [open("/proc/sys/net/ipv4/ip_forward").read().strip()],
    }


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return ~total & 0xFFFF


def ping(netns: str, address: str, timeout: float = 2.0) -> bool:
    """One ICMP echo from the network namespace at path ``netns`` to ``address``; True
    when the reply comes back. Run inside the sandbox (a raw socket needs CAP_NET_RAW
    there)."""
    sock = ns.socket_in(netns, socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    with sock:
        ident = os.getpid() & 0xFFFF
        payload = b"multihome-ping"
        header = struct.pack("!BBHHH", 8, 0, 0, ident, 1)
        packet = struct.pack("!BBHHH", 8, 0, _checksum(header + payload), ident, 1) + payload
        sock.sendto(packet, (address, 0))
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            try:
                data, peer = sock.recvfrom(2048)
            except TimeoutError:
                return False
            ihl = (data[0] & 0x0F) * 4
            kind, _, _, rid, _ = struct.unpack("!BBHHH", data[ihl : ihl + 8])
            if kind == 0 and rid == ident and peer[0] == address:
                return True
    return False


def _socket_in(netns: str, kind: int) -> socket.socket:
    return ns.socket_in(netns, socket.AF_INET, kind)


def tcp_echo(netns: str, address: str, port: int, payload: bytes, timeout: float = 2.0) -> bytes:
    """Send ``payload`` over TCP from ``netns`` and read back as many bytes (run inside
    the sandbox); b"" when the connection fails."""
    with _socket_in(netns, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
            sock.sendall(payload)
            got = b""
            while len(got) < len(payload) and (chunk := sock.recv(65536)):
                got += chunk
        except OSError:
            return b""
    return got


def udp_echo(netns: str, address: str, port: int, payload: bytes, timeout: float = 2.0) -> bytes:
    """One datagram from ``netns`` and its answer (b"" when none comes)."""
    with _socket_in(netns, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.sendto(payload, (address, port))
            return sock.recv(65536)
        except OSError:
            return b""


def http_get(netns: str, address: str, port: int = 80, timeout: float = 2.0) -> str:
    """The body of ``GET /`` over HTTP/1.0 from ``netns`` ("" on failure)."""
    with _socket_in(netns, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect((address, port))
            sock.sendall(f"GET / HTTP/1.0\r\nHost: {address}\r\n\r\n".encode())
            data = b""
            while chunk := sock.recv(65536):
                data += chunk
        except OSError:
            return ""
    head, _, body = data.partition(b"\r\n\r\n")
    return body.decode(errors="replace") if head.startswith(b"HTTP/1.0 200") else ""


NOBODY = 65534
_HERE = os.path.dirname(os.path.abspath(__file__))
_REPO = os.path.dirname(os.path.dirname(_HERE))


def python_for(uid: int) -> list[str] | None:
    """An ``env PYTHONPATH=... python`` argv that ``uid`` can run with multihome (this
    checkout), its dependencies and these helpers importable, or None. The venv may live
    where ``uid`` can't read (under /root): the system Python of the same version then."""
    site = sysconfig.get_paths()["purelib"]
    candidates = [sys.executable, f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"]
    env_path = os.pathsep.join([_REPO, site, _HERE])
    for exe in candidates:
        probe = subprocess.run(
            [
                "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups",
                "env", f"PYTHONPATH={env_path}", exe, "-c", "import pyroute2, typer, multihome.lab",
            ],
            capture_output=True, text=True, check=False, cwd="/",
        )  # fmt: skip
        if probe.returncode == 0:
            return ["env", f"PYTHONPATH={env_path}", exe]
    return None


ROOTLESS_SKIPS = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root to become nobody (setpriv)"),
    pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) missing"),
    pytest.mark.skipif(not os.path.isdir("/usr/lib/cni"), reason="containernetworking-plugins"),
    pytest.mark.skipif(not os.path.exists("/usr/sbin/dnsmasq"), reason="dnsmasq-base missing"),
]


@dataclasses.dataclass(frozen=True)
class Rootless:
    """A place for a lab run by ``nobody``: ``base`` (world-readable, removed after) with
    its subfolders owned by nobody; ``setpriv`` runs any argv as nobody; ``mh`` is the
    multihome command line as nobody, its state under ``base/state``."""

    base: Path
    setpriv: list[str]
    python: list[str]

    @property
    def mh(self) -> list[str]:
        return [*self.python, "-c", "from multihome.cli import main; main()"]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        """multihome ``args`` as nobody, from /, its output as text."""
        return run_quiet(*self.mh, *args)


def run_quiet(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd="/", timeout=120)


@contextlib.contextmanager
def as_nobody(prefix: str, subfolders: tuple[str, ...] = ()) -> Iterator[Rootless]:
    """A :class:`Rootless` for one test (skipped where no Python can run multihome as
    nobody), its HOME ``base/home``; the lab it ran is brought down and ``base`` removed,
    pass or fail."""
    python = python_for(NOBODY)
    if python is None:
        pytest.skip("no Python that uid 65534 can run with multihome importable")
    base = Path(tempfile.mkdtemp(prefix=prefix))  # /tmp/pytest-of-root is root's
    for sub in ("state", "home", *subfolders):
        (base / sub).mkdir()
        os.chown(base / sub, NOBODY, NOBODY)
    base.chmod(0o755)
    setpriv = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    env = [f"MULTIHOME_STATE_DIR={base / 'state'}", f"HOME={base / 'home'}"]
    rootless = Rootless(base, setpriv, [*setpriv, *python[:2], *env, *python[2:]])
    try:
        yield rootless
    finally:
        subprocess.run(
            [*rootless.mh, "down"], capture_output=True, check=False, cwd="/", timeout=60
        )
        shutil.rmtree(base, ignore_errors=True)
