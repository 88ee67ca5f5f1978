"""A :class:`~multihome.graph.model.Picture` as a Mermaid flowchart (``.mmd``): the same
segments, machines, pods and wires as the DOT picture, for Markdown that renders Mermaid."""

from __future__ import annotations

from .model import FAIL_COLOUR, Picture, Port


def _text(lines: list[str]) -> str:
    # Mermaid's quoted labels: no double quotes inside; <br> breaks lines
    return "<br>".join(line.replace('"', "#quot;") for line in lines)


def to_mermaid(pic: Picture) -> str:
    out = [f"%% {pic.name}: {pic.subtitle}", "flowchart TB"]
    links: list[tuple[str, str, Port, bool]] = []
    for seg in pic.segments:
        out.append(f'  {seg.name}[["{_text(["  ·  ".join(seg.lines)])}"]]')
        out.append(f"  style {seg.name} fill:{seg.colour},color:#fff")
    for m in pic.machines:
        title = m.title + (f" ×{m.count}" if m.count > 1 else "")
        out.append(f'  subgraph {m.key}["{_text([title, *m.lines])}"]')
        nic_keys = {p.name: p.key for p in m.ports}
        for port in m.ports:
            out.append(f'    {port.key}("{_text(port.lines)}")')
            if port.segment:
                links.append((port.segment, port.key, port, False))
        for pod in m.pods:
            out.append(f'    subgraph {pod.key}["{_text([pod.title, *pod.lines])}"]')
            for port in pod.ports:
                out.append(f'      {port.key}("{_text(port.lines)}")')
                target = nic_keys.get(port.to_port or "")
                if target:
                    links.append((target, port.key, port, True))
                elif port.segment:
                    links.append((port.segment, port.key, port, False))
            out.append("    end")
        out.append("  end")
    for i, (a, b, port, dashed) in enumerate(links):
        out.append(f"  {a} {'-.-' if dashed else '---'} {b}")
        colour = FAIL_COLOUR if port.failed else port.colour
        out.append(f"  linkStyle {i} stroke:{colour},stroke-width:{3 if port.failed else 2}px")
    return "\n".join(out) + "\n"
