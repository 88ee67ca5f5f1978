"""What each RKE2 release ships that a design depends on: the rke2-multus chart version (so
whether its values can start the CNI dhcp daemon, and whether that daemon tolerates taints),
and the ``cni`` values its server accepts.

Sources (rancher/rke2 at each release tag, rancher/rke2-charts' packaged charts):

- the chart version: ``CHART_VERSION`` of ``rke2-multus.yaml`` in rancher/rke2's ``Dockerfile``
  up to the v1.26/v1.27 releases of mid-2023, ``charts/chart_versions.yaml`` after;
- the chart's templates: ``assets/rke2-multus/rke2-multus-<version>.tgz`` in rancher/rke2-charts.
  ``templates/dhcp-daemonSet.yaml`` and the value ``manifests.dhcpDaemonSet`` first exist in
  v4.0.2-build2023081104; its DaemonSet tolerates NoSchedule/NoExecute taints from v4.0.204
  (before, it does not run on tainted nodes such as servers with CriticalAddonsOnly);
- the ``cni`` values: ``CNIItems`` (pkg/cli/cmds/server.go, later pkg/cli/types.go) and
  ``validateCNI``, which stops the server with "invalid value provided for --cni flag".

Every release tag of rancher/rke2 that ships Multus, v1.21.2+rke2r1 to v1.36.3+rke2r1, is in the
table (read from a snapshot of August 2026).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

MULTUS_CHARTS_TEXT = """
v1.21.2+rke2r1     v3.7.1-build2021041603
v1.21.3+rke2r1     v3.7.1-build2021041603
v1.21.3+rke2r2     v3.7.1-build2021041604
v1.21.4+rke2r1     v3.7.1-build2021041604
v1.21.4+rke2r2     v3.7.1-build2021041604
v1.21.4+rke2r3     v3.7.1-build2021041604
v1.21.5+rke2r1     v3.7.1-build2021041604
v1.21.5+rke2r2     v3.7.1-build2021041604
v1.21.6+rke2r1     v3.7.1-build2021041604
v1.21.7+rke2r1     v3.7.1-build2021111906
v1.21.7+rke2r2     v3.7.1-build2021111906
v1.21.8+rke2r1     v3.7.1-build2021111906
v1.21.8+rke2r2     v3.7.1-build2021111906
v1.21.9+rke2r1     v3.7.1-build2021111906
v1.21.10+rke2r1    v3.7.1-build2021111906
v1.21.10+rke2r2    v3.7.1-build2021111906
v1.21.11+rke2r1    v3.7.1-build2021111906
v1.21.12+rke2r1    v3.7.1-build2021111906
v1.21.12+rke2r2    v3.7.1-build2021111906
v1.21.13+rke2r1    v3.7.1-build2021111906
v1.21.13+rke2r2    v3.7.1-build2021111906
v1.21.14+rke2r1    v3.7.1-build2021111906
v1.22.3+rke2r1     v3.7.1-build2021100705
v1.22.4+rke2r1     v3.7.1-build2021111906
v1.22.4+rke2r2     v3.7.1-build2021111906
v1.22.5+rke2r1     v3.7.1-build2021111906
v1.22.5+rke2r2     v3.7.1-build2021111906
v1.22.6+rke2r1     v3.7.1-build2021111906
v1.22.7+rke2r1     v3.7.1-build2021111906
v1.22.7+rke2r2     v3.7.1-build2021111906
v1.22.8+rke2r1     v3.7.1-build2021111906
v1.22.9+rke2r1     v3.7.1-build2021111906
v1.22.9+rke2r2     v3.7.1-build2021111906
v1.22.10+rke2r1    v3.8-build2021110402
v1.22.10+rke2r2    v3.8-build2021110402
v1.22.11+rke2r1    v3.8-build2021110403
v1.22.12+rke2r1    v3.8-build2021110403
v1.22.13+rke2r1    v3.8-build2021110403
v1.22.15+rke2r1    v3.8-build2021110403
v1.22.15+rke2r2    v3.8-build2021110403
v1.22.16+rke2r1    v3.8-build2021110403
v1.22.17+rke2r1    v3.8-build2021110403
v1.23.1+rke2r1     v3.7.1-build2021111906
v1.23.1+rke2r2     v3.7.1-build2021111906
v1.23.3+rke2r1     v3.7.1-build2021111906
v1.23.4+rke2r1     v3.7.1-build2021111906
v1.23.4+rke2r2     v3.7.1-build2021111906
v1.23.5+rke2r1     v3.7.1-build2021111906
v1.23.6+rke2r1     v3.7.1-build2021111906
v1.23.6+rke2r2     v3.7.1-build2021111906
v1.23.7+rke2r1     v3.8-build2021110402
v1.23.7+rke2r2     v3.8-build2021110402
v1.23.8+rke2r1     v3.8-build2021110403
v1.23.9+rke2r1     v3.8-build2021110403
v1.23.10+rke2r1    v3.8-build2021110403
v1.23.12+rke2r1    v3.8-build2021110403
v1.23.13+rke2r1    v3.8-build2022101103
v1.23.14+rke2r1    v3.8-build2022101103
v1.23.15+rke2r1    v3.9-build2022102805
v1.23.16+rke2r1    v3.9-build2022102805
v1.23.17+rke2r1    v3.9-build2022102805
v1.24.1+rke2r1     v3.8-build2021110402
v1.24.1+rke2r2     v3.8-build2021110402
v1.24.2+rke2r1     v3.8-build2021110403
v1.24.3+rke2r1     v3.8-build2021110403
v1.24.4+rke2r1     v3.8-build2021110403
v1.24.6+rke2r1     v3.8-build2021110403
v1.24.7+rke2r1     v3.8-build2022101103
v1.24.8+rke2r1     v3.8-build2022101103
v1.24.9+rke2r1     v3.9-build2022102805
v1.24.9+rke2r2     v3.9-build2022102805
v1.24.10+rke2r1    v3.9.3-build2023010901
v1.24.11+rke2r1    v3.9.3-build2023010901
v1.24.12+rke2r1    v3.9.3-build2023010901
v1.24.13+rke2r1    v3.9.3-build2023010902
v1.24.14+rke2r1    v3.9.3-build2023010902
v1.24.15+rke2r1    v3.9.3-build2023010902
v1.24.16+rke2r1    v4.0.2-build2023070701
v1.24.17+rke2r1    v4.0.2-build2023081100
v1.25.0+rke2r1     v3.8-build2021110403
v1.25.2+rke2r1     v3.8-build2021110403
v1.25.3+rke2r1     v3.8-build2022101103
v1.25.4+rke2r1     v3.8-build2022101103
v1.25.5+rke2r1     v3.9-build2022102805
v1.25.5+rke2r2     v3.9-build2022102805
v1.25.6+rke2r1     v3.9.3-build2023010901
v1.25.7+rke2r1     v3.9.3-build2023010901
v1.25.8+rke2r1     v3.9.3-build2023010901
v1.25.9+rke2r1     v3.9.3-build2023010902
v1.25.10+rke2r1    v3.9.3-build2023010902
v1.25.11+rke2r1    v3.9.3-build2023010902
v1.25.12+rke2r1    v4.0.2-build2023070701
v1.25.13+rke2r1    v4.0.2-build2023081100
v1.25.14+rke2r1    v4.0.2-build2023081100
v1.25.15+rke2r1    v4.0.2-build2023081100
v1.25.15+rke2r2    v4.0.2-build2023081100
v1.25.16+rke2r1    v4.0.2-build2023081100
v1.25.16+rke2r2    v4.0.2-build2023081100
v1.26.0+rke2r1     v3.9-build2022102805
v1.26.0+rke2r2     v3.9-build2022102805
v1.26.1+rke2r1     v3.9.3-build2023010901
v1.26.2+rke2r1     v3.9.3-build2023010901
v1.26.3+rke2r1     v3.9.3-build2023010901
v1.26.4+rke2r1     v3.9.3-build2023010902
v1.26.5+rke2r1     v3.9.3-build2023010902
v1.26.6+rke2r1     v3.9.3-build2023010902
v1.26.7+rke2r1     v4.0.2-build2023070701
v1.26.8+rke2r1     v4.0.2-build2023081100
v1.26.9+rke2r1     v4.0.2-build2023081100
v1.26.10+rke2r1    v4.0.2-build2023081100
v1.26.10+rke2r2    v4.0.2-build2023081100
v1.26.11+rke2r1    v4.0.2-build2023081100
v1.26.12+rke2r1    v4.0.2-build2023081100
v1.26.13+rke2r1    v4.0.2-build2023081107
v1.26.14+rke2r1    v4.0.2-build2024020800
v1.26.15+rke2r1    v4.0.2-build2024020802
v1.27.1+rke2r1     v3.9.3-build2023010902
v1.27.2+rke2r1     v3.9.3-build2023010902
v1.27.3+rke2r1     v3.9.3-build2023010903
v1.27.4+rke2r1     v4.0.2-build2023070701
v1.27.5+rke2r1     v4.0.2-build2023081100
v1.27.6+rke2r1     v4.0.2-build2023081100
v1.27.7+rke2r1     v4.0.2-build2023081100
v1.27.7+rke2r2     v4.0.2-build2023081100
v1.27.8+rke2r1     v4.0.2-build2023081100
v1.27.9+rke2r1     v4.0.2-build2023081100
v1.27.10+rke2r1    v4.0.2-build2023081107
v1.27.11+rke2r1    v4.0.2-build2024020800
v1.27.12+rke2r1    v4.0.2-build2024020802
v1.27.13+rke2r1    v4.0.2-build2024020802
v1.27.14+rke2r1    v4.0.2-build2024020802
v1.27.15+rke2r1    v4.0.205
v1.27.16+rke2r1    v4.0.206
v1.27.16+rke2r2    v4.0.206
v1.28.1+rke2r1     v4.0.2-build2023081100
v1.28.2+rke2r1     v4.0.2-build2023081100
v1.28.3+rke2r1     v4.0.2-build2023081101
v1.28.3+rke2r2     v4.0.2-build2023081101
v1.28.4+rke2r1     v4.0.2-build2023081103
v1.28.5+rke2r1     v4.0.2-build2023081103
v1.28.6+rke2r1     v4.0.2-build2023081107
v1.28.7+rke2r1     v4.0.2-build2024020800
v1.28.8+rke2r1     v4.0.2-build2024020802
v1.28.9+rke2r1     v4.0.2-build2024020802
v1.28.10+rke2r1    v4.0.2-build2024020802
v1.28.11+rke2r1    v4.0.205
v1.28.12+rke2r1    v4.0.206
v1.28.13+rke2r1    v4.0.206
v1.28.14+rke2r1    v4.1.001
v1.28.15+rke2r1    v4.1.205
v1.29.0+rke2r1     v4.0.2-build2023081103
v1.29.1+rke2r1     v4.0.2-build2023081107
v1.29.2+rke2r1     v4.0.2-build2024020800
v1.29.3+rke2r1     v4.0.2-build2024020802
v1.29.4+rke2r1     v4.0.2-build2024020802
v1.29.5+rke2r1     v4.0.2-build2024020802
v1.29.6+rke2r1     v4.0.205
v1.29.7+rke2r1     v4.0.206
v1.29.8+rke2r1     v4.0.206
v1.29.9+rke2r1     v4.1.001
v1.29.10+rke2r1    v4.1.205
v1.29.11+rke2r1    v4.1.301
v1.29.12+rke2r1    v4.1.301
v1.29.13+rke2r1    v4.1.400
v1.29.14+rke2r1    v4.1.403
v1.29.15+rke2r1    v4.1.404
v1.30.0+rke2r1     v4.0.2-build2024020802
v1.30.1+rke2r1     v4.0.2-build2024020802
v1.30.2+rke2r1     v4.0.205
v1.30.3+rke2r1     v4.0.206
v1.30.4+rke2r1     v4.0.206
v1.30.5+rke2r1     v4.1.001
v1.30.6+rke2r1     v4.1.205
v1.30.7+rke2r1     v4.1.301
v1.30.8+rke2r1     v4.1.301
v1.30.9+rke2r1     v4.1.400
v1.30.10+rke2r1    v4.1.403
v1.30.11+rke2r1    v4.1.404
v1.30.12+rke2r1    v4.2.001
v1.30.13+rke2r1    v4.2.002
v1.30.14+rke2r1    v4.2.102
v1.30.14+rke2r2    v4.2.106
v1.30.14+rke2r4    v4.2.202
v1.31.0+rke2r1     v4.0.206
v1.31.1+rke2r1     v4.1.001
v1.31.1+rke2r2     v4.1.201
v1.31.2+rke2r1     v4.1.205
v1.31.3+rke2r1     v4.1.301
v1.31.4+rke2r1     v4.1.301
v1.31.5+rke2r1     v4.1.400
v1.31.6+rke2r1     v4.1.403
v1.31.7+rke2r1     v4.1.404
v1.31.8+rke2r1     v4.2.001
v1.31.9+rke2r1     v4.2.002
v1.31.10+rke2r1    v4.2.102
v1.31.11+rke2r1    v4.2.106
v1.31.12+rke2r1    v4.2.202
v1.31.13+rke2r1    v4.2.205
v1.31.14+rke2r1    v4.2.300
v1.31.14+rke2r2    v4.2.403
v1.32.0+rke2r1     v4.1.301
v1.32.1+rke2r1     v4.1.400
v1.32.2+rke2r1     v4.1.403
v1.32.3+rke2r1     v4.1.404
v1.32.4+rke2r1     v4.2.001
v1.32.5+rke2r1     v4.2.002
v1.32.6+rke2r1     v4.2.102
v1.32.7+rke2r1     v4.2.106
v1.32.8+rke2r1     v4.2.202
v1.32.9+rke2r1     v4.2.205
v1.32.10+rke2r1    v4.2.300
v1.32.11+rke2r1    v4.2.305
v1.32.11+rke2r2    v4.2.311
v1.32.11+rke2r3    v4.2.311
v1.32.12+rke2r1    v4.2.314
v1.32.13+rke2r1    v4.2.314
v1.32.13+rke2r2    v4.2.403
v1.33.0+rke2r1     v4.2.001
v1.33.1+rke2r1     v4.2.002
v1.33.2+rke2r1     v4.2.102
v1.33.3+rke2r1     v4.2.106
v1.33.4+rke2r1     v4.2.202
v1.33.5+rke2r1     v4.2.205
v1.33.6+rke2r1     v4.2.300
v1.33.7+rke2r1     v4.2.305
v1.33.7+rke2r2     v4.2.311
v1.33.7+rke2r3     v4.2.311
v1.33.8+rke2r1     v4.2.314
v1.33.9+rke2r1     v4.2.314
v1.33.10+rke2r1    v4.2.403
v1.33.10+rke2r2    v4.2.403
v1.33.10+rke2r3    v4.2.403
v1.33.11+rke2r1    v4.2.409
v1.33.12+rke2r1    v4.2.413
v1.33.12+rke2r2    v4.2.413
v1.33.13+rke2r1    v4.2.418
v1.33.13+rke2r2    v4.3.008
v1.34.1+rke2r1     v4.2.205
v1.34.2+rke2r1     v4.2.300
v1.34.3+rke2r1     v4.2.305
v1.34.3+rke2r2     v4.2.311
v1.34.3+rke2r3     v4.2.311
v1.34.4+rke2r1     v4.2.314
v1.34.5+rke2r1     v4.2.314
v1.34.6+rke2r1     v4.2.403
v1.34.6+rke2r2     v4.2.403
v1.34.6+rke2r3     v4.2.403
v1.34.7+rke2r1     v4.2.409
v1.34.8+rke2r1     v4.2.413
v1.34.8+rke2r2     v4.2.413
v1.34.9+rke2r1     v4.2.418
v1.34.10+rke2r1    v4.3.008
v1.35.0+rke2r1     v4.2.305
v1.35.0+rke2r2     v4.2.311
v1.35.0+rke2r3     v4.2.311
v1.35.1+rke2r1     v4.2.314
v1.35.2+rke2r1     v4.2.314
v1.35.3+rke2r1     v4.2.403
v1.35.3+rke2r2     v4.2.403
v1.35.3+rke2r3     v4.2.403
v1.35.4+rke2r1     v4.2.409
v1.35.5+rke2r1     v4.2.413
v1.35.5+rke2r2     v4.2.413
v1.35.6+rke2r1     v4.2.418
v1.35.7+rke2r1     v4.3.008
v1.36.0+rke2r1     v4.2.413
v1.36.1+rke2r1     v4.2.413
v1.36.1+rke2r2     v4.2.413
v1.36.2+rke2r1     v4.2.418
v1.36.3+rke2r1     v4.3.008
"""
"""Each RKE2 release (``vX.Y.Z+rke2rN``) and the rke2-multus chart it ships."""

DHCP_VALUE_SINCE = "v4.0.2-build2023081104"
"""The first rke2-multus chart with ``manifests.dhcpDaemonSet`` (and its DaemonSet)."""
DHCP_TOLERATIONS_SINCE = "v4.0.204"
"""The first rke2-multus chart whose dhcp DaemonSet tolerates NoSchedule/NoExecute taints."""

CNI_SINCE: dict[str, tuple[str, ...]] = {
    "multus": ("v1.21.2+rke2r1",),
    "calico": ("v1.21.2+rke2r1",),
    "flannel": (
        "v1.26.14+rke2r1",
        "v1.27.11+rke2r1",
        "v1.28.7+rke2r1",
        "v1.29.2+rke2r1",
        "v1.30.0+rke2r1",
    ),
}
"""The first release of each line that accepts the value; the last one holds for every later
line, and lines before the first refuse it. Values not listed (canal, cilium, none) are
accepted by every release that ships Multus."""

_RELEASE = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)(?:\+rke2r(\d+))?$")
_CHART = re.compile(r"^v?(\d+)\.(\d+)(?:\.(\d+))?(?:-build(\d+))?$")

Release = tuple[int, int, int, int]


def release_key(version: str) -> Release | None:
    """``v1.25.9+rke2r1`` -> (1, 25, 9, 1); without ``+rke2rN`` the first revision."""
    match = _RELEASE.match(version.strip())
    if match is None:
        return None
    major, minor, patch, revision = match.groups()
    return int(major), int(minor), int(patch), int(revision or 1)


def chart_key(chart: str) -> tuple[int, int, int, int]:
    """``v4.0.2-build2023081107`` -> (4, 0, 2, 2023081107); ``v4.0.205`` -> (4, 0, 205, 0)."""
    match = _CHART.match(chart)
    if match is None:
        raise ValueError(f"not an rke2-multus chart version: {chart!r}")
    a, b, c, build = match.groups()
    return int(a), int(b), int(c or 0), int(build or 0)


@cache
def multus_charts() -> dict[Release, tuple[str, str]]:
    """Release key -> (release, chart version), from the table."""
    found: dict[Release, tuple[str, str]] = {}
    for line in MULTUS_CHARTS_TEXT.split("\n"):
        if line.strip():
            release, chart = line.split()
            key = release_key(release)
            assert key is not None, release
            found[key] = (release, chart)
    return dict(sorted(found.items()))


@dataclass(frozen=True)
class MultusChart:
    """The rke2-multus chart a cluster version runs, and what it can do."""

    release: str
    """The release of the table it was found by (the cluster version, or the nearest)."""
    chart: str
    how: str
    """How the release was found: ``exact``, or why another one was taken."""

    @property
    def dhcp_value(self) -> bool:
        """Whether ``manifests.dhcpDaemonSet: true`` starts the chart's dhcp DaemonSet."""
        return chart_key(self.chart) >= chart_key(DHCP_VALUE_SINCE)

    @property
    def dhcp_tolerates_taints(self) -> bool:
        """Whether that DaemonSet also runs on tainted nodes (e.g. RKE2's servers)."""
        return chart_key(self.chart) >= chart_key(DHCP_TOLERATIONS_SINCE)

    def describe(self) -> str:
        """``rke2-multus v3.9.3-build2023010902``, with how it was found when not exactly."""
        text = f"rke2-multus {self.chart}"
        return text if self.how == "exact" else f"{text} ({self.how})"


def multus_chart(version: str | None) -> MultusChart | None:
    """The chart of that RKE2 version: the table's entry, else the nearest older release
    (a version multihome does not list), the newest for no version (RKE2's installer takes
    the latest); None for a version before the first release that ships Multus."""
    charts = multus_charts()
    newest_key = next(reversed(charts))
    if version is None:
        release, chart = charts[newest_key]
        return MultusChart(release, chart, f"no cluster version: the newest release, {release}")
    key = release_key(version)
    if key is None:
        release, chart = charts[newest_key]
        return MultusChart(
            release, chart, f"{version!r} is not an RKE2 release name: taken as {release}"
        )
    if key in charts:
        release, chart = charts[key]
        return MultusChart(release, chart, "exact")
    older = [k for k in charts if k < key]
    if not older:
        return None
    release, chart = charts[older[-1]]
    return MultusChart(release, chart, f"{version} is not in multihome's table: as {release}")


def cni_refusal(value: str, version: str | None) -> str | None:
    """Why RKE2 ``version`` refuses ``cni`` value ``value`` (its rule, for a message), or None
    when it accepts it or the version is not a release name."""
    since = CNI_SINCE.get(value)
    key = release_key(version) if version else None
    if since is None or key is None:
        return None
    firsts = [release_key(s) for s in since]
    same_line = [f for f in firsts if f is not None and f[:2] == key[:2]]
    if same_line:
        accepted = key >= same_line[0]
    else:
        accepted = any(f is not None and f[:2] < key[:2] for f in firsts[-1:])
    if accepted:
        return None
    shown = [s.removesuffix("+rke2r1") for s in since]
    rule = _versions_phrase(shown)
    lines = "the release" if len(shown) == 1 else "the patch releases"
    return f"RKE2 accepts cni '{value}' from {lines} {rule} on"


def _versions_phrase(shown: list[str]) -> str:
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " and " + shown[-1]


def releases_since(feature: str) -> str:
    """The first release of each line whose chart has ``feature`` (``dhcp_value`` or
    ``dhcp_tolerates_taints``), up to the first line that has it from its first release:
    ``v1.26.13, v1.27.10, v1.28.6, v1.29.1 and v1.30.0``."""
    by_line: dict[tuple[int, int], list[MultusChart]] = {}
    for key, (release, chart) in multus_charts().items():
        by_line.setdefault(key[:2], []).append(MultusChart(release, chart, "exact"))
    firsts: list[str] = []
    for charts in by_line.values():
        having = [i for i, c in enumerate(charts) if getattr(c, feature)]
        if having:
            firsts.append(charts[having[0]].release.removesuffix("+rke2r1"))
            if having[0] == 0:
                break
    return _versions_phrase(firsts)
