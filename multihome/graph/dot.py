"""A :class:`~multihome.graph.model.Picture` as Graphviz DOT (the ``graphviz`` package writes
the source; Debian's ``dot`` lays it out and renders SVG and PNG).

Segments are buses in one row; hosts above them, nodes below, each node a box holding its NICs
and its pods, each pod a box holding its interfaces. Wires take their network's colour; a
pod's eth0 is tied, dashed, to the node's Canal NIC (the cluster network rides on it).
"""

from __future__ import annotations

import graphviz  # type: ignore[import-untyped]

from .model import CLUSTER_COLOUR, FAIL_COLOUR, Machine, Picture, Port

FONT = "DejaVu Sans"


def _label(lines: list[str]) -> str:
    # graphviz.Graph quotes attribute values; a "\n" escape in DOT is a centred line break
    return "\\n".join(line.replace("\\", "\\\\") for line in lines)


def _wire(port: Port, fallback: str) -> dict[str, str]:
    colour = FAIL_COLOUR if port.failed else (port.colour or fallback)
    return {"color": colour, "penwidth": "3" if port.failed else "1.6"}


def to_dot(pic: Picture) -> graphviz.Graph:
    """The picture as a Graphviz graph (``.source`` is the DOT text)."""
    title = f"{pic.name}{' (running)' if pic.live else ' (design)'}"
    g = graphviz.Graph(
        name=pic.name,
        graph_attr={
            "label": f"{title}\\n{pic.subtitle}",
            "labelloc": "t",
            "fontname": FONT,
            "fontsize": "16",
            "newrank": "true",
            "nodesep": "0.25",
            "ranksep": "0.7",
            "splines": "spline",
            "bgcolor": "white",
        },
        node_attr={"fontname": FONT, "fontsize": "10", "shape": "box", "style": "rounded"},
        edge_attr={"fontname": FONT, "fontsize": "9"},
    )
    with g.subgraph(name="segments") as buses:
        buses.attr(rank="same")
        for seg in pic.segments:
            buses.node(
                seg.name,
                _label(["  ·  ".join(seg.lines)]),
                shape="box",
                style="filled,bold" if seg.storage else "filled",
                fillcolor=seg.colour,
                color=FAIL_COLOUR if seg.failed else ("black" if seg.storage else seg.colour),
                penwidth="3" if seg.failed or seg.storage else "1",
                fontcolor="white",
                fontsize="12",
                height="0.35",
                margin="0.3,0.05",
            )
    for machine in pic.machines:
        _machine(g, machine)
    _legend(g, pic)
    return g


def _machine(g: graphviz.Graph, m: Machine) -> None:
    nic_keys = {p.name: p.key for p in m.ports}
    with g.subgraph(name=f"cluster_{m.key}") as c:
        title = m.title + (f"  ×{m.count}" if m.count > 1 else "")
        c.attr(
            label=_label([title, *m.lines]),
            style="rounded,filled" + (",dashed" if m.count > 1 else ""),
            fillcolor={"server": "#eef2f8", "agent": "#f1f7ee", "host": "#fbf3e6"}.get(
                m.kind, "#f4f4f4"
            ),
            color=FAIL_COLOUR if m.failed else "#777777",
            penwidth="3" if m.failed else "1",
            fontname=FONT,
            fontsize="12",
            labeljust="l",
        )
        for port in m.ports:
            c.node(
                port.key,
                _label(port.lines),
                style="rounded,filled,bold" if port.pinned else "rounded,filled",
                fillcolor="white",
                color=port.colour,
                penwidth="3" if port.pinned else "1.5",
            )
        for pod in m.pods:
            with c.subgraph(name=f"cluster_{pod.key}") as pc:
                pc.attr(
                    label=_label([pod.title, *pod.lines]),
                    style="rounded,filled" + (",dashed" if pod.count > 1 else ""),
                    fillcolor="white",
                    color=FAIL_COLOUR if pod.failed else "#999999",
                    penwidth="3" if pod.failed else "1",
                    fontsize="10",
                )
                for port in pod.ports:
                    pc.node(
                        port.key,
                        _label(port.lines),
                        style="rounded,filled",
                        fillcolor=port.colour + "26",
                        color=FAIL_COLOUR if port.failed else port.colour,
                        fontsize="9",
                    )
    # Ranks: hosts' and servers' NICs above the buses, agents' NICs below, pods' interfaces
    # below those.
    for port in m.ports:
        if port.segment is None:
            continue
        if m.kind in ("host", "server"):
            g.edge(port.key, port.segment, **_wire(port, CLUSTER_COLOUR))
        else:
            g.edge(port.segment, port.key, **_wire(port, CLUSTER_COLOUR))
    for pod in m.pods:
        for port in pod.ports:
            target = nic_keys.get(port.to_port or "")
            if target:
                g.edge(target, port.key, style="dashed", **_wire(port, CLUSTER_COLOUR))
            elif port.segment:
                g.edge(port.segment, port.key, minlen="2", **_wire(port, CLUSTER_COLOUR))


def _legend(g: graphviz.Graph, pic: Picture) -> None:
    rows = "".join(
        f'<TR><TD BGCOLOR="{colour}" WIDTH="18"> </TD><TD ALIGN="LEFT">{_html(text)}</TD></TR>'
        for colour, text in pic.legend
    )
    extra = (
        '<TR><TD BORDER="2" WIDTH="18"> </TD><TD ALIGN="LEFT">thick border: Canal\'s NIC</TD></TR>'
    )
    g.node(
        "legend",
        f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="2">{rows}{extra}</TABLE>>',
        shape="plaintext",
    )


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


__all__ = ["CLUSTER_COLOUR", "to_dot"]
