"""A helper that starts the lab's daemons for the process that builds it.

That process entered the sandbox (``Sandbox.enter``): its children land in the lab's PID
namespace, but it does not live there itself, so a child it orphans goes to the host's init,
not the lab's. It used to start each daemon through a forked intermediate that exits at once
(``processes._spawn_detached``: two forks of a large Python process a daemon). The spawner
is one forked child, in the lab's PID namespace, that starts them all with vfork
(``processes._spawn_here``); when it exits, at the end of ``active``, its daemons go to the
lab's init, as they did. Requests go over a socket pair with the daemon's log and namespace
descriptors (``SCM_RIGHTS``).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from typing import NoReturn

from . import ns, processes

_MAX_FDS = 4
_MAX_MESSAGE = 1 << 20


class Spawner:
    """The forked helper (see the module's docstring); made by the first ``spawn``."""

    def __init__(self) -> None:
        self._owner = os.getpid()
        self._pid = 0
        self._sock: socket.socket | None = None
        self._lock = threading.Lock()

    def spawn(
        self, args: list[str], env: dict[str, str], out: int,
        targets: Sequence[tuple[int, int]], cwd: str,
    ) -> int:  # fmt: skip
        """``processes._spawn_here``'s answer, from the helper."""
        with self._lock:
            sock = self._start()
            kinds = [kind for _, kind in targets]
            request = pickle.dumps((args, env, kinds, cwd))
            try:
                socket.send_fds(sock, [request], [out, *(fd for fd, _ in targets)])
                reply = sock.recv(_MAX_MESSAGE)
            except OSError as exc:
                raise processes.ProcessError(f"the lab's spawner failed: {exc}") from exc
            if not reply:
                raise processes.ProcessError("the lab's spawner died")
            status, value = pickle.loads(reply)
            if status != "ok":
                raise processes.ProcessError(value)
            return int(value)

    def close(self) -> None:
        """Let the helper exit (its daemons go to the lab's init) and reap it."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._pid:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self._pid, 0)
            self._pid = 0

    def _start(self) -> socket.socket:
        if self._sock is None:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                ours.close()
                _serve(theirs)
            theirs.close()
            self._sock, self._pid = ours, pid
        return self._sock


@contextlib.contextmanager
def active() -> Iterator[Spawner]:
    """Daemons that ``processes.start`` starts from this process (and not from a forked
    worker: it uses its own path) go through a spawner until the end of the block. For the
    process that builds, once it entered the sandbox."""
    spawner = Spawner()
    previous = processes.set_spawner(spawner.spawn, spawner._owner)
    try:
        yield spawner
    finally:
        processes.set_spawner(*previous)
        spawner.close()


def _serve(sock: socket.socket) -> NoReturn:  # pragma: no cover - runs in the child
    code = 0
    try:
        ns.die_with_parent()
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C: gone with the caller
        while True:
            message, fds, _, _ = socket.recv_fds(sock, _MAX_MESSAGE, _MAX_FDS)
            if not message:
                break
            try:
                args, env, kinds, cwd = pickle.loads(message)
                out, *opened = fds
                targets = tuple(zip(opened, kinds, strict=True))
                reply: tuple[str, object] = (
                    "ok", processes._spawn_here(args, env, out, targets, cwd)
                )  # fmt: skip
            except Exception as exc:
                reply = ("error", str(exc) or type(exc).__name__)
            finally:
                for fd in fds:
                    os.close(fd)
            sock.send(pickle.dumps(reply))
    except BaseException:
        code = 1
    finally:
        os._exit(code)
