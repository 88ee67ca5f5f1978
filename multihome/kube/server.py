"""The HTTP side of the lab's API (aiohttp): bearer-token authentication, discovery
(``/version``, ``/api``, ``/api/v1``, ``/apis``, ``/apis/GROUP/VERSION``, the OpenAPI documents
in ``openapi``), ``get``, ``list`` and ``watch`` (``watch``) of the served resources (label and
field selectors, server-side Table output), ``pods/exec``, ``pods/log`` (``logs``), and errors
as ``Status`` objects with the API server's reasons and codes. Writes (create, update, patch,
delete) go to ``write.Writer``, which also overlays what was written on reads."""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import hdrs, web

from multihome.lab import sandbox
from multihome.lab.api import LabError, exec_argv

from . import execws, logs, openapi, tables, watch
from .objects import LabView
from .requests import MAX_BODY, WriteError
from .selectors import SelectorError, field_selector, label_selector
from .state import LabSource
from .write import WRITABLE, WRITE_VERBS, Writer

log = logging.getLogger("multihome.kube")

Objects = Callable[[LabView], list[dict[str, Any]]]


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    name: str
    singular: str
    kind: str
    namespaced: bool
    objects: Objects
    columns: list[dict[str, Any]]
    row: Callable[[dict[str, Any], float | None], list[Any]]
    short: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: tuple[tuple[str, str, tuple[str, ...]], ...] = field(default=())

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        return f"{self.name}.{self.group}" if self.group else self.name


VERBS = ("get", "list")
RESOURCES = [
    Resource("", "v1", "namespaces", "namespace", "Namespace", False,
             LabView.namespaces, tables.NAMESPACE_COLUMNS, tables.namespace_row, ("ns",)),
    Resource("", "v1", "nodes", "node", "Node", False,
             LabView.nodes, tables.NODE_COLUMNS, tables.node_row, ("no",)),
    Resource("", "v1", "pods", "pod", "Pod", True, LabView.pods, tables.POD_COLUMNS,
             tables.pod_row, ("po",), ("all",),
             (("exec", "PodExecOptions", ("create", "get")), ("log", "Pod", ("get",)))),
    Resource("", "v1", "events", "event", "Event", True, LabView.events, tables.EVENT_COLUMNS,
             tables.event_row, ("ev",)),
    Resource("k8s.cni.cncf.io", "v1", "network-attachment-definitions",
             "network-attachment-definition", "NetworkAttachmentDefinition", True,
             LabView.nads, tables.CRD_COLUMNS, tables.crd_row, ("net-attach-def",)),
    Resource("apps", "v1", "daemonsets", "daemonset", "DaemonSet", True, LabView.daemonsets,
             tables.DAEMONSET_COLUMNS, tables.daemonset_row, ("ds",), ("all",)),
    Resource("apps", "v1", "deployments", "deployment", "Deployment", True, LabView.deployments,
             tables.DEPLOYMENT_COLUMNS, tables.deployment_row, ("deploy",), ("all",)),
    Resource("apps", "v1", "statefulsets", "statefulset", "StatefulSet", True,
             LabView.statefulsets, tables.STATEFULSET_COLUMNS, tables.statefulset_row, ("sts",),
             ("all",)),
    Resource("longhorn.io", "v1beta2", "settings", "setting", "Setting", True,
             LabView.settings, tables.SETTING_COLUMNS, tables.setting_row, ("lhs",)),
    Resource("helm.cattle.io", "v1", "helmchartconfigs", "helmchartconfig", "HelmChartConfig",
             True, LabView.helmchartconfigs, tables.CRD_COLUMNS, tables.crd_row),
]  # fmt: skip
GROUPS = {"k8s.cni.cncf.io": ("v1",), "apps": ("v1",), "longhorn.io": ("v1beta2",),
          "helm.cattle.io": ("v1",)}  # fmt: skip


def status(code: int, reason: str, message: str, **details: Any) -> web.Response:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }
    if not details:
        del body["details"]
    # exactly "application/json", as the API server sends it (lightkube reads errors only so)
    return web.Response(
        body=json_dumps(body).encode(), status=code, content_type="application/json"
    )


def not_found_path() -> web.Response:
    return status(404, "NotFound", "the server could not find the requested resource")


def not_allowed() -> web.Response:
    return status(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
    )


class Api:
    """The routes of one lab's API server."""

    def __init__(self, source: LabSource, token: str, version: str, port: int = 0) -> None:
        self.source = source
        self.token = token
        self.version = version
        self.port = port
        self.by_path = {(r.group_version, r.name): r for r in RESOURCES}
        self.writer = Writer(source, version)
        self.watches = watch.Hub(source, [(r.qualified, self.writer.build(r)) for r in RESOURCES])
        self.writer.listeners.append(self.watches.renew)
        self.served = openapi.served_of(RESOURCES)

    # -- plumbing ---------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY)
        app.on_shutdown.append(self.watches.close)
        app.router.add_route("*", "/{path:.*}", self._dispatch)
        return app

    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        auth = request.headers.get(hdrs.AUTHORIZATION, "")
        scheme, _, given = auth.partition(" ")
        if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip(), self.token):
            return status(401, "Unauthorized", "Unauthorized")
        try:
            response = await handler(request)
        except web.HTTPException:
            raise
        except SelectorError as exc:
            response = status(400, "BadRequest", str(exc))
        except WriteError as exc:
            response = status(exc.code, exc.reason, exc.message, **exc.details)
        except FileNotFoundError:
            response = status(
                503, "ServiceUnavailable", "the lab has no status yet (up is running)"
            )
        except Exception as exc:  # the lab keeps serving whatever happens
            log.exception("internal error on %s", request.path_qs)
            response = status(500, "InternalError", f"Internal error occurred: {exc}")
        log.info(
            "%s %s %s %.1fms", request.method, request.path_qs, response.status,
            (time.perf_counter() - started) * 1000,
        )  # fmt: skip
        return response

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        parts = [p for p in request.path.split("/") if p]
        if not parts:
            return web.json_response({"paths": sorted(self._paths())})
        if parts[0] == "openapi" and len(parts) >= 2:
            found = openapi.respond(request, parts, self.version, self.served)
            return self._get_only(request) or found or not_found_path()
        if parts == ["version"]:
            return self._get_only(request) or web.json_response(self._version())
        if parts[0] == "api":
            if len(parts) == 1:
                return self._get_only(request) or web.json_response(self._api_versions())
            return await self._group(request, "", parts[1], parts[2:])
        if parts[0] == "apis":
            if len(parts) == 1:
                return self._get_only(request) or web.json_response(self._group_list())
            if len(parts) == 2:
                if parts[1] not in GROUPS:
                    return not_found_path()
                return self._get_only(request) or web.json_response(self._group_doc(parts[1]))
            return await self._group(request, parts[1], parts[2], parts[3:])
        return not_found_path()

    def _get_only(self, request: web.Request) -> web.Response | None:
        return None if request.method in ("GET", "HEAD") else not_allowed()

    # -- discovery --------------------------------------------------------------------------
    def _paths(self) -> list[str]:
        found = ["/api", "/api/v1", "/apis", "/version"]
        for group, versions in GROUPS.items():
            found.append(f"/apis/{group}")
            found += [f"/apis/{group}/{v}" for v in versions]
        return found

    def _version(self) -> dict[str, Any]:
        import platform

        core = self.version.lstrip("v").split("+")[0].split("-")[0]
        major, minor = [*core.split("."), "0", "0"][:2]
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
        return {
            "major": major,
            "minor": minor,
            "gitVersion": self.version,
            "gitCommit": "",
            "gitTreeState": "clean",
            "buildDate": "",
            "goVersion": "",
            "compiler": "gc",
            "platform": f"linux/{arch}",
        }

    def _api_versions(self) -> dict[str, Any]:
        return {
            "kind": "APIVersions",
            "versions": ["v1"],
            "serverAddressByClientCIDRs": [
                {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self.port}"}
            ],
        }

    def _group_doc(self, group: str) -> dict[str, Any]:
        versions = [{"groupVersion": f"{group}/{v}", "version": v} for v in GROUPS[group]]
        return {
            "kind": "APIGroup",
            "apiVersion": "v1",
            "name": group,
            "versions": versions,
            "preferredVersion": versions[0],
        }

    def _group_list(self) -> dict[str, Any]:
        groups = [self._group_doc(g) for g in GROUPS]
        for g in groups:
            del g["kind"], g["apiVersion"]
        return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}

    def _resource_list(self, group_version: str) -> dict[str, Any]:
        found: list[dict[str, Any]] = []
        for r in RESOURCES:
            if r.group_version != group_version:
                continue
            entry: dict[str, Any] = {
                "name": r.name,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": sorted([*VERBS, *(WRITE_VERBS if r.kind in WRITABLE else ())]),
            }
            if r.short:
                entry["shortNames"] = list(r.short)
            if r.categories:
                entry["categories"] = list(r.categories)
            found.append(entry)
            for sub, kind, verbs in r.subresources:
                found.append(
                    {"name": f"{r.name}/{sub}", "singularName": "", "namespaced": r.namespaced,
                     "kind": kind, "verbs": list(verbs)}
                )  # fmt: skip
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": group_version,
            "resources": found,
        }

    # -- resources --------------------------------------------------------------------------
    async def _group(
        self, request: web.Request, group: str, version: str, rest: list[str]
    ) -> web.StreamResponse:
        gv = f"{group}/{version}" if group else version
        if (group == "" and version != "v1") or (group and version not in GROUPS.get(group, ())):
            return not_found_path()
        if not rest:
            return self._get_only(request) or web.json_response(self._resource_list(gv))
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        resource = self.by_path.get((gv, rest[0]))
        if resource is None or len(rest) > 3:
            return not_found_path()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if namespace is not None and not resource.namespaced:
            return not_found_path()
        if sub is not None:
            if (resource.name, sub) == ("pods", "exec") and namespace is not None and name:
                return await self._exec(request, namespace, name)
            if (resource.name, sub) == ("pods", "log") and namespace is not None and name:
                return self._get_only(request) or await logs.serve(
                    request, self.source, namespace, name
                )
            return not_found_path()
        if request.method not in ("GET", "HEAD"):
            return await self.writer.handle(request, resource, namespace, name)
        if request.query.get("watch") in ("1", "true"):
            return await self.watches.serve(
                request, resource, namespace, name, self._table_of(request, resource)
            )
        view = self.source.view()
        objects = view.objects(resource.qualified, self.writer.build(resource))
        if namespace is not None:
            objects = [o for o in objects if o["metadata"].get("namespace") == namespace]
        if name is not None:
            found = next((o for o in objects if o["metadata"]["name"] == name), None)
            if found is None:
                return self._not_found(resource, name)
            return self._respond(request, resource, [found], view, single=True)
        match_labels = label_selector(request.query.get("labelSelector"))
        match_fields = field_selector(request.query.get("fieldSelector"), resource.name)
        objects = [o for o in objects if match_labels(o) and match_fields(o)]
        objects.sort(key=lambda o: (o["metadata"].get("namespace", ""), o["metadata"]["name"]))
        return self._respond(request, resource, objects, view, single=False)

    def _table_of(self, request: web.Request, resource: Resource) -> watch.TableOf | None:
        if not _wants_table(request.headers.get(hdrs.ACCEPT, "")):
            return None
        return lambda objs, rv: tables.table(resource.columns, resource.row, objs, rv)

    def _not_found(self, resource: Resource, name: str) -> web.Response:
        details: dict[str, Any] = {"name": name, "kind": resource.name}
        if resource.group:
            details["group"] = resource.group
        return status(404, "NotFound", f'{resource.qualified} "{name}" not found', **details)

    def _respond(
        self,
        request: web.Request,
        resource: Resource,
        objects: list[dict[str, Any]],
        view: LabView,
        *,
        single: bool,
    ) -> web.Response:
        if _wants_table(request.headers.get(hdrs.ACCEPT, "")):
            return web.json_response(
                tables.table(resource.columns, resource.row, objects, view.resource_version)
            )
        if single:
            return web.json_response(objects[0])
        items = objects
        if not resource.group:  # the core group's lists carry no kind/apiVersion per item
            items = [
                {k: v for k, v in o.items() if k not in ("kind", "apiVersion")} for o in objects
            ]
        return web.json_response(
            {
                "kind": f"{resource.kind}List",
                "apiVersion": resource.group_version,
                "metadata": {"resourceVersion": view.resource_version},
                "items": items,
            }
        )

    # -- exec -------------------------------------------------------------------------------
    async def _exec(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        if request.method not in ("GET", "POST"):
            return not_allowed()
        view = self.source.view()
        pods = [
            p
            for p in view.objects("lab/pods", LabView.pods)
            if p["metadata"]["namespace"] == namespace and p["metadata"]["name"] == name
        ]
        if not pods:
            return self._not_found(self.by_path[("v1", "pods")], name)
        pod = pods[0]
        command = request.query.getall("command", [])
        if not command:
            return status(400, "BadRequest", "you must specify at least 1 command")
        containers = [c.get("name", "") for c in pod["spec"].get("containers", [])]
        container = request.query.get("container") or (containers[0] if containers else "")
        if container not in containers:
            return status(400, "BadRequest", f"container {container} is not valid for pod {name}")
        if pod["status"].get("phase") != "Running":
            waiting = next(
                (
                    c["state"]["waiting"].get("reason", "")
                    for c in pod["status"].get("containerStatuses", [])
                    if "waiting" in c.get("state", {})
                ),
                "PodInitializing",
            )
            return status(
                400, "BadRequest",
                f'container "{container}" in pod "{name}" is waiting to start: {waiting}',
            )  # fmt: skip
        upgrade = request.headers.get(hdrs.UPGRADE, "").lower()
        if upgrade != "websocket":
            return status(
                400, "BadRequest",
                "Upgrade request required: the lab's API serves exec over websockets "
                f"({', '.join(execws.PROTOCOLS)}), not {upgrade or 'plain HTTP'}",
            )  # fmt: skip
        try:
            if pod["spec"].get("hostNetwork"):
                argv = host_network_argv(view.status, str(pod["spec"].get("nodeName")), command)
            else:
                argv = exec_argv(f"{namespace}/{name}", command, self.source.state.name)
        except LabError as exc:
            return status(500, "InternalError", str(exc))
        flag = request.query.get
        return await execws.run(
            request, argv, command,
            stdin=flag("stdin") in ("1", "true"), tty=flag("tty") in ("1", "true"),
        )  # fmt: skip


# A hostNetwork container shares the node's network namespace but has a mount namespace of
# its own, with a sysfs the runtime mounted there (read-only: /sys/class/net lists the
# node's NICs and their statistics) and no /run/netns of the node's.
_HOST_NETWORK_VIEW = (
    "unshare", "--mount", "--", "sh", "-c",
    "mount -t sysfs -o ro sysfs /sys && mount -t tmpfs -o size=4k,mode=0755 tmpfs /run/netns "
    '&& exec "$@"', "sh",
)  # fmt: skip


def host_network_argv(status: dict[str, Any], node: str, command: list[str]) -> list[str]:
    """The argv that runs ``command`` in a hostNetwork pod on ``node``."""
    found = next((n for n in status["nodes"] if n["name"] == node), None)
    if found is None:
        raise LabError(f"no node {node!r} in lab {status['name']!r}", code=2)
    sb = sandbox.Sandbox.from_dict(status["sandbox"])
    return sb.command([*_HOST_NETWORK_VIEW, *command], netns=found["netns"])


def _wants_table(accept: str) -> bool:
    for item in accept.split(","):
        params = {
            p.split("=", 1)[0].strip(): p.split("=", 1)[-1].strip() for p in item.split(";")[1:]
        }
        if params.get("as") == "Table" and params.get("g") == "meta.k8s.io":
            return True
    return False


def json_dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
