"""The running lab's design: the lab file it runs, kept in its directory (``design.yaml``),
and applying a changed design to the running lab.

``up`` writes the design it built (the Lab document, its ``resources`` inlined, then every
manifest) and so does a reconcile of a changed file; the lab's API changes the manifests in
it (a ``kubectl create`` is a new document) and applies it with :func:`apply`, which is
``up`` of the running lab: the same validate gate, plan and reconcile a changed lab file
goes through (``bringup``), one at a time (the lab's lock), and never a new lab;
:func:`problems` says beforehand what would stop a changed design (the API's 422).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import yaml

from .api import LabError, LabRunning
from .state import LabState

if TYPE_CHECKING:
    from multihome.spec import LabFile
    from multihome.spec.errors import Location

DESIGN_FILE = "design.yaml"


def documents(lab_file: LabFile) -> list[dict[str, Any]]:
    """The Lab document (``resources`` inlined: dropped) and every manifest, in order."""
    lab_doc = dict(lab_file.document.value)
    spec = dict(lab_doc.get("spec") or {})
    spec.pop("resources", None)
    lab_doc["spec"] = spec
    return [lab_doc, *(m.body for m in lab_file.manifests)]


# libyaml's emitter where PyYAML has it: the pure-Python one takes ~2.5 ms a pod at scale
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def dump(docs: list[dict[str, Any]]) -> str:
    return yaml.dump_all(docs, Dumper=_DUMPER, sort_keys=False, default_flow_style=False)


def write(state: LabState, lab_file: LabFile) -> None:
    """Record ``lab_file`` as the lab's design (not when it was read from it: the API may
    have changed it meanwhile, and its change waits for the next reconcile)."""
    if lab_file.path == state.dir / DESIGN_FILE:
        return
    write_text(state, dump(documents(lab_file)))


def write_text(state: LabState, text: str) -> None:
    state.write_atomic(state.dir / DESIGN_FILE, text)


def read(state: LabState) -> list[dict[str, Any]]:
    """The lab's design as documents (the Lab first); ``LabError`` (code 2) for a lab that
    was brought up without one (by an older multihome)."""
    path = state.dir / DESIGN_FILE
    if not state.has(path):
        raise LabError(f"lab {state.name!r} has no recorded design (down and up it again)", code=2)
    return [d for d in yaml.safe_load_all(state.read_text(path)) if d is not None]


def load(text: str, filename: str = DESIGN_FILE) -> LabFile:
    """A design's text as a ``LabFile`` (``SpecError`` when it does not load)."""
    from multihome.spec import load_lab_text

    return load_lab_text(text, filename)


def problems(state: LabState, text: str, filename: str) -> list[tuple[Location | None, str]]:
    """What stops ``text`` from becoming the running lab's design, each with where: it does
    not load, validate finds what a real cluster would refuse, it can't be planned, or it
    changes what a running lab can't take (its machines and wires). Empty: it can be
    applied (``apply``) as a changed lab file would be."""
    from multihome.check import Kind
    from multihome.plan import PlanError, build_plan
    from multihome.spec import SpecError

    from . import reconcile
    from .api import DesignRefused, check_design, load_plan, status_path

    try:
        lab_file = load(text, filename)
    except SpecError as exc:
        return [(e.location, e.message) for e in (exc, *exc.more)]
    try:
        check_design(lab_file)
    except DesignRefused as exc:
        return [(f.location, f.message) for f in exc.findings if f.kind is Kind.REFUSED]
    running = json.loads(state.read_text(status_path(state)))["pods"]
    placed = {f"{p['namespace']}/{p['name']}": p["node"] for p in running}
    try:
        plan = build_plan(lab_file, placed)
    except PlanError as exc:
        return [(None, str(exc))]
    changed = reconcile.infrastructure_changes(load_plan(state.name), plan)
    if changed:
        what = ", ".join(changed)
        return [(None, f"the change would touch the lab's {what}, which a running lab can't take")]
    return []


def apply(state: LabState) -> dict[str, Any]:
    """Bring the running lab to its recorded design: ``up`` of the running lab (validate's
    gate, plan, reconcile of the pods); a lab that is not up (any more) is a ``LabError``.
    A pod whose attachment fails stays ContainerCreating with its error, as on a real
    cluster (the next changes still apply). Returns the lab's status; a design that
    changes nothing that runs is not an error."""
    from . import api, bringup

    lab_file = load(state.read_text(state.dir / DESIGN_FILE), str(state.dir / DESIGN_FILE))
    api.check_design(lab_file)
    try:
        return bringup.reconcile_running(lab_file, keep_going=True)
    except LabRunning:
        return api.status(state.name)
