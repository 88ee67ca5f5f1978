"""Every rendered YAML file is parsed back and validated before anything is written: core
kinds against the Kubernetes schema, custom kinds against their CRD schemas, each NAD's CNI
config as validate reads it (``spec.parse_cni_json``, then ``multihome.cni``), HelmChartConfig
values as YAML, a Rancher Cluster's ``additionalManifest`` document by document, plain files by
their schema."""

from __future__ import annotations

from typing import Any

import yaml

from multihome.cni import ConfigError, load_network_config
from multihome.render.errors import InvalidOutput
from multihome.render.kube import SchemaVersion, is_core, kube_problem
from multihome.render.schema import SCHEMAS, schema_problem
from multihome.render.tree import RenderedFile
from multihome.spec import ConfigJSONError, parse_cni_json


def _cni_problem(document: dict[str, Any]) -> str | None:
    """Whether the NAD's config is a CNI conf/conflist (named after the NAD when it has no
    name, as Multus does)."""
    try:
        raw = parse_cni_json(document["spec"]["config"])
    except ConfigJSONError as exc:
        return f"spec.config {exc}"
    if "name" not in raw:
        raw = {**raw, "name": document["metadata"]["name"]}
    try:
        load_network_config(raw)
    except ConfigError as exc:
        return f"spec.config is not a valid CNI configuration: {exc}"
    return None


def _values_problem(document: dict[str, Any]) -> str | None:
    content = document.get("spec", {}).get("valuesContent")
    if content is None:
        return None
    try:
        values = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        return f"spec.valuesContent is not YAML: {exc}"
    if not isinstance(values, dict):
        return "spec.valuesContent must be a YAML mapping"
    return None


def _additional_problem(document: dict[str, Any], version: SchemaVersion) -> str | None:
    """Each document of a Rancher Cluster's ``spec.rkeConfig.additionalManifest``."""
    text = document["spec"]["rkeConfig"].get("additionalManifest")
    if text is None:
        return None
    try:
        embedded = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        return f"spec.rkeConfig.additionalManifest is not YAML: {exc}"
    for index, inner in enumerate(embedded):
        problem = document_problem(inner, version)
        if problem:
            return f"spec.rkeConfig.additionalManifest {_label(inner, index)}: {problem}"
    return None


def document_problem(document: Any, version: SchemaVersion) -> str | None:
    """Why one manifest does not validate, or None."""
    if not isinstance(document, dict):
        return "a manifest must be a mapping"
    api_version, kind = document.get("apiVersion"), document.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return "a manifest needs apiVersion and kind"
    name = SCHEMAS.get((api_version, kind))
    if name is not None:
        problem = schema_problem(name, document)
        if problem is None and kind == "NetworkAttachmentDefinition":
            problem = _cni_problem(document)
        if problem is None and kind == "HelmChartConfig":
            problem = _values_problem(document)
        if problem is None and kind == "Cluster":
            problem = _additional_problem(document, version)
        return problem
    if is_core(api_version):
        return kube_problem(document, version)
    return f"no schema for {kind} {api_version}"


def _label(document: Any, index: int) -> str:
    if isinstance(document, dict):
        meta = document.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        return f"document {index + 1} ({document.get('kind')} {name})"
    return f"document {index + 1}"


def validate_file(rendered: RenderedFile, version: SchemaVersion) -> None:
    """Raise :class:`InvalidOutput` when the file's YAML does not parse or validate."""
    if rendered.kind == "markdown":
        return
    try:
        documents = [d for d in yaml.safe_load_all(rendered.text) if d is not None]
    except yaml.YAMLError as exc:
        raise InvalidOutput(rendered.path, f"not valid YAML: {exc}") from None
    if rendered.kind == "manifests":
        for index, document in enumerate(documents):
            problem = document_problem(document, version)
            if problem:
                raise InvalidOutput(rendered.path, f"{_label(document, index)}: {problem}")
        return
    if len(documents) != 1:
        raise InvalidOutput(rendered.path, f"expected one YAML document, found {len(documents)}")
    name = "longhorn-values" if rendered.kind == "helm-values" else rendered.kind
    problem = schema_problem(name, documents[0])
    if problem:
        raise InvalidOutput(rendered.path, problem)
