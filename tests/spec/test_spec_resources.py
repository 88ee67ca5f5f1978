"""``spec.resources``: manifests from other files and directories, like kustomize."""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_helpers import MINIMAL

from multihome.spec import Location, SpecError, load_lab, load_lab_text

NS = "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n"


def lab_with(resources: str) -> str:
    return MINIMAL.replace("spec:\n", f"spec:\n  resources: {resources}\n", 1)


def write_lab(tmp_path: Path, resources: str, extra: str = "") -> Path:
    path = tmp_path / "lab.yaml"
    path.write_text(lab_with(resources) + extra)
    return path


def test_file_and_directory(tmp_path: Path) -> None:
    (tmp_path / "manifests").mkdir()
    (tmp_path / "manifests" / "b.yml").write_text(NS.format(name="b"))
    (tmp_path / "manifests" / "a.yaml").write_text(
        NS.format(name="a") + "---\n" + NS.format(name="a2")
    )
    (tmp_path / "manifests" / "notes.txt").write_text("not yaml")
    (tmp_path / "manifests" / ".hidden.yaml").write_text("kind: Broken")
    (tmp_path / "extra.yaml").write_text("# leading comment\n" + NS.format(name="extra"))
    path = write_lab(tmp_path, "[manifests/, extra.yaml]", "---\n" + NS.format(name="inline"))
    lab_file = load_lab(path)
    assert [m.name for m in lab_file.manifests] == ["inline", "a", "a2", "b", "extra"]
    assert lab_file.files == [
        path,
        tmp_path / "manifests" / "a.yaml",
        tmp_path / "manifests" / "b.yml",
        tmp_path / "extra.yaml",
    ]
    extra = lab_file.find("Namespace", None, "extra")
    assert extra is not None
    assert extra.locate("metadata", "name") == Location(str(tmp_path / "extra.yaml"), 5, 9)
    a2 = lab_file.find("Namespace", None, "a2")
    assert a2 is not None and a2.document.index == 1


def test_relative_to_the_lab_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "ns.yaml").write_text(NS.format(name="x"))
    (tmp_path / "sub" / "lab.yaml").write_text(lab_with("[ns.yaml]"))
    monkeypatch.chdir(tmp_path)
    lab_file = load_lab("sub/lab.yaml")
    assert lab_file.manifests[0].file == str(Path("sub/ns.yaml"))


def test_load_lab_text_base_dir(tmp_path: Path) -> None:
    (tmp_path / "ns.yaml").write_text(NS.format(name="x"))
    lab_file = load_lab_text(lab_with("[ns.yaml]"), base_dir=tmp_path)
    assert [m.name for m in lab_file.manifests] == ["x"]


def test_missing_path(tmp_path: Path) -> None:
    path = write_lab(tmp_path, "[there.yaml, nowhere/]")
    with pytest.raises(SpecError) as info:
        load_lab(path)
    (tmp_path / "there.yaml").write_text(NS.format(name="x"))
    assert info.value.location == Location(str(path), 6, 15)
    assert info.value.message == "resource 'there.yaml' does not exist"
    with pytest.raises(SpecError) as info:
        load_lab(path)
    assert info.value.location == Location(str(path), 6, 27)
    assert info.value.message == "resource 'nowhere/' does not exist"
    assert info.value.hint is not None and str(tmp_path / "nowhere") in info.value.hint


def test_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError) as info:
        load_lab(write_lab(tmp_path, "[empty]"))
    assert "no *.yaml or *.yml files" in info.value.message


def test_error_inside_a_resource_points_into_it(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(NS.format(name="ok") + "---\napiVersion: v1\nkind: Secret\n")
    with pytest.raises(SpecError) as info:
        load_lab(write_lab(tmp_path, "[bad.yaml]"))
    assert info.value.location == Location(str(tmp_path / "bad.yaml"), 7, 7)
    assert info.value.message == "unsupported kind 'Secret'"


def test_lab_inside_a_resource(tmp_path: Path) -> None:
    (tmp_path / "other.yaml").write_text(MINIMAL)
    with pytest.raises(SpecError) as info:
        load_lab(write_lab(tmp_path, "[other.yaml]"))
    assert info.value.message == "a Lab document in a resources file"
    assert info.value.location == Location(str(tmp_path / "other.yaml"), 2, 7)


def test_lab_file_itself_and_twice(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_lab(write_lab(tmp_path, "[lab.yaml]"))
    assert "already included (the lab file itself)" in info.value.message
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "ns.yaml").write_text(NS.format(name="x"))
    with pytest.raises(SpecError) as info:
        load_lab(write_lab(tmp_path, "[m, m/ns.yaml]"))
    assert "already included" in info.value.message


def test_odd_entries(tmp_path: Path) -> None:
    for entries, words in (
        ("['']", "empty"),
        ("['https://example.com/x.yaml']", "remote"),
        ("[/dev/null]", "not a regular file"),
        ('["a\\0b"]', "not a valid path"),
        ("[" + "x" * 5000 + "]", "File name too long"),
    ):
        with pytest.raises(SpecError) as info:
            load_lab(write_lab(tmp_path, entries))
        assert words in info.value.message
        assert info.value.location is not None and info.value.location.line == 6


def test_resources_must_be_strings(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_lab(write_lab(tmp_path, "[1]"))
    assert "spec.resources[0]: expected a string" in info.value.message


def test_symlinked_file_counts_once(tmp_path: Path) -> None:
    (tmp_path / "ns.yaml").write_text(NS.format(name="x"))
    (tmp_path / "link.yaml").symlink_to(tmp_path / "ns.yaml")
    with pytest.raises(SpecError) as info:
        load_lab(write_lab(tmp_path, "[ns.yaml, link.yaml]"))
    assert info.value.message == (
        "resource 'link.yaml' is already included (by resources entry 'ns.yaml')"
    )
