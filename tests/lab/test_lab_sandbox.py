"""The sandbox: made, entered and destroyed without the host noticing; side by side."""

from __future__ import annotations

import os
import pickle
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from labkit import MakeSandbox, host_snapshot

from multihome.lab import netlink, nodes, ns, sandbox
from multihome.lab.names import InvalidName


def _inside_view() -> dict[str, object]:
    with netlink.Netlink() as nl:
        links = nl.here().link_names()
    return {
        "uid": os.getuid(),
        "links": links,
        "netns": netlink.list_netns(),
        "lo_up": netlink.NetNS("/proc/self/ns/net").is_up("lo"),
    }


def test_create_enter_destroy_leaves_host_untouched(make_sandbox: MakeSandbox) -> None:
    before = host_snapshot()
    had_rancher = os.path.exists("/etc/rancher")
    sb = make_sandbox("alpha", mountpoints=["/etc/rancher/rke2", "/opt/cni/bin"])
    assert sb.alive()
    assert ns.start_time(sb.pid) == sb.start_time
    for kind in ("user", "mnt", "net", "pid"):
        assert os.stat(sb.ns_path(kind)).st_ino != os.stat(ns.ns_file("self", kind)).st_ino

    def work() -> dict[str, object]:
        view = _inside_view()
        with netlink.Netlink() as nl:
            nl.here().add_bridge("br0", mtu=1400)
            nl.here().set_sysctl("net.ipv4.ip_forward", 1)
        netlink.create_netns("n1")
        view["after"] = netlink.list_netns()
        view["rke2_dir"] = os.path.isdir("/etc/rancher/rke2")
        return view

    view = sb.call(work)
    assert view["uid"] == 0
    assert view["links"] == ["lo"]
    assert view["lo_up"] is True
    assert view["netns"] == []  # the host's /run/netns is not visible inside
    assert view["after"] == ["n1"]
    assert view["rke2_dir"] is True
    assert host_snapshot() == before  # nothing new on the host while it runs
    assert os.path.exists("/etc/rancher") == had_rancher
    sb.destroy()
    assert not sb.alive()
    sb.destroy()  # idempotent
    assert host_snapshot() == before


def test_host_dirs_are_never_written(make_sandbox: MakeSandbox, tmp_path: Path) -> None:
    missing = tmp_path / "host-only" / "a" / "b"
    (tmp_path / "host-only").mkdir()
    sb = make_sandbox("dirs", mountpoints=[str(missing)])
    assert sb.call(lambda: os.path.isdir(str(missing))) is True
    assert not (tmp_path / "host-only" / "a").exists()


def test_two_sandboxes_side_by_side(make_sandbox: MakeSandbox) -> None:
    one, two = make_sandbox("one"), make_sandbox("two")

    def build() -> list[str]:
        with netlink.Netlink() as nl:
            here = nl.here()
            here.add_bridge("br0")
            here.add_veth("v0", "v0p", master="br0")
            here.set_link("v0p", up=True)
            here.add_address("v0p", "10.0.0.1/24")
            return here.addresses("v0p", family=4)

    assert one.call(build) == two.call(build)  # same names and addresses, no clash
    one.destroy()
    assert not one.alive() and two.alive()

    def names() -> list[str]:
        with netlink.Netlink() as nl:
            return nl.here().link_names()

    assert two.call(names) == ["br0", "lo", "v0", "v0p"]


def test_command_runs_argv_inside(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox("cmd")
    done = subprocess.run(
        sb.command(["sh", "-c", "echo $$; ip -br link; ls /run/netns | wc -l"]),
        capture_output=True,
        text=True,
        check=True,
    )
    pid_inside, link, count = done.stdout.split("\n")[:3]
    assert int(pid_inside) > 1  # in the lab's PID namespace: small numbers
    assert link.split()[0] == "lo"
    assert count.strip() == "0"


def test_destroy_kills_everything_inside(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox("kill")
    proc = subprocess.Popen(sb.command(["sleep", "300"]))
    try:
        # nsenter forks: the sleep is its child, inside the lab's PID namespace
        deadline = 200
        child = None
        while child is None and deadline:
            kids = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()
            child = int(kids[0]) if kids else None
            deadline -= 1
            if child is None:
                subprocess.run(["sleep", "0.01"], check=False)
        assert child is not None
        sb.destroy()
        assert proc.wait(timeout=5) != 0
        assert not ns.is_running(child)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_enter_needs_a_single_thread(make_sandbox: MakeSandbox) -> None:
    import threading

    sb = make_sandbox("threads")
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait)
    worker.start()
    try:
        with pytest.raises(RuntimeError, match="single-threaded"):
            sb.enter()
    finally:
        stop.set()
        worker.join()


def test_call_propagates_exceptions(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox("errors")

    def fail() -> None:
        raise ValueError("boom inside")

    with pytest.raises(ValueError, match="boom inside"):
        sb.call(fail)


def test_gone_sandbox_is_reported(make_sandbox: MakeSandbox) -> None:
    sb = make_sandbox("gone")
    sb.destroy()
    with pytest.raises(sandbox.SandboxError, match="gone"):
        sb.call(lambda: None)


def test_begin_then_wait_or_abandon(require_sandbox: None, tmp_path: Path) -> None:
    """``begin`` returns while the child mounts and starts the supervisor: ``wait`` gives the
    sandbox; ``abandon`` (the caller failed meanwhile) kills the child and the supervisor it
    forked, and leaves no process of the token behind."""
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    token = sandbox.new_token()
    starting = sandbox.begin("halves", str(scratch), token=token)
    assert starting.went_ahead
    sb = starting.wait()
    try:
        assert sb.alive() and sb.token == token
        assert sandbox.find_holders(token) == [sb.pid]
    finally:
        sb.destroy()
    for given_up in range(2):  # abandoned right away, and once the child is done
        token = sandbox.new_token()
        starting = sandbox.begin("given-up", str(scratch), token=token)
        if given_up:
            while not sandbox.find_holders(token):
                pass
        starting.abandon()
        starting.abandon()  # idempotent
        assert ns.pids_with("environ", f"MULTIHOME_LAB={token}".encode()) == []
        assert sandbox.find_holders(token) == []


def test_bad_names_never_reach_the_kernel(tmp_path: Path) -> None:
    with pytest.raises(InvalidName):
        sandbox.create("../etc", str(tmp_path))
    with pytest.raises(InvalidName):
        sandbox.create("ok", str(tmp_path), mountpoints=["relative/path"])


def _in_private_mount_ns(fn: Callable[[], object]) -> object:
    """Run ``fn`` in a forked child with a private mount namespace of its own (root only),
    so what it mounts never reaches the host; return what it returned (or raise)."""
    reader, writer = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        os.close(reader)
        try:
            ns.unshare(ns.CLONE_NEWNS)
            ns.mount(None, "/", None, ns.MS_REC | ns.MS_PRIVATE)
            out = pickle.dumps(("ok", fn()))
        except BaseException as exc:
            out = pickle.dumps(("error", f"{type(exc).__name__}: {exc}"))
        with open(writer, "wb") as fh:
            fh.write(out)
        os._exit(0)
    os.close(writer)
    with open(reader, "rb") as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    status, value = pickle.loads(data)
    if status != "ok":
        raise AssertionError(value)
    return value


@pytest.mark.parametrize("with_netns", [False, True], ids=["no-run-netns", "run-netns"])
def test_missing_dir_under_a_dir_with_mounts_below(
    require_sandbox: None, tmp_path: Path, with_netns: bool
) -> None:
    """A systemd host's /run is a tmpfs with mounts below (/run/lock, /run/user/N): an
    overlay on it is refused (the inherited mounts are locked: EINVAL), yet /run/cni must be
    made. Without /run/netns the host's own /run/netns mount, if any, is hidden below."""
    if os.geteuid() != 0:
        pytest.skip("needs root to make a private mount namespace with its own /run")
    scratch = tmp_path / "scratch"
    scratch.mkdir()

    def run() -> object:
        # a /run like a systemd host's, with no /run/cni; in this private namespace only
        ns.mount("mhtest", "/run", "tmpfs", 0, "mode=0755")
        os.makedirs("/run/lock/sub")
        ns.mount("mhtest", "/run/lock", "tmpfs", 0, "mode=1777")
        Path("/run/lock/held").write_text("lock\n")
        Path("/run/systemd/resolve").mkdir(parents=True)
        Path("/run/systemd/resolve/stub-resolv.conf").write_text("nameserver 127.0.0.53\n")
        Path("/run/utmp").write_text("utmp\n")
        os.symlink("systemd/resolve", "/run/resolve")
        if with_netns:
            os.mkdir("/run/netns")
        sb = sandbox.create("runmounts", str(scratch), mountpoints=nodes.NODE_MOUNTPOINTS)
        try:

            def look() -> dict[str, object]:
                return {
                    "dirs": [os.path.isdir(p) for p in nodes.NODE_MOUNTPOINTS],
                    "lock_mounted": os.path.ismount("/run/lock"),
                    "lock": Path("/run/lock/held").read_text(),
                    "resolv": Path("/run/resolve/stub-resolv.conf").read_text(),
                    "utmp": Path("/run/utmp").read_text(),
                    "netns": os.listdir("/run/netns"),
                }

            inside = sb.call(look)
        finally:
            sb.destroy()
        return {"inside": inside, "outside": sorted(os.listdir("/run"))}

    seen = _in_private_mount_ns(run)
    assert isinstance(seen, dict)
    assert seen["inside"] == {
        "dirs": [True] * len(nodes.NODE_MOUNTPOINTS),
        "lock_mounted": True,
        "lock": "lock\n",
        "resolv": "nameserver 127.0.0.53\n",
        "utmp": "utmp\n",
        "netns": [],
    }
    # the /run the sandbox was made from is untouched: no cni, no netns made in it
    made = ["netns"] if with_netns else []
    assert seen["outside"] == sorted(["lock", "resolve", "systemd", "utmp", *made])
