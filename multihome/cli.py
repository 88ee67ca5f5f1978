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
    from multihome.lab import apiserver
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
    from multihome.show import design_tables, plain_table

    lab_file = _load(lab)
    for i, table in enumerate(design_tables(lab_file)):
        if out.is_terminal:
            out.print(table)
        else:  # a log or CI: plain columns at their natural width, nothing split mid-token
            sys.stdout.write(("\n" if i else "") + plain_table(table))


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
    import gc

    gc.disable()  # until the plan is made: bringup.up turns it on before it builds
    from multihome.lab import apiserver

    early = apiserver.prestart()  # first: it starts up on the core this start-up leaves idle
    try:
        status = _build(lab, keep_going, run_verify, early)
    finally:
        if early is not None:
            early.release()  # unless up adopted it
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


def _build(
    lab: Path | None, keep_going: bool, run_verify: bool, early: apiserver.Early | None
) -> dict[str, Any]:
    """``up``'s load, gate and build; its status."""
    from multihome.display import BuildDisplay
    from multihome.lab import api
    from multihome.plan import PlanError

    lab_file = _load(lab)
    _design_gate(api, lab_file)
    try:
        with BuildDisplay(err) as display:
            return api.up(
                lab_file, progress=display, keep_going=keep_going, checked=True, early=early
            )
    except api.LabRunning as exc:
        out.print(str(exc))
        if run_verify:
            _verify_after_up(lab_file.lab.metadata.name)
        raise typer.Exit(EXIT_OK) from None
    except (api.LabError, PlanError, OSError, RuntimeError, ValueError) as exc:
        _lab_error(exc)


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

    _unmerge_kubeconfigs(name)
    try:
        removed = api.down(name)
    except (api.LabError, OSError, RuntimeError, ValueError) as exc:
        _lab_error(exc)
    out.print(f"removed lab {', '.join(removed)}" if removed else "no lab to remove")


def _unmerge_kubeconfigs(name: str | None) -> None:
    """Before down removes the lab's directory (the record is there): take out of the user's
    kubeconfig what ``kubeconfig --merge`` put in."""
    from multihome.kube.merge import MergeError, unmerge
    from multihome.lab.state import LabState, StateError, list_labs

    try:
        names = [name] if name else list_labs()
    except (StateError, OSError):
        return  # down says what is wrong with the state
    for lab in names:
        try:
            state = LabState(lab)
        except (StateError, ValueError):
            return  # not a lab's name: down says so
        try:
            paths = unmerge(state)
        except (MergeError, StateError, OSError) as exc:
            out.print(f"kubeconfig: left as it is ({exc})")
            continue
        for path in paths:
            out.print(f"removed context multihome-{lab} from {path}")


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


def _version_unset() -> str:
    """The version a lab that names none stands for: the newest Kubernetes whose schemas
    ``render`` validates against (as render says), kubectl's ``v1.N``."""
    from multihome.render.kube import schema_version

    return f"v{schema_version(None).version}"


def _trunk_note(status: dict[str, Any]) -> str | None:
    """How the lab builds its trunk NICs (``802.1q``, ``emulated: no 802.1q``); None: none."""
    trunks = status.get("trunks") or {}
    if not trunks.get("mode"):
        return None
    why = trunks.get("why")
    return f"{trunks['mode']}: {why}" if why else str(trunks["mode"])


def _trunks_of(nics: list[dict[str, Any]], note: str) -> str:
    """``ens224[ens224.50=50,ens224.60=60] (emulated: no 802.1q)``; ``-`` without trunks."""
    by_parent: dict[str, list[str]] = {}
    for nic in nics:
        if nic.get("parent"):
            by_parent.setdefault(nic["parent"], []).append(f"{nic['name']}={nic['vlan']}")
    if not by_parent:
        return "-"
    said = " ".join(f"{p}[{','.join(subs)}]" for p, subs in by_parent.items())
    return f"{said} ({note})"


def _print_nodes(status: dict[str, Any], wide: bool) -> None:
    ready = "Ready" if status.get("running", True) else "NotReady"
    header = ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    note = _trunk_note(status)
    if wide:
        header += ["INTERNAL-IP", "EXTERNAL-IP", "OS-IMAGE", "KERNEL-VERSION", "CONTAINER-RUNTIME"]
        header += ["TRUNKS"] if note else []
    rows = []
    for n in status["nodes"]:
        version = n["version"] or _version_unset()
        row = [n["name"], ready, n["roles"], _age(status["created"]), version]
        if wide:
            row += [
                n["internal_ip"],
                n["external_ip"] or "<none>",
                n["os_image"],
                n["kernel"],
                n["container_runtime"],
            ]
            row += [_trunks_of(n.get("nics", []), note)] if note else []
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
    _get_table(kind, status, wide)
    _print_faults(status["name"])


def _print_faults(name: str) -> None:
    """The lab's active faults, one line under get's table (multihome fault list)."""
    from multihome.lab import faults

    found = faults.active(name)
    if found:
        said = "; ".join(f"{f.label}: {f.text()}" for f in found)
        out.print(Text.assemble(("\nFAULTS", "bold yellow"), f" {said} (multihome fault clear)"))


def _get_table(kind: Kind, status: dict[str, Any], wide: bool) -> None:
    if kind is Kind.nodes:
        _print_nodes(status, wide)
    elif kind is Kind.pods:
        _print_pods(status, wide)
    elif kind is Kind.pools:
        _print_pools(status["pools"], wide)
    elif kind is Kind.networks:
        note = _trunk_note(status)
        tagged: dict[str, int] = {}
        for node in status["nodes"]:
            for nic in node.get("nics", []):
                if nic.get("parent"):
                    tagged[nic["network"]] = tagged.get(nic["network"], 0) + 1
        _table(
            ["NAME", "VLAN", "SUBNET", "BRIDGE", "DHCP", "ATTACHMENTS"]
            + (["TAGGED"] if note else []),
            [
                [
                    n["name"],
                    str(n["vlan"] or "-"),
                    n["subnet"],
                    n["bridge"],
                    n["dhcp"]["range"] if n["dhcp"] else "-",
                    ",".join(n["attachments"]) if wide else str(len(n["attachments"])),
                ]
                + (
                    [f"{tagged[n['name']]} ({note})" if n["name"] in tagged else "-"]
                    if note
                    else []
                )
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


# -- fault ----------------------------------------------------------------------------------

FAULT_USAGE = (
    "multihome fault [NAME] VERB TARGET: cut|mend NETWORK, link-down|link-up NODE:NIC, "
    "stop-dhcp|start-dhcp NETWORK, stop|start NODE, rate NODE:NIC RATE|off, list, clear"
)


@app.command(context_settings={"ignore_unknown_options": True})
def fault(
    words: Annotated[
        list[str] | None,
        typer.Argument(
            help="[NAME] VERB TARGET: cut|mend NETWORK, link-down|link-up NODE:NIC, "
            "stop-dhcp|start-dhcp NETWORK, stop|start NODE, rate NODE:NIC RATE (off: remove), "
            "list, clear. NAME: the lab (default: the one lab up)."
        ),
    ] = None,
    output: Annotated[Output, typer.Option("-o", "--output", help="table or json")] = Output.table,
) -> None:
    """Break the running lab on purpose (recorded; undone by the inverse verb, fault clear
    or down) and list the faults."""
    from multihome.lab import faults

    args = list(words or [])
    name = args.pop(0) if args and args[0] not in faults.VERBS else None
    if not args or args[0] not in faults.VERBS:
        _fail(f"no fault verb in {' '.join(words or [])!r}: {FAULT_USAGE}")
    verb, rest = args[0], args[1:]
    wanted = {"list": 0, "clear": 0, "rate": 2}.get(verb, 1)
    if len(rest) != wanted:
        _fail(f"{verb} takes {wanted} argument(s), got {len(rest)}: {FAULT_USAGE}")
    try:
        if verb == "list":
            if name is not None:
                from multihome.lab import api

                api.status(name)  # a lab that is not there says so
            found = faults.active(name)
            if output is Output.json:
                sys.stdout.write(json.dumps([f.to_dict() for f in found], indent=2) + "\n")
            elif found:
                _table(
                    ["FAULT", "VERB", "TARGET", "EFFECT"],
                    [[str(f.number), f.verb, f.target + (f" {f.rate}" if f.rate else ""),
                      f.text()] for f in found],
                )  # fmt: skip
            else:
                out.print("no faults")
            return
        if verb == "clear":
            undone = faults.clear(name)
            out.print(
                "cleared " + "; ".join(f"{f.label}: {f.command()}" for f in undone)
                if undone
                else "no faults to clear"
            )
            return
        if verb in faults.UNDO:
            done = faults.undo(name, verb, rest[0])
            out.print(f"{verb} {rest[0]}: undid {done.label} ({done.command()})")
            return
        made = faults.apply(name, verb, rest[0], rest[1] if verb == "rate" else None)
    except faults.FaultError as exc:
        if _State.debug:
            raise
        _fail(str(exc), exc.code)
    except (OSError, RuntimeError, ValueError) as exc:
        _lab_error(exc)
    if verb == "rate" and rest[1].lower() == "off":
        out.print(f"{rest[0]} is no longer shaped (undid {made.label})")
    else:
        out.print(f"{made.label}: {made.text()}")


@app.command()
def kubeconfig(
    name: NameArg = None,
    merge: Annotated[
        bool,
        typer.Option(
            "--merge",
            help="Add the lab as a context (multihome-NAME) to your kubeconfig ($KUBECONFIG's "
            "first file, else ~/.kube/config); down takes it out again.",
        ),
    ] = False,
) -> None:
    """Print the path of the running lab's kubeconfig (its Kubernetes API on 127.0.0.1):
    kubectl --kubeconfig "$(multihome kubeconfig)" get pods -A -o wide"""
    from multihome.kube import kubeconfig_path
    from multihome.kube.merge import MergeError
    from multihome.kube.merge import merge as merge_into
    from multihome.lab import api
    from multihome.lab.state import LabState

    try:
        path = kubeconfig_path(name)
        if merge:
            merged, context = merge_into(LabState(path.parent.name, root=path.parent.parent))
    except (api.LabError, MergeError, OSError, RuntimeError, ValueError) as exc:
        _lab_error(exc, tried=EXIT_USAGE)
    if merge:
        out.print(f"added context {context} to {merged}: kubectl --context {context} get pods -A")
        return
    sys.stdout.write(f"{path}\n")


# -- verify ---------------------------------------------------------------------------------


def print_verify_report(report: Any, output: Output = Output.table) -> None:
    """Print a ``multihome.verify.Report``: the table and a verdict line, or JSON."""
    if output is Output.json:
        sys.stdout.write(report.json_text())
        return
    if out.is_terminal:
        out.print(report.table())
    else:  # a log or CI: plain columns, evidence lines whole
        sys.stdout.write(report.plain())
    colour = "bold green" if report.ok else "bold red"
    verdict, _, rest = report.summary().partition(" ")
    out.print(Text.assemble((verdict, colour), " ", rest))


def _write_html(report: Any, name: str | None, target: Path) -> None:
    """verify's report as one HTML file (the picture with the failures drawn on it)."""
    from multihome.graph import GraphError
    from multihome.graph.html import report_html
    from multihome.lab import api

    try:
        document = report_html(report, api.load_plan(name), api.status(name))
    except (api.LabError, GraphError) as exc:
        _fail(f"cannot write the HTML report: {exc}")
    try:
        target.write_text(document, encoding="utf-8")
    except OSError as exc:
        _fail(f"cannot write {target}: {exc.strerror or exc}")


@app.command()
def verify(
    name: NameArg = None,
    output: Annotated[Output, typer.Option("-o", "--output", help="table or json")] = Output.table,
    junit: Annotated[
        Path | None, typer.Option("--junit", help="Also write the results as JUnit XML here.")
    ] = None,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            help="Also write a self-contained HTML report here (the picture, every check).",
        ),
    ] = None,
    scenario: Annotated[
        list[str] | None,
        typer.Option(
            "--scenario",
            help="Verify this scenario of the lab file (its faults applied, then undone); "
            "may be repeated.",
        ),
    ] = None,
    all_scenarios: Annotated[
        bool, typer.Option("--all-scenarios", help="Verify every scenario of the lab file.")
    ] = False,
    kubeconfig: Annotated[
        Path | None,
        typer.Option(
            "--kubeconfig",
            help="Verify a real cluster through its API instead: NAME is then the lab file "
            "that says what should be (default: the built-in seed design).",
        ),
    ] = None,
    context: Annotated[
        str | None, typer.Option("--context", help="The kubeconfig's context to use.")
    ] = None,
    no_exec: Annotated[
        bool,
        typer.Option("--no-exec", help="With --kubeconfig: read the API only, no exec in pods."),
    ] = False,
    probes: Annotated[
        bool,
        typer.Option(
            "--probes",
            help="With --kubeconfig: also run probe pods in a throwaway namespace (the nodes' "
            "NICs and byte counters, reach and isolation over each NAD); deleted after.",
        ),
    ] = False,
    probe_image: Annotated[
        str | None,
        typer.Option(
            "--probe-image",
            help="With --probes: the probe pods' image (sh, cat, ip, ping). Default: the "
            "calico-node image rke2-canal runs, which every node already has.",
        ),
    ] = None,
) -> None:
    """Prove the running lab behaves as designed: interfaces and addresses, default routes,
    reachability and isolation, which VLAN the traffic crosses, and the lab's expect entries.
    With --kubeconfig, the same checks judge a real cluster read through its API.
    Exit 0: all pass; 1: a check failed; 2: verify could not run (no lab up)."""
    from multihome import verify as verifier

    if kubeconfig is not None:
        if html is not None or scenario or all_scenarios:
            _fail("--html and --scenario verify a running lab, not --kubeconfig's cluster")
        if probe_image is not None and not probes:
            _fail("--probe-image goes with --probes")
        report = _verify_cluster(name, kubeconfig, context, not no_exec, probes, probe_image)
    else:
        if context is not None or no_exec or probes or probe_image is not None:
            _fail("--context, --no-exec, --probes and --probe-image go with --kubeconfig")
        if scenario or all_scenarios:
            _verify_scenarios(name, None if all_scenarios else scenario, output, junit)
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
    if html is not None:
        _write_html(report, name, html)
    print_verify_report(report, output)
    raise typer.Exit(EXIT_OK if report.ok else EXIT_FAILED)


def _verify_cluster(
    target: str | None,
    kubeconfig: Path,
    context: str | None,
    exec_: bool,
    probes: bool = False,
    probe_image: str | None = None,
) -> Any:
    """``verify --kubeconfig``: the design (a lab file, a running lab's name, or the seed)
    against the cluster's API."""
    from multihome.cluster import ClusterError
    from multihome.verify import live

    plan, _ = _design_or_lab(target) if target is not None else _design_or_lab_file(None)
    try:
        return live.run(
            plan, str(kubeconfig), context, exec_=exec_, probes=probes, probe_image=probe_image
        )
    except ClusterError as exc:
        if _State.debug:
            raise
        _fail(str(exc), exc.code)


@app.command()
def apply(
    lab: LabArg = None,
    kubeconfig: Annotated[
        Path, typer.Option("--kubeconfig", help="The cluster's kubeconfig.")
    ] = ...,  # type: ignore[assignment]
    context: Annotated[
        str | None, typer.Option("--context", help="The kubeconfig's context to use.")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Server-side dry run: show each object's diff only."),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Apply changes that disrupt the cluster (Canal's NIC, Longhorn's storage "
            "network with volumes attached) and take over fields other managers own.",
        ),
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds to wait for the design's pods.")
    ] = 300.0,
) -> None:
    """Server-side apply (field manager multihome) of the design's API objects to a cluster:
    namespaces, NADs, the HelmChartConfigs, Longhorn's settings, node daemons (the CNI dhcp
    daemon), then the workloads; wait for them, then verify (read-only tier). Exit 0: applied
    and verified; 1: refused, failed or a check failed; 2: the cluster can't be read or lacks
    a kind the design needs."""
    from multihome.check import Severity
    from multihome.cluster import ClusterError
    from multihome.cluster import apply as applier
    from multihome.render import DesignInvalid, RenderError, render_in_memory
    from multihome.render.apiset import api_objects, off_api
    from multihome.verify import live

    lab_file = _load(lab)
    try:
        rendering = render_in_memory(lab_file)
    except DesignInvalid as exc:
        findings = list(exc.findings)
        errors = sum(1 for f in findings if f.severity is Severity.ERROR)
        _print_findings(lab_file, findings, errors, len(findings) - errors, True)
        err.print("not applied: fix the errors above first")
        raise typer.Exit(EXIT_FAILED) from None
    except RenderError as exc:
        _fail(str(exc), exc.exit_code)
    plan = rendering.plan
    wanted = [applier.Wanted(o.body, o.source) for o in api_objects(rendering)]
    try:
        client = applier.connect(kubeconfig, context)
        server = str(client.config.cluster.server)
        result = applier.run(plan, wanted, client, dry_run=dry_run, force=force)
    except (ClusterError, applier.ApplyError) as exc:
        if _State.debug:
            raise
        _fail(str(exc), exc.code)
    what = "dry run of" if dry_run else "apply of"
    out.print(f"{what} {plan.name} to {server} (field manager {applier.FIELD_MANAGER})")
    _print_apply(result)
    if not result.ok:
        raise typer.Exit(EXIT_FAILED)
    if not dry_run:
        out.print(f"waiting for the design's pods to be Ready (at most {timeout:g} s)")
        try:
            waiting = applier.wait_ready(client, wanted, timeout, out.print)
        except ClusterError as exc:
            _fail(str(exc), exc.code)
        if waiting:
            out.print(f"not Ready after {timeout:g} s: " + ", ".join(sorted(waiting)))
        out.print("verify (read-only tier):")
        try:
            report = live.run(plan, str(kubeconfig), context, exec_=False)
        except ClusterError as exc:
            _fail(str(exc), exc.code)
        print_verify_report(report)
    out.print("Not through the API (put in place by hand; render -o DIR writes them):")
    for item in off_api(rendering):
        out.print(f"  {item.what}: {item.goes_to}")
        out.print(f"    DIR/{item.rendered}" if "/" in item.rendered and " " not in item.rendered
                  else f"    {item.rendered}")  # fmt: skip
    if not dry_run:
        raise typer.Exit(EXIT_OK if report.ok and not waiting else EXIT_FAILED)


def _print_apply(result: Any) -> None:
    from multihome.cluster.apply import STEPS

    for refusal in result.refusals:
        err.print(Text.assemble(("refused:", "bold red"), " ", refusal.what))
        err.print(f"  it would disrupt: {refusal.disrupts}")
    if result.refusals:
        err.print("nothing was applied; --force applies it anyway")
        return
    for refusal in result.forced:
        out.print(f"forced past: {refusal.what}")
    for note in result.notes:
        out.print(f"note: {note}")
    step = None
    for o in result.outcomes:
        if o.obj.step != step:
            step = o.obj.step
            out.print(STEPS[step])
        line = f"  {o.action:<11} {o.obj.label()}"
        out.print(line + (f": {o.note}" if o.note else ""))
        if o.diff:
            sys.stdout.write("".join("      " + x for x in o.diff.splitlines(keepends=True)))
    actions = ("created", "changed", "unchanged", "skipped", "failed", "not applied")
    counts = {a: sum(1 for o in result.outcomes if o.action == a) for a in actions}
    out.print(", ".join(f"{n} {a}" for a, n in counts.items() if n))


def _design_or_lab_file(lab: Path | None) -> tuple[Any, None]:
    from multihome.plan import PlanError, build_plan

    lab_file = _load(lab)
    try:
        return build_plan(lab_file), None
    except PlanError as exc:
        _fail(f"{lab_file.path}: cannot verify against this design: {exc}", EXIT_FAILED)


# -- pictures and packets -------------------------------------------------------------------


def _design_or_lab(target: str | None) -> tuple[Any, dict[str, Any] | None]:
    """The plan to draw and, for a running lab, its status. TARGET: a lab file (a path that
    exists, or ends in .yaml/.yml), else a running lab's name; omitted: the one lab up, else
    the built-in seed design."""
    from multihome.lab import api
    from multihome.plan import PlanError, build_plan

    is_file = target is not None and (Path(target).exists() or target.endswith((".yaml", ".yml")))
    if target is None:
        from multihome.lab.state import StateError, list_labs

        try:
            up_now = list_labs()
        except (StateError, OSError):
            up_now = []
        name: str | None = None
        if up_now:  # the one lab up (several: resolve_name says to name one)
            try:
                name = api.resolve_name(None)
            except api.LabError as exc:
                _lab_error(exc, tried=EXIT_USAGE)
    else:
        name = None if is_file else target
    if name is not None:
        try:
            return api.load_plan(name), api.status(name)
        except (api.LabError, OSError, ValueError) as exc:
            _lab_error(exc, tried=EXIT_USAGE)
    lab_file = _load(Path(target) if target else None)
    try:
        return build_plan(lab_file), None
    except PlanError as exc:
        _fail(f"{lab_file.path}: cannot draw this design: {exc}", EXIT_FAILED)


@app.command()
def graph(
    output: Annotated[
        str,
        typer.Option(
            "-o",
            "--output",
            help="FILE.svg, .png, .dot or .mmd (Mermaid), by suffix; - writes DOT to stdout.",
        ),
    ],
    target: Annotated[
        str | None,
        typer.Argument(
            help="A lab file (the design) or a running lab's name (what was built). "
            "Omitted: the one lab up, else the built-in seed design.",
            metavar="[LAB|NAME]",
        ),
    ] = None,
) -> None:
    """Draw the design or the running lab: VLANs as buses, machines with their NICs, pods
    inside their node with their interfaces, coloured by network."""
    from multihome.graph import GraphError, picture, write_picture

    plan, status = _design_or_lab(target)
    try:
        written = write_picture(picture(plan, status), output)
    except GraphError as exc:
        _fail(str(exc))
    if output != "-":
        what = "running lab" if status else "design"
        err.print(f"wrote {written} ({what} {plan.name})")


@app.command()
def capture(
    words: Annotated[
        list[str],
        typer.Argument(
            help="[NAME] TARGET [FILTER...]: TARGET a network (its whole segment), a node's or "
            "host's NIC (multi-homed-wrk-1:ens224) or a pod's interface (ns/pod:net1); FILTER "
            "a tcpdump expression.",
            metavar="[NAME] TARGET [FILTER]...",
        ),
    ],
    write: Annotated[
        Path | None, typer.Option("-w", "--write", help="Write a pcap file (else decoded lines).")
    ] = None,
    count: Annotated[
        int | None, typer.Option("-c", "--count", min=1, help="Stop after this many packets.")
    ] = None,
) -> None:
    """Capture packets on any wire of the running lab with tcpdump; Ctrl-C (or COUNT) stops
    it, and nothing is left running."""
    from multihome.lab import api
    from multihome.lab.capture import capture as run_capture
    from multihome.lab.state import StateError, list_labs

    name: str | None = None
    if len(words) >= 2:
        try:
            labs = list_labs()
        except (StateError, OSError):
            labs = []
        if words[0] in labs:
            name, words = words[0], words[1:]
    target, expression = words[0], words[1:]
    pcap = None
    if write is not None:
        try:
            pcap = write.open("wb")
        except OSError as exc:
            _fail(f"cannot write {write}: {exc.strerror or exc}")

    def started(wire: Any) -> None:
        where = f", writing {write}" if write else ""
        err.print(f"capturing on {wire.what} in lab {api.resolve_name(name)}{where}; Ctrl-C stops")

    try:
        code = run_capture(target, expression, name=name, count=count, pcap=pcap, started=started)
    except (api.LabError, OSError, RuntimeError, ValueError) as exc:
        if pcap is not None and write is not None:
            pcap.close()
            write.unlink(missing_ok=True)
        _lab_error(exc, tried=EXIT_USAGE)
    finally:
        if pcap is not None:
            pcap.close()
    raise typer.Exit(EXIT_OK if code == 0 else EXIT_FAILED)


def _verify_scenarios(
    name: str | None, wanted: list[str] | None, output: Output, junit: Path | None
) -> NoReturn:
    """``verify --scenario``: one section (and JUnit test suite) a scenario."""
    from multihome import verify as verifier
    from multihome.verify.report import junit_document
    from multihome.verify.scenarios import run_scenarios

    try:
        reports = run_scenarios(name, wanted)
    except (verifier.VerifyError, RuntimeError) as exc:
        if _State.debug:
            raise
        _fail(str(exc), getattr(exc, "code", EXIT_USAGE))
    if junit is not None:
        try:
            junit.write_text(junit_document(reports), encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot write {junit}: {exc.strerror or exc}")
    if output is Output.json:
        doc = {"ok": all(r.ok for r in reports), "scenarios": [r.to_json() for r in reports]}
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
    else:
        for report in reports:
            out.print(Text.assemble(("\n" + report.lab, "bold")))
            print_verify_report(report)
    raise typer.Exit(EXIT_OK if all(r.ok for r in reports) else EXIT_FAILED)


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
