"""What each RKE2 release ships (``plan.rke2_releases``) and the findings that follow from it:
``cni`` values a release refuses, and a dhcp design whose rke2-multus chart can't start (or
can't place) the CNI dhcp daemon. The table's facts were read from rancher/rke2's release tags
and rancher/rke2-charts' packaged charts; these cases are the ones named in issue 14."""

from __future__ import annotations

import pytest

from multihome.check import run_checks
from multihome.plan.rke2_releases import (
    chart_key,
    cni_refusal,
    multus_chart,
    multus_charts,
    releases_since,
)
from multihome.spec import load_lab_text, seed_path

SEED_VERSION = "v1.25.9+rke2r1"


def _seed(version: str | None = SEED_VERSION, cni: str | None = None) -> str:
    text = seed_path().read_text(encoding="utf-8")
    if version is None:
        text = text.replace(f"    version: {SEED_VERSION}\n", "")
    else:
        text = text.replace(f"version: {SEED_VERSION}", f"version: {version}")
    if cni is not None:
        text = text.replace("cni: [multus, canal]", f"cni: {cni}")
    return text


def _findings(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for finding in run_checks(load_lab_text(text, "lab.yaml", seed_path().parent)):
        found.setdefault(finding.id, []).append(finding.message)
    return found


@pytest.mark.parametrize(
    ("version", "chart", "value", "tolerations"),
    [
        ("v1.25.9+rke2r1", "v3.9.3-build2023010902", False, False),
        ("v1.26.12+rke2r1", "v4.0.2-build2023081100", False, False),
        ("v1.26.13+rke2r1", "v4.0.2-build2023081107", True, False),
        ("v1.27.10+rke2r1", "v4.0.2-build2023081107", True, False),
        ("v1.28.6+rke2r1", "v4.0.2-build2023081107", True, False),
        ("v1.29.0+rke2r1", "v4.0.2-build2023081103", False, False),  # after v1.28.6, yet none
        ("v1.29.1+rke2r1", "v4.0.2-build2023081107", True, False),
        ("v1.28.11+rke2r1", "v4.0.205", True, True),
        ("v1.33.13+rke2r2", "v4.3.008", True, True),  # a later revision, another chart
    ],
)
def test_the_chart_each_release_ships(
    version: str, chart: str, value: bool, tolerations: bool
) -> None:
    found = multus_chart(version)
    assert found is not None
    assert (found.chart, found.how) == (chart, "exact")
    assert (found.dhcp_value, found.dhcp_tolerates_taints) == (value, tolerations)


def test_versions_outside_the_table() -> None:
    assert multus_chart("v1.20.15+rke2r2") is None  # no release before v1.21.2 ships Multus
    between = multus_chart("v1.25.99+rke2r1")
    assert between is not None and between.release == "v1.25.16+rke2r2"
    assert "not in multihome's table" in between.how
    newest = multus_chart(None)
    assert newest is not None and newest.release == next(reversed(multus_charts().values()))[0]
    assert chart_key("v4.0.205") > chart_key("v4.0.2-build2023081107")


def test_releases_since() -> None:
    assert releases_since("dhcp_value") == "v1.26.13, v1.27.10, v1.28.6, v1.29.1 and v1.30.0"
    assert releases_since("dhcp_tolerates_taints") == (
        "v1.27.15, v1.28.11, v1.29.6, v1.30.2 and v1.31.0"
    )


@pytest.mark.parametrize(
    ("value", "version", "refused"),
    [
        ("flannel", "v1.25.9+rke2r1", True),
        ("flannel", "v1.26.13+rke2r1", True),
        ("flannel", "v1.26.14+rke2r1", False),
        ("flannel", "v1.29.1+rke2r1", True),
        ("flannel", "v1.29.2+rke2r1", False),
        ("flannel", "v1.30.0+rke2r1", False),
        ("flannel", "v1.36.3+rke2r1", False),
        ("calico", "v1.20.15+rke2r1", True),
        ("calico", "v1.21.2+rke2r1", False),
        ("canal", "v1.20.15+rke2r1", False),
        ("cilium", "v1.25.9+rke2r1", False),
        ("flannel", None, False),
    ],
)
def test_cni_values_by_version(value: str, version: str | None, refused: bool) -> None:
    assert (cni_refusal(value, version) is not None) == refused


def test_flannel_on_the_seeds_version_is_refused() -> None:
    found = _findings(_seed(cni="[multus, flannel]"))
    (message,) = found["cni-unsupported-version"]
    assert "invalid value provided for --cni flag" in message
    assert "v1.26.14, v1.27.11, v1.28.7, v1.29.2 and v1.30.0" in message
    assert "cni-unsupported-version" not in _findings(
        _seed("v1.30.0+rke2r1", cni="[multus, flannel]")
    )


def test_dhcp_daemon_missing_on_the_seeds_version() -> None:
    found = _findings(_seed())
    (message,) = found["rke2-dhcp-daemon-missing"]
    assert "v3.9.3-build2023010902" in message and "multi-homed-wrk-1" in message
    assert "multi-homed-cpl-1" not in message  # the servers run no workloads
    for version in ("v1.26.13+rke2r1", "v1.28.6+rke2r1", "v1.29.1+rke2r1", None):
        assert "rke2-dhcp-daemon-missing" not in _findings(_seed(version)), version
    assert "rke2-dhcp-daemon-missing" in _findings(_seed("v1.29.0+rke2r1"))


def tainted_agent(version: str) -> str:
    """The seed with wrk-3 tainted and net-tools pinned there (tolerating it)."""
    text = _seed(version)
    node = "    - name: multi-homed-wrk-3\n      role: agent\n"
    assert node in text
    text = text.replace(
        node, node + "      taints: [{key: dedicated, value: dmz, effect: NoSchedule}]\n"
    )
    pod = "spec:\n  containers:\n  - name: samplepod\n"
    assert pod in text
    return text.replace(
        pod,
        "spec:\n  nodeName: multi-homed-wrk-3\n"
        "  tolerations: [{key: dedicated, operator: Exists}]\n"
        "  containers:\n  - name: samplepod\n",
    )


def test_dhcp_daemon_untolerated_on_a_tainted_node() -> None:
    found = _findings(tainted_agent("v1.28.6+rke2r1"))
    assert not [i for i in found if i not in ("rke2-dhcp-daemon-untolerated",)], found
    (message,) = found["rke2-dhcp-daemon-untolerated"]
    assert "tainted node multi-homed-wrk-3" in message and "v4.0.2-build2023081107" in message
    # the chart tolerates taints from v4.0.204 (RKE2 v1.28.11)
    assert _findings(tainted_agent("v1.28.11+rke2r1")) == {}
