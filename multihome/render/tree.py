"""Rendered files in memory, and writing them out: every file is built and validated before
the first one is written, existing files are kept unless forced, links are never followed."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from multihome.render.errors import OutputConflict, OutputError

FileKind = Literal["manifests", "rke2-config", "netplan", "helm-values", "markdown"]
"""What a file holds, which says how it is validated."""

_COMPONENT = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,251}[A-Za-z0-9])?$")


def safe_component(name: str) -> str:
    """``name`` if it is a plain path component (a DNS-1123-like name: letters, digits,
    ``.``, ``-``, ``_``; no ``..``, no ``/``), else ValueError."""
    if not _COMPONENT.match(name) or ".." in name:
        raise ValueError(f"{name!r} can't be used as a file or directory name")
    return name


@dataclass(frozen=True)
class RenderedFile:
    """One output file: a relative POSIX path, its text and permission bits."""

    path: str
    text: str
    kind: FileKind
    mode: int = 0o644

    def __post_init__(self) -> None:
        for part in self.path.split("/"):
            safe_component(part)

    @property
    def data(self) -> bytes:
        return self.text.encode("utf-8")


def _check_parents(out_dir: Path, relative: str) -> None:
    """Every directory between ``out_dir`` and the file is a real directory (or absent)."""
    current = out_dir
    for part in relative.split("/")[:-1]:
        current = current / part
        if current.is_symlink():
            raise OutputError(f"{current} is a symbolic link; refusing to write through it")
        if current.exists() and not current.is_dir():
            raise OutputError(f"{current} exists and is not a directory")


def plan_writes(files: Iterable[RenderedFile], out_dir: Path, force: bool) -> list[RenderedFile]:
    """The files in path order, after checking that all of them can be written: raises
    :class:`OutputConflict` for the first existing file (without ``force``)."""
    ordered = sorted(files, key=lambda f: f.path)
    if out_dir.exists() and not out_dir.is_dir():
        raise OutputError(f"{out_dir} exists and is not a directory")
    for rendered in ordered:
        _check_parents(out_dir, rendered.path)
        target = out_dir / rendered.path
        if target.is_symlink() or (target.exists() and not target.is_file()):
            raise OutputError(f"{target} exists and is not a regular file")
        if target.exists() and not force:
            raise OutputConflict(target)
    return ordered


def _write_one(out_dir: Path, rendered: RenderedFile) -> None:
    target = out_dir / rendered.path
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.multihome-tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
    if temp.exists() or temp.is_symlink():
        temp.unlink()
    fd = os.open(temp, flags, rendered.mode)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(rendered.data)
        os.chmod(temp, rendered.mode)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def write_tree(files: Iterable[RenderedFile], out_dir: Path, force: bool) -> list[Path]:
    """Write every file under ``out_dir``; returns the paths written, sorted."""
    ordered = plan_writes(files, out_dir, force)
    written = []
    try:
        for rendered in ordered:
            _write_one(out_dir, rendered)
            written.append(out_dir / rendered.path)
    except OSError as exc:
        raise OutputError(f"cannot write {exc.filename or out_dir}: {exc.strerror}") from None
    return written
