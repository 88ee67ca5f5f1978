"""The JSON schemas in ``render/schemas/``: CRDs multihome writes (NAD, HelmChartConfig,
Longhorn Setting, Rancher Cluster) and the plain files (RKE2 config, netplan, Helm values)."""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker  # type: ignore[import-untyped]
from jsonschema.exceptions import best_match  # type: ignore[import-untyped]

SCHEMAS = {
    ("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition"): "network-attachment-definition",
    ("helm.cattle.io/v1", "HelmChartConfig"): "helmchartconfig",
    ("longhorn.io/v1beta2", "Setting"): "longhorn-setting",
    ("longhorn.io/v1beta1", "Setting"): "longhorn-setting",
    ("provisioning.cattle.io/v1", "Cluster"): "rancher-cluster",
}
"""The schema of each custom kind, by (apiVersion, kind)."""


@cache
def _validator(name: str) -> Any:
    text = resources.files("multihome.render").joinpath("schemas", f"{name}.json").read_text()
    schema = json.loads(text)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=FormatChecker())


def schema_problem(name: str, document: Any) -> str | None:
    """Why ``document`` does not validate against schema ``name``, or None."""
    error = best_match(_validator(name).iter_errors(document))
    if error is None:
        return None
    where = ".".join(str(p) for p in error.absolute_path) or "(document)"
    return f"{where}: {error.message} ({name} schema)"
