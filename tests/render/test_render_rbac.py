"""rbac/multihome.yaml grants what verify --kubeconfig lists and execs, what its --probes
make and delete, and what apply applies: each kind the cluster code uses is in its role with
the verbs it needs."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube.core.resource import api_info

from multihome.cluster import apply, read
from multihome.render.rbac import APPLY_RULES, VERIFY_RULES


def _grants(rules: list[dict[str, Any]], group: str, plural: str, verb: str) -> bool:
    return any(
        group in r["apiGroups"] and plural in r["resources"] and verb in r["verbs"] for r in rules
    )


@pytest.mark.parametrize(
    "kind",
    [
        read.Node,
        read.Pod,
        read.Event,
        read.DaemonSet,
        read.NAD,
        read.LonghornSetting,
        read.LonghornReplica,
    ],
)
def test_verify_role_lists_what_verify_reads(kind: Any) -> None:
    info = api_info(kind)
    for verb in ("get", "list"):
        assert _grants(VERIFY_RULES, info.resource.group, info.plural, verb), (info.plural, verb)


def test_verify_role_execs() -> None:
    assert _grants(VERIFY_RULES, "", "pods/exec", "create")


@pytest.mark.parametrize("key", sorted(apply.KINDS))
def test_apply_role_applies_every_kind_apply_applies(key: tuple[str, str]) -> None:
    info = api_info(apply.KINDS[key].resource)
    for verb in ("get", "list", "create", "patch"):
        assert _grants(APPLY_RULES, info.resource.group, info.plural, verb), (info.plural, verb)


def test_probes_role_creates_what_the_probes_make_and_cleans_up() -> None:
    from lightkube.codecs import from_dict

    from multihome.cluster import probes
    from multihome.render.rbac import PROBES_RULES

    mirror = probes.Mirror("pod:a/b", "node-1", None)
    docs = probes.manifests("multihome-probes-x", "x", "image", {"probe-1": mirror})
    assert {d["kind"] for d in docs} == {"Namespace", "DaemonSet", "Pod"}
    for doc in docs:
        info = api_info(type(from_dict(doc)))
        assert _grants(PROBES_RULES, info.resource.group, info.plural, "create"), info.plural
    # found by label (pods: which run where), a killed run's namespace deleted, exec
    for plural, verb in (("namespaces", "list"), ("pods", "list"), ("namespaces", "delete")):
        assert _grants(PROBES_RULES, "", plural, verb), (plural, verb)
    assert _grants(PROBES_RULES, "", "pods/exec", "create")
