"""The command line: parses arguments, calls the layers, prints. No logic of its own.

Everything printed is literal text: the consoles have markup, emoji codes and highlighting
off, and the few styled words are ``rich.text.Text`` spans, so a ``[/x]`` or ``:100:`` from a
lab file, a plugin or the kernel arrives as written. Exit codes: 0 success, 1 the check or
action failed, 2 usage or environment error (the action could not be tried), 130 Ctrl-C.
"""

from __future__ import annotations

import json
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:  # the layers are imported where a command needs them: down, get and
    # exec start in a fraction of the time
    from multihome.check import Finding
    from multihome.spec import LabFile

app = typer.Typer(
    name="multihome",
    help="Check, emulate, verify and render multi-homed Kubernetes network designs.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console(markup=False, emoji=False, highlight=False, soft_wrap=True)
err = Console(stderr=True, markup=False, emoji=False, highlight=False, soft_wrap=True)

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _State:
    debug = False


class Output(StrEnum):
    table = "table"
    json = "json"


class RenderTarget(StrEnum):
    """``render --target`` (multihome.render.Target's values, without importing render)."""

    rke2 = "rke2"
    rancher = "rancher"


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
    err.print(Text.assemble(("error:", "bold red"), " ", message))
    raise typer.Exit(code)


def _load(lab: Path | None) -> LabFile:
    from multihome.spec import SpecError, load_lab

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
    from multihome.check import Severity, run_checks

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
    from multihome.check import Severity

    colour = "red" if f.severity is Severity.ERROR else "yellow"
    where = f"{f.location}: " if f.location else ""
    out.print(
        Text.assemble(
            where, (str(f.severity), f"bold {colour}"), " ", (f"[{f.id}]", "bold"), " ", f.message
        )
    )
    out.print(Text.assemble("    ", ("fix:", "dim"), " ", f.fix))


def _print_findings(
    lab_file: LabFile, findings: list[Finding], errors: int, warnings: int, failed: bool
) -> None:
    for f in findings:
        _print_finding(f)
    verdict = ("FAIL", "bold red") if failed else ("OK", "bold green")
    out.print(
        Text.assemble(
            verdict,
            f" {lab_file.lab.metadata.name} ({lab_file.path}): "
            f"{errors} error(s), {warnings} warning(s)",
        )
    )


@app.command()
def show(lab: LabArg = None) -> None:
    """Summarize a design: networks, nodes and their NICs, hosts, NADs and pods."""
    from multihome.show import design_tables

    lab_file = _load(lab)
    for table in design_tables(lab_file):
        out.print(table)


@app.command()
def render(
    output: Annotated[Path, typer.Option("-o", "--output", help="Directory to write into.")],
    lab: LabArg = None,
    target: Annotated[
        RenderTarget, typer.Option("--target", help="rke2 or rancher")
    ] = RenderTarget.rke2,
    force: Annotated[bool, typer.Option("--force", help="Overwrite files that exist.")] = False,
    token_file: Annotated[
        Path | None,
        typer.Option(
            "--token-file", help="File with the RKE2 token (default: $MULTIHOME_RKE2_TOKEN)."
        ),
    ] = None,
) -> None:
    """Write the files a real RKE2 (or Rancher-provisioned) cluster needs for this design."""
    from multihome.check import Severity
    from multihome.render import DesignInvalid, RenderError, Target, TokenSource, render_lab

    lab_file = _load(lab)
    try:
        result = render_lab(
            lab_file, output, Target(target.value), force, TokenSource(token_file=token_file)
        )
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
        f"wrote {len(result.files)} files to {result.out_dir} "
        f"(target {result.target}; manifests validated against Kubernetes {result.schema_version})"
    )
    for note in result.notes:
        out.print(f"  {note}")


# -- the lab: up, down, get, exec -----------------------------------------------------------


class GetOutput(StrEnum):
    table = "table"
    wide = "wide"
    json = "json"


class Kind(StrEnum):
    nodes = "nodes"
    pods = "pods"
    networks = "networks"
    hosts = "hosts"
    pools = "pools"


NameArg = Annotated[str | None, typer.Argument(help="The lab's name (default: the one lab up).")]


def _exit_code(exc: Exception, tried: int) -> int:
    """A lab command's exit code for ``exc``: 2 when the action could not be tried (no such
    lab, lab busy, state dir unusable, an invalid name; ``LabError`` carries its own), else
    ``tried`` (1 where the action itself failed)."""
    from multihome.lab.api import LabError
    from multihome.lab.names import InvalidName
    from multihome.lab.state import LabLocked, StateError

    if isinstance(exc, LabError):
        return exc.code
    if isinstance(exc, LabLocked | StateError | InvalidName):
        return EXIT_USAGE
    if isinstance(exc, PermissionError | NotADirectoryError):  # the state dir, as a rule
        return EXIT_USAGE
    return tried


def _lab_error(exc: Exception, tried: int = EXIT_FAILED) -> NoReturn:
    if _State.debug:
        raise exc
    _fail(str(exc), _exit_code(exc, tried))


@app.command()
def up(
    lab: LabArg = None,
    run_verify: Annotated[
        bool, typer.Option("--verify", help="Run multihome verify once the lab is up.")
    ] = False,
    keep_going: Annotated[
        bool,
        typer.Option(
            "--keep-going",
            help="A pod whose attachment fails stays ContainerCreating (as on a real cluster) "
            "instead of failing up.",
        ),
    ] = False,
) -> None:
    """Build the lab on this machine: segments, nodes, DHCP, hosts, pods (real kernel
    networking, real CNI plugins)."""
    from multihome.display import BuildDisplay
    from multihome.lab import api
    from multihome.plan import PlanError

    lab_file = _load(lab)
    _design_gate(api, lab_file)
    try:
        with BuildDisplay(err) as display:
            status = api.up(lab_file, progress=display, keep_going=keep_going)
    except api.LabRunning as exc:
        out.print(str(exc))
        if run_verify:
            _verify_after_up(lab_file.lab.metadata.name)
        raise typer.Exit(EXIT_OK) from None
    except (api.LabError, PlanError, OSError, RuntimeError, ValueError) as exc:
        _lab_error(exc)
    _print_nodes(status, wide=False)
    out.print()
    _print_pods(status, wide=True)
    stuck = [p for p in status["pods"] if p.get("phase", "Running") != "Running"]
    for pod in stuck:
        out.print(
            Text.assemble(
                (f"{pod['namespace']}/{pod['name']}", "yellow"),
                f" is {pod['phase']}: {pod['error']}",
            )
        )
    example = next((p for p in status["pods"] if p.get("phase") == "Running"), None)
    look = (
        f"multihome exec {example['namespace']}/{example['name']} -- ip addr; " if example else ""
    )
    done = (
        f"was up: applied the change ({status['reconciled']})" if status.get("reconciled") else "up"
    )
    out.print(
        Text.assemble(
            "\nlab ",
            (status["name"], "bold"),
            f" {done} in {status['elapsed']:.2f} s. "
            f"Look inside: multihome get pods -o wide; {look}multihome verify. "
            f"Take it down: multihome down {status['name']}",
        )
    )
    if run_verify:
        _verify_after_up(status["name"])
    if stuck:
        raise typer.Exit(EXIT_FAILED)


def _design_gate(api: Any, lab_file: LabFile) -> None:
    """Before ``up`` builds: validate's findings. What a real cluster would refuse stops it
    (exit 1, nothing built); the mistakes a real cluster runs with are printed and built."""
    from multihome.check import Severity

    try:
        findings = api.check_design(lab_file)
    except api.DesignRefused as exc:
        findings = list(exc.findings)
        errors = sum(1 for f in findings if f.severity is Severity.ERROR)
        _print_findings(lab_file, findings, errors, len(findings) - errors, True)
        from multihome.check.findings import refusal_reason

        err.print(f"not built: {refusal_reason(findings)}; see the findings above")
        raise typer.Exit(EXIT_FAILED) from None
    for finding in findings:
        _print_finding(finding)
    if findings:
        err.print("building anyway: verify will show what they do")


def _verify_after_up(name: str) -> NoReturn:
    """``up --verify``: verify the lab; exit with verify's code."""
    from multihome import verify as verifier

    out.print()
    try:
        report = verifier.run(name)
    except verifier.VerifyError as exc:
        _fail(str(exc), exc.code)
    print_verify_report(report)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


@app.command()
def down(name: NameArg = None) -> None:
    """Remove everything the lab made (idempotent; works after a crashed up)."""
    from multihome.lab import api

    try:
        removed = api.down(name)
    except (api.LabError, OSError, RuntimeError, ValueError) as exc:
        _lab_error(exc)
    out.print(f"removed lab {', '.join(removed)}" if removed else "no lab to remove")


def _age(created: float) -> str:
    import time

    seconds = int(time.time() - created)
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h"


def _table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    for row in [header, *rows]:
        out.print("   ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=False)).rstrip())


def _print_nodes(status: dict[str, Any], wide: bool) -> None:
    ready = "Ready" if status.get("running", True) else "NotReady"
    header = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    if wide:
        header += ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
    rows = []
    for n in status["nodes"]:
        row = [n["name"], ready, n["roles"], _age(status["created"]), n["version"]]
        if wide:
            row += [
                n["internal_ip"],
                n["external_ip"] or "<none>",
                n["os_image"],
                n["kernel"],
                n["container_runtime"],
            ]
        rows.append(row)
    _table(header, rows)


def _serves(serves: dict[str, Any] | None) -> str:
    """``http:80,tcp:5000,udp:5001`` from a host's or pod's ``serves``."""
    if not serves:
        return "-"
    return ",".join(f"{proto}:{port}" for proto in ("http", "tcp", "udp") for port in serves[proto])


def _print_pods(status: dict[str, Any], wide: bool) -> None:
    header = ["NAMESPACE", "NAME", "STATUS", "AGE"]
    if wide:
        header += ["IP", "NODE", "NETWORKS"]
    rows = []
    for p in status["pods"]:
        entries = p["network_status"]
        row = [p["namespace"], p["name"], p.get("phase", "Running"), _age(status["created"])]
        if wide:
            eth0: dict[str, Any] = next((e for e in entries if e.get("default")), {})
            extra = ",".join(
                f"{e['interface']}={'/'.join(e.get('ips', [])) or '-'}"
                for e in entries
                if not e.get("default")
            )
            row += [",".join(eth0.get("ips", [])) or "<none>", p["node"], extra or "<none>"]
        rows.append(row)
    for ref in status.get("pending", []):
        ns, _, pod = ref.partition("/")
        rows.append([ns, pod, "Pending", "-"] + (["<none>", "<none>", "<none>"] if wide else []))
    _table(header, rows)


def _print_pools(pools: list[dict[str, Any]], wide: bool) -> None:
    """whereabouts' pools: one row per address held (a pool holding none: one row)."""
    header = ["POOL", "RANGE", "IP", "POD", "NODE", "IFNAME"] + (["CONTAINER-ID"] if wide else [])
    rows = []
    for pool in pools:
        for a in pool["allocations"] or [{}]:
            row = [pool["name"], pool["range"], a.get("ip", "-"), a.get("podref", "<none>")]
            row += [a.get("node", "-"), a.get("ifName", "-")]
            rows.append(row + ([a.get("id", "-")] if wide else []))
    _table(header, rows)


@app.command()
def get(
    kind: Annotated[Kind, typer.Argument(help="nodes, pods, networks, hosts or pools")],
    output: Annotated[
        GetOutput, typer.Option("-o", "--output", help="table, wide or json")
    ] = GetOutput.table,
    name: Annotated[
        str | None, typer.Option("--lab", help="The lab (default: the one up).")
    ] = None,
) -> None:
    """Show the running lab's nodes, pods, networks, hosts or whereabouts pools (who holds
    each address), as kubectl get does."""
    from multihome.lab import api
    from multihome.multus import NETWORK_STATUS_ANNOTATION

    try:
        status = api.status(name)
    except (api.LabError, OSError, RuntimeError, ValueError) as exc:
        _lab_error(exc, tried=EXIT_USAGE)  # reading the lab's state is all get does
    if kind is Kind.pools:  # whereabouts' IPPools, read from the lab's store
        from multihome.lab import ipam

        try:
            status = dict(status, pools=ipam.lab_pools(status) if status["running"] else [])
        except (OSError, RuntimeError, ValueError) as exc:
            _lab_error(exc, tried=EXIT_USAGE)
    if output is GetOutput.json:
        items = list(status[kind.value])
        if kind is Kind.pods:
            items = [
                dict(p, annotations={NETWORK_STATUS_ANNOTATION: json.dumps(p["network_status"])})
                for p in items
            ]
        sys.stdout.write(json.dumps({"kind": kind.value, "items": items}, indent=2) + "\n")
        return
    wide = output is GetOutput.wide
    if kind is Kind.nodes:
        _print_nodes(status, wide)
    elif kind is Kind.pods:
        _print_pods(status, wide)
    elif kind is Kind.pools:
        _print_pools(status["pools"], wide)
    elif kind is Kind.networks:
        _table(
            ["NAME", "VLAN", "SUBNET", "BRIDGE", "DHCP", "ATTACHMENTS"],
            [
                [
                    n["name"],
                    str(n["vlan"] or "-"),
                    n["subnet"],
                    n["bridge"],
                    n["dhcp"]["range"] if n["dhcp"] else "-",
                    ",".join(n["attachments"]) if wide else str(len(n["attachments"])),
                ]
                for n in status["networks"]
            ],
        )
    else:
        _table(
            ["NAME", "NICS", "SERVES"],
            [
                [
                    h["name"],
                    ",".join(f"{c['name']}={c['address'] or '-'}" for c in h["nics"]),
                    _serves(h.get("serves")),
                ]
                for h in status["hosts"]
            ],
        )


@app.command(
    "exec",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
)
def exec_(
    ctx: typer.Context,
    target: Annotated[str, typer.Argument(help="NAMESPACE/POD, a node or a host")],
    name: Annotated[
        str | None, typer.Option("--lab", help="The lab (default: the one up).")
    ] = None,
) -> None:
    """Run a command inside a pod, node or host: multihome exec TARGET -- COMMAND..."""
    from multihome.lab import api

    argv = [a for a in ctx.args]
    if argv and argv[0] == "--":
        argv = argv[1:]
    try:
        code = api.run(target, argv, name)
    except (api.LabError, OSError, RuntimeError, ValueError) as exc:
        _lab_error(exc, tried=EXIT_USAGE)  # the command's own failure is its exit code
    raise typer.Exit(code)


@app.command()
def kubeconfig(name: NameArg = None) -> None:
    """Print the path of the running lab's kubeconfig (its Kubernetes API on 127.0.0.1):
    kubectl --kubeconfig "$(multihome kubeconfig)" get pods -A -o wide"""
    from multihome.kube import kubeconfig_path
    from multihome.lab import api

    try:
        path = kubeconfig_path(name)
    except (api.LabError, OSError, RuntimeError, ValueError) as exc:
        _lab_error(exc, tried=EXIT_USAGE)
    sys.stdout.write(f"{path}\n")


# -- verify ---------------------------------------------------------------------------------


def print_verify_report(report: Any, output: Output = Output.table) -> None:
    """Print a ``multihome.verify.Report``: the table and a verdict line, or JSON."""
    if output is Output.json:
        sys.stdout.write(report.json_text())
        return
    out.print(report.table())
    colour = "bold green" if report.ok else "bold red"
    verdict, _, rest = report.summary().partition(" ")
    out.print(Text.assemble((verdict, colour), " ", rest))


@app.command()
def verify(
    name: NameArg = None,
    output: Annotated[Output, typer.Option("-o", "--output", help="table or json")] = Output.table,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write the results as JUnit XML here.")
    ] = None,
) -> None:
    """Prove the running lab behaves as designed: interfaces and addresses, default routes,
    reachability and isolation, which VLAN the traffic crosses, and the lab's expect entries.
    Exit 0: all pass; 1: a check failed; 2: verify could not run (no lab up)."""
    from multihome import verify as verifier

    try:
        report = verifier.run(name)
    except verifier.VerifyError as exc:
        if _State.debug:
            raise
        _fail(str(exc), exc.code)
    if junit is not None:
        try:
            junit.write_text(report.junit(), encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot write {junit}: {exc.strerror or exc}")
    print_verify_report(report, output)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


def main() -> None:
    """Run the command line: no traceback unless --debug; Ctrl-C exits 130 silently
    (``multihome.__main__`` also covers the imports before this)."""
    try:
        app()
    except SystemExit:
        raise
    except KeyboardInterrupt:
        sys.exit(EXIT_INTERRUPTED)
    except Exception as exc:  # the last line of defence: one message, exit 2
        if "--debug" in sys.argv:
            raise
        err.print(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)")
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    main()
