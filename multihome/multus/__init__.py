"""Multus's part of the NPWG multi-network standard, usable on its own.

The selection annotation (``k8s.v1.cni.cncf.io/networks``), the ordered delegate list for
a pod, ``default-route`` handling, the ``k8s.v1.cni.cncf.io/network-status`` value, and
attaching / detaching a pod by running the delegates through :mod:`multihome.cni`.
"""

from multihome.multus.attach import (
    Attachment,
    PodSandbox,
    attach_pod,
    attach_pod_detailed,
    detach_pod,
)
from multihome.multus.delegates import (
    DEFAULT_NETWORK_ANNOTATION,
    Delegate,
    NadLookup,
    build_delegates,
    cni_args,
)
from multihome.multus.errors import (
    AttachError,
    DelegateError,
    DetachError,
    MultusError,
    SelectionError,
)
from multihome.multus.selection import (
    NETWORKS_ANNOTATION,
    NetworkSelectionElement,
    parse_network_selection,
)
from multihome.multus.status import (
    NETWORK_STATUS_ANNOTATION,
    format_network_status,
    network_status_entries,
)

__all__ = [
    "DEFAULT_NETWORK_ANNOTATION",
    "NETWORKS_ANNOTATION",
    "NETWORK_STATUS_ANNOTATION",
    "AttachError",
    "Attachment",
    "Delegate",
    "DelegateError",
    "DetachError",
    "MultusError",
    "NadLookup",
    "NetworkSelectionElement",
    "PodSandbox",
    "SelectionError",
    "attach_pod",
    "attach_pod_detailed",
    "build_delegates",
    "cni_args",
    "detach_pod",
    "format_network_status",
    "network_status_entries",
    "parse_network_selection",
]
