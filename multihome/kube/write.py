"""Writes through the lab's API: create, update, patch (merge, JSON, strategic, server-side
apply) and delete of the kinds a lab file holds, turned into a changed design and reconciled.

A write changes the lab's design (``lab.design``: the manifests of its lab file), which is
loaded, gated by validate and planned as a changed lab file is (a refusal is a 422 Invalid
naming the field), then recorded; the answer comes at once (a new pod ``Pending``) and one
reconcile at a time (``reconciler``, ``up`` of the running lab) brings the lab to the design:
a new pod is attached for real, a deleted one detached and its lease released, which
``status.json`` shows and the reads follow. Until then a deleted object is served with its
``deletionTimestamp`` (``kubectl delete --wait`` waits for it to go; no finalizers).

Reads see the design through :meth:`Writer.overlay` (``build``, which ``versions`` stamps):
the spec as written, the status as the lab has it, and the metadata the API server keeps
(``meta``); each recorded write renews the API's reading (``listeners``), so its answer
carries the object's new resourceVersion and watches see it. ``fieldValidation`` is
``strict``'s. Writes are serialised (one
``asyncio.Lock``); what the lab can't change (nodes, events, pods run by a workload or by
Longhorn, the cluster's own namespaces) is refused before anything is changed, but for a
server-side apply that changes nothing of what the lab makes itself (the charts' DaemonSets,
the HelmChartConfigs), which is taken as an API server takes it. Reading the
request is ``requests``'; turning objects into design documents and back, ``documents``'.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import json
import logging
import secrets
import string
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import yaml
from aiohttp import web

from multihome.lab import design
from multihome.lab.api import LabError

from . import apply as ssa
from . import patch as patches
from . import strict
from .documents import NS_NAME_LABEL, body_of, desired, spec_of, validate
from .meta import MetaStore, key, new_uid
from .reconciler import LOCKED
from .requests import (
    WriteError,
    bounded,
    check_kind,
    delete_options,
    details,
    dry_run_of,
    field_manager,
    invalid,
    json_response,
    not_found,
    one_line,
    read_object,
    read_raw,
    refused,
)

if TYPE_CHECKING:
    from .objects import LabView
    from .server import Resource
    from .state import LabSource

log = logging.getLogger("multihome.kube")

WRITABLE = ("Pod", "NetworkAttachmentDefinition", "Namespace", "Deployment", "DaemonSet",
            "StatefulSet", "Setting")  # fmt: skip
APPLY_ONLY = ("HelmChartConfig",)
"""Kinds the lab only makes itself: a server-side apply that changes nothing of one is taken
(``Writer._apply_own``), every other write refused."""
KEPT = WRITABLE + APPLY_ONLY
"""Kinds whose objects may have metadata kept for them (``meta``)."""
WRITE_VERBS = ("create", "delete", "patch", "update")
BUILTIN = ("Pod", "Namespace", "Deployment", "DaemonSet", "StatefulSet")
_NAME_CHARS = string.ascii_lowercase + string.digits


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Writer:
    """The write side of one lab's API (see the module's docstring)."""

    def __init__(self, source: LabSource, k8s_version: str = "v1.32.0") -> None:
        self.source = source
        self.state = source.state
        self.store = MetaStore(self.state)
        self.lock = asyncio.Lock()
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._docs_key: tuple[int, int] | None = None
        self._docs: list[dict[str, Any]] = []
        self.reconciles = 0
        self._proc: asyncio.subprocess.Process | None = None
        self.k8s_version = k8s_version  # whose schemas fieldValidation checks against
        self._builds: dict[str, Callable[[LabView], list[dict[str, Any]]]] = {}
        self._spare: asyncio.subprocess.Process | None = None
        self._stopping = False
        self.listeners: list[Callable[[], None]] = []
        """Called after each write is recorded and after each reconcile: the API's reading
        of the lab is renewed (new resourceVersions, watch events)."""

    # -- the design ---------------------------------------------------------------------------
    def docs(self) -> list[dict[str, Any]]:
        """The lab's design (the Lab document first), re-read when its file changes."""
        from multihome.lab import safefs

        st = safefs.lstat(str(self.state.dir / design.DESIGN_FILE), base=str(self.state.root))
        if st is None:
            raise WriteError(
                405, "MethodNotAllowed",
                f"lab {self.state.name!r} has no recorded design: it was brought up by an "
                "older multihome (multihome down, then up)",
            )  # fmt: skip
        k = (st.st_ino, st.st_mtime_ns)
        if k != self._docs_key:
            self._docs = design.read(self.state)
            self._docs_key = k
        return self._docs

    @staticmethod
    def _doc_key(doc: dict[str, Any]) -> str:
        meta = doc.get("metadata") or {}
        kind = str(doc.get("kind", ""))
        ns = None if kind == "Namespace" else (meta.get("namespace") or "default")
        return key(kind, ns, str(meta.get("name", "")))

    def _find(self, docs: list[dict[str, Any]], k: str) -> int | None:
        return next((i for i, d in enumerate(docs[1:], 1) if self._doc_key(d) == k), None)

    # -- reads ------------------------------------------------------------------------------
    def build(self, resource: Resource) -> Callable[[LabView], list[dict[str, Any]]]:
        """What the API serves of ``resource`` in a reading of the lab: the lab's objects
        overlaid with the design and the kept metadata (``versions`` stamps these)."""
        found = self._builds.get(resource.qualified)
        if found is None:

            def found(view: LabView) -> list[dict[str, Any]]:
                return self.overlay(resource, lab_objects(view, resource), view)

            self._builds[resource.qualified] = found
        return found

    def overlay(
        self, resource: Resource, objects: list[dict[str, Any]], view: LabView
    ) -> list[dict[str, Any]]:
        """``objects`` (the lab's, from its status and plan) as the API server serves them:
        the spec as the design has it, the objects written but not reconciled yet, and the
        metadata kept for what was written."""
        if resource.kind == "Event":
            return self._events(objects)
        if resource.kind not in KEPT:
            return objects
        try:
            docs = self.docs()
        except WriteError:
            return objects
        written = {self._doc_key(d): d for d in docs[1:] if d.get("kind") == resource.kind}
        if not written and not self.store.entries:
            return objects
        found = []
        seen = set()
        for obj in objects:
            meta = obj["metadata"]
            k = key(resource.kind, meta.get("namespace"), meta["name"])
            seen.add(k)
            found.append(self._served(resource, obj, written.get(k), k, view))
        for k, doc in written.items():
            if k not in seen:
                found.append(self._served(resource, self._pending(resource, doc), doc, k, view))
        return found

    def _events(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Events name their pod by the uid the API serves (``kubectl describe`` matches it)."""
        if not self.store.entries:
            return events
        found = []
        for event in events:
            about = event.get("involvedObject") or {}
            entry = self.store.get(key("Pod", about.get("namespace"), str(about.get("name"))))
            if about.get("kind") == "Pod" and entry is not None:
                event = dict(event, involvedObject=dict(about, uid=entry["uid"]))
            found.append(event)
        return found

    def _served(
        self,
        resource: Resource,
        obj: dict[str, Any],
        doc: dict[str, Any] | None,
        k: str,
        view: LabView,
    ) -> dict[str, Any]:
        entry = self.store.get(k)
        if doc is None and entry is None:
            return obj
        # JSON data: a round trip through json's C codec copies it several times faster
        # than copy.deepcopy (every pod of the design, at every reading of the lab)
        obj = json.loads(json.dumps(obj))
        caught_up = True
        if doc is not None:
            running = copy.deepcopy(obj.get("spec"))
            desired(resource.kind, obj, doc)
            caught_up = obj.get("spec") == running  # the lab runs the written spec
        if entry is not None:
            meta = obj["metadata"]
            meta["uid"] = entry["uid"]
            meta["creationTimestamp"] = entry["creationTimestamp"]
            if resource.kind not in ("Pod", "Namespace"):
                meta["generation"] = entry.get("generation", 1)
                # a workload controller reports the generation it acted on (kubectl rollout
                # status and apply's wait read it): the written one once the lab runs it
                status = obj.get("status")
                if caught_up and isinstance(status, dict) and "observedGeneration" in status:
                    status["observedGeneration"] = meta["generation"]
            if entry.get("managedFields"):
                meta["managedFields"] = entry["managedFields"]
            if entry.get("deletionTimestamp"):
                meta["deletionTimestamp"] = entry["deletionTimestamp"]
                meta["deletionGracePeriodSeconds"] = 0
        return obj

    def _pending(self, resource: Resource, doc: dict[str, Any]) -> dict[str, Any]:
        """An object written and not reconciled yet, as its kind's status starts."""
        obj = copy.deepcopy(doc)
        obj["apiVersion"] = resource.group_version
        meta = obj.setdefault("metadata", {})
        if resource.namespaced:
            meta.setdefault("namespace", "default")
        if resource.kind == "Pod":
            spec = obj.setdefault("spec", {})
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("dnsPolicy", "ClusterFirst")
            spec.setdefault("schedulerName", "default-scheduler")
            spec.setdefault("serviceAccountName", "default")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            status: dict[str, Any] = {"phase": "Pending", "qosClass": "BestEffort"}
            if self.store.error:
                status["reason"] = "FailedCreatePodSandBox"
                status["message"] = self.store.error
            obj["status"] = status
        elif resource.kind == "Namespace":
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
        elif resource.kind in ("Deployment", "StatefulSet"):
            obj["status"] = {"replicas": 0}
        elif resource.kind == "DaemonSet":
            obj["status"] = {"currentNumberScheduled": 0, "desiredNumberScheduled": 0,
                             "numberMisscheduled": 0, "numberReady": 0}  # fmt: skip
        if resource.kind == "Namespace":
            meta.setdefault("labels", {})[NS_NAME_LABEL] = meta["name"]
        return obj

    def current(
        self,
        resource: Resource,
        view: LabView,
        namespace: str | None,
        name: str,
        *,
        stamped: bool = True,
    ) -> dict[str, Any] | None:
        """The object as served: from the reading (with its resourceVersion), or, for a
        dry run, overlaid afresh from the design and metadata as they are now."""
        if stamped:
            objects = view.objects(resource.qualified, self.build(resource))
        else:
            objects = self.overlay(resource, lab_objects(view, resource), view)
        for obj in objects:
            meta = obj["metadata"]
            if meta["name"] == name and (
                not resource.namespaced or meta.get("namespace") == namespace
            ):
                return obj
        return None

    # -- the verbs --------------------------------------------------------------------------
    async def handle(
        self, request: web.Request, resource: Resource, namespace: str | None, name: str | None
    ) -> web.Response:
        method = request.method
        dry_run = dry_run_of(request)
        mode = strict.directive(request.query)
        applying = method == "PATCH" and request.content_type == patches.APPLY
        if resource.kind not in WRITABLE and not (applying and resource.kind in APPLY_ONLY):
            raise refused(
                f"{resource.name} are the lab's {_what(resource.kind)}: the lab's API does not "
                f"change them ({method}); change the lab file and rebuild the lab "
                "(multihome down, then multihome up FILE)"
            )
        if method == "POST":
            if name is not None:
                raise WriteError(
                    405,
                    "MethodNotAllowed",
                    "the server does not allow this method on the requested resource",
                )
            body = await read_object(request)
            warnings = strict.check_body(resource, self.k8s_version, body, mode)
            async with self.lock:
                return warned(
                    await self._create(request, resource, namespace, body, dry_run), warnings
                )
        if name is None:
            raise WriteError(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource (a collection)",
            )
        if method == "DELETE":
            dry, preconditions = await delete_options(request)
            async with self.lock:
                return await self._delete(resource, namespace, name, dry_run or dry, preconditions)
        if method == "PUT":
            body = await read_object(request)
            async with self.lock:
                return await self._update(
                    request, resource, namespace, name, body, dry_run, validation=mode
                )
        if method == "PATCH":
            ctype = request.content_type
            if ctype not in patches.TYPES:
                raise WriteError(
                    415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {', '.join(patches.TYPES)}",
                )  # fmt: skip
            if ctype == patches.STRATEGIC and resource.kind not in BUILTIN:
                raise WriteError(
                    415, "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {patches.JSON}, {patches.MERGE}, {patches.APPLY}",
                )  # fmt: skip
            raw = await read_raw(request)
            async with self.lock:
                return await self._patch(request, resource, namespace, name, ctype, raw, dry_run)
        raise WriteError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )

    async def _create(
        self,
        request: web.Request,
        resource: Resource,
        namespace: str | None,
        body: dict[str, Any],
        dry_run: bool,
        applied: list[dict[str, Any]] | None = None,
    ) -> web.Response:
        """``applied``: the managedFields of a server-side apply that creates the object."""
        meta = (
            body.setdefault("metadata", {})
            if isinstance(body.get("metadata"), dict | None)
            else None
        )
        if meta is None:
            raise WriteError(400, "BadRequest", "metadata: must be an object")
        if body.get("metadata") is None:
            body["metadata"] = meta = {}
        check_kind(resource, body)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = str(meta["generateName"]) + "".join(
                secrets.choice(_NAME_CHARS) for _ in range(5)
            )
        name = str(meta.get("name") or "")
        if not name:
            raise invalid(
                resource,
                "",
                [("metadata.name", "Required value: name or generateName is required")],
            )
        namespace = self._namespace_of(resource, namespace, meta)
        view = self.source.view()
        k = key(resource.kind, namespace, name)
        docs = list(self.docs())
        existing = self.current(resource, view, namespace, name)
        if existing is not None or self._find(docs, k) is not None:
            terminating = existing is not None and existing["metadata"].get("deletionTimestamp")
            raise WriteError(
                409, "AlreadyExists",
                ("object is being deleted: " if terminating else "")
                + f'{resource.qualified} "{name}" already exists',
                details(resource, name),
            )  # fmt: skip
        if namespace is not None and not self._namespace_exists(view, namespace):
            raise WriteError(404, "NotFound", f'namespaces "{namespace}" not found',
                             {"name": namespace, "kind": "namespaces"})  # fmt: skip
        doc = body_of(resource, body, namespace, None, None)
        docs.append(doc)
        await self._check(resource, name, docs, len(docs) - 1)
        manager = field_manager(request, "create")
        stamp = now()
        managed = applied or ssa.track_update(
            None, doc, [], manager, resource.group_version, stamp,
            associative=resource.kind in BUILTIN,
        )  # fmt: skip
        entry = {
            "uid": new_uid(),
            "creationTimestamp": stamp,
            "generation": 1,
            "managedFields": managed,
        }
        return await self._commit(resource, k, docs, entry, dry_run, 201, view, namespace, name)

    async def _update(
        self,
        request: web.Request,
        resource: Resource,
        namespace: str | None,
        name: str,
        body: dict[str, Any],
        dry_run: bool,
        operation: str = "update",
        validation: str | None = None,
    ) -> web.Response:
        """``validation``: the fieldValidation of a PUT (a patch checks its own result)."""
        if not isinstance(body.get("metadata"), dict):
            raise WriteError(400, "BadRequest", "metadata: must be an object")
        check_kind(resource, body)
        given = body["metadata"].get("name")
        if given != name:
            raise WriteError(
                400, "BadRequest",
                f"the name of the object ({given}) does not match the name on the URL ({name})",
            )  # fmt: skip
        self._namespace_of(resource, namespace, body["metadata"])
        view = self.source.view()
        live, index, docs, k = self._writable(resource, view, namespace, name)
        if index < 0:
            raise WriteError(
                409, "Conflict",
                f'Operation cannot be fulfilled on {resource.qualified} "{name}": the object is '
                "being deleted (the lab is detaching it)",
                details(resource, name),
            )  # fmt: skip
        rv = body["metadata"].get("resourceVersion")
        if rv and str(rv) != live["metadata"].get("resourceVersion"):
            raise WriteError(
                409, "Conflict",
                f'Operation cannot be fulfilled on {resource.qualified} "{name}": the object has '
                "been modified; please apply your changes to the latest version and try again",
                details(resource, name),
            )  # fmt: skip
        warnings = []
        if validation is not None:
            warnings = strict.check_patched(
                resource, self.k8s_version, None, live, body, validation
            )
        old_doc = docs[index]
        doc = body_of(resource, body, namespace, live, old_doc)
        docs[index] = doc
        await self._check(resource, name, docs, index)
        entry = dict(self.store.get(k) or self._entry_from(live))
        managed = ssa.entries(entry.get("managedFields"))
        given_managed = body["metadata"].get("managedFields")
        if given_managed is not None and given_managed != live["metadata"].get("managedFields"):
            entry["managedFields"] = [
                e for e in given_managed if isinstance(e, dict) and e.get("manager")
            ]
        else:
            entry["managedFields"] = ssa.track_update(
                old_doc, doc, managed, field_manager(request, operation), resource.group_version,
                now(), associative=resource.kind in BUILTIN,
            )  # fmt: skip
        if spec_of(doc) != spec_of(old_doc):
            entry["generation"] = int(entry.get("generation", 1)) + 1
        return warned(
            await self._commit(resource, k, docs, entry, dry_run, 200, view, namespace, name, live),
            warnings,
        )

    async def _patch(
        self,
        request: web.Request,
        resource: Resource,
        namespace: str | None,
        name: str,
        ctype: str,
        raw: bytes,
        dry_run: bool,
    ) -> web.Response:
        view = self.source.view()
        if ctype == patches.APPLY:
            return await self._apply(request, resource, namespace, name, raw, dry_run, view)
        try:
            given = bounded(json.loads(raw))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise WriteError(400, "BadRequest", f"error decoding patch: {exc}") from None
        live, _, _, _ = self._writable(resource, view, namespace, name)
        target = copy.deepcopy(live)
        try:
            if ctype == patches.MERGE:
                result = patches.merge_patch(target, given)
            elif ctype == patches.JSON:
                result = patches.json_patch(target, given)
            else:
                result = patches.strategic_patch(target, given)
        except patches.PatchError as exc:
            raise WriteError(
                exc.code, "BadRequest" if exc.code == 400 else "Invalid", str(exc)
            ) from None
        if not isinstance(result, dict) or not isinstance(result.get("metadata"), dict):
            raise invalid(resource, name, [("metadata", "Required value")])
        if result["metadata"].get("name") != name:
            raise invalid(
                resource, name, [("metadata.name", "Invalid value: the name can't be changed")]
            )
        if result["metadata"].get("resourceVersion") == live["metadata"].get("resourceVersion"):
            result["metadata"].pop("resourceVersion", None)  # a patch without one is unconditional
        warnings = strict.check_patched(
            resource, self.k8s_version, given, live, result, strict.directive(request.query)
        )
        return warned(
            await self._update(request, resource, namespace, name, result, dry_run, "patch"),
            warnings,
        )

    async def _apply(
        self,
        request: web.Request,
        resource: Resource,
        namespace: str | None,
        name: str,
        raw: bytes,
        dry_run: bool,
        view: LabView,
    ) -> web.Response:
        manager = request.query.get("fieldManager", "")
        if not manager:
            raise WriteError(
                422, "Invalid",
                'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is '
                "required for apply patch",
            )  # fmt: skip
        force = request.query.get("force") in ("1", "true")
        try:
            applied = bounded(yaml.safe_load(raw))
        except (yaml.YAMLError, RecursionError) as exc:
            raise WriteError(400, "BadRequest", f"error decoding YAML: {one_line(exc)}") from None
        if not isinstance(applied, dict):
            raise WriteError(
                400, "BadRequest", "error decoding YAML: the apply configuration is not an object"
            )
        if not isinstance(applied.get("metadata"), dict):
            raise invalid(resource, name, [("metadata", "Required value")])
        check_kind(resource, applied, required=True)
        if applied["metadata"].get("name") not in (None, name):
            raise WriteError(
                400,
                "BadRequest",
                f"the name of the object ({applied['metadata'].get('name')}) does not match "
                f"the name on the URL ({name})",
            )
        applied["metadata"]["name"] = name
        self._namespace_of(resource, namespace, applied["metadata"])
        existing = self.current(resource, view, namespace, name)
        associative = resource.kind in BUILTIN
        stamp = now()
        if existing is None and resource.kind in APPLY_ONLY:
            raise invalid(resource, name, _own_causes(resource, name, None))
        if existing is None:
            merged, managed = ssa.apply(
                None, applied, [], manager, resource.group_version, stamp,
                force=force, associative=associative,
            )  # fmt: skip
            merged.setdefault("apiVersion", resource.group_version)
            merged.setdefault("kind", resource.kind)
            return await self._create(request, resource, namespace, merged, dry_run, managed)
        k = key(resource.kind, namespace, name)
        meta = existing["metadata"]
        own = self._find(list(self.docs()), k) is None and not meta.get("deletionTimestamp")
        if own and not meta.get("ownerReferences"):
            return await self._apply_own(
                request, resource, namespace, name, existing, applied, dry_run, view
            )
        live, _, _, _ = self._writable(resource, view, namespace, name)
        try:
            merged, managed = ssa.apply(
                live, applied, ssa.entries(live["metadata"].get("managedFields")),
                manager, resource.group_version, stamp, force=force, associative=associative,
            )  # fmt: skip
        except ssa.ApplyConflict as exc:
            raise WriteError(409, "Conflict", exc.message(), {"causes": exc.causes()}) from None
        merged["metadata"]["managedFields"] = managed
        merged["metadata"].pop("resourceVersion", None)
        return await self._update(request, resource, namespace, name, merged, dry_run, "apply")

    async def _apply_own(
        self,
        request: web.Request,
        resource: Resource,
        namespace: str | None,
        name: str,
        live: dict[str, Any],
        applied: dict[str, Any],
        dry_run: bool,
        view: LabView,
    ) -> web.Response:
        """A server-side apply to an object the lab made itself (the charts' DaemonSets, the
        HelmChartConfigs, the cluster's namespaces): one that changes nothing is taken, as the
        API server takes it (200, the manager's fields in managedFields, nothing reconciled);
        one that would change the object is a 422 naming the fields, since the lab runs what
        it describes from its lab file."""
        k = key(resource.kind, namespace, name)
        entry = dict(self.store.get(k) or self._entry_from(live))
        try:
            merged, managed = ssa.apply(
                live, applied, ssa.entries(entry.get("managedFields")),
                request.query["fieldManager"], resource.group_version, now(),
                force=request.query.get("force") in ("1", "true"),
                associative=resource.kind in BUILTIN,
            )  # fmt: skip
        except ssa.ApplyConflict as exc:
            raise WriteError(409, "Conflict", exc.message(), {"causes": exc.causes()}) from None
        changed = differences(_unkept(live), _unkept(merged))
        if changed:
            raise invalid(resource, name, _own_causes(resource, name, changed))
        entry["managedFields"] = managed
        if dry_run:
            obj = copy.deepcopy(live)
            obj["metadata"]["managedFields"] = managed
            return json_response(obj)
        self.store.put(k, entry)
        self.store.save()
        self._notify()
        return json_response(self.current(resource, self.source.view(), namespace, name) or live)

    async def _delete(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        dry_run: bool,
        preconditions: dict[str, str] | None = None,
    ) -> web.Response:
        view = self.source.view()
        live, index, docs, k = self._writable(resource, view, namespace, name)
        for field, title in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            want = (preconditions or {}).get(field)
            have = str(live["metadata"].get(field, ""))
            if want is not None and want != have:
                raise WriteError(
                    409, "Conflict",
                    f'Operation cannot be fulfilled on {resource.qualified} "{name}": '
                    f"Precondition failed: {title} in precondition: {want}, {title} in object "
                    f"meta: {have}",
                    details(resource, name),
                )  # fmt: skip
        if live["metadata"].get("deletionTimestamp"):
            return json_response(live)
        docs = list(docs)
        del docs[index]
        if resource.kind == "Namespace":  # what is in it goes with it
            docs = [docs[0]] + [
                d for d in docs[1:]
                if d.get("kind") == "Namespace"
                or ((d.get("metadata") or {}).get("namespace") or "default") != name
            ]  # fmt: skip
        await self._check(resource, name, docs, None)
        entry = dict(self.store.get(k) or self._entry_from(live))
        entry["deletionTimestamp"] = now()
        if resource.kind == "Namespace" and not dry_run:
            self._terminating_in(name, view, entry["deletionTimestamp"])
        return await self._commit(
            resource, k, docs, entry, dry_run, 200, view, namespace, name, live
        )

    # -- helpers ------------------------------------------------------------------------------
    def _terminating_in(self, namespace: str, view: LabView, stamp: str) -> None:
        """What a deleted namespace holds is served as being deleted too, until it is gone."""
        from .server import RESOURCES

        for r in RESOURCES:
            if not r.namespaced or r.kind not in WRITABLE:
                continue
            for obj in self.overlay(r, lab_objects(view, r), view):
                meta = obj["metadata"]
                if meta.get("namespace") != namespace or meta.get("deletionTimestamp"):
                    continue
                k = key(r.kind, namespace, meta["name"])
                entry = dict(self.store.get(k) or self._entry_from(obj))
                entry["deletionTimestamp"] = stamp
                self.store.put(k, entry)

    def _namespace_of(
        self, resource: Resource, namespace: str | None, meta: dict[str, Any]
    ) -> str | None:
        if not resource.namespaced:
            if namespace is not None:
                raise WriteError(
                    404, "NotFound", "the server could not find the requested resource"
                )
            meta.pop("namespace", None)
            return None
        given = meta.get("namespace")
        ns = namespace or given or "default"
        if given and given != ns:
            raise WriteError(
                400, "BadRequest",
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )  # fmt: skip
        meta["namespace"] = ns
        return str(ns)

    def _namespace_exists(self, view: LabView, namespace: str) -> bool:
        from .server import RESOURCES

        ns_resource = next(r for r in RESOURCES if r.kind == "Namespace")
        found = self.current(ns_resource, view, None, namespace)
        return found is not None and not found["metadata"].get("deletionTimestamp")

    def _writable(
        self, resource: Resource, view: LabView, namespace: str | None, name: str
    ) -> tuple[dict[str, Any], int, list[dict[str, Any]], str]:
        """The live object, its design document's index, the design, its key; or the
        refusal: 404 when there is no such object, 405 when the lab made it itself."""
        live = self.current(resource, view, namespace, name)
        if live is None:
            raise not_found(resource, name)
        docs = list(self.docs())
        k = key(resource.kind, namespace, name)
        index = self._find(docs, k)
        if index is None:
            if live["metadata"].get("deletionTimestamp"):
                return live, -1, docs, k
            raise refused(_why_fixed(resource, live))
        return live, index, docs, k

    def _entry_from(self, live: dict[str, Any]) -> dict[str, Any]:
        meta = live["metadata"]
        return {
            "uid": meta.get("uid") or new_uid(),
            "creationTimestamp": meta.get("creationTimestamp") or now(),
            "generation": meta.get("generation", 1),
            "managedFields": meta.get("managedFields", []),
        }

    async def _check(
        self, resource: Resource, name: str, docs: list[dict[str, Any]], index: int | None
    ) -> None:
        causes = await asyncio.to_thread(validate, self.state, docs, index)
        if causes:
            raise invalid(resource, name, causes)

    async def _commit(
        self,
        resource: Resource,
        k: str,
        docs: list[dict[str, Any]],
        entry: dict[str, Any],
        dry_run: bool,
        code: int,
        view: LabView,
        namespace: str | None,
        name: str,
        live: dict[str, Any] | None = None,
    ) -> web.Response:
        if dry_run:
            saved_entries, saved_docs = self.store.entries, (self._docs, self._docs_key)
            self.store.entries = {**saved_entries, k: entry}
            self._docs, self._docs_key = docs, self._docs_key
            try:
                obj = self.current(resource, view, namespace, name, stamped=False) or live
            finally:
                self.store.entries = saved_entries
                self._docs, self._docs_key = saved_docs
            assert obj is not None
            obj = copy.deepcopy(obj)
            # nothing was stored: the version is the live object's (none for a create)
            if live is not None and "resourceVersion" in live["metadata"]:
                obj["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
            else:
                obj["metadata"].pop("resourceVersion", None)
            return json_response(obj, status=code)
        self.store.put(k, entry)
        self.store.save()
        design.write_text(self.state, design.dump(docs))
        self._docs, self._docs_key = docs, None
        self._notify()  # a new reading: the written object gets its resourceVersion
        obj = self.current(resource, self.source.view(), namespace, name) or live
        self.kick()
        return json_response(obj, status=code)

    def _notify(self) -> None:
        for listener in list(self.listeners):
            try:
                listener()
            except Exception:  # a listener's fault is not the write's
                log.exception("write listener failed")

    # -- the reconcile ------------------------------------------------------------------------
    def kick(self) -> None:
        """Reconcile the lab to its design soon (one reconcile at a time; writes that come
        while one runs are taken by the next)."""
        self._dirty.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._worker())

    async def _worker(self) -> None:
        while self._dirty.is_set():
            self._dirty.clear()
            started = time.perf_counter()
            error = await self._reconcile_once()
            log.info("reconcile %s in %.1fms", "failed" if error else "done",
                     (time.perf_counter() - started) * 1000)  # fmt: skip
            async with self.lock:
                self.store.error = error
                self._purge()
                self.store.save()
            self._notify()
            self.reconciles += 1

    async def _spawn(self) -> asyncio.subprocess.Process:
        """A reconcile process, started ahead: it imports what a reconcile needs, then waits
        for a line on stdin (``go``; end of file: it exits)."""
        argv = [sys.executable, "-m", "multihome.kube.reconciler", "--warm", str(self.state.dir)]
        return await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip

    async def _reconcile_once(self) -> str | None:
        try:
            for _ in range(3000):  # an up of the lab from the command line holds its lock
                proc, self._spare = self._spare or await self._spawn(), None
                self._proc = proc
                try:
                    _, err = await proc.communicate(b"go\n")
                finally:
                    self._proc = None
                if proc.returncode != LOCKED:
                    text = err.decode(errors="replace").strip()
                    if proc.returncode:
                        log.warning("reconcile failed: %s", text)
                        return text or f"the reconcile exited with {proc.returncode}"
                    return None
                await asyncio.sleep(0.2)
            return "the lab stayed locked by another up"
        finally:
            # the next write's reconcile starts warm (a lab never written to keeps none)
            if not self._stopping:
                self._spare = await self._spawn()

    async def stop(self) -> None:
        """The server stops (``down``): end the reconcile it started and the spare one, by
        their PIDs, so that nothing goes on with a lab being taken down."""
        self._stopping = True
        for proc in (self._proc, self._spare):
            if proc is not None and proc.returncode is None:
                proc.terminate()
                await proc.wait()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task

    def _purge(self) -> None:
        """Forget the metadata of objects that are gone from both the design and the lab."""
        from .server import RESOURCES

        try:
            view = self.source.view()
            docs = design.read(self.state)
        except (FileNotFoundError, LabError):
            return
        present = {self._doc_key(d) for d in docs[1:]}
        for r in RESOURCES:
            if r.kind not in KEPT:
                continue
            for obj in lab_objects(view, r):
                m = obj["metadata"]
                present.add(key(r.kind, m.get("namespace"), m["name"]))
        for k in list(self.store.entries):
            if k not in present:
                self.store.drop(k)


# -- bodies ---------------------------------------------------------------------------------


def warned(response: web.Response, warnings: list[str]) -> web.Response:
    """``response`` with a ``Warning`` header per warning (kubectl prints each)."""
    for text in warnings:
        response.headers.add("Warning", "299 - " + json.dumps(text))
    return response


def lab_objects(view: LabView, resource: Resource) -> list[dict[str, Any]]:
    """The lab's own objects of ``resource`` in a reading (from its status and plan), before
    the writes' overlay."""
    return view.objects("lab/" + resource.qualified, resource.objects)


def _what(kind: str) -> str:
    return {"Node": "machines", "Event": "record of what happened"}.get(kind, "own")


def _why_fixed(resource: Resource, live: dict[str, Any]) -> str:
    name = live["metadata"]["name"]
    owners = live["metadata"].get("ownerReferences") or []
    if owners:
        o = owners[0]
        if o.get("kind") == "InstanceManager":
            return (
                f'{resource.singular} "{name}" is Longhorn\'s instance manager, which the lab '
                "runs from its Longhorn setting: change the storage-network Setting instead"
            )
        return (
            f'{resource.singular} "{name}" is run by {o.get("kind")} {o.get("name")}: '
            f"change or delete the {o.get('kind')} instead"
        )
    if resource.kind == "Namespace":
        return f"namespace \"{name}\" is one of the cluster's own: the lab's API does not change it"
    return f"{resource.singular} \"{name}\" is the lab's own: the lab's API does not change it"


def _unkept(obj: dict[str, Any]) -> dict[str, Any]:
    """The object without the metadata the API server keeps (what an apply may change)."""
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k not in ssa.STRIPPED_META}
    return {**obj, "metadata": meta}


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """The paths (``spec.template.spec.affinity``) where ``new`` differs from ``old``; a list
    is one value."""
    if isinstance(old, dict) and isinstance(new, dict):
        found = []
        for k in sorted(set(old) | set(new), key=str):
            found += differences(old.get(k), new.get(k), f"{path}.{k}" if path else str(k))
        return found
    return [] if old == new else [path]


def _own_causes(resource: Resource, name: str, changed: list[str] | None) -> list[tuple[str, str]]:
    """The 422's causes for a write to what the lab makes itself: each changed field, then
    what to do (``changed`` None: the lab has no such object)."""
    from multihome.plan import charts  # the planner: imported on first use (see system)

    rebuild = "change the lab file and rebuild the lab (multihome down, then multihome up FILE)"
    if changed is None:
        return [(
            "metadata.name",
            f"Forbidden: the lab serves the {resource.name} render writes for its lab file, "
            f"which gives {name} no values: to set them, {rebuild}",
        )]  # fmt: skip
    what = (
        "the CNI dhcp daemon's DaemonSet"
        if resource.kind == "DaemonSet" and name in (charts.NAME, charts.CHART_DAEMONSET)
        else f"{resource.singular} {name!r}"
    )
    causes = [(p, f"Forbidden: the lab makes {what} from its lab file") for p in changed]
    causes.append((
        "",
        "the lab runs what it describes itself and takes an apply that changes nothing of "
        f"it: to change it, {rebuild}",
    ))  # fmt: skip
    return causes
