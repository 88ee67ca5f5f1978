"""Helpers for the benchmarks that run ``multihome`` as a user does (bench.up_down,
bench.scale): the command, a private state directory, timed runs with their resource use
(``wait4``), peak memory of multihome's own processes sampled from /proc, a wait for the
machine to be idle, and a check that nothing of a lab is left behind."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

MULTIHOME = str(Path(sys.executable).with_name("multihome"))
HOLDER_TAG = b"multihome-sandbox"  # on the sandbox supervisor's command line (sandbox.py)
PAGE = os.sysconf("SC_PAGE_SIZE")


def machine() -> str:
    load = Path("/proc/loadavg").read_text().split()[:3]
    return (
        f"machine: nproc {os.cpu_count()}, kernel {platform.release()}, Python "
        f"{platform.python_version()}, uid {os.geteuid()}, load average {' '.join(load)} "
        "at start"
    )


def code() -> str:
    """Which multihome the ``multihome`` command imports (as it would, from /), and its
    git state when it is a checkout: the commit and how many files under multihome/
    differ from it."""
    found = subprocess.run(
        [sys.executable, "-c", "import multihome; print(multihome.__file__)"],
        capture_output=True,
        text=True,
        cwd="/",
        check=False,
    ).stdout.strip()
    package = Path(found).parent if found else None
    if package is None:
        return "code: multihome not importable"
    text = f"code: {package}"
    git = shutil.which("git")
    if git:
        head = subprocess.run(
            [git, "-C", str(package), "log", "-1", "--format=%h %s"],
            capture_output=True,
            text=True,
            check=False,
        )
        if head.returncode == 0:
            changed = subprocess.run(
                [git, "-C", str(package), "status", "--porcelain", "--", "."],
                capture_output=True,
                text=True,
                check=False,
            ).stdout.splitlines()
            text += f" (git {head.stdout.strip()[:60]}; {len(changed)} file(s) changed or new)"
        else:
            text += " (not a git checkout)"
    return text


@contextlib.contextmanager
def state_dir(prefix: str) -> Iterator[dict[str, str]]:
    """A fresh ``MULTIHOME_STATE_DIR`` (on the same filesystem as /run/multihome, root's
    default, when that is writable: the journal's fsyncs cost what they cost there); yields
    the environment for multihome commands. On exit every lab in it is taken down and the
    directory removed."""
    base = "/run" if os.access("/run", os.W_OK) else None
    path = tempfile.mkdtemp(prefix=prefix, dir=base)
    env = dict(os.environ, MULTIHOME_STATE_DIR=path)
    try:
        yield env
    finally:
        if any(Path(path).iterdir()):
            subprocess.run(
                [MULTIHOME, "down"], env=env, capture_output=True, check=False, timeout=120
            )
        shutil.rmtree(path, ignore_errors=True)


@dataclass
class Run:
    """One command: wall time, exit code, output, and what it used."""

    argv: list[str]
    wall: float
    code: int
    stdout: str
    stderr: str
    maxrss_kib: int  # wait4: the largest RSS of the process and its waited-for descendants
    cpu: float  # user + system of the process and its waited-for descendants
    peak_rss_kib: int = 0  # sampled: sum over multihome's Python processes, at its peak
    peak_pss_kib: int = 0
    peak_procs: int = 0
    samples: int = 0
    token: str | None = None  # the lab's sandbox token (to look for leftovers by)
    stamped: list[tuple[float, str]] = field(default_factory=list)  # (s from start, stderr line)

    def check(self) -> Run:
        if self.code != 0:
            tail = "\n".join((self.stderr or self.stdout).splitlines()[-15:])
            raise RuntimeError(f"{' '.join(self.argv)} exited {self.code}:\n{tail}")
        return self


def run(
    argv: Sequence[str],
    env: dict[str, str],
    *,
    sample_lab: str | None = None,
    interval: float = 0.1,
    stamp_stderr: bool = False,
    timeout: float = 1800,
) -> Run:
    """Run ``argv`` to the end (killed after ``timeout`` s); with ``sample_lab``, sample the
    memory of multihome's own processes meanwhile (see ``MemorySampler``); with
    ``stamp_stderr``, note when each line of stderr arrived."""
    stamped: list[tuple[float, str]] = []
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            list(argv),
            env=env,
            cwd="/",  # so python -c imports what the command would, not ./multihome
            stdout=out,
            stderr=subprocess.PIPE if stamp_stderr else err,
            text=True,
        )
        reader = None
        if proc.stderr is not None:
            pipe = proc.stderr

            def read() -> None:
                for line in pipe:
                    stamped.append((time.perf_counter() - t0, line))

            reader = threading.Thread(target=read, name="stderr-reader", daemon=True)
            reader.start()
        sampler = None
        if sample_lab is not None:
            sampler = MemorySampler(proc.pid, Path(env["MULTIHOME_STATE_DIR"]) / sample_lab)
            sampler.start(interval)
        try:
            _, status, usage = _wait4(proc, timeout)
        finally:
            if sampler is not None:
                sampler.stop()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if reader is not None:
            reader.join()
            assert proc.stderr is not None
            proc.stderr.close()
        out.seek(0)
        err.seek(0)
        done = Run(
            list(argv),
            wall,
            proc.returncode,
            out.read(),
            "".join(line for _, line in stamped) if stamp_stderr else err.read(),
            usage.ru_maxrss,
            usage.ru_utime + usage.ru_stime,
            stamped=stamped,
        )
    if sampler is not None:
        done.peak_rss_kib = sampler.peak_rss // 1024
        done.peak_pss_kib = sampler.peak_pss // 1024
        done.peak_procs = sampler.peak_procs
        done.samples = sampler.samples
        done.token = sampler.token
    return done


def _wait4(proc: subprocess.Popen[str], timeout: float) -> tuple[int, int, resource.struct_rusage]:
    """Block in wait4 (no polling delay in the measured time); kill the process after
    ``timeout`` s."""
    killer = threading.Timer(timeout, proc.kill)
    killer.start()
    try:
        return os.wait4(proc.pid, 0)
    finally:
        killer.cancel()


class MemorySampler:
    """Samples, every ``interval`` s, the memory of multihome's own Python processes: the
    command's process, its descendants whose executable is Python (the child that builds
    the lab inside the sandbox, its short-lived forks), and the sandbox's supervisor (found
    by the PID the lab's journal records; it is re-parented away from the command). Keeps
    the peak of the sum of their RSS, and of their PSS (RSS double-counts the pages a
    fork shares with its parent). Descendants are found through /proc/PID/task/*/children,
    so a sample costs a few reads, not a scan of /proc."""

    def __init__(self, root: int, lab_dir: Path) -> None:
        self.root = root
        self.journal = lab_dir / "journal.jsonl"
        self.holder: int | None = None
        self.token: str | None = None
        self.peak_rss = 0
        self.peak_pss = 0
        self.peak_procs = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-sampler", daemon=True)
        self._interval = 0.1

    def start(self, interval: float) -> None:
        self._interval = interval
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _loop(self) -> None:
        # a sample reads smaps_rollup, a walk of each process's pages: at 1000 pods one took
        # tens of ms, ~9% of the CPU the measured command had at 0.1 s intervals; waiting
        # 20 times a sample's own CPU keeps the sampler under ~5% of one CPU
        while not self._stop.is_set():
            spent = time.thread_time()
            self.sample()
            spent = time.thread_time() - spent
            self._stop.wait(max(self._interval, 20 * spent))

    def sample(self) -> None:
        pids = _descendants(self.root)
        if self.holder is None and (found := _holder_from_journal(self.journal)):
            self.holder, self.token = found
        if self.holder is not None:
            pids.append(self.holder)
        rss = pss = count = 0
        for pid in pids:
            if not _is_python(pid):
                continue
            got = _memory(pid)
            if got is None:
                continue
            rss += got[0]
            pss += got[1]
            count += 1
        self.samples += 1
        if rss > self.peak_rss:
            self.peak_rss, self.peak_procs = rss, count
        self.peak_pss = max(self.peak_pss, pss)


def _descendants(root: int) -> list[int]:
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            with contextlib.suppress(OSError):
                todo.extend(
                    int(k) for k in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()
                )
    return found


def _holder_from_journal(journal: Path) -> tuple[int, str] | None:
    """The sandbox supervisor's PID and token, once the journal records them."""
    try:
        with journal.open() as fh:
            for line in fh:
                if '"kind":"sandbox"' in line and '"pid"' in line:
                    entry = json.loads(line)
                    return int(entry["pid"]), str(entry["token"])
    except (OSError, ValueError, KeyError):
        return None
    return None


def _is_python(pid: int) -> bool:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe")).startswith("python")
    except OSError:
        return False


def _memory(pid: int) -> tuple[int, int] | None:
    """(RSS, PSS) in bytes."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    except OSError:
        return None
    values = {}
    for line in text.splitlines()[1:]:
        key, _, rest = line.partition(":")
        parts = rest.split()
        if parts and parts[0].isdigit():
            values[key] = int(parts[0]) * 1024
    if "Rss" not in values:
        return None
    return values["Rss"], values.get("Pss", values["Rss"])


def settle(max_wait: float = 30.0, idle: float = 0.85, window: float = 0.5) -> float:
    """Wait until the machine is mostly idle (``idle`` share of CPU time over ``window`` s)
    — after a lab is removed the kernel frees its namespaces in the background — up to
    ``max_wait`` s; returns how long it waited."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < max_wait:
        a = _cpu_times()
        time.sleep(window)
        b = _cpu_times()
        busy, total = b[0] - a[0], b[1] - a[1]
        if total > 0 and 1 - busy / total >= idle:
            break
    return time.monotonic() - t0


def _cpu_times() -> tuple[int, int]:
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]
    total = sum(fields[:8])
    return total - idle, total


def leftovers(env: dict[str, str], lab: str, tokens: Sequence[str | None] = ()) -> list[str]:
    """What a lab of ours left behind: its state directory, a sandbox supervisor with one
    of ``tokens``, any process whose command line names our state directory (dnsmasq,
    servers). Other labs of the same name (someone else's) are not ours to report."""
    found = []
    root = env["MULTIHOME_STATE_DIR"]
    if (Path(root) / lab).exists():
        found.append(f"state dir {Path(root) / lab}")
    marks = [t.encode() for t in tokens if t]
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        words = raw.split(b"\0")
        if HOLDER_TAG in words and any(m in words for m in marks):
            found.append(f"sandbox supervisor pid {entry.name}")
        elif root.encode() in raw:
            argv = raw.replace(b"\0", b" ").decode(errors="replace")
            found.append(f"pid {entry.name}: {argv[:80]}")
    return found


@dataclass
class Stats:
    values: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    def fmt(self, unit: float = 1.0, digits: int = 2) -> str:
        """``median (min-max)``."""
        v = [x * unit for x in self.values]
        if len(v) == 1:
            return f"{v[0]:.{digits}f}"
        return f"{statistics.median(v):.{digits}f} ({min(v):.{digits}f}-{max(v):.{digits}f})"
