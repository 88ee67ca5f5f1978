"""The checks verify derives from a lab, one module per family, in the order they are shown:
what a cluster's API says (nodes, Canal's NIC, NADs, Multus' daemons, Longhorn's Setting:
only against a cluster's API), what the pods stand on (nodes' NICs, DHCP servers, dhcp
daemons), their DHCP leases, pods' interfaces and network-status, default routes, the
cluster network and the segment it crosses, reachability and isolation of the networks pods
attach to, node-ip between nodes, Longhorn's storage network, and the lab's ``expect``
entries."""

from __future__ import annotations

from . import api, cluster, expect, infra, leases, longhorn, nodes, pods, reach, routes
from .base import Context, Derive, Judge

FAMILIES: tuple[Derive, ...] = (
    api.derive,
    infra.derive,
    leases.derive,
    pods.derive,
    routes.derive,
    cluster.derive,
    reach.derive,
    nodes.derive,
    longhorn.derive,
    expect.derive,
)

__all__ = ["FAMILIES", "Context", "Derive", "Judge"]
