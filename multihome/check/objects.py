"""Checks of what the Kubernetes API server validates in every manifest: object names and
namespaces (apimachinery's ``ValidateObjectMeta`` with each kind's name rule), label keys
and values (also ``nodeSelector`` and the nodes' labels), annotation keys, container names.
Each message is the API server's own, as ``kubectl apply`` would print it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from multihome.check.context import Context
from multihome.check.findings import Finding
from multihome.check.names import (
    annotation_keys_problems,
    label_value_problems,
    qualified_name_problems,
    rfc1123_label_problems,
    rfc1123_subdomain_problems,
)
from multihome.check.registry import check
from multihome.spec import Location, Manifest, PathItem, TemplateMeta

NAME_RULES: dict[str, Callable[[str], list[str]]] = {
    "Namespace": rfc1123_label_problems,  # ValidateNamespaceName
    "Pod": rfc1123_subdomain_problems,  # ValidatePodName
    "Deployment": rfc1123_subdomain_problems,  # ValidateDeploymentName
    "DaemonSet": rfc1123_subdomain_problems,  # ValidateDaemonSetName
    "StatefulSet": rfc1123_label_problems,  # ValidateStatefulSetName (Kubernetes 1.32+)
    "NetworkAttachmentDefinition": rfc1123_subdomain_problems,  # custom resources
    "Setting": rfc1123_subdomain_problems,
}


def _quoted(value: str) -> str:
    """The value as the API server quotes it, control characters escaped."""
    return json.dumps(value, ensure_ascii=False)


def _invalid(manifest: Manifest, field: str, value: str, problem: str) -> str:
    return (
        f"{manifest.kind} {_quoted(manifest.name)} is invalid: {field}: Invalid value: "
        f"{_quoted(value)}: {problem}"
    )


@check
def object_names(ctx: Context) -> Iterator[Finding]:
    for m in ctx.lf.manifests:
        rule = NAME_RULES.get(m.kind, rfc1123_subdomain_problems)
        where = m.locate("metadata", "name")
        if not m.name:
            yield ctx.error(
                "object-name-invalid",
                where,
                f"{m.kind} is invalid: metadata.name: Required value: name or generateName is "
                "required",
                "give the object a name",
            )
        for problem in rule(m.name) if m.name else []:
            yield ctx.error(
                "object-name-invalid",
                where,
                _invalid(m, "metadata.name", m.name, problem),
                "rename it: lower-case letters, digits and '-' (and '.' where a subdomain is "
                "allowed), e.g. 'net-tools'",
            )
        namespace = m.view.metadata.namespace
        if namespace is not None and m.has("metadata", "namespace"):
            for problem in rfc1123_label_problems(namespace):
                yield ctx.error(
                    "object-name-invalid",
                    m.locate("metadata", "namespace"),
                    _invalid(m, "metadata.namespace", namespace, problem),
                    "use a Namespace's name: lower-case letters, digits and '-'",
                )


def _metadata(m: Manifest) -> Iterator[tuple[TemplateMeta, tuple[PathItem, ...]]]:
    yield m.view.metadata, ("metadata",)
    template = m.pod_template()
    if template is not None and template.path:
        yield template.metadata, (*template.path, "metadata")


@check
def labels_and_annotations(ctx: Context) -> Iterator[Finding]:
    for m in ctx.lf.manifests:
        for meta, path in _metadata(m):
            field = ".".join(str(p) for p in path)
            yield from _labels(ctx, m, meta.labels, (*path, "labels"), f"{field}.labels")
            for key, problem in annotation_keys_problems(meta.annotations):
                at: tuple[PathItem, ...] = (*path, "annotations", key) if key else path
                yield ctx.error(
                    "annotation-key-invalid",
                    m.locate_key(*at),
                    _invalid(m, f"{field}.annotations", key, problem)
                    if key
                    else f"{m.kind} {_quoted(m.name)} is invalid: {field}.annotations: Too "
                    f"long: {problem}",
                    "annotation keys are [prefix/]name, e.g. 'k8s.v1.cni.cncf.io/networks'",
                )
        template = m.pod_template()
        if template is not None:
            selector = template.spec.node_selector
            path = (*template.path, "spec", "nodeSelector")
            yield from _labels(ctx, m, selector, path, ".".join(str(p) for p in path))
    for i, node in enumerate(ctx.spec.nodes):
        for key, value in node.labels.items():
            where = ctx.lf.locate_key("spec", "nodes", i, "labels", key)
            for problem in qualified_name_problems(key) + label_value_problems(value):
                yield ctx.error(
                    "label-invalid",
                    where,
                    f"node {node.name}: label {_quoted(key)}: {_quoted(value)}: {problem} "
                    "(kubelet refuses to register with it)",
                    "label keys are [prefix/]name, values at most 63 characters of "
                    "letters, digits, '-', '_' and '.'",
                )


def _labels(
    ctx: Context,
    m: Manifest,
    labels: dict[str, str],
    path: tuple[PathItem, ...],
    field: str,
) -> Iterator[Finding]:
    for key, value in labels.items():
        problems = [(True, key, p) for p in qualified_name_problems(key)]
        problems += [(False, value, p) for p in label_value_problems(value)]
        for is_key, shown, problem in problems:
            yield ctx.error(
                "label-invalid",
                m.locate_key(*path, key) if is_key else m.locate(*path, key),
                _invalid(m, field, shown, problem),
                "label keys are [prefix/]name, values at most 63 characters of letters, "
                "digits, '-', '_' and '.'",
            )


@check
def container_names(ctx: Context) -> Iterator[Finding]:
    for template in ctx.lf.pods_and_templates():
        m = template.manifest
        seen: set[str] = set()
        base = ".".join(str(p) for p in (*template.path, "spec", "containers"))
        for i, container in enumerate(template.spec.containers):
            where: Location = template.locate("spec", "containers", i, "name")
            field = f"{base}[{i}].name"
            for problem in rfc1123_label_problems(container.name):
                yield ctx.error(
                    "container-name-invalid",
                    where,
                    _invalid(m, field, container.name, problem),
                    "name the container with lower-case letters, digits and '-', e.g. 'main'",
                )
            if container.name in seen:
                yield ctx.error(
                    "container-name-invalid",
                    where,
                    f"{m.kind} {_quoted(m.name)} is invalid: {field}: Duplicate value: "
                    f"{_quoted(container.name)}",
                    "give each container of the pod its own name",
                )
            seen.add(container.name)
