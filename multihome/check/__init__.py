"""Design checks (``multihome validate``): findings over a loaded lab, before anything runs.

Each rule module registers its checks; :func:`run_checks` applies them all.
"""

from multihome.check import (  # noqa: F401
    addressing,
    bridgevlan,
    cluster,
    expect,
    ipam,
    nads,
    objects,
    plugins,
    pods,
    storage,
    trunks,
    vlanplugin,
    whereabouts,
)
from multihome.check.findings import Finding, Kind, Severity
from multihome.check.registry import CHECKS, refusals, run_checks

__all__ = ["CHECKS", "Finding", "Kind", "Severity", "refusals", "run_checks"]
