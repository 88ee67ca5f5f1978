"""libcni's result cache: one JSON file per attachment, in libcni's layout and format.

``<cacheDir>/results/<network>-<containerID>-<ifname>`` holds
``{"kind": "cniCacheV1", "containerId", "config" (base64 of the list's JSON), "ifName",
"networkName", "netns", "cniArgs", "capabilityArgs", "result"}``. Files are written atomically
(temp file + rename) with mode 0600 in 0700 directories, as libcni makes them.
:func:`update_result` replaces only the ``result`` of an existing entry (what Multus does to
the cache after it moves default routes).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

KIND = "cniCacheV1"


def result_path(cache_dir: Path, network: str, container_id: str, ifname: str) -> Path:
    """Callers validate the three names first (libcni's ID and ifname rules)."""
    return cache_dir / "results" / f"{network}-{container_id}-{ifname}"


def write(
    cache_dir: Path,
    *,
    network: str,
    container_id: str,
    ifname: str,
    netns: str,
    config: bytes,
    cni_args: Sequence[tuple[str, str]],
    capability_args: Mapping[str, Any],
    result: Mapping[str, Any],
) -> Path:
    entry: dict[str, Any] = {
        "kind": KIND,
        "containerId": container_id,
        "config": base64.b64encode(config).decode(),
        "ifName": ifname,
        "networkName": network,
    }
    if netns:
        entry["netns"] = netns
    if cni_args:
        entry["cniArgs"] = [[k, v] for k, v in cni_args]
    if capability_args:
        entry["capabilityArgs"] = dict(capability_args)
    entry["result"] = dict(result)
    path = result_path(cache_dir, network, container_id, ifname)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _replace(path, entry)
    return path


def update_result(
    cache_dir: Path,
    network: str,
    container_id: str,
    ifname: str,
    result: Mapping[str, Any],
) -> bool:
    """Replace the ``result`` of an existing entry, keeping every other field as it is; a
    file in the older layout (the bare result) stays in that layout. Returns False (and
    writes nothing) when there is no entry; ValueError if the file is not a cache entry."""
    path = result_path(cache_dir, network, container_id, ifname)
    entry = read(cache_dir, network, container_id, ifname)
    if entry is None:
        return False
    if "kind" in entry:
        entry["result"] = dict(result)
        _replace(path, entry)
    else:
        _replace(path, dict(result))
    return True


def read(cache_dir: Path, network: str, container_id: str, ifname: str) -> dict[str, Any] | None:
    """The cached entry, None if there is none; ValueError if the file is not a cache entry.
    A file in libcni's older layout (the bare result) is read as ``{"result": ...}``."""
    path = result_path(cache_dir, network, container_id, ifname)
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: not a JSON object")
    if "kind" not in data:
        return {"result": data}
    if data["kind"] != KIND:
        raise ValueError(f"{path}: unknown cache kind {data['kind']!r}")
    return data


def _replace(path: Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as JSON to ``path`` atomically, mode 0600 (mkstemp's)."""
    text = json.dumps(data).encode()  # the C encoder in one go (json.dump goes by pieces)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        try:
            view = memoryview(text)
            while view:
                view = view[os.write(fd, view) :]
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def remove(cache_dir: Path, network: str, container_id: str, ifname: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        result_path(cache_dir, network, container_id, ifname).unlink()
