"""Tables that summarize a design for people (``multihome show``): what the lab file says,
resolved the way the cluster would see it (node-ips, pod placement, interface names).
Every cell is a ``rich.text.Text``: names and values from the lab file print literally."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from multihome.check.context import Context
from multihome.check.pods import ifnames
from multihome.plan.scheduling import node_taints
from multihome.spec import NIC, LabFile


def _table(title: str, columns: tuple[str, ...]) -> Table:
    table = Table(title=Text(title), title_justify="left")
    for col in columns:
        table.add_column(Text(col), overflow="fold")
    return table


def _add(table: Table, *cells: str) -> None:
    table.add_row(*(Text(cell) for cell in cells))


def plain_table(table: Table) -> str:
    """A table as plain text for a log or CI: its title, then aligned columns at their
    natural width (kubectl's way: no box, no wrapping)."""
    columns = [[str(col.header), *(str(cell) for cell in col.cells)] for col in table.columns]
    widths = [max(len(cell) for cell in col) for col in columns]
    lines = [str(table.title)] if table.title else []
    for row in zip(*columns, strict=True):
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        lines.append("   ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def design_tables(lab_file: LabFile) -> list[Table]:
    ctx = Context(lab_file)
    spec = ctx.spec
    title = f"{lab_file.lab.metadata.name}"

    networks = _table(f"{title}: networks", ("NAME", "VLAN", "SUBNET", "GATEWAY", "MTU", "DHCP"))
    for net in spec.networks:
        dhcp = "-"
        if net.dhcp:
            dhcp = f"{net.dhcp.range} lease {net.dhcp.lease_time}"
            dhcp += ", offers router" if net.dhcp.router else ", no router"
        _add(
            networks,
            net.name,
            str(net.vlan or "-"),
            str(net.subnet),
            str(net.gateway or "-"),
            str(net.mtu),
            dhcp,
        )

    nodes = _table(f"{title}: nodes", ("NAME", "ROLE", "NODE-IP", "NICS", "TAINTS"))
    for node in spec.nodes:
        nics = ", ".join(_nic_text(n, with_address=False) for n in node.nics)
        taints = ", ".join(f"{t.key}={t.value}:{t.effect}" for t in node_taints(node, spec.cluster))
        _add(nodes, node.name, node.role, str(node.effective_node_ip or "-"), nics, taints or "-")
    tables = [networks, nodes]

    if spec.hosts:
        hosts = _table(f"{title}: hosts", ("NAME", "NICS", "SERVES"))
        for host in spec.hosts:
            nics = ", ".join(_nic_text(n, with_address=True) for n in host.nics)
            serves = [f"http:{host.serve.http}"] if host.serve.http else []
            serves += [f"tcp:{p}" for p in host.serve.tcp] + [f"udp:{p}" for p in host.serve.udp]
            _add(hosts, host.name, nics, ", ".join(serves) or "-")
        tables.append(hosts)

    if ctx.nads:
        nads = _table(f"{title}: network attachments", ("NAD", "TYPE", "ON", "IPAM"))
        for key, nad in ctx.nads.items():
            on = nad.master or nad.bridge or "-"
            _add(nads, key, nad.main_type or "(invalid)", on, nad.ipam_type or "-")
        tables.append(nads)

    if ctx.pods:
        pods = _table(f"{title}: pods", ("POD", "KIND", "MAY RUN ON", "INTERFACES"))
        for pod in ctx.pods:
            interfaces = ["eth0=cluster"] + [
                f"{ifname}={s.namespace}/{s.name}"
                for s, ifname in zip(pod.selections, ifnames(pod), strict=True)
            ]
            _add(
                pods,
                f"{pod.template.namespace}/{pod.template.name}",
                pod.template.manifest.kind,
                ", ".join(n.name for n in pod.eligible) or "(none)",
                ", ".join(interfaces),
            )
        tables.append(pods)
    return tables


def _nic_text(nic: NIC, *, with_address: bool) -> str:
    """``ens192=vlan40(172.16.40.47)``; a trunk adds its tagged VLANs:
    ``ens224=vlan70 [ens224.50: VLAN 50, vlan60: VLAN 60(172.16.60.11)]``."""

    def part(name: str, on: str, address: object) -> str:
        if address is None:
            return f"{name}{on}({'-'})" if with_address else f"{name}{on}"
        return f"{name}{on}({address})"

    text = part(nic.name, f"={nic.network}" if nic.network else "", nic.address)
    if nic.vlans:
        subs = ", ".join(part(v.name, f": VLAN {v.id}", v.address) for v in nic.vlans)
        text += f" [{subs}]"
    return text
