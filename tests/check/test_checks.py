"""Each design check trips on a realistic mistake (a mutation of the seed design or a small
lab) and stays quiet on the seed and the examples."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_trunk_checks import CASES as TRUNK_CASES
from test_whereabouts_checks import CASES as WHEREABOUTS_CASES

from multihome.check import CHECKS, Severity, run_checks
from multihome.cni import installed
from multihome.spec import load_lab, load_lab_text, seed_path

SEED = seed_path().read_text()
CHECK_SOURCES = sorted((Path(__file__).parents[2] / "multihome" / "check").glob("*.py"))
EXAMPLES = sorted((Path(__file__).parents[2] / "multihome" / "examples").glob("*.yaml"))

NAD_TOOLS = """---
apiVersion: v1
kind: Pod
metadata:
  name: tools2
  namespace: multus-network-attachments
  annotations:
    k8s.v1.cni.cncf.io/networks: {annotation}
spec:
  containers: [{{name: c, image: ubuntu}}]
"""


def extra_pod(annotation: str) -> str:
    return SEED + NAD_TOOLS.format(annotation=annotation)


def extra_nad(name: str, config: str, namespace: str = "multus-network-attachments") -> str:
    return (
        SEED
        + f"""---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  config: '{config}'
"""
    )


def replace(old: str, new: str, count: int = 1) -> str:
    assert old in SEED, old
    return SEED.replace(old, new, count)


WRK1 = "    - name: multi-homed-wrk-1\n      role: agent\n      nodeIP: 172.16.40.47\n"
MACVLAN = '{{"cniVersion":"0.3.1","type":"macvlan","master":"{master}",{extra}"ipam":{ipam}}}'


def macvlan(master: str = "ens224", ipam: str = '{"type":"dhcp"}', extra: str = "") -> str:
    return MACVLAN.format(master=master, ipam=ipam, extra=extra)


# (finding id, lab text, a fragment the message must contain)
CASES: list[tuple[str, str, str]] = [
    ("lab-name-invalid", replace("name: multi-homed\n", "name: Multi_Homed\n"), "Multi_Homed"),
    ("network-name-invalid", replace("- name: vlan40", "- name: VLAN40"), "VLAN40"),
    ("network-duplicate", replace("- name: vlan60\n", "- name: vlan50\n"), "vlan50"),
    ("node-name-invalid", replace("name: multi-homed-wrk-3", "name: Wrk_3"), "Wrk_3"),
    ("machine-duplicate", replace("name: multi-homed-wrk-3", "name: multi-homed-wrk-2"), "wrk-2"),
    ("no-server", SEED.replace("role: server", "role: agent"), "no server"),
    (
        "nic-name-invalid",
        replace("{name: ens256, network: vlan60}", "{name: ens256-storage-nic, network: vlan60}"),
        "at most 15",
    ),
    (
        "nic-duplicate",
        replace("{name: ens224, network: vlan50}", "{name: ens192, network: vlan50}"),
        "two NICs",
    ),
    (
        "nic-network-unknown",
        replace("{name: ens256, network: vlan60}", "{name: ens256, network: vlan61}"),
        "vlan61",
    ),
    (
        "node-ip-missing",
        replace(
            "{name: ens192, network: vlan40, address: 172.16.40.46}",
            "{name: ens192, network: vlan40}",
        ),
        "cpl-1",
    ),
    (
        "node-ip-not-on-nic",
        replace("nodeIP: 172.16.40.47", "nodeIP: 172.16.40.147"),
        "172.16.40.147",
    ),
    (
        "node-ip-network",
        replace(
            "nodeIP: 172.16.40.47\n      nics:\n        - {name: ens192, network: vlan40, address: 172.16.40.47}\n        - {name: ens224, network: vlan50}",
            "nodeIP: 172.16.50.7\n      nics:\n        - {name: ens192, network: vlan40, address: 172.16.40.47}\n        - {name: ens224, network: vlan50, address: 172.16.50.7}",
        ),
        "vlan50",
    ),
    ("node-ip-duplicate", SEED.replace("172.16.40.48", "172.16.40.47"), "172.16.40.47"),
    (
        "address-outside-subnet",
        replace("address: 172.16.60.31", "address: 172.16.61.31"),
        "172.16.61.31",
    ),
    (
        "address-in-dhcp-range",
        replace("address: 172.16.60.31", "address: 172.16.60.40"),
        "DHCP range",
    ),
    ("address-reserved", replace("address: 172.16.60.31", "address: 172.16.60.255"), "broadcast"),
    (
        "address-duplicate",
        replace(
            "address: 172.16.60.31}",
            "address: 172.16.60.31}\n    - name: web2\n      nics:\n        - {name: eth0, network: vlan60, address: 172.16.60.31}",
        ),
        "already",
    ),
    ("subnet-overlap", replace("subnet: 172.16.60.0/24", "subnet: 172.16.0.0/16"), "overlaps"),
    (
        "subnet-overlap",
        replace("clusterCIDR: 10.42.0.0/16", "clusterCIDR: 172.16.0.0/12"),
        "clusterCIDR",
    ),
    (
        "gateway-outside-subnet",
        replace("gateway: 172.16.40.1", "gateway: 172.16.41.1"),
        "172.16.41.1",
    ),
    (
        "dhcp-range-outside-subnet",
        replace("range: 172.16.50.30-172.16.50.99", "range: 172.16.50.30-172.16.51.99"),
        "not inside",
    ),
    (
        "dhcp-range-reversed",
        replace("range: 172.16.50.30-172.16.50.99", "range: 172.16.50.99-172.16.50.30"),
        "ends before",
    ),
    ("dhcp-router-without-gateway", replace("router: false", "router: true"), "no gateway"),
    (
        "network-unused",
        replace("  nodes:\n", "    - {name: vlan70, subnet: 172.16.70.0/24}\n\n  nodes:\n"),
        "vlan70",
    ),
    (
        "address-is-gateway",
        replace("address: 172.16.40.47}", "address: 172.16.40.1}").replace(
            "nodeIP: 172.16.40.47", "nodeIP: 172.16.40.1"
        ),
        "gateway",
    ),
    (
        "dhcp-range-reserved",
        replace("range: 172.16.50.30-172.16.50.99", "range: 172.16.50.0-172.16.50.99"),
        "network or broadcast",
    ),
    (
        "dhcp-server-address",
        replace("        router: false\n", "        router: false\n        server: 172.16.50.40\n"),
        "172.16.50.40",
    ),
    (
        "nic-none",
        replace(
            "      nics:\n        - {name: eth0, network: vlan60, address: 172.16.60.31}",
            "      nics: []",
        ),
        "no NICs",
    ),
    ("host-name-invalid", replace("    - name: web\n", "    - name: Web_1\n"), "Web_1"),
    ("cni-none-combined", replace("cni: [multus, canal]", "cni: [none, canal]"), "none"),
    (
        "cni-primary-emulated-as-canal",
        replace("cni: [multus, canal]", "cni: [multus, cilium]"),
        "cilium",
    ),
    (
        "no-nodes",
        "apiVersion: multihome.dev/v1alpha1\nkind: Lab\nmetadata: {name: empty}\nspec:\n  networks: [{name: n1, subnet: 10.0.0.0/24}]\n  nodes: []\n",
        "no nodes",
    ),
    ("cni-multus-not-first", replace("cni: [multus, canal]", "cni: [canal, multus]"), "first"),
    ("cni-no-primary", replace("cni: [multus, canal]", "cni: [multus]"), "primary"),
    (
        "cni-too-many",
        replace("cni: [multus, canal]", "cni: [multus, canal, calico]"),
        "at most two",
    ),
    ("cni-multus-missing", replace("cni: [multus, canal]", "cni: [canal]"), "multus"),
    (
        "canal-iface-missing",
        replace("      iface: ens192\n", "      iface: ens224\n"),
        "multi-homed-cpl-1",
    ),
    ("canal-iface-network", replace("      iface: ens192\n", "      iface: ens224\n"), "rke2#1353"),
    (
        "canal-iface-unset",
        replace("    canal:\n      iface: ens192\n", "    canal:\n"),
        "rke2#1353",
    ),
    (
        "canal-no-default-route",
        replace(
            "      subnet: 172.16.40.0/24\n      gateway: 172.16.40.1\n",
            "      subnet: 172.16.40.0/24\n",
        ),
        "169.254.1.1",
    ),
    ("nad-name-invalid", extra_nad("bad.name", macvlan()), "Multus reads NAD names"),
    ("object-name-invalid", extra_nad("Bad_Name", macvlan()), "RFC 1123 subdomain"),
    (
        "object-name-invalid",
        extra_pod("macvlan-private-dhcp").replace("name: tools2", 'name: "../../x"'),
        'Pod "../../x" is invalid: metadata.name: Invalid value',
    ),
    (
        "label-invalid",
        extra_pod("macvlan-private-dhcp").replace(
            "  annotations:", "  labels: {a/b/c: x}\n  annotations:"
        ),
        "a qualified name must consist",
    ),
    (
        "annotation-key-invalid",
        extra_pod("macvlan-private-dhcp").replace("  annotations:", "  annotations:\n    -x: y"),
        "name part must consist",
    ),
    (
        "container-name-invalid",
        extra_pod("macvlan-private-dhcp").replace("name: c,", "name: Main,"),
        "RFC 1123 label",
    ),
    ("nad-config-invalid", extra_nad("broken", '{"type": "macvlan",'), "not valid JSON"),
    ("nad-cniversion-missing", extra_nad("noversion", '{"type": "macvlan"}'), "0.1.0 result"),
    (
        "nad-plugin-unknown",
        extra_nad("weird", macvlan().replace("macvlan", "macvlna")),
        "macvlan'?",
    ),
    ("nad-ipam-unknown", extra_nad("weird", macvlan(ipam='{"type":"dhpc"}')), "'dhcp'?"),
    (
        "nad-plugin-not-emulated",
        extra_nad("vf", '{"cniVersion":"0.3.1","type":"sriov"}').replace(
            "networks: multus-network-attachments/macvlan-longhorn-dhcp,",
            "networks: multus-network-attachments/vf,",
        ),
        "SR-IOV",
    ),
    (
        "nad-plugin-not-emulated-unused",
        extra_nad("vf", '{"cniVersion":"0.3.1","type":"sriov"}'),
        "no pod uses it",
    ),
    (
        "nad-master-unset",
        extra_nad("nomaster", '{"cniVersion":"0.3.1","type":"macvlan","ipam":{"type":"dhcp"}}'),
        "default-route interface",
    ),
    (
        "nad-master-missing",
        replace(
            "        - {name: ens256, network: vlan60}\n    - name: multi-homed-wrk-2",
            "    - name: multi-homed-wrk-2",
        ),
        "multi-homed-wrk-1",
    ),
    ("nad-mtu-too-big", extra_nad("jumbo", macvlan(extra='"mtu":9000,')), "9000"),
    (
        "nad-dhcp-no-server",
        replace(
            "      dhcp:\n        range: 172.16.60.32-172.16.60.99\n        leaseTime: 1h\n        router: false\n",
            "",
        ),
        "vlan60",
    ),
    (
        "nad-host-local-shared",
        extra_nad("hl", macvlan(ipam='{"type":"host-local","subnet":"172.16.50.0/24"}')),
        "multus-cni#640",
    ),
    (
        "nad-bridge-unconnected",
        extra_nad(
            "br", '{"cniVersion":"0.3.1","type":"bridge","bridge":"br9","ipam":{"type":"dhcp"}}'
        ),
        "br9",
    ),
    (
        "dhcp-second-default-route",
        replace("router: false", "router: true").replace(
            "      dhcp:\n        range: 172.16.50.30",
            "      gateway: 172.16.50.1\n      dhcp:\n        range: 172.16.50.30",
        ),
        "multus-cni#786",
    ),
    (
        "pod-selection-key-unknown",
        extra_pod('\'[{"name":"macvlan-longhorn-dhcp","defaultroute":["172.16.50.1"]}]\''),
        'did you mean "default-route"?',
    ),
    (
        "nad-ipam-address-invalid",
        extra_nad(
            "hl",
            macvlan(
                ipam='{"type":"host-local","subnet":"10.22.100.0/24","rangeStart":"10.22.100.36.200"}'
            ),
        ),
        "ipam.rangeStart '10.22.100.36.200' is not an IP address",
    ),
    (
        "nad-ipvlan-dhcp",
        extra_nad(
            "ipv", '{"cniVersion":"0.3.1","type":"ipvlan","master":"ens224","ipam":{"type":"dhcp"}}'
        ),
        "containernetworking/cni#17",
    ),
    (
        "nad-dhcp-no-uplink",
        extra_nad(
            "br", '{"cniVersion":"0.3.1","type":"bridge","bridge":"br9","ipam":{"type":"dhcp"}}'
        ),
        "bridge br9 has no NIC (uplink)",
    ),
    (
        "nad-dhcp-no-uplink",
        extra_nad(
            "v77",
            '{"cniVersion":"0.3.1","type":"vlan","master":"ens224","vlanId":77,"ipam":{"type":"dhcp"}}',
        ),
        "no network of the lab is VLAN 77",
    ),
    ("pod-annotation-invalid", extra_pod("'a/b/macvlan-longhorn-dhcp'"), "invalid"),
    ("pod-annotation-invalid", extra_pod("'[{\"name\": 5}]'"), "invalid"),
    ("pod-network-unknown", extra_pod("macvlan-storage"), "macvlan-storage"),
    ("pod-network-unknown", extra_pod("default/macvlan-longhorn-dhcp"), "did you mean"),
    ("pod-network-unknown", extra_pod('\'[{"name":"Macvlan-Longhorn-DHCP"}]\''), "lower case"),
    ("pod-network-name-empty", extra_pod("'macvlan-longhorn-dhcp,,macvlan-private-dhcp'"), "a,,b"),
    ("pod-network-name-empty", extra_pod("' '"), "resource name may not be empty"),
    ("pod-interface-invalid", extra_pod("macvlan-longhorn-dhcp@lh:1"), "'lh:1'"),
    (
        "pod-interface-invalid",
        extra_pod('\'[{"name":"macvlan-longhorn-dhcp","interface":"a/b"}]\''),
        "passes Multus's parser",
    ),
    (
        "pod-default-route-empty",
        extra_pod('\'[{"name":"macvlan-longhorn-dhcp","default-route":[null]}]\''),
        "Gw must not be nil",
    ),
    (
        "pod-port-mapping-null",
        extra_pod('\'[{"name":"macvlan-longhorn-dhcp","portMappings":[null]}]\''),
        "null",
    ),
    ("pod-ifname-clash", extra_pod("macvlan-longhorn-dhcp@net2,macvlan-private-dhcp"), "net2"),
    ("pod-ifname-clash", extra_pod("macvlan-longhorn-dhcp@eth0"), "eth0"),
    (
        "pod-default-route-twice",
        extra_pod(
            '\'[{"name":"macvlan-longhorn-dhcp","default-route":["172.16.50.1"]},{"name":"macvlan-private-dhcp","default-route":["172.16.60.1"]}]\''
        ),
        "more than one",
    ),
    (
        "pod-node-unknown",
        replace(
            "  containers:\n  - name: samplepod",
            "  nodeName: nope\n  containers:\n  - name: samplepod",
        ),
        "nope",
    ),
    (
        "pod-on-server",
        replace(
            "  containers:\n  - name: samplepod",
            "  nodeName: multi-homed-cpl-1\n  containers:\n  - name: samplepod",
        ),
        "servers run no workloads",
    ),
    (
        "pod-unschedulable",
        replace(
            "  containers:\n  - name: samplepod",
            "  nodeSelector: {disk: ssd}\n  containers:\n  - name: samplepod",
        ),
        "fits no node",
    ),
    (
        "pod-on-server",
        replace(
            "  containers:\n  - name: samplepod",
            "  nodeSelector: {node-role.kubernetes.io/etcd: 'true'}\n  tolerations: [{operator: Exists}]\n  containers:\n  - name: samplepod",
        ),
        "only run on servers",
    ),
    (
        "namespace-missing",
        replace(
            "namespace: multus-network-attachments\n  annotations",
            "namespace: tools\n  annotations",
        ),
        "tools",
    ),
    (
        "workload-annotation-not-in-template",
        SEED
        + """---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: multus-network-attachments
  annotations: {k8s.v1.cni.cncf.io/networks: macvlan-private-dhcp}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec: {containers: [{name: c, image: nginx}]}
""",
        "multus-cni#308",
    ),
    (
        "longhorn-network-format",
        replace(
            "storageNetwork: multus-network-attachments/macvlan-longhorn-dhcp",
            "storageNetwork: macvlan-longhorn-dhcp",
        ).replace(
            "value: multus-network-attachments/macvlan-longhorn-dhcp",
            "value: macvlan-longhorn-dhcp",
        ),
        "namespace/name",
    ),
    (
        "longhorn-network-unknown",
        SEED.replace(
            "multus-network-attachments/macvlan-longhorn-dhcp\n",
            "multus-network-attachments/storage\n",
        ),
        "not a Network",
    ),
    (
        "longhorn-setting-mismatch",
        replace(
            "value: multus-network-attachments/macvlan-longhorn-dhcp",
            "value: multus-network-attachments/macvlan-private-dhcp",
        ),
        "storage-network",
    ),
    (
        "longhorn-master-missing",
        replace("        - {name: ens224, network: vlan50}\n", ""),
        "multi-homed-wrk-1",
    ),
    (
        "longhorn-ipam-not-unique",
        extra_nad("lh-hl", macvlan(ipam='{"type":"host-local","subnet":"172.16.50.0/24"}')).replace(
            "multus-network-attachments/macvlan-longhorn-dhcp\n",
            "multus-network-attachments/lh-hl\n",
        ),
        "host-local",
    ),
    (
        "longhorn-on-management-network",
        SEED.replace('"master": "ens224"', '"master": "ens192"'),
        "management network",
    ),
    (
        "expect-unknown-source",
        replace(
            "from: multus-network-attachments/net-tools",
            "from: multus-network-attachments/nettools",
        ),
        "nettools",
    ),
    ("expect-unknown-target", replace('to: "172.16.60.31:80"', "to: nginx"), "nginx"),
    ("expect-port-range", replace('to: "172.16.60.31:80"', 'to: "172.16.60.31:99999"'), "99999"),
    (
        "expect-port-missing",
        replace('to: "172.16.60.31:80"\n      proto: http', 'to: "172.16.60.31"\n      proto: tcp'),
        "port",
    ),
    (
        "expect-unknown-via",
        replace("      proto: http\n", "      proto: http\n      via: vlan99\n"),
        "vlan99",
    ),
    (
        "expect-macvlan-parent",
        replace(
            "      result: allow\n",
            "      result: allow\n    - {from: multi-homed-wrk-1, to: multus-network-attachments/net-tools, via: net2}\n",
        ),
        "multus-cni#691",
    ),
    (
        "cni-unsupported-version",
        replace("cni: [multus, canal]", "cni: [multus, flannel]"),
        "v1.29.2",
    ),
    ("rke2-dhcp-daemon-missing", SEED, "v3.9.3-build2023010902"),
    (
        "rke2-dhcp-daemon-untolerated",
        replace("version: v1.25.9+rke2r1", "version: v1.28.6+rke2r1")
        .replace(
            "    - name: multi-homed-wrk-3\n      role: agent\n",
            "    - name: multi-homed-wrk-3\n      role: agent\n"
            "      taints: [{key: dedicated, effect: NoSchedule}]\n",
        )
        .replace(
            "spec:\n  containers:\n  - name: samplepod\n",
            "spec:\n  nodeName: multi-homed-wrk-3\n  tolerations: [{key: dedicated, "
            "operator: Exists}]\n  containers:\n  - name: samplepod\n",
        ),
        "tainted node multi-homed-wrk-3",
    ),
]


def _ids(text: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for f in run_checks(load_lab_text(text, "lab.yaml")):
        found.setdefault(f.id, []).append(f"{f.message} (fix: {f.fix})")
    return found


CASES += WHEREABOUTS_CASES  # on its own lab (tests/check/test_whereabouts_checks.py)
_PLUGINS = installed.release()
if _PLUGINS is not None and not _PLUGINS.at_least(installed.BRIDGE_VLAN_TRUNK):
    # trips only with plugins older than vlanTrunk, such as Debian's 1.1.1 (this machine's)
    CASES.append(
        (
            "nad-bridge-vlantrunk-ignored",
            extra_nad("bt", '{"cniVersion":"0.3.1","type":"bridge","vlanTrunk":[{"id":5}]}'),
            "older than vlanTrunk (v1.3.0)",
        )
    )
CASES += TRUNK_CASES  # on the trunk lab (tests/check/test_trunk_checks.py)


@pytest.mark.parametrize(("check_id", "text", "fragment"), CASES, ids=[c[0] for c in CASES])
def test_check_trips(check_id: str, text: str, fragment: str) -> None:
    found = _ids(text)
    assert check_id in found, f"{check_id} not raised; got {found}"
    assert any(fragment in m for m in found[check_id]), found[check_id]


def test_seed_design_has_no_findings() -> None:
    """The passing fixture of every check: the seed design is clean, but for the dhcp daemon
    that RKE2 v1.25.9's rke2-multus chart can't start (render writes one of its own)."""
    assert [f.id for f in run_checks(load_lab())] == ["rke2-dhcp-daemon-missing"]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_have_no_errors(path: Path) -> None:
    findings = run_checks(load_lab(path))
    assert [f for f in findings if f.severity is Severity.ERROR] == []


def test_every_finding_id_has_a_tripping_case() -> None:
    """Every finding id written in the check modules is tripped by a case above."""
    source = "\n".join(p.read_text() for p in CHECK_SOURCES)
    ids = set(re.findall(r'ctx\.(?:error|warning)\(\s*"([a-z0-9-]+)"', source))
    ids |= {f"{kind}-name-invalid" for kind in ("node", "host")}
    assert len(ids) > 50 and len(CHECKS) >= 20
    if _PLUGINS is None or _PLUGINS.at_least(installed.BRIDGE_VLAN_TRUNK):
        ids.discard("nad-bridge-vlantrunk-ignored")  # these plugins read vlanTrunk
    assert ids - {c[0] for c in CASES} == set()


def test_findings_point_at_the_line() -> None:
    text = replace("      iface: ens192\n", "      iface: ens224\n")
    finding = next(
        f for f in run_checks(load_lab_text(text, "lab.yaml")) if f.id == "canal-iface-network"
    )
    assert finding.location is not None
    line = text.splitlines()[finding.location.line - 1]
    assert "iface: ens224" in line
    assert finding.location.file == "lab.yaml"


def test_nad_master_finding_points_at_the_config() -> None:
    text = replace(
        "        - {name: ens256, network: vlan60}\n    - name: multi-homed-wrk-2",
        "    - name: multi-homed-wrk-2",
    )
    finding = next(
        f for f in run_checks(load_lab_text(text, "lab.yaml")) if f.id == "nad-master-missing"
    )
    assert finding.location is not None
    assert "config:" in text.splitlines()[finding.location.line - 1]
    assert "macvlan-private-dhcp" in finding.message and "multi-homed-wrk-1" in finding.message
    assert "multi-homed-wrk-2" not in finding.message
