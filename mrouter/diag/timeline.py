"""Draw an events file as a timeline: one lane per interface, time left to right.

Theory of operation: :func:`build` turns events into a :class:`Timeline` of plain
shapes, which :func:`render_svg` writes as hand-built SVG (pure string building). In
each interface's lane:

- a *querier* bar (purple) while this router is the querier on the interface
  (``querier_changed`` with ``is_self``);
- one row per group with a *membership* bar (blue) while the interface has members
  (a ``membership_changed`` that is not INCLUDE-with-no-sources starts or continues it;
  INCLUDE {} ends it); on a proxy's upstream interface an *upstream* bar (light blue)
  while the proxy holds the group there (``upstream_membership``, the same rule);
- one row per (S,G) with a *forwarding* bar (green) while a kernel route sends that
  flow out of this interface (``mfc_add``/``mfc_update`` with the interface in ``oifs``
  starts it; an update without it or ``mfc_delete`` ends it), labelled with its packet
  count (from ``mfc_counters``/``mfc_delete``);
- a row of marks: queries (triangle), reports (circle), leaves (cross), filled when
  received and hollow when sent, and querier changes, timer expiries, upcalls and link
  changes as small labelled ticks.

``forward_decision`` events (one per packet of the user data plane) are not drawn: the
forwarding bars and their packet counts say the same at a readable scale.

``daemon_stopped`` ends every bar still on: a stopped daemon has no members, routes or
querier role left. Events merged from several routers carry a ``router`` field (their
interfaces are then named "r1 dn0", ...): routes are told apart by it, and a router's
``daemon_stopped`` ends only that router's bars (on lanes named "ROUTER ...").

So a class sees a forwarding bar begin shortly after the membership bar and end when
it does. The x of time t is ``LABEL_WIDTH + (t - t0) * px_per_second``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from html import escape

from mrouter.diag.events import Event, EventKind

LABEL_WIDTH = 170.0
"""Pixels left of the plot for lane and row labels."""
RIGHT_MARGIN = 70.0
TOP = 40.0
ROW = 22.0
LANE_GAP = 14.0
BAR_HEIGHT = 12.0

COLOURS = {
    "querier": "#8a4fd8",
    "membership": "#3b6fd8",
    "upstream": "#6fa8e8",
    "forwarding": "#2e9e4f",
    "query": "#8a4fd8",
    "report": "#d8833b",
    "leave": "#d83b3b",
    "event": "#555555",
}


@dataclass(frozen=True, slots=True)
class Bar:
    kind: str  # "querier", "membership", "upstream" or "forwarding"
    row: str  # the row label: a group, or "S -> G"
    start: float
    end: float
    label: str = ""
    open_end: bool = False  # still on at the last event


@dataclass(frozen=True, slots=True)
class Mark:
    kind: str  # query, report, leave, or event
    time: float
    received: bool
    label: str


@dataclass
class Lane:
    iface: str
    bars: list[Bar] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)

    def rows(self) -> list[str]:
        seen: dict[str, None] = {}
        for kind in ("querier", "membership", "upstream", "forwarding"):
            for bar in self.bars:
                if bar.kind == kind:
                    seen.setdefault(bar.row, None)
        return list(seen)


@dataclass
class Timeline:
    t0: float
    t1: float
    lanes: list[Lane]


def _is_member(fields: dict[str, object] | object) -> bool:
    assert isinstance(fields, dict)
    return not (fields.get("filter_mode") == "INCLUDE" and not fields.get("sources"))


def _igmp_kind(value: object) -> str:
    text = str(value).lower()
    for kind in ("query", "leave", "report"):
        if kind in text:
            return kind
    return "event"


def build(events: Iterable[Event], order: Sequence[str] = ()) -> Timeline:
    """Events (in any order) -> lanes of bars and marks. Bars still on at the last
    event end there, marked ``open_end``. Lanes named in ``order`` come first, in that
    order; the others follow sorted by name."""
    evs = sorted(events, key=lambda e: e.time)
    if not evs:
        return Timeline(0.0, 1.0, [])
    t0, t1 = evs[0].time, evs[-1].time
    if t1 <= t0:
        t1 = t0 + 1.0
    lanes: dict[str, Lane] = {}

    def lane(name: str) -> Lane:
        return lanes.setdefault(name, Lane(name))

    members: dict[tuple[str, str], float] = {}  # (iface, group) -> since
    upstream: dict[tuple[str, str], float] = {}  # (iface, group) -> since (proxy joined)
    # (iface, router, "S -> G") -> (since, packets then); router: see the docstring
    forwarding: dict[tuple[str, str, str], tuple[float, int | None]] = {}
    counts: dict[tuple[str, str], int] = {}  # (router, "S -> G") -> packets
    querier: dict[str, float] = {}  # iface -> since (this router is the querier)

    def stop(name: str, at: float) -> None:
        """End every bar on lane ``name`` (its daemon stopped)."""
        if name in querier:
            lane(name).bars.append(Bar("querier", "querier", querier.pop(name), at))
        for mkey in [k for k in members if k[0] == name]:
            lane(name).bars.append(Bar("membership", mkey[1], members.pop(mkey), at))
        for ukey in [k for k in upstream if k[0] == name]:
            lane(name).bars.append(Bar("upstream", _joined(ukey[1]), upstream.pop(ukey), at))
        for fkey in [k for k in forwarding if k[0] == name]:
            since, at_start = forwarding.pop(fkey)
            lane(name).bars.append(Bar("forwarding", fkey[2], since, at,
                                       _packets(counts.get((fkey[1], fkey[2])), at_start)))

    for e in evs:
        f = dict(e.fields)
        router = str(f.get("router", ""))
        if e.iface:
            lane(e.iface)
        if e.kind is EventKind.QUERIER_CHANGED and e.iface:
            if f.get("is_self"):
                querier.setdefault(e.iface, e.time)
            elif e.iface in querier:
                lane(e.iface).bars.append(Bar("querier", "querier", querier.pop(e.iface),
                                              e.time))
        if e.kind is EventKind.DAEMON_STOPPED:
            for name in list(lanes):
                if not router or name.startswith(router + " "):
                    stop(name, e.time)
        elif e.kind is EventKind.MEMBERSHIP_CHANGED and e.iface:
            key = (e.iface, str(f["group"]))
            if _is_member(f):
                members.setdefault(key, e.time)
            elif key in members:
                lane(e.iface).bars.append(Bar("membership", key[1], members.pop(key), e.time))
        elif e.kind is EventKind.UPSTREAM_MEMBERSHIP and e.iface:
            key = (e.iface, str(f["group"]))
            if _is_member(f):
                upstream.setdefault(key, e.time)
            elif key in upstream:
                lane(e.iface).bars.append(Bar("upstream", _joined(key[1]), upstream.pop(key),
                                              e.time))
        elif e.kind in (EventKind.MFC_ADD, EventKind.MFC_UPDATE, EventKind.MFC_DELETE):
            flow = (router, f"{f['source']} -> {f['group']}")
            if "packets" in f:
                counts[flow] = int(f["packets"])
            oifs = set(map(str, f.get("oifs", ()))) if e.kind is not EventKind.MFC_DELETE \
                else set()
            for name in oifs:
                forwarding.setdefault((name, *flow), (e.time, counts.get(flow)))
            for fkey in [k for k in forwarding if k[1:] == flow and k[0] not in oifs]:
                since, at_start = forwarding.pop(fkey)
                lane(fkey[0]).bars.append(Bar("forwarding", flow[1], since, e.time,
                                             _packets(counts.get(flow), at_start)))
            if "iif" in f:
                lane(str(f["iif"]))
        elif e.kind is EventKind.MFC_COUNTERS:
            counts[(router, f"{f['source']} -> {f['group']}")] = int(f["packets"])
        elif e.kind in (EventKind.IGMP_IN, EventKind.IGMP_OUT) and e.iface:
            group = f.get("group")
            lane(e.iface).marks.append(Mark(
                _igmp_kind(f.get("type")), e.time, e.kind is EventKind.IGMP_IN,
                f"{f.get('type')} {group or ''}".strip()))
        elif e.iface and e.kind is not EventKind.FORWARD_DECISION:  # one per packet
            lane(e.iface).marks.append(Mark("event", e.time, True, _event_label(e)))
    for name, since in querier.items():
        lanes[name].bars.append(Bar("querier", "querier", since, t1, open_end=True))
    for (name, group), since in members.items():
        lanes[name].bars.append(Bar("membership", group, since, t1, open_end=True))
    for (name, group), since in upstream.items():
        lanes[name].bars.append(Bar("upstream", _joined(group), since, t1, open_end=True))
    for (name, router, row), (since, at_start) in forwarding.items():
        lane(name).bars.append(Bar("forwarding", row, since, t1,
                                   _packets(counts.get((router, row)), at_start),
                                   open_end=True))
    rank = {name: i for i, name in enumerate(order)}
    return Timeline(t0, t1, sorted(lanes.values(),
                                   key=lambda ln: (rank.get(ln.iface, len(rank)), ln.iface)))


def _joined(group: str) -> str:
    """The row of a proxy's upstream membership of ``group``."""
    return f"joined {group}"


def _packets(count: int | None, at_start: int | None) -> str:
    """The (S,G) route's packet counter grown while the bar was on: about the packets
    this interface was sent (the counter counts arrivals of the flow)."""
    if count is None:
        return ""
    return f"{count - (at_start or 0)} pkts"


def _event_label(e: Event) -> str:
    f = e.fields
    if e.kind is EventKind.QUERIER_CHANGED:
        return "querier: self" if f.get("is_self") else f"querier: {f.get('querier')}"
    if e.kind is EventKind.TIMER_EXPIRED:
        return f"{f.get('timer')} timer {f.get('group') or ''}".strip()
    if e.kind is EventKind.UPCALL:
        return f"upcall {f.get('type')} {f.get('source')}"
    if e.kind is EventKind.IFACE_CHANGED:
        return f"link {f.get('state')}"
    return e.kind.value


# --- SVG --------------------------------------------------------------------------------


def _ticks(t0: float, t1: float) -> list[float]:
    span = t1 - t0
    step = 1.0
    for candidate in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        step = float(candidate)
        if span / step <= 12:
            break
    return [i * step for i in range(int(span / step + 1e-9) + 1)]


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _mark_svg(m: Mark, x: float, y: float, level: int = 0) -> str:
    colour = COLOURS.get(m.kind, COLOURS["event"])
    fill = colour if m.received else "white"
    title = f"<title>{escape(m.label)} ({'in' if m.received else 'out'})</title>"
    common = f'class="mark {m.kind}" data-t="{_fmt(m.time)}" stroke="{colour}"'
    if m.kind == "query":
        pts = f"{_fmt(x - 5)},{_fmt(y - 5)} {_fmt(x + 5)},{_fmt(y - 5)} {_fmt(x)},{_fmt(y + 5)}"
        return (f'<polygon {common} points="{pts}" fill="{fill}" stroke-width="1.5">'
                f'{title}</polygon>')
    if m.kind == "report":
        return (f'<circle {common} cx="{_fmt(x)}" cy="{_fmt(y)}" r="4.5" fill="{fill}" '
                f'stroke-width="1.5">{title}</circle>')
    if m.kind == "leave":
        a, b, c, e = _fmt(x - 4), _fmt(x + 4), _fmt(y - 4), _fmt(y + 4)
        d = f"M{a},{c}L{b},{e}M{a},{e}L{b},{c}"
        return f'<path {common} d="{d}" stroke-width="2.5" fill="none">{title}</path>'
    return (f'<g {common} stroke-width="1.5"><line x1="{_fmt(x)}" y1="{_fmt(y - 7)}" '
            f'x2="{_fmt(x)}" y2="{_fmt(y + 7 + 11 * level)}"/><text x="{_fmt(x + 3)}" '
            f'y="{_fmt(y - 1 + 11 * level)}" font-size="9" '
            f'stroke="none" fill="{colour}">{escape(m.label)}</text>{title}</g>')


def render_svg(events: Iterable[Event], *, width: float = 1100.0,
               title: str = "mrouter timeline", order: Sequence[str] = ()) -> str:
    """The timeline as a standalone SVG document, a one-line legend at the bottom.
    ``order``: lanes to draw first, in that order (see :func:`build`)."""
    tl = build(events, order)
    plot = width - LABEL_WIDTH - RIGHT_MARGIN
    scale = plot / (tl.t1 - tl.t0)

    def x(t: float) -> float:
        return LABEL_WIDTH + (t - tl.t0) * scale

    body: list[str] = []
    y = TOP + 10
    for ln in tl.lanes:
        rows = ln.rows()
        header, marks_h = 20.0, 34.0
        height = header + marks_h + ROW * len(rows) + 6
        body.append(f'<g class="lane" data-iface="{escape(ln.iface)}">')
        body.append(f'<rect class="lane-bg" x="0" y="{_fmt(y)}" width="{_fmt(width)}" '
                    f'height="{_fmt(height)}" fill="#f4f6fa" stroke="#c9d0dc"/>')
        body.append(f'<text x="8" y="{_fmt(y + 15)}" font-size="13" font-weight="bold">'
                    f'{escape(ln.iface)}</text>')
        marks_y = y + header + 10
        body.append(f'<text x="24" y="{_fmt(marks_y + 4)}" font-size="10" fill="#555">'
                    'IGMP / events</text>')
        label_end = [-1e9, -1e9]  # right end of the last label on each of two lines
        for m in sorted(ln.marks, key=lambda mk: mk.time):
            mx = x(m.time)
            level = 0
            if m.kind == "event":
                span = 6 + 5.6 * len(m.label)  # the label runs right of the tick
                near_igmp = any(-8 < x(o.time) - mx < span + 6
                                for o in ln.marks if o.kind != "event")
                free = [lv for lv in (0, 1) if mx > label_end[lv]]
                level = 1 if near_igmp and 1 in free else (free[0] if free else 0)
                label_end[level] = mx + span
            body.append(_mark_svg(m, mx, marks_y, level))
        y_rows = y + header + marks_h - 10
        for i, row in enumerate(rows, 1):
            ry = y_rows + ROW * (i - 1) + 6
            what, shown = ("fwd", row) if "->" in row else ("members", row)
            if row.startswith("joined "):
                what, shown = "joined upstream", row.removeprefix("joined ")
            if row == "querier":
                what, shown = "querier", "(this router)"
            body.append(f'<text x="24" y="{_fmt(ry + 10)}" font-size="10">'
                        f'<tspan fill="#777">{what}</tspan> {escape(shown)}</text>')
            for bar in (b for b in ln.bars if b.row == row):
                colour = COLOURS[bar.kind]
                x0, x1 = x(bar.start), x(bar.end)
                body.append(
                    f'<rect class="bar {bar.kind}" data-start="{_fmt(bar.start)}" '
                    f'data-end="{_fmt(bar.end)}" x="{_fmt(x0)}" y="{_fmt(ry)}" '
                    f'width="{_fmt(max(x1 - x0, 1.0))}" height="{BAR_HEIGHT}" rx="2" '
                    f'fill="{colour}" fill-opacity="{0.55 if bar.open_end else 0.85}">'
                    f'<title>{escape(bar.kind)} {escape(row)} on {escape(ln.iface)}: '
                    f'{_fmt(bar.start - tl.t0)} s to {_fmt(bar.end - tl.t0)} s'
                    f'{" (still on)" if bar.open_end else ""}</title></rect>')
                if bar.label:
                    body.append(f'<text x="{_fmt(x1 + 3)}" y="{_fmt(ry + 10)}" font-size="9" '
                                f'fill="{colour}">{escape(bar.label)}</text>')
        body.append("</g>")
        y += height + LANE_GAP
    legend, lx = [], 8.0
    for kind, text in SVG_LEGEND:
        mark = Mark(kind, 0.0, kind != "event", "") if kind in MARK_KINDS else None
        if mark is not None:
            legend.append(_mark_svg(mark, lx + 6, y + 8).replace('class="mark', 'class="key'))
        else:
            legend.append(f'<rect x="{_fmt(lx)}" y="{_fmt(y + 3)}" width="14" height="10" '
                          f'fill="{COLOURS[kind]}"/>')
        legend.append(f'<text x="{_fmt(lx + 18)}" y="{_fmt(y + 12)}" font-size="10" '
                      f'fill="#333">{escape(text)}</text>')
        lx += 34 + 6.4 * len(text)  # swatch, gap, text at ~6.4 px a character
    legend.insert(0, '<g class="legend">')
    legend.append("</g>")
    body.extend(legend)
    y += 20
    total_height = y + 30
    axis = [f'<line x1="{_fmt(LABEL_WIDTH)}" y1="{_fmt(TOP)}" x2="{_fmt(width - RIGHT_MARGIN)}" '
            f'y2="{_fmt(TOP)}" stroke="#333"/>']
    for t in _ticks(tl.t0, tl.t1):
        tx = x(tl.t0 + t)
        axis.append(f'<line x1="{_fmt(tx)}" y1="{_fmt(TOP - 4)}" x2="{_fmt(tx)}" '
                    f'y2="{_fmt(total_height - 30)}" stroke="#ddd"/>')
        axis.append(f'<text x="{_fmt(tx)}" y="{_fmt(TOP - 8)}" font-size="10" '
                    f'text-anchor="middle">{_fmt(t)} s</text>')
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{_fmt(width)}" '
            f'height="{_fmt(total_height)}" viewBox="0 0 {_fmt(width)} {_fmt(total_height)}" '
            f'font-family="DejaVu Sans, Arial, sans-serif" data-t0="{_fmt(tl.t0)}" '
            f'data-t1="{_fmt(tl.t1)}" data-px-per-s="{scale:.6f}">')
    titled = (f'<rect width="100%" height="100%" fill="white"/>'
              f'<text x="8" y="18" font-size="14" font-weight="bold">{escape(title)}</text>')
    return "\n".join([head, titled, *axis, *body, "</svg>"]) + "\n"


MARK_KINDS = ("query", "report", "leave")
SVG_LEGEND: Sequence[tuple[str, str]] = (
    ("querier", "querier"), ("membership", "members"), ("upstream", "joined upstream"),
    ("forwarding", "forwarding"), ("query", "query (filled: received, hollow: sent)"),
    ("report", "report"), ("leave", "leave"),
)
"""The one-line key drawn under the lanes (the HTML page adds the long one below)."""

LEGEND: Sequence[tuple[str, str]] = (
    ("querier", "bar: this router is the IGMP querier on the interface"),
    ("membership", "bar: the interface has members of the group (IGMP or static)"),
    ("upstream", "bar: a proxy holds the group on its upstream interface (its kernel "
                 "reports it to the router above)"),
    ("forwarding", "bar: the kernel route forwards (S,G) out of this interface; "
                   "label: packets of the flow while the bar was on"),
    ("query", "triangle: IGMP query (filled: received, hollow: sent)"),
    ("report", "circle: IGMP membership report"),
    ("leave", "cross: IGMP leave / block"),
    ("event", "tick: querier change, timer expiry, upcall, link change"),
)


def render_html(events: Iterable[Event], *, title: str = "mrouter timeline",
                order: Sequence[str] = ()) -> str:
    """An HTML page with the SVG inline and a legend under it."""
    svg = render_svg(events, title=title, order=order)
    items = "\n".join(
        f'<li><span style="display:inline-block;width:14px;height:10px;'
        f'background:{COLOURS[k]};margin-right:6px"></span><b>{k}</b>: {escape(text)}</li>'
        for k, text in LEGEND)
    return (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{escape(title)}"
            f"</title></head>\n<body style=\"font-family:sans-serif\">\n{svg}"
            f"<h3>Legend</h3>\n<ul>\n{items}\n</ul>\n<p>Time is seconds since the first "
            "event. Hover a bar or mark for details.</p>\n</body></html>\n")
