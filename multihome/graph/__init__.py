"""Pictures of a design or a running lab (``multihome graph``) and verify's HTML report.

``picture(plan, status, failures)`` decides what is drawn (``model``); ``to_dot`` and
``to_mermaid`` write it; ``write_picture`` picks the format by the file's suffix and has
Graphviz's ``dot`` lay out and render SVG and PNG (no layout of our own).
"""

from __future__ import annotations

import sys
from pathlib import Path

import graphviz  # type: ignore[import-untyped]

from .dot import to_dot
from .mermaid import to_mermaid
from .model import Failures, Picture, picture

FORMATS = (".svg", ".png", ".dot", ".gv", ".mmd")


class GraphError(RuntimeError):
    """The picture could not be written (a bad suffix, no Graphviz, an unwritable file)."""


def render_bytes(pic: Picture, fmt: str) -> bytes:
    """The picture as ``svg``, ``png``, ``dot`` or ``mmd`` bytes."""
    if fmt == "mmd":
        return to_mermaid(pic).encode()
    source = to_dot(pic)
    if fmt in ("dot", "gv"):
        return str(source.source).encode()
    try:
        data = bytes(source.pipe(format=fmt, engine="dot"))
    except graphviz.ExecutableNotFound:
        raise GraphError(
            "Graphviz's dot is not installed (Debian: apt-get install graphviz)"
        ) from None
    except graphviz.CalledProcessError as exc:
        detail = (exc.stderr or b"").decode(errors="replace").strip()
        raise GraphError(f"Graphviz's dot failed: {detail}") from None
    return data


def write_picture(pic: Picture, target: str) -> str:
    """Write the picture to ``target`` (``-``: DOT on stdout); returns what was written."""
    if target == "-":
        sys.stdout.write(to_dot(pic).source)
        return "DOT to stdout"
    path = Path(target)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise GraphError(
            f"{target}: unknown picture format {suffix or '(no suffix)'!r}; "
            "name the file .svg, .png, .dot or .mmd (Mermaid), or use -o - for DOT on stdout"
        )
    data = render_bytes(pic, suffix[1:])
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise GraphError(f"cannot write {target}: {exc.strerror or exc}") from None
    return str(path)


__all__ = [
    "FORMATS",
    "Failures",
    "GraphError",
    "Picture",
    "picture",
    "render_bytes",
    "to_dot",
    "to_mermaid",
    "write_picture",
]
