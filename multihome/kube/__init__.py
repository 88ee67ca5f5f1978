"""The lab's Kubernetes API: serves a running lab as a cluster on the host's loopback.

One process per lab (``python -m multihome.kube serve LABDIR``), started by ``up`` with the
lab's other processes (recorded in its journal, the lab's token in its environment, stopped
by ``down`` by recorded PID). It makes a CA, a server certificate for 127.0.0.1 and a bearer
token (``tls``), listens on a free port of 127.0.0.1, and writes ``LABDIR/kubeconfig``; it
reads the lab's ``status.json`` and ``plan.json`` on each request (``state``), so ``multihome
get`` and the API always agree. Objects are built in ``objects``, their resourceVersions and
changes in ``versions``, their server-side Tables in ``tables``, selectors in ``selectors``, the
HTTP side in ``server``, watches in ``watch``, the OpenAPI documents in ``openapi``, exec in
``execws``, logs in ``logs``; ``merge`` puts the lab into the user's kubeconfig on request.
"""

from __future__ import annotations

from pathlib import Path

KUBECONFIG_FILE = "kubeconfig"

__all__ = ["KUBECONFIG_FILE", "kubeconfig_path"]


def kubeconfig_path(name: str | None = None) -> Path:
    """The running lab's kubeconfig (``name``: default the one lab up); a ``LabError``
    (code 2) when the lab is not up or its API server has not written it."""
    from multihome.lab.api import LabError, resolve_name, running
    from multihome.lab.state import LabState, StateError

    state = LabState(resolve_name(name))
    path = state.dir / KUBECONFIG_FILE
    try:
        if not state.exists() or not running(state):
            raise LabError(f"lab {state.name!r} is not up (multihome up first)", code=2)
        if not state.has(path):
            raise LabError(
                f"lab {state.name!r} has no kubeconfig: its API server did not start (see "
                f"{state.dir / 'kube-apiserver.log'}; multihome down {state.name}, then up)",
                code=2,
            )
    except StateError as exc:
        raise LabError(str(exc), code=2) from exc
    return path
