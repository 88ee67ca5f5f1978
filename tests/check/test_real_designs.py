"""What validate lets through in real designs (issue 11.5, 11.6): plugins the lab can't run,
unknown selection keys, IPAM addresses the plugins can't decode (checked against the real
host-local and static plugins), ipvlan with DHCP, DHCP without an uplink, and the VLAN a
``vlan`` plugin NAD's pods land on."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from kernel import CNI_BIN_DIR
from typer.testing import CliRunner

from multihome.check import Finding, Kind, Severity, run_checks
from multihome.check.ipam import SHAPES
from multihome.cli import app
from multihome.spec import load_lab_text, seed_path

SEED = seed_path().read_text()
NS = "multus-network-attachments"
POD = f"""---
apiVersion: v1
kind: Pod
metadata:
  name: tools2
  namespace: {NS}
  annotations:
    k8s.v1.cni.cncf.io/networks: '{{annotation}}'
spec:
  containers: [{{{{name: c, image: ubuntu}}}}]
"""


def nad(name: str, config: dict[str, object] | str) -> str:
    text = config if isinstance(config, str) else json.dumps(config)
    return f"""---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata: {{name: {name}, namespace: {NS}}}
spec:
  config: '{text}'
"""


def pod(annotation: str) -> str:
    return POD.format(annotation=annotation)


def findings(*docs: str, base: str = SEED) -> list[Finding]:
    return run_checks(load_lab_text(base + "".join(docs), "lab.yaml", seed_path().parent))


def of(found: list[Finding], check_id: str) -> list[Finding]:
    return [f for f in found if f.id == check_id]


# -- plugins the lab can't run ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"cniVersion": "0.3.1", "type": "sriov", "vlan": 5}, "SR-IOV needs virtual functions"),
        ({"cniVersion": "0.3.1", "type": "ovs", "bridge": "br1"}, "Open vSwitch"),
        (
            {"cniVersion": "0.3.1", "type": "flannel", "delegate": {"isDefaultGateway": False}},
            "flannel as a NAD's delegate",
        ),
        (
            {"cniVersion": "0.3.1", "type": "calico", "ipam": {"type": "host-local"}},
            "would replace eth0's",
        ),
        (
            {
                "cniVersion": "0.3.1",
                "type": "macvlan",
                "master": "ens224",
                "ipam": {"type": "calico-ipam"},
            },
            "Calico's IPAM",
        ),
        ({"cniVersion": "0.3.1", "type": "my-own-cni"}, "no 'my-own-cni' in the lab nodes'"),
    ],
)
def test_a_plugin_the_lab_does_not_emulate_is_a_warning_that_refuses_up(
    config: dict[str, object], words: str
) -> None:
    found = findings(nad("other", config), pod(f"{NS}/other"))
    ours = of(found, "nad-plugin-not-emulated")
    assert len(ours) == 1, found
    finding = ours[0]
    assert finding.severity is Severity.WARNING and finding.kind is Kind.REFUSED
    assert words in finding.message
    assert "A real cluster with it installed may run this design; the lab can't" in finding.message
    assert f"Pod {NS}/tools2" in finding.message
    assert not [f for f in found if f.severity is Severity.ERROR], found


def test_the_lab_nodes_bin_dir_has_every_plugin_validate_lets_up_build() -> None:
    """LAB_PLUGINS is what the nodes' /opt/cni/bin holds: the reference plugins installed
    here (the lab's own whereabouts aside)."""
    from multihome.check.plugins import REFERENCE_PLUGINS

    if not os.path.isdir(CNI_BIN_DIR):
        pytest.skip("containernetworking-plugins not installed")
    assert set(os.listdir(CNI_BIN_DIR)) >= REFERENCE_PLUGINS


def test_an_unused_nad_with_such_a_plugin_runs() -> None:
    found = findings(nad("vf", {"cniVersion": "0.3.1", "type": "sriov"}))
    (finding,) = of(found, "nad-plugin-not-emulated-unused")
    assert finding.kind is Kind.RUNS
    assert not of(found, "nad-plugin-not-emulated")


def test_validate_passes_and_up_refuses_a_design_the_lab_cannot_emulate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state = tmp_path / "state"
    monkeypatch.setenv("MULTIHOME_STATE_DIR", str(state))
    path = tmp_path / "sriov.yaml"
    text = SEED.replace("name: multi-homed\n", "name: mh-sriov\n", 1)
    path.write_text(text + nad("vf", {"cniVersion": "0.3.1", "type": "sriov"}) + pod(f"{NS}/vf"))
    runner = CliRunner()
    checked = runner.invoke(app, ["validate", str(path), "-o", "json"])
    assert checked.exit_code == 0, checked.output
    doc = json.loads(checked.stdout)
    (entry,) = [f for f in doc["findings"] if f["id"] == "nad-plugin-not-emulated"]
    assert entry["severity"] == "warning" and entry["kind"] == "refused"
    built = runner.invoke(app, ["up", str(path)])
    assert built.exit_code == 1, built.output
    assert "not built: the lab can't emulate this design (a real cluster may run it)" in (
        built.stderr
    )
    assert "[nad-plugin-not-emulated]" in built.stdout
    assert "failed to find plugin" not in built.output
    assert not state.exists() or not any(state.iterdir())


def test_a_typo_of_a_plugin_is_an_error_with_did_you_mean() -> None:
    found = findings(nad("t", {"cniVersion": "0.3.1", "type": "ipvlna", "master": "ens224"}))
    (finding,) = of(found, "nad-plugin-unknown")
    assert "did you mean 'ipvlan'?" in finding.message and finding.kind is Kind.REFUSED
    assert not of(found, "nad-plugin-not-emulated-unused")


# -- unknown keys in a selection element -----------------------------------------------------


@pytest.mark.parametrize(
    ("key", "meant"),
    [
        ("defaultroute", "default-route"),
        ("default_route", "default-route"),
        ("gateway", "default-route"),
        ("interfaceName", "interface"),
        ("ifname", "interface"),
        ("ip", "ips"),
        ("macAddress", "mac"),
        ("cniArgs", "cni-args"),
    ],
)
def test_an_unknown_selection_key_warns_with_did_you_mean(key: str, meant: str) -> None:
    element = json.dumps([{"name": "macvlan-longhorn-dhcp", key: "x"}])
    found = findings(pod(element))
    (finding,) = of(found, "pod-selection-key-unknown")
    assert finding.kind is Kind.RUNS
    assert f"has the key {key!r}, which Multus does not know" in finding.message
    assert f'did you mean "{meant}"?' in finding.fix


def test_selection_keys_match_in_any_case_as_gos_decoder_does() -> None:
    element = '[{"Name": "macvlan-longhorn-dhcp", "INTERFACE": "lh0", "Default-Route": []}]'
    assert of(findings(pod(element)), "pod-selection-key-unknown") == []


def test_the_text_form_and_a_failed_parse_say_nothing_of_keys() -> None:
    assert of(findings(pod("macvlan-longhorn-dhcp@lh0")), "pod-selection-key-unknown") == []
    found = findings(pod('[{"name": "macvlan-longhorn-dhcp", "mac": "zz", "gw": "1"}]'))
    assert of(found, "pod-annotation-invalid") and not of(found, "pod-selection-key-unknown")


# -- IPAM addresses, judged as the real plugins judge them -----------------------------------

HOST_LOCAL_OK = [
    {"subnet": "10.22.100.0/24"},
    {"subnet": "10.22.100.0/24", "rangeStart": "10.22.100.200", "gateway": ""},
    {"subnet": "fd00::/64", "gateway": "fd00::1", "routes": [{"dst": "::/0"}]},
    {"ranges": [[{"subnet": "10.22.101.0/24", "rangeEnd": "10.22.101.9"}]]},
    {"subnet": "10.22.100.0/24", "routes": [{"dst": "0.0.0.0/0", "gw": "10.22.100.1"}]},
]
HOST_LOCAL_BAD = [
    ({"subnet": "10.22.100.0/24", "rangeStart": "10.22.100.36.200"}, "ipam.rangeStart"),
    ({"subnet": "10.22.100.0/24", "gateway": "<gateway>"}, "ipam.gateway"),
    ({"subnet": "10.22.100.0/24", "Gateway": "10.22.100.1/24"}, "ipam.Gateway"),
    ({"subnet": "10.22.100.0"}, "ipam.subnet"),
    ({"subnet": "10.22.100.0/24", "routes": [{"dst": "0.0.0.0"}]}, "ipam.routes[0].dst"),
    ({"subnet": "10.22.100.0/24", "routes": [{"dst": "0.0.0.0/0", "gw": "gw"}]}, "routes[0].gw"),
    ({"ranges": [[{"subnet": "10.22.101.0/24", "rangeEnd": 9}]]}, "ipam.ranges[0][0].rangeEnd"),
    ({"ranges": [[{"subnet": "10.22.101.0/33"}]]}, "ipam.ranges[0][0].subnet"),
]
STATIC_OK = [
    {"addresses": [{"address": "10.1.1.5/24", "gateway": "10.1.1.1"}]},
    {"addresses": [{"address": "fd00::5/64"}], "routes": [{"dst": "0.0.0.0/0"}]},
]
STATIC_BAD = [
    ({"addresses": [{"address": "10.1.1.5"}]}, "ipam.addresses[0].address"),
    ({"addresses": [{"address": "10.1.1.5/24", "gateway": "10.1.1"}]}, "addresses[0].gateway"),
    ({"addresses": [{"address": "10.1.1.5/24"}], "routes": [{"dst": "x/8"}]}, "routes[0].dst"),
]


def _macvlan(ipam_type: str, ipam: dict[str, object]) -> dict[str, object]:
    return {
        "cniVersion": "0.3.1",
        "type": "macvlan",
        "master": "ens224",
        "ipam": {"type": ipam_type, **ipam},
    }


def _invalid(ipam_type: str, ipam: dict[str, object]) -> list[Finding]:
    return of(findings(nad("addr", _macvlan(ipam_type, ipam))), "nad-ipam-address-invalid")


CASES_OK = [("host-local", c) for c in HOST_LOCAL_OK] + [("static", c) for c in STATIC_OK]
CASES_BAD = [("host-local", c, p) for c, p in HOST_LOCAL_BAD] + [
    ("static", c, p) for c, p in STATIC_BAD
]


@pytest.mark.parametrize(("ipam_type", "ipam"), CASES_OK)
def test_addresses_the_plugins_read_pass(ipam_type: str, ipam: dict[str, object]) -> None:
    assert _invalid(ipam_type, ipam) == []


@pytest.mark.parametrize(("ipam_type", "ipam", "path"), CASES_BAD)
def test_addresses_the_plugins_cannot_read_are_errors_at_the_config(
    ipam_type: str, ipam: dict[str, object], path: str
) -> None:
    found = _invalid(ipam_type, ipam)
    assert len(found) == 1, found
    assert path in found[0].message and found[0].kind is Kind.REFUSED
    assert found[0].location is not None and found[0].location.file == "lab.yaml"


def test_the_error_points_at_the_nads_config_line() -> None:
    text = SEED + nad("addr", _macvlan("host-local", {"subnet": "10.0.0.0/24", "gateway": "<gw>"}))
    (finding,) = of(run_checks(load_lab_text(text, "lab.yaml")), "nad-ipam-address-invalid")
    assert finding.location is not None
    assert "config: '" in text.splitlines()[finding.location.line - 1]
    assert "placeholder" in finding.message


def _run_ipam(ipam_type: str, ipam: dict[str, object], tmp_path: Path) -> tuple[int, str]:
    """The real IPAM plugin's ADD on this config (host-local's store in tmp_path; nothing in a
    namespace is touched: IPAM plugins only hand out addresses)."""
    conf = {"cniVersion": "0.3.1", "name": "addr", "type": "macvlan"}
    conf["ipam"] = {"type": ipam_type, **ipam, "dataDir": str(tmp_path / "store")}
    env = {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "validate11",
        "CNI_NETNS": "/proc/self/ns/net",
        "CNI_IFNAME": "net1",
        "CNI_PATH": CNI_BIN_DIR,
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
    }
    done = subprocess.run(
        [os.path.join(CNI_BIN_DIR, ipam_type)],
        input=json.dumps(conf),
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize(
    ("ipam_type", "ipam", "bad"),
    [(t, c, False) for t, c in CASES_OK] + [(t, c, True) for t, c, _ in CASES_BAD],
)
def test_validate_agrees_with_the_real_plugin(
    ipam_type: str, ipam: dict[str, object], bad: bool, tmp_path: Path
) -> None:
    if not os.path.exists(os.path.join(CNI_BIN_DIR, ipam_type)):
        pytest.skip(f"no {ipam_type} in {CNI_BIN_DIR}")
    code, said = _run_ipam(ipam_type, ipam, tmp_path)
    assert (code != 0) == bad, said
    assert bool(_invalid(ipam_type, ipam)) == bad


def test_shapes_cover_the_ipam_types_named_in_the_issue() -> None:
    assert set(SHAPES) == {"host-local", "static"}


# -- ipvlan with DHCP, DHCP without an uplink ------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "words"),
    [
        (None, "has ens224's MAC"),
        ("l2", "client id containerID/network/ifname"),
        ("l3", "in l3 mode ipvlan passes no broadcast"),
        ("l3s", "whatever the dhcp daemon's flags"),
    ],
)
def test_ipvlan_with_dhcp_is_an_error_saying_why(mode: str | None, words: str) -> None:
    config: dict[str, object] = {"cniVersion": "0.3.1", "type": "ipvlan", "master": "ens224"}
    if mode:
        config["mode"] = mode
    config["ipam"] = {"type": "dhcp"}
    (finding,) = of(findings(nad("ipv", config)), "nad-ipvlan-dhcp")
    assert finding.severity is Severity.ERROR and finding.kind is Kind.RUNS
    assert words in finding.message


def test_ipvlan_with_static_ipam_is_fine() -> None:
    config = {
        "cniVersion": "0.3.1",
        "type": "ipvlan",
        "master": "ens224",
        "ipam": {"type": "static", "addresses": [{"address": "172.16.50.5/24"}]},
    }
    assert of(findings(nad("ipv", config)), "nad-ipvlan-dhcp") == []


def test_dhcp_on_a_bridge_with_an_uplink_to_a_dhcp_network_is_fine() -> None:
    base = SEED.replace(
        "{name: ens224, network: vlan50}", "{name: ens224, network: vlan50, bridge: br50}"
    )
    config = {"cniVersion": "0.3.1", "type": "bridge", "bridge": "br50", "ipam": {"type": "dhcp"}}
    found = findings(nad("br", config), base=base)
    assert of(found, "nad-dhcp-no-uplink") == [] and of(found, "nad-dhcp-no-server") == []


def test_dhcp_on_a_bridge_without_uplink_is_an_error() -> None:
    config = {"cniVersion": "0.3.1", "type": "bridge", "bridge": "br9", "ipam": {"type": "dhcp"}}
    (finding,) = of(findings(nad("br", config)), "nad-dhcp-no-uplink")
    assert finding.severity is Severity.ERROR
    assert "multi-homed-wrk-1" in finding.message and "bridge: br9" in finding.fix


# -- the VLAN a vlan-plugin NAD's pods land on -----------------------------------------------


def _vlan(vid: int, ipam: dict[str, object], master: str = "ens224") -> dict[str, object]:
    return {"cniVersion": "0.3.1", "type": "vlan", "master": master, "vlanId": vid, "ipam": ipam}


def test_a_vlan_nads_warning_names_its_vlan_not_the_masters_network() -> None:
    ipam = {"type": "host-local", "subnet": "172.16.60.0/24", "rangeStart": "172.16.60.200"}
    (finding,) = of(findings(nad("v60", _vlan(60, ipam))), "nad-host-local-shared")
    assert "VLAN 60 (network vlan60, tagged on ens224)" in finding.message
    assert "vlan50" not in finding.message


def test_a_vlan_nad_on_a_vlan_the_lab_has_not_is_named_by_its_id() -> None:
    ipam = {"type": "host-local", "subnet": "10.77.0.0/24"}
    (finding,) = of(findings(nad("v77", _vlan(77, ipam))), "nad-host-local-shared")
    assert "VLAN 77 (tagged on ens224)" in finding.message


def test_dhcp_for_a_vlan_nad_is_served_on_its_vlan() -> None:
    # vlan60 has a DHCP server, the master's vlan50 too: fine; a VLAN without one: error
    assert of(findings(nad("v60", _vlan(60, {"type": "dhcp"}))), "nad-dhcp-no-server") == []
    base = SEED.replace(
        "      dhcp:\n        range: 172.16.60.32-172.16.60.99\n        leaseTime: 1h\n        router: false\n",
        "",
    )
    found = findings(nad("v60", _vlan(60, {"type": "dhcp"})), base=base)
    assert any(
        "VLAN 60 (network vlan60, tagged on ens224) has no DHCP server" in f.message
        for f in of(found, "nad-dhcp-no-server")
    ), found


def test_longhorn_over_a_vlan_nad_is_not_on_the_management_network() -> None:
    # the storage NAD rides on ens192 (vlan40, the node-ips) but tags VLAN 50
    text = SEED.replace(
        '"type": "macvlan",\n      "master": "ens224"',
        '"type": "vlan", "vlanId": 50,\n      "master": "ens192"',
        1,
    )
    assert text != SEED
    found = run_checks(load_lab_text(text, "lab.yaml"))
    assert of(found, "longhorn-on-management-network") == [], found


def test_the_refusal_says_whether_a_cluster_or_only_the_lab_refuses() -> None:
    from multihome.check.findings import refusal_reason

    sriov = nad("vf", {"cniVersion": "0.3.1", "type": "sriov"}) + pod(f"{NS}/vf")
    lab_only = findings(sriov)
    assert refusal_reason(lab_only) == (
        "the lab can't emulate this design (a real cluster may run it)"
    )
    bad_ip = nad("addr", _macvlan("static", {"addresses": [{"address": "10.1.1.5"}]}))
    both = findings(sriov, bad_ip)
    assert "a real cluster would refuse this design, and the lab can't" in refusal_reason(both)
    assert refusal_reason(findings(bad_ip)) == "a real cluster would refuse this design"


def test_a_default_network_nad_the_lab_cannot_run_refuses_up() -> None:
    other = POD.replace(
        "    k8s.v1.cni.cncf.io/networks: '{annotation}'",
        f"    v1.multus-cni.io/default-network: {NS}/vf",
    ).format()
    found = findings(nad("vf", {"cniVersion": "0.3.1", "type": "ovs", "bridge": "br1"}), other)
    (finding,) = of(found, "nad-plugin-not-emulated")
    assert f"Pod {NS}/tools2 (as eth0)" in finding.message


# -- the bridge plugin's vlanTrunk with this machine's plugins (1.1.1 ignores it) ------------


def _bridge(**keys: object) -> dict[str, object]:
    ipam = {"type": "static", "addresses": [{"address": "10.90.0.2/24"}]}
    return {"cniVersion": "0.3.1", "type": "bridge", "bridge": "brv", **keys, "ipam": ipam}


TRUNK = [{"id": 50}, {"minID": 60, "maxID": 62}]


def test_vlantrunk_with_the_installed_plugins_says_what_they_do() -> None:
    from multihome.cni import installed

    release = installed.release()
    if release is None:
        pytest.skip("no reference plugins in /usr/lib/cni")
    found = of(findings(nad("bt", _bridge(vlanTrunk=TRUNK))), "nad-bridge-vlantrunk-ignored")
    if release.at_least(installed.BRIDGE_VLAN_TRUNK):
        assert found == []
        return
    (finding,) = found
    assert finding.severity is Severity.WARNING and finding.kind is Kind.RUNS
    assert f"this machine's bridge plugin is {release.text} ({release.source})" in finding.message
    assert "older than vlanTrunk (v1.3.0), and ignores the key" in finding.message
    assert "bridge brv is made without VLAN filtering" in finding.message
    assert finding.location is not None and finding.location.line > 0


def _with_release(monkeypatch: pytest.MonkeyPatch, version: tuple[int, int, int] | None) -> None:
    from multihome.cni import installed

    made = None if version is None else installed.Release(version, "test")
    monkeypatch.setattr(installed, "release", lambda *a, **k: made)


def test_vlantrunk_beside_vlan_or_a_filtering_bridge(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_release(monkeypatch, (1, 1, 1))
    both = of(
        findings(nad("bt", _bridge(vlan=50, vlanTrunk=TRUNK))), "nad-bridge-vlantrunk-ignored"
    )
    assert "each pod's port is an access port of VLAN 50 (untagged)" in both[0].message
    assert "cannot set vlan and vlanTrunk at the same time" in both[0].message
    # another NAD makes brv a VLAN-filtering bridge: a vlanTrunk port is on VLAN 1 only
    docs = nad("bt", _bridge(VLANTRUNK=TRUNK)) + nad("bv", _bridge(vlan=70))
    (finding,) = of(findings(docs), "nad-bridge-vlantrunk-ignored")
    assert f"NAD {NS}/bt" in finding.message
    assert f"bridge brv filters VLANs where NAD {NS}/bv (vlan) made it" in finding.message
    assert "on the default VLAN 1 only: frames the pod tags are dropped" in finding.message


@pytest.mark.parametrize("version", [(1, 3, 0), (1, 4, 1), None])
def test_vlantrunk_is_not_flagged_where_the_plugins_read_it(
    monkeypatch: pytest.MonkeyPatch, version: tuple[int, int, int] | None
) -> None:
    _with_release(monkeypatch, version)
    found = findings(nad("bt", _bridge(vlanTrunk=TRUNK)), nad("bv", _bridge(vlan=7)))
    assert of(found, "nad-bridge-vlantrunk-ignored") == []
