"""What a timeline page should draw, counted from the events (not from the timeline's own
model), and the script that counts what the page did draw. Shared by the browser tests
(import as ``from drawn import DRAWN, expected``)."""

from __future__ import annotations

from collections import Counter
from ipaddress import IPv4Address, IPv4Network
from typing import Any

from mrouter.diag.events import Event, EventKind

LINK_LOCAL = IPv4Network("224.0.0.0/24")

DRAWN = """(() => {
  const lanes = {};
  for (const g of document.querySelectorAll("svg.timeline g.lane")) {
    const c = {};
    for (const el of g.querySelectorAll(".bar, .mark")) {
      const k = el.classList[0] + " " + el.classList[1];
      c[k] = (c[k] || 0) + 1;
    }
    lanes[g.dataset.iface] = c;
  }
  return {lanes: lanes, steps: document.querySelectorAll("svg.timeline g.step").length};
})()"""


def _ll(group: object) -> bool:
    return isinstance(group, str) and IPv4Address(group) in LINK_LOCAL


def expected(events: list[Event]) -> dict[str, Counter[str]]:
    """What each lane should show, counted from the events: one mark per query, per
    host record (report or leave), per router report of 224.0.0.x, per event tick (not
    the timers of 224.0.0.x groups; a daemon's start and stop on each of its lanes); one
    bar per period during which
    the interface is querier, has members, holds a group upstream, forwards a flow, or
    a host is a member."""
    lanes: dict[str, Counter[str]] = {}
    for e in events:
        for name in [e.iface, e.fields.get("iif"), *e.fields.get("oifs", ())]:
            if isinstance(name, str):
                lanes.setdefault(name, Counter())
    on: set[tuple[Any, ...]] = set()

    def turn(key: tuple[Any, ...], now_on: bool, bar: str, lane: str) -> None:
        if now_on and key not in on:
            on.add(key)
            lanes[lane][f"bar {bar}"] += 1
        elif not now_on:
            on.discard(key)

    for e in sorted(events, key=lambda e: e.time):
        f, lane, router = e.fields, e.iface or "", str(e.fields.get("router", ""))
        if e.kind in (EventKind.IGMP_IN, EventKind.IGMP_OUT):
            if f["type"] == "query":
                lanes[lane]["mark query"] += 1
                continue
            records = f.get("records") or [{"type": f["type"], "group": f["group"],
                                             "sources": []}]
            if e.kind is EventKind.IGMP_OUT or all(_ll(r["group"]) for r in records):
                lanes[lane]["mark router-report"] += 1
                continue
            for r in records:
                if _ll(r["group"]):
                    continue
                lanes[lane][f"mark {f['type']}"] += 1
                member = r["type"] in ("IS_EX", "TO_EX", "report") or bool(r["sources"])
                turn(("host", lane, r["group"], f["src"]), member, "host", lane)
        elif e.kind is EventKind.TIMER_EXPIRED and _ll(f["group"]):
            continue  # the routers' own groups: not drawn
        elif e.kind in (EventKind.QUERIER_CHANGED, EventKind.TIMER_EXPIRED, EventKind.UPCALL,
                        EventKind.IFACE_CHANGED):
            lanes[lane]["mark event"] += 1
            if e.kind is EventKind.QUERIER_CHANGED:
                turn(("querier", lane), bool(f["is_self"]), "querier", lane)
        elif e.kind in (EventKind.MEMBERSHIP_CHANGED, EventKind.UPSTREAM_MEMBERSHIP):
            if _ll(f["group"]):
                continue
            member = not (f["filter_mode"] == "INCLUDE" and not f["sources"])
            kind = "membership" if e.kind is EventKind.MEMBERSHIP_CHANGED else "upstream"
            turn((kind, lane, f["group"]), member, kind, lane)
            if not member:
                for key in [k for k in on if k[:3] == ("host", lane, f["group"])]:
                    on.discard(key)
        elif e.kind in (EventKind.MFC_ADD, EventKind.MFC_UPDATE, EventKind.MFC_DELETE):
            oifs = set(f.get("oifs", ())) if e.kind is not EventKind.MFC_DELETE else set()
            flow = (router, f["source"], f["group"])
            for name in oifs:
                turn(("fwd", name, *flow), True, "forwarding", name)
            for key in [k for k in on if k[0] == "fwd" and k[2:] == flow and k[1] not in oifs]:
                on.discard(key)
        elif e.kind in (EventKind.DAEMON_STARTED, EventKind.DAEMON_STOPPED):
            mine = [n for n in lanes if not router or n.startswith(router + " ")]
            for name in mine:
                lanes[name]["mark event"] += 1
            if e.kind is EventKind.DAEMON_STOPPED:
                on -= {k for k in on if k[1] in mine}
    return lanes
