"""Draw a lab topology as a picture: nodes, links, LANs, interface names and addresses.

Theory of operation: :func:`layout` places the nodes and LANs of a
:class:`~mrouter.lab.topology.Topology` in columns by their distance (in hops, a LAN
counting as one) from a *root*: the node named ``sender`` if there is one, else the
first host, else the first node. So a chain reads left to right from its sender, and
the hosts on a LAN stand in the column after it. Within a column, items keep the order
in which the walk found them. :func:`render_svg` draws routers as blue boxes, hosts as
grey ones and LANs as green bars, a line per link or LAN membership, and at each end
the interface's name and address. Every box and interface label carries ``data-node``
(and ``data-iface``), so a page can put live figures next to them (``mrouter lab web``).
Pure: strings from a topology, no I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from html import escape

from mrouter.lab.topology import Endpoint, NodeKind, Topology

COLUMN = 340.0
ROW = 120.0
MARGIN = 40.0
BOX_W, BOX_H = 110.0, 44.0
LAN_W, LAN_H = 130.0, 26.0

COLOURS = {"router": "#3b6fd8", "frr": "#8a4fd0", "host": "#777777", "lan": "#2e9e4f"}


@dataclass(frozen=True, slots=True)
class Place:
    name: str
    kind: str  # "router", "frr", "host" or "lan"
    x: float  # centre
    y: float


@dataclass(frozen=True, slots=True)
class Wire:
    """One link end pair, or one LAN member: ``a`` is a node's interface, ``b`` the
    other node's interface (a link) or None (a LAN member; ``lan`` names the LAN)."""

    a: Endpoint
    b: Endpoint | None
    lan: str | None = None


def _wires(topo: Topology) -> list[Wire]:
    out = [Wire(link.a, link.b) for link in topo.links]
    out += [Wire(m, None, lan.name) for lan in topo.lans for m in lan.members]
    return out


def _root(topo: Topology) -> str:
    names = [n.name for n in topo.nodes]
    if "sender" in names:
        return "sender"
    hosts = [n.name for n in topo.nodes if n.kind is NodeKind.HOST]
    return hosts[0] if hosts else names[0]


def layout(topo: Topology) -> dict[str, Place]:
    """Each node's and LAN's place (see the module docstring)."""
    kinds = {n.name: n.kind.value for n in topo.nodes} | {lan.name: "lan" for lan in topo.lans}
    near: dict[str, list[str]] = {name: [] for name in kinds}
    for w in _wires(topo):
        other = w.b.node if w.b is not None else str(w.lan)
        near[w.a.node].append(other)
        near[other].append(w.a.node)
    depth: dict[str, int] = {}
    order: list[str] = []
    for start in [_root(topo), *kinds]:  # every part, connected or not
        if start in depth:
            continue
        base = max(depth.values(), default=-1) + 1 if depth else 0
        depth[start] = base
        queue = [start]
        while queue:
            here = queue.pop(0)
            order.append(here)
            for there in near[here]:
                if there not in depth:
                    depth[there] = depth[here] + 1
                    queue.append(there)
    columns: dict[int, list[str]] = {}
    for name in order:
        columns.setdefault(depth[name], []).append(name)
    tallest = max(len(c) for c in columns.values())
    places: dict[str, Place] = {}
    for col, names in columns.items():
        offset = (tallest - len(names)) * ROW / 2
        for row, name in enumerate(names):
            places[name] = Place(name, kinds[name], MARGIN + BOX_W / 2 + 30 + col * COLUMN,
                                 MARGIN + 40 + BOX_H / 2 + offset + row * ROW)
    return places


def _label(ep: Endpoint, at: tuple[float, float], toward: tuple[float, float]) -> str:
    """The interface's name and address, a third of the way from its node."""
    x = at[0] + (toward[0] - at[0]) * 0.32
    y = at[1] + (toward[1] - at[1]) * 0.32
    address = str(ep.address) if ep.address is not None else "(no address)"
    w = 7.0 * max(len(ep.iface), len(address)) * 0.86 + 8
    return (f'<g class="iface" data-node="{escape(ep.node)}" data-iface="{escape(ep.iface)}">'
            f'<rect x="{x - w / 2:.1f}" y="{y - 15:.1f}" width="{w:.1f}" height="30" rx="3" '
            'fill="white" fill-opacity="0.9" stroke="#ccc"/>'
            f'<text x="{x:.1f}" y="{y - 3:.1f}" font-size="11" text-anchor="middle" '
            f'font-weight="bold">{escape(ep.iface)}</text>'
            f'<text x="{x:.1f}" y="{y + 10:.1f}" font-size="10" text-anchor="middle" '
            f'fill="#444">{escape(address)}</text>'
            f'<text class="rate" x="{x:.1f}" y="{y + 26:.1f}" font-size="10" '
            f'text-anchor="middle" fill="#b06000"></text></g>')


def render_svg(topo: Topology, title: str | None = None,
               notes: Mapping[str, str] | None = None) -> str:
    """The topology as a standalone SVG document. ``notes``: a line of text to show
    under a node's box (for example its role)."""
    places = layout(topo)
    width = max(p.x for p in places.values()) + BOX_W / 2 + MARGIN + 30
    height = max(p.y for p in places.values()) + BOX_H / 2 + MARGIN + 40
    lines: list[str] = []
    labels: list[str] = []
    for w in _wires(topo):
        a = places[w.a.node]
        b = places[w.b.node if w.b is not None else str(w.lan)]
        lines.append(f'<line class="{"link" if w.b is not None else "lan-member"}" '
                     f'x1="{a.x:.1f}" y1="{a.y:.1f}" x2="{b.x:.1f}" y2="{b.y:.1f}" '
                     f'stroke="#555" stroke-width="2"/>')
        labels.append(_label(w.a, (a.x, a.y), (b.x, b.y)))
        if w.b is not None:
            labels.append(_label(w.b, (b.x, b.y), (a.x, a.y)))
    boxes: list[str] = []
    for p in places.values():
        colour = COLOURS[p.kind]
        if p.kind == "lan":
            shape = (f'<rect x="{p.x - LAN_W / 2:.1f}" y="{p.y - LAN_H / 2:.1f}" '
                     f'width="{LAN_W}" height="{LAN_H}" rx="13" fill="{colour}"/>')
            text = f"LAN {p.name}"
        else:
            corner = 8 if p.kind in ("router", "frr") else 2
            shape = (f'<rect x="{p.x - BOX_W / 2:.1f}" y="{p.y - BOX_H / 2:.1f}" '
                     f'width="{BOX_W}" height="{BOX_H}" rx="{corner}" fill="{colour}"/>')
            text = p.name
        note = (notes or {}).get(p.name, p.kind if p.kind != "lan" else "")
        boxes.append(
            f'<g class="{p.kind}" data-node="{escape(p.name)}">{shape}'
            f'<text x="{p.x:.1f}" y="{p.y + (0 if note and p.kind != "lan" else 4):.1f}" '
            f'font-size="13" font-weight="bold" text-anchor="middle" fill="white">'
            f'{escape(text)}</text>'
            + (f'<text class="note" x="{p.x:.1f}" y="{p.y + 14:.1f}" font-size="10" '
               f'text-anchor="middle" fill="white">{escape(note)}</text>'
               if note and p.kind != "lan" else "")
            + "</g>")
    heading = escape(title if title is not None else
                     f"{topo.source}" + (f": {topo.description}" if topo.description else ""))
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" class="labgraph" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        'font-family="DejaVu Sans, Arial, sans-serif">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="12" y="22" font-size="14" font-weight="bold">{heading}</text>',
        *lines, *boxes, *labels, "</svg>"]) + "\n"
