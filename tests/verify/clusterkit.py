"""A cluster's API for the live verify's tests without a cluster: the recorded objects of
``fixtures/cluster-seed.json`` served by lightkube's own HTTP transport layer (an httpx
``MockTransport``), as list answers, and a kubeconfig that points at it."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import httpx2
import yaml

FIXTURE = Path(__file__).parent / "fixtures" / "cluster-seed.json"
PATHS = {
    "/api/v1/nodes": ("nodes", "NodeList"),
    "/api/v1/pods": ("pods", "PodList"),
    "/api/v1/events": ("events", "EventList"),
    "/apis/apps/v1/daemonsets": ("daemonsets", "DaemonSetList"),
    "/apis/k8s.cni.cncf.io/v1/network-attachment-definitions": ("nads", "List"),
    "/apis/longhorn.io/v1beta2/settings": ("settings", "SettingList"),
    "/apis/longhorn.io/v1beta2/replicas": ("replicas", "ReplicaList"),
}


def recorded() -> dict[str, Any]:
    """A fresh copy of the recorded objects (tests change their copy)."""
    return copy.deepcopy(json.loads(FIXTURE.read_text()))


def transport(objects: dict[str, Any], seen: list[str] | None = None) -> httpx2.MockTransport:
    """Answers GETs of the lists with ``objects``' items; a kind it lacks is 404 with a
    metav1.Status, as an API server without that CRD answers."""

    def handle(request: httpx2.Request) -> httpx2.Response:
        if seen is not None:
            seen.append(request.url.path)
        key, kind = PATHS.get(request.url.path, (None, None))
        if key is None or objects.get(key) is None:
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": "the server could not find the requested resource",
                "reason": "NotFound",
                "details": {},
                "code": 404,
            }
            return httpx2.Response(404, json=status)
        body = {
            "kind": kind,
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "4711"},
            "items": objects[key],
        }
        return httpx2.Response(200, json=body)

    return httpx2.MockTransport(handle)


def kubeconfig(path: Path, server: str = "https://cluster.invalid:6443") -> Path:
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c", "cluster": {"server": server}}],
        "users": [{"name": "u", "user": {"token": "not-a-secret"}}],
        "contexts": [{"name": "rke2", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "rke2",
    }
    path.write_text(yaml.safe_dump(doc))
    return path
