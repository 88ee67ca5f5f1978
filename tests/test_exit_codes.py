"""Exit codes of every command (DESIGN.md): 0 success, 1 the check or action failed, 2 usage
or environment error, i.e. the action could not be tried: no such lab, lab not up or busy,
state dir unusable, an invalid name. None of these needs a lab to be built."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from multihome.cli import app
from multihome.lab.state import LabState
from multihome.spec import seed_path


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "state"
    monkeypatch.setenv("MULTIHOME_STATE_DIR", str(path))
    return path


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def _lab_dir(root: Path, name: str = "lab-a") -> Path:
    LabState(name, root).prepare()
    return root / name


def _status(root: Path, name: str = "lab-a") -> Path:
    """A lab whose up finished but whose sandbox is gone (not running)."""
    path = _lab_dir(root, name) / "status.json"
    doc = {"name": name, "created": 0.0, "elapsed": 1.0, "sandbox": {}}
    doc.update({k: [] for k in ("nodes", "pods", "pending", "networks", "hosts")})
    path.write_text(json.dumps(doc))
    return path


LAB_COMMANDS = [
    ("get", "pods"),
    ("get", "nodes", "-o", "json"),
    ("exec", "a/b", "--", "true"),
    ("verify",),
]


@pytest.mark.parametrize("args", LAB_COMMANDS, ids=" ".join)
def test_no_lab_up_is_2(args: tuple[str, ...], root: Path) -> None:
    code, output = run(*args)
    assert code == 2, output
    assert "no lab is up" in output


@pytest.mark.parametrize("args", LAB_COMMANDS, ids=" ".join)
def test_several_labs_up_without_a_name_is_2(args: tuple[str, ...], root: Path) -> None:
    _status(root, "lab-a")
    _status(root, "lab-b")
    code, output = run(*args)
    assert code == 2, output
    assert "several labs are up (lab-a, lab-b): name one" in output


@pytest.mark.parametrize("args", LAB_COMMANDS, ids=" ".join)
def test_a_lab_not_up_yet_is_2(args: tuple[str, ...], root: Path) -> None:
    _lab_dir(root)  # its up still running, or crashed before writing the status
    code, output = run(*args)
    assert code == 2, output
    assert "is not up" in output


@pytest.mark.parametrize("args", LAB_COMMANDS, ids=" ".join)
def test_an_unreadable_status_is_2(args: tuple[str, ...], root: Path) -> None:
    _status(root).write_text('{"name": "lab-a", "nod')
    code, output = run(*args)
    assert code == 2, output
    assert output.splitlines()[-1].startswith("error: ")  # after validate's warnings (up)


def test_a_lab_whose_sandbox_is_gone(root: Path) -> None:
    _status(root)
    assert run("get", "nodes")[0] == 0  # reading works: NotReady
    code, output = run("exec", "a/b", "--", "true")
    assert code == 2 and "is not running (its sandbox is gone)" in output
    code, output = run("verify")
    assert code == 2 and "cannot verify" in output


@pytest.mark.parametrize(
    "args",
    [
        ("down", "../etc"),
        ("get", "pods", "--lab", "../etc"),
        ("exec", "a/b", "--lab", "Not_A_Name", "--", "true"),
        ("verify", "../etc"),
    ],
    ids=" ".join,
)
def test_an_invalid_lab_name_is_2(args: tuple[str, ...], root: Path) -> None:
    code, output = run(*args)
    assert code == 2, output
    assert "is invalid" in output


def test_down_with_nothing_to_remove_is_0(root: Path) -> None:
    assert run("down") == (0, "no lab to remove\n")
    assert run("down", "nothere") == (0, "no lab to remove\n")


def test_a_busy_lab_is_2(root: Path) -> None:
    other = LabState("lab-a", root)
    other.prepare()
    other.acquire()  # another up/down working on it
    try:
        code, output = run("down", "lab-a")
    finally:
        other.release()
    assert code == 2 and "is busy" in output


def _root_is_a_file(root: Path) -> None:
    root.write_text("not a directory")


def _root_of_someone_else(root: Path) -> None:
    _lab_dir(root)
    os.chown(root, 4242, 4242)


@pytest.mark.parametrize(
    "spoil",
    [
        _root_is_a_file,
        pytest.param(
            _root_of_someone_else,
            marks=pytest.mark.skipif(os.geteuid() != 0, reason="chown needs root"),
        ),
    ],
)
@pytest.mark.parametrize(
    "args", [("down",), ("down", "lab-a"), ("get", "pods"), ("up",)], ids=" ".join
)
def test_an_unusable_state_dir_is_2(
    spoil: Callable[[Path], None], args: tuple[str, ...], root: Path
) -> None:
    spoil(root)
    code, output = run(*args)
    if code == 0 and args[0] == "down":  # nothing it could see to remove
        assert output == "no lab to remove\n"
        return
    assert code == 2, output
    assert output.splitlines()[-1].startswith("error: ")  # after validate's warnings (up)


def test_validate_render_and_usage_codes(tmp_path: Path) -> None:
    assert run("validate")[0] == 0
    assert run("validate", str(tmp_path / "missing.yaml"))[0] == 2
    broken = tmp_path / "lab.yaml"
    broken.write_text(seed_path().read_text().replace("iface: ens192\n", "iface: ens224\n", 1))
    assert run("validate", str(broken))[0] == 1  # findings: the check failed
    assert run("render", str(broken), "-o", str(tmp_path / "out"))[0] == 1
    assert run("get", "things")[0] == 2  # usage
    assert run("validate", "--no-such-option")[0] == 2
