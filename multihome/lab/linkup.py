"""Bring links up the moment they appear in a network namespace (a pod's).

Why: the dhcp IPAM plugin of containernetworking-plugins 1.1.1 (Debian's) is asked for a lease
while the macvlan link is still down (macvlan calls IPAM before it sets the link up). The dhcp
daemon then finds the link down, sets it up itself and retries with back-off, which costs
seconds per attachment (fixed upstream in plugins v1.6.0, PR #1076; RKE2 ships a fixed
version). :class:`LinkUpWatcher` listens for RTM_NEWLINK in the pod's namespace while the pod
is attached and sets each new link up at once, so the daemon's first DHCPDISCOVER goes out.

``names`` limits it to the links the attachment will make (``net1``, ``net2``...): macvlan
creates its link under a temporary name and renames it, and kernels before live renaming
(IFF_UP links can't be renamed there: EBUSY) would make the rename fail if the link were set up
under its temporary name. With ``names`` the link is set up when it appears under its final
name, which is before IPAM runs.

The watcher runs in a thread of its own, which enters the namespace (a network namespace is
a thread's own) and opens both netlink sockets there; in a process that joined the lab's PID
namespace with setns, which can't start threads, it runs in a forked child instead (a pod's
fork cost ~10 ms of CPU at 1000 pods: the forkpool's workers, born in that namespace, use
threads). :meth:`LinkUpWatcher.start` returns once it is subscribed, so no link made after
``start`` is missed, and links already there are looked at once. :meth:`LinkUpWatcher.stop`
collects what it set up (``raised``) and what failed (``errors``).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import select
import socket
import threading
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from . import netlink, ns

RTMGRP_LINK = 1
RTM_NEWLINK = 16
IFF_UP = 0x1


@dataclass(frozen=True)
class LinkUp:
    """A link the watcher set up: its name and index, and when (``time.time()``)."""

    name: str
    index: int
    at: float


class LinkUpWatcher:
    """Sets links up in the namespace at path ``netns`` as they appear (a context manager).

    ``names``: only links with one of these names (None: every link). ``raised`` lists what
    was set up, ``errors`` what failed (a link that vanished meanwhile is not an error).
    """

    def __init__(self, netns: str, names: Collection[str] | None = None) -> None:
        self.netns = netns
        self.names = frozenset(names) if names is not None else None
        self.raised: list[LinkUp] = []
        self.errors: list[str] = []
        self._pid: int | None = None
        self._thread: threading.Thread | None = None
        self._ready = _PipeEvent()
        self._failure: BaseException | None = None
        self._stop_r, self._stop_w = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._report_r = -1

    def __enter__(self) -> LinkUpWatcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        """Start watching (in a thread, else in a forked child: a process that entered the
        lab's PID namespace can't start threads); returns once subscribed. OSError if the namespace
        can't be entered or the sockets can't be opened."""
        if self._pid is not None or self._thread is not None:
            raise RuntimeError("already started")
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        thread = threading.Thread(target=self._in_thread, args=(ready_w,), daemon=True)
        try:
            thread.start()
        except RuntimeError:  # this process joined the lab's PID namespace: no threads
            pass
        else:
            self._thread = thread
            self._await_ready(ready_r)
            return
        report_r, report_w = os.pipe2(os.O_CLOEXEC)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                os.close(ready_r)
                os.close(report_r)
                os.close(self._stop_w)  # so the parent's end closing (or dying) stops us
                self._ready.fd = ready_w
                self.raised, self.errors = [], []  # the child reports only its own
                self._main()
                self._report(report_w)
                code = 0
            finally:
                os._exit(code)
        os.close(ready_w)
        os.close(report_w)
        self._pid = pid
        self._report_r = report_r
        self._await_ready(ready_r)

    def _in_thread(self, ready_w: int) -> None:
        self._ready.fd = ready_w
        # our own root and working directory: the thread that started us keeps its own to
        # itself, so it may still step into a node's mount namespace to spawn a plugin with
        # vfork while we run (cni/ns.inside; else each plugin would start through nsenter)
        with contextlib.suppress(OSError):
            ns.unshare(ns.CLONE_FS)
        try:
            self._main()
        finally:
            self._ready.set(self._failure or RuntimeError("the watcher ended"))

    def _await_ready(self, ready_r: int) -> None:
        try:
            reply = os.read(ready_r, 4096).decode(errors="replace")
        finally:
            os.close(ready_r)
        if reply != "ok":
            self.stop()
            raise OSError(f"link watcher for {self.netns}: {reply or 'it died'}")

    def stop(self) -> None:
        """Stop watching and release the sockets (and the child's hold on the namespace)."""
        if self._thread is not None:
            with contextlib.suppress(OSError):
                os.write(self._stop_w, b"x")
            self._thread.join()
            self._thread = None
            self._close_pipe()
            return
        if self._pid is None:
            self._close_pipe()
            return
        with contextlib.suppress(OSError):
            os.write(self._stop_w, b"x")
        report = self._read_report()
        os.waitpid(self._pid, 0)
        self._pid = None
        self._close_pipe()
        self.raised.extend(LinkUp(str(n), int(i), float(t)) for n, i, t in report.get("raised", []))
        self.errors.extend(str(e) for e in report.get("errors", []))

    def _read_report(self) -> dict[str, Any]:
        """What the child did, written on its report pipe as it ends (empty if it died)."""
        chunks = []
        with contextlib.suppress(OSError):
            while chunk := os.read(self._report_r, 1 << 16):
                chunks.append(chunk)
        with contextlib.suppress(OSError):
            os.close(self._report_r)
        self._report_r = -1
        try:
            report = json.loads(b"".join(chunks) or b"{}")
        except ValueError:
            return {"errors": ["link watcher: unreadable report"]}
        return report if isinstance(report, dict) else {}

    def _report(self, fd: int) -> None:
        """In the child: send ``raised`` and ``errors`` to the parent."""
        raised = [[u.name, u.index, u.at] for u in self.raised]
        data = json.dumps({"raised": raised, "errors": self.errors}).encode()
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.close(fd)

    # -- the watcher (in the child) -----------------------------------------------------------

    def _main(self) -> None:
        events: socket.socket | None = None
        rtnl: netlink.Rtnl | None = None
        try:
            try:
                _enter(self.netns)
                events = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
                events.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
                events.bind((0, RTMGRP_LINK))
                rtnl = netlink.Rtnl()
                self._scan(rtnl)
            except BaseException as err:
                self._failure = err
                return
            finally:
                self._ready.set(self._failure)
            while True:
                readable, _, _ = select.select([events.fileno(), self._stop_r], [], [])
                if self._stop_r in readable:
                    return
                try:
                    data = events.recv(1 << 16)
                except OSError as err:
                    if err.errno == errno.ENOBUFS:  # events were dropped: look at every link
                        self._scan(rtnl)
                        continue
                    self.errors.append(f"reading link events: {err}")
                    return
                for index, flags, name in netlink.new_links(data):
                    self._consider(rtnl, index, flags, name)
        finally:
            if rtnl is not None:
                rtnl.close()
            if events is not None:
                events.close()

    def _scan(self, rtnl: netlink.Rtnl) -> None:
        for index, flags, name in rtnl.link_names():
            self._consider(rtnl, index, flags, name)

    def _consider(self, rtnl: netlink.Rtnl, index: int, flags: int, name: str | None) -> None:
        if flags & IFF_UP:
            return
        if self.names is not None and name not in self.names:
            return
        try:
            rtnl.set_up(index, True)
        except OSError as err:
            if err.errno in (errno.ENODEV, errno.ENOENT):
                return  # gone again (deleted, or moved to another namespace)
            self.errors.append(f"setting {name} (index {index}) up: {err}")
            return
        self.raised.append(LinkUp(str(name), index, time.time()))

    def _close_pipe(self) -> None:
        for fd in (self._stop_r, self._stop_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._stop_r = self._stop_w = -1


class _PipeEvent:
    """Tells the parent on a pipe that the watcher is subscribed (or why it is not)."""

    def __init__(self) -> None:
        self.fd = -1

    def set(self, failure: BaseException | None) -> None:
        if self.fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self.fd, b"ok" if failure is None else str(failure).encode()[:4000])
                os.close(self.fd)
            self.fd = -1


def _enter(netns: str) -> None:
    fd = ns.open_ns(netns)
    try:
        ns.setns(fd, ns.CLONE_NEWNET)
    finally:
        os.close(fd)
