"""Ctrl-C and kills end the command silently: exit 130 for an interrupt, during start-up
(the imports) too, and a forked child (the preflight probe of ``up``) never returns into the
command line, whatever happens to its parent."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from multihome.lab import preflight

# A Ctrl-C while the command line's libraries are being imported: the SIGINT is sent from an
# import hook the moment ``typer`` is looked up, i.e. in the middle of ``import multihome.cli``.
INTERRUPTED_IMPORT = """
import os, signal, sys
import multihome.__main__ as entry
assert "typer" not in sys.modules and "multihome.cli" not in sys.modules

class CtrlC:
    def find_spec(self, name, path=None, target=None):
        if name == "typer":
            os.kill(os.getpid(), signal.SIGINT)
        return None

sys.meta_path.insert(0, CtrlC())
sys.argv = ["multihome", "validate"]
entry.main()
print("not interrupted")
"""

# ``multihome up`` whose preflight probe (a forked child) meets its parent's end. ``WHAT``:
# ``ctrl-c``: the terminal's Ctrl-C reaches the whole process group while the probe runs;
# ``killed``: ``up`` is SIGKILLed while the probe runs, and the probe then writes its answer
# into the broken pipe (``die_with_parent`` off, so the child really gets there).
PREFLIGHT = """
import os, signal, sys, time
from multihome.lab import netlink, ns

WHAT = {what!r}

def probe(kinds):
    if WHAT == "ctrl-c":
        os.killpg(0, signal.SIGINT)
        time.sleep(5)
    else:
        parent = os.getppid()
        os.kill(parent, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while os.getppid() == parent and time.monotonic() < deadline:
            time.sleep(0.01)
    return {{kind: None for kind in kinds}}

netlink.probe_link_kinds = probe
if WHAT == "killed":
    ns.die_with_parent = lambda: None
sys.argv = ["multihome", "up"]
import multihome.__main__ as entry
entry.main()
"""


def _python(code: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        start_new_session=True,  # its own process group: a Ctrl-C there stays there
        env=env,
    )


def test_the_console_script_is_the_guarded_entry() -> None:
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "multihome"]
    assert script.value == "multihome.__main__:main"


def test_ctrl_c_during_the_imports_is_silent_and_exits_130() -> None:
    done = _python(INTERRUPTED_IMPORT)
    assert (done.returncode, done.stdout, done.stderr) == (130, "", "")


def _preflight_can_run() -> str | None:
    if preflight.missing_packages():
        return f"up stops earlier here: missing {preflight.missing_packages()}"
    if not os.path.exists("/proc/self/ns/user"):
        return "the probe needs user namespaces"
    return None


@pytest.mark.parametrize(("what", "code"), [("ctrl-c", 130), ("killed", -9)])
def test_the_preflight_child_never_returns_into_the_cli(
    what: str, code: int, tmp_path: Path
) -> None:
    reason = _preflight_can_run()
    if reason:
        pytest.skip(reason)
    env = dict(os.environ, MULTIHOME_STATE_DIR=str(tmp_path / "state"))
    # stdout and stderr are pipes that the probe child inherits: reading them to their end
    # waits for the child too, and anything it printed (a second command line running on
    # after the fork, a "Broken pipe") would be here
    done = _python(PREFLIGHT.format(what=what), env)
    # up prints the seed's validate warning once before the probe, and nothing else
    lines = done.stdout.splitlines()
    assert [line.split(" [")[1].split("]")[0] for line in lines[::2]] == [
        "rke2-dhcp-daemon-missing"
    ], done.stdout
    assert all(line.startswith("    fix: ") for line in lines[1::2]), done.stdout
    stderr = done.stderr.removeprefix("building anyway: verify will show what they do\n")
    assert (done.returncode, stderr) == (code, "")
    assert not (tmp_path / "state" / "multi-homed").exists()  # nothing was built
