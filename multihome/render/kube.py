"""Core Kubernetes kinds checked against the OpenAPI schema of the lab's cluster version, with
the schemas kubernetes-validate ships (strict: unknown fields are errors too)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import kubernetes_validate.utils as kv  # type: ignore[import-untyped]

_MINOR = re.compile(r"^v?(\d+)\.(\d+)")


@dataclass(frozen=True)
class SchemaVersion:
    """The Kubernetes version whose schemas are used, and why when it is not the lab's."""

    version: str
    """``major.minor``, e.g. ``1.25``."""
    note: str | None


@lru_cache(maxsize=1)
def shipped() -> tuple[tuple[int, int], ...]:
    """The Kubernetes versions kubernetes-validate has schemas for, oldest first."""
    found = set()
    for version in kv.all_versions():
        match = _MINOR.match(str(version))
        if match:
            found.add((int(match.group(1)), int(match.group(2))))
    return tuple(sorted(found))


def schema_version(cluster_version: str | None) -> SchemaVersion:
    """The shipped version for the lab's (``v1.25.9+rke2r1`` -> ``1.25``), else the nearest
    one (the older on a tie), saying so."""
    versions = shipped()
    if not versions:
        raise RuntimeError("kubernetes-validate ships no schemas")
    newest = versions[-1]
    match = _MINOR.match(cluster_version or "")
    if match is None:
        shown = f"{newest[0]}.{newest[1]}"
        return SchemaVersion(
            shown, f"the lab sets no cluster version; validated against Kubernetes {shown}"
        )
    wanted = (int(match.group(1)), int(match.group(2)))
    nearest = min(versions, key=lambda v: (abs((v[0] - wanted[0]) * 1000 + v[1] - wanted[1]), v))
    shown = f"{nearest[0]}.{nearest[1]}"
    if nearest == wanted:
        return SchemaVersion(shown, None)
    return SchemaVersion(
        shown,
        f"no schemas for Kubernetes {wanted[0]}.{wanted[1]} (cluster version "
        f"{cluster_version}) in kubernetes-validate; validated against {shown}, the nearest",
    )


BUILTIN_DOTTED_GROUPS = frozenset(
    {"rbac.authorization.k8s.io", "networking.k8s.io", "storage.k8s.io", "scheduling.k8s.io"}
)
"""Built-in groups with dots (most built-in groups have none; CRDs' groups always have one)."""


def is_core(api_version: str) -> bool:
    """Whether the group is a built-in one (``v1``, ``apps/v1``, ``rbac.authorization.k8s.io``)."""
    group = api_version.rpartition("/")[0]
    return "." not in group or group in BUILTIN_DOTTED_GROUPS


def kube_problem(document: dict[str, Any], version: SchemaVersion) -> str | None:
    """Why the document does not validate against that version's schema, or None."""
    try:
        kv.validate(document, f"{version.version}.0", strict=True)
    except kv.ValidationError as exc:
        where = ".".join(str(p) for p in exc.path) or "(document)"
        return f"{where}: {exc.message} (Kubernetes {version.version} schema)"
    except kv.SchemaNotFoundError as exc:
        return str(exc.message)
    return None
