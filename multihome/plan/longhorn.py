"""Longhorn's storage network: from ``spec.longhorn`` or the lab's ``storage-network``
Setting."""

from __future__ import annotations

from multihome.plan.errors import PlanError
from multihome.plan.model import LonghornPlan
from multihome.plan.pods import LONGHORN_INTERFACE
from multihome.spec import LabFile

SETTING_NAME = "storage-network"


def longhorn_plan(lab_file: LabFile) -> LonghornPlan | None:
    """The storage network, or None when the lab sets none."""
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
    return LonghornPlan(
        storage_network=value, setting_in_lab=bool(settings), interface=LONGHORN_INTERFACE
    )
