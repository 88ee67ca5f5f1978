"""The pure parts of the lab's writes: the patch types (merge, JSON, strategic with its
directives), field ownership and server-side apply (FieldsV1, conflicts, removal of fields
no longer applied), the protobuf envelope kubectl sends for a Namespace, and the 422 field
paths found from a design's lines."""

from __future__ import annotations

import pytest

from multihome.kube import apply as ssa
from multihome.kube import patch, protowire
from multihome.kube.documents import dump_with_lines, field_at
from multihome.spec.errors import Location

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p", "namespace": "ns", "labels": {"a": "1"}},
    "spec": {
        "containers": [
            {"name": "one", "image": "busybox", "ports": [{"containerPort": 80}]},
            {"name": "two", "image": "nginx"},
        ],
        "tolerations": [{"key": "k", "operator": "Exists"}],
    },
}


def test_merge_patch_is_rfc7386() -> None:
    got = patch.merge_patch(POD, {"metadata": {"labels": {"a": None, "b": "2"}}, "spec": None})
    assert got["metadata"]["labels"] == {"b": "2"} and "spec" not in got
    assert POD["metadata"]["labels"] == {"a": "1"}  # the target is not changed


def test_json_patch_and_its_errors() -> None:
    got = patch.json_patch(
        POD, [{"op": "replace", "path": "/spec/containers/1/image", "value": "x"}]
    )
    assert got["spec"]["containers"][1]["image"] == "x"
    with pytest.raises(patch.PatchError) as err:
        patch.json_patch(POD, [{"op": "test", "path": "/metadata/name", "value": "q"}])
    assert err.value.code == 422 and "<class" not in str(err.value)
    with pytest.raises(patch.PatchError) as err:
        patch.json_patch(POD, {"op": "add"})
    assert err.value.code == 400


def test_strategic_merge_by_key_and_directives() -> None:
    got = patch.strategic_patch(
        POD, {"spec": {"containers": [{"name": "two", "image": "httpd"}, {"name": "three"}]}}
    )
    assert [(c["name"], c.get("image")) for c in got["spec"]["containers"]] == [
        ("one", "busybox"), ("two", "httpd"), ("three", None),
    ]  # fmt: skip
    assert got["spec"]["containers"][0]["ports"] == [{"containerPort": 80}]
    got = patch.strategic_patch(
        POD, {"spec": {"containers": [{"name": "one", "$patch": "delete"}]}}
    )
    assert [c["name"] for c in got["spec"]["containers"]] == ["two"]
    got = patch.strategic_patch(POD, {"spec": {"tolerations": [{"key": "z"}]}})  # no merge key
    assert got["spec"]["tolerations"] == [{"key": "z"}]
    got = patch.strategic_patch(
        POD,
        {"spec": {"$setElementOrder/containers": [{"name": "two"}, {"name": "one"}],
                  "containers": [{"name": "one", "image": "b2"}]}},
    )  # fmt: skip
    assert [c["name"] for c in got["spec"]["containers"]] == ["two", "one"]
    got = patch.strategic_patch(POD, {"metadata": {"$patch": "replace", "name": "p"}})
    assert got["metadata"] == {"name": "p"}
    with pytest.raises(patch.PatchError):
        patch.strategic_patch(POD, {"spec": {"containers": [{"image": "no-key"}]}})


def test_fields_encode_decode_round_trip() -> None:
    fields = ssa.fields_of(POD)
    tree = ssa.encode(fields)
    assert tree["f:spec"]["f:containers"]['k:{"name":"one"}']["."] == {}
    assert "f:name" not in tree["f:metadata"]  # server-set and identifying metadata: stripped
    assert ssa.decode(tree) == fields
    text = ssa.path_text((("f", "spec"), ("f", "containers"), ("k", '{"name":"one"}'),
                          ("f", "image")))  # fmt: skip
    assert text == '.spec.containers[name="one"].image'


def test_apply_conflict_force_and_removal() -> None:
    now = "2026-01-01T00:00:00Z"
    live, managed = ssa.apply(None, POD, [], "a", "v1", now, force=False, associative=True)
    assert live["spec"] == POD["spec"]
    changed = patch.strategic_patch(live, {"spec": {"containers": [{"name": "two", "image": "x"}]}})
    managed = ssa.track_update(
        live, changed, ssa.entries(managed), "b", "v1", now, associative=True
    )
    mine = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "two", "image": "nginx"}]}}  # fmt: skip
    with pytest.raises(ssa.ApplyConflict) as err:
        ssa.apply(
            changed, mine, ssa.entries(managed), "a", "v1", now, force=False, associative=True
        )
    assert str(err.value) == (
        'Apply failed with 1 conflict: conflict with "b" using v1: .spec.containers[name="two"].image'
    )
    assert err.value.causes()[0]["reason"] == "FieldManagerConflict"
    after, managed = ssa.apply(
        changed, mine, ssa.entries(managed), "a", "v1", now, force=True, associative=True
    )
    # "a" no longer applies container one, the tolerations or the label: they go
    assert [c["name"] for c in after["spec"]["containers"]] == ["two"]
    assert after["spec"]["containers"][0]["image"] == "nginx"
    assert "tolerations" not in after["spec"] and "labels" not in after["metadata"]
    owners = {e["manager"]: ssa.decode(e["fieldsV1"]) for e in managed}
    assert not any(p[-1] == ("f", "image") for p in owners.get("b", set()))


def test_protobuf_namespace_and_refusals() -> None:
    def field(number: int, data: bytes) -> bytes:
        return bytes([number << 3 | 2, len(data)]) + data

    meta = field(1, b"team") + field(11, field(1, b"env") + field(2, b"lab"))
    inner = field(1, meta)
    type_meta = field(1, b"v1") + field(2, b"Namespace")
    body = protowire.MAGIC + field(1, type_meta) + field(2, inner)
    got = protowire.decode(body, ("Namespace",))
    assert got == {"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "team", "labels": {"env": "lab"}}}  # fmt: skip
    with pytest.raises(protowire.ProtoError):
        protowire.decode(protowire.MAGIC + field(1, field(2, b"Deployment")), ("Namespace",))
    with pytest.raises(protowire.ProtoError):
        protowire.decode(b"k8s\x00\xff\xff", ("Namespace",))


def test_field_paths_from_the_designs_lines() -> None:
    lab = {"apiVersion": "multihome.dev/v1alpha1", "kind": "Lab", "metadata": {"name": "l"},
           "spec": {"expect": [{"from": "a/b"}]}}  # fmt: skip
    text, lines = dump_with_lines([lab, POD], 1)
    at = text.splitlines().index("  - name: two") + 1
    assert field_at(Location("<api>", at, 3), lines) == "spec.containers[1]"
    at = text.splitlines().index("  - from: a/b") + 1
    assert field_at(Location("<api>", at, 3), lines) == "Lab l spec.expect[0]"
    assert field_at(Location("other.yaml", at, 3), lines) == ""
