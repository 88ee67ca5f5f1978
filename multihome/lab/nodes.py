"""A node of the lab: a network namespace plus a mount namespace with the node's own files.

The node's mount namespace is a copy of the sandbox's in which ``/var/lib/cni``,
``/run/cni``, ``/etc/cni/net.d``, ``/opt/cni/bin`` and ``/etc/rancher/rke2`` are bind
mounts of the node's directory in the lab's state (``<state>/nodes/<node>/<dir>``, see
``NODE_DIRS``), except ``/var/lib/cni`` (``SCRATCH_DIRS``), which a lab keeps on the
sandbox's scratch tmpfs (``<scratch>/nodes/<node>/var-lib-cni``); ``opt-cni-bin`` holds a
symlink to each reference plugin (``/usr/lib/cni``), so ``ls /opt/cni/bin`` on a node lists
them. The sandbox must have been created with ``mountpoints=NODE_MOUNTPOINTS`` (the
directories must exist inside it).

Both namespaces persist without a process: the network namespace is bind-mounted on
``/run/netns/<node>`` and the mount namespace on ``<scratch>/ns/<node>`` (on the sandbox's
private scratch tmpfs). ``/run/netns`` is shared between the sandbox and every node, so a
pod namespace made later is visible to plugins running on the node. To run something on a
node, enter its network namespace, then its mount namespace (``Node.netns``,
``Node.mntns``: paths inside the sandbox) between fork and exec, as ``multihome.cni`` does
with ``NodeNamespaces``; from outside the sandbox, ``Sandbox.command(argv, netns=...,
mntns=...)``. Call ``create_node``/``delete_node`` from inside the sandbox.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

from . import netlink, ns, safefs, sandbox
from .names import check_abs_path, check_name

CNI_BIN_DIR = "/usr/lib/cni"
NODE_DIRS: dict[str, str] = {
    "/var/lib/cni": "var-lib-cni",
    "/run/cni": "run-cni",
    "/etc/cni/net.d": "etc-cni-net.d",
    "/opt/cni/bin": "opt-cni-bin",
    "/etc/rancher/rke2": "etc-rancher-rke2",
}
NODE_MOUNTPOINTS: tuple[str, ...] = tuple(NODE_DIRS)
SCRATCH_DIRS: frozenset[str] = frozenset({"/var/lib/cni"})
"""The node directories a lab keeps on the sandbox's scratch tmpfs, not in its state: the
CNI runtime's and the plugins' working files (the result cache, host-local's reservations),
several written and removed per pod, read by nothing outside the sandbox. On a state dir
on disk, making a file costs ~40 times what it does on tmpfs (ext4 here: 0.9 ms of CPU
against 0.02), and ``down`` would remove them one by one. A real node keeps them on its
disk; the plugins see the same paths and files."""

Recorder = Callable[..., None]
_MS_NOEXEC = 0x8


class NodeError(RuntimeError):
    """A node's namespaces could not be made."""


@dataclass(frozen=True)
class Node:
    """A node's namespaces (paths inside the sandbox) and its directory in the state."""

    name: str
    netns: str
    mntns: str
    root: str
    scratch: str | None = None
    """where ``SCRATCH_DIRS`` are (see :func:`scratch_root`); None: under ``root``"""

    def dir(self, mountpoint: str) -> str:
        """The node's directory behind ``mountpoint`` (e.g. ``/etc/rancher/rke2``)."""
        return node_dir(self.root, self.scratch, mountpoint)


def scratch_root(scratch: str, node: str) -> str:
    """Where a node's ``SCRATCH_DIRS`` are on the sandbox's ``scratch`` tmpfs."""
    return os.path.join(scratch, "nodes", check_name(node, "node name"))


def node_dir(root: str, scratch: str | None, mountpoint: str) -> str:
    """The directory behind ``mountpoint`` of a node whose directories are at ``root``
    (``SCRATCH_DIRS`` at ``scratch``, when given)."""
    base = scratch if scratch is not None and mountpoint in SCRATCH_DIRS else root
    return os.path.join(base, NODE_DIRS[mountpoint])


def prepare_dirs(root: str, cni_bin: str = CNI_BIN_DIR, scratch: str | None = None) -> None:
    """Make the node's directories (``SCRATCH_DIRS`` under ``scratch`` when given);
    ``opt-cni-bin`` gets a symlink per plugin."""
    # in the lab's state: no link on the way is followed (the dirs are bind-mounted)
    for base in dict.fromkeys(b for b in (root, scratch) if b is not None):
        safefs.makedirs(base, mode=0o755)
    for mountpoint in NODE_DIRS:
        path = node_dir(root, scratch, mountpoint)
        safefs.makedirs(path, base=os.path.dirname(path), mode=0o755)
    bin_dir = os.path.join(root, NODE_DIRS["/opt/cni/bin"])
    try:
        plugins = sorted(os.listdir(cni_bin))
    except FileNotFoundError as exc:
        raise NodeError(
            f"CNI plugins not found in {cni_bin} (install containernetworking-plugins)"
        ) from exc
    fd = os.open(bin_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for plugin in plugins:  # one syscall each, relative to the directory
            with contextlib.suppress(FileExistsError):
                os.symlink(os.path.join(cni_bin, plugin), plugin, dir_fd=fd)
    finally:
        os.close(fd)


def create_node(
    name: str,
    *,
    root: str,
    scratch: str | None = None,
    ns_dir: str,
    run_dir: str = netlink.NETNS_DIR,
    cni_bin: str = CNI_BIN_DIR,
    record: Recorder | None = None,
    cpu: int = -1,
) -> Node:
    """Make node ``name``: its network namespace ``run_dir/name``, its directories under
    ``root`` (``SCRATCH_DIRS`` under ``scratch`` when given: :func:`scratch_root`) and its
    mount namespace held on ``ns_dir/name``. ``record`` (e.g.
    ``LabState.record``) hears of each namespace before it is made. Pass ``cpu=sandbox.cpu``
    (see ``sandbox.pin_to``: needed on Linux >= 6.18 with more than one CPU)."""
    check_name(name, "node name")
    root = check_abs_path(os.path.abspath(root), "node dir")
    if scratch is not None:
        scratch = check_abs_path(os.path.abspath(scratch), "node scratch dir")
    mnt_path = os.path.join(ns_dir, name)
    net_path = netlink.netns_path(name, run_dir)
    prepare_dirs(root, cni_bin, scratch)
    sources = {m: node_dir(root, scratch, m) for m in NODE_DIRS}
    if record is not None:
        record("netns", name, phase="intent", path=net_path)
    netlink.create_netns(name, run_dir)
    if record is not None:
        record("mntns", name, phase="intent", path=mnt_path)
    try:
        _make_mntns(mnt_path, sources, cpu)
    except BaseException:
        netlink.delete_netns(name, run_dir)
        raise
    return Node(name=name, netns=net_path, mntns=mnt_path, root=root, scratch=scratch)


def delete_node(node: Node, *, remove_dirs: bool = False) -> None:
    """Remove the node's namespaces (and, if asked, its directories); missing is fine."""
    with contextlib.suppress(OSError):
        ns.umount(node.mntns, ns.MNT_DETACH)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(node.mntns)
    netlink.delete_netns(os.path.basename(node.netns), os.path.dirname(node.netns))
    if remove_dirs:
        for base in (node.root, node.scratch):
            if base is not None:
                shutil.rmtree(base, ignore_errors=True)


def _node_mounts(sources: dict[str, str]) -> None:
    """In the node's new mount namespace: its directories (mountpoint -> the directory
    behind it), and a /proc of the lab's PID namespace (the caller lives in it), so the
    plugins run on the node (in it too) find themselves in /proc/self, /proc/PID."""
    for mountpoint, source in sources.items():
        ns.mount(source, mountpoint, None, ns.MS_BIND)
    ns.mount("proc", "/proc", "proc", ns.MS_NOSUID | ns.MS_NODEV | _MS_NOEXEC)


def _in_lab_pids() -> bool:
    """Whether this process can make a node's mount namespace itself: it lives in the
    lab's PID namespace (a forked worker: ``/proc``, the host's, knows it by another PID)
    and has one thread (``unshare``/``setns`` of a mount namespace need that)."""
    try:
        nested = os.readlink("/proc/self") != str(os.getpid())
    except OSError:
        return False
    return nested and ns.thread_count() == 1


def _make_mntns(path: str, sources: dict[str, str], cpu: int) -> None:
    """A mount namespace with the node's directories, pinned on ``path``: made by this
    process itself where it can (``_in_lab_pids``), else by a forked child that this
    process pins it from."""
    os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o444))
    if _in_lab_pids():
        try:
            _make_mntns_here(path, sources, cpu)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            raise
        return

    def setup() -> None:  # in the child
        sandbox.pin_to(cpu)
        ns.unshare(ns.CLONE_NEWNS)
        _node_mounts(sources)

    try:
        with ns.held_child(setup) as pid:
            try:
                ns.mount(ns.ns_file(pid, "mnt"), path, None, ns.MS_BIND)
            except OSError as exc:
                raise NodeError(
                    f"cannot pin the node's mount namespace on {path}: {exc} (was cpu= the "
                    "sandbox's cpu? see sandbox.pin_to)"
                ) from exc
    except ns.ChildSetupError as exc:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise NodeError(f"cannot make the node's mount namespace: {exc}") from exc
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        raise


def _make_mntns_here(path: str, sources: dict[str, str], cpu: int) -> None:
    """``_make_mntns`` without a fork: unshare (on ``cpu`` for that moment, see
    ``sandbox.pin_to``), mount, step back into this process's own mount namespace and pin
    the new one on ``path`` from there."""
    home = os.open(ns.ns_file("self", "mnt"), os.O_RDONLY | os.O_CLOEXEC)
    cwd = os.open(".", os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    made = -1
    try:
        allowed = os.sched_getaffinity(0)
        try:
            sandbox.pin_to(cpu)
            ns.unshare(ns.CLONE_NEWNS)
        finally:
            os.sched_setaffinity(0, allowed)
        try:
            made = os.open(ns.ns_file("self", "mnt"), os.O_RDONLY | os.O_CLOEXEC)
            _node_mounts(sources)
        finally:
            ns.setns(home, ns.CLONE_NEWNS)
            os.fchdir(cwd)
        try:
            ns.mount(f"/proc/self/fd/{made}", path, None, ns.MS_BIND)
        except OSError as exc:
            raise NodeError(
                f"cannot pin the node's mount namespace on {path}: {exc} (was cpu= the "
                "sandbox's cpu? see sandbox.pin_to)"
            ) from exc
    except OSError as exc:
        raise NodeError(f"cannot make the node's mount namespace: {exc}") from exc
    finally:
        for fd in (made, cwd, home):
            if fd >= 0:
                os.close(fd)
