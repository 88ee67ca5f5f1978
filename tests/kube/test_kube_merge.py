"""``kubeconfig --merge`` without a lab: the lab's kubeconfig as its API server writes it, merged
into files in a temp directory: which file, idempotence, others' entries and the current
context kept, 0600, an entry the user re-pointed left alone by unmerge, and a file that is not
a kubeconfig refused with a message (nothing written)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from multihome.kube import KUBECONFIG_FILE, tls
from multihome.kube.__main__ import kubeconfig
from multihome.kube.merge import MergeError, merge, target_path, unmerge
from multihome.lab.state import LabState

THEIRS = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "prod", "cluster": {"server": "https://10.0.0.1:6443"}}],
    "users": [{"name": "me", "user": {"token": "abc"}}],
    "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "me"}}],
    "current-context": "prod",
}


@pytest.fixture
def state(tmp_path: Path) -> LabState:
    (tmp_path / "state" / "lab1").mkdir(parents=True)
    lab = LabState("lab1", root=tmp_path / "state")
    lab.write_atomic(lab.dir / KUBECONFIG_FILE, kubeconfig("lab1", 43210, tls.make("lab1")))
    return lab


def test_target_is_kubeconfigs_first_file_else_home() -> None:
    assert target_path({"HOME": "/h"}) == Path("/h/.kube/config")
    assert target_path({"HOME": "/h", "KUBECONFIG": ":/a:/b"}) == Path("/a")


def test_merge_keeps_theirs_and_unmerge_takes_out_only_its_own(
    state: LabState, tmp_path: Path
) -> None:
    config = tmp_path / "home" / ".kube" / "config"
    config.parent.mkdir(parents=True)
    config.write_text(yaml.safe_dump(THEIRS))
    for _ in range(2):
        path, context = merge(state, config)
    assert (path, context) == (config, "multihome-lab1")
    doc = yaml.safe_load(config.read_text())
    assert [c["name"] for c in doc["clusters"]] == ["prod", "multihome-lab1"]
    assert doc["current-context"] == "prod"
    assert doc["clusters"][1]["cluster"]["server"] == "https://127.0.0.1:43210"
    assert config.stat().st_mode & 0o777 == 0o600
    assert unmerge(state) == [config]
    assert yaml.safe_load(config.read_text()) == {**THEIRS, "preferences": {}}


def test_a_new_file_gets_the_context_and_a_repointed_entry_stays(
    state: LabState, tmp_path: Path
) -> None:
    config = tmp_path / "new" / "config"
    merge(state, config)
    doc = yaml.safe_load(config.read_text())
    assert doc["current-context"] == "multihome-lab1"
    doc["clusters"][0]["cluster"]["server"] = "https://10.9.9.9:6443"  # the user's now
    config.write_text(yaml.safe_dump(doc))
    assert unmerge(state) == []
    assert yaml.safe_load(config.read_text()) == doc


@pytest.mark.parametrize(
    ("text", "said"),
    [("clusters: [oops", "is not YAML kubectl reads"), ("kind: Pod\n", "is not a kubeconfig"),
     ("kind: Config\nusers: {a: 1}\n", "users is not a list")],
)  # fmt: skip
def test_a_file_that_is_not_a_kubeconfig_is_refused(
    state: LabState, tmp_path: Path, text: str, said: str
) -> None:
    config = tmp_path / "config"
    config.write_text(text)
    with pytest.raises(MergeError, match=said):
        merge(state, config)
    assert config.read_text() == text
