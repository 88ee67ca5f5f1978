"""A lab build that stops half-way, for the crash tests: run as
``python crash_build.py LAB STAGE``; it prints ``ready`` and then hangs holding the lab's
lock until the test SIGKILLs it. STAGE says how far the journal got:

- ``built``: sandbox, a node, a daemon inside the sandbox: everything recorded;
- ``sandbox-unrecorded``: the sandbox runs but only its intent (token) is in the journal;
- ``daemon-unrecorded``: a daemon outside the lab's PID namespace (so it would survive the
  sandbox) whose PID never reached the journal, only its intent and token.
"""

from __future__ import annotations

import os
import sys
import time

from multihome.lab import netlink, nodes, processes, sandbox
from multihome.lab.state import LabState


def main(lab: str, stage: str) -> None:
    st = LabState(lab)
    st.prepare()
    st.acquire()
    token = st.token  # as up does: the lab's token, in the environment of all it starts
    os.environ[processes.ENV_LAB] = token
    st.record("sandbox", lab, token=token)
    sb = sandbox.create(lab, str(st.scratch), mountpoints=nodes.NODE_MOUNTPOINTS, token=token)
    if stage != "sandbox-unrecorded":
        st.record("sandbox", lab, phase="done", **sb.to_dict())

    def build() -> int:
        with netlink.Netlink() as nl:
            nl.here().add_bridge("vlan40")
            node = nodes.create_node(
                "node1",
                root=str(st.node_dir("node1")),
                ns_dir=sb.ns_dir,
                record=st.record,
                cpu=sb.cpu,
            )
            top = nl.here()
            top.add_veth("node1-ens192", "ens192", peer_ns=nl.ns(node.netns), master="vlan40")
        daemon = processes.start(
            "sleeper", ["sleep", "300"], netns=node.netns, mntns=node.mntns, record=st.record
        )
        return daemon.pid

    sb.call(build)
    if stage == "daemon-unrecorded":
        # a daemon started from outside the sandbox's PID namespace, PID never recorded
        def forget(kind: str, name: str, phase: str = "intent", **data: object) -> None:
            if phase == "intent":
                st.record(kind, name, phase=phase, **data)

        processes.start(
            "outsider",
            ["sleep", "300"],
            netns=sb.host_path("/run/netns/node1"),
            record=forget,
        )
    print("ready", flush=True)
    while True:
        time.sleep(60)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(sys.argv[1], sys.argv[2])
