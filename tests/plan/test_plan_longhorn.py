"""Longhorn's release in the plan: which one (the lab's, or the cluster version's era), and
the instance-managers it runs, named, labelled and serving as longhorn-manager makes them."""

from __future__ import annotations

import json
import re

import pytest
from plan_helpers import lab

from multihome.plan import PodPlan, ProcessPlan, build_plan
from multihome.plan.instance_managers import labels_for, name_for
from multihome.plan.longhorn import era_version
from multihome.spec import SpecError, load_lab, load_lab_text, seed_path

SPLIT_NAME = re.compile(r"instance-manager-(e|r)-[0-9a-f]{32}")
AIO_NAME = re.compile(r"instance-manager-[0-9a-f]{32}")
STORAGE = """\
apiVersion: longhorn.io/v1beta2
kind: Setting
metadata: {name: storage-network, namespace: longhorn-system}
value: apps/data
"""


def _managers(pods: tuple[PodPlan, ...]) -> list[PodPlan]:
    return [p for p in pods if p.owner is not None and p.owner.kind == "Longhorn"]


def _seed(version: str | None = None) -> list[PodPlan]:
    text = seed_path().read_text()
    if version is not None:
        old = "    storageNetwork: multus-network-attachments/macvlan-longhorn-dhcp\n"
        assert old in text
        text = text.replace(old, old + f"    version: {version}\n")
    return _managers(build_plan(load_lab_text(text, "lab.yaml", seed_path().parent)).pods)


def test_the_posts_instance_manager_name_is_reproduced() -> None:
    # The post's `instance-manager-e-437ba600...`: its node's hostname is
    # mullti-homed-wrk-1 (sic, in its prompt) and Rancher's Longhorn app 1.4.1 runs
    # Rancher's mirrored instance-manager image.
    image = "docker.io/rancher/mirrored-longhornio-longhorn-instance-manager:v1.4.1"
    name = name_for("engine", "mullti-homed-wrk-1", "1.4.1", image)
    assert name == "instance-manager-e-437ba600ca8a15720f049790071aac70"


def test_seed_runs_longhorn_1_4_with_an_engine_and_a_replica_manager_per_agent() -> None:
    plan = build_plan(load_lab(None))
    assert plan.longhorn is not None
    assert plan.longhorn.version == "1.4.4"
    assert plan.longhorn.version_reason == "Kubernetes 1.25's era, cluster version v1.25.9+rke2r1"
    managers = _managers(plan.pods)
    assert [(p.node, dict(p.labels)["longhorn.io/instance-manager-type"]) for p in managers] == [
        (agent.name, kind) for agent in plan.agents for kind in ("engine", "replica")
    ]
    for engine, replica in zip(managers[::2], managers[1::2], strict=True):
        assert SPLIT_NAME.fullmatch(engine.name) and engine.name[17] == "e"
        assert SPLIT_NAME.fullmatch(replica.name) and replica.name[17] == "r"
        assert engine.name[19:] == replica.name[19:]  # one hash: node + image
        assert engine.process is None
        assert replica.process == ProcessPlan(tcp=(10000, 10001, 10002), bind_interface="lhnet1")
    assert len({p.name for p in managers}) == 6


def test_seed_instance_manager_labels_are_longhorns() -> None:
    (engine, *_) = _seed()
    assert dict(engine.labels) == {
        "longhorn.io/component": "instance-manager",
        "longhorn.io/instance-manager-image": labels_for("engine", "x", "1.4.4")[
            "longhorn.io/instance-manager-image"
        ],
        "longhorn.io/instance-manager-type": "engine",
        "longhorn.io/managed-by": "longhorn-manager",
        "longhorn.io/node": "multi-homed-wrk-1",
    }
    assert re.fullmatch(
        r"imi-[0-9a-f]{8}", dict(engine.labels)["longhorn.io/instance-manager-image"]
    )


@pytest.mark.parametrize("version", ["1.5.0", "1.6.4", "v1.10.2"])
def test_from_1_5_one_all_in_one_manager_per_agent(version: str) -> None:
    managers = _seed(version)
    assert [p.node for p in managers] == [f"multi-homed-wrk-{i}" for i in (1, 2, 3)]
    for pod in managers:
        assert AIO_NAME.fullmatch(pod.name), pod.name
        labels = dict(pod.labels)
        assert labels["longhorn.io/instance-manager-type"] == "aio"
        assert ("longhorn.io/data-engine" in labels) == (version != "1.5.0")
        assert pod.process == ProcessPlan(tcp=(10000, 10001, 10002), bind_interface="lhnet1")
        assert json.loads(pod.networks_annotation or "")[0]["interface"] == "lhnet1"
        assert [(i.name, i.lab_network) for i in pod.interfaces] == [
            ("eth0", None),
            ("lhnet1", "vlan50"),
        ]


def test_the_hash_follows_node_image_and_data_engine() -> None:
    # 1.5 hashes node + image; 1.6 adds the data engine ("v1"): same node, other names
    assert name_for("aio", "n", "1.5.5") != name_for("aio", "n", "1.6.0")
    assert name_for("aio", "n", "1.6.0") != name_for("aio", "n", "1.6.1")
    assert name_for("aio", "n", "1.6.0") != name_for("aio", "m", "1.6.0")


@pytest.mark.parametrize(
    ("cluster", "longhorn"),
    [
        ("v1.24.17+rke2r1", "1.4.4"),
        ("v1.25.9+rke2r1", "1.4.4"),
        ("v1.26.15+rke2r1", "1.4.4"),
        ("v1.27.16+rke2r2", "1.5.5"),
        ("v1.28.6+rke2r1", "1.6.4"),
        ("v1.29.3+rke2r1", "1.6.4"),
        ("v1.30.4+rke2r1", "1.7.3"),
        ("v1.31.1+rke2r1", "1.7.3"),
        ("v1.32.5+rke2r1", "1.8.2"),
        ("v1.33.1+rke2r1", "1.9.2"),
        ("v1.34.1+rke2r1", "1.10.2"),
        ("v1.35.0+rke2r1", "1.10.2"),
        (None, "1.10.2"),
        ("latest", "1.10.2"),
    ],
)
def test_default_release_by_the_cluster_versions_era(cluster: str | None, longhorn: str) -> None:
    assert era_version(cluster)[0] == longhorn


def test_small_lab_without_cluster_version_gets_the_newest_line() -> None:
    plan = build_plan(lab(STORAGE))
    assert plan.longhorn is not None and plan.longhorn.version == "1.10.2"
    assert "no cluster version" in plan.longhorn.version_reason
    assert [p.node for p in _managers(plan.pods)] == ["wk-1", "wk-2", "wk-3"]


def test_lab_version_wins_over_the_era() -> None:
    text = (
        seed_path()
        .read_text()
        .replace(
            "    storageNetwork: multus-network-attachments/macvlan-longhorn-dhcp\n",
            "    storageNetwork: multus-network-attachments/macvlan-longhorn-dhcp\n"
            "    version: 1.6.0\n",
        )
    )
    plan = build_plan(load_lab_text(text, "lab.yaml", seed_path().parent))
    assert plan.longhorn is not None
    assert (plan.longhorn.version, plan.longhorn.version_reason) == ("1.6.0", "set in the lab file")
    assert plan.longhorn.instance_manager_image == "longhornio/longhorn-instance-manager:v1.6.0"


@pytest.mark.parametrize("bad", ["1.3.3", "1.4.5", "2.0.0", "1.6", "latest"])
def test_unknown_release_is_refused_where_it_is_written(bad: str) -> None:
    text = (
        seed_path()
        .read_text()
        .replace(
            "    storageNetwork: multus-network-attachments/macvlan-longhorn-dhcp\n",
            "    storageNetwork: multus-network-attachments/macvlan-longhorn-dhcp\n"
            f"    version: '{bad}'\n",
        )
    )
    with pytest.raises(SpecError) as caught:
        load_lab_text(text, "lab.yaml", seed_path().parent)
    err = caught.value
    assert (
        err.location is not None
        and err.location.line == text.splitlines().index(f"    version: '{bad}'") + 1
    )
    assert f"spec.longhorn.version: {bad!r} is not a Longhorn release multihome knows" in str(err)
    assert err.hint is not None and "1.4.0 to 1.4.4" in err.hint and "1.10.0 to 1.10.2" in err.hint


def test_release_written_as_a_number_asks_for_quotes() -> None:
    text = (
        seed_path()
        .read_text()
        .replace(
            "    storageNetwork: multus-network-attachments/macvlan-longhorn-dhcp\n",
            "    storageNetwork: multus-network-attachments/macvlan-longhorn-dhcp\n    version: 1.6\n",
        )
    )
    with pytest.raises(SpecError) as caught:
        load_lab_text(text, "lab.yaml", seed_path().parent)
    assert caught.value.hint == "YAML read this as a number; put it in quotes"
