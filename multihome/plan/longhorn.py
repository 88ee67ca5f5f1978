"""Longhorn: its storage network (from ``spec.longhorn`` or the lab's ``storage-network``
Setting) and its release, the lab's or the one of the cluster version's era."""

from __future__ import annotations

import re

from multihome.plan.errors import PlanError
from multihome.plan.instance_managers import image_for, types_for
from multihome.plan.model import LonghornPlan
from multihome.plan.pods import LONGHORN_INTERFACE
from multihome.spec import LabFile
from multihome.spec.longhorn import LONGHORN_LINES

SETTING_NAME = "storage-network"

ERA: tuple[tuple[tuple[int, int], str], ...] = (
    ((1, 26), "1.4"),
    ((1, 27), "1.5"),
    ((1, 29), "1.6"),
    ((1, 31), "1.7"),
    ((1, 32), "1.8"),
    ((1, 33), "1.9"),
)
"""(newest Kubernetes minor, Longhorn line): the first Longhorn line released after that
Kubernetes minor (Longhorn 1.3's chart stops before Kubernetes 1.25, so 1.25 starts at
1.4); later minors get the newest line known. The README has the table and its sources."""
NEWEST_LINE = list(LONGHORN_LINES)[-1]
_MINOR = re.compile(r"v?([0-9]+)\.([0-9]+)")


def latest(line: str) -> str:
    """The last patch release of a line: ``1.4`` -> ``1.4.4``."""
    return f"{line}.{LONGHORN_LINES[line]}"


def era_version(cluster_version: str | None) -> tuple[str, str]:
    """The Longhorn release for that cluster version, and why."""
    match = _MINOR.match(cluster_version or "")
    if match is None:
        why = "no cluster version" if not cluster_version else f"cluster version {cluster_version}"
        return latest(NEWEST_LINE), f"{why}: the newest line multihome knows"
    minor = (int(match.group(1)), int(match.group(2)))
    line = next((ln for newest, ln in ERA if minor <= newest), NEWEST_LINE)
    return latest(
        line
    ), f"Kubernetes {minor[0]}.{minor[1]}'s era, cluster version {cluster_version}"


def longhorn_plan(lab_file: LabFile) -> LonghornPlan | None:
    """The storage network and release, or None when the lab sets no storage network."""
    settings = [m for m in lab_file.of_kind("Setting") if m.name == SETTING_NAME]
    longhorn = lab_file.lab.spec.longhorn
    value = longhorn.storage_network if longhorn else None
    if value is None and settings:
        raw = settings[0].body.get("value")
        value = raw if isinstance(raw, str) else None
    if not value:
        return None
    namespace, sep, name = value.partition("/")
    if not sep or not namespace or not name or "/" in name:
        raise PlanError(f"Longhorn's storage network {value!r} must be written namespace/name")
    if longhorn is not None and longhorn.version is not None:
        version, why = longhorn.version, "set in the lab file"
    else:
        version, why = era_version(lab_file.lab.spec.cluster.version)
    return LonghornPlan(
        storage_network=value,
        setting_in_lab=bool(settings),
        interface=LONGHORN_INTERFACE,
        version=version,
        version_reason=why,
        instance_manager_image=image_for(version),
        instance_manager_types=types_for(version),
    )
