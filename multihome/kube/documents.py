"""An API object and the lab's design document for it, both ways: what the design records
of a written object (``body_of``: the user's fields, without what the server fills in), what
the API serves of a design document over the lab's own object (``desired``), and the
changed design's problems as a 422's causes, each with the field it concerns (``validate``:
``lab.design.problems`` on the design's text, lines mapped back to field paths)."""

from __future__ import annotations

import copy
import re
from typing import TYPE_CHECKING, Any

import yaml

from multihome.lab import design

if TYPE_CHECKING:
    from .server import Resource

POD_DEFAULTS = ("restartPolicy", "dnsPolicy", "schedulerName", "serviceAccountName",
                "terminationGracePeriodSeconds", "nodeName")  # fmt: skip
SERVER_ANNOTATIONS = ("k8s.v1.cni.cncf.io/network-status", "cni.projectcalico.org/")
NS_NAME_LABEL = "kubernetes.io/metadata.name"


def server_annotation(name: str) -> bool:
    return any(name == a or (a.endswith("/") and name.startswith(a)) for a in SERVER_ANNOTATIONS)


def spec_of(doc: dict[str, Any]) -> Any:
    return {k: v for k, v in doc.items() if k not in ("metadata", "status", "kind", "apiVersion")}


def desired(kind: str, obj: dict[str, Any], doc: dict[str, Any]) -> None:
    """``obj`` (from the lab) with the spec and the user's metadata as ``doc`` has them."""
    for k, v in doc.items():
        if k in ("metadata", "status", "apiVersion", "kind"):
            continue
        if k == "spec" and kind == "Pod" and isinstance(v, dict):
            old = obj.get("spec") or {}
            spec = {d: old[d] for d in POD_DEFAULTS if d in old}
            spec.update(copy.deepcopy(v))
            obj["spec"] = spec
        elif k == "spec" and kind == "Namespace":
            continue
        elif k == "spec" and isinstance(v, dict) and isinstance(obj.get("spec"), dict):
            spec = copy.deepcopy(v)
            if kind in ("Deployment", "StatefulSet"):
                spec.setdefault("replicas", 1)
            obj["spec"] = spec
        else:
            obj[k] = copy.deepcopy(v)
    meta = obj["metadata"]
    user = doc.get("metadata") or {}
    labels = dict(user.get("labels") or {})
    if kind == "Namespace":
        labels[NS_NAME_LABEL] = meta["name"]
    server = {a: v for a, v in (meta.get("annotations") or {}).items() if server_annotation(a)}
    annotations = {**(user.get("annotations") or {}), **server}
    for field_name, value in (("labels", labels), ("annotations", annotations)):
        if value:
            meta[field_name] = value
        else:
            meta.pop(field_name, None)


def body_of(
    resource: Resource,
    obj: dict[str, Any],
    namespace: str | None,
    live: dict[str, Any] | None,
    old_doc: dict[str, Any] | None,
) -> dict[str, Any]:
    """What the design records of a written object: its user fields, without what the server
    fills in (status, server metadata, Multus' and Calico's annotations, a pod's defaults)."""
    meta = obj.get("metadata") or {}
    out_meta: dict[str, Any] = {"name": meta["name"]}
    if namespace is not None:
        out_meta["namespace"] = namespace
    labels = {k: v for k, v in (meta.get("labels") or {}).items()
              if not (resource.kind == "Namespace" and k == NS_NAME_LABEL)}  # fmt: skip
    annotations = {k: v for k, v in (meta.get("annotations") or {}).items()
                   if not server_annotation(k)}  # fmt: skip
    if labels:
        out_meta["labels"] = labels
    if annotations:
        out_meta["annotations"] = annotations
    body: dict[str, Any] = {
        "apiVersion": obj.get("apiVersion") or resource.group_version,
        "kind": resource.kind,
        "metadata": out_meta,
    }
    if resource.kind == "Setting":  # the lab file may have v1beta1; the API serves v1beta2
        body["apiVersion"] = (old_doc or {}).get("apiVersion") or resource.group_version
    for k, v in obj.items():
        if k in ("apiVersion", "kind", "metadata", "status"):
            continue
        body[k] = copy.deepcopy(v)
    old_spec = (old_doc or {}).get("spec") or {}
    live_spec = (live or {}).get("spec") or {}
    spec = body.get("spec")
    if isinstance(spec, dict):
        if resource.kind == "Pod":
            for d in POD_DEFAULTS:
                if d in spec and d not in old_spec and spec[d] == live_spec.get(d):
                    del spec[d]
        if (
            resource.kind in ("Deployment", "StatefulSet")
            and "replicas" not in old_spec
            and (live is not None and spec.get("replicas") == live_spec.get("replicas"))
        ):
            spec.pop("replicas", None)
        if resource.kind == "Namespace":
            del body["spec"]
    return body


def validate(state: Any, docs: list[dict[str, Any]], index: int | None) -> list[tuple[str, str]]:
    """What a real cluster (or the lab) would refuse in the changed design (``lab.design``
    judges), each with the field of the written object it concerns (empty: none)."""
    text, lines = dump_with_lines(docs, index)
    found = []
    for location, message in design.problems(state, text, "<api>"):
        # the loader names the manifest and the path first: the Status says them already
        message = re.sub(r"^\w+ [\w./-]+: [\w.\[\]-]+: ", "", message)
        found.append((field_at(location, lines), message))
    return found


def dump_with_lines(docs: list[dict[str, Any]], index: int | None) -> tuple[str, dict[int, str]]:
    """The design's text, and the field path written at each line: bare for the document at
    ``index`` (the object written), else prefixed with its document's kind and name."""
    parts = []
    line = 1
    lines: dict[int, str] = {}
    for i, doc in enumerate(docs):
        text = yaml.safe_dump(doc, sort_keys=False, default_flow_style=False)
        if i:
            parts.append("---\n")
            line += 1
        meta = doc.get("metadata") or {}
        where = "/".join(str(x) for x in (meta.get("namespace"), meta.get("name")) if x)
        prefix = "" if i == index else f"{doc.get('kind')} {where} "
        lines.update({line + n: prefix + p for n, p in line_paths(text).items()})
        parts.append(text)
        line += text.count("\n")
    return "".join(parts), lines


def line_paths(text: str) -> dict[int, str]:
    """0-based line within ``text`` -> the dotted path of the key written there."""
    found: dict[int, str] = {}

    def walk(node: yaml.Node, path: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                child = f"{path}.{k.value}" if path else str(k.value)
                found.setdefault(k.start_mark.line, child)
                walk(v, child)
        elif isinstance(node, yaml.SequenceNode):
            for n, item in enumerate(node.value):
                child = f"{path}[{n}]"
                found.setdefault(item.start_mark.line, child)
                walk(item, child)

    root = yaml.compose(text)
    if root is not None:
        walk(root, "")
    return found


def field_at(location: Any, lines: dict[int, str]) -> str:
    if location is None or location.file != "<api>":
        return ""
    before = [n for n in lines if n <= location.line]
    return lines[max(before)] if before else ""
