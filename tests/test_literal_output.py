"""Text from lab files, plugins and the kernel is printed literally on every path: errors,
findings, progress, tables, verify's causes and evidence. ``[/x]`` must not be a markup
error, ``[bold]`` must not vanish, ``:100:`` and ``:smile:`` must not become emoji (a
``file:100:26`` location is what editors and CI parse). The real ``up`` is in
tests/lab/test_up_literal.py."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from multihome import cli
from multihome.cli import app
from multihome.display import BuildDisplay
from multihome.lab import api
from multihome.lab.steps import Step
from multihome.spec import seed_path
from multihome.verify.report import CheckResult, Report

TRICKY = "[/x] [bold]x :100: :smile:"
PIECES = ("[/x]", "[bold]x", ":100:", ":smile:")
EMOJI = ("💯", "😄")


def _literal(text: str, expected: str = TRICKY) -> None:
    assert expected in text, text
    assert not any(e in text for e in EMOJI), text
    assert "Traceback" not in text and "MarkupError" not in text, text


@pytest.fixture(autouse=True)
def wide_consoles(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tables fold long cells at the console's width; a wide console keeps each on a line."""
    for console in (cli.out, cli.err):
        monkeypatch.setattr(console, "width", 400)
    yield


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, result.stdout, result.stderr


# -- errors and findings (validate, show, render) -------------------------------------------


def test_a_load_error_quotes_the_file_literally(tmp_path: Path) -> None:
    path = tmp_path / "lab.yaml"
    path.write_text(f'apiVersion: v1\nkind: "{TRICKY}"\nmetadata: {{name: x}}\n')
    code, _, err = run("validate", str(path))
    assert code == 2
    _literal(err)
    assert err.startswith(f"error: {path}:2:7: unsupported kind '{TRICKY}'")


def _seed_with_iface_on_line_100(tmp_path: Path) -> Path:
    """The seed with Canal pinned to a NIC named TRICKY, on line 100 of the file."""
    lines = seed_path().read_text().splitlines(keepends=True)
    at = lines.index("      iface: ens192\n")
    lines[at] = f'      iface: "{TRICKY}"\n'
    padding = ["# padding\n"] * (99 - at)
    path = tmp_path / "lab.yaml"
    path.write_text("".join(padding + lines))
    return path


def test_findings_print_locations_and_values_literally(tmp_path: Path) -> None:
    path = _seed_with_iface_on_line_100(tmp_path)
    code, out, _ = run("validate", str(path))
    assert code == 1
    _literal(out)
    assert f"{path}:100:14: error [canal-iface-missing] Canal is pinned to {TRICKY}," in out
    assert f"    fix: give every node a NIC named {TRICKY}, or pin" in out
    assert out.splitlines()[-1].startswith("FAIL multi-homed (")

    code, text, _ = run("validate", str(path), "-o", "json")
    assert code == 1
    found = json.loads(text)["findings"]
    assert any(f["line"] == 100 and TRICKY in f["message"] for f in found)


def test_show_tables_print_lab_values_literally(tmp_path: Path) -> None:
    text = seed_path().read_text().replace('"master": "ens224"', f'"master": "{TRICKY}"', 1)
    path = tmp_path / "lab.yaml"
    path.write_text(text)
    code, out, _ = run("show", str(path))
    assert code == 0
    _literal(out)


def test_render_prints_paths_and_errors_literally(tmp_path: Path) -> None:
    out_dir = tmp_path / TRICKY
    code, out, _ = run("render", "-o", str(out_dir))
    assert code == 0
    _literal(out, f"to {out_dir} (target rke2")

    missing = tmp_path / f"{TRICKY}.token"
    code, _, err = run("render", "-o", str(tmp_path / "other"), "--token-file", str(missing))
    assert code == 2
    _literal(err)
    assert err.startswith("error: ")

    code, out, err = run("render", str(_seed_with_iface_on_line_100(tmp_path)), "-o", "x")
    assert code == 1
    _literal(out)
    assert ":100:14: error [canal-iface-missing]" in out


# -- the lab's tables and errors (get, up, down, exec) with a made-up status ----------------


def _fake_status() -> dict[str, Any]:
    return {
        "name": "fake",
        "created": 0.0,
        "running": True,
        "elapsed": 1.0,
        "nodes": [
            {
                "name": f"node {TRICKY}",
                "roles": "worker",
                "version": "v1.25.9+rke2r1",
                "internal_ip": "172.16.40.11",
                "external_ip": None,
                "os_image": TRICKY,
                "kernel": TRICKY,
                "container_runtime": "containerd://1.7",
            }
        ],
        "pods": [
            {
                "namespace": TRICKY,
                "name": "p",
                "node": "n",
                "phase": "ContainerCreating",
                "error": f"macvlan ADD: {TRICKY}",
                "network_status": [
                    {
                        "name": "k8s-pod-network",
                        "interface": "eth0",
                        "ips": ["10.42.0.5"],
                        "default": True,
                    },
                    {"name": "apps/x", "interface": TRICKY, "ips": ["172.16.60.5"]},
                ],
            }
        ],
        "pending": [f"{TRICKY}/q"],
        "networks": [
            {
                "name": TRICKY,
                "vlan": 60,
                "subnet": "172.16.60.0/24",
                "bridge": "br60",
                "dhcp": {"range": TRICKY},
                "attachments": [TRICKY],
            },
        ],
        "hosts": [
            {
                "name": TRICKY,
                "nics": [{"name": "eth0", "address": TRICKY}],
                "serves": {"http": [80], "tcp": [], "udp": []},
            },
        ],
    }


@pytest.mark.parametrize(
    "args",
    [
        ("get", "nodes", "-o", "wide"),
        ("get", "pods", "-o", "wide"),
        ("get", "pods"),
        ("get", "networks", "-o", "wide"),
        ("get", "hosts"),
    ],
)
def test_get_tables_print_status_literally(
    args: tuple[str, ...], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(api, "status", lambda name=None: _fake_status())
    code, out, _ = run(*args)
    assert code == 0
    _literal(out)


@pytest.mark.parametrize("command", [["get", "pods"], ["exec", "a/b", "--", "true"], ["down"]])
@pytest.mark.parametrize(("code", "exc"), [(1, RuntimeError), (2, api.LabError)])
def test_lab_errors_print_literally(
    command: list[str], code: int, exc: type[Exception], monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*_: Any, **__: Any) -> Any:
        raise api.LabError(f"lab {TRICKY}", code=2) if exc is api.LabError else exc(TRICKY)

    for name in ("status", "run", "down"):
        monkeypatch.setattr(api, name, fail)
    got, _, err = run(*command)
    # get and exec only read the lab's state: any failure there means "could not be tried"
    assert got == (2 if command[0] in ("get", "exec") else code)
    _literal(err)
    assert err.startswith("error: ")


def test_up_prints_the_summary_and_a_stuck_pod_literally(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        api, "up", lambda lab_file, progress, keep_going, checked, early: _fake_status()
    )
    code, out, _ = run("up")
    assert code == 1  # a pod is not Running
    _literal(out)
    assert f"{TRICKY}/p is ContainerCreating: macvlan ADD: {TRICKY}" in out


def test_up_prints_its_error_literally(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*_: Any, **__: Any) -> Any:
        raise api.LabError(f"up failed (rolled back): plugin said {TRICKY}")

    monkeypatch.setattr(api, "up", fail)
    code, _, err = run("up")
    assert code == 1
    _literal(err)


# -- verify's report ------------------------------------------------------------------------


def _report() -> Report:
    checks = (
        CheckResult("interfaces", TRICKY, f"title {TRICKY}", "pass", (f"ok {TRICKY}",)),
        CheckResult(
            "reach",
            "apps/p",
            "apps/p reaches web",
            "fail",
            (f"evidence {TRICKY}", "second line"),
            cause=f"cause {TRICKY}",
        ),
        CheckResult("expect", "expect #1", "t", "skip", cause=f"skipped {TRICKY}"),
    )
    return Report(lab=TRICKY, checks=checks, elapsed=0.5)


def test_verify_report_prints_evidence_and_causes_literally(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from multihome import verify

    monkeypatch.setattr(verify, "run", lambda name=None: _report())
    code, out, _ = run("verify")
    assert code == 1
    for expected in (f"ok {TRICKY}", f"evidence {TRICKY}", f"cause {TRICKY}", f"FAIL {TRICKY}:"):
        _literal(out, expected)
    assert f"skipped {TRICKY}" in out

    def cannot(name: str | None = None) -> Report:
        raise verify.VerifyError(f"cannot verify: {TRICKY}")

    monkeypatch.setattr(verify, "run", cannot)
    code, _, err = run("verify")
    assert code == 2
    _literal(err)


def test_the_report_table_is_literal_on_a_console_with_markup_on() -> None:
    console = Console(file=io.StringIO(), width=400)  # rich's defaults: markup and emoji on
    console.print(_report().table())
    _literal(console.file.getvalue())  # type: ignore[attr-defined]


# -- the progress display of up --------------------------------------------------------------


def _steps() -> list[Step]:
    return [
        Step("sandbox"),
        Step(f"phase {TRICKY}"),
        Step("pods", done=0, total=2),
        Step("pods", done=1, total=2, item=f"{TRICKY}/p"),
        Step("pods", done=2, total=2, item=f"{TRICKY}/q"),
    ]


@pytest.mark.parametrize("terminal", [False, True], ids=["line-per-phase", "live"])
def test_progress_prints_phases_and_items_literally(terminal: bool) -> None:
    # rich's defaults (markup and emoji on): the display must not depend on the console
    console = Console(file=io.StringIO(), force_terminal=terminal, width=200)
    with BuildDisplay(console) as display:
        for step in _steps():
            display(step)
            if terminal:
                assert display._live is not None
                display._live.refresh()  # the spinner line with the pod just attached
    text = console.file.getvalue()  # type: ignore[attr-defined]
    _literal(text, f"phase {TRICKY}")
    if terminal:
        _literal(text, f"{TRICKY}/p")
