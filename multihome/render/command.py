"""``multihome render``: check the lab, plan it, render every file in memory, validate each,
then write them all (or none). Typer-free: the command line calls :func:`render_lab`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from multihome.check import Finding, Severity, run_checks
from multihome.plan import Plan, PlanError, build_plan
from multihome.render.errors import EXIT_FAILED, DesignInvalid, RenderError
from multihome.render.kube import SchemaVersion, schema_version
from multihome.render.targets import Target, render_files
from multihome.render.token import TOKEN_ENV, Token, TokenSource
from multihome.render.tree import RenderedFile, write_tree
from multihome.render.validate import validate_file
from multihome.spec import LabFile


class PlanFailed(RenderError):
    """The lab passed the checks but can't be planned (a fault the checks do not know)."""

    exit_code = EXIT_FAILED


@dataclass(frozen=True)
class Rendering:
    """The validated files of a lab, in memory, and what was learnt making them."""

    plan: Plan
    target: Target
    files: tuple[RenderedFile, ...]
    schema: SchemaVersion
    token: Token | None
    warnings: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class RenderResult:
    """What :func:`render_lab` did."""

    out_dir: Path
    target: Target
    files: tuple[Path, ...]
    """Every file written, sorted."""
    token_source: str | None
    """Where the token came from; None when none was given (placeholders were written)."""
    schema_version: str
    """The Kubernetes version whose schemas validated the manifests (``1.25``)."""
    notes: tuple[str, ...] = ()
    """Things the user should know, one sentence each."""
    warnings: tuple[Finding, ...] = field(default=())
    """The design's warnings (it had no errors, or nothing would be rendered)."""


def plan_lab(lab_file: LabFile) -> tuple[Plan, tuple[Finding, ...]]:
    """The lab's plan and its warnings; :class:`DesignInvalid` when ``validate`` finds
    errors, :class:`PlanFailed` when it can't be planned."""
    findings = run_checks(lab_file)
    if any(f.severity is Severity.ERROR for f in findings):
        raise DesignInvalid(findings)
    try:
        return build_plan(lab_file), tuple(findings)
    except PlanError as exc:
        raise PlanFailed(str(exc)) from None


def render_plan(
    plan: Plan, target: Target | str, token: Token | None, warnings: tuple[Finding, ...] = ()
) -> Rendering:
    """Every file of the target, rendered and validated (:class:`InvalidOutput`)."""
    target = Target(target)
    schema = schema_version(plan.cluster.version)
    files = render_files(plan, target, token)
    for rendered in files:
        validate_file(rendered, schema)
    return Rendering(plan, target, files, schema, token, warnings)


def render_in_memory(
    lab_file: LabFile, target: Target | str = Target.rke2, token: Token | None = None
) -> Rendering:
    """Check, plan, render and validate, writing nothing."""
    plan, warnings = plan_lab(lab_file)
    return render_plan(plan, target, token, warnings)


def _notes(rendering: Rendering, out_dir: Path) -> list[str]:
    notes = []
    if rendering.schema.note:
        notes.append(rendering.schema.note)
    token = rendering.token
    joining = [n for n in rendering.plan.nodes if not n.bootstrap]
    if rendering.target is Target.rancher:
        if token is not None:
            notes.append("the token is not used for --target rancher (Rancher registers nodes)")
    elif token is None and joining:
        notes.append(
            f"no token given (${TOKEN_ENV} or --token-file): the config.yaml of "
            f"{len(joining)} joining node(s) have a 'TOKEN NOT SET' placeholder; add the "
            "token there before starting RKE2 on them"
        )
    elif token is not None:
        notes.append(
            f"the token from {token.source} is in every node's config.yaml under {out_dir}: "
            "keep that directory private and out of version control"
        )
    if "canal" not in rendering.plan.cluster.cni:
        notes.append("the cluster does not run Canal: no rke2-canal values were rendered")
    return notes


def render_lab(
    lab_file: LabFile,
    out_dir: Path,
    target: Target | str = Target.rke2,
    force: bool = False,
    token_source: TokenSource | None = None,
) -> RenderResult:
    """Render ``lab_file`` into ``out_dir`` for ``target`` (``rke2`` or ``rancher``).

    Nothing is written unless every file renders and validates and (without ``force``) none
    of them exists yet. ``token_source`` defaults to ``$MULTIHOME_RKE2_TOKEN``. Raises a
    :class:`RenderError` (``exit_code`` 1: the design or a manifest is at fault, with
    ``DesignInvalid.findings``; 2: usage or environment).
    """
    plan, warnings = plan_lab(lab_file)
    token = (token_source or TokenSource()).read()
    rendering = render_plan(plan, target, token, warnings)
    written = write_tree(rendering.files, out_dir, force)
    return RenderResult(
        out_dir=out_dir,
        target=rendering.target,
        files=tuple(written),
        token_source=token.source if token else None,
        schema_version=rendering.schema.version,
        notes=tuple(_notes(rendering, out_dir)),
        warnings=rendering.warnings,
    )
