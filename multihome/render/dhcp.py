"""The comment of multihome's own dhcp daemon DaemonSet (``plan.charts`` builds it)."""

from __future__ import annotations

from multihome.plan import Plan
from multihome.plan.charts import CNI_BIN, IMAGE, DHCPDaemon
from multihome.render.yamltext import wrap


def header(daemon: DHCPDaemon, plan: Plan, removal: str) -> list[str]:
    """What the DaemonSet does, for its comment; ``removal``: how to take it out."""
    nodes = ", ".join(n.name for n in daemon.nodes)
    return wrap(
        f"The CNI dhcp daemon, for the dhcp IPAM of {', '.join(daemon.nads)}. "
        f"multihome: lab {plan.name}.",
        f"{daemon.reason}: this DaemonSet, modelled on the later chart's, runs it on {nodes}, "
        "the nodes that may run such pods (add a node's name to the affinity when it may too).",
        f"The daemon is the node's {CNI_BIN}/dhcp, which rke2-multus installs; the image only "
        f"gives the shell around it ({IMAGE}; mirror it for an air-gapped cluster).",
        "After an upgrade to an RKE2 release whose chart starts the daemon, set "
        f"manifests.dhcpDaemonSet: true in the rke2-multus values and {removal}.",
    )
