"""One deadline for a whole attachment: VERSION and ADD share the budget (a slow or hung
plugin costs it once), the DEL that undoes a failed ADD has a short bound of its own, the
error names the plugin and the pod and says after how long, and a hung plugin's processes
are killed (its whole process group), leaving nothing behind.

The plugins are small shell scripts in a temporary CNI bin dir; each logs its calls and
does, per command, what the test says: answer at once, answer after a pause, or hang (it
and a child ``sleep`` until killed)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from cni_helpers import fake_rt

from multihome.cni import (
    CNIError,
    CNIRuntime,
    CNITimeout,
    ConfigError,
    Deadline,
    NetworkConfigList,
    load_network_config,
)
from multihome.multus.attach import PodSandbox, attach_pod
from multihome.multus.delegates import Delegate
from multihome.multus.errors import AttachError

PLUGIN = """#!/bin/sh
# Test-only CNI plugin: log the call, then {{answer | pause then answer | hang}} per command.
echo "$CNI_COMMAND start" >> {log}
cat > /dev/null
act() {{
  case "$1" in
    hang) echo $$ >> {pids}
          sleep 300 &
          echo $! >> {pids}
          wait
          exit 0 ;;
    "") ;;
    *) sleep "$1" ;;
  esac
}}
case "$CNI_COMMAND" in
  VERSION) act "{version}"
           echo '{{"cniVersion":"1.0.0","supportedVersions":["0.3.1","0.4.0","1.0.0"]}}' ;;
  ADD) act "{add}"
       echo '{{"cniVersion":"1.0.0","interfaces":[],"ips":[]}}' ;;
  DEL) act "{delete}" ;;
esac
echo "$CNI_COMMAND done" >> {log}
exit 0
"""


class Bin:
    """A temporary CNI bin dir of scripted plugins, their call log and hung PIDs."""

    def __init__(self, tmp_path: Path) -> None:
        self.dir = tmp_path / "bin"
        self.dir.mkdir()
        self.log = tmp_path / "calls.log"
        self.pids = tmp_path / "hung.pids"

    def add(self, name: str, version: str = "", add: str = "", delete: str = "") -> None:
        path = self.dir / name
        path.write_text(
            PLUGIN.format(log=self.log, pids=self.pids, version=version, add=add, delete=delete)
        )
        path.chmod(0o755)

    def calls(self) -> list[str]:
        return self.log.read_text().splitlines() if self.log.exists() else []

    def hung_pids(self) -> list[int]:
        return [int(p) for p in self.pids.read_text().split()] if self.pids.exists() else []


def _gone(pid: int) -> bool:
    """The process is dead and reaped, or a zombie (its group was killed; init reaps it)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _assert_no_leftovers(plugins: Bin) -> None:
    pids = plugins.hung_pids()
    assert pids, "the plugin never hung"
    deadline = time.monotonic() + 5
    while not all(_gone(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert all(_gone(p) for p in pids), pids


def _net(kind: str, name: str = "net") -> NetworkConfigList:
    return load_network_config({"cniVersion": "1.0.0", "name": name, "type": kind})


@pytest.fixture
def plugins(tmp_path: Path) -> Bin:
    return Bin(tmp_path)


def test_a_plugin_hung_on_version_costs_the_budget_once(plugins: Bin, tmp_path: Path) -> None:
    plugins.add("hang", version="hang", add="hang", delete="hang")
    with (
        CNIRuntime([str(plugins.dir)], tmp_path / "cache", timeout=1) as rt,
        pytest.raises(CNITimeout) as err,
    ):
        rt.add_network_list(_net("hang"), fake_rt())
    assert (err.value.plugin, err.value.command) == ("hang", "VERSION")
    assert "timed out after 1s" in str(err.value)
    assert plugins.calls() == ["VERSION start"]  # no ADD after the budget, nothing to undo
    _assert_no_leftovers(plugins)


def test_version_and_add_share_one_budget(plugins: Bin, tmp_path: Path) -> None:
    # each call alone fits in the budget (1.2 s of 2 s); the two together do not
    plugins.add("slow", version="1.2", add="1.2")
    with (
        CNIRuntime([str(plugins.dir)], tmp_path / "cache", timeout=2) as rt,
        pytest.raises(CNITimeout) as err,
    ):
        rt.add_network_list(_net("slow"), fake_rt())
    assert err.value.plugin == "slow"
    assert "timed out after 2s" in str(err.value)
    assert "ADD done" not in plugins.calls()
    assert not (tmp_path / "cache" / "results" / "net-c0ffee-eth0").exists()


def test_an_explicit_deadline_is_shared_by_several_operations(plugins: Bin, tmp_path: Path) -> None:
    plugins.add("slow", add="0.8")
    with CNIRuntime([str(plugins.dir)], tmp_path / "cache", timeout=30) as rt:
        budget = Deadline.after(1.2)
        rt.add_network_list(_net("slow", "one"), fake_rt(), deadline=budget)
        with pytest.raises(CNITimeout) as err:
            rt.add_network_list(_net("slow", "two"), fake_rt(ifname="net1"), deadline=budget)
    assert "timed out after 1.2s" in str(err.value)


def test_the_rollback_del_has_its_own_short_bound(plugins: Bin, tmp_path: Path) -> None:
    plugins.add("stuck", add="hang", delete="hang")
    with (
        CNIRuntime([str(plugins.dir)], tmp_path / "cache", timeout=1, cleanup_timeout=0.5) as rt,
        pytest.raises(CNITimeout) as err,
    ):
        rt.add_network_list(_net("stuck"), fake_rt())
    assert (err.value.plugin, err.value.command) == ("stuck", "ADD")
    assert "timed out after 1s" in str(err.value)
    notes = getattr(err.value, "__notes__", [])
    assert any("stuck DEL" in n and "timed out after 0.5s" in n for n in notes), notes
    assert plugins.calls() == ["VERSION start", "VERSION done", "ADD start", "DEL start"]
    _assert_no_leftovers(plugins)


def test_cleanup_timeout_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cleanup_timeout"):
        CNIRuntime(["/usr/lib/cni"], tmp_path, cleanup_timeout=0)
    assert CNIRuntime(["/usr/lib/cni"], tmp_path, timeout=2).cleanup_timeout == 2
    assert CNIRuntime(["/usr/lib/cni"], tmp_path).cleanup_timeout == 5


def test_a_pod_attachment_has_one_deadline_and_names_plugin_and_pod(
    plugins: Bin, tmp_path: Path
) -> None:
    """Multus's view: the pod's delegates share the budget; the error says which pod, which
    network, which plugin, and after how long; what was added before is rolled back."""
    plugins.add("quick")
    plugins.add("stuck", add="hang", delete="hang")
    pod = PodSandbox("apps", "web-0", "uid-1", "c0ffee", "/proc/self/ns/net")
    delegates = [
        Delegate("apps/fast", "net1", {"cniVersion": "1.0.0", "name": "fast", "type": "quick"}),
        Delegate("apps/hung", "net2", {"cniVersion": "1.0.0", "name": "hung", "type": "stuck"}),
    ]
    with (
        CNIRuntime([str(plugins.dir)], tmp_path / "cache", timeout=1, cleanup_timeout=0.5) as rt,
        pytest.raises(AttachError) as err,
    ):
        attach_pod(rt, pod, delegates)
    message = str(err.value)
    assert message.startswith("apps/web-0:apps/hung: error adding container to network 'hung'")
    assert "stuck ADD (network hung): timed out after 1s" in message
    assert isinstance(err.value.__cause__, CNIError)
    # quick: VERSION, ADD; stuck: VERSION, ADD (killed), DEL (killed); quick rolled back
    calls = plugins.calls()
    assert calls.count("ADD done") == 1 and calls.count("DEL done") == 1
    assert calls[-2:] == ["DEL start", "DEL done"]
    _assert_no_leftovers(plugins)
    results = tmp_path / "cache" / "results"
    assert not results.exists() or os.listdir(results) == []
