"""``rbac/multihome.yaml``: the ClusterRoles that ``multihome verify --kubeconfig`` (and its
``--probes``) and ``multihome apply`` need on a real cluster, from what they read and write
(``cluster/``).
Not applied by ``apply`` (credentials can't grant themselves rights): an admin applies it
and binds the roles to the user or service account of the kubeconfig."""

from __future__ import annotations

from typing import Any

from multihome.plan import Plan
from multihome.render.tree import RenderedFile
from multihome.render.yamltext import documents

RBAC_FILE = "rbac/multihome.yaml"
READ = ["get", "list"]

VERIFY_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["nodes", "pods", "events"], "verbs": READ},
    {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": READ},
    {"apiGroups": ["k8s.cni.cncf.io"], "resources": ["network-attachment-definitions"],
     "verbs": READ},
    {"apiGroups": ["longhorn.io"], "resources": ["settings", "replicas"], "verbs": READ},
    # the exec tier: the websocket upgrade is a GET, the API server authorises it as create
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
]  # fmt: skip
"""What verify's collector lists (``cluster/read.py``) and execs."""

APPLY_RULES: list[dict[str, Any]] = [
    {"apiGroups": [""], "resources": ["namespaces", "pods"], "verbs": [*READ, "create", "patch"]},
    {"apiGroups": ["apps"], "resources": ["deployments", "daemonsets", "statefulsets"],
     "verbs": [*READ, "create", "patch"]},
    {"apiGroups": ["k8s.cni.cncf.io"], "resources": ["network-attachment-definitions"],
     "verbs": [*READ, "create", "patch"]},
    {"apiGroups": ["helm.cattle.io"], "resources": ["helmchartconfigs"],
     "verbs": [*READ, "create", "patch"]},
    {"apiGroups": ["longhorn.io"], "resources": ["settings"], "verbs": [*READ, "create", "patch"]},
    {"apiGroups": ["longhorn.io"], "resources": ["volumes"], "verbs": READ},
    {"apiGroups": [""], "resources": ["nodes"], "verbs": READ},
]  # fmt: skip
"""What apply applies (server-side apply is a patch; a new object needs create), and what it
reads to refuse a disruptive change (volumes attached, nodes' Canal annotations)."""


PROBES_RULES: list[dict[str, Any]] = [
    # the run's namespace: made, deleted (with what is in it), and a killed run's found by
    # its label and deleted
    {"apiGroups": [""], "resources": ["namespaces"], "verbs": [*READ, "create", "delete"]},
    {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": [*READ, "create", "delete"]},
    {"apiGroups": [""], "resources": ["pods"], "verbs": [*READ, "create", "delete"]},
    {"apiGroups": [""], "resources": ["pods/exec"], "verbs": ["create", "get"]},
]  # fmt: skip
"""What ``verify --kubeconfig --probes`` adds (``cluster/probes.py``): its namespace, the
host-network DaemonSet and the probe pods in it, exec into them. Pod Security: the
namespace is labelled ``enforce: privileged`` (hostNetwork, NET_RAW); an admission policy
beyond Pod Security (Kyverno, Gatekeeper) must admit namespaces named multihome-probes-*."""


def _role(name: str, rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "multihome"}},
        "rules": rules,
    }


def rbac_file(plan: Plan) -> RenderedFile:
    header = [
        f"What multihome needs on the cluster. multihome: lab {plan.name}.",
        "multihome-verify: `multihome verify --kubeconfig` (reads; execs in the design's pods);",
        "multihome-apply: `multihome apply` (it runs verify after, so bind both);",
        "multihome-probes: `multihome verify --kubeconfig --probes` (with multihome-verify).",
        "An admin applies this and binds the roles to the kubeconfig's user, for example:",
        "  kubectl apply -f rbac/multihome.yaml",
        "  kubectl create clusterrolebinding multihome-verify --clusterrole=multihome-verify \\",
        "    --user=NAME   (or --serviceaccount=NAMESPACE:NAME)",
        "`multihome apply` does not apply this file.",
    ]
    roles = [
        _role("multihome-verify", VERIFY_RULES),
        _role("multihome-apply", APPLY_RULES),
        _role("multihome-probes", PROBES_RULES),
    ]
    return RenderedFile(RBAC_FILE, documents(roles, header), "manifests")
