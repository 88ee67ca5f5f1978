"""``multihome kubeconfig --merge``: the lab as a cluster, user and context in the user's own
kubeconfig (``$KUBECONFIG``'s first file, else ``~/.kube/config``), on request only, and
``down`` takes out exactly what was put in.

The entries are named as in the lab's kubeconfig (``multihome-LAB``, ``multihome-LAB-admin``);
merging again replaces them (idempotent); every other entry, the preferences and
``current-context`` are kept (the current context is only set when the file had none). The
file is rewritten atomically with mode 0600 (and its owner kept when root writes a user's
file). What was added, to which files, is recorded in ``LABDIR/kubeconfig-merged.json``;
``unmerge`` removes those entries only while they still point at the lab's server (an entry
the user re-pointed is theirs), and unsets ``current-context`` if it names the removed
context."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from multihome.lab.state import LabState, StateError

from . import KUBECONFIG_FILE

MERGED_FILE = "kubeconfig-merged.json"


class MergeError(Exception):
    """A kubeconfig that cannot be merged into (what, where, how to fix)."""


def target_path(env: dict[str, str] | None = None) -> Path:
    """The file kubectl writes to: the first of ``$KUBECONFIG``, else ``~/.kube/config``."""
    env = dict(os.environ) if env is None else env
    for part in env.get("KUBECONFIG", "").split(os.pathsep):
        if part.strip():
            return Path(part).expanduser()
    return Path(env.get("HOME") or Path.home()) / ".kube" / "config"


def _load(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise MergeError(f"cannot read {path}: {exc.strerror}") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MergeError(
            f"{path} is not YAML kubectl reads ({exc}); fix it or point KUBECONFIG at another file"
        ) from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict) or doc.get("kind", "Config") != "Config":
        raise MergeError(f"{path} is not a kubeconfig (kind: Config); nothing was changed")
    for key in ("clusters", "users", "contexts"):
        if not isinstance(doc.get(key) or [], list):
            raise MergeError(f"{path}: {key} is not a list; nothing was changed")
    return doc


def _write(path: Path, doc: dict[str, Any]) -> None:
    real = Path(os.path.realpath(path))
    parent = real.parent
    made_parent = not parent.exists()
    parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        st = os.stat(real)
        owner: tuple[int, int] | None = (st.st_uid, st.st_gid)
    except FileNotFoundError:
        pst = os.stat(parent if not made_parent else parent.parent)
        owner = (pst.st_uid, pst.st_gid)
    fd, tmp = tempfile.mkstemp(prefix=".multihome-", dir=parent)
    try:
        with os.fdopen(fd, "w") as fh:
            os.fchmod(fh.fileno(), 0o600)
            if os.geteuid() == 0 and owner is not None:
                os.fchown(fh.fileno(), *owner)
            yaml.safe_dump(doc, fh, sort_keys=False, default_flow_style=False)
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    if made_parent and os.geteuid() == 0 and owner is not None:
        with contextlib.suppress(OSError):
            os.chown(parent, *owner)


def _named(entries: list[dict[str, Any]], name: str) -> dict[str, Any] | None:
    return next((e for e in entries if isinstance(e, dict) and e.get("name") == name), None)


def merge(state: LabState, path: Path | None = None) -> tuple[Path, str]:
    """Add the lab's cluster, user and context to ``path`` (default :func:`target_path`);
    returns the file and the context's name."""
    path = path or target_path()
    try:
        ours = yaml.safe_load(state.read_text(state.dir / KUBECONFIG_FILE))
    except (StateError, OSError) as exc:
        raise MergeError(f"lab {state.name!r} has no kubeconfig to merge ({exc})") from exc
    doc = _load(path)
    doc.setdefault("apiVersion", "v1")
    doc.setdefault("kind", "Config")
    for key in ("clusters", "users", "contexts"):
        mine = ours[key][0]
        entries = [
            e
            for e in (doc.get(key) or [])
            if not (isinstance(e, dict) and e.get("name") == mine["name"])
        ]
        entries.append(mine)
        doc[key] = entries
    context = ours["contexts"][0]["name"]
    if not doc.get("current-context"):
        doc["current-context"] = context
    doc.setdefault("preferences", {})
    _write(path, doc)
    record = {
        "path": os.path.realpath(path),
        "cluster": ours["clusters"][0]["name"],
        "user": ours["users"][0]["name"],
        "context": context,
        "server": ours["clusters"][0]["cluster"]["server"],
    }
    records = [r for r in _records(state) if r["path"] != record["path"]] + [record]
    state.write_atomic(state.dir / MERGED_FILE, json.dumps(records))
    return Path(record["path"]), context


def _records(state: LabState) -> list[dict[str, str]]:
    marker = state.dir / MERGED_FILE
    try:
        if not state.has(marker):
            return []
        found = json.loads(state.read_text(marker))
    except (StateError, OSError, ValueError):
        return []
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def unmerge(state: LabState) -> list[Path]:
    """Take out of the user's kubeconfigs what :func:`merge` put there; the files changed."""
    changed = []
    for record in _records(state):
        path = _unmerge_one(record)
        if path is not None:
            changed.append(path)
    return changed


def _unmerge_one(record: dict[str, str]) -> Path | None:
    path = Path(record["path"])
    try:
        doc = _load(path)
    except MergeError:
        return None  # the user made it something else since: theirs
    if not doc:
        return None
    cluster = _named(doc.get("clusters") or [], record["cluster"])
    if cluster is None or (cluster.get("cluster") or {}).get("server") != record["server"]:
        return None  # re-pointed (or removed) by the user: leave all of it
    doc["clusters"] = [e for e in doc["clusters"] if e is not cluster]
    users = doc.get("users") or []
    doc["users"] = [
        e for e in users if not (isinstance(e, dict) and e.get("name") == record["user"])
    ]
    contexts = doc.get("contexts") or []
    doc["contexts"] = [
        e for e in contexts if not (isinstance(e, dict) and e.get("name") == record["context"])
    ]
    if doc.get("current-context") == record["context"]:
        doc["current-context"] = ""
    _write(path, doc)
    return path
