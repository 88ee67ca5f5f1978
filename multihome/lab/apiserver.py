"""The lab's Kubernetes API server process: started early, adopted by ``up``, waited for.

The server is ``python -m multihome.kube serve LABDIR`` (named by module, so that lab/ does
not import it): a process of the host on its loopback, recorded in the lab's journal and
stopped by ``down`` like the lab's daemons. Its start-up (Python, aiohttp, cryptography:
~0.4 s of one core here) is what ``up`` would otherwise wait for at its end, sharing the
CPU with the build. So the CLI's ``up`` starts it before anything else (``prestart``: ``serve
-``), on the core that ``up``'s own start-up (imports, loading, planning) leaves idle; it
then waits for its lab on its standard input. ``up`` adopts it once the lab's directory and
journal exist (``start``: recorded, then told the lab's directory, where it logs and
serves). Every other end stops it by PID (``Early.release``: a design refused, a lab
already running, an error, Ctrl-C), and if ``up`` dies the closed pipe ends it. The lab
token in its environment is the one ``up`` then gives the lab (``LabState(new_token=)``);
when that can't be (another ``up`` made the lab's directory first) or it died, ``start``
starts one the plain way.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import sys
from dataclasses import dataclass

from . import daemons, processes
from .api import LabError
from .state import LabState

KUBE_API = "kube-apiserver"


def log_path(state: LabState) -> str:
    return str(state.dir / f"{KUBE_API}.log")


def _argv(lab_dir: str) -> list[str]:
    return [sys.executable, "-m", "multihome.kube", "serve", lab_dir]


@dataclass
class Early:
    """A server started before its lab existed, waiting on ``pipe`` (the write end of its
    standard input; -1 once adopted or released)."""

    daemon: processes.Daemon
    lab_token: str
    pipe: int

    def adopt(self, state: LabState) -> processes.Daemon | None:
        """Record it in ``state``'s journal and hand it the lab; None (and stopped) if it
        can't be this lab's."""
        if self.pipe < 0:
            return None
        if state.token != self.lab_token or not self.daemon.alive():
            self.release()
            return None
        server = self.daemon
        state.record("process", KUBE_API, phase="intent", argv=list(server.argv),
                     token=server.token, netns=None)  # fmt: skip
        state.record("process", KUBE_API, phase="done", pid=server.pid,
                     start_time=server.start_time)  # fmt: skip
        handover = {"lab_dir": str(state.dir), "log": log_path(state)}
        try:
            os.write(self.pipe, json.dumps(handover).encode() + b"\n")
        except OSError:  # it died meanwhile: ``start`` starts another, which is recorded
            self.release()
            return None
        os.close(self.pipe)
        self.pipe = -1
        return server

    def release(self) -> None:
        """Stop it unless it was adopted (idempotent)."""
        if self.pipe < 0:
            return
        os.close(self.pipe)
        self.pipe = -1
        with contextlib.suppress(processes.ProcessError):
            self.daemon.stop(timeout=1.0)


def prestart() -> Early | None:
    """The server started ahead of its lab (None if it can't be: ``start`` then starts it)."""
    lab_token = secrets.token_hex(16)
    reader, writer = os.pipe2(os.O_CLOEXEC)
    try:
        daemon = processes.start(KUBE_API, _argv("-"), lab_token=lab_token, stdin=reader)
    except processes.ProcessError:
        os.close(writer)
        return None
    finally:
        os.close(reader)
    return Early(daemon, lab_token, writer)


def start(state: LabState, early: Early | None = None) -> processes.Daemon:
    """The lab's server: ``early`` adopted if it can be, else one started now."""
    if early is not None:
        adopted = early.adopt(state)
        if adopted is not None:
            return adopted
    return processes.start(
        KUBE_API, _argv(str(state.dir)), log=log_path(state), record=state.record,
        lab_token=state.token,
    )  # fmt: skip


def wait(state: LabState, server: processes.Daemon, timeout: float = 60.0) -> None:
    """Until the server is ready: it wrote the lab's kubeconfig."""
    kubeconfig = state.dir / "kubeconfig"
    try:
        daemons.wait_for(
            lambda: state.has(kubeconfig) or not server.alive(), "the lab's API server", timeout
        )
    except daemons.DaemonError as exc:
        raise LabError(f"{exc} (see {log_path(state)})") from exc
    if not server.alive():
        raise LabError(f"the lab's API server exited: {processes.log_tail(log_path(state))}")
