"""Property: whatever the lab file says, loading plus every design check either succeeds or
raises SpecError; no other exception escapes (the CLI would show a traceback)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from multihome.check import run_checks
from multihome.spec import SpecError, load_lab_text, seed_path

EXAMPLES = [p.read_text() for p in sorted(seed_path().parent.glob("*.yaml"))]
VALUES = [
    "ens224",
    "ens999",
    "vlan50",
    "172.16.50.5",
    "172.16.50.0/24",
    "10.42.0.0/16",
    "-1",
    "0",
    "99999",
    "true",
    "null",
    "[]",
    "{}",
    "''",
    "server",
    "agent",
    "x" * 20,
    "a/b",
    "multus",
    '\'{"cniVersion":"0.3.1","type":"macvlan","master":"ens256","ipam":{"type":"dhcp"}}\'',
    '\'[{"name":"macvlan-private-dhcp","default-route":["172.16.60.1"]}]\'',
    "host-gw",
    "1.1.0",
]


@st.composite
def mutated_example(draw: st.DrawFn) -> str:
    lines = draw(st.sampled_from(EXAMPLES)).splitlines()
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        action = draw(st.sampled_from(["drop", "value", "dup", "indent"]))
        if action == "drop":
            del lines[i]
        elif action == "dup":
            lines.insert(i, line)
        elif action == "indent":
            lines[i] = "  " + line
        elif ": " in line:
            key = line.split(": ", 1)[0]
            lines[i] = f"{key}: {draw(st.sampled_from(VALUES))}"
        if not lines:
            break
    return "\n".join(lines) + "\n"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_example())
def test_mutated_examples_never_crash_the_checks(text: str) -> None:
    try:
        lab_file = load_lab_text(text, "lab.yaml", base_dir=Path(seed_path().parent))
    except SpecError:
        return
    run_checks(lab_file)
