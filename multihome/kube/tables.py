"""Server-side printing: the ``meta.k8s.io/v1`` Table the API server answers for ``Accept:
application/json;as=Table;v=v1;g=meta.k8s.io``, with the columns of the real printers
(kubernetes pkg/printers/internalversion: pods, nodes, namespaces) and the CRD default (Name,
Age) for NetworkAttachmentDefinitions. Rows carry the object's metadata
(PartialObjectMetadata), which kubectl uses for ``-A``'s NAMESPACE and ``-L`` columns."""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable
from typing import Any

Row = list[Any]

_NAME = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. Is required when creating "
    "resources, although some resources may allow a client to request the generation of an "
    "appropriate name automatically. Name is primarily intended for creation idempotence and "
    "configuration definition. Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "priority": 0,
}
_AGE_DESC = (
    "CreationTimestamp is a timestamp representing the server time when this object was "
    "created. It is not guaranteed to be set in happens-before order across separate "
    "operations. Clients may not set this value. It is represented in RFC3339 form and is in "
    "UTC.\n\nPopulated by the system. Read-only. Null for lists. More info: "
    "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata"
)


def _col(name: str, description: str, priority: int = 0, type_: str = "string") -> dict[str, Any]:
    return {"name": name, "type": type_, "format": "", "description": description,
            "priority": priority}  # fmt: skip


def human_duration(seconds: float) -> str:
    """k8s.io/apimachinery/pkg/util/duration.HumanDuration."""
    if seconds < -1:
        return "<invalid>"
    s = int(max(seconds, 0))
    if s < 120:
        return f"{s}s"
    m = s // 60
    if m < 10:
        return f"{m}m{s % 60}s" if s % 60 else f"{m}m"
    if m < 180:
        return f"{m}m"
    h = s // 3600
    if h < 8:
        return f"{h}h{m % 60}m" if m % 60 else f"{h}h"
    if h < 48:
        return f"{h}h"
    if h < 24 * 8:
        return f"{h // 24}d{h % 24}h" if h % 24 else f"{h // 24}d"
    if h < 24 * 365 * 2:
        return f"{h // 24}d"
    if h < 24 * 365 * 8:
        y = h // (24 * 365)
        d = (h // 24) % 365
        return f"{y}y{d}d" if d else f"{y}y"
    return f"{h // (24 * 365)}y"


def age(obj: dict[str, Any], now: float | None = None) -> str:
    stamp = obj["metadata"].get("creationTimestamp")
    if not stamp:
        return "<unknown>"
    created = datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.UTC)
    return human_duration((now if now is not None else time.time()) - created.timestamp())


# -- pods ------------------------------------------------------------------------------------
POD_COLUMNS = [
    _NAME,
    _col("Ready", "The aggregate readiness state of this pod for accepting traffic."),
    _col("Status", "The aggregate status of the containers in this pod."),
    _col("Restarts", "The number of times the containers in this pod have been restarted "
         "and when the last container in this pod has restarted."),
    _col("Age", _AGE_DESC),
    _col("IP", "IP address allocated to the pod. Routable at least within the cluster. "
         "Empty if not yet allocated.", 1),
    _col("Node", "NodeName is a request to schedule this pod onto a specific node. If it is "
         "non-empty, the scheduler simply schedules this pod onto that node, assuming that "
         "it fits resource requirements.", 1),
    _col("Nominated Node", "nominatedNodeName is set only when this pod preempts other pods "
         "on the node, but it cannot be scheduled right away as preemption victims receive "
         "their graceful termination periods.", 1),
    _col("Readiness Gates", "If specified, all readiness gates will be evaluated for pod "
         "readiness.", 1),
]  # fmt: skip


def pod_row(pod: dict[str, Any], now: float | None = None) -> Row:
    """printPod: READY n/m, STATUS the phase or a waiting container's reason."""
    status = pod.get("status", {})
    containers = pod["spec"].get("containers", [])
    statuses = status.get("containerStatuses", [])
    ready = sum(1 for c in statuses if c.get("ready"))
    reason = status.get("reason") or status.get("phase", "Unknown")
    for c in reversed(statuses):
        waiting = c.get("state", {}).get("waiting")
        if waiting and waiting.get("reason"):
            reason = waiting["reason"]
    if status.get("phase") == "Pending" and not statuses:
        reason = "Pending"
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restarts = sum(int(c.get("restartCount", 0)) for c in statuses)
    ips = [i["ip"] for i in status.get("podIPs", [])]
    gates = pod["spec"].get("readinessGates") or []
    return [
        pod["metadata"]["name"],
        f"{ready}/{len(containers)}",
        reason,
        str(restarts),
        age(pod, now),
        ips[0] if ips else "<none>",
        pod["spec"].get("nodeName") or "<none>",
        status.get("nominatedNodeName") or "<none>",
        f"{len(gates)}/{len(gates)}" if gates else "<none>",
    ]


# -- nodes -----------------------------------------------------------------------------------
NODE_COLUMNS = [
    _NAME,
    _col("Status", "The status of the node"),
    _col("Roles", "The roles of the node"),
    _col("Age", _AGE_DESC),
    _col("Version", "Kubelet Version reported by the node."),
    _col("Internal-IP", "List of addresses reachable to the node. Queried from cloud "
         "provider, if available.", 1),
    _col("External-IP", "List of addresses reachable to the node. Queried from cloud "
         "provider, if available.", 1),
    _col("OS-Image", "OS Image reported by the node from /etc/os-release (e.g. Debian "
         "GNU/Linux 7 (wheezy)).", 1),
    _col("Kernel-Version", "Kernel Version reported by the node from 'uname -r' (e.g. "
         "3.16.0-0.bpo.4-amd64).", 1),
    _col("Container-Runtime", "ContainerRuntime Version reported by the node through "
         "runtime remote API (e.g. containerd://1.4.2).", 1),
]  # fmt: skip


def node_roles(labels: dict[str, str]) -> str:
    roles = set()
    for key, value in labels.items():
        if key.startswith("node-role.kubernetes.io/"):
            roles.add(key.removeprefix("node-role.kubernetes.io/"))
        elif key == "kubernetes.io/role" and value:
            roles.add(value)
    return ",".join(sorted(r for r in roles if r)) or "<none>"


def node_row(node: dict[str, Any], now: float | None = None) -> Row:
    status = node.get("status", {})
    ready = next((c for c in status.get("conditions", []) if c["type"] == "Ready"), None)
    state = "Ready" if ready and ready["status"] == "True" else "NotReady"
    if ready is None:
        state = "Unknown"
    if node["spec"].get("unschedulable"):
        state += ",SchedulingDisabled"
    addr = {a["type"]: a["address"] for a in reversed(status.get("addresses", []))}
    info = status.get("nodeInfo", {})
    return [
        node["metadata"]["name"],
        state,
        node_roles(node["metadata"].get("labels", {})),
        age(node, now),
        info.get("kubeletVersion", ""),
        addr.get("InternalIP", "<none>"),
        addr.get("ExternalIP", "<none>"),
        info.get("osImage") or "<unknown>",
        info.get("kernelVersion") or "<unknown>",
        info.get("containerRuntimeVersion") or "<unknown>",
    ]


# -- namespaces and CRDs ---------------------------------------------------------------------
NAMESPACE_COLUMNS = [
    _NAME,
    _col("Status", "The status of the namespace"),
    _col("Age", _AGE_DESC),
]


def namespace_row(ns: dict[str, Any], now: float | None = None) -> Row:
    return [ns["metadata"]["name"], ns["status"]["phase"], age(ns, now)]


CRD_COLUMNS = [_NAME, _col("Age", _AGE_DESC, type_="date")]


def crd_row(obj: dict[str, Any], now: float | None = None) -> Row:
    return [obj["metadata"]["name"], age(obj, now)]


SETTING_COLUMNS = [
    _NAME,
    _col("Value", "The value of the setting"),
    _col("Age", _AGE_DESC, type_="date"),
]


def setting_row(obj: dict[str, Any], now: float | None = None) -> Row:
    return [obj["metadata"]["name"], str(obj.get("value", "")), age(obj, now)]


# -- workloads -------------------------------------------------------------------------------
_CONTAINERS = _col("Containers", "Names of each container in the template.", 1)
_IMAGES = _col("Images", "Images referenced by each container in the template.", 1)
_SELECTOR = _col("Selector", "Label selector for pods. Existing ReplicaSets whose pods are "
                 "selected by this will be the ones affected by this deployment.", 1)  # fmt: skip
DEPLOYMENT_COLUMNS = [
    _NAME,
    _col("Ready", "Number of the pod with ready state"),
    _col("Up-to-date", "Total number of non-terminated pods targeted by this deployment that "
         "have the desired template spec.", type_="integer"),
    _col("Available", "Total number of available pods (ready for at least minReadySeconds) "
         "targeted by this deployment.", type_="integer"),
    _col("Age", _AGE_DESC),
    _CONTAINERS, _IMAGES, _SELECTOR,
]  # fmt: skip
DAEMONSET_COLUMNS = [
    _NAME,
    _col("Desired", "The total number of nodes that should be running the daemon pod "
         "(including nodes correctly running the daemon pod).", type_="integer"),
    _col("Current", "The number of nodes that are running at least 1 daemon pod and are "
         "supposed to run the daemon pod.", type_="integer"),
    _col("Ready", "numberReady is the number of nodes that should be running the daemon pod "
         "and have one or more of the daemon pod running with a Ready Condition.",
         type_="integer"),
    _col("Up-to-date", "The total number of nodes that are running updated daemon pod",
         type_="integer"),
    _col("Available", "The number of nodes that should be running the daemon pod and have "
         "one or more of the daemon pod running and available (ready for at least "
         "spec.minReadySeconds)", type_="integer"),
    _col("Node Selector", "NodeSelector is a selector which must be true for the pod to fit "
         "on a node. Selector which must match a node's labels for the pod to be scheduled "
         "on that node."),
    _col("Age", _AGE_DESC),
    _CONTAINERS, _IMAGES, _SELECTOR,
]  # fmt: skip
STATEFULSET_COLUMNS = [
    _NAME,
    _col("Ready", "Number of the pod with ready state"),
    _col("Age", _AGE_DESC),
    _CONTAINERS,
    _IMAGES,
]


def _template_containers(obj: dict[str, Any]) -> tuple[str, str]:
    containers = obj["spec"].get("template", {}).get("spec", {}).get("containers", [])
    return (
        ",".join(c.get("name", "") for c in containers),
        ",".join(c.get("image", "") for c in containers),
    )


def format_selector(selector: dict[str, Any] | None) -> str:
    """metav1.FormatLabelSelector: ``k=v,k2 in (a,b)``; ``<none>`` for none."""
    if not selector:
        return "<none>"
    parts = [f"{k}={v}" for k, v in sorted((selector.get("matchLabels") or {}).items())]
    for expr in selector.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin"}.get(expr.get("operator", ""))
        key = expr.get("key", "")
        if op:
            parts.append(f"{key} {op} ({','.join(expr.get('values') or [])})")
        elif expr.get("operator") == "Exists":
            parts.append(key)
        else:
            parts.append(f"!{key}")
    return ",".join(parts) or "<none>"


def deployment_row(obj: dict[str, Any], now: float | None = None) -> Row:
    st = obj.get("status", {})
    names, images = _template_containers(obj)
    return [
        obj["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{obj['spec'].get('replicas', 1)}",
        st.get("updatedReplicas", 0),
        st.get("availableReplicas", 0),
        age(obj, now),
        names,
        images,
        format_selector(obj["spec"].get("selector")),
    ]


def daemonset_row(obj: dict[str, Any], now: float | None = None) -> Row:
    st = obj.get("status", {})
    names, images = _template_containers(obj)
    node_selector = obj["spec"].get("template", {}).get("spec", {}).get("nodeSelector") or {}
    return [
        obj["metadata"]["name"],
        st.get("desiredNumberScheduled", 0),
        st.get("currentNumberScheduled", 0),
        st.get("numberReady", 0),
        st.get("updatedNumberScheduled", 0),
        st.get("numberAvailable", 0),
        ",".join(f"{k}={v}" for k, v in sorted(node_selector.items())) or "<none>",
        age(obj, now),
        names,
        images,
        format_selector(obj["spec"].get("selector")),
    ]


def statefulset_row(obj: dict[str, Any], now: float | None = None) -> Row:
    st = obj.get("status", {})
    names, images = _template_containers(obj)
    return [
        obj["metadata"]["name"],
        f"{st.get('readyReplicas', 0)}/{obj['spec'].get('replicas', 1)}",
        age(obj, now),
        names,
        images,
    ]


# -- events ----------------------------------------------------------------------------------
EVENT_COLUMNS = [
    _col("Last Seen", "Time when last this event was seen"),
    _col("Type", "Type of this event (Normal, Warning), new types could be added in the future"),
    _col("Reason", "This should be a short, machine understandable string that gives the "
         "reason for this event being generated."),
    _col("Object", "The object this Event is about."),
    _col("Subobject", "The subobject this Event is about.", 1),
    _col("Source", "The component reporting this event. Should be a short machine "
         "understandable string.", 1),
    _col("Message", "A human-readable description of the status of this operation."),
    _col("First Seen", "The time at which the event was first recorded.", 1),
    _col("Count", "The number of times this event has occurred.", 1, type_="integer"),
    _col("Name", "The name of the event.", 1),
]  # fmt: skip


def event_row(ev: dict[str, Any], now: float | None = None) -> Row:
    """printEvent: OBJECT as kind/name in lower case, SOURCE as component, host."""
    obj = ev["involvedObject"]
    source = ev.get("source", {})
    where = ", ".join(x for x in (source.get("component"), source.get("host")) if x)

    def seen(key: str) -> str:
        stamp = ev.get(key)
        return age({"metadata": {"creationTimestamp": stamp}}, now) if stamp else "<unknown>"

    return [
        seen("lastTimestamp"),
        ev.get("type", ""),
        ev.get("reason", ""),
        f"{obj['kind'].lower()}/{obj['name']}",
        obj.get("fieldPath", ""),
        where,
        ev.get("message", "").strip(),
        seen("firstTimestamp"),
        ev.get("count", 1),
        ev["metadata"]["name"],
    ]


def table(
    columns: list[dict[str, Any]],
    row: Callable[[dict[str, Any], float | None], Row],
    objects: list[dict[str, Any]],
    resource_version: str,
) -> dict[str, Any]:
    now = time.time()
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": [
            {
                "cells": row(obj, now),
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": obj["metadata"],
                },
            }
            for obj in objects
        ],
    }
