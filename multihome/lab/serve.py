"""The lab's small network server: HTTP (a static page), TCP echo and UDP echo listeners.

It stands in for what answers on the wire in a lab: a host's ``serve`` section (the seed's
nginx at 172.16.60.31), a pod whose image is a known server (nginx, agnhost netexec), and
Longhorn's replication endpoint on an instance-manager's lhnet1 address. One process serves
every port it is given, each listener on its own thread.

Run as a script with the standard library only (``python -I -S serve.py``: no site-packages
to scan), so it starts in a few tens of milliseconds and needs nothing installed; the HTTP
server's modules (``http.server`` pulls in email, ssl and more, ~40% of the start) are
imported only where a page is served: ::

    serve.py --bind ADDR [--http PORT --root DIR] [--tcp PORT]... [--udp PORT]... --ready FILE

``--ready`` is written once every socket is bound and listening: the lab waits for it. The
options are read without argparse, whose imports (``re``, ``gettext``, ``shutil``) were a
third of this server's start-up; ``lab/daemons.py`` is the one caller.
The TCP listener echoes what it receives (a probe can send a stream and count it back);
UDP answers each datagram with the same bytes.
"""

from __future__ import annotations

import functools
import os
import signal
import socket
import socketserver
import sys
import threading
from collections.abc import Callable


class _TCPEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        sock: socket.socket = self.request
        while data := sock.recv(65536):
            sock.sendall(data)


class _UDPEcho(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        data, sock = self.request
        sock.sendto(data, self.client_address)


def _http_handler(root: str) -> Callable[..., socketserver.BaseRequestHandler]:
    import http.server

    class _QuietHTTP(http.server.SimpleHTTPRequestHandler):
        server_version = "multihome"
        sys_version = ""

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write(f"{self.client_address[0]} {format % args}\n")

    return functools.partial(_QuietHTTP, directory=root)


class _TCPServer(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True


class _UDPServer(socketserver.ThreadingUDPServer):
    allow_reuse_address = True
    daemon_threads = True


class Options:
    """What serve.py is told to serve."""

    def __init__(self, argv: list[str]) -> None:
        self.bind = ""
        self.ready = ""
        self.http: int | None = None
        self.root = os.getcwd()
        self.tcp: list[int] = []
        self.udp: list[int] = []
        if len(argv) % 2:
            raise ValueError(f"options come as --name value pairs: {' '.join(argv)}")
        for name, value in zip(argv[::2], argv[1::2], strict=True):
            if name == "--bind":
                self.bind = value
            elif name == "--ready":
                self.ready = value
            elif name == "--http":
                self.http = _port(value)
            elif name == "--root":
                self.root = value
            elif name == "--tcp":
                self.tcp.append(_port(value))
            elif name == "--udp":
                self.udp.append(_port(value))
            else:
                raise ValueError(f"unknown option {name}")
        if not self.bind or not self.ready:
            raise ValueError("--bind and --ready are required")


def _port(value: str) -> int:
    if not value.isdigit() or int(value) > 65535:
        raise ValueError(f"not a port: {value}")
    return int(value)


def _servers(args: Options) -> list[socketserver.BaseServer]:
    servers: list[socketserver.BaseServer] = []
    if args.http is not None:
        servers.append(_TCPServer((args.bind, args.http), _http_handler(args.root)))
    servers.extend(_TCPServer((args.bind, port), _TCPEcho) for port in args.tcp)
    servers.extend(_UDPServer((args.bind, port), _UDPEcho) for port in args.udp)
    return servers


def main(argv: list[str] | None = None) -> int:
    try:
        args = Options(sys.argv[1:] if argv is None else argv)
    except ValueError as exc:
        sys.stderr.write(f"serve.py: {exc}\n")
        return 2
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    try:
        servers = _servers(args)
    except OSError as exc:
        sys.stderr.write(f"serve.py: cannot listen on {args.bind}: {exc}\n")
        return 1
    for server in servers[1:]:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    # new, never through a link: the file is in the lab's state dir
    ready = os.open(args.ready, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with open(ready, "w") as fh:
        fh.write(f"{os.getpid()}\n")
    if servers:
        servers[0].serve_forever()
    else:
        signal.pause()
    return 0


if __name__ == "__main__":
    sys.exit(main())
