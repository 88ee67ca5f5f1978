"""Kubernetes manifests in a lab: the supported kinds, ``Manifest`` and pod templates.

A manifest keeps its document verbatim (``body``), a typed view (``view``) and its
positions (``locate``). Namespaced kinds without ``metadata.namespace`` are in ``default``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import Location, SpecError
from .k8s import (
    NETWORKS_ANNOTATION,
    NADView,
    NamespaceView,
    ObjectView,
    PodSpec,
    PodView,
    SettingView,
    TemplateMeta,
    WorkloadView,
)
from .models import API_VERSION, KIND
from .validation import did_you_mean, validate
from .yamlpos import Document, PathItem


@dataclass(frozen=True)
class KindInfo:
    """What the loader knows of a kind."""

    api_versions: tuple[str, ...]
    namespaced: bool
    view: type[ObjectView]


KINDS: dict[str, KindInfo] = {
    "Namespace": KindInfo(("v1",), False, NamespaceView),
    "NetworkAttachmentDefinition": KindInfo(("k8s.cni.cncf.io/v1",), True, NADView),
    "Pod": KindInfo(("v1",), True, PodView),
    "Deployment": KindInfo(("apps/v1",), True, WorkloadView),
    "DaemonSet": KindInfo(("apps/v1",), True, WorkloadView),
    "StatefulSet": KindInfo(("apps/v1",), True, WorkloadView),
    "Setting": KindInfo(("longhorn.io/v1beta2", "longhorn.io/v1beta1"), True, SettingView),
}
"""The Kubernetes kinds a lab file may contain, besides the Lab itself."""

SUPPORTED_KINDS: tuple[str, ...] = (KIND, *KINDS)
WORKLOAD_KINDS = ("Deployment", "DaemonSet", "StatefulSet")
DEFAULT_NAMESPACE = "default"


@dataclass(frozen=True, eq=False)
class Manifest:
    """One Kubernetes object from the lab file or its resources."""

    kind: str
    api_version: str
    name: str
    namespace: str | None
    """The object's namespace (``default`` when not written); None for a Namespace."""
    body: dict[str, Any]
    """The document exactly as written (a JSON-like dict)."""
    view: ObjectView
    """The typed view: NamespaceView, NADView, PodView, WorkloadView or SettingView."""
    document: Document

    @property
    def file(self) -> str:
        return self.document.file

    @property
    def ref(self) -> str:
        """``Kind namespace/name`` (``Kind name`` for a Namespace)."""
        if self.namespace is None:
            return f"{self.kind} {self.name}"
        return f"{self.kind} {self.namespace}/{self.name}"

    def locate(self, *path: PathItem) -> Location:
        """Where the value at the key path starts (or its nearest existing ancestor)."""
        return self.document.locate(*path)

    def locate_key(self, *path: PathItem) -> Location:
        """Where the key that ends the path is written (else as :meth:`locate`)."""
        return self.document.locate_key(*path)

    def has(self, *path: PathItem) -> bool:
        """Whether the key path exists in the document."""
        return self.document.pos.has(path)

    def pod_template(self) -> PodTemplate | None:
        """The pod this manifest is or runs (a Pod, or a workload's template), else None."""
        if isinstance(self.view, PodView):
            return PodTemplate(self, self.view.metadata, self.view.spec, ())
        if isinstance(self.view, WorkloadView):
            template = self.view.spec.template
            return PodTemplate(self, template.metadata, template.spec, ("spec", "template"))
        return None


@dataclass(frozen=True, eq=False)
class PodTemplate:
    """A pod as written: a Pod's metadata and spec, or a workload's pod template."""

    manifest: Manifest
    metadata: TemplateMeta
    spec: PodSpec
    path: tuple[PathItem, ...]
    """Key path of the pod (the part with metadata and spec) inside the manifest."""

    @property
    def namespace(self) -> str:
        return self.manifest.namespace or DEFAULT_NAMESPACE

    @property
    def name(self) -> str:
        """The Pod's name, or the workload's name."""
        return self.manifest.name

    @property
    def annotations(self) -> dict[str, str]:
        return self.metadata.annotations

    @property
    def networks(self) -> str | None:
        """The ``k8s.v1.cni.cncf.io/networks`` annotation, raw; None when absent."""
        return self.metadata.annotations.get(NETWORKS_ANNOTATION)

    def locate(self, *path: PathItem) -> Location:
        """``locate`` relative to the pod: ``t.locate("metadata", "annotations", KEY)``."""
        return self.manifest.locate(*self.path, *path)

    def locate_key(self, *path: PathItem) -> Location:
        return self.manifest.locate_key(*self.path, *path)


def document_kind(doc: Document) -> str:
    """The kind of a document (``Lab`` or one of :data:`KINDS`), with its apiVersion checked."""
    body = doc.value
    if not isinstance(body, dict):
        raise SpecError(
            "a document must be a mapping with apiVersion, kind and metadata",
            doc.locate(),
            "is this document indented correctly, or is a '---' misplaced?",
        )
    kind = body.get("kind")
    if "kind" not in body or not isinstance(kind, str):
        raise SpecError(
            "the document has no kind" if "kind" not in body else "kind must be a string",
            doc.locate("kind"),
            "supported kinds: " + ", ".join(SUPPORTED_KINDS),
        )
    if kind not in SUPPORTED_KINDS:
        suggestion = did_you_mean(kind, SUPPORTED_KINDS)
        supported = "supported kinds: " + ", ".join(SUPPORTED_KINDS)
        raise SpecError(
            f"unsupported kind {kind!r}",
            doc.locate("kind"),
            f"{suggestion} ({supported})" if suggestion else supported,
        )
    accepted = (API_VERSION,) if kind == KIND else KINDS[kind].api_versions
    version = body.get("apiVersion")
    if version not in accepted:
        shown = " or ".join(accepted)
        if "apiVersion" not in body:
            raise SpecError(f"{kind} has no apiVersion", doc.locate(), f"add apiVersion: {shown}")
        raise SpecError(
            f"{kind} must have apiVersion {shown}, not {version!r}",
            doc.locate("apiVersion"),
            f"write apiVersion: {accepted[0]}",
        )
    return kind


def build_manifest(doc: Document, kind: str) -> Manifest:
    """The manifest of a document whose kind :func:`document_kind` accepted."""
    info = KINDS[kind]
    name = (
        doc.value.get("metadata", {}).get("name")
        if isinstance(doc.value.get("metadata"), dict)
        else None
    )
    label = f"{kind} {name}" if isinstance(name, str) else kind
    view = validate(info.view, doc, label)
    namespace = (view.metadata.namespace or DEFAULT_NAMESPACE) if info.namespaced else None
    return Manifest(
        kind=kind,
        api_version=view.api_version,
        name=view.metadata.name,
        namespace=namespace,
        body=doc.value,
        view=view,
        document=doc,
    )
