"""The lab's daemons: dnsmasq per DHCP network, the CNI dhcp daemon per node, and the lab's
listeners (serve.py: hosts' services, pods' servers, Longhorn's replication endpoint). Each
is started with :func:`processes.start` (recorded in the journal first) and waited for
until it is ready: ``start_*`` waits at once; ``launch_*`` returns a :class:`Starting`
to wait for later, so that several daemons start side by side and ``up`` waits for each
only where something needs it. Their files in the lab's state (logs, leases, pages) go through
``safefs``: nothing there is followed or opened unless it is a regular file of ours."""

from __future__ import annotations

import os
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from . import processes, safefs
from .names import check_name, fit

if TYPE_CHECKING:  # the planner and nodes (netlink, pyroute2): the lab's API server needs neither
    from multihome.plan import HostPlan, NetworkPlan

    from .nodes import Node

DNSMASQ = "/usr/sbin/dnsmasq"
DHCP_SOCKET = "/run/cni/dhcp.sock"
WELCOME = """<!DOCTYPE html>
<html>
<head>
<title>Welcome to nginx!</title>
</head>
<body>
<h1>Welcome to nginx!</h1>
<p>Served by multihome host {host} at {address}.</p>
</body>
</html>
"""

Recorder = Callable[..., None]


class DaemonError(RuntimeError):
    """A daemon did not start or did not become ready."""


def wait_for(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    """Poll ``check`` until it holds. The checks are a stat or a /proc read (microseconds),
    so a short period costs nothing, while a long one is paid in full by the waiter: a
    daemon ready just after a 50 ms sleep began kept a pod (and up) waiting ~50 ms more."""
    deadline = time.monotonic() + timeout
    delay = 0.001
    while not check():
        if time.monotonic() > deadline:
            raise DaemonError(f"timed out waiting for {what}")
        time.sleep(delay)
        delay = min(delay * 2, 0.008)


@dataclass(frozen=True)
class Starting:
    """A daemon started and not yet seen ready: :meth:`wait` returns it once it is."""

    daemon: processes.Daemon
    ready: Callable[[], bool]
    what: str
    verdict: Callable[[], None] = lambda: None
    """Called once ``ready()`` held: raises ``DaemonError`` when that means it died."""

    def wait(self, timeout: float = 10.0) -> processes.Daemon:
        wait_for(self.ready, self.what, timeout)
        self.verdict()
        return self.daemon


def wait_all(started: list[Starting]) -> list[processes.Daemon]:
    """Wait for each of ``started`` (started side by side: the wait is the slowest's)."""
    return [s.wait() for s in started]


def dnsmasq_argv(net: NetworkPlan, leasefile: str) -> list[str]:
    """dnsmasq as the network's DHCP server: DHCP only (no DNS), the range and lease time,
    a router only when the lab offers one, ``--no-ping`` (static addresses are outside the
    range: validate checks it)."""
    assert net.dhcp is not None
    dhcp = net.dhcp
    argv = [
        DNSMASQ,
        # --no-daemon: foreground, and no change of user: as an unprivileged user the lab's
        # user namespace maps one uid and denies setgroups, which dnsmasq's drop needs
        "--no-daemon",
        "--log-facility=-",
        "--conf-file=/dev/null",
        "--port=0",
        "--interface=eth0",
        "--bind-interfaces",
        f"--dhcp-range={dhcp.start},{dhcp.end},{net.subnet.netmask},{dhcp.lease_time}",
        f"--dhcp-leasefile={leasefile}",
        "--pid-file=",
        "--no-ping",
        "--log-dhcp",
    ]
    argv.append(f"--dhcp-option=3,{dhcp.router}" if dhcp.router else "--dhcp-option=3")
    return argv


def start_dnsmasq(net: NetworkPlan, netns: str, lab_dir: str, record: Recorder) -> processes.Daemon:
    return launch_dnsmasq(net, netns, lab_dir, record).wait()


def launch_dnsmasq(net: NetworkPlan, netns: str, lab_dir: str, record: Recorder) -> Starting:
    """dnsmasq on ``net``; ready once it made its lease file."""
    name = fit(f"dnsmasq-{net.name}")
    leasefile = os.path.join(lab_dir, f"{name}.leases")
    log = os.path.join(lab_dir, f"{name}.log")
    # dnsmasq makes the lease file itself (and follows a link there): nothing may be there
    found = safefs.lstat(leasefile, base=lab_dir)
    if found is not None:
        raise safefs.StateError(
            f"{leasefile} is already there ({safefs.kind_of(found.st_mode)}), before "
            f"dnsmasq started: left untouched; multihome down {os.path.basename(lab_dir)}"
        )
    daemon = processes.start(
        name, dnsmasq_argv(net, leasefile), netns=netns, log=log, record=record
    )

    def verdict() -> None:
        if not daemon.alive():
            raise DaemonError(f"dnsmasq on {net.name} exited: {processes.log_tail(log)}")

    def ready() -> bool:
        return os.path.exists(leasefile) or not daemon.alive()

    return Starting(daemon, ready, f"dnsmasq on {net.name}", verdict)


def dhcp_daemon_name(node: str) -> str:
    """The journal name of a node's dhcp daemon."""
    return fit(f"dhcp-daemon-{node}")


def start_dhcp_daemon(node: Node, lab_dir: str, record: Recorder) -> processes.Daemon:
    return launch_dhcp_daemon(node, lab_dir, record).wait()


def launch_dhcp_daemon(node: Node, lab_dir: str, record: Recorder) -> Starting:
    """The CNI dhcp daemon on ``node``, socket at the node's ``/run/cni/dhcp.sock``; ready
    once the socket is there."""
    sock = os.path.join(node.dir("/run/cni"), "dhcp.sock")
    # the 1.1.1 daemon refuses to start over a stale socket
    safefs.unlink(sock, base=node.root)
    from .nodes import CNI_BIN_DIR

    name = dhcp_daemon_name(node.name)
    daemon = processes.start(
        name,
        [os.path.join(CNI_BIN_DIR, "dhcp"), "daemon", "-socketpath", DHCP_SOCKET],
        netns=node.netns,
        mntns=node.mntns,
        log=_dhcp_daemon_log(node, lab_dir),
        record=record,
    )
    return dhcp_daemon_starting(node, daemon, lab_dir)


def _dhcp_daemon_log(node: Node, lab_dir: str) -> str:
    return os.path.join(lab_dir, f"{dhcp_daemon_name(node.name)}.log")


def dhcp_daemon_starting(node: Node, daemon: processes.Daemon, lab_dir: str) -> Starting:
    """The wait for ``node``'s dhcp daemon, started (by this process or another) with
    :func:`launch_dhcp_daemon`."""
    sock = os.path.join(node.dir("/run/cni"), "dhcp.sock")
    what = f"the dhcp daemon on {node.name} (see {_dhcp_daemon_log(node, lab_dir)})"
    return Starting(daemon, lambda: os.path.exists(sock), what)


SERVE_SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "serve.py")


@dataclass(frozen=True)
class Serves:
    """What a machine answers on: an HTTP page, TCP and UDP echo ports, on ``bind``."""

    bind: str = "0.0.0.0"
    http: int | None = None
    tcp: tuple[int, ...] = ()
    udp: tuple[int, ...] = ()
    page: str = ""

    def __bool__(self) -> bool:
        return self.http is not None or bool(self.tcp) or bool(self.udp)

    def to_dict(self) -> dict[str, Any]:
        return {
            "address": self.bind,
            "http": [] if self.http is None else [self.http],
            "tcp": list(self.tcp),
            "udp": list(self.udp),
        }


def welcome_page(who: str, address: str) -> str:
    return WELCOME.format(host=who, address=address)


def start_server(
    name: str, serves: Serves, netns: str, lab_dir: str, record: Recorder
) -> processes.Daemon:
    """The lab's server (serve.py) in ``netns``, answering what ``serves`` lists; returns
    once every port listens."""
    return launch_server(name, serves, netns, lab_dir, record).wait()


def launch_server(
    name: str, serves: Serves, netns: str, lab_dir: str, record: Recorder
) -> Starting:
    """:func:`start_server` without the wait: ready once every port listens."""
    check_name(name)
    root = os.path.join(lab_dir, "www", name)
    safefs.makedirs(root, base=lab_dir, mode=0o755)
    safefs.write_atomic(
        os.path.join(root, "index.html"), serves.page.encode(), base=lab_dir, mode=0o644
    )
    ready = os.path.join(lab_dir, "www", f"{name}.ready")
    safefs.unlink(ready, base=lab_dir)
    argv = [sys.executable, "-I", "-S", SERVE_SCRIPT, "--bind", serves.bind, "--ready", ready]
    if serves.http is not None:
        argv += ["--http", str(serves.http), "--root", root]
    for port in serves.tcp:
        argv += ["--tcp", str(port)]
    for port in serves.udp:
        argv += ["--udp", str(port)]
    log = os.path.join(lab_dir, f"{name}.log")
    daemon = processes.start(name, argv, netns=netns, log=log, record=record)

    def verdict() -> None:
        if not os.path.exists(ready):
            raise DaemonError(f"{name} did not start: {processes.log_tail(log)}")

    def listening() -> bool:
        return os.path.exists(ready) or not daemon.alive()

    return Starting(daemon, listening, f"{name} (see {log})", verdict)


def host_serves(host: HostPlan) -> Serves:
    """A host's ``serve`` section: on every address of the host."""
    address = next((str(n.address.ip) for n in host.nics if n.address is not None), "0.0.0.0")
    return Serves(
        http=host.http,
        tcp=tuple(host.tcp),
        udp=tuple(host.udp),
        page=welcome_page(host.name, address),
    )


def socket_answers(path: str, timeout: float = 1.0) -> str | None:
    """None when something accepts a connection on the unix socket ``path`` (e.g. a node's
    dhcp daemon, seen from the state dir), else why not (its directory gone too). A path
    longer than a socket address holds (108 bytes) is reached through its directory's
    descriptor."""
    try:
        directory = os.open(os.path.dirname(path) or ".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        return exc.strerror or str(exc)
    try:
        short = f"/proc/self/fd/{directory}/{os.path.basename(path)}"
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            try:
                sock.connect(short)
            except OSError as exc:
                return exc.strerror or str(exc)
        return None
    finally:
        os.close(directory)
