"""Per-object resourceVersions and the change history that watches replay.

The lab has no etcd: its objects are rebuilt from ``status.json`` each time it changes, and
each time a write through the API changes what is served (the objects are the ones the API
serves: the lab's with the writes' design and metadata overlaid, ``write.Writer.build``), so
this is the one source of versions for list, get, watch and the writes' preconditions. To give
them what the API conventions promise (a resourceVersion that changes when, and only when, the
object changes; versions that grow monotonically across the whole lab, so a list's version is
a point a watch can start from), each new reading of the lab is compared with the last, object
by object (a digest of the object without its resourceVersion): a new object, a changed one and
a vanished one each take the next number of one counter, and become an ADDED, MODIFIED or
DELETED change in a bounded in-memory history. The counter and each object's version and
digest are kept in ``LABDIR/kube-versions.json`` so a restarted API server goes on from where
it was (never reusing a version a client may hold); its history starts empty, so a watch from
an older version gets 410 Gone and relists, as from a compacted etcd."""

from __future__ import annotations

import collections
import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from multihome.lab.state import LabState, StateError

from .objects import LabView

log = logging.getLogger("multihome.kube")

VERSIONS_FILE = "kube-versions.json"
HISTORY = 10_000  # changes kept for watches that resume from a version

Build = Callable[[LabView], list[dict[str, Any]]]


@dataclass(frozen=True)
class Change:
    """One object's change: ``type`` ADDED, MODIFIED or DELETED, at ``version``."""

    version: int
    resource: str  # the resource's qualified name (pods, network-attachment-definitions.k8s...)
    type: str
    object: dict[str, Any]
    old: dict[str, Any] | None = None  # the object before a MODIFIED


def _key(resource: str, obj: dict[str, Any]) -> str:
    meta = obj["metadata"]
    return f"{resource}/{meta.get('namespace', '')}/{meta['name']}"


def _digest(obj: dict[str, Any]) -> str:
    meta = {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}
    text = json.dumps({**obj, "metadata": meta}, sort_keys=True, separators=(",", ":"))
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()


class Versions:
    """The counter, each object's version and the recent changes of one lab."""

    def __init__(self, state: LabState, history: int = HISTORY) -> None:
        self.state = state
        self.counter = 0
        self.known: dict[str, tuple[int, str]] = {}  # key -> (version, digest)
        self.last: dict[str, tuple[str, dict[str, Any]]] = {}  # key -> (resource, object)
        self.history: collections.deque[Change] = collections.deque(maxlen=history)
        self.oldest = 0  # a watch may resume from any version >= this
        self._load()

    @property
    def path(self) -> Any:
        return self.state.dir / VERSIONS_FILE

    def _load(self) -> None:
        try:
            if not self.state.has(self.path):
                return
            doc = json.loads(self.state.read_text(self.path))
            self.counter = int(doc["counter"])
            self.known = {k: (int(v), str(d)) for k, (v, d) in doc["objects"].items()}
        except (StateError, OSError, ValueError, KeyError, TypeError) as exc:
            # a damaged file: restart from the clock in milliseconds, past any count of
            # single steps this lab can have reached, so no version is handed out twice
            log.warning("resourceVersions restart (%s: %s)", self.path, exc)
            self.counter = int(time.time() * 1000)
            self.known = {}

    def _save(self) -> None:
        doc = {"counter": self.counter, "objects": {k: [v, d] for k, (v, d) in self.known.items()}}
        try:
            self.state.write_atomic(self.path, json.dumps(doc, separators=(",", ":")))
        except (StateError, OSError) as exc:  # the lab is going down: versions die with it
            log.warning("cannot keep resourceVersions in %s: %s", self.path, exc)

    def stamp(self, view: LabView, resources: Iterable[tuple[str, Build]]) -> list[Change]:
        """Give every object of ``view`` its version (in place, in the view's memoized
        objects), the view its list version; return the changes since the last reading."""
        first = not self.last
        changes: list[Change] = []
        seen: dict[str, tuple[str, dict[str, Any]]] = {}
        for resource, build in resources:
            for obj in view.objects(resource, build):
                key = _key(resource, obj)
                digest = _digest(obj)
                old = self.known.get(key)
                if old is not None and old[1] == digest:
                    version = old[0]
                else:
                    self.counter += 1
                    version = self.counter
                    self.known[key] = (version, digest)
                    before = self.last.get(key)
                    kind = "ADDED" if before is None else "MODIFIED"
                    changes.append(
                        Change(version, resource, kind, obj, before[1] if before else None)
                    )
                obj["metadata"]["resourceVersion"] = str(version)
                seen[key] = (resource, obj)
        for key in [k for k in self.known if k not in seen]:
            self.counter += 1
            gone = self.last.get(key)
            del self.known[key]
            if gone is not None:
                resource, obj = gone
                meta = {**obj["metadata"], "resourceVersion": str(self.counter)}
                dead = {**obj, "metadata": meta}
                changes.append(Change(self.counter, resource, "DELETED", dead))
        self.last = seen
        view.resource_version = str(self.counter)
        if changes or first:
            self._save()
        if first:
            # what a previous server process saw is not replayable: watches start here
            self.oldest = self.counter
            return []
        self.history.extend(changes)
        if self.history and len(self.history) == self.history.maxlen:
            self.oldest = self.history[0].version - 1
        return changes

    def since(self, version: int) -> list[Change]:
        """The changes after ``version`` (the caller checked ``version >= oldest``)."""
        return [c for c in self.history if c.version > version]
