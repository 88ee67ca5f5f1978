"""Loading a lab file: read, parse with positions, validate, follow ``spec.resources``.

Every problem with the input is a :class:`SpecError` with a location and a hint; the first
problem met stops loading (documents are checked in file order, then resources in order).
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import Location, SpecError
from .labfile import LabFile
from .manifests import Manifest, build_manifest, document_kind
from .models import KIND, Lab
from .validation import validate
from .yamlpos import Document, compose, decode

MAX_FILE_BYTES = 16 * 1024 * 1024
"""Largest file read (a lab file or a resource)."""
SEED_NAME = "rke2-multihomed.yaml"


def seed_path() -> Path:
    """The built-in example: the seed design (``multihome/examples/rke2-multihomed.yaml``)."""
    return Path(__file__).resolve().parent.parent / "examples" / SEED_NAME


def _read(path: Path, at: Location | None, what: str, shown: str | None = None) -> bytes:
    """The bytes of a regular file; ``what`` and ``shown`` name it in errors."""
    name = f"{what} {str(path)!r}" if shown is None else f"{what} {shown!r}"
    hint_at = "check the path"
    if at is not None:
        hint_at = f"looked for {path}; paths are relative to the lab file"
    try:
        if path.is_dir():
            listed = sorted(p.name for p in path.glob("*.y*ml"))[:5]
            hint = "give the lab file itself" + (f", e.g. {path / listed[0]}" if listed else "")
            raise SpecError(f"{name} is a directory", at, hint)
        if not path.exists():
            raise SpecError(f"{name} does not exist", at, hint_at)
        if not path.is_file():
            raise SpecError(f"{name} is not a regular file", at, hint_at)
        if path.stat().st_size > MAX_FILE_BYTES:
            size = MAX_FILE_BYTES // (1024 * 1024)
            raise SpecError(f"{name} is larger than {size} MiB", at, "is this the right file?")
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"cannot read {name}: {exc.strerror}", at, hint_at) from None
    except ValueError:  # a NUL byte in the path
        raise SpecError(f"{name} is not a valid path", at, hint_at) from None
    if len(data) > MAX_FILE_BYTES:
        size = MAX_FILE_BYTES // (1024 * 1024)
        raise SpecError(f"{name} is larger than {size} MiB", at, "is this the right file?")
    return data


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def _real(path: Path) -> str:
    """The path with symlinks resolved, to notice a file included twice."""
    return os.path.realpath(path)


def _parse(data: str | bytes, file: str) -> list[Document]:
    text = decode(data, file) if isinstance(data, bytes) else data
    return compose(text, file)


def _resource_files(entry: str, base_dir: Path, at: Location) -> list[Path]:
    if not entry.strip():
        raise SpecError("a resources entry is empty", at, "name a file or a directory")
    if "://" in entry:
        raise SpecError(
            f"remote resource {entry!r} is not supported", at, "download it and name the local file"
        )
    if "\0" in entry:
        raise SpecError(f"resource {entry!r} is not a valid path", at, "name a file or a directory")
    path = base_dir / entry
    try:
        is_dir = path.is_dir()
    except OSError as exc:
        raise SpecError(f"resource {entry!r}: {exc.strerror}", at, f"looked for {path}") from None
    if is_dir:
        try:
            files = sorted(
                (
                    p
                    for p in path.iterdir()
                    if p.suffix in (".yaml", ".yml") and not p.name.startswith(".")
                ),
                key=lambda p: p.name,
            )
        except OSError as exc:
            raise SpecError(
                f"cannot list {str(path)!r}: {exc.strerror}", at, "check the path"
            ) from None
        files = [p for p in files if _is_file(p)]
        if not files:
            raise SpecError(
                f"resource directory {entry!r} has no *.yaml or *.yml files",
                at,
                f"looked in {path}",
            )
        return files
    _read(path, at, "resource", entry)  # the uniform errors for a missing or odd path
    return [path]


def _load(data: str | bytes, file: str, path: Path, base_dir: Path, from_disk: bool) -> LabFile:
    lab_doc: Document | None = None
    lab: Lab | None = None
    manifests: list[Manifest] = []
    documents = _parse(data, file)
    if not documents:
        raise SpecError(
            "the lab file is empty (no YAML documents)",
            Location(file, 1, 1),
            "start from the built-in example: multihome/examples/rke2-multihomed.yaml",
        )
    for doc in documents:
        kind = document_kind(doc)
        if kind != KIND:
            manifests.append(build_manifest(doc, kind))
            continue
        if lab_doc is not None:
            raise SpecError(
                "a second Lab document",
                doc.locate("kind"),
                f"a lab file has exactly one; the first is at line {lab_doc.locate().line}",
            )
        lab_doc = doc
        lab = validate(Lab, doc)
    if lab is None or lab_doc is None:
        raise SpecError(
            "no Lab document (kind: Lab)",
            Location(file, 1, 1),
            "a lab file has one document with apiVersion: multihome.dev/v1alpha1 and kind: Lab",
        )
    files = [path] if from_disk else []
    seen = {_real(path): "the lab file itself"} if from_disk else {}
    for index, entry in enumerate(lab.spec.resources):
        at = lab_doc.locate("spec", "resources", index)
        for resource in _resource_files(entry, base_dir, at):
            key = _real(resource)
            if key in seen:
                shown = entry if resource == base_dir / entry else str(resource)
                raise SpecError(
                    f"resource {shown!r} is already included ({seen[key]})",
                    at,
                    "name each file once",
                )
            seen[key] = f"by resources entry {entry!r}"
            files.append(resource)
            for doc in _parse(_read(resource, at, "resource"), str(resource)):
                kind = document_kind(doc)
                if kind == KIND:
                    raise SpecError(
                        "a Lab document in a resources file",
                        doc.locate("kind"),
                        f"the Lab is in the lab file {file}; resources hold Kubernetes manifests",
                    )
                manifests.append(build_manifest(doc, kind))
    return LabFile(lab=lab, manifests=manifests, path=path, document=lab_doc, files=files)


def load_lab(path: str | os.PathLike[str] | None = None) -> LabFile:
    """Load a lab file (None: the built-in seed example).

    Resources are relative to the lab file's directory. Raises :class:`SpecError`.
    """
    lab_path = seed_path() if path is None else Path(path)
    data = _read(lab_path, None, "lab file")
    return _load(data, str(lab_path), lab_path, lab_path.parent, from_disk=True)


def load_lab_text(
    text: str | bytes, filename: str = "<lab>", base_dir: Path | None = None
) -> LabFile:
    """Load a lab from its text (or undecoded bytes); ``filename`` names it in locations.

    Resources are relative to ``base_dir`` (default: the current directory).
    Raises :class:`SpecError`.
    """
    return _load(text, filename, Path(filename), base_dir or Path.cwd(), from_disk=False)
