"""Where a pod may run: node labels and taints as RKE2 sets them, and Kubernetes' rules for
nodeName, nodeSelector, taints and tolerations. Pure functions over the spec."""

from __future__ import annotations

from collections.abc import Iterable

from multihome.spec import Cluster, Node, PodSpec, Taint, Toleration

SERVER_TAINT = Taint(key="CriticalAddonsOnly", value="true", effect="NoExecute")
"""What RKE2 servers that run no workloads carry (``node-taint`` in config.yaml)."""

SERVER_ROLE_LABELS = {
    "node-role.kubernetes.io/control-plane": "true",
    "node-role.kubernetes.io/etcd": "true",
    "node-role.kubernetes.io/master": "true",
}
AGENT_ROLE_LABELS = {"node-role.kubernetes.io/worker": "true"}


def node_labels(node: Node) -> dict[str, str]:
    """The labels a node carries on the cluster: the well-known ones, then the lab's own."""
    labels = {
        "kubernetes.io/hostname": node.name,
        "kubernetes.io/os": "linux",
        "kubernetes.io/arch": "amd64",
    }
    labels.update(SERVER_ROLE_LABELS if node.role == "server" else AGENT_ROLE_LABELS)
    labels.update(node.labels)
    return labels


def node_taints(node: Node, cluster: Cluster) -> list[Taint]:
    taints = list(node.taints)
    if node.role == "server" and not cluster.servers_run_workloads:
        taints.insert(0, SERVER_TAINT)
    return taints


def tolerates(toleration: Toleration, taint: Taint) -> bool:
    """Kubernetes' ToleratesTaint."""
    if toleration.effect and toleration.effect != taint.effect:
        return False
    if toleration.key is None or toleration.key == "":
        return toleration.operator == "Exists"
    if toleration.key != taint.key:
        return False
    if toleration.operator == "Exists":
        return True
    return (toleration.value or "") == taint.value


def untolerated(taints: Iterable[Taint], tolerations: list[Toleration]) -> list[Taint]:
    """The taints (NoSchedule / NoExecute) that keep a pod with these tolerations away."""
    return [
        t
        for t in taints
        if t.effect != "PreferNoSchedule" and not any(tolerates(tol, t) for tol in tolerations)
    ]


def eligible_nodes(spec: PodSpec, nodes: list[Node], cluster: Cluster) -> list[Node]:
    """The nodes this pod may be placed on, in lab order.

    ``nodeName`` bypasses the scheduler (so taints other than NoExecute do not apply), as in
    Kubernetes; otherwise nodeSelector must match and every hard taint be tolerated.
    """
    if spec.node_name is not None:
        named = [n for n in nodes if n.name == spec.node_name]
        return [
            n
            for n in named
            if not [
                t
                for t in untolerated(node_taints(n, cluster), spec.tolerations)
                if t.effect == "NoExecute"
            ]
        ]
    found = []
    for node in nodes:
        labels = node_labels(node)
        if any(labels.get(k) != v for k, v in spec.node_selector.items()):
            continue
        if untolerated(node_taints(node, cluster), spec.tolerations):
            continue
        found.append(node)
    return found
