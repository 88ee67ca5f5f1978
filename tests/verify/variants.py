"""The seed design and its broken variants, as lab-file texts (small edits of the seed)."""

from __future__ import annotations

from multihome.spec import LabFile, load_lab_text, seed_path

SEED = seed_path().read_text()


def edit(*pairs: tuple[str, str], text: str = SEED, name: str | None = None) -> str:
    """The seed with each ``(old, new)`` replaced once (``old`` must be there)."""
    for old, new in pairs:
        assert text.count(old) >= 1, old
        text = text.replace(old, new, 1)
    if name is not None:
        text = text.replace("metadata:\n  name: multi-homed\n", f"metadata:\n  name: {name}\n", 1)
    return text


def load(text: str, filename: str = "variant.yaml") -> LabFile:
    return load_lab_text(text, filename)


CANAL_ENS224 = edit(("      iface: ens192\n", "      iface: ens224\n"), name="canal-ens224")
"""Canal pinned to ens224, the agents' NIC on vlan50 (the storage VLAN); servers lack it."""

DHCP_ROUTER = edit(
    (
        "      subnet: 172.16.50.0/24\n      dhcp:\n        range: 172.16.50.30-172.16.50.99\n"
        "        leaseTime: 1h\n        router: false\n",
        "      subnet: 172.16.50.0/24\n      gateway: 172.16.50.1\n      dhcp:\n"
        "        range: 172.16.50.30-172.16.50.99\n        leaseTime: 1h\n        router: true\n",
    ),
    name="dhcp-router",
)
"""vlan50's DHCP server offers a router: every pod on vlan50 gets a second default route."""

NO_ENS256 = edit(
    (
        "    - name: multi-homed-wrk-1\n      role: agent\n      nodeIP: 172.16.40.47\n      nics:\n"
        "        - {name: ens192, network: vlan40, address: 172.16.40.47}\n"
        "        - {name: ens224, network: vlan50}\n        - {name: ens256, network: vlan60}\n",
        "    - name: multi-homed-wrk-1\n      role: agent\n      nodeIP: 172.16.40.47\n      nics:\n"
        "        - {name: ens192, network: vlan40, address: 172.16.40.47}\n"
        "        - {name: ens224, network: vlan50}\n",
    ),
    name="no-ens256",
)
"""multi-homed-wrk-1 has no ens256: net-tools, placed there, can't get its macvlan on it."""

LONGHORN_ENS256 = edit(
    ('      "master": "ens224",', '      "master": "ens256",'), name="longhorn-ens256"
)
"""Longhorn's storage NAD rides on ens256 (vlan60, the services VLAN) instead of ens224."""

UNREACHABLE_NETWORK = (
    edit(name="wrong-ips")
    + """---
apiVersion: k8s.cni.cncf.io/v1
kind: NetworkAttachmentDefinition
metadata:
  name: macvlan-private-static
  namespace: multus-network-attachments
spec:
  config: '{"cniVersion": "0.3.1", "type": "macvlan", "master": "ens256", "mode": "bridge",
            "capabilities": {"ips": true}, "ipam": {"type": "static"}}'
---
apiVersion: v1
kind: Pod
metadata:
  name: probe
  namespace: multus-network-attachments
  annotations:
    k8s.v1.cni.cncf.io/networks: '[{"name": "macvlan-private-static", "ips": ["172.16.50.40/24"]}]'
spec:
  containers:
  - name: probe
    command: ["sleep", "infinity"]
    image: busybox
"""
)
"""A pod attached to the services VLAN (vlan60, static IPAM) whose annotation asks for an
address of vlan50: it has net1 on vlan60 and can't reach anything there."""

NO_GATEWAY = edit(("      gateway: 172.16.40.1\n", ""), name="no-gateway")
"""vlan40, the node-ip network, has no gateway: nodes have no default route, so their proxy ARP
does not answer Calico's 169.254.1.1 and pods' eth0 reach nothing."""

LONGHORN_1_6 = edit(
    (
        "    storageNetwork: multus-network-attachments/macvlan-longhorn-dhcp\n",
        "    storageNetwork: multus-network-attachments/macvlan-longhorn-dhcp\n"
        "    version: 1.6.4\n",
    ),
    name="longhorn-1-6",
)
"""The seed with Longhorn 1.6.4: one all-in-one instance-manager per agent."""
