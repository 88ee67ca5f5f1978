"""Each finding's kind (a real cluster refuses the design, or runs with it) is what the
README's table of checks says; every warning runs but a plugin the lab can't build."""

from __future__ import annotations

import re
from pathlib import Path

from multihome.check import Kind, Severity
from multihome.check.findings import LAB_CANNOT_BUILD, RUNS_ANYWAY, kind_of

ROOT = Path(__file__).parents[2]
SOURCE = "\n".join(p.read_text() for p in sorted((ROOT / "multihome" / "check").glob("*.py")))
ERRORS = set(re.findall(r'ctx\.error\(\s*"([a-z0-9-]+)"', SOURCE))
WARNINGS = set(re.findall(r'ctx\.warning\(\s*"([a-z0-9-]+)"', SOURCE))


def _table() -> list[tuple[str, str, str]]:
    readme = (ROOT / "README.md").read_text()
    start = readme.index("| area | refused: `up` builds nothing | runs: `up` warns and builds |")
    rows = []
    for line in readme[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows.append((cells[0], cells[1], cells[2]))
    return rows


def _ids(cell: str) -> set[str]:
    return {i for i in re.findall(r"`([a-z0-9-]+)`", cell) if "-" in i}


def test_every_listed_run_anyway_id_is_an_error_of_a_check() -> None:
    assert RUNS_ANYWAY <= ERRORS


def test_warnings_run_and_other_errors_are_refused() -> None:
    assert LAB_CANNOT_BUILD <= WARNINGS
    assert all(kind_of(i, Severity.WARNING) is Kind.RUNS for i in WARNINGS - LAB_CANNOT_BUILD)
    assert all(kind_of(i, Severity.WARNING) is Kind.REFUSED for i in LAB_CANNOT_BUILD)
    assert {i for i in ERRORS if kind_of(i, Severity.ERROR) is Kind.RUNS} == RUNS_ANYWAY


def test_the_readme_table_says_which_kind_each_check_is() -> None:
    rows = _table()
    assert len(rows) >= 8
    refused = set().union(*(_ids(r[1]) for r in rows))
    runs = set().union(*(_ids(r[2]) for r in rows))
    assert runs & ERRORS == RUNS_ANYWAY
    assert refused & RUNS_ANYWAY == set()
    assert refused >= LAB_CANNOT_BUILD
    assert runs & LAB_CANNOT_BUILD == set()
    allowed = (ERRORS - RUNS_ANYWAY) | LAB_CANNOT_BUILD
    assert refused <= allowed, refused - allowed
