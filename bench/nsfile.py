"""Network namespaces for the benchmarks, held by a bind mount on a file of their own (not in
/run/netns, so test sessions running at the same time neither see nor remove them)."""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def netns_file(directory: str, label: str, *, lo_up: bool = True) -> Iterator[str]:
    """A new network namespace pinned on ``directory/label-XXXXXX``; yields that path.

    On exit the mount is detached, lazily if a process still has the file open (the dhcp
    daemon does while an interrupted acquisition runs out): the namespace goes when it ends.
    """
    path = os.path.join(directory, f"{label}-{uuid.uuid4().hex[:6]}")
    Path(path).touch()
    try:
        subprocess.run(["unshare", f"--net={path}", "true"], check=True, capture_output=True)
        try:
            if lo_up:
                subprocess.run(
                    ["nsenter", f"--net={path}", "ip", "link", "set", "lo", "up"],
                    check=True,
                    capture_output=True,
                )
            yield path
        finally:
            if subprocess.run(["umount", path], capture_output=True, check=False).returncode:
                subprocess.run(["umount", "--lazy", path], capture_output=True, check=False)
    finally:
        os.unlink(path)
