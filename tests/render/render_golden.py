"""Golden trees, netlab style: a rendered directory compared file by file with a committed
one. ``MULTIHOME_UPDATE_GOLDEN=1 pytest tests/render`` rewrites them (review the diff)."""

from __future__ import annotations

import difflib
import os
import shutil
from pathlib import Path

UPDATE = os.environ.get("MULTIHOME_UPDATE_GOLDEN") == "1"


def read_tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` as relative POSIX path -> text."""
    return {
        p.relative_to(root).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def check_tree(actual: dict[str, str], golden: Path) -> None:
    """``actual`` (path -> text) is exactly the golden tree: same files, same bytes."""
    if UPDATE:
        if golden.exists():
            shutil.rmtree(golden)
        for path, text in actual.items():
            target = golden / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        return
    assert golden.is_dir(), f"no golden tree {golden}; run with MULTIHOME_UPDATE_GOLDEN=1"
    expected = read_tree(golden)
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    assert not missing and not extra, f"missing {missing}, unexpected {extra}"
    for path in sorted(expected):
        if actual[path] != expected[path]:
            diff = difflib.unified_diff(
                expected[path].splitlines(True),
                actual[path].splitlines(True),
                f"golden/{path}",
                f"rendered/{path}",
                n=2,
            )
            raise AssertionError("".join(list(diff)[:200]))
