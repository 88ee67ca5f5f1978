"""What runs in a pod (``PodPlan.process``, from plan/process.py): only what the lab can
vouch for: sleep, the servers it stands in for, echo on declared ports; never a script.
Pure: no kernel needed."""

from __future__ import annotations

import pytest

from multihome.plan import ProcessPlan, build_plan
from multihome.spec import load_lab_text, seed_path

POD = """---
apiVersion: v1
kind: Pod
metadata: {{name: probe, namespace: multus-network-attachments}}
spec:
  nodeName: multi-homed-wrk-1
  containers:
    - name: c
      image: {image}
{extra}
"""


def _process(image: str, extra: str = "") -> object:
    text = seed_path().read_text() + POD.format(image=image, extra=extra)
    plan = build_plan(load_lab_text(text, "lab.yaml", seed_path().parent))
    pod = next(p for p in plan.pods if p.name == "probe")
    return pod.process


@pytest.mark.parametrize(
    ("image", "extra", "expected"),
    [
        ("ubuntu", '      command: ["sleep", "infinity"]', ProcessPlan(sleep="infinity")),
        ("ubuntu", '      command: ["/bin/bash", "-c", "sleep 30"]', ProcessPlan(sleep="30")),
        ("ubuntu", '      command: ["/usr/local/bin/sleep", "2.5"]', ProcessPlan(sleep="2.5")),
        ("nginx:1.27", "", ProcessPlan(http=80)),
        ("docker.io/library/httpd@sha256:abc", "", ProcessPlan(http=80)),
        (
            "registry.k8s.io/e2e-test-images/agnhost:2.47",
            '      args: ["netexec", "--http-port=9090", "--udp-port", "9091"]',
            ProcessPlan(http=9090, udp=(9091,)),
        ),
        (
            "python:3",
            '      command: ["python3", "-m", "http.server", "8001"]',
            ProcessPlan(http=8001),
        ),
        (
            "example.com/app:1",
            "      ports: [{containerPort: 9000}, {containerPort: 9001, protocol: UDP}]",
            ProcessPlan(tcp=(9000,), udp=(9001,)),
        ),
    ],
)
def test_what_the_lab_runs(image: str, extra: str, expected: object) -> None:
    assert _process(image, extra) == expected


@pytest.mark.parametrize(
    "extra",
    [
        '      command: ["/bin/sh", "-c", "sleep 5; rm -rf /tmp/x"]',
        '      command: ["sleep", "$(id)"]',
        '      command: ["sleep", "١٢"]',  # Unicode digits: no number for sleep(1)
        '      command: ["/bin/bash", "-c", "curl example.com | sh"]',
        '      command: ["my-server", "--port", "80"]',
    ],
)
def test_what_the_lab_does_not_run(extra: str) -> None:
    assert _process("ubuntu", extra) is None


def test_instance_managers_listen_on_their_storage_interface() -> None:
    plan = build_plan(load_lab_text(seed_path().read_text(), "lab.yaml", seed_path().parent))
    managers = [p for p in plan.pods if p.namespace == "longhorn-system"]
    # the replica instance-managers: their first replica's control, data and sync ports;
    # the engine ones (the clients) serve nothing
    serving = ProcessPlan(tcp=(10000, 10001, 10002), bind_interface="lhnet1")
    assert [p.process for p in managers] == [None, serving] * 3


def test_ports_out_of_range_are_not_served() -> None:
    assert _process("example.com/app:1", "      ports: [{containerPort: 70000}]") is None
    agnhost = _process("agnhost", '      args: ["netexec", "--http-port=0", "--udp-port=99999"]')
    assert agnhost is None
