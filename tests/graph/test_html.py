"""verify --html: one self-contained file (no URL a browser would fetch), rendered by Debian's
headless chromium: the DOM is asserted after its script ran (filters from the link's hash
included), and a screenshot is taken. The wrong-VLAN lab's failure is drawn in red."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from multihome.graph.html import no_external_references, report_html
from multihome.lab import api

CHROMIUM = shutil.which("chromium")
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium not installed")
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)  # fmt: skip


def chromium(tmp_path: Path, url: str, *extra: str) -> str:
    """Run chromium once in its own session (killed as a group after: nothing left)."""
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    argv = [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *extra, url]
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    return out


def verify_html(name: str, target: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "multihome", "verify", name, "--html", str(target)],
        capture_output=True,
        text=True,
    )


@needs_chromium
def test_seed_report_in_chromium(seed_lab: str, tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    done = verify_html(seed_lab, target)
    assert done.returncode == 0, done.stderr
    document = target.read_text()
    assert no_external_references(document) == []
    assert "Content-Security-Policy" in document

    dom = chromium(tmp_path, target.as_uri(), "--dump-dom")
    assert '<span id="lab">multi-homed</span>' in dom
    assert re.search(r'id="verdict">OK<', dom)
    rows = re.findall(r'<tr class="(pass|fail|skip)" data-status', dom)
    assert len(rows) > 40 and set(rows) == {"pass"}
    assert re.search(r'id="shown">(\d+) of \1 checks shown<', dom)  # the script ran
    assert '<svg id="topology"' in dom and "multi-homed-wrk-1" in dom
    assert 'machine <span id="machine">' in dom and "UTC" in dom

    filtered = chromium(tmp_path, target.as_uri() + "#family=nics", "--dump-dom")
    shown = re.search(r'id="shown">(\d+) of (\d+) checks shown<', filtered)
    assert shown and int(shown.group(1)) == 6 < int(shown.group(2))  # one per node
    assert len(re.findall(r'data-family="nics"[^>]*>', filtered)) == 6

    shot = tmp_path / "report.png"
    chromium(tmp_path, target.as_uri(), f"--screenshot={shot}", "--window-size=1400,1000")
    assert shot.read_bytes()[:4] == b"\x89PNG"


@needs_chromium
def test_failure_drawn_red_and_filtered(wrong_lab: str, tmp_path: Path) -> None:
    target = tmp_path / "wrong.html"
    done = verify_html(wrong_lab, target)
    assert done.returncode == 1, done.stderr
    dom = chromium(tmp_path, target.as_uri() + "#status=fail", "--dump-dom")
    assert re.search(r'id="verdict">FAIL<', dom)
    assert re.search(r'id="shown">1 of \d+ checks shown<', dom)
    visible = re.findall(r'<tr class="fail" data-status="fail" data-family="([^"]+)"', dom)
    assert visible == ["longhorn-segment"]
    assert "likely cause:" in dom
    # the storage network's wires (lhnet1) drawn red, on vlan60 where they landed
    red = re.findall(r"<title>net_vlan60(?:&#45;|-){2}([^<]*)</title>\s*<path[^>]*#d62728", dom)
    assert len(red) == 7 and sum(w.endswith("_lhnet1") for w in red) == 6  # + net-tools' net1


def test_report_html_without_a_browser(seed_lab: str) -> None:
    from multihome import verify as verifier

    report = verifier.run(seed_lab)
    document = report_html(report, api.load_plan(seed_lab), api.status(seed_lab), when=0)
    assert "1970-01-01 00:00:00 UTC" in document
    assert no_external_references(document) == []
    for check in report.checks:
        assert f'data-family="{check.id}"' in document
