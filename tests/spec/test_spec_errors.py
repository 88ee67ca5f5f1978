"""Every class of bad input is a SpecError at the right place, with a useful message."""

from __future__ import annotations

from pathlib import Path

import pytest
from spec_helpers import MINIMAL, error_of, line_of

from multihome.spec import Location, SpecError, load_lab, load_lab_text


def test_minimal_loads() -> None:
    lab_file = load_lab_text(MINIMAL, "mini.yaml")
    assert lab_file.lab.spec.nodes[0].name == "node-1"
    assert lab_file.locate("spec", "nodes", 0, "name") == Location("mini.yaml", 10, 13)
    assert lab_file.locate("spec", "nodes", 0, "nics", 0, "name") == Location("mini.yaml", 13, 17)
    assert lab_file.manifests == []
    assert lab_file.path == Path("mini.yaml")


def test_str_is_one_line_with_location_and_hint() -> None:
    err = SpecError("bad\nthing", Location("f.yaml", 3, 4), "fix\n it")
    assert str(err) == "f.yaml:3:4: bad thing; fix it"
    assert str(SpecError("no place")) == "no place"
    assert err.message == "bad thing" and err.hint == "fix it"


def test_malformed_yaml() -> None:
    text = MINIMAL.replace("      role: server\n", "      role: server\n     bad: [\n")
    err = error_of(text)
    assert err.location is not None and err.location.line in (12, 13)
    assert err.message.startswith("invalid YAML")
    assert err.hint


def test_mapping_values_not_allowed() -> None:
    err = error_of("apiVersion: v1\nkind: Lab: x\n")
    assert err.location == Location("lab.yaml", 2, 10)
    assert "mapping values are not allowed" in err.message
    assert err.hint is not None and "quote" in err.hint


def test_tab_indentation() -> None:
    err = error_of(MINIMAL.replace("  name: mini", "\tname: mini"))
    assert err.location is not None and err.location.line == 4
    assert err.hint is not None and "tabs" in err.hint


def test_wrong_type() -> None:
    err = error_of(
        MINIMAL.replace("      subnet: 10.0.0.0/24", "      subnet: 10.0.0.0/24\n      vlan: '4'")
    )
    assert err.location == Location("lab.yaml", 9, 13)
    assert "spec.networks[0].vlan" in err.message and "expected an integer" in err.message
    assert err.hint == "remove the quotes"


def test_string_read_as_number() -> None:
    text = MINIMAL + "  cluster:\n    version: 1.25\n"
    err = error_of(text)
    assert err.location == Location("lab.yaml", 17, 14)
    assert "expected a string, got a number (1.25)" in err.message
    assert err.hint is not None and "quotes" in err.hint


def test_list_where_mapping_expected() -> None:
    err = error_of(MINIMAL.replace("metadata:\n  name: mini", "metadata: [mini]"))
    assert err.location == Location("lab.yaml", 3, 11)
    assert "metadata: expected a mapping, got a list" in err.message


def test_missing_required_key() -> None:
    err = error_of(MINIMAL.replace("      role: server\n", ""))
    assert err.location == Location("lab.yaml", 10, 7)
    assert err.message == "spec.nodes[0]: missing required key 'role'"
    assert err.hint is not None and "role: agent" in err.hint


def test_unknown_key_did_you_mean() -> None:
    err = error_of(MINIMAL.replace("      nics:", "      nic:"))
    assert err.location == Location("lab.yaml", 12, 7)
    assert err.message == "spec.nodes[0]: unknown key 'nic'"
    assert err.hint == "did you mean 'nics'?"
    # the missing 'nics' is reported too, after it
    assert any("missing required key 'nics'" in more.message for more in err.more)


def test_unknown_key_alias_case() -> None:
    err = error_of(
        MINIMAL.replace("      role: server\n", "      role: server\n      nodeIp: 10.0.0.10\n")
    )
    assert err.location == Location("lab.yaml", 12, 7)
    assert err.hint == "did you mean 'nodeIP'?"


def test_unknown_key_without_close_match_lists_keys() -> None:
    err = error_of(MINIMAL.replace("      role: server\n", "      role: server\n      zzz: 1\n"))
    assert err.message == "spec.nodes[0]: unknown key 'zzz'"
    assert err.hint is not None and err.hint.startswith("allowed keys here: name, role, nodeIP")


def test_snake_case_key_is_unknown() -> None:
    err = error_of(MINIMAL + "  cluster:\n    cluster_cidr: 10.42.0.0/16\n")
    assert err.message == "spec.cluster: unknown key 'cluster_cidr'"
    assert err.hint == "did you mean 'clusterCIDR'?"


def test_enum_value() -> None:
    err = error_of(MINIMAL.replace("role: server", "role: master"))
    assert err.location == Location("lab.yaml", 11, 13)
    assert err.message == "spec.nodes[0].role: 'master' is not one of 'server', 'agent'"
    assert err.hint == "did you mean 'server'?"
    err = error_of(MINIMAL + "  cluster:\n    canal: {backend: hostgw}\n")
    assert err.hint == "did you mean 'host-gw'?"


def test_malformed_ip_and_network() -> None:
    err = error_of(MINIMAL.replace("address: 10.0.0.10", "address: 10.0.0.300"))
    assert err.location == Location("lab.yaml", 15, 20)
    assert "not a valid IP address" in err.message
    err = error_of(MINIMAL.replace("address: 10.0.0.10", "address: 10.0.0.10/24"))
    assert "prefix" in err.message and err.hint is not None and "subnet" in err.hint
    err = error_of(MINIMAL.replace("10.0.0.0/24", "10.0.0.1/24"))
    assert err.location == Location("lab.yaml", 8, 15)
    assert err.hint == "did you mean 10.0.0.0/24?"
    err = error_of(MINIMAL.replace("10.0.0.0/24", "10.0.0.0"))
    assert "prefix length is missing" in err.message


def test_ipv6_is_fine() -> None:
    text = MINIMAL.replace("10.0.0.0/24", "fd00:10::/64").replace("10.0.0.10", "fd00:10::10")
    lab = load_lab_text(text).lab
    assert lab.spec.nodes[0].nics[0].address is not None
    assert lab.spec.nodes[0].nics[0].address.version == 6


def test_unknown_kind() -> None:
    text = MINIMAL + "---\napiVersion: v1\nkind: Service\nmetadata: {name: web}\n"
    err = error_of(text)
    assert err.location == Location("lab.yaml", 18, 7)
    assert err.message == "unsupported kind 'Service'"
    assert err.hint is not None
    for kind in ("Namespace", "NetworkAttachmentDefinition", "Pod", "Deployment", "Setting"):
        assert kind in err.hint


def test_kind_did_you_mean() -> None:
    text = MINIMAL + "---\napiVersion: apps/v1\nkind: Deploymnet\nmetadata: {name: web}\n"
    err = error_of(text)
    assert err.hint is not None and err.hint.startswith("did you mean 'Deployment'?")


def test_wrong_api_version() -> None:
    text = MINIMAL + "---\napiVersion: v1\nkind: Deployment\nmetadata: {name: web}\n"
    err = error_of(text)
    assert err.location == Location("lab.yaml", 17, 13)
    assert err.message == "Deployment must have apiVersion apps/v1, not 'v1'"


def test_document_without_kind_or_not_a_mapping() -> None:
    err = error_of(MINIMAL + "---\napiVersion: v1\nmetadata: {name: x}\n")
    assert err.location == Location("lab.yaml", 17, 1) and "no kind" in err.message
    err = error_of(MINIMAL + "---\n- just\n- a list\n")
    assert err.location == Location("lab.yaml", 17, 1) and "must be a mapping" in err.message


def test_zero_lab_documents() -> None:
    err = error_of("apiVersion: v1\nkind: Namespace\nmetadata: {name: x}\n")
    assert err.location == Location("lab.yaml", 1, 1)
    assert "no Lab document" in err.message


def test_two_lab_documents() -> None:
    err = error_of(MINIMAL + "---\n" + MINIMAL)
    assert err.location == Location("lab.yaml", 18, 7)
    assert err.message == "a second Lab document"
    assert err.hint is not None and "line 1" in err.hint


def test_empty_file_and_empty_documents() -> None:
    assert "empty" in error_of("").message
    assert "empty" in error_of("# only a comment\n---\n---\n").message
    lab_file = load_lab_text("---\n---\n" + MINIMAL + "---\n# nothing\n---\n")
    assert lab_file.manifests == []
    assert lab_file.document.index == 0


def test_duplicate_key() -> None:
    err = error_of(
        MINIMAL.replace("      role: server\n", "      role: server\n      role: agent\n")
    )
    assert err.location == Location("lab.yaml", 12, 7)
    assert err.message == "duplicate key 'role' (first at line 11)"


def test_duplicate_key_in_a_manifest() -> None:
    text = MINIMAL + "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: a, name: b}\n"
    err = error_of(text)
    assert err.location == Location("lab.yaml", 19, 21)


def test_alias_bomb() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    err = error_of("\n".join(lines) + "\n")
    assert "too large" in err.message and err.location is not None


def test_recursive_alias() -> None:
    err = error_of("a: &x [1, *x]\n")
    assert err.location == Location("lab.yaml", 1, 11)
    assert "contains it" in err.message


def test_undefined_alias() -> None:
    err = error_of("a: *nowhere\n")
    assert err.location == Location("lab.yaml", 1, 4)


def test_deep_nesting() -> None:
    err = error_of("[" * 5000 + "]" * 5000)
    assert "nesting" in err.message


def test_binary_garbage() -> None:
    err = error_of(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert "not UTF-8" in err.message
    assert err.location == Location("lab.yaml", 1, 1)


def test_undecodable_byte_position() -> None:
    err = error_of(MINIMAL.encode().replace(b"name: mini", b"name: m\xffni"))
    assert err.location == Location("lab.yaml", 4, 10)
    assert "0xff" in err.message


def test_control_characters() -> None:
    err = error_of(MINIMAL.replace("name: mini", "name: m\x01ni"))
    assert err.location == Location("lab.yaml", 4, 10)
    assert "control characters" in err.message


def test_lone_surrogate() -> None:
    err = error_of(MINIMAL.replace("name: mini", "name: m\udc80ni"))
    assert err.location == Location("lab.yaml", 4, 10)


def test_unsupported_tag() -> None:
    err = error_of(MINIMAL.replace("name: mini", "name: !Ref mini"))
    assert err.location == Location("lab.yaml", 4, 9)
    assert "tag" in err.message


def test_manifest_errors_name_the_object() -> None:
    text = MINIMAL + (
        "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  labels: {on: yes}\n"
        "spec:\n  containers: [{name: c}]\n"
    )
    err = error_of(text)
    assert err.location == Location("lab.yaml", 21, 16)
    assert err.message == "Pod p: metadata.labels.on: expected a string, got a boolean (true)"
    text = MINIMAL + "---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec: {}\n"
    err = error_of(text)
    assert err.location == Location("lab.yaml", 21, 7)
    assert err.message == "Pod p: spec: missing required key 'containers'"


def test_only_the_first_error_in_file_order() -> None:
    text = MINIMAL.replace("role: server", "role: boss").replace("subnet: 10.0.0.0/24", "subnet: x")
    err = error_of(text)
    assert err.location is not None and err.location.line == 8
    assert len(err.more) == 1 and err.more[0].location is not None
    assert err.more[0].location.line == 11


def test_lab_file_is_a_directory(tmp_path: Path) -> None:
    (tmp_path / "lab.yaml").write_text(MINIMAL)
    with pytest.raises(SpecError) as info:
        load_lab(tmp_path)
    assert "is a directory" in info.value.message
    assert info.value.hint is not None and "lab.yaml" in info.value.hint


def test_lab_file_missing(tmp_path: Path) -> None:
    with pytest.raises(SpecError) as info:
        load_lab(tmp_path / "nope.yaml")
    assert "does not exist" in info.value.message and info.value.location is None


def test_lab_file_binary(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(SpecError) as info:
        load_lab(path)
    assert info.value.location is not None and info.value.location.file == str(path)


def test_locations_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(MINIMAL.replace("role: server", "role: boss"))
    with pytest.raises(SpecError) as info:
        load_lab(path)
    assert str(info.value).startswith(f"{path}:11:13: ")


def test_bom_and_utf16(tmp_path: Path) -> None:
    assert load_lab_text(b"\xef\xbb\xbf" + MINIMAL.encode()).lab.metadata.name == "mini"
    assert load_lab_text(MINIMAL.encode("utf-16")).lab.metadata.name == "mini"


@pytest.mark.parametrize(
    ("needle", "replacement", "line"),
    [
        ("name: eth0", "name: 42", 13),  # a number where a string is needed
        ("address: 10.0.0.10", "address: [10.0.0.10]", 15),
        ("      nics:\n", "      nics: {}\n      x:\n", 12),
    ],
)
def test_assorted_type_errors(needle: str, replacement: str, line: int) -> None:
    err = error_of(MINIMAL.replace(needle, replacement))
    assert err.location is not None and err.location.line == line, str(err)
    assert err.message.startswith("spec.nodes[0]")


def test_line_of_helper() -> None:
    assert line_of("a\nbc\n", "c") == (2, 2)
