"""``multihome up`` killed at a random moment (SIGKILL to its process group, SIGINT,
SIGTERM), then ``multihome down`` (every other time a ``down`` SIGKILLed half-way first): nothing of the lab is left (no process, namespace, link,
mount or state dir). The moments are drawn from a seeded generator over the time a whole
``up`` of the lab takes here, so a failure can be replayed (the seed and moment are in the
message)."""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from labkit import host_snapshot

from multihome.lab import processes

LAB = Path(__file__).parent / "labs" / "kill.yaml"
SEED = 20261206
KILLS = ["SIGKILL-group", "SIGINT", "SIGTERM", "SIGKILL-group", "SIGINT", "SIGTERM"]
CLI = [sys.executable, "-c", "from multihome.cli import main; main()"]


def _env(root: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MULTIHOME_")}
    env["MULTIHOME_STATE_DIR"] = str(root)
    return env


def _run(argv: list[str], root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, *argv], env=_env(root), capture_output=True, text=True, timeout=120, check=False
    )


def _processes_of(root: Path, token: str | None) -> dict[int, str]:
    """Processes of the run: every one the lab starts inherits MULTIHOME_STATE_DIR=root
    (and carries the lab's token), and dnsmasq's and the servers' command lines name
    files under root."""
    mine = os.getpid()
    wanted = {f"MULTIHOME_STATE_DIR={root}".encode()}
    if token:
        wanted.add(f"{processes.ENV_LAB}={token}".encode())
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == mine:
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read()
            env = processes.environment(int(entry))
        except OSError:
            continue
        if wanted & env or str(root).encode() in cmdline:
            found[int(entry)] = cmdline.replace(b"\0", b" ").decode(errors="replace")
    return found


def _token(root: Path) -> str | None:
    import json

    try:
        return str(json.loads((root / "killme" / "lab.json").read_text())["token"])
    except (OSError, ValueError, KeyError):
        return None


def test_up_killed_at_a_random_moment_then_down_leaves_nothing(
    tmp_path: Path, require_sandbox: None
) -> None:
    before = host_snapshot()
    try:
        # how long a whole up takes here: the kill moments are drawn over it
        root = tmp_path / "whole"
        started = time.monotonic()
        done = _run(["up", str(LAB)], root)
        whole = time.monotonic() - started
        assert done.returncode == 0, done.stdout + done.stderr
        assert _processes_of(root, _token(root)), "the lab's processes should be found"
        assert _run(["down"], root).returncode == 0
        assert _processes_of(root, None) == {}
        rng = random.Random(SEED)
        for run, how in enumerate(KILLS):
            root = tmp_path / f"run{run}"
            moment = rng.uniform(0.0, whole * 1.1)
            where = f"run {run} ({how} at {moment:.3f} s of {whole:.3f} s, seed {SEED})"
            up = subprocess.Popen(
                [*CLI, "up", str(LAB)],
                env=_env(root),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,  # its own process group, as a shell's job would be
            )
            token = None
            try:
                deadline = time.monotonic() + moment
                while time.monotonic() < deadline and up.poll() is None:
                    token = token or _token(root)
                    time.sleep(0.005)
                token = token or _token(root)
                # (past the end of up, there is no one to kill)
                with contextlib.suppress(ProcessLookupError):
                    if how == "SIGKILL-group":
                        os.killpg(up.pid, signal.SIGKILL)
                    else:
                        up.send_signal(getattr(signal, how))
                up.wait(timeout=120)
            finally:
                if up.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(up.pid, signal.SIGKILL)
                    up.wait()
            print(f"{where}: up exited {up.returncode}")  # shown with -s, or on a failure
            if run % 2:  # a down SIGKILLed half-way first: the next down finishes its work
                cut = subprocess.Popen([*CLI, "down"], env=_env(root), start_new_session=True)
                time.sleep(rng.uniform(0.0, 0.3))
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(cut.pid, signal.SIGKILL)
                cut.wait(timeout=120)
            down = _run(["down"], root)
            assert down.returncode == 0, f"{where}: {down.stdout}{down.stderr}"
            assert not root.exists() or os.listdir(root) == [], f"{where}: {os.listdir(root)}"
            assert _processes_of(root, token) == {}, where
    finally:  # pass or fail, no lab of the test stays up
        for root in tmp_path.iterdir():
            _run(["down"], root)
    assert host_snapshot() == before
