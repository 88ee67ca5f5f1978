"""rbac/multihome.yaml grants what verify --kubeconfig lists and execs and what apply
applies: each kind the cluster code uses is in its role with the verbs it needs."""

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
