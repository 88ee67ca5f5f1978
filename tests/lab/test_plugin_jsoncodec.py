"""The plugins' JSON codec (json's C accelerator called directly) reads and writes what
``json.loads``/``json.dumps`` do, errors included, and the calico plugin starts without
importing ``json``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from multihome.lab.plugins import jsoncodec

ROOT = Path(__file__).resolve().parents[2]

VALUES = [
    "{}",
    "[]",
    ' {"cniVersion": "1.0.0", "ipam": {"type": "host-local", "ranges": [[{"subnet": "x"}]]}} \n',
    '[1, -2, 2.5e3, 1E-2, "\\u00e9\\n\\"", null, true, false, {"a": {"b": []}}]',
    '"caf\\u00e9 \xe9 \\ud83d\\ude00"',
    "NaN",
    "-Infinity",
    "12345678901234567890",
]
BAD = ["", "   ", "{", "{} x", "[1,]", '"a', "\n\n  [1,\n ]", "[] \n ]", "{'a': 1}", "tru"]


def test_accelerator_is_used() -> None:
    assert jsoncodec._FAST is not None


@pytest.mark.parametrize("text", VALUES)
def test_same_values_as_json(text: str) -> None:
    got = jsoncodec.loads(text)
    assert repr(got) == repr(json.loads(text))
    assert jsoncodec.loads(text.encode()) == got or text in ("NaN",)
    assert jsoncodec.dumps(got) == json.dumps(got)


@pytest.mark.parametrize("text", BAD)
def test_same_errors_as_json(text: str) -> None:
    with pytest.raises(ValueError) as ours:
        jsoncodec.loads(text)
    with pytest.raises(ValueError) as theirs:
        json.loads(text)
    assert str(ours.value) == str(theirs.value)


def test_calico_starts_without_json() -> None:
    code = (
        f"import sys; sys.path[:0] = [{str(ROOT)!r}]\n"
        "import multihome.lab.plugins.calico\n"
        "print(sorted(m for m in ('json', 're', 'ctypes') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"


def test_calico_enters_a_namespace_without_ctypes() -> None:
    """setns through ``_ctypes`` alone (Python 3.11 has no os.setns); ctypes is loaded only
    to say why one failed."""
    code = (
        f"import sys; sys.path[:0] = [{str(ROOT)!r}]\n"
        "from multihome.lab.plugins import calico\n"
        "calico._setns('/proc/self/ns/net')\n"
        "print('ctypes' in sys.modules)\n"
        "try:\n"
        "    calico._setns('/dev/null')\n"
        "except calico.PluginError as exc:\n"
        "    print(exc.msg, '|', exc.details)\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, check=True
    )
    lines = out.stdout.splitlines()
    assert lines[0] == "False"
    assert lines[1] == "failed to enter netns /dev/null | Invalid argument"
