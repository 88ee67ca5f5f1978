"""Every rendered netplan file through the real ``netplan generate --root-dir`` (Debian's
netplan.io): it must be accepted without a warning, and the systemd-networkd files it makes
must say what the design means: the node-ip NIC with its address, default route and DNS;
every NIC without an address not required for boot (``optional: true``)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from multihome.plan import NodePlan, Plan
from multihome.render import render_in_memory
from multihome.render.netplan import nameservers
from multihome.spec import load_lab, load_lab_text, seed_path

NETPLAN = shutil.which("netplan") or (
    "/usr/sbin/netplan" if Path("/usr/sbin/netplan").exists() else None
)
pytestmark = pytest.mark.skipif(
    NETPLAN is None,
    reason="netplan is not installed (Debian: apt-get install --no-install-recommends "
    "netplan.io; `make test` installs it)",
)
EXAMPLES = sorted(p.stem for p in seed_path().parent.glob("*.yaml"))


Unit = dict[str, dict[str, list[str]]]
"""A systemd unit file: section -> key -> every value (``DNS=`` repeats, one per server)."""


def _unit(text: str) -> Unit:
    unit: Unit = {}
    section: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]"):
            section = unit.setdefault(line[1:-1], {})
        elif "=" in line and not line.startswith("#"):
            key, _, value = line.partition("=")
            section.setdefault(key, []).append(value)
    return unit


def _networkd(root: Path) -> dict[str, Unit]:
    """The .network files netplan wrote, by interface name."""
    found = {}
    for path in sorted((root / "run/systemd/network").glob("10-netplan-*.network")):
        unit = _unit(path.read_text(encoding="utf-8"))
        found[unit["Match"]["Name"][0]] = unit
    return found


def _generate(text: str, root: Path) -> dict[str, Unit]:
    target = root / "etc/netplan/60-multihome.yaml"
    target.parent.mkdir(parents=True)
    target.write_text(text, encoding="utf-8")
    target.chmod(0o600)
    assert NETPLAN is not None
    done = subprocess.run(
        [NETPLAN, "generate", "--root-dir", str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "WARNING" not in done.stderr and "ERROR" not in done.stderr, done.stderr
    return _networkd(root)


def _check_node(plan: Plan, node: NodePlan, units: dict[str, Unit]) -> None:
    dns, _ = nameservers(plan, node)
    for nic in node.nics:
        carrier = nic.bridge or nic.name
        unit = units[nic.name]
        if nic.bridge is not None:
            assert unit["Network"]["Bridge"] == [nic.bridge]
            assert unit["Link"].get("RequiredForOnline") == ["no"], (node.name, nic.name)
            unit = units[carrier]
        if nic.address is None:
            assert unit["Link"].get("RequiredForOnline") == ["no"], (node.name, carrier)
            assert "Address" not in unit["Network"]
            continue
        assert unit["Network"]["Address"] == [str(nic.address)]
        assert "RequiredForOnline" not in unit["Link"]
        if nic.management:
            assert unit["Network"].get("DNS", []) == dns, (node.name, carrier)
            if node.default_gateway is not None:
                assert unit["Route"]["Gateway"] == [str(node.default_gateway)]


@pytest.mark.parametrize("example", EXAMPLES)
def test_netplan_generate_accepts_every_rendered_file(example: str, tmp_path: Path) -> None:
    rendering = render_in_memory(load_lab(seed_path().parent / f"{example}.yaml"))
    netplans = {f.path: f.text for f in rendering.files if f.kind == "netplan"}
    assert len(netplans) == len(rendering.plan.nodes)
    for node in rendering.plan.nodes:
        text = netplans[f"nodes/{node.name}/etc/netplan/60-multihome.yaml"]
        _check_node(rendering.plan, node, _generate(text, tmp_path / node.name))


def test_nameservers_from_the_lab_file(tmp_path: Path) -> None:
    text = seed_path().read_text(encoding="utf-8")
    marker = "      gateway: 172.16.40.1\n"
    assert marker in text
    text = text.replace(marker, f"{marker}      nameservers: [172.16.40.53, 9.9.9.9]\n", 1)
    rendering = render_in_memory(load_lab_text(text, "lab.yaml", seed_path().parent))
    node = rendering.plan.nodes[0]
    assert nameservers(rendering.plan, node)[0] == ["172.16.40.53", "9.9.9.9"]
    netplan = next(f for f in rendering.files if f.kind == "netplan" and node.name in f.path)
    units = _generate(netplan.text, tmp_path)
    assert units[node.management_nic]["Network"]["DNS"] == ["172.16.40.53", "9.9.9.9"]
