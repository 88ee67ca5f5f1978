"""What of a rendering goes through the Kubernetes API (``multihome apply``) and what must be
put on machines by hand: the manifests (namespaces, NADs, workloads, Longhorn's settings), the
HelmChartConfigs and multihome's dhcp daemon DaemonSet are API objects (render writes the last
two for the servers' manifests directory, whose objects RKE2 applies through the same API); each
node's config.yaml and netplan file and the DHCP servers of the networks (render writes no file
for them) are not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from multihome.plan import charts
from multihome.render.command import Rendering
from multihome.render.rke2 import SERVER_MANIFESTS


@dataclass(frozen=True)
class ApiObject:
    """One object to apply, and the rendered file it comes from."""

    body: dict[str, Any]
    source: str


@dataclass(frozen=True)
class OffApi:
    """What can't go through the API: where it goes and where ``render -o DIR`` puts it."""

    what: str
    goes_to: str
    rendered: str
    """The path under render's DIR, or a sentence when render writes no file for it."""


def _is_api_file(path: str) -> bool:
    if path.startswith("manifests/"):
        return True
    # the servers' manifests directory: the HelmChartConfigs and the dhcp daemon's DaemonSet
    return path.startswith(SERVER_MANIFESTS + "/") and (
        path.endswith("-config.yaml") or path == f"{SERVER_MANIFESTS}/{charts.NAME}.yaml"
    )


def api_objects(rendering: Rendering) -> list[ApiObject]:
    """Every API object of the rendering, in the rendered files' order."""
    found = []
    for f in rendering.files:
        if f.kind != "manifests" or not _is_api_file(f.path):
            continue
        for doc in yaml.safe_load_all(f.text):
            if isinstance(doc, dict) and doc:
                found.append(ApiObject(doc, f.path))
    return found


def off_api(rendering: Rendering) -> list[OffApi]:
    """What the user puts in place by hand, one entry per kind of file (and per DHCP server)."""
    paths = [f.path for f in rendering.files]
    found: list[OffApi] = []
    configs = [p for p in paths if p.endswith("/etc/rancher/rke2/config.yaml")]
    if configs:
        found.append(
            OffApi(
                f"RKE2's configuration of each node ({len(configs)})",
                "/etc/rancher/rke2/config.yaml on that node (before RKE2 starts there)",
                "nodes/<node>/etc/rancher/rke2/config.yaml",
            )
        )
    netplans = [p for p in paths if "/etc/netplan/" in p]
    if netplans:
        found.append(
            OffApi(
                f"the NICs' netplan of each node ({len(netplans)})",
                "/etc/netplan/ on that node (netplan apply)",
                "nodes/<node>/etc/netplan/60-multihome.yaml",
            )
        )
    for net in rendering.plan.networks:
        if net.dhcp is None:
            continue
        router = f"router {net.dhcp.router}" if net.dhcp.router else "no router (option 3)"
        found.append(
            OffApi(
                f"the DHCP server of {net.name} ({net.subnet})",
                f"the network's DHCP server: range {net.dhcp.start}-{net.dhcp.end}, {router}, "
                f"lease {net.dhcp.lease_time}",
                "no file (the server is the network's, not the cluster's): README.md says "
                "what each pod gets",
            )
        )
    return found
