"""The real path of what this machine's kernel refuses (issue 11.4): in a VM whose kernel has
802.1q, ipvlan and bridge VLAN filtering (kernelvm.py), the real CNI plugins make trunks'
sub-interfaces, vlan-plugin links, ipvlan (l2) links and VLAN-filtering bridges that carry
traffic where they should and nowhere else, and show what Debian's bridge plugin 1.1.1 does
with vlanTrunk (guest/plugins.sh); the lab brings up, verifies and removes a design with an
ipvlan NAD and a vlan-plugin NAD, and the trunk lab of tests/lab with real 802.1q, its
tagged frames captured on the wire (guest/lab.sh).

One boot runs both guest scripts (the lab first, on a /run as the VM booted it); each check they print is asserted here by its group.
Run by `make test-kernel` only (see conftest.py).
"""

from __future__ import annotations

import os
import re
import time

import kernelvm
import pytest

if os.geteuid() != 0:
    pytest.skip(
        "the VM's root is built with debootstrap, which needs root", allow_module_level=True
    )

CHECK = re.compile(r"^CHECK (\S+) (PASS|FAIL|SKIP) ?(.*)$")


class Guest:
    def __init__(self, rc: int, console: str) -> None:
        self.rc = rc
        self.console = console
        self.checks: dict[str, tuple[str, str]] = {}
        for line in console.splitlines():
            m = CHECK.match(line.strip())
            if m:
                self.checks[m.group(1)] = (m.group(2), m.group(3))

    def group(self, prefix: str) -> dict[str, tuple[str, str]]:
        return {k: v for k, v in self.checks.items() if k.startswith(prefix)}


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Guest:
    start = time.monotonic()
    parts = kernelvm.build()
    run = kernelvm.run_dir(
        tmp_path_factory.mktemp("kernel-vm-run"), ["lab.sh", "plugins.sh"], with_project=True
    )
    rc, console = kernelvm.boot(parts, run)
    kernelvm.log(f"build + boot + guest: {time.monotonic() - start:.1f} s")
    log = kernelvm.CACHE / "last-console.log"
    log.write_text(console)
    kernelvm.log(f"the guest's console: {log}")
    if not re.search(rf"{kernelvm.EXIT_MARK}-?\d+", console):
        pytest.fail(f"the VM did not finish its script:\n{console[-4000:]}")
    return Guest(rc, console)


def _all_pass(guest: Guest, prefix: str, at_least: int) -> None:
    found = guest.group(prefix)
    failed = {k: why for k, (result, why) in found.items() if result == "FAIL"}
    assert not failed, "\n".join(f"{k}: {why}" for k, why in failed.items())
    passed = [k for k, (result, _) in found.items() if result == "PASS"]
    assert len(passed) >= at_least, (prefix, sorted(found))


def test_the_guest_kernel_has_the_features(guest: Guest) -> None:
    """What this machine's kernel lacks, loaded in the guest's: the preflight's `modprobe` fix."""
    _all_pass(guest, "modprobe-", 2)
    _all_pass(guest, "bridge-vlan-filtering", 1)


def test_trunk_subinterfaces_carry_tags_through_a_vlan_aware_switch(guest: Guest) -> None:
    _all_pass(guest, "trunk-", 3)


def test_macvlan_on_a_trunk_subinterface(guest: Guest) -> None:
    _all_pass(guest, "macvlan-on-subinterface", 2)


def test_the_vlan_plugin_puts_pods_on_their_vlan_and_no_other(guest: Guest) -> None:
    _all_pass(guest, "vlan-plugin-", 6)


def test_ipvlan_l2(guest: Guest) -> None:
    _all_pass(guest, "ipvlan-", 7)


def test_the_bridge_plugin_vlan_isolates_pods_by_vlan(guest: Guest) -> None:
    _all_pass(guest, "bridge-vlan-", 7)


def test_the_bridge_plugin_vlantrunk(guest: Guest) -> None:
    """Where the guest's plugins know vlanTrunk (v1.3.0+), the trunk port itself; Debian
    bookworm's 1.1.1 drops the key: its port is on VLAN 1 only on a VLAN-filtering bridge
    (tagged frames dropped), and a bridge it makes has no filtering (any tag crosses)."""
    _all_pass(guest, "bridge-vlantrunk-add", 1)
    if "bridge-vlantrunk-tagged-reaches-vlan50" in guest.checks:
        _all_pass(guest, "bridge-vlantrunk-", 3)
    else:
        _all_pass(guest, "bridge-vlantrunk-ignored-", 7)


def test_the_vlan_plugin_takes_one_vlan_per_link(guest: Guest) -> None:
    """A second vlan device with the same id on a link fails with 'file exists'."""
    _all_pass(guest, "vlan-plugin-second-pod-same-vlan-file-exists", 1)
    _all_pass(guest, "vlan-plugin-beside-subinterface-file-exists", 1)


def test_the_lab_brings_up_ipvlan_and_vlan_plugin_nads(guest: Guest) -> None:
    _all_pass(guest, "lab-validate", 1)
    _all_pass(guest, "lab-up", 1)
    _all_pass(guest, "lab-pod-", 3)
    _all_pass(guest, "lab-down", 1)
    _all_pass(guest, "lab-left-no-namespace", 1)


def test_the_lab_verifies_its_expect_entries(guest: Guest) -> None:
    """The design's own expect entries (ipvlan across nodes, the vlan plugin's VLAN 100)."""
    lines = [line for line in guest.console.splitlines() if line.lstrip().startswith("expect ")]
    kfeat = [line for line in lines if "kfeat/" in line][-5:]  # the last verify's
    assert len(kfeat) == 5, lines
    assert all(" PASS " in line for line in kfeat), lines


def test_the_lab_verify_judges_a_vlan_plugin_interface_by_its_vlan(guest: Guest) -> None:
    """net2 (vlanId 100 over ens224, an access port of VLAN 50) is judged on VLAN 100: its
    address in vlan100's subnet, host box100 of VLAN 100 reached over it (issue 11.6)."""
    _all_pass(guest, "lab-verify", 1)
    console = guest.console
    assert "net2 10.100.0.11/24 on vlan100" in console, console
    assert re.search(r"reach\s+PASS\s+pod-a reaches vlan100 over net2", console), console


def test_the_trunk_lab_is_real_8021q(guest: Guest) -> None:
    """tests/lab/labs/trunk.yaml, emulated on this project's CI kernel, built for real:
    get says 802.1q, the sub-interfaces are vlan devices, verify passes whole, the frames
    between a node and the switch carry the 802.1Q tag, down leaves nothing."""
    _all_pass(guest, "trunklab-up", 1)
    _all_pass(guest, "trunklab-says-8021q", 1)
    _all_pass(guest, "trunklab-subinterface-is-8021q", 1)
    _all_pass(guest, "trunklab-verify", 1)
    _all_pass(guest, "trunklab-frames-tagged-vlan60", 1)
    _all_pass(guest, "trunklab-down", 1)
    _all_pass(guest, "trunklab-left-no-namespace", 1)


def test_the_lab_comes_up_with_mounts_under_run(guest: Guest) -> None:
    """A systemd host's /run (mounts below it, no /run/cni): the sandbox's /run is a tmpfs
    with every entry bound back, not an overlay the kernel refuses (sandbox.py)."""
    _all_pass(guest, "lab-mount-under-run-up", 1)
