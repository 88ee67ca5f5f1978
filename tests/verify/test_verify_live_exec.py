"""The exec tier of ``verify --kubeconfig`` without a cluster: ``ip`` output as the lab's
pods print it (iproute2) parsed into the checks' evidence; probes that use what the image
has (wget, else curl) and a missing tool as a skip with its name; and a check fails on
what it measured even when some of its probes could not run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from clusterkit import kubeconfig, recorded, transport

from multihome.cluster.podexec import ExecResult
from multihome.plan import build_plan
from multihome.spec import load_lab
from multihome.verify import live, podread
from multihome.verify.collect import Route, RouteTo
from multihome.verify.report import Report

PLAN = build_plan(load_lab(None))
NET_TOOLS = "multus-network-attachments/net-tools"

# `ip addr show`, `ip route show` and `ip route get` in the seed lab's net-tools (iproute2)
IP_ADDR = """\
1: lo: <LOOPBACK,UP,LOWER_UP> mtu 65536 qdisc noqueue state UNKNOWN group default qlen 1000
    link/loopback 00:00:00:00:00:00 brd 00:00:00:00:00:00
    inet 127.0.0.1/8 scope host lo
       valid_lft forever preferred_lft forever
2: eth0@if6: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1450 qdisc noqueue state UP group default
    link/ether 5a:4b:f4:09:18:f7 brd ff:ff:ff:ff:ff:ff link-netnsid 0
    inet 10.42.3.3/32 scope global eth0
       valid_lft forever preferred_lft forever
    inet6 fe80::584b:f4ff:fe09:18f7/64 scope link
       valid_lft forever preferred_lft forever
3: net1@if3: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500 qdisc noqueue state UP group default
    link/ether de:b3:c1:2f:d0:7f brd ff:ff:ff:ff:ff:ff link-netnsid 0
    inet 172.16.50.88/24 brd 172.16.50.255 scope global net1
       valid_lft forever preferred_lft forever
4: net2@if4: <BROADCAST,MULTICAST,DOWN> mtu 1500 qdisc noqueue state DOWN group default
    link/ether 42:08:61:ee:b4:a1 brd ff:ff:ff:ff:ff:ff link-netnsid 0
    inet 172.16.60.92/24 brd 172.16.60.255 scope global net2
       valid_lft forever preferred_lft forever
"""
IP_ROUTE = """\
default via 169.254.1.1 dev eth0
169.254.1.1 dev eth0 scope link
172.16.50.0/24 dev net1 proto kernel scope link src 172.16.50.88
172.16.60.0/24 dev net2 proto kernel scope link src 172.16.60.92
"""
ROUTE_GET = "172.16.60.31 dev net2 src 172.16.60.92 uid 0 \n    cache \n"
NOT_FOUND = (
    "sh: 1: exec: {}: not found\n"  # the lab's exec; a kubelet says 'executable file not found'
)


def test_parse_ip_output() -> None:
    ifaces = podread.parse_addr(IP_ADDR)
    assert list(ifaces) == ["lo", "eth0", "net1", "net2"]
    assert ifaces["eth0"].addresses == ("10.42.3.3/32",) and ifaces["eth0"].up
    assert ifaces["net1"].mac == "de:b3:c1:2f:d0:7f"
    assert not ifaces["net2"].up
    routes = podread.parse_routes(IP_ROUTE)
    assert routes[0] == Route("default", "169.254.1.1", "eth0")
    assert routes[2] == Route("172.16.50.0/24", None, "net1")
    assert podread.parse_route_get(ROUTE_GET) == RouteTo("net2", None, "172.16.60.92")
    assert podread.parse_route_get("RTNETLINK answers: Network is unreachable") is None


class FakePods:
    """Answers the collector's commands as pods would: ``ip`` from each pod's recorded
    network-status, no ``ping`` in any image, and ``http`` by ``http_answer``."""

    def __init__(self, objects: dict[str, Any], http: dict[str, tuple[int, str]]) -> None:
        self.pods = {p["metadata"]["name"]: p for p in objects["pods"]}
        self.http = http
        self.calls: list[list[str]] = []

    async def run(
        self, namespace: str, pod: str, command: list[str], container: str | None, timeout: float
    ) -> ExecResult:
        self.calls.append(command)
        tool = command[0]
        if tool == "ip":
            return ExecResult(0, self._ip(pod, command[1:]), "")
        if tool in self.http:
            code, text = self.http[tool]
            return ExecResult(code, "", text)
        return ExecResult(127, "", NOT_FOUND.format(tool), None, missing=True)

    def _ip(self, pod: str, args: list[str]) -> str:
        status = json.loads(
            self.pods[pod]["metadata"]["annotations"]["k8s.v1.cni.cncf.io/network-status"]
        )
        if args[:2] == ["addr", "show"]:
            return "".join(
                f"{n}: {e['interface']}@if{n + 5}: <BROADCAST,MULTICAST,UP,LOWER_UP> mtu 1500\n"
                f"    link/ether {e['mac']} brd ff:ff:ff:ff:ff:ff\n"
                f"    inet {e['ips'][0]}/{32 if e.get('default') else 24} scope global {e['interface']}\n"
                for n, e in enumerate(status, 2)
            )
        routes = ["default via 169.254.1.1 dev eth0", "169.254.1.1 dev eth0 scope link"]
        for e in status[1:]:
            net = e["ips"][0].rsplit(".", 1)[0] + ".0/24"
            routes.append(f"{net} dev {e['interface']} proto kernel scope link src {e['ips'][0]}")
        if args[:2] == ["route", "show"]:
            return "\n".join(routes) + "\n"
        dst = args[2]
        dev = next(
            (
                e["interface"]
                for e in status[1:]
                if dst.startswith(e["ips"][0].rsplit(".", 1)[0] + ".")
            ),
            "eth0",
        )
        via = "" if dev != "eth0" else " via 169.254.1.1"
        return f"{dst}{via} dev {dev} src 10.0.0.1 uid 0\n    cache\n"


def run(tmp_path: Path, http: dict[str, tuple[int, str]]) -> tuple[Report, FakePods]:
    objects = recorded()
    pods = FakePods(objects, http)
    config = kubeconfig(tmp_path / "kubeconfig")
    report = live.run(PLAN, str(config), transport=transport(objects), runner=pods)
    return report, pods


def check(report: Report, name: str) -> Any:
    return next(c for c in report.checks if c.name == name)


def test_exec_tier_reads_the_kernel_and_skips_what_the_image_cannot_probe(tmp_path: Path) -> None:
    report, pods = run(tmp_path, {"curl": (0, "")})
    assert report.ok, [c.name for c in report.failed]
    assert check(report, f"default-route {NET_TOOLS}").status == "pass"
    assert "match the kernel" in check(report, f"network-status {NET_TOOLS}").evidence[0]
    # no wget in the image: curl answered the expect entry's HTTP probe
    expect = check(report, "expect #1")
    assert expect.status == "pass" and "curl: answered" in expect.evidence[0]
    assert ["wget", "-q", "-O", "/dev/null", "-T", "2", "http://172.16.60.31:80/"] in pods.calls
    # ping is missing everywhere: those checks are skips that name it, in the exec tier
    p2p = check(report, "pod-to-pod cluster network")
    assert (p2p.status, p2p.tier) == ("skip", "exec")
    assert p2p.cause == "the image of multus-network-attachments/net-tools has no ping"


def test_a_check_fails_on_what_it_measured_though_another_probe_could_not_run(
    tmp_path: Path,
) -> None:
    """net-tools' reach of vlan60: the web host's HTTP (measured) times out, the DHCP
    server's ping can't run: a failure, not a skip."""
    report, _ = run(tmp_path, {"wget": (1, "wget: download timed out")})
    reach = check(report, f"reach {NET_TOOLS} vlan60")
    assert reach.status == "fail", reach
    assert any("no ping" in line for line in reach.evidence)
    assert "no answer from host web over net2" in (reach.cause or "")
    assert check(report, f"reach {NET_TOOLS} vlan50").status == "skip"  # only ping there
    assert check(report, "expect #1").status == "fail"


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        ((4, "wget: can't connect to remote host: Connection refused"), "refused"),
        ((1, "wget: download timed out"), "timeout"),
        ((0, ""), "answered"),
    ],
)
def test_probe_outcomes(tmp_path: Path, answer: tuple[int, str], outcome: str) -> None:
    report, _ = run(tmp_path, {"wget": answer})
    expect = check(report, "expect #1")
    assert (expect.status == "pass") is (outcome == "answered")
    if outcome == "refused":
        assert "refused port 80" in (expect.cause or "")
