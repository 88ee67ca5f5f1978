"""The object metadata the API server keeps for what is written through it: uid,
generation, creationTimestamp, managedFields, a deletion under way and the last reconcile's
error (resourceVersions are ``versions``', for writes and the lab's changes alike), persisted
in the lab's directory (``api-objects.json``, through the lab's ``LabState``) so they stay
the same across re-reads and restarts."""

from __future__ import annotations

import json
import uuid
from typing import Any

from multihome.lab.state import LabState

META_FILE = "api-objects.json"


def key(kind: str, namespace: str | None, name: str) -> str:
    return f"{kind}/{namespace or ''}/{name}"


def new_uid() -> str:
    return str(uuid.uuid4())


class MetaStore:
    """``{key: {uid, creationTimestamp, generation, managedFields, deletionTimestamp}}``."""

    def __init__(self, state: LabState) -> None:
        self.state = state
        self.path = state.dir / META_FILE
        self.entries: dict[str, dict[str, Any]] = {}
        self.error: str | None = None
        if state.has(self.path):
            data = json.loads(state.read_text(self.path))
            self.entries = data.get("objects", {})
            self.error = data.get("reconcileError")

    def save(self) -> None:
        data = {"objects": self.entries, "reconcileError": self.error}
        self.state.write_atomic(self.path, json.dumps(data, indent=1) + "\n")

    def get(self, k: str) -> dict[str, Any] | None:
        return self.entries.get(k)

    def put(self, k: str, entry: dict[str, Any]) -> None:
        self.entries[k] = entry

    def drop(self, k: str) -> None:
        self.entries.pop(k, None)
