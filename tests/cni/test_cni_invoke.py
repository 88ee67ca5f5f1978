"""Running plugins, with test-only fake plugins: env, stdin, versions, errors, the deadline."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest
from cni_helpers import Fakes, fake_rt, pid_alive

from multihome.cni import (
    CNIError,
    CNIRuntime,
    CNITimeout,
    ConfigError,
    ExecEvent,
    NetworkConfigList,
    load_network_config,
)
from multihome.cni.errors import RUNTIME_FAILURE


def net_of(*plugins: dict[str, Any], version: str = "1.0.0", **extra: Any) -> NetworkConfigList:
    return load_network_config(
        {"cniVersion": version, "name": "fakenet", "plugins": list(plugins), **extra}
    )


def test_env_and_stdin(fakes: Fakes, fake_runtime: CNIRuntime) -> None:
    fakes.add("one")
    net = net_of({"type": "one", "custom": {"keep": True}, "name": "ignored"})
    rt = fake_rt(args=[("IgnoreUnknown", "true"), ("K8S_POD_NAME", "web-0")])
    fake_runtime.add_network_list(net, rt)
    (call,) = fakes.calls("ADD")
    assert call["env"] == {
        "CNI_COMMAND": "ADD",
        "CNI_CONTAINERID": "c0ffee",
        "CNI_NETNS": "/proc/self/ns/net",
        "CNI_IFNAME": "eth0",
        "CNI_ARGS": "IgnoreUnknown=true;K8S_POD_NAME=web-0",
        "CNI_PATH": str(fakes.dir),
    }
    assert call["stdin"] == {
        "type": "one",
        "custom": {"keep": True},
        "name": "fakenet",
        "cniVersion": "1.0.0",
    }


def test_prev_result_flows_through_the_chain(fakes: Fakes, fake_runtime: CNIRuntime) -> None:
    fakes.add("a")
    fakes.add("b")
    net = net_of(
        {"type": "a", "fake": {"ADD": {"ip": "10.0.0.2/24"}}},
        {"type": "b", "fake": {"ADD": {"ip": "10.0.0.3/24"}}},
    )
    result = fake_runtime.add_network_list(net, fake_rt())
    assert [str(ip.address) for ip in result.ips] == ["10.0.0.2/24", "10.0.0.3/24"]
    a, b = fakes.calls("ADD")
    assert "prevResult" not in a["stdin"]
    assert b["stdin"]["prevResult"] == {
        "cniVersion": "1.0.0",
        "ips": [{"address": "10.0.0.2/24"}],
        "dns": {},
    }


def test_runtime_config_only_for_declared_capabilities(
    fakes: Fakes, fake_runtime: CNIRuntime
) -> None:
    fakes.add("a")
    fakes.add("b")
    net = net_of(
        {"type": "a", "capabilities": {"mac": True, "ips": False}},
        {"type": "b"},
    )
    caps = {"mac": "02:00:00:00:00:01", "ips": ["10.0.0.9/24"], "portMappings": []}
    fake_runtime.add_network_list(net, fake_rt(capability_args=caps))
    a, b = fakes.calls("ADD")
    assert a["stdin"]["runtimeConfig"] == {"mac": "02:00:00:00:00:01"}
    assert "runtimeConfig" not in b["stdin"]


def test_version_clamped_to_what_the_plugin_supports(
    fakes: Fakes, fake_runtime: CNIRuntime
) -> None:
    fakes.add("new", supported=["0.3.0", "0.3.1", "0.4.0", "1.0.0"])
    fakes.add("old", supported=["0.3.0", "0.3.1", "0.4.0"])
    net = net_of(
        {"type": "new", "fake": {"ADD": {"ip": "10.0.0.2/24"}}},
        {"type": "old", "fake": {"ADD": {"ip": "fd00::2/64"}}},
        version="1.1.0",
    )
    result = fake_runtime.add_network_list(net, fake_rt())
    new, old = fakes.calls("ADD")
    assert new["stdin"]["cniVersion"] == "1.0.0"
    assert old["stdin"]["cniVersion"] == "0.4.0"
    # the 1.0.0 result is handed to the 0.4.0 plugin in 0.4.0 form
    assert old["stdin"]["prevResult"]["ips"] == [{"version": "4", "address": "10.0.0.2/24"}]
    assert result.cni_version == "1.1.0"
    assert [str(ip.address) for ip in result.ips] == ["10.0.0.2/24", "fd00::2/64"]


def test_incompatible_plugin_version(fakes: Fakes, fake_runtime: CNIRuntime) -> None:
    fakes.add("ancient", supported=["0.1.0", "0.2.0"])
    with pytest.raises(CNIError) as err:
        fake_runtime.add_network_list(net_of({"type": "ancient"}), fake_rt())
    assert err.value.code == 1 and err.value.plugin == "ancient"
    assert fakes.sequence() == []  # nothing ran, nothing to clean


def test_version_answers_are_cached_per_binary(fakes: Fakes, fake_runtime: CNIRuntime) -> None:
    path = fakes.add("one")
    net = net_of({"type": "one"})
    for n in range(3):
        fake_runtime.add_network_list(net, fake_rt(container_id=f"c{n}"))
    assert len(fakes.calls("VERSION")) == 1
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    fake_runtime.add_network_list(net, fake_rt(container_id="c9"))
    assert len(fakes.calls("VERSION")) == 2


def test_plugin_not_found(fake_runtime: CNIRuntime, fakes: Fakes) -> None:
    with pytest.raises(CNIError) as err:
        fake_runtime.add_network_list(net_of({"type": "missing"}), fake_rt())
    assert err.value.plugin == "missing" and err.value.code == RUNTIME_FAILURE
    assert "plugin not found" in str(err.value) and str(fakes.dir) in str(err.value)


def test_error_json_decoded(fakes: Fakes, fake_runtime: CNIRuntime) -> None:
    fakes.add("bad")
    fail = {"code": 7, "msg": "invalid config", "details": "master 'ens9'\nnot found"}
    with pytest.raises(CNIError) as err:
        fake_runtime.add_network_list(
            net_of({"type": "bad", "fake": {"ADD": {"fail": fail}}}), fake_rt()
        )
    e = err.value
    assert (e.code, e.msg, e.details, e.plugin, e.command, e.network) == (
        7,
        "invalid config",
        "master 'ens9'\nnot found",
        "bad",
        "ADD",
        "fakenet",
    )
    assert str(e) == "bad ADD (network fakenet): invalid config: master 'ens9' not found [code 7]"
    assert "\n" not in str(e)


@pytest.mark.parametrize(
    "act,expected",
    [
        (
            {"exit": 2, "stderr": "panic: boom"},
            "exited with status 2 without a CNI error: panic: boom",
        ),
        ({"exit": 0, "signal": 9}, "killed by signal SIGKILL"),
        ({"exit": 1, "stdout": '{"msg": "no code"}'}, "exited with status 1"),
        ({"stdout": "not json"}, "invalid result"),
        ({"stdout": '{"cniVersion": "1.0.0", "ips": [{"address": "x"}]}'}, "ips[0]"),
    ],
)
def test_runtime_side_failures(
    fakes: Fakes, fake_runtime: CNIRuntime, act: dict[str, Any], expected: str
) -> None:
    fakes.add("odd")
    with pytest.raises(CNIError) as err:
        fake_runtime.add_network_list(net_of({"type": "odd", "fake": {"ADD": act}}), fake_rt())
    assert err.value.code == RUNTIME_FAILURE
    assert expected in str(err.value)
    assert err.value.plugin == "odd"


def test_deadline_kills_the_process_group(fakes: Fakes, tmp_path: Path) -> None:
    pidfile = tmp_path / "hang.pids"
    fakes.add("first")
    fakes.add_hang("hang", pidfile)
    events: list[ExecEvent] = []
    net = net_of({"type": "first"}, {"type": "hang"})
    with CNIRuntime([str(fakes.dir)], tmp_path / "cache", timeout=0.5, on_exec=events.append) as rt:
        started = time.monotonic()
        with pytest.raises(CNITimeout) as err:
            rt.add_network_list(net, fake_rt())
        assert time.monotonic() - started < 10
    assert isinstance(err.value, CNIError)
    assert err.value.plugin == "hang" and err.value.command == "ADD"
    assert "timed out after 0.5s" in str(err.value)
    pids = [int(p) for p in pidfile.read_text().split()]
    assert len(pids) == 2  # the script and its sleep
    deadline = time.monotonic() + 5
    while any(pid_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(pid_alive(p) for p in pids)
    # the chain was cleaned up with DEL, in reverse
    assert fakes.sequence() == [("first", "ADD"), ("first", "DEL")]
    assert [(e.plugin, e.command) for e in events if e.command != "VERSION"] == [
        ("first", "ADD"),
        ("hang", "ADD"),
        ("hang", "DEL"),
        ("first", "DEL"),
    ]
    assert not (tmp_path / "cache" / "results" / "fakenet-c0ffee-eth0").exists()


def test_runtime_conf_validated(fakes: Fakes, fake_runtime: CNIRuntime) -> None:
    fakes.add("one")
    net = net_of({"type": "one"})
    bad = [
        (fake_rt(container_id="../etc"), "container_id"),
        (fake_rt(ifname="toolonginterface0"), "ifname"),
        (fake_rt(netns=""), "netns"),
        (fake_rt(args=[("K", "a;b")]), "args[0]"),
        (fake_rt(args=[("", "v")]), "args[0]"),
        (fake_rt(capability_args={"x": object()}), "capability_args"),
    ]
    for rt, field in bad:
        with pytest.raises(ConfigError, match=field.replace("[", r"\[")):
            fake_runtime.add_network_list(net, rt)
    assert fakes.sequence() == []
    # DEL needs no netns (the pod's may be gone)
    fake_runtime.del_network_list(net, fake_rt(netns=""))
    assert fakes.calls("DEL")[0]["env"]["CNI_NETNS"] == ""


def test_runtime_arguments_validated(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cni_path"):
        CNIRuntime(["relative/bin"], tmp_path)
    with pytest.raises(ConfigError, match="cni_path"):
        CNIRuntime([], tmp_path)
    with pytest.raises(ConfigError, match="timeout"):
        CNIRuntime(["/usr/lib/cni"], tmp_path, timeout=0)
    assert CNIRuntime("/a:/b", tmp_path).cni_path == ("/a", "/b")


def test_validate_network_list(fakes: Fakes, fake_runtime: CNIRuntime) -> None:
    fakes.add("main")
    fakes.add("ancient", supported=["0.2.0"])
    fake_runtime.validate_network_list(net_of({"type": "main"}))
    with pytest.raises(ConfigError) as err:
        fake_runtime.validate_network_list(
            net_of({"type": "main", "ipam": {"type": "nope"}}, {"type": "ancient"})
        )
    text = str(err.value)
    assert "plugins[0].ipam.type: plugin not found" in text
    assert "plugins[1].type: incompatible CNI versions" in text


def test_versions_asked_side_by_side(
    fakes: Fakes, fake_runtime: CNIRuntime, tmp_path: Path
) -> None:
    """ask_versions runs several plugins' VERSION at once; each answer is kept for its own
    plugin (a later ADD negotiates with it, without asking again), and a plugin whose
    VERSION fails is left to the call that needs it, which reports it."""
    fakes.add("old", supported=["0.3.1", "0.4.0"])
    fakes.add("new")
    broken = fakes.dir / "broken"
    broken.write_text("#!/bin/sh\necho garbage\nexit 3\n")
    broken.chmod(0o755)
    fake_runtime.ask_versions(["old", "new", "broken", "old"])
    assert sorted(c["plugin"] for c in fakes.calls("VERSION")) == ["new", "old"]
    fake_runtime.add_network_list(net_of({"type": "old"}), fake_rt())
    fake_runtime.add_network_list(net_of({"type": "new"}), fake_rt(container_id="c2"))
    sent = {c["plugin"]: c["stdin"]["cniVersion"] for c in fakes.calls("ADD")}
    assert sent == {"old": "0.4.0", "new": "1.0.0"}
    assert len(fakes.calls("VERSION")) == 2
    with pytest.raises(CNIError):
        fake_runtime.add_network_list(net_of({"type": "broken"}), fake_rt(container_id="c3"))


def test_versions_asked_once_serve_forked_children(fakes: Fakes, fake_runtime: CNIRuntime) -> None:
    """ask_versions asks each plugin once; a process forked after it (the lab's attach
    workers) runs ADD without asking again; a plugin that is missing is left to the call
    that needs it."""
    fakes.add("asked")
    fake_runtime.ask_versions(["asked", "missing"])
    assert [(c["plugin"], c["command"]) for c in fakes.calls("VERSION")] == [("asked", "VERSION")]
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            fake_runtime.add_network_list(net_of({"type": "asked"}), fake_rt())
            code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert fakes.sequence() == [("asked", "ADD")]
    assert len(fakes.calls("VERSION")) == 1
    with pytest.raises(CNIError, match="plugin not found"):
        fake_runtime.add_network_list(net_of({"type": "missing"}), fake_rt(container_id="c2"))
