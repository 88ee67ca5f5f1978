"""The OpenAPI documents without a lab: upstream's definitions turned back into OpenAPI (no
JSON Schema left over: no ``null`` types, no added enums on apiVersion/kind, IntOrString as
upstream has it), each group version's document closed over its refs, only the served kinds,
and a PATCH operation per kind that takes ``fieldValidation`` (kubectl's test for server-side
validation)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from multihome.kube import openapi
from multihome.kube.server import RESOURCES

SERVED = openapi.served_of(RESOURCES)


def _walk(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.mark.parametrize("served", SERVED, ids=[s.path for s in SERVED])
@pytest.mark.parametrize("version", ["v1.25.9+rke2r1", "v1.31.4+rke2r1"])
def test_v3_documents(served: openapi.Served, version: str) -> None:
    doc = json.loads(openapi.v3_document(version, served))
    schemas = doc["components"]["schemas"]
    for node in _walk(doc):
        assert not isinstance(node.get("type"), list)
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            assert ref.rpartition("/")[2] in schemas, ref
    kinds = {(g["group"], g["kind"]) for s in schemas.values()
             for g in s.get("x-kubernetes-group-version-kind", [])}  # fmt: skip
    for _, kind, _ in served.kinds:
        assert (served.group, kind) in kinds and (served.group, f"{kind}List") in kinds
    for schema in schemas.values():
        if "x-kubernetes-group-version-kind" in schema:
            for prop in ("apiVersion", "kind"):
                assert "enum" not in schema["properties"].get(prop, {})
    patches = [op["patch"] for op in doc["paths"].values() if "patch" in op]
    assert len(patches) == len(served.kinds)
    for patch in patches:
        assert "fieldValidation" in [p["name"] for p in patch["parameters"]]
        assert patch["x-kubernetes-group-version-kind"]["group"] == served.group


def test_core_schemas_are_upstreams() -> None:
    core = next(s for s in SERVED if s.path == "api/v1")
    schemas = json.loads(openapi.v3_document("v1.25.9", core))["components"]["schemas"]
    ports = schemas["io.k8s.api.core.v1.Container"]["properties"]["ports"]
    assert ports["x-kubernetes-patch-merge-key"] == "containerPort"
    assert ports["x-kubernetes-patch-strategy"] == "merge"
    intstr = schemas["io.k8s.apimachinery.pkg.util.intstr.IntOrString"]
    assert (intstr["type"], intstr["format"]) == ("string", "int-or-string")
    assert "io.k8s.api.core.v1.Service" not in schemas  # not served
    meta = schemas["io.k8s.api.core.v1.Pod"]["properties"]["metadata"]
    assert meta["allOf"] == [
        {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"}
    ]
