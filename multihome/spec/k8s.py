"""Light pydantic views of the Kubernetes objects multihome reads.

A manifest is kept verbatim as a dict (``Manifest.body``); these views type only the parts
the tool uses and let everything else through (``extra="allow"``). Types are as strict as
the Kubernetes API's: a label or annotation value must be a string, ``replicas`` an integer.
A key written as ``null`` counts as absent when the key has a default, as in Kubernetes.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, Strict

from .base import CamelModel

NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
"""The pod annotation that selects extra networks (Multus / NPWG)."""
NETWORK_STATUS_ANNOTATION = "k8s.v1.cni.cncf.io/network-status"
DEFAULT_NETWORK_ANNOTATION = "v1.multus-cni.io/default-network"


class View(CamelModel):
    """Base of the views: camelCase aliases, unknown keys kept, immutable."""

    model_config = ConfigDict(extra="allow")


class TemplateMeta(View):
    """Metadata of a pod template (``name`` optional)."""

    name: str | None = None
    namespace: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)


class ObjectMeta(TemplateMeta):
    """Metadata of an object (``name`` required)."""

    name: str


class Toleration(View):
    key: str | None = None
    operator: str | None = None
    value: str | None = None
    effect: str | None = None
    toleration_seconds: Annotated[int, Strict()] | None = None


class Container(View):
    name: str
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None


class PodSpec(View):
    node_name: str | None = None
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    containers: list[Container]
    host_network: Annotated[bool, Strict()] = False


class LabelSelector(View):
    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[dict[str, Any]] = Field(default_factory=list)


class PodTemplateSpec(View):
    metadata: TemplateMeta = Field(default_factory=TemplateMeta)
    spec: PodSpec


class WorkloadSpec(View):
    """The spec of a Deployment, DaemonSet or StatefulSet."""

    replicas: Annotated[int, Strict()] | None = None
    selector: LabelSelector | None = None
    template: PodTemplateSpec


class NADSpec(View):
    config: str | None = None
    """The CNI configuration (conf or conflist) as a JSON string."""


class ObjectView(View):
    """What every manifest has."""

    api_version: str
    kind: str
    metadata: ObjectMeta


class NamespaceView(ObjectView):
    pass


class NADView(ObjectView):
    spec: NADSpec = Field(default_factory=NADSpec)


class PodView(ObjectView):
    spec: PodSpec


class WorkloadView(ObjectView):
    spec: WorkloadSpec


class SettingView(ObjectView):
    """A Longhorn Setting: its value is a top-level string."""

    value: str
