"""The preflight: the kernel features a lab's NADs need, probed for real, and a refusal that
names the feature, the NADs and pods that need it, and how to get it (issue 11.4)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from kernel import netns, require_netns

from multihome.cni import installed
from multihome.lab import api, canal, preflight
from multihome.plan import build_plan
from multihome.spec import load_lab_text, seed_path

SEED = seed_path().read_text()


def _seed_with(old: str, new: str) -> str:
    assert old in SEED, old
    return SEED.replace(old, new, 1)


def _unavailable(kind: str) -> str | None:
    return preflight.link_kinds_unavailable((kind,)).get(kind)


def test_the_bridge_vlan_probe_is_the_kernels_answer() -> None:
    """The probe makes a bridge with vlan_filtering 1, as ip(8) does here."""
    require_netns()
    with netns("brvlan") as ns:
        made = subprocess.run(
            ["ip", "-n", ns, "link", "add", "brv", "type", "bridge", "vlan_filtering", "1"],
            capture_output=True,
            text=True,
            check=False,
        )
    probe = _unavailable(preflight.BRIDGE_VLAN)
    assert (made.returncode == 0) == (probe is None), (made.stderr, probe)


def test_the_kernel_config_agrees_with_the_probes() -> None:
    config = preflight.kernel_config()
    if config is None:
        pytest.skip("this kernel's config is not readable (/proc/config.gz, /boot/config-*)")
    for kind in ("vlan", "ipvlan", "macvlan"):
        option = preflight.FEATURES[kind].option
        if config.get(option, "n") == "y":
            assert _unavailable(kind) is None, kind
        if config.get(option, "n") == "n":
            assert _unavailable(kind) is not None, kind


@pytest.mark.parametrize(
    ("bridge", "words"),
    [
        ('"type": "bridge", "bridge": "br50", "vlan": 50', "vlan 50"),
        ('"type": "bridge", "bridge": "br50", "VLAN": 7', "vlan 7"),  # Go matches any case
        # the plugins here (1.1.1) ignore vlanTrunk: only vlan needs the feature
        ('"type": "bridge", "bridge": "br50", "vlan": 8, "vlanTrunk": [{"id": 9}]', "vlan 8"),
    ],
)
def test_bridge_vlans_without_vlan_filtering_stop_up_before_building(
    bridge: str, words: str, state_root: Path
) -> None:
    if _unavailable(preflight.BRIDGE_VLAN) is None:
        pytest.skip("this kernel has bridge VLAN filtering: nothing to refuse")
    text = _seed_with('"type": "macvlan"', bridge)
    lab = load_lab_text(text, "brvlan.yaml", seed_path().parent)
    with pytest.raises(api.LabError) as caught:
        api.up(lab)
    message = str(caught.value)
    assert caught.value.code == 2
    assert "this kernel has no bridge VLAN filtering (CONFIG_BRIDGE_VLAN_FILTERING)" in message
    assert "operation not supported" in message.lower()
    assert f"NAD multus-network-attachments/macvlan-longhorn-dhcp (bridge with {words})" in message
    assert "pod multus-network-attachments/net-tools (net1)" in message
    assert "CONFIG_BRIDGE_VLAN_FILTERING=y" in message
    assert "macvlan-private-dhcp" not in message  # not a bridge with VLANs
    assert message.endswith("Nothing was built.")
    assert not (state_root / "multi-homed").exists()


def test_vlantrunk_needs_vlan_filtering_only_where_the_plugins_read_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Debian's bridge plugin 1.1.1 drops vlanTrunk unread (it came in v1.3.0) and makes a
    bridge without VLAN filtering for it: nothing to refuse on a kernel without the feature
    (validate says what the plugin does instead: nad-bridge-vlantrunk-ignored)."""
    text = _seed_with('"type": "macvlan"', '"type": "bridge", "vlanTrunk": [{"id": 50}]')
    plan = build_plan(load_lab_text(text, "trunk.yaml", seed_path().parent))
    release = installed.release()  # this machine's
    if release is not None and not release.at_least(installed.BRIDGE_VLAN_TRUNK):
        assert preflight.BRIDGE_VLAN not in preflight._needs(plan)
    for version, needed in (((1, 1, 1), False), ((1, 3, 0), True), (None, True)):
        made = None if version is None else installed.Release(version, "test")
        monkeypatch.setattr(installed, "release", lambda *a, made=made, **k: made)
        assert (preflight.BRIDGE_VLAN in preflight._needs(plan)) is needed, version


def test_a_bridge_without_vlans_needs_no_vlan_filtering() -> None:
    assert preflight.bridge_vlans('{"type": "bridge", "bridge": "br0"}') is None
    assert preflight.bridge_vlans('{"type": "bridge", "vlan": 0}') is None
    assert preflight.bridge_vlans('{"type": "bridge", "vlanTrunk": null}') is None
    assert preflight.bridge_vlans('{"type": "macvlan", "vlan": 5}') is None
    conflist = '{"plugins": [{"type": "bridge", "vlanTrunk": [{"id": 5}]}, {"type": "tuning"}]}'
    assert preflight.bridge_vlans(conflist) == 'vlanTrunk [{"id": 5}]'


def test_two_features_missing_are_both_named(state_root: Path) -> None:
    if _unavailable("ipvlan") is None or _unavailable("vlan") is None:
        pytest.skip("this kernel has ipvlan or 802.1q")
    text = _seed_with('"type": "macvlan"', '"type": "ipvlan"')
    text = text.replace('"type": "macvlan"', '"type": "vlan", "vlanId": 60', 1)
    with pytest.raises(api.LabError) as caught:
        api.up(load_lab_text(text, "two.yaml", seed_path().parent))
    message = str(caught.value)
    assert "NAD multus-network-attachments/macvlan-longhorn-dhcp (type ipvlan)" in message
    assert "NAD multus-network-attachments/macvlan-private-dhcp (type vlan)" in message
    assert "this kernel has no ipvlan (CONFIG_IPVLAN)" in message
    assert "this kernel has no 802.1q VLAN devices (CONFIG_VLAN_8021Q)" in message
    if _unavailable(preflight.BRIDGE_VLAN) is not None:  # VLAN 60 is a network of the lab
        said = "macvlan-private-dhcp (vlanId 60: ens256's port a VLAN trunk): pod"
        assert said in message, message
    assert not (state_root / "multi-homed").exists()


@pytest.mark.parametrize(
    ("config", "kind", "says", "never"),
    [
        ({"CONFIG_MODULES": "y", "CONFIG_VLAN_8021Q": "m"}, "vlan", "modprobe 8021q", "boot"),
        ({"CONFIG_MODULES": "y", "CONFIG_IPVLAN": "n"}, "ipvlan", "CONFIG_IPVLAN=y", "modprobe"),
        ({"CONFIG_MODULES": "n"}, "vlan", "loads no modules", "modprobe"),
        (None, "ipvlan", "modprobe ipvlan", "is not set"),
        (
            {"CONFIG_MODULES": "y", "CONFIG_VLAN_8021Q": "m"},
            preflight.BRIDGE_VLAN,
            "no module adds it",
            "modprobe",
        ),
    ],
)
def test_how_to_get_a_feature_follows_the_kernel_config(
    config: dict[str, str] | None, kind: str, says: str, never: str
) -> None:
    advice = preflight.how_to_get(preflight.FEATURES[kind], config)
    assert says in advice
    assert never not in advice


def test_an_unbuilt_calico_plugin_stops_up_before_building(
    state_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(canal, "PLUGIN", str(tmp_path / "build" / "calico"))
    with pytest.raises(api.LabError) as caught:
        api.up(load_lab_text(SEED, "seed.yaml", seed_path().parent))
    message = str(caught.value)
    assert caught.value.code == 2
    assert f"the lab's calico CNI plugin is not built ({tmp_path}/build/calico)" in message
    assert "build it with `make calico`" in message
    assert message.endswith("Nothing was built.")
    assert not (state_root / "multi-homed").exists()
