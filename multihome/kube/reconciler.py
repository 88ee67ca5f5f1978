"""``python -m multihome.kube.reconciler [--warm] LABDIR``: bring the running lab to its
recorded design (``lab.design.apply``: ``up`` of the running lab, the reconcile a changed lab
file gets). The
API server runs it after a write, one at a time, in a process of its own (the reconcile forks
into the lab's sandbox, which a threaded asyncio server should not do); ``--warm``: import
first, then wait for ``go`` on stdin (the server keeps one ready). Exit 0 done, 75 the
lab was locked by another ``up`` (try again), 1 the reconcile failed (its message on stderr)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

LOCKED = 75


def main(argv: list[str]) -> int:
    warm = argv[:1] == ["--warm"]
    argv = argv[1:] if warm else argv
    if len(argv) != 1:
        sys.stderr.write("usage: python -m multihome.kube.reconciler [--warm] LABDIR\n")
        return 2
    lab_dir = Path(argv[0]).absolute()
    import multihome.check
    import multihome.lab.bringup
    import multihome.plan  # noqa: F401  (imported ahead: a warm reconcile starts at once)
    from multihome.lab import design
    from multihome.lab.api import LabError
    from multihome.lab.state import ENV_STATE_DIR, LabLocked, LabState

    if warm and sys.stdin.readline().strip() != "go":
        return 0  # the server went away before it needed this one

    os.environ[ENV_STATE_DIR] = str(lab_dir.parent)
    state = LabState(lab_dir.name, root=lab_dir.parent)
    try:
        design.apply(state)
    except LabError as exc:
        if isinstance(exc.__cause__, LabLocked):
            return LOCKED
        sys.stderr.write(f"{exc}\n")
        return 1
    except Exception as exc:  # the server reports it on the objects; no traceback there
        sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
