"""The ``README.md`` of a rendered directory: what goes where, the order to bring the nodes
up, and the command that checks each step, with what it should show for this lab."""

from __future__ import annotations

from multihome.plan import InterfacePlan, NetworkPlan, NodePlan, Plan, PodPlan, charts
from multihome.plan.charts import canal_values, multus_values
from multihome.plan.instance_managers import TYPE_LABEL
from multihome.render.manifests import helm_install
from multihome.render.netplan import nameservers
from multihome.render.rancher import registration_flags
from multihome.render.token import Token
from multihome.render.yamltext import wrap

NETWORK_STATUS = r"{.metadata.annotations.k8s\.v1\.cni\.cncf\.io/network-status}"
KUBECTL_ENV = "export KUBECONFIG=/etc/rancher/rke2/rke2.yaml PATH=$PATH:/var/lib/rancher/rke2/bin"
SHORT_KIND = {"Deployment": "deploy", "DaemonSet": "ds", "StatefulSet": "sts"}


def _code(*lines: str) -> list[str]:
    return ["```sh", *lines, "```", ""]


def _nodes_table(plan: Plan) -> list[str]:
    lines = ["| node | role | node-ip | NICs |", "|---|---|---|---|"]
    for node in plan.nodes:
        nics = []
        for nic in node.nics:
            text = f"{nic.name}: {nic.network}"
            if nic.address is not None:
                text += f" {nic.address}"
            if nic.bridge:
                text += f" (in bridge {nic.bridge})"
            if nic.management:
                text += " (node-ip)"
            nics.append(text)
        role = node.role + (" (first)" if node.bootstrap else "")
        lines.append(f"| {node.name} | {role} | {node.node_ip} | {'; '.join(nics)} |")
    return [*lines, ""]


def _network(plan: Plan, name: str | None) -> NetworkPlan | None:
    return next((n for n in plan.networks if n.name == name), None)


def _addresses(plan: Plan, iface: InterfacePlan) -> str:
    text = _assigned(plan, iface)
    if iface.default_route:
        text += f"; default route via {', '.join(iface.default_route)}"
    return text


def _assigned(plan: Plan, iface: InterfacePlan) -> str:
    if iface.cluster and iface.network == "k8s-pod-network":
        return f"from the node's pod CIDR in {plan.cluster.cluster_cidr}"
    if iface.ips:
        return ", ".join(iface.ips) + " (from the annotation)"
    net = _network(plan, iface.lab_network)
    if "dhcp" in iface.ipam_types and net is not None and net.dhcp is not None:
        return f"DHCP, {net.dhcp.start}-{net.dhcp.end}"
    if iface.ipam_types:
        return f"{', '.join(iface.ipam_types)} IPAM"
    return "-"


def _where(plan: Plan, iface: InterfacePlan) -> str:
    if iface.lab_network is None:
        return "cluster network" if iface.network == "k8s-pod-network" else "?"
    net = _network(plan, iface.lab_network)
    subnet = f" ({net.subnet})" if net is not None else ""
    return f"{iface.lab_network}{subnet}"


def _target(pod: PodPlan) -> str:
    """What ``kubectl exec`` takes to reach this pod, or one pod of its workload."""
    if pod.owner is None or pod.owner.kind == "StatefulSet":
        return pod.name
    return f"{SHORT_KIND.get(pod.owner.kind, pod.owner.kind.lower())}/{pod.owner.name}"


def _pod_checks(plan: Plan) -> list[str]:
    lab_pods = [p for p in plan.pods if p.owner is None or p.owner.kind != "Longhorn"]
    shown: set[tuple[str, str]] = set()
    lines: list[str] = []
    for pod in lab_pods:
        if pod.host_network:
            continue
        key = (pod.namespace, _target(pod))
        if key in shown:
            continue
        shown.add(key)
        what = f"`{pod.namespace}/{pod.name}`"
        if pod.owner is not None:
            what = f"{pod.owner.kind} `{pod.namespace}/{pod.owner.name}` (each pod)"
        lines += [f"**{what}**", "", "| interface | network | lands on | addresses |"]
        lines.append("|---|---|---|---|")
        for iface in pod.interfaces:
            lines.append(
                f"| {iface.name} | {iface.network} | {_where(plan, iface)} | "
                f"{_addresses(plan, iface)} |"
            )
        lines.append("")
        if pod.owner is None:
            status = f"kubectl -n {pod.namespace} get pod {pod.name} -o jsonpath='{NETWORK_STATUS}'"
        else:
            status = (
                f"kubectl -n {pod.namespace} get pods -o jsonpath='{{range .items[*]}}"
                f'{{.metadata.name}}{{"\\n"}}{NETWORK_STATUS}{{"\\n"}}{{end}}\''
            )
        lines += _code(status, f"kubectl -n {pod.namespace} exec {_target(pod)} -- ip addr")
    if not lines:
        return ["The lab has no pods.", ""]
    return [
        "The network-status annotation lists every interface Multus made (with its IPs);",
        "`ip addr` in the pod shows them (the image needs iproute2).",
        "",
        *lines,
    ]


def _canal_check(plan: Plan) -> list[str]:
    cluster = plan.cluster
    if "canal" not in cluster.cni:
        return []
    iface = cluster.canal_iface
    if cluster.canal_backend == "vxlan":
        device = "flannel.1"
        expect = "routes to the other nodes' pod CIDRs (vxlan over "
        expect += f"{iface or 'the default-route NIC'})"
    else:
        device = iface or "<the node-ip NIC>"
        expect = (
            f"`<pod CIDR> via <that node's node-ip>` for every other node ({cluster.canal_backend})"
        )
    return [
        f"Canal's routes on any node: {expect}.",
        "The pod CIDRs follow the order in which the nodes registered.",
        "",
        *_code(
            f"ip route show dev {device}",
            "kubectl -n kube-system get helmchartconfig rke2-canal -o yaml",
        ),
    ]


GET_NODES = _code(KUBECTL_ENV, "kubectl get nodes -o wide")


def _dhcp_check(plan: Plan, rancher: bool) -> list[str]:
    """That the CNI dhcp daemon runs where DHCP pods may: its DaemonSet, its pods, the socket."""
    daemon = charts.dhcp_daemon(plan)
    if daemon is None:
        return []
    running = daemon.running_on(plan)
    if daemon.source == "chart":
        whence = "the rke2-multus chart starts it (`manifests.dhcpDaemonSet`)"
        selector = f"-o wide | grep {charts.CHART_DAEMONSET}"
    else:
        where = (
            "`spec.rkeConfig.additionalManifest` of rancher/cluster.yaml"
            if rancher
            else f"`{charts.NAME}.yaml` in the servers' manifests directory"
        )
        whence = f"multihome's DaemonSet starts it ({where}): {daemon.reason}"
        selector = f"-l app.kubernetes.io/name={charts.NAME} -o wide"
    pods = f"kubectl -n {charts.NAMESPACE} get pods {selector}"
    nads = ", ".join(f"`{n}`" for n in daemon.nads)
    return [
        *wrap(
            f"The CNI dhcp daemon, for the dhcp IPAM of {nads}: {whence}. Its DaemonSet "
            f"`{daemon.daemonset}` has DESIRED = READY = {len(running)}, one pod Running on "
            f"each of {', '.join(n.name for n in running)}:",
            width=90,
        ),
        "",
        *_code(
            f"kubectl -n {charts.NAMESPACE} get ds {daemon.daemonset}",
            pods,
        ),
        "and on each of those nodes its socket exists (pods' dhcp IPAM fails with",
        "`dial unix /run/cni/dhcp.sock` where it does not):",
        "",
        *_code("sudo ls -l /run/cni/dhcp.sock"),
    ]


def _nodes_check(plan: Plan) -> list[str]:
    rows = ["| NAME | INTERNAL-IP |", "|---|---|"]
    rows += [f"| {n.name} | {n.node_ip} |" for n in plan.nodes]
    return [
        "On a server:",
        "",
        *GET_NODES,
        "Every node is `Ready`, with these addresses (a wrong INTERNAL-IP means RKE2 took",
        "another NIC: check node-ip in its config.yaml):",
        "",
        *rows,
        "",
    ]


def _longhorn(plan: Plan) -> list[str]:
    longhorn = plan.longhorn
    if longhorn is None:
        return []
    nad = plan.nad(longhorn.storage_network)
    lands = ""
    if nad is not None and nad.master:
        lands = f" (macvlan on {nad.master})" if nad.cni_type == "macvlan" else f" ({nad.master})"
    managers = [p for p in plan.pods if p.owner is not None and p.owner.kind == "Longhorn"]
    split = len(longhorn.instance_manager_types) > 1
    kinds = (
        "an engine (`instance-manager-e-...`) and a replica (`instance-manager-r-...`) one"
        if split
        else "one (`instance-manager-...`, engines and replicas together)"
    )
    rows = [f"| {p.node} | `{p.name}` | {dict(p.labels).get(TYPE_LABEL, '')} |" for p in managers]
    return [
        "## Longhorn storage network",
        "",
        f"Longhorn {longhorn.version} ({longhorn.version_reason}).",
        f"Replication goes over `{longhorn.storage_network}`{lands}:",
        "Longhorn gives its instance-manager pods an extra interface",
        f"`{longhorn.interface}` there; each node runs {kinds}.",
        "",
        "New install:",
        "",
        *_code(*helm_install(longhorn.version)),
        "Longhorn already running (detach every volume first):",
        "",
        *_code("kubectl apply -f manifests/longhorn/settings.yaml"),
        f"Check: each instance-manager has `{longhorn.interface}`:",
        "",
        *_code(
            "kubectl -n longhorn-system get pods -l longhorn.io/component=instance-manager -o wide",
            "kubectl -n longhorn-system exec <instance-manager pod> -- ip addr show "
            + longhorn.interface,
        ),
        "With the chart's images "
        f"(`{longhorn.instance_manager_image}`) the instance-managers are named:",
        "",
        "| node | pod | longhorn.io/instance-manager-type |",
        "|---|---|---|",
        *rows,
        "",
        "(Longhorn hashes the node name and the instance-manager image into the name: another",
        "image, such as Rancher's mirrored ones from the Rancher Apps chart, gives other names.)",
        "",
    ]


def _manifests_step(plan: Plan, number: int) -> list[str]:
    return [
        f"## {number}. The lab's manifests",
        "",
        *_code("kubectl apply -f manifests/"),
        "Namespaces first, then the NetworkAttachmentDefinitions, then the pods.",
        "",
        *_code("kubectl get network-attachment-definitions -A", "kubectl get pods -A -o wide"),
        f"## {number + 1}. Check each pod's networks",
        "",
        *_pod_checks(plan),
    ]


def _install(version: str | None, agent: bool) -> str:
    env = []
    if version:
        env.append(f"INSTALL_RKE2_VERSION={version}")
    if agent:
        env.append("INSTALL_RKE2_TYPE=agent")
    return "curl -sfL https://get.rke2.io | sudo " + " ".join([*env, "sh -"])


def _node_steps(node: NodePlan, plan: Plan) -> list[str]:
    base = f"nodes/{node.name}"
    lines = [
        "sudo mkdir -p /etc/rancher/rke2",
        f"sudo install -m 600 {base}/etc/rancher/rke2/config.yaml /etc/rancher/rke2/config.yaml",
    ]
    if node.role == "server" and _server_manifests(plan):
        lines += [
            "sudo mkdir -p /var/lib/rancher/rke2/server/manifests",
            "sudo install -m 644 server/var/lib/rancher/rke2/server/manifests/*.yaml \\",
            "  /var/lib/rancher/rke2/server/manifests/",
        ]
    service = "rke2-server" if node.role == "server" else "rke2-agent"
    lines += [
        _install(plan.cluster.version, node.role == "agent"),
        f"sudo systemctl enable --now {service}",
    ]
    return lines


def _server_manifests(plan: Plan) -> bool:
    """Whether there are files for the servers' manifests directory (HelmChartConfigs, the
    dhcp daemon's DaemonSet)."""
    daemon = charts.dhcp_daemon(plan)
    return (
        canal_values(plan) is not None
        or multus_values(plan) is not None
        or (daemon is not None and daemon.source == "own")
    )


def _file_rows(plan: Plan, rancher: bool) -> list[tuple[str, str, str]]:
    """(file, where it goes, on which machine) for each kind of file rendered."""
    rows = []
    if rancher:
        rows.append(("rancher/cluster.yaml", "Rancher's local cluster", "once"))
    rows += [
        ("nodes/<node>/etc/netplan/60-multihome.yaml", "`/etc/netplan/`", "that node"),
        ("nodes/<node>/etc/rancher/rke2/config.yaml", "`/etc/rancher/rke2/`", "that node"),
    ]
    if not rancher and _server_manifests(plan):
        rows.append(
            (
                "server/var/lib/rancher/rke2/server/manifests/*.yaml",
                "`/var/lib/rancher/rke2/server/manifests/`",
                "every server",
            )
        )
    if any(m.group != "longhorn" for m in plan.manifests):
        rows.append(("manifests/*.yaml", "`kubectl apply -f manifests/`", "once, with kubectl"))
    if plan.longhorn or any(m.group == "longhorn" for m in plan.manifests):
        rows.append(("manifests/longhorn/", "Longhorn (see the end)", "once"))
    rows.append(
        (
            "rbac/multihome.yaml",
            "`kubectl apply -f rbac/`, then bind the roles to whoever runs "
            "`multihome verify --kubeconfig` / `multihome apply`",
            "once, as a cluster admin",
        )
    )
    return rows


def _files_table(rows: list[tuple[str, str, str]]) -> list[str]:
    lines = ["| file | goes to | on |", "|---|---|---|"]
    lines += [f"| `{a}` | {b} | {c} |" for a, b, c in rows]
    return [*lines, ""]


def _netplan_step(plan: Plan) -> list[str]:
    dns = sorted({a for node in plan.nodes for a in nameservers(plan, node)[0]})
    if dns:
        resolver = [
            *wrap(
                f"`resolvectl dns` lists {', '.join(dns)} on the node-ip NIC (the netplan "
                "file's nameservers: its comment says where they come from); without DNS "
                "RKE2's install script and image pulls fail.",
                width=90,
            ),
            "",
            *_code("resolvectl dns"),
        ]
    else:
        resolver = [
            *wrap(
                "The files set no nameservers (the node-ip network has no gateway and no "
                "nameservers in the lab file): keep the nameservers your other netplan files "
                "give, or RKE2's install script and image pulls fail.",
                width=90,
            ),
            "",
        ]
    return [
        "## 1. The network of every node",
        "",
        "On each node (its NICs named as in the table above):",
        "",
        *_code(
            "sudo install -m 600 nodes/<node>/etc/netplan/60-multihome.yaml /etc/netplan/",
            "sudo netplan apply",
            "ip -br addr",
        ),
        "The node-ip NIC has its address; the other NICs are UP without an address (pods",
        "get theirs through Multus) and `optional: true`, so boot does not wait for them.",
        "",
        *resolver,
    ]


def rke2_readme(plan: Plan, token: Token | None) -> str:
    """README for ``--target rke2``."""
    cluster = plan.cluster
    first = plan.node(cluster.bootstrap_server)
    others = [n for n in plan.servers if not n.bootstrap]
    agents = list(plan.agents)
    version = cluster.version or "(the lab names no version: the latest stable)"
    lines = [
        f"# {plan.name}: files for a real RKE2 cluster",
        "",
        f"Rendered by `multihome render` from the lab `{plan.name}`: RKE2 {version}, "
        f"CNI {', '.join(cluster.cni)}.",
        "",
        *_files_table(_file_rows(plan, rancher=False)),
        *_nodes_table(plan),
    ]
    if token is None:
        lines += [
            "**No token was given.** The first server makes one; the other nodes' config.yaml",
            "have a `TOKEN NOT SET` comment where it goes (step 2 says how to get it).",
            "",
        ]
    else:
        lines += [
            "Every config.yaml holds the cluster token: keep this directory private and out",
            "of version control.",
            "",
        ]
    lines += _netplan_step(plan)
    lines += [f"## 2. The first server: {first.name}", "", *_code(*_node_steps(first, plan))]
    lines += [*GET_NODES, f"`{first.name}` is `Ready` with INTERNAL-IP `{first.node_ip}`.", ""]
    if token is None:
        lines += [
            "Its token, for every other node's config.yaml (`token: <value>`):",
            "",
            *_code("sudo cat /var/lib/rancher/rke2/server/node-token"),
        ]
    step = 3
    if others:
        lines += [f"## {step}. The other servers, one at a time", ""]
        for node in others:
            lines += [f"On {node.name}:", "", *_code(*_node_steps(node, plan))]
        lines += ["Wait for each to be `Ready` (`kubectl get nodes`) before the next.", ""]
        step += 1
    if agents:
        lines += [f"## {step}. The agents", ""]
        for node in agents:
            lines += [f"On {node.name}:", "", *_code(*_node_steps(node, plan))]
        step += 1
    lines += [f"## {step}. Check the cluster network", "", *_nodes_check(plan), *_canal_check(plan)]
    lines += _dhcp_check(plan, rancher=False)
    lines += _manifests_step(plan, step + 1)
    lines += _longhorn(plan)
    return "\n".join(lines).rstrip("\n") + "\n"


def rancher_readme(plan: Plan) -> str:
    """README for ``--target rancher``."""
    cluster = plan.cluster
    lines = [
        f"# {plan.name}: a Rancher-provisioned RKE2 cluster",
        "",
        f"Rendered by `multihome render --target rancher` from the lab `{plan.name}`.",
        "",
        *_files_table(_file_rows(plan, rancher=True)),
        *_nodes_table(plan),
        *_netplan_step(plan),
        "## 2. The cluster in Rancher",
        "",
        *_code("kubectl apply -f rancher/cluster.yaml   # against Rancher's local cluster"),
        f"Or in the UI: Container Network `{','.join(cluster.cni)}`, and under Add-On Config",
        "the rke2-canal / rke2-multus values that `rancher/cluster.yaml` holds in",
        "`spec.rkeConfig.chartValues`.",
        "",
        "## 3. The nodes",
        "",
        "On each node, first its node-ip, then the registration command that Rancher shows",
        "for the cluster, with the node's roles and address:",
        "",
        *_code(
            "sudo mkdir -p /etc/rancher/rke2",
            "sudo install -m 600 nodes/<node>/etc/rancher/rke2/config.yaml /etc/rancher/rke2/",
        ),
        "| node | add to the registration command |",
        "|---|---|",
        *[f"| {n.name} | `{registration_flags(n)}` |" for n in plan.nodes],
        "",
        "`--internal-address` is Rancher's own way to pin the node's address: Rancher writes it",
        "as `node-ip` into `/etc/rancher/rke2/config.yaml.d/50-rancher.yaml` and keeps the",
        "`config.yaml` above, so the two say the same and either alone is enough. (`--address`",
        "would set `node-external-ip` too; these nodes have no other address to give.)",
        "",
        "## 4. Check the cluster network",
        "",
        *_nodes_check(plan),
        *_canal_check(plan),
        *_dhcp_check(plan, rancher=True),
        *_manifests_step(plan, 5),
        *_longhorn(plan),
    ]
    return "\n".join(lines).rstrip("\n") + "\n"
