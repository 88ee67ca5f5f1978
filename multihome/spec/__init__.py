"""The lab file: pydantic models, loading with file:line:column positions.

``load_lab(path)`` reads a multi-document YAML file: one ``kind: Lab`` document (the machines
and wires, :class:`Lab`) plus Kubernetes manifests kept verbatim (:class:`Manifest`), also
from the files the Lab names in ``spec.resources``. Every problem is a :class:`SpecError`
pointing at its place; every node's place is available afterwards through
``LabFile.locate`` and ``Manifest.locate`` for the design checks.
"""

from .cnijson import ConfigJSONError, parse_cni_json
from .errors import Location, SpecError
from .k8s import (
    DEFAULT_NETWORK_ANNOTATION,
    NETWORK_STATUS_ANNOTATION,
    NETWORKS_ANNOTATION,
    Container,
    NADView,
    NamespaceView,
    ObjectMeta,
    ObjectView,
    PodSpec,
    PodView,
    SettingView,
    TemplateMeta,
    Toleration,
    WorkloadView,
)
from .labfile import LabFile
from .loader import load_lab, load_lab_text, seed_path
from .manifests import (
    DEFAULT_NAMESPACE,
    KINDS,
    SUPPORTED_KINDS,
    WORKLOAD_KINDS,
    Manifest,
    PodTemplate,
)
from .models import (
    API_VERSION,
    DHCP,
    NIC,
    Canal,
    Cluster,
    Expect,
    Host,
    Lab,
    LabMetadata,
    LabSpec,
    Longhorn,
    Network,
    Node,
    Serve,
    Taint,
    VLANInterface,
)
from .types import IPAddr, IPNet
from .yamlpos import PathItem

__all__ = [
    "API_VERSION",
    "DEFAULT_NAMESPACE",
    "DEFAULT_NETWORK_ANNOTATION",
    "DHCP",
    "KINDS",
    "NETWORKS_ANNOTATION",
    "NETWORK_STATUS_ANNOTATION",
    "NIC",
    "SUPPORTED_KINDS",
    "WORKLOAD_KINDS",
    "Canal",
    "Cluster",
    "ConfigJSONError",
    "Container",
    "Expect",
    "Host",
    "IPAddr",
    "IPNet",
    "Lab",
    "LabFile",
    "LabMetadata",
    "LabSpec",
    "Location",
    "Longhorn",
    "Manifest",
    "NADView",
    "NamespaceView",
    "Network",
    "Node",
    "ObjectMeta",
    "ObjectView",
    "PathItem",
    "PodSpec",
    "PodTemplate",
    "PodView",
    "Serve",
    "SettingView",
    "SpecError",
    "Taint",
    "TemplateMeta",
    "Toleration",
    "VLANInterface",
    "WorkloadView",
    "load_lab",
    "load_lab_text",
    "parse_cni_json",
    "seed_path",
]
