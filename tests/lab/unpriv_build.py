"""Run by test_lab_unprivileged.py as an unprivileged user: the whole primitive chain
(state + lock, sandbox with node mountpoints, bridge, two nodes with veths and addresses,
ping, a daemon on a node, teardown) and a JSON report on stdout."""

from __future__ import annotations

import json
import os
import sys

from labkit import ping

from multihome.lab import netlink, nodes, processes, sandbox
from multihome.lab.state import LabState


def main() -> None:
    st = LabState("unpriv")
    report: dict[str, object] = {"uid": os.geteuid()}
    with st.lock():
        st.prepare()
        token = st.token  # as up does
        os.environ[processes.ENV_LAB] = token
        st.record("sandbox", st.name, token=token)
        sb = sandbox.create(
            st.name, str(st.scratch), mountpoints=nodes.NODE_MOUNTPOINTS, token=token
        )
        st.record("sandbox", st.name, phase="done", **sb.to_dict())

        def build() -> dict[str, object]:
            out: dict[str, object] = {"uid_inside": os.getuid()}
            with netlink.Netlink() as nl:
                top = nl.here()
                top.add_bridge("vlan40", mtu=1500)
                for i in (1, 2):
                    node = nodes.create_node(
                        f"wrk-{i}",
                        root=str(st.node_dir(f"wrk-{i}")),
                        ns_dir=sb.ns_dir,
                        record=st.record,
                        cpu=sb.cpu,
                    )
                    nn = nl.ns(node.netns)
                    top.add_veth(f"wrk-{i}-ens192", "ens192", peer_ns=nn, master="vlan40")
                    nn.set_link("lo", up=True)
                    nn.set_link("ens192", up=True)
                    nn.add_address("ens192", f"172.16.40.{46 + i}/24")
                    nn.set_sysctl("net.ipv4.ip_forward", 1)
                out["ping"] = ping(nl.named("wrk-1").path, "172.16.40.48")
                out["fwd"] = nl.named("wrk-2").get_sysctl("net.ipv4.ip_forward")
            d = processes.start(
                "sleeper",
                ["sleep", "300"],
                netns="/run/netns/wrk-1",
                mntns=os.path.join(sb.ns_dir, "wrk-1"),
                record=st.record,
            )
            out["daemon"] = d.to_dict()
            return out

        report.update(sb.call(build))
        report["daemon_alive"] = processes.Daemon.from_dict(report["daemon"]).alive()  # type: ignore[arg-type]
        st.teardown()
    report["holder_alive"] = sb.alive()
    report["daemon_alive_after"] = processes.Daemon.from_dict(report["daemon"]).alive()  # type: ignore[arg-type]
    report["state_left"] = st.dir.exists()
    json.dump(report, sys.stdout)


if __name__ == "__main__":
    main()
