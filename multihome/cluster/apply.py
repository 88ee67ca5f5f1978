"""``multihome apply``: server-side apply of a design's API objects to a cluster (client side).

The objects come in as plain dicts (render's manifests, HelmChartConfigs and dhcp daemon
DaemonSet); this module orders them by what they depend on (namespaces, then the objects whose
CRD must be served, then settings, then node daemons: host-network DaemonSets such as the CNI
dhcp daemon the pods' attachments need, then workloads), finds which kinds the cluster
serves, refuses the changes that disrupt a running cluster (Longhorn's storage network while
volumes are attached, Canal's NIC) unless forced, applies each object with field manager
``multihome`` (``dryRun=All`` for a dry run) and says per object whether it was created,
changed or unchanged, with a unified diff of its YAML (no managedFields, no status).
``wait_ready`` then waits for the design's node daemons and pods.
"""

from __future__ import annotations

import difflib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx2
import yaml
from lightkube import ALL_NS, ApiError, Client
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import DaemonSet, Deployment, StatefulSet
from lightkube.resources.core_v1 import Namespace, Node, Pod
from lightkube.types import PatchType

from multihome.plan import Plan

from .read import NAD, TIMEOUT, ClusterError, LonghornSetting, load_config

FIELD_MANAGER = "multihome"
HelmChartConfig = create_namespaced_resource(
    "helm.cattle.io", "v1", "HelmChartConfig", "helmchartconfigs"
)
LonghornVolume = create_namespaced_resource("longhorn.io", "v1beta2", "Volume", "volumes")
FLANNEL_PUBLIC_IP = "flannel.alpha.coreos.com/public-ip"
STORAGE_NETWORK = "storage-network"


@dataclass(frozen=True)
class Kind:
    resource: Any
    """The lightkube resource class."""
    plural: str
    """As the API names it (``helmchartconfigs.helm.cattle.io``), for messages."""
    step: int
    crd: str | None = None
    """What the cluster lacks when it does not serve the kind (None: a built-in kind)."""
    required: bool = True
    """Whether a cluster that does not serve it is an error (else its objects are skipped)."""


STEPS = ("namespaces", "custom resources", "settings", "node daemons", "workloads")
NODE_DAEMONS = STEPS.index("node daemons")
KINDS: dict[tuple[str, str], Kind] = {
    ("v1", "Namespace"): Kind(Namespace, "namespaces", 0),
    ("k8s.cni.cncf.io/v1", "NetworkAttachmentDefinition"): Kind(
        NAD, "network-attachment-definitions.k8s.cni.cncf.io", 1,
        "Multus's CRD is missing (RKE2 installs it when the servers' config.yaml has "
        "cni: [multus, canal])",
    ),
    ("helm.cattle.io/v1", "HelmChartConfig"): Kind(
        HelmChartConfig, "helmchartconfigs.helm.cattle.io", 1,
        "RKE2's helm-controller CRD is missing: the cluster is not RKE2, or its "
        "helm-controller is off",
        required=False,
    ),
    ("longhorn.io/v1beta2", "Setting"): Kind(
        LonghornSetting, "settings.longhorn.io", 2,
        "Longhorn is not installed: install it with manifests/longhorn/values.yaml, which "
        "sets the storage network from the start",
        required=False,
    ),
    ("v1", "Pod"): Kind(Pod, "pods", 4),
    ("apps/v1", "Deployment"): Kind(Deployment, "deployments.apps", 4),
    ("apps/v1", "DaemonSet"): Kind(DaemonSet, "daemonsets.apps", 4),
    ("apps/v1", "StatefulSet"): Kind(StatefulSet, "statefulsets.apps", 4),
}  # fmt: skip
Action = Literal["created", "changed", "unchanged", "skipped", "failed", "not applied"]


class ApplyError(RuntimeError):
    """The apply could not be tried (a kind the design needs is not served): exit 2."""

    code = 2


@dataclass(frozen=True)
class Wanted:
    """One object of the design, as rendered."""

    body: dict[str, Any]
    source: str = ""

    @property
    def kind(self) -> str:
        return str(self.body.get("kind", ""))

    @property
    def name(self) -> str:
        return str((self.body.get("metadata") or {}).get("name", ""))

    @property
    def namespace(self) -> str | None:
        if self.kind == "Namespace":
            return None
        return str((self.body.get("metadata") or {}).get("namespace") or "default")

    @property
    def spec(self) -> Kind:
        found = KINDS.get((str(self.body.get("apiVersion", "")), self.kind))
        if found is None:
            raise ApplyError(
                f"{self.source or 'the design'}: multihome apply does not know "
                f"{self.body.get('apiVersion')} {self.kind}"
            )
        return found

    @property
    def step(self) -> int:
        if self.kind == "DaemonSet" and self._pod_spec().get("hostNetwork"):
            return NODE_DAEMONS  # a node daemon (the CNI dhcp daemon): before the pods
        return self.spec.step

    def _pod_spec(self) -> dict[str, Any]:
        template = (self.body.get("spec") or {}).get("template") or {}
        return dict(template.get("spec") or {})

    def label(self) -> str:
        return (
            f"{self.kind} {self.namespace}/{self.name}"
            if self.namespace
            else (f"{self.kind} {self.name}")
        )


def ordered(objects: list[Wanted]) -> list[Wanted]:
    """Dependency order (see ``STEPS``); the rendered order within a step."""
    return sorted(objects, key=lambda w: w.step)  # sorted() is stable


@dataclass
class Outcome:
    obj: Wanted
    action: Action
    diff: str = ""
    note: str = ""


@dataclass(frozen=True)
class Refusal:
    what: str
    disrupts: str


@dataclass
class Result:
    outcomes: list[Outcome] = field(default_factory=list)
    refusals: list[Refusal] = field(default_factory=list)
    forced: list[Refusal] = field(default_factory=list)
    """Refusals that ``force`` went past."""
    notes: list[str] = field(default_factory=list)
    dry_run: bool = False

    @property
    def ok(self) -> bool:
        return not self.refusals and all(
            o.action not in ("failed", "not applied") for o in self.outcomes
        )


# -- the objects' YAML, and their diff -----------------------------------------------------
_SERVER_META = ("managedFields", "resourceVersion", "generation", "uid", "creationTimestamp",
                "selfLink")  # fmt: skip


def shown(obj: dict[str, Any] | None) -> dict[str, Any]:
    """The object as the diff shows it: no status, no metadata the server keeps."""
    if obj is None:
        return {}
    found = {k: v for k, v in obj.items() if k != "status"}
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _SERVER_META}
    found["metadata"] = meta
    return found


def _yaml(obj: dict[str, Any]) -> list[str]:
    if not obj:
        return []
    return yaml.safe_dump(obj, sort_keys=True, default_flow_style=False).splitlines(keepends=True)


def diff(label: str, before: dict[str, Any] | None, after: dict[str, Any]) -> tuple[Action, str]:
    """created / changed / unchanged, and the unified diff of the shown YAML."""
    old, new = shown(before), shown(after)
    if before is not None and old == new:
        return "unchanged", ""
    text = "".join(
        difflib.unified_diff(_yaml(old), _yaml(new), f"{label} (cluster)", f"{label} (design)", n=3)
    )
    return ("created" if before is None else "changed"), text


# -- the cluster -------------------------------------------------------------------------------
def connect(kubeconfig: str | Path, context: str | None = None) -> Client:
    config = load_config(kubeconfig, context)
    return Client(config.get(context), timeout=httpx2.Timeout(TIMEOUT), field_manager=FIELD_MANAGER)


def _api_failure(what: str, exc: Exception) -> ClusterError:
    if isinstance(exc, ApiError):
        code = exc.status.code
        if code in (401, 403):
            return ClusterError(
                f"not allowed to {what} ({code} {exc.status.reason}): give the credentials "
                "the rights to get, list and patch the design's kinds"
            )
        return ClusterError(f"{what}: {exc.status.message or exc}")
    return ClusterError(f"cannot reach the cluster ({what}): {exc}")


def served(client: Client, kind: Kind) -> bool:
    """Whether the cluster serves the kind (a list of it answers; 404: it does not)."""
    try:
        for _ in client.list(kind.resource, namespace=ALL_NS, chunk_size=1):
            break
    except ApiError as exc:
        if exc.status.code == 404:
            return False
        raise _api_failure(f"list {kind.plural}", exc) from exc
    except httpx2.HTTPStatusError as exc:  # an answer that is not a metav1.Status
        if exc.response.status_code == 404:
            return False
        raise _api_failure(f"list {kind.plural}", exc) from exc
    except httpx2.HTTPError as exc:
        raise _api_failure(f"list {kind.plural}", exc) from exc
    return True


def current(client: Client, obj: Wanted) -> dict[str, Any] | None:
    """The cluster's object, or None when there is none."""
    try:
        found = client.get(obj.spec.resource, obj.name, namespace=obj.namespace)
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise _api_failure(f"get {obj.label()}", exc) from exc
    except httpx2.HTTPError as exc:
        raise _api_failure(f"get {obj.label()}", exc) from exc
    return dict(found.to_dict())


# -- refusals ------------------------------------------------------------------------------------
def _values(obj: Wanted) -> dict[str, Any]:
    try:
        found = yaml.safe_load(((obj.body.get("spec") or {}).get("valuesContent")) or "") or {}
    except yaml.YAMLError:
        return {}
    return found if isinstance(found, dict) else {}


def canal_refusal(plan: Plan, wanted: list[Wanted], nodes: list[dict[str, Any]]) -> Refusal | None:
    """Canal's NIC changes where a node's flannel public-ip is not the design's NIC address."""
    canal = next(
        (w for w in wanted if w.kind == "HelmChartConfig" and w.name == "rke2-canal"), None
    )
    iface = ((_values(canal).get("flannel") or {}).get("iface")) if canal else None
    if not iface:
        return None
    planned = {n.name: n for n in plan.nodes}
    moves = []
    for node in nodes:
        meta = node.get("metadata") or {}
        now_ip = (meta.get("annotations") or {}).get(FLANNEL_PUBLIC_IP)
        p = planned.get(str(meta.get("name")))
        if p is None or now_ip is None:
            continue
        addresses = {str(n.address.ip): n.name for n in p.nics if n.address is not None}
        want = next((str(n.address.ip) for n in p.nics if n.name == iface and n.address), None)
        if now_ip == want:
            continue
        was = f"{addresses[now_ip]} ({now_ip})" if now_ip in addresses else f"the NIC with {now_ip}"
        to = f"{iface} ({want})" if want else f"{iface} (no address in the design)"
        moves.append(f"{p.name}: {was} -> {to}")
    if not moves:
        return None
    return Refusal(
        f"Canal's NIC (rke2-canal's flannel.iface {iface}) differs from what flannel uses now "
        f"on {len(moves)} node(s): " + "; ".join(moves),
        "flannel and Calico restart on every node with the new NIC: pod traffic between "
        "nodes (every pod's eth0, Services) stops until every canal pod is back, then crosses "
        f"the network of {iface}; a NIC without an address there leaves canal failing",
    )


def storage_refusal(
    client: Client, wanted: list[Wanted], before: dict[str, dict[str, Any] | None]
) -> tuple[Refusal | None, str | None]:
    """A change of Longhorn's storage-network while volumes are attached; and a note when
    that could not be checked."""
    setting = next((w for w in wanted if w.kind == "Setting" and w.name == STORAGE_NETWORK), None)
    if setting is None or before.get(setting.label()) is None:
        return None, None
    old = (before[setting.label()] or {}).get("value")
    new = setting.body.get("value")
    if old == new:
        return None, None
    try:
        volumes: list[dict[str, Any]] = [
            v.to_dict()  # type: ignore[no-untyped-call]
            for v in client.list(LonghornVolume, namespace=ALL_NS)
        ]
    except (ApiError, httpx2.HTTPStatusError) as exc:
        code = exc.status.code if isinstance(exc, ApiError) else exc.response.status_code
        why = "the cluster does not serve volumes.longhorn.io" if code == 404 else str(exc)
        return None, (
            f"Longhorn's storage-network changes ({old!r} -> {new!r}): whether volumes are "
            f"attached could not be checked ({why})"
        )
    attached = [
        f"{(v.get('metadata') or {}).get('name')} on {(v.get('status') or {}).get('currentNodeID')}"
        for v in volumes
        if (v.get("status") or {}).get("state") == "attached"
    ]
    if not attached:
        return None, None
    return (
        Refusal(
            f"Longhorn's storage-network would change from {old!r} to {new!r} while "
            f"{len(attached)} volume(s) are attached: " + ", ".join(attached),
            "Longhorn restarts every instance manager to move replication to the new network, "
            "which stops the attached volumes' engines and replicas (their workloads' I/O); "
            "detach every volume first (scale their workloads to 0)",
        ),
        None,
    )


# -- applying ------------------------------------------------------------------------------------
def _apply_one(client: Client, obj: Wanted, dry_run: bool, force: bool) -> dict[str, Any]:
    found = client.patch(
        obj.spec.resource,
        obj.name,
        obj.body,
        namespace=obj.namespace,
        patch_type=PatchType.APPLY,
        field_manager=FIELD_MANAGER,
        force=force,
        dry_run=dry_run,
    )
    return dict(found.to_dict())


def run(
    plan: Plan,
    wanted: list[Wanted],
    client: Client,
    *,
    dry_run: bool = False,
    force: bool = False,
) -> Result:
    """Apply ``wanted`` (see the module's docstring); ``ClusterError`` when the cluster can't
    be read, ``ApplyError`` when a kind the design needs is not served."""
    result = Result(dry_run=dry_run)
    objects = ordered(wanted)
    kinds = {w.spec.plural: w.spec for w in objects}
    serving = {k: served(client, spec) for k, spec in kinds.items() if spec.crd is not None}
    for k, ok in serving.items():
        spec = kinds[k]
        if not ok and spec.required:
            raise ApplyError(
                f"the cluster does not serve {spec.plural}: {spec.crd}; nothing was applied"
            )
    todo: list[Wanted] = []
    for w in objects:
        if serving.get(w.spec.plural, True):
            todo.append(w)
            continue
        result.outcomes.append(
            Outcome(w, "skipped", note=f"the cluster does not serve {w.spec.plural}; {w.spec.crd}")
        )
    before = {w.label(): current(client, w) for w in todo}
    try:
        nodes = [n.to_dict() for n in client.list(Node)]
    except (ApiError, httpx2.HTTPError) as exc:
        raise _api_failure("list nodes", exc) from exc
    refusals = [canal_refusal(plan, objects, nodes)]
    storage, note = storage_refusal(client, todo, before)
    refusals.append(storage)
    if note:
        result.notes.append(note)
    found = [r for r in refusals if r is not None]
    if found and not force:
        result.refusals = found
        return result
    result.forced = found
    creating = {w.name for w in todo if w.kind == "Namespace" and before[w.label()] is None}
    failed_step: int | None = None
    for w in todo:
        if failed_step is not None and w.step > failed_step:
            result.outcomes.append(
                Outcome(w, "not applied", note=f"the {STEPS[failed_step]} step failed")
            )
            continue
        old = before[w.label()]
        try:
            after = _apply_one(client, w, dry_run, force)
        except ApiError as exc:
            if dry_run and exc.status.code == 404 and w.namespace in creating:
                action, text = diff(w.label(), None, w.body)
                note = f"its namespace {w.namespace} is created first (not dry-run by the server)"
                result.outcomes.append(Outcome(w, action, text, note))
                continue
            if exc.status.code in (401, 403):
                raise _api_failure(f"apply {w.label()}", exc) from exc
            message = exc.status.message or str(exc)
            if exc.status.code == 409:
                message += " (--force takes the fields over)"
            elif exc.status.code == 422 and w.kind == "Pod" and "Forbidden" in message:
                # a pod's spec is immutable but for a few fields: it must be made anew
                message += (
                    f" (a pod's spec can't change: kubectl -n {w.namespace} delete pod "
                    f"{w.name}, then apply again)"
                )
            result.outcomes.append(Outcome(w, "failed", note=message))
            failed_step = w.step
            continue
        except httpx2.HTTPError as exc:
            raise _api_failure(f"apply {w.label()}", exc) from exc
        action, text = diff(w.label(), old, after)
        result.outcomes.append(Outcome(w, action, text))
    order = {id(w): i for i, w in enumerate(objects)}
    result.outcomes.sort(key=lambda o: order[id(o.obj)])
    return result


# -- waiting for the pods ------------------------------------------------------------------------
def _pod_ready(pod: dict[str, Any]) -> tuple[bool, str]:
    status = pod.get("status") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or ()}
    if conditions.get("Ready") == "True":
        return True, "Ready"
    for c in status.get("containerStatuses") or ():
        waiting = (c.get("state") or {}).get("waiting")
        if waiting:
            return False, str(waiting.get("reason") or "Waiting")
    return False, str(status.get("phase") or "Pending")


def _workload_ready(kind: str, obj: dict[str, Any]) -> tuple[bool, str]:
    """Rolled out as ``kubectl rollout status`` judges it: the controller has seen the
    applied generation, and as many pods of it are updated and Ready as it wants (counts
    of an older generation say nothing of the new spec)."""
    status = obj.get("status") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    observed = status.get("observedGeneration")
    if generation is not None and (observed is None or observed < generation):
        return False, f"generation {generation} not seen by its controller yet"
    if kind == "DaemonSet":
        want, ready = status.get("desiredNumberScheduled", 0), status.get("numberReady", 0)
        updated = status.get("updatedNumberScheduled", 0)
    else:
        want, ready = (obj.get("spec") or {}).get("replicas", 1), status.get("readyReplicas", 0)
        updated = status.get("updatedReplicas", 0)
    if updated < want:
        return False, f"{updated}/{want} updated"
    return ready >= want, f"{ready}/{want} ready"


def not_ready(client: Client, wanted: list[Wanted]) -> dict[str, str]:
    """The design's pods and workloads that are not Ready yet, with what they are doing."""
    waiting = {}
    for w in wanted:
        if w.step < NODE_DAEMONS:
            continue
        obj = current(client, w)
        if obj is None:
            waiting[w.label()] = "not found"
            continue
        ok, what = _pod_ready(obj) if w.kind == "Pod" else _workload_ready(w.kind, obj)
        if not ok:
            waiting[w.label()] = what
    return waiting


def wait_ready(
    client: Client,
    wanted: list[Wanted],
    timeout: float,
    say: Callable[[str], None],
    interval: float = 1.0,
) -> dict[str, str]:
    """Wait until every pod and workload of the design is Ready; what is still not Ready
    when ``timeout`` passes (empty: all are). A progress line whenever that changes."""
    started = time.monotonic()
    total = sum(1 for w in wanted if w.step >= NODE_DAEMONS)
    last: dict[str, str] | None = None
    while True:
        waiting = not_ready(client, wanted)
        elapsed = time.monotonic() - started
        if waiting != last:
            shown_ = ", ".join(f"{k} ({v})" for k, v in sorted(waiting.items()))
            say(
                f"  {elapsed:5.1f} s  {total - len(waiting)}/{total} ready"
                + (f"; waiting for {shown_}" if waiting else "")
            )
            last = waiting
        if not waiting or elapsed >= timeout:
            return waiting
        time.sleep(min(interval, max(0.0, timeout - elapsed)))
