"""resourceVersions without a lab: readings of the seed's plan and a status as up writes it,
changed the way a reconcile changes them; each changed object gets the next version, the
unchanged keep theirs, the changes come out as ADDED/MODIFIED/DELETED, and a new server
process goes on from the kept counter (never handing out a version twice)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from test_kube_units import _status

from multihome.kube.objects import LabView
from multihome.kube.server import RESOURCES
from multihome.kube.versions import VERSIONS_FILE, Versions
from multihome.lab.state import LabState
from multihome.plan import build_plan
from multihome.spec import load_lab

BUILDS = [(r.qualified, r.objects) for r in RESOURCES]


def _reading(status: dict[str, Any], plan: dict[str, Any]) -> LabView:
    return LabView(copy.deepcopy(status), plan, "0")


def _versions(view: LabView) -> dict[str, int]:
    return {
        f"{res}/{o['metadata'].get('namespace', '')}/{o['metadata']['name']}": int(
            o["metadata"]["resourceVersion"]
        )
        for res, build in BUILDS
        for o in view.objects(res, build)
    }


def test_versions_follow_changes(tmp_path: Path) -> None:
    (tmp_path / "lab").mkdir()
    state = LabState("lab", root=tmp_path)
    plan_obj = build_plan(load_lab(None))
    plan = json.loads(plan_obj.to_json())
    status = _status(plan_obj)
    versions = Versions(state)
    first = _reading(status, plan)
    assert versions.stamp(first, BUILDS) == []  # the first reading is the starting point
    seen = _versions(first)
    assert sorted(seen.values()) == list(range(1, len(seen) + 1))
    assert first.resource_version == str(len(seen))
    assert versions.oldest == len(seen)

    # the same status again: nothing changes, not even the list's version
    again = _reading(status, plan)
    assert versions.stamp(again, BUILDS) == []
    assert _versions(again) == seen and again.resource_version == first.resource_version

    # one pod leaves: it is DELETED (with its events) at new versions; the others keep theirs
    gone = status["pods"][-1]
    fewer = {**status, "pods": status["pods"][:-1]}
    later = _reading(fewer, plan)
    changes = versions.stamp(later, BUILDS)
    deleted = [(c.resource, c.object["metadata"]["name"]) for c in changes if c.type == "DELETED"]
    assert ("pods", gone["name"]) in deleted
    assert all(c.version > len(seen) for c in changes)
    assert [c.version for c in changes] == sorted(c.version for c in changes)
    now = _versions(later)
    kept = {k: v for k, v in now.items() if not k.startswith(("events/", "daemonsets", "deploy",
                                                                "statefulsets"))}  # fmt: skip
    assert all(seen[k] == v for k, v in kept.items())
    assert int(later.resource_version) == versions.counter == max(c.version for c in changes)
    assert versions.since(len(seen)) == changes

    # a pod changes (its phase): MODIFIED with the object before it
    changed = copy.deepcopy(fewer)
    changed["pods"][0]["phase"] = "Pending"
    changes = versions.stamp(_reading(changed, plan), BUILDS)
    (pod,) = [c for c in changes if c.resource == "pods"]
    assert pod.type == "MODIFIED" and pod.old is not None
    assert pod.old["status"]["phase"] == "Running" and pod.object["status"]["phase"] == "Pending"

    # a new server process: the counter goes on, unchanged objects keep their versions
    kept_counter = versions.counter
    restarted = Versions(state)
    reading = _reading(changed, plan)
    assert restarted.stamp(reading, BUILDS) == []
    assert int(reading.resource_version) == kept_counter
    assert restarted.oldest == kept_counter  # older versions are not replayable: 410 there
    assert json.loads((tmp_path / "lab" / VERSIONS_FILE).read_text())["counter"] == kept_counter
