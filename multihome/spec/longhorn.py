"""The Longhorn releases multihome knows: every release of the lines that have the storage
network and whose instance-managers it can name (1.4 to 1.10), from longhorn/longhorn's
tags. ``longhorn.version`` in a lab file must be one of them."""

from __future__ import annotations

LONGHORN_LINES: dict[str, int] = {
    "1.4": 4,
    "1.5": 5,
    "1.6": 4,
    "1.7": 3,
    "1.8": 2,
    "1.9": 2,
    "1.10": 2,
}
"""Each line and its last patch release (``1.4`` -> 1.4.0 to 1.4.4)."""

LONGHORN_RELEASES: tuple[str, ...] = tuple(
    f"{line}.{patch}" for line, last in LONGHORN_LINES.items() for patch in range(last + 1)
)


def known_ranges() -> str:
    """``1.4.0 to 1.4.4, 1.5.0 to 1.5.5, ...``, for messages."""
    return ", ".join(f"{line}.0 to {line}.{last}" for line, last in LONGHORN_LINES.items())
