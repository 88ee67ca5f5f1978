"""Every shipped example comes up and verifies clean: what it promises in its comments and
its ``expect`` entries is what the lab does (and the derived checks follow its design)."""

from __future__ import annotations

from pathlib import Path

import pytest
from verifykit import lab_up

from multihome import verify
from multihome.spec import load_lab

EXAMPLES = sorted((Path(__file__).parents[2] / "multihome" / "examples").glob("*.yaml"))


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_verifies_clean(example: Path, tmp_path: Path) -> None:
    with lab_up(load_lab(example), tmp_path) as name:
        report = verify.run(name)
    failed = [c for c in report.checks if c.status not in ("pass", "skip")]
    assert not failed, report.json_text()
    assert sum(c.status == "pass" for c in report.checks) >= 10
