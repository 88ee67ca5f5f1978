"""The lab's manifests, kept verbatim and grouped in the order they are applied: namespaces,
then networks (NADs), then workloads, then Longhorn's settings (which need Longhorn)."""

from __future__ import annotations

from typing import Literal

from multihome.plan.model import ManifestPlan
from multihome.spec import LabFile, Manifest

Group = Literal["namespaces", "networks", "workloads", "longhorn"]
GROUPS: dict[str, Group] = {
    "Namespace": "namespaces",
    "NetworkAttachmentDefinition": "networks",
    "Pod": "workloads",
    "Deployment": "workloads",
    "DaemonSet": "workloads",
    "StatefulSet": "workloads",
    "Setting": "longhorn",
}
ORDER: tuple[Group, ...] = ("namespaces", "networks", "workloads", "longhorn")


def _plan(manifest: Manifest) -> ManifestPlan:
    group = GROUPS.get(manifest.kind, "workloads")
    return ManifestPlan(
        group=group,
        kind=manifest.kind,
        api_version=manifest.api_version,
        namespace=manifest.namespace,
        name=manifest.name,
        body=manifest.body,
    )


def manifest_plans(lab_file: LabFile) -> tuple[ManifestPlan, ...]:
    """Every manifest, grouped in apply order; lab order within a group."""
    plans = [_plan(m) for m in lab_file.manifests]
    return tuple(sorted(plans, key=lambda p: ORDER.index(p.group)))
