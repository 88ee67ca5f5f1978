"""Reading the running lab for the API: ``status.json`` and ``plan.json`` through the lab's
``LabState`` (safefs), re-read when ``status.json`` changes (``up`` rewrites it atomically
after a reconcile), and whether the lab's sandbox still runs (nodes Ready or not)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from multihome.lab import safefs
from multihome.lab.api import PLAN_FILE, STATUS_FILE, running
from multihome.lab.daemons import socket_answers
from multihome.lab.state import LabState

from .objects import LabView

_RUNNING_TTL = 2.0


class LabSource:
    """The lab at ``lab_dir`` as a :class:`LabView`, cached until its status changes."""

    def __init__(self, lab_dir: Path) -> None:
        self.state = LabState(lab_dir.name, root=lab_dir.parent)
        self._key: tuple[int, int] | None = None
        self._view: LabView | None = None
        self._plan: dict[str, Any] | None = None
        self._plan_key: tuple[int, int, int] | None = None
        self._running = (True, 0.0)
        self._sockets: tuple[dict[str, str | None], float] = ({}, 0.0)
        # called with each new reading before anyone sees it (watch stamps resourceVersions)
        self.observer: Callable[[LabView], None] | None = None

    def _is_running(self) -> bool:
        value, when = self._running
        if time.monotonic() - when > _RUNNING_TTL:
            value = running(self.state)
            self._running = (value, time.monotonic())
        return value

    def _dhcp_sockets(self) -> dict[str, str | None]:
        """Each node's CNI dhcp daemon: None when its socket answers, else why not (probed
        at most every ``_RUNNING_TTL`` seconds; the dhcp DaemonSet's pods are Ready by it)."""
        value, when = self._sockets
        if time.monotonic() - when > _RUNNING_TTL:
            nodes = self._view.status["nodes"] if self._view is not None else []
            if self._view is None:
                path = self.state.dir / STATUS_FILE
                if self.state.has(path):
                    nodes = json.loads(self.state.read_text(path)).get("nodes", [])
            value = {
                n["name"]: socket_answers(
                    str(self.state.node_dir(n["name"]) / "run-cni" / "dhcp.sock"), timeout=0.2
                )
                for n in nodes
            }
            self._sockets = (value, time.monotonic())
        return value

    def _read_plan(self) -> dict[str, Any]:
        """plan.json, parsed again only when the file changed (a status change, one pod's,
        leaves it as it was: the same dict serves the next reading, and what is made of it
        once, such as ``system``'s Plan model, is kept)."""
        path = self.state.dir / PLAN_FILE
        st = safefs.lstat(str(path), base=str(self.state.root))
        key = None if st is None else (st.st_ino, st.st_mtime_ns, st.st_size)
        if key is None or key != self._plan_key or self._plan is None:
            self._plan = json.loads(self.state.read_text(path))
            self._plan_key = key
        return self._plan

    def refresh(self) -> None:
        """Make the next :meth:`view` a new reading (a write changed what the API serves)."""
        self._key = None

    def view(self) -> LabView:
        """The current objects (``FileNotFoundError`` while the lab has no status yet)."""
        path = self.state.dir / STATUS_FILE
        st = safefs.lstat(str(path), base=str(self.state.root))
        if st is None:
            raise FileNotFoundError(str(path))
        key = (st.st_ino, st.st_mtime_ns)
        alive = self._is_running()
        sockets = self._dhcp_sockets()
        if (
            self._view is None
            or key != self._key
            or alive != self._view.status["running"]
            or sockets != self._view.status["dhcp_sockets"]
        ):
            status: dict[str, Any] = json.loads(self.state.read_text(path))
            status["running"] = alive
            status["dhcp_sockets"] = sockets
            plan = self._read_plan()
            view = LabView(status, plan, str(st.st_mtime_ns // 1000))
            if self.observer is not None:
                self.observer(view)
            self._view = view
            self._key = key
        return self._view
