"""``LabFile``: a loaded lab, its manifests, and where everything was written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import Location
from .manifests import Manifest, PodTemplate
from .models import Lab
from .yamlpos import Document, PathItem


@dataclass(frozen=True, eq=False)
class LabFile:
    """The result of loading: the Lab model, the manifests in order, and positions."""

    lab: Lab
    manifests: list[Manifest]
    """Lab-file manifests in document order, then each ``spec.resources`` entry's in order."""
    path: Path
    """The lab file (``Path(filename)`` for :func:`load_lab_text`)."""
    document: Document
    """The Lab document, for positions."""
    files: list[Path] = field(default_factory=list)
    """Every file read: the lab file (when read from disk), then the resources."""

    def locate(self, *path: PathItem) -> Location:
        """Where the value at the key path of the Lab document starts, or its nearest
        existing ancestor: ``lf.locate("spec", "nodes", 3, "nics", 1, "name")``."""
        return self.document.locate(*path)

    def locate_key(self, *path: PathItem) -> Location:
        """Where the key that ends the path is written (else as :meth:`locate`)."""
        return self.document.locate_key(*path)

    def has(self, *path: PathItem) -> bool:
        """Whether the key path was written in the Lab document (not a default)."""
        return self.document.pos.has(path)

    def find(self, kind: str, namespace: str | None, name: str) -> Manifest | None:
        """The first manifest of that kind and name (namespace ignored for a Namespace;
        None means ``default`` for namespaced kinds)."""
        for manifest in self.manifests:
            if manifest.kind != kind or manifest.name != name:
                continue
            if manifest.namespace is None or manifest.namespace == (namespace or "default"):
                return manifest
        return None

    def of_kind(self, *kinds: str) -> list[Manifest]:
        """The manifests of those kinds, in order."""
        return [m for m in self.manifests if m.kind in kinds]

    def nads(self) -> list[Manifest]:
        """The NetworkAttachmentDefinitions (view: ``NADView``)."""
        return self.of_kind("NetworkAttachmentDefinition")

    def pods_and_templates(self) -> list[PodTemplate]:
        """Every pod as written: Pods, and Deployment/DaemonSet/StatefulSet templates."""
        found = (m.pod_template() for m in self.manifests)
        return [t for t in found if t is not None]
