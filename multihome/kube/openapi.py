"""The OpenAPI documents kubectl reads (``/openapi/v3``, ``/openapi/v3/api/v1``,
``/openapi/v3/apis/GROUP/VERSION``, and ``/openapi/v2`` as JSON) for exactly the kinds the lab
serves: ``kubectl explain`` finds a kind by its ``x-kubernetes-group-version-kind``, ``kubectl
apply`` builds its strategic merge patch from ``x-kubernetes-patch-merge-key`` and
``x-kubernetes-patch-strategy``, and kubectl leaves field validation to the server when a
kind's PATCH operation takes ``fieldValidation`` (so nothing is checked against a schema twice).

The schemas are Kubernetes' own, never written here: the definitions of the lab's minor version
bundled by kubernetes-validate (a dependency; its ``_definitions.json`` is the upstream
swagger's definitions turned into JSON Schema), turned back into OpenAPI: ``type: [T,
"null"]`` to ``T``, the ``enum`` it adds to apiVersion and kind dropped, refs to
``#/definitions`` (v2) or ``#/components/schemas`` in ``allOf`` (v3, as kube-openapi writes
them), and the two types it rewrote as ``oneOf`` (IntOrString, Quantity) as upstream has them.
The CRDs' schemas are the ones their projects ship (Multus' NetworkAttachmentDefinition,
Longhorn's Setting), published as the API server publishes a CRD (metadata as ObjectMeta, a
List kind). The protobuf form of v2 is not served (406): kubectl needs it only where v3 serves."""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

from aiohttp import hdrs, web

META = "io.k8s.apimachinery.pkg.apis.meta.v1."
API_VERSION_DOC = (
    "APIVersion defines the versioned schema of this representation of an object. Servers "
    "should convert recognized schemas to the latest internal value, and may reject "
    "unrecognized values. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#resources"
)
KIND_DOC = (
    "Kind is a string value representing the REST resource this object represents. Servers "
    "may infer this from the endpoint the client submits requests to. Cannot be updated. In "
    "CamelCase. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#types-kinds"
)
METADATA_DOC = (
    "Standard object's metadata. More info: https://git.k8s.io/community/contributors/devel/"
    "sig-architecture/api-conventions.md#metadata"
)

# upstream's definitions of the two types kubernetes-validate rewrote as oneOf
SCALARS: dict[str, dict[str, Any]] = {
    "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {
        "description": "IntOrString is a type that can hold an int32 or a string.  When used in "
        "JSON or YAML marshalling and unmarshalling, it produces or consumes the inner type.  "
        "This allows you to have, for example, a JSON field that can accept a name or number.",
        "format": "int-or-string",
        "type": "string",
    },
    "io.k8s.apimachinery.pkg.api.resource.Quantity": {
        "description": "Quantity is a fixed-point representation of a number. It provides "
        "convenient marshaling/unmarshaling in JSON and YAML, in addition to String() and "
        "Int64() accessors.\n\nThe serialization format is:\n\n<quantity>        ::= "
        '<signedNumber><suffix>\n  (Note that <suffix> may be empty, from the "" case in '
        "<decimalSI>.)\n<digit>           ::= 0 | 1 | ... | 9 <digits>          ::= <digit> | "
        "<digit><digits> <number>          ::= <digits> | <digits>.<digits> | <digits>. | "
        '.<digits> <sign>            ::= "+" | "-" <signedNumber>    ::= <number> | '
        "<sign><number> <suffix>          ::= <binarySI> | <decimalExponent> | <decimalSI> "
        "<binarySI>        ::= Ki | Mi | Gi | Ti | Pi | Ei\n  (International System of units; "
        'See: http://physics.nist.gov/cuu/Units/binary.html)\n<decimalSI>       ::= m | "" | '
        "k | M | G | T | P | E\n  (Note that 1024 = 1Ki but 1000 = 1k; I didn't choose the "
        'capitalization.)\n<decimalExponent> ::= "e" <signedNumber> | "E" <signedNumber>\n\n'
        "No matter which of the three exponent forms is used, no quantity may represent a "
        "number greater than 2^63-1 in magnitude, nor may it have more than 3 decimal places. "
        "Numbers larger or more precise will be capped or rounded up. (E.g.: 0.1m will rounded "
        "up to 1m.) This may be extended in the future if we require larger or smaller "
        "quantities.\n\nWhen a Quantity is parsed from a string, it will remember the type of "
        "suffix it had, and will use the same type again when it is serialized.\n\nBefore "
        'serializing, Quantity will be put in "canonical form". This means that '
        "Exponent/suffix will be adjusted up or down (with a corresponding increase or "
        "decrease in Mantissa) such that:\n  a. No precision is lost\n  b. No fractional "
        "digits will be emitted\n  c. The exponent (or suffix) is as large as possible.\nThe "
        "sign will be omitted unless the number is negative.\n\nExamples:\n  1.5 will be "
        'serialized as "1500m"\n  1.5Gi will be serialized as "1536Mi"\n\nNote that the '
        "quantity will NEVER be internally represented by a floating point number. That is "
        "the whole point of this exercise.\n\nNon-canonical values will still parse as long "
        "as they are well formed, but will be re-emitted in their canonical form. (So always "
        "use canonical form, or don't diff.)\n\nThis format is intended to make it difficult "
        "to use these numbers without writing some sort of special handling code in the hopes "
        "that that will cause implementors to also use a fixed point implementation.",
        "type": "string",
    },
}

# the CRDs' openAPIV3Schema as their projects ship them (Multus' deployments/*.yml;
# Longhorn's deploy/longhorn.yaml, v1beta2; helm-controller's HelmChartConfig as wrangler
# generated it from the struct in RKE2's spring 2023 releases, k3s-io/helm-controller v0.13.3
# pkg/apis/helm.cattle.io/v1/types.go: no descriptions, both fields nullable strings),
# apiVersion/kind/metadata added as the API server publishes them
CRDS: dict[tuple[str, str, str], tuple[str, dict[str, Any]]] = {
    ("k8s.cni.cncf.io", "v1", "NetworkAttachmentDefinition"): (
        "io.cncf.cni.k8s.v1.NetworkAttachmentDefinition",
        {
            "description": "NetworkAttachmentDefinition is a CRD schema specified by the Network "
            "Plumbing Working Group to express the intent for attaching pods to one or more "
            "logical or physical networks. More information available at: "
            "https://github.com/k8snetworkplumbingwg/multi-net-spec",
            "type": "object",
            "properties": {
                "spec": {
                    "description": "NetworkAttachmentDefinition spec defines the desired state "
                    "of a network attachment",
                    "type": "object",
                    "properties": {
                        "config": {
                            "description": "NetworkAttachmentDefinition config is a "
                            "JSON-formatted CNI configuration",
                            "type": "string",
                        }
                    },
                },
            },
        },
    ),
    ("longhorn.io", "v1beta2", "Setting"): (
        "io.longhorn.v1beta2.Setting",
        {
            "description": "Setting is where Longhorn stores setting object.",
            "type": "object",
            "properties": {
                "status": {
                    "description": "The status of the setting.",
                    "properties": {
                        "applied": {"description": "The setting is applied.", "type": "boolean"}
                    },
                    "required": ["applied"],
                    "type": "object",
                },
                "value": {"description": "The value of the setting.", "type": "string"},
            },
            "required": ["value"],
        },
    ),
    ("helm.cattle.io", "v1", "HelmChartConfig"): (
        "io.cattle.helm.v1.HelmChartConfig",
        {
            "type": "object",
            "properties": {
                "spec": {
                    "type": "object",
                    "properties": {
                        "failurePolicy": {"type": "string", "nullable": True},
                        "valuesContent": {"type": "string", "nullable": True},
                    },
                },
            },
        },
    ),
}

# the definitions every group version's document carries (errors, options, patches, watch)
COMMON = ("Status", "DeleteOptions", "WatchEvent", "Patch", "APIResourceList")

_PATCH_TYPES = (
    "application/apply-patch+yaml",
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/strategic-merge-patch+json",
)


def _schema_dir(version: str) -> str:
    """kubernetes-validate's directory for the lab's minor version (the nearest it has)."""
    root = resources.files("kubernetes_validate").joinpath("kubernetes-json-schema")
    have = sorted(
        (tuple(int(x) for x in m.groups()), d.name)
        for d in root.iterdir()
        if (m := re.fullmatch(r"v(\d+)\.(\d+)\.0-local", d.name))
    )
    m = re.match(r"v?(\d+)\.(\d+)", version)
    want = (int(m.group(1)), int(m.group(2))) if m else have[-1][0]
    below = [name for mm, name in have if mm <= want]
    return below[-1] if below else have[0][1]


@functools.cache
def _definitions(version: str) -> dict[str, Any]:
    """Upstream's swagger definitions of ``version`` (v2 form), from kubernetes-validate."""
    ref = (
        resources.files("kubernetes_validate")
        .joinpath("kubernetes-json-schema")
        .joinpath(_schema_dir(version))
        .joinpath("_definitions.json")
    )
    defs: dict[str, Any] = json.loads(ref.read_text())["$defs"]
    out: dict[str, Any] = {}
    for name, schema in defs.items():
        if name in SCALARS:
            out[name] = SCALARS[name]
            continue
        converted = _to_v2(schema)
        if "x-kubernetes-group-version-kind" in converted:
            for prop in ("apiVersion", "kind"):
                converted.get("properties", {}).get(prop, {}).pop("enum", None)
        out[name] = converted
    return out


def _to_v2(node: Any) -> Any:
    if isinstance(node, list):
        return [_to_v2(v) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "type" and isinstance(value, list):
            value = next((t for t in value if t != "null"), "object")
        elif key == "$ref" and isinstance(value, str):
            value = "#/definitions/" + value.rpartition("/")[2]
        else:
            value = _to_v2(value)
        out[key] = value
    return out


def _to_v3(node: Any) -> Any:
    """v2 refs to components, a ref with siblings in allOf (kube-openapi's v3 form)."""
    if isinstance(node, list):
        return [_to_v3(v) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: _to_v3(v) for k, v in node.items() if k != "$ref"}
    if "$ref" in node:
        ref = "#/components/schemas/" + node["$ref"].rpartition("/")[2]
        if out:
            out["allOf"] = [{"$ref": ref}]
        else:
            out["$ref"] = ref
    return out


def _refs(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value.rpartition("/")[2]
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _closure(defs: dict[str, Any], roots: Iterable[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    todo = [r for r in roots if r in defs]
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found[name] = defs[name]
        todo += [r for r in _refs(defs[name]) if r in defs and r not in found]
    return dict(sorted(found.items()))


def _crd_definitions(group: str, version: str, kind: str) -> dict[str, Any]:
    name, schema = CRDS[(group, version, kind)]
    gvk = {"group": group, "kind": kind, "version": version}
    obj = json.loads(json.dumps(schema))
    obj["properties"] = {
        "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
        "kind": {"description": KIND_DOC, "type": "string"},
        "metadata": {"$ref": f"#/definitions/{META}ObjectMeta", "description": METADATA_DOC},
        **obj["properties"],
    }
    obj["x-kubernetes-group-version-kind"] = [gvk]
    listed = {
        "description": f"{kind}List is a list of {kind}",
        "properties": {
            "apiVersion": {"description": API_VERSION_DOC, "type": "string"},
            "items": {
                "description": f"List of {kind.lower()}s. More info: https://git.k8s.io/"
                "community/contributors/devel/sig-architecture/api-conventions.md",
                "items": {"$ref": f"#/definitions/{name}"},
                "type": "array",
            },
            "kind": {"description": KIND_DOC, "type": "string"},
            "metadata": {"$ref": f"#/definitions/{META}ListMeta", "description": METADATA_DOC},
        },
        "required": ["items"],
        "type": "object",
        "x-kubernetes-group-version-kind": [{**gvk, "kind": f"{kind}List"}],
    }
    return {name: obj, f"{name}List": listed}


@dataclass(frozen=True)
class Served:
    """What one group version serves: (resource, kind, namespaced) triples."""

    group: str
    version: str
    kinds: tuple[tuple[str, str, bool], ...]

    @property
    def path(self) -> str:
        return f"apis/{self.group}/{self.version}" if self.group else f"api/{self.version}"


def _definition_name(defs: dict[str, Any], group: str, version: str, kind: str) -> str | None:
    for name, schema in defs.items():
        for gvk in schema.get("x-kubernetes-group-version-kind", ()):
            if (gvk.get("group", ""), gvk.get("version"), gvk.get("kind")) == (
                group,
                version,
                kind,
            ):
                return name
    return None


def _gv_definitions(k8s_version: str, served: Served) -> tuple[dict[str, Any], dict[str, str]]:
    """The definitions of ``served`` (v2 form) and each kind's definition name."""
    upstream = _definitions(k8s_version)
    defs = dict(upstream)
    names: dict[str, str] = {}
    for _, kind, _ in served.kinds:
        if (served.group, served.version, kind) in CRDS:
            crd = _crd_definitions(served.group, served.version, kind)
            defs.update(crd)
            names[kind] = next(iter(crd))
        else:
            found = _definition_name(upstream, served.group, served.version, kind)
            if found is not None:
                names[kind] = found
    roots = [*names.values(), *(f"{n}List" for n in names.values())]
    roots += [META + c for c in COMMON]
    return _closure(defs, roots), names


def _operations(served: Served, names: dict[str, str], v3: bool) -> dict[str, Any]:
    """The list, create, read, replace, patch and delete operations of each served kind."""
    gv = served.group or "core"
    tag = (served.group.split(".")[0] if served.group else "core") + "_" + served.version
    prefix = f"/{served.path}"
    paths: dict[str, Any] = {}

    def ref(name: str) -> dict[str, Any]:
        return {"$ref": ("#/components/schemas/" if v3 else "#/definitions/") + name}

    def param(name: str, where: str, description: str, kind: str = "string") -> dict[str, Any]:
        p: dict[str, Any] = {"name": name, "in": where, "description": description}
        if where == "path":
            p["required"] = True
        if v3:
            p["schema"] = {"type": kind, "uniqueItems": True}
        else:
            p.update(type=kind, uniqueItems=True)
        return p

    write_params = [
        param("dryRun", "query", "When present, indicates that modifications should not be "
              "persisted. Valid values are: - All: all dry run stages will be processed"),
        param("fieldManager", "query", "fieldManager is a name associated with the actor or "
              "entity that is making these changes."),
        param("fieldValidation", "query", "fieldValidation instructs the server on how to "
              "handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate "
              "fields. Valid values are: - Ignore - Warn - Strict"),
    ]  # fmt: skip

    def op(action: str, kind: str, schema: str, verb_doc: str, **extra: Any) -> dict[str, Any]:
        gvk = {"group": served.group, "kind": kind, "version": served.version}
        camel = "".join(w.capitalize() for w in re.split(r"[.-]", gv)) + served.version.title()
        body: dict[str, Any] = {
            "description": verb_doc,
            "operationId": f"{action}{camel}{kind}",
            "tags": [tag],
            "responses": {
                "200": _response(ref(schema), v3),
                "401": {"description": "Unauthorized"},
            },
            "x-kubernetes-action": action,
            "x-kubernetes-group-version-kind": gvk,
        }
        body.update(extra)
        return body

    def request_body(types: Iterable[str], schema: dict[str, Any]) -> dict[str, Any]:
        if v3:
            return {"requestBody": {"content": {t: {"schema": schema} for t in types},
                                    "required": True}}  # fmt: skip
        return {"consumes": list(types)}

    for resource, kind, namespaced in served.kinds:
        name = names.get(kind)
        if name is None:
            continue
        crd = (served.group, served.version, kind) in CRDS
        patch_types = [t for t in _PATCH_TYPES if not (crd and "strategic" in t)]
        base = (
            f"{prefix}/namespaces/{{namespace}}/{resource}"
            if namespaced
            else (f"{prefix}/{resource}")
        )
        scope = [param("namespace", "path", "object name and auth scope, such as for teams "
                       "and projects")] if namespaced else []  # fmt: skip
        paths[base] = {
            "get": op("list", kind, f"{name}List", f"list or watch objects of kind {kind}"),
            "post": op("post", kind, name, f"create a {kind}", parameters=write_params,
                       **request_body(["*/*"], ref(name))),
            "parameters": scope,
        }  # fmt: skip
        paths[f"{base}/{{name}}"] = {
            "get": op("get", kind, name, f"read the specified {kind}"),
            "put": op("put", kind, name, f"replace the specified {kind}",
                      parameters=write_params, **request_body(["*/*"], ref(name))),
            "patch": op("patch", kind, name, f"partially update the specified {kind}",
                        parameters=[*write_params, param("force", "query", "Force is going to "
                                    "\"force\" Apply requests.", "boolean")],
                        **request_body(patch_types, ref(META + "Patch"))),
            "delete": op("delete", kind, META + "Status", f"delete a {kind}"),
            "parameters": [param("name", "path", f"name of the {kind}"), *scope],
        }  # fmt: skip
        if namespaced:
            paths[f"{prefix}/{resource}"] = {
                "get": op("list", kind, f"{name}List", f"list or watch objects of kind {kind}")
            }
    return paths


def _response(schema: dict[str, Any], v3: bool) -> dict[str, Any]:
    if v3:
        return {"description": "OK", "content": {"application/json": {"schema": schema}}}
    return {"description": "OK", "schema": schema}


@functools.cache
def v3_document(k8s_version: str, served: Served) -> bytes:
    defs, names = _gv_definitions(k8s_version, served)
    doc = {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": k8s_version.split("+")[0]},
        "paths": _operations(served, names, v3=True),
        "components": {
            "schemas": {n: _to_v3(s) for n, s in defs.items()},
            "securitySchemes": {"BearerToken": {"type": "apiKey", "in": "header",
                                                "name": "authorization",
                                                "description": "Bearer Token authentication"}},
        },
        "security": [{"BearerToken": []}],
    }  # fmt: skip
    return json.dumps(doc, separators=(",", ":")).encode()


def v3_hash(k8s_version: str, served: Served) -> str:
    """The ``hash`` of a group version's document in the ``/openapi/v3`` index (upstream: the
    document's sha512, upper-case hex)."""
    return hashlib.sha512(v3_document(k8s_version, served)).hexdigest().upper()


@functools.cache
def v2_document(k8s_version: str, served: tuple[Served, ...]) -> bytes:
    definitions: dict[str, Any] = {}
    paths: dict[str, Any] = {}
    for s in served:
        defs, names = _gv_definitions(k8s_version, s)
        definitions.update(defs)
        paths.update(_operations(s, names, v3=False))
    doc = {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": k8s_version.split("+")[0]},
        "paths": dict(sorted(paths.items())),
        "definitions": dict(sorted(definitions.items())),
        "securityDefinitions": {"BearerToken": {"type": "apiKey", "in": "header",
                                                "name": "authorization",
                                                "description": "Bearer Token authentication"}},
        "security": [{"BearerToken": []}],
    }  # fmt: skip
    return json.dumps(doc, separators=(",", ":")).encode()


def served_of(resources: Iterable[Any]) -> tuple[Served, ...]:
    """The group versions of the server's resource table (``server.Resource``)."""
    by_gv: dict[tuple[str, str], list[tuple[str, str, bool]]] = {}
    for r in resources:
        by_gv.setdefault((r.group, r.version), []).append((r.name, r.kind, r.namespaced))
    return tuple(Served(g, v, tuple(k)) for (g, v), k in by_gv.items())


def respond(
    request: web.Request, parts: list[str], k8s_version: str, served: tuple[Served, ...]
) -> web.Response | None:
    """The answer to ``/openapi/...`` (``parts`` the path's segments), None when not found."""
    try:
        return _respond(request, parts, k8s_version, served)
    except (OSError, KeyError, ValueError, IndexError) as exc:
        # a kubernetes-validate without the bundle this reads: say so, serve the rest
        return web.json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
             "message": f"no OpenAPI schemas: kubernetes-validate's bundle is unreadable "
             f"({exc.__class__.__name__}: {exc}); pip install 'kubernetes-validate>=1.37'",
             "reason": "ServiceUnavailable", "code": 503},
            status=503,
        )  # fmt: skip


def _respond(
    request: web.Request, parts: list[str], k8s_version: str, served: tuple[Served, ...]
) -> web.Response | None:
    if parts == ["openapi", "v2"]:
        accept = request.headers.get(hdrs.ACCEPT, "")
        if accept and "json" not in accept and "*/*" not in accept:
            return web.json_response(
                {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                 "message": "only application/json is served for /openapi/v2 (use "
                 "/openapi/v3)", "reason": "NotAcceptable", "code": 406},
                status=406,
            )  # fmt: skip
        return web.Response(body=v2_document(k8s_version, served),
                            content_type="application/json")  # fmt: skip
    if parts == ["openapi", "v3"]:
        index = {
            s.path: {"serverRelativeURL": f"/openapi/v3/{s.path}?hash={v3_hash(k8s_version, s)}"}
            for s in served
        }
        return web.json_response({"paths": index})
    for s in served:
        if parts[2:] == s.path.split("/"):
            headers = {}
            if request.query.get("hash") == v3_hash(k8s_version, s):
                headers["Cache-Control"] = "public, immutable"
            return web.Response(body=v3_document(k8s_version, s), headers=headers,
                                content_type="application/json")  # fmt: skip
    return None
