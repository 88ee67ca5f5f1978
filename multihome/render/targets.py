"""The file set of each target, from the plan (pure: nothing is read or written here)."""

from __future__ import annotations

from enum import StrEnum

from multihome.plan import Plan
from multihome.render.manifests import manifest_files
from multihome.render.netplan import netplan_file
from multihome.render.rancher import cluster_file, node_ip_config
from multihome.render.rbac import rbac_file
from multihome.render.readme import rancher_readme, rke2_readme
from multihome.render.rke2 import helm_chart_configs, node_config
from multihome.render.token import Token
from multihome.render.tree import RenderedFile


class Target(StrEnum):
    """What the files are for: a plain RKE2 cluster, or one Rancher provisions."""

    rke2 = "rke2"
    rancher = "rancher"


def render_files(plan: Plan, target: Target, token: Token | None) -> tuple[RenderedFile, ...]:
    """Every file of the target, sorted by path."""
    files = [netplan_file(plan, node) for node in plan.nodes]
    files += manifest_files(plan)
    files.append(rbac_file(plan))
    if target is Target.rke2:
        files += [node_config(plan, node, token) for node in plan.nodes]
        files += helm_chart_configs(plan)
        files.append(RenderedFile("README.md", rke2_readme(plan, token), "markdown"))
    else:
        files += [node_ip_config(plan, node) for node in plan.nodes]
        files.append(cluster_file(plan))
        files.append(RenderedFile("README.md", rancher_readme(plan), "markdown"))
    paths = [f.path for f in files]
    duplicates = sorted({p for p in paths if paths.count(p) > 1})
    if duplicates:
        raise ValueError(f"two rendered files share the path {duplicates[0]}")
    return tuple(sorted(files, key=lambda f: f.path))
