"""The command line: parses arguments, calls the layers, prints. No logic of its own."""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from multihome.check import Finding, Severity, run_checks
from multihome.render import DesignInvalid, RenderError, Target, TokenSource, render_lab
from multihome.show import design_tables
from multihome.spec import LabFile, SpecError, load_lab

app = typer.Typer(
    name="multihome",
    help="Check, emulate, verify and render multi-homed Kubernetes network designs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class _State:
    debug = False


class Output(StrEnum):
    table = "table"
    json = "json"


LabArg = Annotated[
    Path | None,
    typer.Argument(help="The lab file. Omitted: the built-in seed design (rke2-multihomed)."),
]


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _State.debug = debug


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", markup=True, highlight=False)
    raise typer.Exit(code)


def _load(lab: Path | None) -> LabFile:
    try:
        return load_lab(lab)
    except SpecError as exc:
        if _State.debug:
            raise
        _fail(str(exc))


@app.command()
def validate(
    lab: LabArg = None,
    output: Annotated[Output, typer.Option("-o", "--output", help="table or json")] = Output.table,
    strict: Annotated[bool, typer.Option("--strict", help="Warnings fail too.")] = False,
) -> None:
    """Check a design before anything runs: the mistakes people hit on real clusters."""
    lab_file = _load(lab)
    findings = run_checks(lab_file)
    errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    warnings = len(findings) - errors
    failed = errors > 0 or (strict and warnings > 0)
    if output is Output.json:
        doc = {
            "lab": lab_file.lab.metadata.name,
            "file": str(lab_file.path),
            "ok": not failed,
            "errors": errors,
            "warnings": warnings,
            "findings": [f.to_json() for f in findings],
        }
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        _print_findings(lab_file, findings, errors, warnings, failed)
    raise typer.Exit(EXIT_FAILED if failed else EXIT_OK)


def _print_finding(f: Finding) -> None:
    """Compiler style: ``file:line:col: severity [id] message`` then the fix, indented."""
    colour = "red" if f.severity is Severity.ERROR else "yellow"
    where = f"{f.location}: " if f.location else ""
    out.print(
        f"{escape(where)}[bold {colour}]{f.severity}[/] [bold]\\[{f.id}][/] {escape(f.message)}"
    )
    out.print(f"    [dim]fix:[/] {escape(f.fix)}")


def _print_findings(
    lab_file: LabFile, findings: list[Finding], errors: int, warnings: int, failed: bool
) -> None:
    for f in findings:
        _print_finding(f)
    verdict = "[bold red]FAIL[/]" if failed else "[bold green]OK[/]"
    out.print(
        f"{verdict} {escape(lab_file.lab.metadata.name)} ({escape(str(lab_file.path))}): "
        f"{errors} error(s), {warnings} warning(s)"
    )


@app.command()
def show(lab: LabArg = None) -> None:
    """Summarize a design: networks, nodes and their NICs, hosts, NADs and pods."""
    lab_file = _load(lab)
    for table in design_tables(lab_file):
        out.print(table)


@app.command()
def render(
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory to write into.")],
    lab: LabArg = None,
    target: Annotated[Target, typer.Option("--target", help="rke2 or rancher")] = Target.rke2,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file", help="File with the RKE2 token (default: $MULTIHOME_RKE2_TOKEN)."
        ),
    ] = None,
) -> None:
    """Write the files a real RKE2 (or Rancher-provisioned) cluster needs for this design."""
    lab_file = _load(lab)
    try:
        result = render_lab(lab_file, output, target, force, TokenSource(token_file=token_file))
    except DesignInvalid as exc:
        findings = list(exc.findings)
        errors = sum(1 for f in findings if f.severity is Severity.ERROR)
        _print_findings(lab_file, findings, errors, len(findings) - errors, True)
        err.print("not rendered: fix the errors above first")
        raise typer.Exit(EXIT_FAILED) from None
    except RenderError as exc:
        if _State.debug:
            raise
        _fail(str(exc), exc.exit_code)
    for warning in result.warnings:
        _print_finding(warning)
    out.print(
        f"wrote {len(result.files)} files to {escape(str(result.out_dir))} "
        f"(target {result.target}; manifests validated against Kubernetes {result.schema_version})"
    )
    for note in result.notes:
        out.print(f"  {escape(note)}")


def main() -> None:
    """Console-script entry point: no traceback unless --debug."""
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # the last line of defence: one message, exit 2
        if "--debug" in sys.argv:
            raise
        err.print(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
