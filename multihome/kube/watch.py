"""``watch`` on the lab's list paths (``?watch=1``; ``kubectl get -w``, ``kubectl wait``).

The wire format is the API server's: one ``WatchEvent`` JSON object a line (``ADDED``,
``MODIFIED``, ``DELETED``, ``BOOKMARK``, ``ERROR`` with a ``Status``), on a chunked 200
response that ends at ``timeoutSeconds``. The events are the changes ``versions`` finds in
what the API serves when ``status.json`` changes (a reconcile of ``multihome up FILE`` or of
a write) and at once after each write (``Hub.renew``, the writer's listener: a created pod is
ADDED Pending before its reconcile, a deleted one MODIFIED Terminating): while any watch is
open, ``Hub`` also looks at the file every ``POLL`` seconds.

resourceVersion as the conventions say: unset or ``0`` starts with an ADDED per object then
the changes; a version from a list or an event resumes after it; one older than the kept
history is a ``410 Expired`` ERROR event (the client relists); one newer than the lab's is a
``504 Timeout`` with the ``ResourceVersionTooLarge`` cause. Label and field selectors apply as
on the real cache: an object that stops matching is a DELETED, one that starts matching an
ADDED. ``sendInitialEvents=true`` (watch-list) ends its initial events with the bookmark
annotated ``k8s.io/initial-events-end``. Tables (``as=Table``) over watch: each event's object
is a one-row Table. Watches per lab are bounded (``MAX_WATCHES``; beyond it 429)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .objects import LabView
from .selectors import Match, field_selector, label_selector
from .state import LabSource
from .versions import Build, Change, Versions

if TYPE_CHECKING:
    from .server import Resource

log = logging.getLogger("multihome.kube")

MAX_WATCHES = 100  # open watches per lab; more is a 429 (the lab is a laptop's guest)
QUEUE = 1000  # a watcher this many readings behind is ended (it relists, as from etcd)
POLL = 0.1  # how often status.json is looked at while a watch is open (seconds)
BOOKMARK_EVERY = 60.0  # the API server's cacher bookmarks about once a minute
DEFAULT_TIMEOUT = 1800  # the API server's --min-request-timeout
INITIAL_EVENTS_END = "k8s.io/initial-events-end"

TableOf = Callable[[list[dict[str, Any]], str], dict[str, Any]]


def _status(code: int, reason: str, message: str, **extra: Any) -> dict[str, Any]:
    body = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": message, "reason": reason, "code": code}  # fmt: skip
    if extra:
        body["details"] = extra
    return body


def _refuse(code: int, reason: str, message: str, **extra: Any) -> web.Response:
    headers = {}
    if "retryAfterSeconds" in extra:
        headers["Retry-After"] = str(extra["retryAfterSeconds"])
    return web.json_response(_status(code, reason, message, **extra), status=code, headers=headers)


@dataclass(eq=False)
class _Watcher:
    # a list of changes per new reading; None: the server is stopping
    queue: asyncio.Queue[list[Change] | None] = field(default_factory=lambda: asyncio.Queue(QUEUE))
    overflowed: bool = False


class Hub:
    """The watches of one lab, and the versions they (and lists) see."""

    def __init__(self, source: LabSource, builds: Iterable[tuple[str, Build]]) -> None:
        self.source = source
        # what the API serves of each resource (the lab's objects with the writes overlaid)
        self.builds: list[tuple[str, Build]] = list(builds)
        self.versions = Versions(source.state)
        self.watchers: set[_Watcher] = set()
        self._poller: asyncio.Task[None] | None = None
        self.closing = False
        source.observer = self._observe

    def _observe(self, view: LabView) -> None:
        started = time.perf_counter()
        changes = self.versions.stamp(view, self.builds)
        log.info(
            "new reading: %d objects, %d changed, resourceVersion %s, %.1fms",
            len(self.versions.last), len(changes), view.resource_version,
            (time.perf_counter() - started) * 1000,
        )  # fmt: skip
        if not changes:
            return
        for w in self.watchers:
            try:
                w.queue.put_nowait(changes)
            except asyncio.QueueFull:
                w.overflowed = True

    def renew(self) -> None:
        """A write or a reconcile changed what is served: read the lab anew now (stamping
        the changes' versions and waking the watches) rather than at the next poll."""
        self.source.refresh()
        with contextlib.suppress(FileNotFoundError):  # going down: the next reading stamps
            self.source.view()

    async def close(self, _app: web.Application | None = None) -> None:
        """End every open watch now (the server is stopping: its clients watch again)."""
        self.closing = True
        for w in self.watchers:
            with contextlib.suppress(asyncio.QueueFull):
                w.queue.put_nowait(None)

    async def _poll(self) -> None:
        while self.watchers:
            try:
                self.source.view()
            except FileNotFoundError:
                pass  # between up's writes, or going down
            except Exception:  # the lab keeps serving whatever the file holds
                log.exception("reading the lab for watches")
            await asyncio.sleep(POLL)
        self._poller = None

    def _add(self) -> _Watcher:
        w = _Watcher()
        self.watchers.add(w)
        if self._poller is None:
            self._poller = asyncio.get_running_loop().create_task(self._poll())
        return w

    async def serve(
        self,
        request: web.Request,
        resource: Resource,
        namespace: str | None,
        name: str | None,
        table: TableOf | None,
    ) -> web.StreamResponse:
        """Answer ``request`` (a watch of ``resource``) until its timeout or the client goes."""
        q = request.query
        try:
            timeout = int(q.get("timeoutSeconds") or DEFAULT_TIMEOUT)
            if timeout < 0:
                raise ValueError
        except ValueError:
            return _refuse(400, "BadRequest", f"invalid timeoutSeconds: {q['timeoutSeconds']!r}")
        rv = q.get("resourceVersion", "")
        if rv not in ("", "0") and not rv.isdigit():
            return _refuse(
                400, "BadRequest", f'resourceVersion: Invalid value: "{rv}": not a version'
            )
        bookmarks = q.get("allowWatchBookmarks") in ("1", "true")
        initial_list = q.get("sendInitialEvents") == "true"
        if initial_list and (q.get("resourceVersionMatch") != "NotOlderThan" or not bookmarks):
            return _refuse(
                422, "Invalid", "sendInitialEvents: Forbidden: sendInitialEvents is forbidden "
                "unless resourceVersionMatch is NotOlderThan and allowWatchBookmarks is true",
            )  # fmt: skip
        if q.get("resourceVersionMatch") and not initial_list:
            return _refuse(
                400, "BadRequest", "resourceVersionMatch: Forbidden: resourceVersionMatch is "
                "forbidden for watch unless sendInitialEvents is provided",
            )  # fmt: skip
        match_labels = label_selector(q.get("labelSelector"))
        match_fields = field_selector(q.get("fieldSelector"), resource.name)

        def wanted(obj: dict[str, Any]) -> bool:
            meta = obj["metadata"]
            if namespace is not None and meta.get("namespace") != namespace:
                return False
            if name is not None and meta["name"] != name:
                return False
            return match_labels(obj) and match_fields(obj)

        if self.closing:
            return _refuse(503, "ServiceUnavailable", "the lab's API server is stopping")
        if len(self.watchers) >= MAX_WATCHES:
            return _refuse(
                429, "TooManyRequests",
                f"too many open watches on this lab ({MAX_WATCHES}); close some, then retry",
                retryAfterSeconds=1,
            )  # fmt: skip
        view = self.source.view()  # stamps: the versions are the lab's current ones
        watcher = self._add()  # no await since the view: no change can slip between them
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        try:
            await response.prepare(request)
            stream = _Stream(request, response, resource, table)
            await self._run(view, watcher, stream, wanted, rv, initial_list, bookmarks, timeout)
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client went
        finally:
            self.watchers.discard(watcher)
        return response

    async def _run(
        self,
        view: LabView,
        watcher: _Watcher,
        stream: _Stream,
        wanted: Match,
        rv: str,
        initial_list: bool,
        bookmarks: bool,
        timeout: int,
    ) -> None:
        versions = self.versions
        if rv in ("", "0") or initial_list:
            for res, build in self.builds:
                if res == stream.resource.qualified:
                    for obj in view.objects(res, build):
                        if wanted(obj):
                            await stream.event("ADDED", obj)
            if initial_list:
                await stream.bookmark(versions.counter, initial_end=True)
        else:
            since = int(rv)
            if since < versions.oldest:
                message = f"too old resource version: {since} ({versions.oldest})"
                await stream.error(_status(410, "Expired", message))
                return
            if since > versions.counter:
                await stream.error(
                    _status(
                        504, "Timeout",
                        f"Timeout: Too large resource version: {since}, current: "
                        f"{versions.counter}",
                        causes=[{"reason": "ResourceVersionTooLarge",
                                 "message": "Too large resource version"}],
                        retryAfterSeconds=1,
                    )
                )  # fmt: skip
                return
            await stream.changes(versions.since(since), wanted)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        # a bookmark about once a minute, and one just before the watch ends (as the cacher)
        next_bookmark = min(loop.time() + BOOKMARK_EVERY, deadline - 1.0)
        while True:
            now = loop.time()
            if now >= deadline:
                return
            if bookmarks and now >= next_bookmark:
                await stream.bookmark(versions.counter)
                next_bookmark = now + BOOKMARK_EVERY
                if now < deadline - 1.0 < next_bookmark:
                    next_bookmark = deadline - 1.0
            wait = min(1.0, deadline - now)
            if bookmarks:
                wait = min(wait, next_bookmark - now)
            try:
                changes = await asyncio.wait_for(watcher.queue.get(), timeout=max(wait, 0.01))
            except TimeoutError:
                if stream.gone():
                    return
                continue
            if changes is None or self.closing:
                return
            if watcher.overflowed:
                await stream.error(_status(410, "Expired", "the watch fell too far behind"))
                return
            await stream.changes(changes, wanted)


class _Stream:
    """Writes WatchEvents on one response."""

    def __init__(
        self,
        request: web.Request,
        response: web.StreamResponse,
        resource: Resource,
        table: TableOf | None,
    ) -> None:
        self.request = request
        self.response = response
        self.resource = resource
        self.table = table

    def gone(self) -> bool:
        transport = self.request.transport
        return transport is None or transport.is_closing()

    async def _write(self, kind: str, obj: dict[str, Any]) -> None:
        line = json.dumps({"type": kind, "object": obj}, separators=(",", ":")) + "\n"
        await self.response.write(line.encode())

    async def event(self, kind: str, obj: dict[str, Any]) -> None:
        if self.table is not None:
            obj = self.table([obj], obj["metadata"].get("resourceVersion", ""))
        await self._write(kind, obj)

    async def changes(self, changes: Iterable[Change], wanted: Match) -> None:
        for c in changes:
            if c.resource != self.resource.qualified:
                continue
            now, before = wanted(c.object), c.old is not None and wanted(c.old)
            if c.type == "MODIFIED" and now != before:
                # as the API server's cache: leaving the selection is a DELETED, entering it
                # an ADDED
                await self.event("ADDED" if now else "DELETED", c.object)
            elif now:
                await self.event(c.type, c.object)

    async def bookmark(self, version: int, *, initial_end: bool = False) -> None:
        meta: dict[str, Any] = {"resourceVersion": str(version)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        await self._write(
            "BOOKMARK",
            {"kind": self.resource.kind, "apiVersion": self.resource.group_version,
             "metadata": meta},
        )  # fmt: skip

    async def error(self, status: dict[str, Any]) -> None:
        await self._write("ERROR", status)
