"""A Debian VM with a kernel that has what this machine's lacks (802.1q, ipvlan, bridge VLAN
filtering), for `make test-kernel`.

Built once and cached under .cache/kernel-vm/ of the checkout: Debian's kernel package
(unpacked, never installed on the host), a debootstrap'd bookworm root with the real CNI
plugins and that kernel's modules, an ext4 image of it (``mkfs.ext4 -d``: no loop mount on
the host), and a small initramfs of our own (static busybox and the modules that find and
mount the root disk). Each run boots it under qemu's software emulation with the root as a
throwaway snapshot, a second disk carrying the guest's script, and the serial console as its
output; the guest prints ``KERNELVM-EXIT=<rc>`` before it powers off.

Nothing of the host changes: no module, sysctl, link or mount; qemu is stopped by its PID.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

KVER = "6.1.0-57-amd64"
KERNEL_DEB = f"linux-image-{KVER}"
SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"
ROOT_PACKAGES = (
    "iproute2",
    "containernetworking-plugins",
    "dnsmasq-base",
    "python3",
    "kmod",
    "procps",
    "iputils-ping",
    "util-linux",
    "tcpdump",  # multihome capture: the trunk's tagged frames
)
# Modules the initramfs loads to reach the root disk (their dependencies come along).
BOOT_MODULES = ("virtio_pci", "virtio_blk", "crc32c_generic", "ext4")
ROOT_IMAGE_MB = 1536
EXIT_MARK = "KERNELVM-EXIT="
GUEST_PYTHON = (3, 11)  # bookworm's python3

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("MULTIHOME_KERNEL_VM_CACHE", REPO / ".cache" / "kernel-vm"))

GUEST_INIT = r"""#!/bin/sh
# PID 1 of the test VM: mount the basics, run /run-disk/main.sh, print its exit code, power off.
PATH=/usr/sbin:/usr/bin:/sbin:/bin
export PATH
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup 2>/dev/null
mkdir -p /run/netns
hostname kernelvm
ip link set lo up
mkdir -p /run-disk
rc=99
if mount -t ext4 /dev/vdb /run-disk; then
    cd /run-disk
    sh ./main.sh
    rc=$?
    cd /
    sync
    umount /run-disk
else
    echo "kernelvm: cannot mount the run disk /dev/vdb"
fi
echo "KERNELVM-EXIT=$rc"
sync
mount -o remount,ro / 2>/dev/null
sleep 0  # in the page cache before the disk goes away
echo o > /proc/sysrq-trigger
sleep 30
"""

INITRAMFS_INIT = r"""#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev
for m in $(cat /modules.order); do insmod "/modules/$m" || echo "initramfs: insmod $m failed"; done
mkdir -p /newroot
i=0
while [ ! -b /dev/vda ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i+1)); done
mount -t ext4 -o rw /dev/vda /newroot || { echo "initramfs: cannot mount /dev/vda"; poweroff -f; }
umount /proc
umount /dev
exec switch_root /newroot /sbin/kernelvm-init
"""


def log(msg: str) -> None:
    print(f"[kernel-vm] {msg}", file=sys.stderr, flush=True)


def _run(*argv: str | Path, **kw: object) -> None:
    subprocess.run([str(a) for a in argv], check=True, **kw)  # type: ignore[call-overload]


@contextlib.contextmanager
def timed(what: str) -> Iterator[None]:
    start = time.monotonic()
    yield
    log(f"{what}: {time.monotonic() - start:.1f} s")


def _download(pkg: str, into: Path) -> Path:
    into.mkdir(parents=True, exist_ok=True)
    found = sorted(into.glob(f"{pkg}_*.deb"))
    if not found:
        _run("apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", pkg, cwd=into)
        found = sorted(into.glob(f"{pkg}_*.deb"))
    return found[-1]


def _unpack(deb: Path, into: Path) -> Path:
    if not into.exists():
        tmp = into.with_name(into.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        _run("dpkg-deb", "-x", deb, tmp)
        tmp.rename(into)
    return into


def root_key() -> str:
    """What the root is made of (packages, kernel, init): its cached parts are named by it,
    so a change rebuilds them and a stale one is removed."""
    made_of = "\n".join([*ROOT_PACKAGES, KVER, SUITE, GUEST_INIT])
    return hashlib.sha256(made_of.encode()).hexdigest()[:12]


def _drop_stale(key: str) -> None:
    for old in CACHE.glob("*"):
        stem = old.name.split(".")[0]
        kinds = ("rootfs", "debootstrap", "root", "initramfs")
        if stem in kinds or (
            stem.startswith(tuple(f"{k}-" for k in kinds)) and not stem.endswith(key)
        ):
            with timed(f"removing the stale {old.name}"):
                if old.is_dir():
                    shutil.rmtree(old)
                else:
                    old.unlink()


def _rootfs(kernel: Path) -> Path:
    key = root_key()
    root = CACHE / f"rootfs-{key}"
    if root.exists():
        return root
    _drop_stale(key)
    boot = CACHE / f"debootstrap-{key}"
    if not boot.exists():
        part = CACHE / f"debootstrap-{key}.tmp"
        shutil.rmtree(part, ignore_errors=True)
        with timed("debootstrap"):
            _run(
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(ROOT_PACKAGES)}",
                SUITE,
                part,
                MIRROR,
                stdout=subprocess.DEVNULL,
            )
        part.rename(boot)
    tmp = CACHE / f"rootfs-{key}.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    with timed("copy of the debootstrap root"):
        _run("cp", "-a", boot, tmp)
    with timed("modules into the root + depmod"):
        shutil.copytree(kernel / "lib/modules" / KVER, tmp / "lib/modules" / KVER, symlinks=True)
        # chroot without any mount: depmod only reads and writes files under the root.
        _run("chroot", tmp, "depmod", KVER)
    init = tmp / "sbin/kernelvm-init"
    init.write_text(GUEST_INIT)
    init.chmod(0o755)
    (tmp / "etc/hostname").write_text("kernelvm\n")
    tmp.rename(root)
    return root


def _module_closure(root: Path) -> list[str]:
    """Module paths (relative to lib/modules/KVER) for BOOT_MODULES, dependencies first."""
    base = root / "lib/modules" / KVER
    deps: dict[str, list[str]] = {}
    for line in (base / "modules.dep").read_text().splitlines():
        mod, _, rest = line.partition(":")
        deps[mod] = rest.split()
    by_name = {re.sub(r"\.ko(\.\w+)?$", "", Path(m).name).replace("-", "_"): m for m in deps}
    order: list[str] = []

    def add(mod: str) -> None:
        if mod in order:
            return
        # modules.dep lists every (transitive) dependency; the last one is loaded first.
        for dep in reversed(deps[mod]):
            add(dep)
        order.append(mod)

    for name in BOOT_MODULES:
        if name in by_name:  # absent: built into this kernel
            add(by_name[name])
    return order


def _newc(top: Path) -> bytes:
    """A cpio archive (the kernel's "newc" format) of the tree under ``top``."""
    out = bytearray()

    def entry(name: str, mode: int, data: bytes, ino: int) -> None:
        fields = (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name) + 1, 0)
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields) + name.encode() + b"\0")
        out.extend(b"\0" * (-len(out) % 4))
        out.extend(data)
        out.extend(b"\0" * (-len(out) % 4))

    for ino, path in enumerate(sorted(top.rglob("*")), start=1):
        st = path.lstat()
        data = b"" if path.is_dir() else path.read_bytes()
        entry(str(path.relative_to(top)), st.st_mode, data, ino)
    entry("TRAILER!!!", 0, b"", 0)
    return bytes(out)


def _initramfs(root: Path, busybox_pkg: Path) -> Path:
    out = CACHE / f"initramfs-{root_key()}.cpio.gz"
    if out.exists():
        return out
    with tempfile.TemporaryDirectory(dir=CACHE) as tmpdir:
        tmp = Path(tmpdir)
        for d in ("bin", "proc", "dev", "modules", "newroot"):
            (tmp / d).mkdir()
        shutil.copy(busybox_pkg / "bin/busybox", tmp / "bin/busybox")
        names = []
        for rel in _module_closure(root):
            src = root / "lib/modules" / KVER / rel
            shutil.copy(src, tmp / "modules" / src.name)
            names.append(src.name)
        (tmp / "modules.order").write_text("\n".join(names) + "\n")
        (tmp / "init").write_text(INITRAMFS_INIT)
        (tmp / "init").chmod(0o755)
        part = out.with_suffix(".tmp")
        part.write_bytes(gzip.compress(_newc(tmp)))
        part.rename(out)
    return out


def _ext4(src: Path, image: Path, size_mb: int) -> None:
    image.unlink(missing_ok=True)
    with image.open("wb") as f:
        f.truncate(size_mb * 1024 * 1024)
    _run("mkfs.ext4", "-q", "-F", "-E", "root_owner=0:0", "-d", src, image)


def _compile(tree: Path) -> None:
    """Byte-compile on the host: the guest's Python (bookworm's 3.11, the same bytecode) runs
    about 30x slower under emulation and would otherwise compile every import on each boot."""
    if sys.version_info[:2] != GUEST_PYTHON:
        return  # other bytecode: the guest compiles for itself
    _run(
        sys.executable, "-m", "compileall", "-q", "-j", "0",
        "--invalidation-mode", "unchecked-hash", tree,
        stdout=subprocess.DEVNULL,
    )  # fmt: skip


def pydeps() -> Path:
    """The project's runtime dependencies for the guest's python3 (bookworm's 3.11, as the
    host's), installed with pip into a folder of their own, keyed by the dependency list."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = sorted(project["dependencies"])
    key = hashlib.sha256("\n".join(wanted).encode()).hexdigest()[:12]
    out = CACHE / f"pydeps-{key}"
    if out.exists():
        return out
    part = out.with_suffix(".tmp")
    shutil.rmtree(part, ignore_errors=True)
    pip = REPO / ".venv/bin/pip"
    with timed("pip install of the guest's Python dependencies"):
        _run(
            pip if pip.exists() else "pip",
            "install", "-q", "--disable-pip-version-check", "--no-compile",
            "--target", part,
            *wanted,
        )  # fmt: skip
        _compile(part)
    part.rename(out)
    return out


def run_dir(into: Path, guest_scripts: list[str], with_project: bool) -> Path:
    """A run disk's tree: the guest scripts (tests/kernel/guest/), main.sh running them in
    order, and with_project: the checkout's multihome package, tests/kernel/labs and pydeps."""
    guest = REPO / "tests/kernel/guest"
    # Mounts shared, as systemd leaves them on every real host (the lab's sandbox expects it).
    lines = ["#!/bin/sh", "mount --make-rshared /", "rc=0"]
    for name in guest_scripts:
        shutil.copy(guest / name, into / name)
        lines.append(f'echo "=== {name}"; sh ./{name} || rc=1')
    lines.append("exit $rc")
    (into / "main.sh").write_text("\n".join(lines) + "\n")
    if with_project:
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        shutil.copytree(REPO / "multihome", into / "src/multihome", ignore=ignore)
        shutil.copytree(REPO / "tests/kernel/labs", into / "labs")
        # the trunk lab of tests/lab (emulated there), built here with real 802.1q
        shutil.copy(REPO / "tests/lab/labs/trunk.yaml", into / "labs" / "trunk.yaml")
        # Hard links: the run disk's tree is read by mkfs.ext4 -d, never written.
        _run("cp", "-al", pydeps(), into / "pydeps")
        _compile(into / "src")
    return into


def build() -> dict[str, Path]:
    """Everything the VM needs, built once (each step cached on its own)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    debs = CACHE / "debs"
    with timed("kernel + busybox packages"):
        kernel = _unpack(_download(KERNEL_DEB, debs), CACHE / "kernel")
        busybox = _unpack(_download("busybox-static", debs), CACHE / "busybox")
    root = _rootfs(kernel)
    image = CACHE / f"root-{root_key()}.img"
    if not image.exists():
        with timed("root ext4 image"):
            part = image.with_suffix(".tmp")
            _ext4(root, part, ROOT_IMAGE_MB)
            part.rename(image)
    with timed("initramfs"):
        initrd = _initramfs(root, busybox)
    return {"kernel": kernel / "boot" / f"vmlinuz-{KVER}", "initrd": initrd, "root": image}


def boot(parts: dict[str, Path], run_dir: Path, timeout: float = 900.0) -> tuple[int, str]:
    """Boot the VM with ``run_dir`` (holding main.sh) as its second disk; (exit code, console).

    The exit code is the guest's main.sh's, or -1 when the guest did not report one.
    """
    with tempfile.TemporaryDirectory(dir=CACHE) as tmpdir:
        disk = Path(tmpdir) / "run.img"
        size = max(
            64, sum(f.stat().st_size for f in run_dir.rglob("*") if f.is_file()) // 2**20 * 2 + 64
        )
        _ext4(run_dir, disk, size)
        argv = [
            "qemu-system-x86_64",
            "-accel", "tcg",
            "-cpu", "max",
            "-smp", os.environ.get("MULTIHOME_KERNEL_VM_CPUS", "2"),
            "-m", "2048",
            "-display", "none",
            "-monitor", "none",
            "-serial", "stdio",
            "-no-reboot",
            "-nic", "none",
            "-kernel", str(parts["kernel"]),
            "-initrd", str(parts["initrd"]),
            "-append", "console=ttyS0 panic=-1 loglevel=4 net.ifnames=0",
            "-drive", f"file={parts['root']},if=virtio,format=raw,snapshot=on",
            "-drive", f"file={disk},if=virtio,format=raw",
        ]  # fmt: skip
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        lines: list[str] = []
        # A silent, hung guest is killed too: the watchdog ends qemu, which ends the read.
        fired = threading.Event()

        def kill() -> None:
            fired.set()
            proc.kill()  # our own qemu, by its PID

        watchdog = threading.Timer(timeout, kill)
        watchdog.start()
        try:
            assert proc.stdout is not None
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip("\r\n")
                lines.append(line)
                if os.environ.get("MULTIHOME_KERNEL_VM_ECHO"):
                    print(line, file=sys.stderr, flush=True)
        finally:
            watchdog.cancel()
            if proc.poll() is None:
                proc.kill()
            proc.wait()
        if fired.is_set():
            lines.append(f"kernel-vm: qemu killed after {timeout:.0f} s")
    rc = -1
    for line in lines:
        m = re.match(rf".*{EXIT_MARK}(-?\d+)\s*$", line)
        if m:
            rc = int(m.group(1))
    return rc, "\n".join(lines)


def main(argv: list[str]) -> int:
    """`python tests/kernel/vm.py build` or `... run DIR` (DIR holds main.sh)."""
    if not argv or argv[0] not in ("build", "run"):
        print("usage: vm.py build | run DIR", file=sys.stderr)
        return 2
    with timed("build (cached parts skipped)"):
        parts = build()
    if argv[0] == "build":
        return 0
    with timed("boot + guest script"):
        rc, out = boot(parts, Path(argv[1]))
    print(out)
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
