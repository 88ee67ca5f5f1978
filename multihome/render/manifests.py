"""``manifests/``: the lab's Kubernetes manifests, verbatim, in apply order (namespaces, then
NADs, then workloads), and Longhorn's storage network as a Setting and as Helm values."""

from __future__ import annotations

from typing import Any

from multihome.plan import LONGHORN_NAMESPACE, ManifestPlan, Plan
from multihome.render.tree import RenderedFile
from multihome.render.yamltext import comment, documents, dump

FILES = (
    ("namespaces", "manifests/00-namespaces.yaml", "The lab's namespaces."),
    ("networks", "manifests/10-networks.yaml", "The lab's NetworkAttachmentDefinitions."),
    ("workloads", "manifests/20-workloads.yaml", "The lab's pods and workloads."),
)
LONGHORN_SETTINGS = "manifests/longhorn/settings.yaml"
LONGHORN_VALUES = "manifests/longhorn/values.yaml"


def storage_network_setting(value: str) -> dict[str, Any]:
    """Longhorn's ``storage-network`` Setting, as the Longhorn UI writes it."""
    return {
        "apiVersion": "longhorn.io/v1beta2",
        "kind": "Setting",
        "metadata": {"name": "storage-network", "namespace": LONGHORN_NAMESPACE},
        "value": value,
    }


def helm_install(version: str) -> list[str]:
    """The chart install for that Longhorn release (the chart's version is Longhorn's)."""
    return [
        "helm repo add longhorn https://charts.longhorn.io && helm repo update",
        f"helm install longhorn longhorn/longhorn --version {version} \\",
        "  -n longhorn-system --create-namespace -f manifests/longhorn/values.yaml",
    ]


def _group(plan: Plan, group: str) -> list[ManifestPlan]:
    return [m for m in plan.manifests if m.group == group]


def manifest_files(plan: Plan) -> list[RenderedFile]:
    """The manifest files: one per group that has manifests, plus Longhorn's."""
    files = []
    for group, path, what in FILES:
        found = _group(plan, group)
        if found:
            header = [
                f"{what} multihome: lab {plan.name}, unchanged.",
                "Apply all with: kubectl apply -f manifests/ (files apply in name order).",
            ]
            text = documents([m.body for m in found], header)
            files.append(RenderedFile(path, text, "manifests"))
    settings: list[dict[str, Any]] = [m.body for m in _group(plan, "longhorn")]
    longhorn = plan.longhorn
    if longhorn is not None and not longhorn.setting_in_lab:
        settings.append(storage_network_setting(longhorn.storage_network))
    if settings:
        header = [
            f"Longhorn settings. multihome: lab {plan.name}.",
            "For a running Longhorn (its CRDs installed); changing storage-network needs every",
            "volume detached first. For a new install, use values.yaml beside this file instead.",
        ]
        files.append(RenderedFile(LONGHORN_SETTINGS, documents(settings, header), "manifests"))
    if longhorn is not None:
        values = {"defaultSettings": {"storageNetwork": longhorn.storage_network}}
        values_header = comment(
            [
                f"Longhorn {longhorn.version} Helm values. multihome: lab {plan.name}.",
                *helm_install(longhorn.version),
            ]
        )
        text = values_header + dump(values)
        files.append(RenderedFile(LONGHORN_VALUES, text, "helm-values"))
    return files
