"""The lab's state as Kubernetes API objects: Nodes, Namespaces, Pods, Events,
NetworkAttachmentDefinitions, Longhorn's Settings and the lab file's workloads, built from
the ``status.json`` and ``plan.json`` that ``up`` wrote (read by ``state``), the way the real
components fill them in: the kubelet (node addresses, nodeInfo, the Ready condition, pod
status), Canal (the node annotations flannel and Calico write, the pod's
``cni.projectcalico.org`` annotations) and Multus (the pod's ``network-status`` annotation,
``json.MarshalIndent`` as Multus writes it)."""

from __future__ import annotations

import datetime
import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from multihome.multus import NETWORK_STATUS_ANNOTATION, format_network_status

from . import system

NETWORKS_ANNOTATION = "k8s.v1.cni.cncf.io/networks"
SYSTEM_NAMESPACES = ("default", "kube-node-lease", "kube-public", "kube-system")
_NS_UID = uuid.UUID("6ba7b811-9dad-11d1-80b4-00c04fd430c8")


def timestamp(seconds: float) -> str:
    """RFC 3339 in UTC, to the second, as the API server writes metadata timestamps."""
    return datetime.datetime.fromtimestamp(int(seconds), datetime.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )


def uid(lab: str, kind: str, key: str) -> str:
    """A stable uid for an object the lab has no uid of its own for."""
    return str(uuid.uuid5(_NS_UID, f"multihome/{lab}/{kind}/{key}"))


class LabView:
    """One reading of a lab: its status and plan (both as JSON data), and the objects."""

    def __init__(self, status: dict[str, Any], plan: dict[str, Any], version: str) -> None:
        self.status = status
        self.plan = plan
        self.resource_version = version
        self.lab = str(status["name"])
        self.created = timestamp(float(status["created"]))
        self._nodes_plan = {n["name"]: n for n in plan["nodes"]}
        self._by_key = {(m["kind"], m["namespace"], m["name"]): m for m in plan["manifests"]}
        self._memo: dict[str, list[dict[str, Any]]] = {}

    def objects(
        self, key: str, build: Callable[[LabView], list[dict[str, Any]]]
    ) -> list[dict[str, Any]]:
        """``build(self)``, made once per reading of the lab (callers must not change it)."""
        if key not in self._memo:
            self._memo[key] = build(self)
        return self._memo[key]

    def _meta(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if namespace is not None:
            meta["namespace"] = namespace
        key = f"{namespace}/{name}" if namespace else name
        meta["uid"] = uid(self.lab, kind, key)
        meta["resourceVersion"] = self.resource_version
        meta["creationTimestamp"] = self.created
        return meta

    def _manifests(self, kind: str) -> Iterable[dict[str, Any]]:
        return (m for m in self.plan["manifests"] if m["kind"] == kind)

    # -- nodes ------------------------------------------------------------------------------
    def nodes(self) -> list[dict[str, Any]]:
        return [self._node(n) for n in self.status["nodes"]]

    def _node(self, n: dict[str, Any]) -> dict[str, Any]:
        planned = self._nodes_plan.get(n["name"], {})
        labels = {
            "beta.kubernetes.io/arch": "amd64",
            "beta.kubernetes.io/os": "linux",
            "node.kubernetes.io/instance-type": "rke2",
        }
        labels.update(dict(planned.get("labels", ())))
        labels.update(dict(planned.get("lab_labels", ())))
        mgmt = next(
            (
                c
                for c in n["nics"]
                if c["address"] and c["address"].startswith(n["internal_ip"] + "/")
            ),
            None,
        )
        # flannel and Calico write the address of the NIC Canal is pinned to; on a NIC
        # without one neither starts, and the node has neither annotation
        iface = self.plan["cluster"].get("canal_iface")
        canal = next((c for c in n["nics"] if c["name"] == iface), None) if iface else mgmt
        canal_cidr = canal["address"] if canal and canal["address"] else None
        backend = self.plan["cluster"].get("canal_backend") or "vxlan"
        annotations = {
            "flannel.alpha.coreos.com/backend-data": "null"
            if backend == "host-gw"
            else json.dumps({"VNI": 1, "VtepMAC": "00:00:00:00:00:00"}, separators=(",", ":")),
            "flannel.alpha.coreos.com/backend-type": backend,
            "flannel.alpha.coreos.com/kube-subnet-manager": "true",
            "node.alpha.kubernetes.io/ttl": "0",
            "volumes.kubernetes.io/controller-managed-attach-detach": "true",
        }
        if canal_cidr or (canal is None and not iface):
            cidr = canal_cidr or n["internal_ip"] + "/32"
            annotations["flannel.alpha.coreos.com/public-ip"] = cidr.split("/")[0]
            annotations["projectcalico.org/IPv4Address"] = cidr
        annotations = dict(sorted(annotations.items()))
        meta = self._meta("Node", n["name"])
        meta["labels"] = labels
        meta["annotations"] = annotations
        spec: dict[str, Any] = {"podCIDR": n["pod_cidr"], "podCIDRs": [n["pod_cidr"]]}
        if n["taints"]:
            spec["taints"] = [_taint(t) for t in n["taints"]]
        addresses = [{"type": "InternalIP", "address": n["internal_ip"]}]
        if n.get("external_ip"):
            addresses.append({"type": "ExternalIP", "address": n["external_ip"]})
        addresses.append({"type": "Hostname", "address": n["name"]})
        ready = bool(self.status.get("running", True))
        return {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": meta,
            "spec": spec,
            "status": {
                "addresses": addresses,
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True" if ready else "Unknown",
                        "reason": "KubeletReady" if ready else "NodeStatusUnknown",
                        "message": "kubelet is posting ready status"
                        if ready
                        else "Kubelet stopped posting node status.",
                        "lastHeartbeatTime": self.created,
                        "lastTransitionTime": self.created,
                    }
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                "nodeInfo": {
                    "architecture": "amd64",
                    "bootID": "",
                    "containerRuntimeVersion": n["container_runtime"],
                    "kernelVersion": n["kernel"],
                    "kubeProxyVersion": n["version"],
                    "kubeletVersion": n["version"],
                    "machineID": "",
                    "operatingSystem": "linux",
                    "osImage": n["os_image"],
                    "systemUUID": uid(self.lab, "machine", n["name"]),
                },
            },
        }

    # -- namespaces -------------------------------------------------------------------------
    def namespaces(self) -> list[dict[str, Any]]:
        names = set(SYSTEM_NAMESPACES)
        names.update(m["name"] for m in self._manifests("Namespace"))
        names.update(p["namespace"] for p in self.plan["pods"])
        names.update(n["namespace"] for n in self.plan["nads"])
        found = []
        for name in sorted(names):
            meta = self._meta("Namespace", name)
            body: dict[str, Any] = next(
                (m["body"] for m in self._manifests("Namespace") if m["name"] == name), {}
            )
            labels = dict(body.get("metadata", {}).get("labels") or {})
            labels["kubernetes.io/metadata.name"] = name
            meta["labels"] = labels
            if body.get("metadata", {}).get("annotations"):
                meta["annotations"] = dict(body["metadata"]["annotations"])
            found.append(
                {
                    "kind": "Namespace",
                    "apiVersion": "v1",
                    "metadata": meta,
                    "spec": {"finalizers": ["kubernetes"]},
                    "status": {"phase": "Active"},
                }
            )
        return found

    # -- NADs -------------------------------------------------------------------------------
    def nads(self) -> list[dict[str, Any]]:
        found = []
        for m in self._manifests("NetworkAttachmentDefinition"):
            obj = _copy(m["body"])
            meta = obj.setdefault("metadata", {})
            meta.update(self._meta("NetworkAttachmentDefinition", m["name"], m["namespace"]))
            meta.setdefault("generation", 1)
            found.append(obj)
        return found

    def settings(self) -> list[dict[str, Any]]:
        """Longhorn's Settings that the lab file has (served as longhorn.io/v1beta2)."""
        found = []
        for m in self._manifests("Setting"):
            obj = _copy(m["body"])
            obj["apiVersion"] = "longhorn.io/v1beta2"
            meta = obj.setdefault("metadata", {})
            meta.update(self._meta("Setting", m["name"], m["namespace"]))
            meta.setdefault("generation", 1)
            found.append(obj)
        return found

    def helmchartconfigs(self) -> list[dict[str, Any]]:
        """The HelmChartConfigs render writes for the lab's design (``system``)."""
        found = []
        for body in system.helmchartconfigs_of(self):
            obj = _copy(body)
            meta = obj["metadata"]
            meta.update(self._meta("HelmChartConfig", meta["name"], system.NAMESPACE))
            meta["generation"] = 1
            found.append(obj)
        return found

    # -- events -------------------------------------------------------------------------------
    def events(self) -> list[dict[str, Any]]:
        """What the scheduler, Multus and the kubelet report of each pod: Scheduled,
        AddedInterface per attachment, FailedCreatePodSandBox (with the plugin's words) for a
        pod left ContainerCreating."""
        planned = {f"{p['namespace']}/{p['name']}": p for p in self.plan["pods"]}
        found: list[dict[str, Any]] = []
        for pod in self.status["pods"]:
            ns, name, node = pod["namespace"], pod["name"], pod["node"]
            plan_pod = planned.get(f"{ns}/{name}", {})
            subnets = {i["name"]: i.get("subnet") for i in plan_pod.get("interfaces", ())}
            said = [("Normal", "Scheduled", f"Successfully assigned {ns}/{name} to {node}",
                     {"component": "default-scheduler"})]  # fmt: skip
            for entry in pod["network_status"]:
                iface = entry.get("interface", "")
                prefix = "32" if entry.get("default") else str(subnets.get(iface) or "/32")
                prefix = prefix.rpartition("/")[2]
                ips = ",".join(f"{ip}/{prefix}" for ip in entry.get("ips", []))
                said.append(("Normal", "AddedInterface", f"Add {iface} [{ips}] from "
                             f"{entry['name']}", {"component": "multus"}))  # fmt: skip
            if pod.get("phase", "Running") != "Running" and pod.get("error"):
                said.append((
                    "Warning",
                    "FailedCreatePodSandBox",
                    "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to "
                    f'setup network for sandbox "{pod["container_id"]}": plugin type="multus" '
                    f'name="multus-cni-network" failed (add): {pod["error"]}',
                    {"component": "kubelet", "host": node},
                ))  # fmt: skip
            # numbered within the pod: another pod coming or going renames none of these
            for index, (kind, reason, message, source) in enumerate(said):
                found.append(self._event(pod, index, kind, reason, message, source))
        return found

    def _event(
        self,
        pod: dict[str, Any],
        index: int,
        kind: str,
        reason: str,
        message: str,
        source: dict[str, str],
    ) -> dict[str, Any]:
        ns, name = pod["namespace"], pod["name"]
        stamp = int(float(self.status["created"]) * 1e9) + index
        return {
            "kind": "Event",
            "apiVersion": "v1",
            "metadata": {
                "name": f"{name}.{stamp:x}",
                "namespace": ns,
                "uid": uid(self.lab, "Event", f"{ns}/{name}/{index}"),
                "resourceVersion": self.resource_version,
                "creationTimestamp": self.created,
            },
            "involvedObject": {
                "kind": "Pod",
                "namespace": ns,
                "name": name,
                "uid": pod["uid"],
                "apiVersion": "v1",
            },
            "reason": reason,
            "message": message,
            "source": source,
            "firstTimestamp": self.created,
            "lastTimestamp": self.created,
            "count": 1,
            "type": kind,
            "eventTime": None,
            "reportingComponent": source["component"],
            "reportingInstance": source.get("host", ""),
        }

    # -- workloads (the lab file's Deployments, DaemonSets, StatefulSets) ------------------
    def deployments(self) -> list[dict[str, Any]]:
        return self._workloads("Deployment")

    def daemonsets(self) -> list[dict[str, Any]]:
        return self._system_daemonsets() + self._workloads("DaemonSet")

    # -- the RKE2 charts' own (kube-system) -------------------------------------------------
    def _system_daemonsets(self) -> list[dict[str, Any]]:
        found = []
        for body, nodes, what in system.daemonsets_of(self):
            name = body["metadata"]["name"]
            obj = {"kind": "DaemonSet", "apiVersion": "apps/v1", **_copy(body)}
            obj["metadata"].update(self._meta("DaemonSet", name, system.NAMESPACE))
            obj["metadata"]["generation"] = 1
            ready = sum(1 for n in nodes if system.ready_on(self, what, n)[0])
            status = {
                "currentNumberScheduled": len(nodes), "desiredNumberScheduled": len(nodes),
                "numberAvailable": ready, "numberMisscheduled": 0, "numberReady": ready,
                "numberUnavailable": len(nodes) - ready, "observedGeneration": 1,
                "updatedNumberScheduled": len(nodes),
            }  # fmt: skip
            keep = {"currentNumberScheduled", "desiredNumberScheduled", "numberMisscheduled",
                    "numberReady"}  # fmt: skip
            obj["status"] = {k: v for k, v in status.items() if v or k in keep}
            found.append(obj)
        return found

    def _system_pods(self) -> list[dict[str, Any]]:
        found = []
        addresses = {n["name"]: n["internal_ip"] for n in self.status["nodes"]}
        t = self.created
        for body, nodes, what in system.daemonsets_of(self):
            ds = body["metadata"]["name"]
            ds_uid = uid(self.lab, "DaemonSet", f"{system.NAMESPACE}/{ds}")
            template = body["spec"]["template"]
            for node in nodes:
                name = f"{ds}-{system._suffix(ds, node)}"
                meta = self._meta("Pod", name, system.NAMESPACE)
                meta["generateName"] = f"{ds}-"
                meta["labels"] = dict(template["metadata"].get("labels", {}))
                meta["ownerReferences"] = [
                    {"apiVersion": "apps/v1", "kind": "DaemonSet", "name": ds, "uid": ds_uid,
                     "controller": True, "blockOwnerDeletion": True}
                ]  # fmt: skip
                spec = _copy(template["spec"])
                spec["nodeName"] = node
                ready, why = system.ready_on(self, what, node)
                flag = "True" if ready else "False"
                names = " ".join(c["name"] for c in spec["containers"])
                cond: list[dict[str, Any]] = []
                for kind, status in (
                    ("Initialized", "True"),
                    ("Ready", flag),
                    ("ContainersReady", flag),
                    ("PodScheduled", "True"),
                ):
                    c: dict[str, Any] = {"type": kind, "status": status, "lastProbeTime": None,
                                         "lastTransitionTime": t}  # fmt: skip
                    if status == "False":
                        c.update(
                            reason="ContainersNotReady",
                            message=f"containers with unready status: [{names}]",
                        )
                    cond.append(c)
                statuses = []
                for c in spec["containers"]:
                    entry: dict[str, Any] = {
                        "name": c["name"], "image": c["image"], "imageID": "", "ready": ready,
                        "restartCount": 0, "started": ready, "lastState": {},
                        "state": {"running": {"startedAt": t}},
                    }  # fmt: skip
                    if not ready:
                        entry["state"] = {"waiting": {"reason": "CrashLoopBackOff",
                                                      "message": why}}  # fmt: skip
                    statuses.append(entry)
                ip = addresses.get(node)
                pod_status: dict[str, Any] = {
                    "phase": "Running", "conditions": cond, "hostIP": ip, "startTime": t,
                    "containerStatuses": statuses, "qosClass": "BestEffort",
                }  # fmt: skip
                if ip:
                    pod_status["podIP"] = ip
                    pod_status["podIPs"] = [{"ip": ip}]
                found.append({"kind": "Pod", "apiVersion": "v1", "metadata": meta,
                              "spec": spec, "status": pod_status})  # fmt: skip
        return found

    def statefulsets(self) -> list[dict[str, Any]]:
        return self._workloads("StatefulSet")

    def _workloads(self, kind: str) -> list[dict[str, Any]]:
        built = {f"{p['namespace']}/{p['name']}": p for p in self._built()}
        found = []
        for m in self._manifests(kind):
            obj = _copy(m["body"])
            meta = obj.setdefault("metadata", {})
            meta.update(self._meta(kind, m["name"], m["namespace"]))
            meta.setdefault("generation", 1)
            owned = [
                p
                for p in self.plan["pods"]
                if p["namespace"] == m["namespace"]
                and (p.get("owner") or {}).get("kind") == kind
                and p["owner"]["name"] == m["name"]
            ]
            placed = [built[f"{p['namespace']}/{p['name']}"] for p in owned
                      if f"{p['namespace']}/{p['name']}" in built]  # fmt: skip
            ready = sum(1 for p in placed if p.get("phase", "Running") == "Running")
            spec = obj.setdefault("spec", {})
            if kind == "DaemonSet":
                status = {
                    "currentNumberScheduled": len(placed),
                    "desiredNumberScheduled": len(owned),
                    "numberAvailable": ready,
                    "numberMisscheduled": 0,
                    "numberReady": ready,
                    "numberUnavailable": len(owned) - ready,
                    "observedGeneration": 1,
                    "updatedNumberScheduled": len(placed),
                }
            else:
                spec.setdefault("replicas", 1)
                status = {
                    "availableReplicas": ready,
                    "observedGeneration": 1,
                    "readyReplicas": ready,
                    "replicas": len(placed),
                    "updatedReplicas": len(placed),
                }
                if kind == "StatefulSet":
                    status["currentReplicas"] = len(placed)
                elif spec["replicas"] > ready:
                    status["unavailableReplicas"] = spec["replicas"] - ready
            # the API server omits zero counts (omitempty), except a DaemonSet's four
            keep = {"currentNumberScheduled", "desiredNumberScheduled", "numberMisscheduled",
                    "numberReady", "replicas"}  # fmt: skip
            obj["status"] = {k: v for k, v in status.items() if v or k in keep}
            found.append(obj)
        return found

    # -- pods -------------------------------------------------------------------------------
    def _built(self) -> list[dict[str, Any]]:
        """The pods the lab runs: those it attached (``status.json``), and the placed
        hostNetwork ones, which it attaches nothing to (no CNI runs for them, so the kubelet
        starts them at once: Running, the node's IP, no network-status)."""
        attached = {f"{p['namespace']}/{p['name']}" for p in self.status["pods"]}
        nodes = {n["name"] for n in self.status["nodes"]}
        host = [
            {"namespace": p["namespace"], "name": p["name"], "node": p["node"],
             "uid": uid(self.lab, "Pod", f"{p['namespace']}/{p['name']}"),
             "container_id": uid(self.lab, "ctr", f"{p['namespace']}/{p['name']}").replace("-", ""),
             "network_status": [], "phase": "Running"}
            for p in self.plan["pods"]
            if p.get("host_network") and p.get("node") in nodes
            and f"{p['namespace']}/{p['name']}" not in attached
        ]  # fmt: skip
        return [*self.status["pods"], *host]

    def pods(self) -> list[dict[str, Any]]:
        planned = {f"{p['namespace']}/{p['name']}": p for p in self.plan["pods"]}
        found = []
        for p in self._built():
            ref = f"{p['namespace']}/{p['name']}"
            found.append(self._pod(planned.get(ref, {}), p))
        for ref in self.status.get("pending", []):
            if ref in planned:
                found.append(self._pod(planned[ref], None))
        return found + self._system_pods()

    def _template(self, pod: dict[str, Any]) -> dict[str, Any]:
        """The pod's manifest (a Pod), or its workload's pod template, or Longhorn's."""
        owner = pod.get("owner")
        if owner is None:
            m = self._by_key.get(("Pod", pod["namespace"], pod["name"]))
            if m is not None:
                return dict(_copy(m["body"]))
        else:
            m = self._by_key.get((owner["kind"], pod["namespace"], owner["name"]))
            if m is not None:
                return dict(_copy(m["body"].get("spec", {}).get("template", {})))
        labels = dict(pod.get("labels", ()))
        image = (self.plan.get("longhorn") or {}).get("instance_manager_image", "")
        im_type = labels.get("longhorn.io/instance-manager-type", "")
        container = {"engine": "engine-manager", "replica": "replica-manager"}.get(
            im_type, "instance-manager"
        )
        return {"spec": {"containers": [{"name": container, "image": image}]}}

    def _pod(self, planned: dict[str, Any], built: dict[str, Any] | None) -> dict[str, Any]:
        source = planned or built or {}
        ns, name = str(source["namespace"]), str(source["name"])
        body = self._template(dict(planned, namespace=ns, name=name))
        src_meta = body.get("metadata") or {}
        meta = self._meta("Pod", name, ns)
        if built is not None:
            meta["uid"] = built["uid"]
        labels = dict(src_meta.get("labels") or {})
        labels.update(dict(planned.get("labels", ())))
        if labels:
            meta["labels"] = labels
        annotations = dict(src_meta.get("annotations") or {})
        if planned.get("networks_annotation"):
            annotations[NETWORKS_ANNOTATION] = planned["networks_annotation"]
        entries = built["network_status"] if built else []
        eth0 = next((e for e in entries if e.get("default")), None)
        if eth0 is not None and eth0.get("ips") and not planned.get("host_network"):
            annotations["cni.projectcalico.org/containerID"] = built["container_id"]  # type: ignore[index]
            annotations["cni.projectcalico.org/podIP"] = f"{eth0['ips'][0]}/32"
            annotations["cni.projectcalico.org/podIPs"] = ",".join(f"{i}/32" for i in eth0["ips"])
        if entries:
            annotations[NETWORK_STATUS_ANNOTATION] = _network_status(entries)
        if annotations:
            meta["annotations"] = annotations
        owner = planned.get("owner")
        if owner:
            kind, oname, api = owner["kind"], owner["name"], "apps/v1"
            if kind == "Longhorn":
                kind, oname, api = "InstanceManager", name, "longhorn.io/v1beta2"
            meta["ownerReferences"] = [
                {
                    "apiVersion": api,
                    "kind": kind,
                    "name": oname,
                    "uid": uid(self.lab, kind, f"{ns}/{oname}"),
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        spec = dict(body.get("spec") or {})
        spec.setdefault("containers", [])
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        node = built["node"] if built else planned.get("node")
        if node:
            spec["nodeName"] = node
        return {
            "kind": "Pod",
            "apiVersion": "v1",
            "metadata": meta,
            "spec": spec,
            "status": self._pod_status(spec, planned, built, eth0),
        }

    def _pod_status(
        self,
        spec: dict[str, Any],
        planned: dict[str, Any],
        built: dict[str, Any] | None,
        eth0: dict[str, Any] | None,
    ) -> dict[str, Any]:
        t = self.created
        if built is None:  # no node fits
            return {
                "phase": "Pending",
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/{} nodes are available: no node fits the pod's "
                        "placement.".format(len(self.status["nodes"])),
                        "lastProbeTime": None,
                        "lastTransitionTime": t,
                    }
                ],
                "qosClass": "BestEffort",
            }
        running = built.get("phase", "Running") == "Running"
        node = next((n for n in self.status["nodes"] if n["name"] == built["node"]), None)
        host_ip = node["internal_ip"] if node else None
        ips = [host_ip] if planned.get("host_network") and host_ip else (eth0 or {}).get("ips", [])
        flag = "True" if running else "False"
        cond: list[dict[str, Any]] = [
            {"type": "Initialized", "status": "True"},
            {"type": "Ready", "status": flag},
            {"type": "ContainersReady", "status": flag},
            {"type": "PodScheduled", "status": "True"},
        ]
        for c in cond:
            c.update(lastProbeTime=None, lastTransitionTime=t)
            if c["status"] == "False":
                names = " ".join(x.get("name", "") for x in spec["containers"])
                c.update(
                    reason="ContainersNotReady",
                    message=f"containers with unready status: [{names}]",
                )
        statuses = []
        for c in spec["containers"]:
            entry: dict[str, Any] = {
                "name": c.get("name", ""),
                "image": c.get("image", ""),
                "imageID": "",
                "ready": running,
                "restartCount": 0,
                "started": running,
            }
            if running:
                entry["containerID"] = f"multihome://{built['container_id']}"
                entry["state"] = {"running": {"startedAt": t}}
            else:
                entry["state"] = {"waiting": {"reason": "ContainerCreating"}}
            entry["lastState"] = {}
            statuses.append(entry)
        status: dict[str, Any] = {
            "phase": "Running" if running else "Pending",
            "conditions": cond,
            "hostIP": host_ip,
            "startTime": t,
            "containerStatuses": statuses,
            "qosClass": "BestEffort",
        }
        if host_ip:
            status["hostIPs"] = [{"ip": host_ip}]
        if ips:
            status["podIP"] = ips[0]
            status["podIPs"] = [{"ip": ip} for ip in ips]
        return status


_STATUS_TEXTS: dict[str, str] = {}
_STATUS_TEXTS_MAX = 50_000


def _network_status(entries: list[dict[str, Any]]) -> str:
    """``format_network_status(entries)``, kept across readings of the lab by the entries'
    compact JSON: Multus' indented text goes through json's pure-Python encoder (~0.5 ms
    a pod, most of a rebuild of every object after one change at 1000 pods), and a pod's
    entries change only when it is attached anew."""
    key = json.dumps(entries, sort_keys=True, separators=(",", ":"))
    text = _STATUS_TEXTS.get(key)
    if text is None:
        if len(_STATUS_TEXTS) >= _STATUS_TEXTS_MAX:
            _STATUS_TEXTS.clear()
        text = _STATUS_TEXTS[key] = format_network_status(entries)
    return text


def _copy(value: Any) -> Any:
    """A deep copy of JSON data (several times faster than copy.deepcopy)."""
    return json.loads(json.dumps(value))


def _taint(text: str) -> dict[str, str]:
    """``key=value:Effect`` (or ``key:Effect``) as a Taint."""
    rest, _, effect = text.rpartition(":")
    key, _, value = rest.partition("=")
    taint = {"key": key, "effect": effect}
    if value:
        taint["value"] = value
    return taint
