"""serve.py on its own: the options as lab/daemons.py passes them, and what it refuses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from multihome.lab.daemons import SERVE_SCRIPT


def _serve(*options: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-I", "-S", SERVE_SCRIPT, *options],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def _wait_ready(proc: subprocess.Popen[bytes], ready: Path) -> None:
    deadline = time.monotonic() + 10
    while not ready.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "serve.py never wrote its ready file"
        time.sleep(0.005)


def _free_port(kind: int) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_serves_tcp_and_udp_echo_on_the_ports_it_is_given(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    tcp, udp = _free_port(socket.SOCK_STREAM), _free_port(socket.SOCK_DGRAM)
    proc = _serve(
        "--bind", "127.0.0.1", "--tcp", str(tcp), "--udp", str(udp), "--ready", str(ready)
    )
    try:
        _wait_ready(proc, ready)
        assert ready.read_text() == f"{proc.pid}\n"
        with socket.create_connection(("127.0.0.1", tcp), timeout=5) as conn:
            conn.sendall(b"ping over tcp")
            assert conn.recv(100) == b"ping over tcp"
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as dgram:
            dgram.settimeout(5)
            dgram.sendto(b"ping over udp", ("127.0.0.1", udp))
            assert dgram.recvfrom(100)[0] == b"ping over udp"
    finally:
        proc.terminate()
        proc.communicate()


def test_serves_the_page_over_http(tmp_path: Path) -> None:
    ready, root = tmp_path / "ready", tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_text("the page\n")
    port = _free_port(socket.SOCK_STREAM)
    proc = _serve(
        "--bind", "127.0.0.1", "--http", str(port), "--root", str(root), "--ready", str(ready)
    )
    try:
        _wait_ready(proc, ready)
        with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\n\r\n")
            reply = b""
            while chunk := conn.recv(4096):
                reply += chunk
        assert reply.startswith(b"HTTP/1.0 200")
        assert reply.endswith(b"the page\n")
    finally:
        proc.terminate()
        proc.communicate()


def test_refuses_options_it_does_not_know_with_what_is_wrong(tmp_path: Path) -> None:
    ready = str(tmp_path / "ready")
    for options, words in [
        (["--bind", "127.0.0.1", "--tcp", "http", "--ready", ready], "not a port: http"),
        (["--bind", "127.0.0.1", "--tcp", "70000", "--ready", ready], "not a port: 70000"),
        (["--bind", "127.0.0.1", "--sctp", "9", "--ready", ready], "unknown option --sctp"),
        (["--bind", "127.0.0.1", "--ready"], "options come as --name value pairs"),
        (["--tcp", "9", "--ready", ready], "--bind and --ready are required"),
    ]:
        proc = _serve(*options)
        _out, err = proc.communicate(timeout=10)
        assert proc.returncode == 2, options
        assert err.decode() == f"serve.py: {words}" + (
            f": {' '.join(options)}\n" if "pairs" in words else "\n"
        ), options
        assert not os.path.exists(ready)
