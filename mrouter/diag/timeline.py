"""Draw an events file as a timeline: one lane per interface, time left to right.

Theory of operation: :func:`build` turns events into a :class:`Timeline` of plain
shapes, which :func:`render_svg` writes as hand-built SVG (pure string building). Above
the lanes, a *steps* track numbers what the scenario did (``step`` events: "h2
leaves"), with a dashed line down through every lane. In each interface's lane, top to
bottom:

- an *IGMP* row: queries (triangle, filled when received, hollow when sent) and the
  routers' own reports for link-local groups (224.0.0.2, 224.0.0.22: grey diamonds, not
  a host's membership; nor are the memberships of those groups, learnt from another
  router on the LAN, drawn as bars, nor their timers as ticks);
- an *events* row: querier changes, timer expiries, upcalls, link changes and daemon
  starts/stops as ticks, their labels stacked on as many lines as they need;
- a *querier* bar (purple) while this router is the querier on the interface
  (``querier_changed`` with ``is_self``);
- per group, a *membership* bar (blue) while the interface has members (a
  ``membership_changed`` that is not INCLUDE-with-no-sources starts or continues it;
  INCLUDE {} ends it) and under it one thin *host* bar per host that reported the group:
  from the host's report to its leave (TO_IN {}, a v2 leave, or a BLOCK of its last
  source), or to the end of the group's membership. The host's reports (circle) and
  leaves (cross) sit on its bar, its address, record types, sources and time in the
  tooltip. (The engine's own per-host table is not in the events: a host's bar is what
  its reports said, as the engine reads them for fast leave.)
- on a proxy's upstream interface an *upstream* bar (light blue) while the proxy holds
  the group there (``upstream_membership``, the same rule);
- one row per (S,G) with a *forwarding* bar (green, hatched) while a kernel route sends
  that flow out of this interface (``mfc_add``/``mfc_update`` with the interface in
  ``oifs`` starts it; an update without it or ``mfc_delete`` ends it), labelled with its
  packet count (from ``mfc_counters``/``mfc_delete``).

``forward_decision`` events (one per packet of the user data plane) are not drawn: the
forwarding bars and their packet counts say the same at a readable scale.

IPv6 events (``family`` "ipv6", see :mod:`mrouter.diag.events`) have lanes of their
own, named "IFACE IPv6" and drawn right under the interface's IPv4 lane: the same rows
with MLD's messages on the first (its queries; the reports for link-scope groups,
ff02::/16, in grey like 224.0.0.x's), the MLD querier, listener bars per IPv6 group and
host (a host is its link-local address) and forwarding per IPv6 (S,G). Link changes
have no family and tick on every lane of their interface.

``daemon_stopped`` ends every bar still on: a stopped daemon has no members, routes or
querier role left. Events merged from several routers carry a ``router`` field (their
interfaces are then named "r1 dn0", ...): routes are told apart by it, and a router's
``daemon_stopped`` ends only that router's bars (on lanes named "ROUTER ...").

So a class sees a forwarding bar begin shortly after the membership bar, go on while
any host bar is on, and end when the last one does. The x of time t is
``LABEL_WIDTH + (t - t0) * px_per_second``; every drawn shape carries its time in
``data-t`` (or ``data-start``/``data-end``), which the HTML page's script uses to zoom
and pan the time axis, and a test uses to check the picture against the events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from html import escape
from ipaddress import IPv4Network, IPv6Address, ip_address

from mrouter.diag.events import Event, EventKind

LABEL_WIDTH = 190.0
"""Pixels left of the plot for lane and row labels."""
RIGHT_MARGIN = 110.0
PX_PER_SECOND = 100.0
"""The default scale; the plot is kept between MIN_PLOT and MAX_PLOT pixels wide."""
MIN_PLOT, MAX_PLOT = 640.0, 2400.0
TOP = 40.0
ROW = 22.0
HOST_ROW = 15.0
LANE_GAP = 14.0
BAR_HEIGHT = 12.0
HOST_BAR_HEIGHT = 6.0
LINK_LOCAL = IPv4Network("224.0.0.0/24")
IPV6_LANE = " IPv6"
"""What an interface's IPv6 lane adds to its name: "dn0 IPv6"."""

COLOURS = {
    "querier": "#8a4fd8",
    "membership": "#3b6fd8",
    "host": "#5a8de0",
    "upstream": "#6fa8e8",
    "forwarding": "#2e9e4f",
    "query": "#8a4fd8",
    "report": "#d8833b",
    "leave": "#d83b3b",
    "router-report": "#999999",
    "event": "#555555",
    "step": "#b06000",
}
BAR_KINDS = ("querier", "membership", "host", "upstream", "forwarding")
MARK_KINDS = ("query", "report", "leave", "router-report", "event")


@dataclass(frozen=True, slots=True)
class Bar:
    kind: str  # one of BAR_KINDS
    row: str  # the row key (see Lane.rows)
    start: float
    end: float
    label: str = ""
    open_end: bool = False  # still on at the last event
    detail: str = ""  # the tooltip's sentence, without the times


@dataclass(frozen=True, slots=True)
class Mark:
    kind: str  # one of MARK_KINDS
    time: float
    received: bool
    label: str  # short text drawn next to an event tick ("" for IGMP marks)
    detail: str = ""  # the tooltip's sentence, without the time
    row: str = ""  # a host row key for a host's reports and leaves; "" for the lane's rows
    host: str = ""


@dataclass(frozen=True, slots=True)
class Step:
    number: int
    time: float
    text: str

    @property
    def short(self) -> str:
        """What the track shows: the text up to its first ": "."""
        return self.text.split(": ", 1)[0]


@dataclass
class Lane:
    iface: str
    bars: list[Bar] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    host_rows: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (group, host)

    @property
    def family(self) -> str:
        return "ipv6" if self.iface.endswith(IPV6_LANE) else "ipv4"

    @property
    def link(self) -> str:
        """The interface the lane is about (its name without " IPv6")."""
        return self.iface.removesuffix(IPV6_LANE) if self.family == "ipv6" else self.iface

    def rows(self) -> list[str]:
        """Row keys top to bottom: "querier", then each group followed by its hosts'
        rows ("host GROUP ADDRESS"), then "joined GROUP" rows, then "S -> G" rows."""
        groups = list(dict.fromkeys(
            [b.row for b in self.bars if b.kind == "membership"]
            + [g for g, _ in self.host_rows.values()]))
        out = ["querier"] if any(b.kind == "querier" for b in self.bars) else []
        for group in groups:
            out.append(group)
            out += sorted((k for k, (g, _) in self.host_rows.items() if g == group),
                          key=lambda k: _addr_key(self.host_rows[k][1]))
        for kind in ("upstream", "forwarding"):
            out += list(dict.fromkeys(b.row for b in self.bars if b.kind == kind))
        return out


@dataclass
class Timeline:
    t0: float
    t1: float
    lanes: list[Lane]
    steps: list[Step] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # address -> node name


def _addr_key(text: str) -> tuple[int, str]:
    try:
        return (int(ip_address(text)), text)
    except ValueError:
        return (0, text)


def _is_member(fields: Mapping[str, object]) -> bool:
    return not (fields.get("filter_mode") == "INCLUDE" and not fields.get("sources"))


def _link_local(group: object) -> bool:
    """224.0.0.0/24, or an IPv6 group of interface- or link-local scope (ff01::/16,
    ff02::/16, RFC 4291 §2.7): the routers' own and the link's, never forwarded."""
    if not isinstance(group, str):
        return False
    try:
        address = ip_address(group)
    except ValueError:
        return False
    if isinstance(address, IPv6Address):
        return address.is_multicast and address.packed[1] & 0x0F <= 2
    return address in LINK_LOCAL


def _in_lane(e: Event) -> Event:
    """An IPv6 event with its interface names (iface, iif, oifs) turned into its
    interface's IPv6 lane names; other events as they are."""
    if e.family != "ipv6":
        return e
    f = dict(e.fields)
    if isinstance(f.get("oifs"), list):
        f["oifs"] = [f"{name}{IPV6_LANE}" for name in f["oifs"]]
    if f.get("iif"):
        f["iif"] = f"{f['iif']}{IPV6_LANE}"
    return replace(e, iface=f"{e.iface}{IPV6_LANE}" if e.iface else None, fields=f)


def _igmp_kind(value: object) -> str:
    text = str(value).lower()
    for kind in ("query", "leave", "report"):
        if kind in text:
            return kind
    return "leave" if "done" in text else "event"  # an MLDv1 Done is a leave


def _sources(mode: str, sources: Iterable[str]) -> str:
    """A filter state in words: EXCLUDE {} is "all sources"."""
    listed = ", ".join(sources)
    if mode == "EXCLUDE":
        return f"all sources except {listed}" if listed else "all sources"
    return f"only {listed}" if listed else "no source"


def _records(f: Mapping[str, object]) -> list[tuple[str, str, list[str]]]:
    """(record type, group, sources) of a report or leave. v1/v2 messages have no
    records: their type stands for one (a v1/v2 report is IS_EX {}, a leave TO_IN {})."""
    raw = f.get("records")
    if isinstance(raw, list):
        return [(str(r.get("type")), str(r.get("group")), [str(s) for s in r.get("sources", ())])
                for r in raw if isinstance(r, dict)]
    group = str(f.get("group"))
    if _igmp_kind(f.get("type")) == "leave":
        return [("leave", group, [])]
    return [("report", group, [])]


class _Hosts:
    """Each host's filter state per (iface, group), as its reports tell it (the rules of
    the engine's host tracking, RFC 3376 §3: TO_IN and TO_EX/IS_EX replace it, ALLOW and
    IS_IN add sources, BLOCK removes them; INCLUDE with no sources is not a member)."""

    def __init__(self) -> None:
        # (iface, group, host) -> (since, mode, sources)
        self.on: dict[tuple[str, str, str], tuple[float, str, frozenset[str]]] = {}

    def apply(self, key: tuple[str, str, str], rtype: str, sources: Sequence[str],
              now: float) -> list[tuple[float, str, frozenset[str]]]:
        """Apply one record; returns the periods it ended (to be drawn as bars)."""
        old = self.on.get(key)
        mode, have = (old[1], old[2]) if old else ("INCLUDE", frozenset())
        src = frozenset(sources)
        if rtype in ("IS_EX", "TO_EX", "report"):
            mode, have = "EXCLUDE", src
        elif rtype in ("TO_IN", "leave"):
            mode, have = "INCLUDE", src
        elif rtype in ("IS_IN", "ALLOW"):
            have = have | src if mode == "INCLUDE" else have - src
        elif rtype == "BLOCK":
            have = have - src if mode == "INCLUDE" else have | src
        member = not (mode == "INCLUDE" and not have)
        if old and (old[1], old[2]) == (mode, have):
            return []
        ended = [self.on.pop(key)] if old else []
        if member:
            self.on[key] = (now, mode, have)
        return ended


def build(events: Iterable[Event], order: Sequence[str] = ()) -> Timeline:
    """Events (in any order) -> lanes of bars and marks. Bars still on at the last
    event end there, marked ``open_end``. Lanes named in ``order`` come first, in that
    order; the others follow sorted by name."""
    evs = sorted((_in_lane(e) for e in events), key=lambda e: e.time)
    if not evs:
        return Timeline(0.0, 1.0, [])
    t0, t1 = evs[0].time, evs[-1].time
    if t1 <= t0:
        t1 = t0 + 1.0
    lanes: dict[str, Lane] = {}
    steps: list[Step] = []
    names: dict[str, str] = {}

    def lane(name: str) -> Lane:
        return lanes.setdefault(name, Lane(name))

    members: dict[tuple[str, str], float] = {}  # (iface, group) -> since
    upstream: dict[tuple[str, str], float] = {}  # (iface, group) -> since (proxy joined)
    # (iface, router, "S -> G") -> (since, packets then); router: see the docstring
    forwarding: dict[tuple[str, str, str], tuple[float, int | None]] = {}
    counts: dict[tuple[str, str], int] = {}  # (router, "S -> G") -> packets
    querier: dict[str, float] = {}  # iface -> since (this router is the querier)
    own: dict[str, str] = {}  # iface -> this router's address there (from querier_changed)
    hosts = _Hosts()
    daemon_marks: list[tuple[str, float, str]] = []  # (router, time, started|stopped)
    link_marks: list[tuple[str, Mark]] = []  # (iface, mark): for each lane of the iface

    def host_bar(key: tuple[str, str, str], period: tuple[float, str, frozenset[str]],
                 end: float, open_end: bool = False) -> None:
        iface, group, host = key
        since, mode, sources = period
        lane(iface).bars.append(Bar(
            "host", _host_row(group, host), since, end, open_end=open_end,
            detail=f"{_who(host, names)} is a member of {group} on {iface} "
                   f"({mode} {{{', '.join(sorted(sources, key=_addr_key))}}}: "
                   f"{_sources(mode, sorted(sources, key=_addr_key))})"))

    def end_hosts(iface: str, group: str | None, at: float) -> None:
        for hkey in [k for k in hosts.on if k[0] == iface and group in (None, k[1])]:
            host_bar(hkey, hosts.on.pop(hkey), at)

    def stop(name: str, at: float) -> None:
        """End every bar on lane ``name`` (its daemon stopped)."""
        if name in querier:
            lane(name).bars.append(_querier_bar(name, querier.pop(name), at))
        for mkey in [k for k in members if k[0] == name]:
            lane(name).bars.append(_member_bar(name, mkey[1], members.pop(mkey), at))
        end_hosts(name, None, at)
        for ukey in [k for k in upstream if k[0] == name]:
            lane(name).bars.append(_upstream_bar(name, ukey[1], upstream.pop(ukey), at))
        for fkey in [k for k in forwarding if k[0] == name]:
            since, at_start = forwarding.pop(fkey)
            lane(name).bars.append(_forward_bar(name, fkey[2], since, at,
                                                counts.get((fkey[1], fkey[2])), at_start))

    for e in evs:
        f = dict(e.fields)
        router = str(f.get("router", ""))
        if e.iface and e.kind is EventKind.IFACE_CHANGED:
            link_marks.append((e.iface, _event_mark(e)))
            continue
        if e.iface:
            lane(e.iface)
        if e.kind is EventKind.STEP:
            steps.append(Step(len(steps) + 1, e.time, str(f["text"])))
            raw_names = f.get("names")
            if isinstance(raw_names, dict):
                names.update({str(k): str(v) for k, v in raw_names.items()})
            continue
        if e.kind is EventKind.QUERIER_CHANGED and e.iface:
            if f.get("is_self"):
                querier.setdefault(e.iface, e.time)
                if f.get("querier"):
                    own[e.iface] = str(f["querier"])
            elif e.iface in querier:
                lane(e.iface).bars.append(_querier_bar(e.iface, querier.pop(e.iface), e.time))
        if e.kind in (EventKind.DAEMON_STARTED, EventKind.DAEMON_STOPPED):
            daemon_marks.append((router, e.time, "started"
                                 if e.kind is EventKind.DAEMON_STARTED else "stopped"))
        if e.kind is EventKind.DAEMON_STOPPED:
            for name in list(lanes):
                if not router or name.startswith(router + " "):
                    stop(name, e.time)
        elif e.kind in (EventKind.MEMBERSHIP_CHANGED, EventKind.TIMER_EXPIRED) \
                and _link_local(f.get("group")):
            pass  # the routers' own groups, learnt from another router: not drawn
        elif e.kind is EventKind.MEMBERSHIP_CHANGED and e.iface:
            key = (e.iface, str(f["group"]))
            if _is_member(f):
                members.setdefault(key, e.time)
            elif key in members:
                lane(e.iface).bars.append(_member_bar(e.iface, key[1], members.pop(key),
                                                      e.time))
                end_hosts(e.iface, key[1], e.time)
        elif e.kind is EventKind.UPSTREAM_MEMBERSHIP and e.iface:
            key = (e.iface, str(f["group"]))
            if _is_member(f):
                upstream.setdefault(key, e.time)
            elif key in upstream:
                lane(e.iface).bars.append(_upstream_bar(e.iface, key[1], upstream.pop(key),
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
                lane(fkey[0]).bars.append(_forward_bar(fkey[0], flow[1], since, e.time,
                                                       counts.get(flow), at_start))
            if "iif" in f:
                lane(str(f["iif"]))
        elif e.kind is EventKind.MFC_COUNTERS:
            counts[(router, f"{f['source']} -> {f['group']}")] = int(f["packets"])
        elif e.kind in (EventKind.IGMP_IN, EventKind.IGMP_OUT, EventKind.MLD_IN,
                        EventKind.MLD_OUT) and e.iface:
            _igmp_mark(lane(e.iface), e, f, own, names, hosts, host_bar)
        elif e.iface and e.kind is not EventKind.FORWARD_DECISION:  # one per packet
            lane(e.iface).marks.append(_event_mark(e))
    for name, since in querier.items():
        lanes[name].bars.append(_querier_bar(name, since, t1, open_end=True))
    for (name, group), since in members.items():
        lanes[name].bars.append(_member_bar(name, group, since, t1, open_end=True))
    for hkey, period in hosts.on.items():
        host_bar(hkey, period, t1, open_end=True)
    for (name, group), since in upstream.items():
        lanes[name].bars.append(_upstream_bar(name, group, since, t1, open_end=True))
    for (name, router, row), (since, at_start) in forwarding.items():
        lane(name).bars.append(_forward_bar(name, row, since, t1,
                                            counts.get((router, row)), at_start,
                                            open_end=True))
    for iface, mark in link_marks:
        mine = [ln for ln in lanes.values() if ln.link == iface] or [lane(iface)]
        for ln in mine:
            ln.marks.append(mark)
    for router, at, what in daemon_marks:
        for name, ln in lanes.items():
            if not router or name.startswith(router + " "):
                ln.marks.append(Mark("event", at, True, f"daemon {what}",
                                     f"the daemon{' on ' + router if router else ''} "
                                     f"{what}"))
    for ln in lanes.values():
        ln.marks.sort(key=lambda m: m.time)
    rank = {name: i for i, name in enumerate(order)}
    return Timeline(t0, t1, sorted(lanes.values(), key=lambda ln: (
        rank.get(ln.iface, rank.get(ln.link, len(rank))), ln.link, ln.family)), steps, names)


def _host_row(group: str, host: str) -> str:
    return f"host {group} {host}"


def _who(host: str, names: Mapping[str, str]) -> str:
    return f"{names[host]} ({host})" if host in names else host


def _igmp_mark(ln: Lane, e: Event, f: Mapping[str, object], own: Mapping[str, str],
               names: Mapping[str, str], hosts: _Hosts,
               host_bar: Callable[[tuple[str, str, str], tuple[float, str, frozenset[str]],
                                   float], None]) -> None:
    """The marks of one IGMP message: a query on the IGMP row; a host's report or leave
    on its row under the group, updating its membership; a router's link-local report
    on the IGMP row in grey."""
    assert e.iface is not None
    received = e.kind in (EventKind.IGMP_IN, EventKind.MLD_IN)
    kind = _igmp_kind(f.get("type"))
    version = f.get("version")
    protocol = "MLD" if ln.family == "ipv6" else "IGMP"
    how = f"{protocol}v{version}, {'received' if received else 'sent'}"
    if kind == "query":
        group = f.get("group")
        raw = f.get("sources")
        sources = [str(s) for s in raw] if isinstance(raw, list) else []
        what = "general query" if not group else (
            f"group-and-source query for {group} ({', '.join(sources)})" if sources
            else f"group query for {group}")
        sender = (f"from {_who(str(f['src']), names)}" if received and f.get("src")
                  else f"to {f.get('dst')}")
        ln.marks.append(Mark("query", e.time, received, "", f"{what} {sender} ({how})"))
        return
    if kind not in ("report", "leave"):
        ln.marks.append(Mark("event", e.time, received, str(f.get("type")),
                             f"{protocol} {f.get('type')} ({how})"))
        return
    host = str(f.get("src") or f.get("dst") or "?")
    records = _records(f)
    text = "; ".join(f"{t} {g} {{{', '.join(s)}}}" for t, g, s in records)
    if not received or all(_link_local(g) for _, g, _ in records):
        whose = ("this router's own" if own.get(e.iface) == host
                 else "a router's") if received else "this router's"
        why = (f"{whose} join of link-local groups, not a host's membership"
               if protocol == "IGMP" else "link-scope groups (ff02::/16: a router's "
               "own, or a host's solicited-node ones), which no router forwards")
        ln.marks.append(Mark(
            "router-report", e.time, received, "",
            f"report from {_who(host, names)}: {text} ({how}); {why}" if received else
            f"report sent: {text} ({how})"))
        return
    for rtype, group, sources in records:
        if _link_local(group):
            continue
        key = (e.iface, group, host)
        ln.host_rows.setdefault(_host_row(group, host), (group, host))
        for period in hosts.apply(key, rtype, sources, e.time):
            host_bar(key, period, e.time)
        ln.marks.append(Mark(
            "leave" if kind == "leave" else "report", e.time, True, "",
            f"{kind} from {_who(host, names)}: {rtype} {group} "
            f"{{{', '.join(sources)}}} ({how})", row=_host_row(group, host), host=host))


def _querier_bar(iface: str, start: float, end: float, open_end: bool = False) -> Bar:
    return Bar("querier", "querier", start, end, open_end=open_end,
               detail=f"this router is the querier on {iface}")


def _member_bar(iface: str, group: str, start: float, end: float,
                open_end: bool = False) -> Bar:
    return Bar("membership", group, start, end, open_end=open_end,
               detail=f"{iface} has members of {group}")


def _upstream_bar(iface: str, group: str, start: float, end: float,
                  open_end: bool = False) -> Bar:
    return Bar("upstream", _joined(group), start, end, open_end=open_end,
               detail=f"the proxy holds {group} on its upstream {iface}")


def _forward_bar(iface: str, row: str, start: float, end: float, count: int | None,
                 at_start: int | None, open_end: bool = False) -> Bar:
    label = _packets(count, at_start)
    return Bar("forwarding", row, start, end, label, open_end,
               detail=f"the kernel forwards {row} out of {iface}"
                      + (f" ({label} of the flow meanwhile)" if label else ""))


def _joined(group: str) -> str:
    """The row of a proxy's upstream membership of ``group``."""
    return f"joined {group}"


def _packets(count: int | None, at_start: int | None) -> str:
    """The (S,G) route's packet counter grown while the bar was on: about the packets
    this interface was sent (the counter counts arrivals of the flow)."""
    if count is None:
        return ""
    return f"{count - (at_start or 0)} pkts"


UPCALLS = {"NOCACHE": "new flow", "WRONGVIF": "wrong interface", "WHOLEPKT": "whole packet"}


def _event_mark(e: Event) -> Mark:
    """A tick: a short label, and a sentence for the tooltip."""
    f = e.fields
    label, detail = e.kind.value, e.kind.value.replace("_", " ")
    if e.kind is EventKind.QUERIER_CHANGED:
        if f.get("is_self"):
            label = "querier: this router"
            detail = f"this router ({f.get('querier')}) became the querier on {e.iface}"
        else:
            label = f"querier: {f.get('querier')}"
            detail = (f"{f.get('querier')} is the querier on {e.iface} now (lower "
                      "address); this router stops querying" if f.get("querier") else
                      f"no querier known on {e.iface}")
    elif e.kind is EventKind.TIMER_EXPIRED:
        timer = str(f.get("timer"))
        group = f.get("group")
        label = f"{timer.replace('_', '-')} timer out"
        if timer == "group":
            detail = f"the group timer of {group} ran out: no member answered the queries"
        elif timer == "source":
            detail = f"the source timer of {f.get('source')} in {group} ran out"
        else:
            detail = ("the other-querier-present timer ran out: no query heard, this "
                      "router takes over as querier")
    elif e.kind is EventKind.UPCALL:
        kind = str(f.get("type"))
        label = f"upcall: {UPCALLS.get(kind, kind)}"
        detail = (f"the kernel reported a {kind} upcall for {f.get('source')} -> "
                  f"{f.get('group')} arriving on {e.iface}")
    elif e.kind is EventKind.IFACE_CHANGED:
        label = f"link {f.get('state')}"
        detail = f"{e.iface}: link {f.get('state')}"
    return Mark("event", e.time, True, label, detail)


# --- SVG --------------------------------------------------------------------------------


def _ticks(t0: float, t1: float) -> list[float]:
    span = t1 - t0
    step = 1.0
    for candidate in TICK_STEPS:
        step = float(candidate)
        if span / step <= 12:
            break
    return [i * step for i in range(int(span / step + 1e-9) + 1)]


TICK_STEPS = (0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600)


def _fmt(x: float) -> str:
    return f"{x:.2f}".rstrip("0").rstrip(".")


def _text_width(text: str, size: float) -> float:
    """About how wide ``text`` is drawn at ``size`` px in DejaVu Sans / Arial."""
    return 0.6 * size * len(text)


def _levels(items: Sequence[tuple[float, float]], max_levels: int) -> list[int]:
    """Greedy stacking: item i (x, width) goes on the first line where it does not
    overlap the one before; if none is free, on the line whose last item ends first."""
    ends: list[float] = []
    out: list[int] = []
    for x, width in items:
        free = [lv for lv, end in enumerate(ends) if x > end + 4]
        if free:
            level = free[0]
        elif len(ends) < max_levels:
            ends.append(-1e9)
            level = len(ends) - 1
        else:
            level = min(range(len(ends)), key=lambda lv: ends[lv])
        ends[level] = x + width
        out.append(level)
    return out


def _mark_shape(kind: str, fill: str, colour: str) -> str:
    """The mark's shape centred on (0, 0) (its <g> is translated to its place)."""
    if kind == "query":
        return f'<polygon points="-5,-5 5,-5 0,5" fill="{fill}" stroke="{colour}" ' \
               'stroke-width="1.5"/>'
    if kind == "report":
        return f'<circle r="4" fill="{fill}" stroke="{colour}" stroke-width="1.5"/>'
    if kind == "leave":
        return f'<path d="M-4,-4L4,4M-4,4L4,-4" stroke="{colour}" stroke-width="2.5"/>'
    if kind == "router-report":
        return f'<path d="M0,-3.5L3.5,0L0,3.5L-3.5,0Z" fill="{fill}" stroke="{colour}"/>'
    return f'<line y1="-7" y2="7" stroke="{colour}" stroke-width="1.5"/>'


def _mark_svg(m: Mark, x: float, y: float, t0: float, level: int = 0,
              extra: str = "") -> str:
    colour = COLOURS.get(m.kind, COLOURS["event"])
    fill = colour if m.received else "white"
    title = f"<title>{_fmt(m.time - t0)} s: {escape(m.detail or m.label)}</title>"
    label = ""
    if m.kind == "event":
        ly = 11.0 * level
        label = (f'<line y1="7" y2="{_fmt(7 + ly)}" stroke="{colour}" stroke-width="0.7" '
                 f'stroke-dasharray="1,1"/>' if level else "") + (
            f'<text x="3" y="{_fmt(ly + 3)}" font-size="9" fill="{colour}">'
            f'{escape(m.label)}</text>')
    data = f' data-host="{escape(m.host)}"' if m.host else ""
    return (f'<g class="mark {m.kind}{" sent" if not m.received else ""}" '
            f'data-t="{m.time:.6f}" data-y="{_fmt(y)}"{data}{extra} '
            f'transform="translate({_fmt(x)},{_fmt(y)})">'
            f'{_mark_shape(m.kind, fill, colour)}{label}{title}</g>')


def plot_width(t0: float, t1: float) -> float:
    """The default plot width for a span: PX_PER_SECOND, within MIN_PLOT..MAX_PLOT."""
    return min(MAX_PLOT, max(MIN_PLOT, (t1 - t0) * PX_PER_SECOND))


def render_svg(events: Iterable[Event], *, width: float | None = None,
               title: str = "mrouter timeline", order: Sequence[str] = (),
               interactive: bool = False) -> str:
    """The timeline as a standalone SVG document (no script, prints as it shows), with
    its key at the bottom. ``width``: pixels (default: from the span, see
    :func:`plot_width`). ``order``: lanes to draw first (see :func:`build`).
    ``interactive``: sized to its container, for the HTML page (which zooms it)."""
    tl = build(events, order)
    if width is None:
        width = LABEL_WIDTH + plot_width(tl.t0, tl.t1) + RIGHT_MARGIN
    plot = width - LABEL_WIDTH - RIGHT_MARGIN
    scale = plot / (tl.t1 - tl.t0)

    def x(t: float) -> float:
        return LABEL_WIDTH + (t - tl.t0) * scale

    body: list[str] = []
    over: list[str] = []  # drawn over the lanes: the step lines
    y = TOP + 6
    # the steps track
    if tl.steps:
        texts = [f"{s.number} {s.short}" for s in tl.steps]
        levels = _levels([(x(s.time), _text_width(t, 10) + 14) for s, t in zip(
            tl.steps, texts, strict=True)], 6)
        n_levels = max(levels) + 1
        body.append('<g class="steps">')
        body.append(f'<text x="8" y="{_fmt(y + 12)}" font-size="12" font-weight="bold">'
                    'steps</text>')
        for s, text, level in zip(tl.steps, texts, levels, strict=True):
            sy = y + 12 + 14 * level
            body.append(
                f'<g class="step" data-t="{s.time:.6f}" data-y="{_fmt(sy)}" '
                f'data-step="{s.number}" transform="translate({_fmt(x(s.time))},{_fmt(sy)})">'
                f'<circle cy="-4" r="6" fill="{COLOURS["step"]}"/>'
                f'<text y="-0.5" font-size="9" text-anchor="middle" fill="white" '
                f'font-weight="bold">{s.number}</text>'
                f'<text x="9" font-size="10" fill="#333">{escape(text[len(str(s.number)) + 1:])}'
                f'</text><title>{_fmt(s.time - tl.t0)} s: step {s.number}: '
                f'{escape(s.text)}</title></g>')
        body.append("</g>")
        steps_top = y
        y += 14 * n_levels + 12
    for ln in tl.lanes:
        rows = ln.rows()
        header, igmp_h = 20.0, 18.0
        marks = sorted(ln.marks, key=lambda mk: mk.time)
        ticks = [m for m in marks if m.kind == "event" and not m.row]
        levels = _levels([(x(m.time), _text_width(m.label, 9) + 6) for m in ticks], 4)
        events_h = 16.0 + 11.0 * (max(levels, default=0))
        heights = [HOST_ROW if r.startswith("host ") else ROW for r in rows]
        height = header + igmp_h + events_h + sum(heights) + 6
        body.append(f'<g class="lane" data-iface="{escape(ln.iface)}">')
        body.append(f'<rect class="lane-bg" x="0" y="{_fmt(y)}" width="{_fmt(width)}" '
                    f'height="{_fmt(height)}" fill="#f4f6fa" stroke="#c9d0dc"/>')
        body.append(f'<text x="8" y="{_fmt(y + 15)}" font-size="13" font-weight="bold">'
                    f'{escape(ln.iface)}</text>')
        igmp_y = y + header + igmp_h / 2
        events_y = igmp_y + igmp_h / 2 + 8
        body.append(f'<text x="24" y="{_fmt(igmp_y + 4)}" font-size="10" fill="#555">'
                    f'{"MLD" if ln.family == "ipv6" else "IGMP"} queries</text>')
        body.append(f'<text x="24" y="{_fmt(events_y + 4)}" font-size="10" fill="#555">'
                    'events</text>')
        plot_marks: list[str] = []
        plot_bars: list[str] = []  # drawn first, under the marks
        for m in marks:
            if m.kind != "event" and not m.row:
                plot_marks.append(_mark_svg(m, x(m.time), igmp_y, tl.t0))
        for m, level in zip(ticks, levels, strict=True):
            plot_marks.append(_mark_svg(m, x(m.time), events_y, tl.t0, level))
        ry = y + header + igmp_h + events_h
        for row, h in zip(rows, heights, strict=True):
            host = ln.host_rows.get(row)
            if host is not None:
                addr = host[1]
                shown = f"{tl.names[addr]} {addr}" if addr in tl.names else addr
                body.append(f'<text x="40" y="{_fmt(ry + 10)}" font-size="9">'
                            f'<tspan fill="#777">host</tspan> {escape(shown)}</text>')
            else:
                what, shown = ("fwd", row) if "->" in row else ("members", row)
                if row.startswith("joined "):
                    what, shown = "joined upstream", row.removeprefix("joined ")
                if row == "querier":
                    what, shown = "querier", "(this router)"
                body.append(f'<text x="24" y="{_fmt(ry + 14)}" font-size="10">'
                            f'<tspan fill="#777">{what}</tspan> {escape(shown)}</text>')
            bh = HOST_BAR_HEIGHT if host is not None else BAR_HEIGHT
            by = ry + (h - bh) / 2
            for bar in (b for b in ln.bars if b.row == row):
                colour = COLOURS[bar.kind]
                x0, x1 = x(bar.start), x(bar.end)
                fill = "url(#hatch)" if bar.kind == "forwarding" else colour
                plot_bars.append(
                    f'<rect class="bar {bar.kind}" data-start="{bar.start:.6f}" '
                    f'data-end="{bar.end:.6f}" x="{_fmt(x0)}" y="{_fmt(by)}" '
                    f'width="{_fmt(max(x1 - x0, 1.0))}" height="{_fmt(bh)}" rx="2" '
                    f'fill="{fill}" stroke="{colour}" stroke-width="0.8" '
                    f'fill-opacity="{0.6 if bar.open_end else 0.9}">'
                    f'<title>{escape(bar.detail)}: {_fmt(bar.start - tl.t0)} s to '
                    f'{_fmt(bar.end - tl.t0)} s'
                    f'{" (still on at the end)" if bar.open_end else ""}</title></rect>')
                if bar.label:
                    plot_marks.append(
                        f'<text class="bar-label" data-t="{bar.end:.6f}" data-dx="3" '
                        f'x="{_fmt(x1 + 3)}" y="{_fmt(by + 9)}" font-size="9" '
                        f'fill="{colour}">{escape(bar.label)}</text>')
            for m in (m for m in marks if m.row == row):
                plot_marks.append(_mark_svg(m, x(m.time), ry + h / 2, tl.t0))
            ry += h
        body.append('<g clip-path="url(#plot)">')
        body.extend(plot_bars)
        body.extend(plot_marks)
        body.append("</g></g>")
        y += height + LANE_GAP
    lanes_bottom = y - LANE_GAP
    if tl.steps:
        for s in tl.steps:
            over.append(f'<line class="step-line" data-t="{s.time:.6f}" x1="{_fmt(x(s.time))}" '
                        f'x2="{_fmt(x(s.time))}" y1="{_fmt(steps_top + 10)}" '
                        f'y2="{_fmt(lanes_bottom)}" stroke="{COLOURS["step"]}" '
                        'stroke-width="1" stroke-dasharray="4,3" stroke-opacity="0.7"/>')
    legend, y = _legend(y, width)
    total_height = y + 10
    axis = [f'<line x1="{_fmt(LABEL_WIDTH)}" y1="{_fmt(TOP)}" x2="{_fmt(width - RIGHT_MARGIN)}" '
            f'y2="{_fmt(TOP)}" stroke="#333"/>', '<g class="ticks" clip-path="url(#axis)">']
    for t in _ticks(tl.t0, tl.t1):
        tx = x(tl.t0 + t)
        axis.append(f'<line data-t="{tl.t0 + t:.6f}" x1="{_fmt(tx)}" y1="{_fmt(TOP - 4)}" '
                    f'x2="{_fmt(tx)}" y2="{_fmt(lanes_bottom)}" stroke="#ddd"/>'
                    f'<text data-t="{tl.t0 + t:.6f}" x="{_fmt(tx)}" y="{_fmt(TOP - 8)}" '
                    f'font-size="10" text-anchor="middle">{_fmt(t)} s</text>')
    axis.append("</g>")
    size = ('width="100%"' if interactive else
            f'width="{_fmt(width)}" height="{_fmt(total_height)}"')
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" class="timeline" {size} '
            f'viewBox="0 0 {_fmt(width)} {_fmt(total_height)}" '
            f'font-family="DejaVu Sans, Arial, sans-serif" data-t0="{tl.t0:.6f}" '
            f'data-t1="{tl.t1:.6f}" data-px-per-s="{scale:.6f}" '
            f'data-left="{_fmt(LABEL_WIDTH)}" data-plot-width="{_fmt(plot)}">')
    defs = (
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        f'patternTransform="rotate(45)"><rect width="6" height="6" '
        f'fill="{COLOURS["forwarding"]}"/><line x1="0" y1="0" x2="0" y2="6" stroke="white" '
        'stroke-width="2" stroke-opacity="0.6"/></pattern>'
        f'<clipPath id="plot"><rect x="{_fmt(LABEL_WIDTH - 8)}" y="0" '
        f'width="{_fmt(plot + RIGHT_MARGIN + 8)}" height="{_fmt(total_height)}"/></clipPath>'
        f'<clipPath id="axis"><rect x="{_fmt(LABEL_WIDTH - 20)}" y="0" '
        f'width="{_fmt(plot + 40)}" height="{_fmt(total_height)}"/></clipPath></defs>')
    titled = (f'<rect width="100%" height="100%" fill="white"/>'
              f'<text x="8" y="18" font-size="14" font-weight="bold">{escape(title)}</text>')
    steps_over = ['<g class="step-lines" clip-path="url(#plot)">', *over, "</g>"]
    return "\n".join([head, defs, titled, *axis, *body, *steps_over, *legend,
                      "</svg>"]) + "\n"


SVG_LEGEND: Sequence[tuple[str, str]] = (
    ("step", "scenario step"), ("querier", "querier"), ("membership", "members"),
    ("host", "a host is a member"), ("upstream", "joined upstream"),
    ("forwarding", "forwarding"), ("query", "query (hollow: sent)"),
    ("report", "host's report"), ("leave", "host's leave"),
    ("router-report", "router's own report (224.0.0.x)"), ("event", "event"),
)
"""The key drawn under the lanes (the HTML page adds the long one below)."""


def _legend(y: float, width: float) -> tuple[list[str], float]:
    """The key, wrapped to ``width``; returns its SVG and the y below it."""
    out, lx = ['<g class="legend">'], 8.0
    y += 4
    for kind, text in SVG_LEGEND:
        span = 34 + _text_width(text, 10)
        if lx + span > width:
            lx, y = 8.0, y + 18
        if kind in MARK_KINDS:
            out.append(f'<g transform="translate({_fmt(lx + 6)},{_fmt(y + 8)})">'
                       f'{_mark_shape(kind, COLOURS[kind], COLOURS[kind])}</g>')
        elif kind == "step":
            out.append(f'<circle cx="{_fmt(lx + 6)}" cy="{_fmt(y + 8)}" r="6" '
                       f'fill="{COLOURS[kind]}"/>')
        else:
            h = HOST_BAR_HEIGHT if kind == "host" else 10
            fill = "url(#hatch)" if kind == "forwarding" else COLOURS[kind]
            out.append(f'<rect x="{_fmt(lx)}" y="{_fmt(y + 8 - h / 2)}" width="14" '
                       f'height="{_fmt(h)}" fill="{fill}"/>')
        out.append(f'<text x="{_fmt(lx + 18)}" y="{_fmt(y + 12)}" font-size="10" '
                   f'fill="#333">{escape(text)}</text>')
        lx += span
    out.append("</g>")
    return out, y + 24


LEGEND: Sequence[tuple[str, str]] = (
    ("step", "numbered circle and dashed line: what the scenario did then"),
    ("querier", "bar: this router is the IGMP querier on the interface"),
    ("membership", "bar: the interface has members of the group (IGMP or static)"),
    ("host", "thin bar under its group: this host is a member, from its report to its "
             "leave (or until the group's membership ends)"),
    ("upstream", "bar: a proxy holds the group on its upstream interface (its kernel "
                 "reports it to the router above)"),
    ("forwarding", "hatched bar: the kernel route forwards (S,G) out of this interface; "
                   "label: packets of the flow while the bar was on"),
    ("query", "triangle: IGMP query (filled: received, hollow: sent)"),
    ("report", "circle on a host's bar: its membership report"),
    ("leave", "cross on a host's bar: its leave (TO_IN {}, v2 leave, or BLOCK)"),
    ("router-report", "grey diamond: a router's own report for 224.0.0.2/224.0.0.22 "
                      "(the routers' groups, not a host's membership)"),
    ("event", "tick: querier change, timer expiry, upcall, link change, daemon start/stop"),
)

ZOOM_SCRIPT = """
(function () {
  "use strict";
  const svg = document.querySelector("svg.timeline");
  if (!svg) { return; }
  const t0 = +svg.dataset.t0, t1 = +svg.dataset.t1;
  const left = +svg.dataset.left, plot = +svg.dataset.plotWidth;
  const steps = [0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600];
  let a = t0, b = t1;
  const ns = "http://www.w3.org/2000/svg";
  const ticks = svg.querySelector("g.ticks");
  const tickProto = ticks.querySelector("line"), labelProto = ticks.querySelector("text");
  const moving = Array.from(svg.querySelectorAll("[data-t], [data-start]"))
    .filter((el) => !ticks.contains(el));
  const x = (t) => left + (t - a) * plot / (b - a);
  const fmt = (v) => String(+v.toFixed(2));
  function drawTicks() {
    const span = b - a;
    let step = steps[steps.length - 1];
    for (const s of steps) { if (span / s <= 12) { step = s; break; } }
    ticks.replaceChildren();
    for (let k = Math.ceil((a - t0) / step - 1e-9); t0 + k * step <= b + 1e-9; k++) {
      const t = t0 + k * step;
      const line = tickProto.cloneNode(), label = labelProto.cloneNode();
      line.setAttribute("x1", x(t)); line.setAttribute("x2", x(t));
      label.setAttribute("x", x(t)); label.textContent = fmt(k * step) + " s";
      ticks.append(line, label);
    }
  }
  function draw() {
    for (const el of moving) {
      if (el.dataset.start !== undefined) {
        const x0 = x(+el.dataset.start), x1 = x(+el.dataset.end);
        el.setAttribute("x", x0); el.setAttribute("width", Math.max(1, x1 - x0));
      } else if (el.tagName === "line") {
        el.setAttribute("x1", x(+el.dataset.t)); el.setAttribute("x2", x(+el.dataset.t));
      } else if (el.tagName === "text") {
        el.setAttribute("x", x(+el.dataset.t) + (+el.dataset.dx || 0));
      } else {
        el.setAttribute("transform", "translate(" + x(+el.dataset.t) + "," + el.dataset.y + ")");
      }
    }
    drawTicks();
    document.getElementById("window").textContent =
      fmt(a - t0) + " s to " + fmt(b - t0) + " s";
  }
  function zoom(factor, at) {
    const span = Math.min(Math.max((b - a) * factor, 0.05), (t1 - t0) * 1.5);
    const f = (at - a) / (b - a);
    a = at - f * span; b = a + span; clamp(); draw();
  }
  function clamp() {
    const span = b - a, pad = (t1 - t0) * 0.25;
    if (a < t0 - pad) { a = t0 - pad; b = a + span; }
    if (b > t1 + pad) { b = t1 + pad; a = b - span; }
  }
  function timeAt(evt) {
    const p = svg.createSVGPoint(); p.x = evt.clientX; p.y = evt.clientY;
    const u = p.matrixTransform(svg.getScreenCTM().inverse());
    return a + (u.x - left) * (b - a) / plot;
  }
  svg.addEventListener("wheel", (evt) => {
    evt.preventDefault(); zoom(evt.deltaY > 0 ? 1.25 : 0.8, timeAt(evt));
  }, { passive: false });
  let drag = null;
  svg.addEventListener("pointerdown", (evt) => {
    drag = { t: timeAt(evt), a: a, b: b }; svg.setPointerCapture(evt.pointerId);
  });
  svg.addEventListener("pointermove", (evt) => {
    if (!drag) { return; }
    const shift = drag.t - (drag.a + (timeAt(evt) - a));
    a = drag.a + shift; b = drag.b + shift; clamp(); draw();
  });
  svg.addEventListener("pointerup", () => { drag = null; });
  const mid = () => (a + b) / 2;
  document.getElementById("zoom-in").addEventListener("click", () => zoom(0.5, mid()));
  document.getElementById("zoom-out").addEventListener("click", () => zoom(2, mid()));
  document.getElementById("zoom-reset").addEventListener("click", () => {
    a = t0; b = t1; draw();
  });
  document.addEventListener("keydown", (evt) => {
    if (evt.key === "+" || evt.key === "=") { zoom(0.5, mid()); }
    else if (evt.key === "-") { zoom(2, mid()); }
    else if (evt.key === "0") { a = t0; b = t1; draw(); }
    else if (evt.key === "ArrowLeft") { const s = (b - a) / 5; a -= s; b -= s; clamp(); draw(); }
    else if (evt.key === "ArrowRight") { const s = (b - a) / 5; a += s; b += s; clamp(); draw(); }
  });
  draw();
  document.body.dataset.ready = "1";
})();
"""

PAGE_STYLE = """
body { font-family: sans-serif; margin: 1em; }
.controls { margin: 0.4em 0; }
.controls button { font-size: 1em; min-width: 2.2em; }
svg.timeline { max-width: 100%; height: auto; border: 1px solid #ddd; touch-action: none;
  cursor: grab; user-select: none; }
svg.timeline g.mark:hover, svg.timeline rect.bar:hover { opacity: 0.6; }
@media print {
  .controls, .hint { display: none; }
  svg.timeline { border: none; }
  body { margin: 0; }
}
"""


def render_html(events: Iterable[Event], *, title: str = "mrouter timeline",
                order: Sequence[str] = ()) -> str:
    """An HTML page: the SVG inline, zoom and pan of the time axis (wheel, drag,
    buttons, + - 0 and arrow keys; a script inline, nothing fetched), the steps listed,
    and a legend."""
    events = list(events)
    svg = render_svg(events, title=title, order=order, interactive=True)
    tl = build(events, order)
    items = "\n".join(
        f'<li><span style="display:inline-block;width:14px;height:10px;'
        f'background:{COLOURS[k]};margin-right:6px"></span><b>{k}</b>: {escape(text)}</li>'
        for k, text in LEGEND)
    steps = "\n".join(f"<li>{_fmt(s.time - tl.t0)} s: {escape(s.text)}</li>"
                      for s in tl.steps)
    steps_html = f"<h3>Steps</h3>\n<ol>\n{steps}\n</ol>\n" if steps else ""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{escape(title)}</title>\n<style>{PAGE_STYLE}</style></head>\n<body>\n"
            '<div class="controls"><button id="zoom-in" title="zoom in (+)">+</button> '
            '<button id="zoom-out" title="zoom out (-)">&minus;</button> '
            '<button id="zoom-reset" title="whole run (0)">whole run</button> '
            '<span class="hint">wheel: zoom at the pointer, drag or arrow keys: pan; '
            'showing <span id="window"></span></span></div>\n'
            f"{svg}{steps_html}<h3>Legend</h3>\n<ul>\n{items}\n</ul>\n<p>Time is seconds "
            "since the first event. Hover a bar or mark for details (who, what, when)."
            f"</p>\n<script>{ZOOM_SCRIPT}</script>\n</body></html>\n")
