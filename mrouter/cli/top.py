"""``mrouter top``: a running daemon's interfaces, groups and routes, refreshed each second.

Each refresh asks the daemon's control socket for ``show interfaces``, ``show groups``
and ``show routes`` (:func:`poll`), turns the kernel's packet counters into packets per
second against the previous refresh (:func:`rates`), and draws the three tables
(:func:`screen`). On a terminal the screen is redrawn in place (curses) until ``q``;
otherwise (a pipe, a file) each refresh prints plain lines, one per interface, group
and route, each starting with the time (:func:`plain_lines`), so ``grep`` and logs can
read them. ``--count N`` stops after N refreshes; ``--json`` prints one object per
refresh.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mrouter.cli.daemon import socket_options
from mrouter.cli.sockets import table
from mrouter.errors import MrouterError
from mrouter.router.control import request


def configure(parser: argparse.ArgumentParser) -> None:
    socket_options(parser)
    parser.add_argument("--interval", type=float, default=1.0, metavar="SECONDS",
                        help="seconds between refreshes (default 1)")
    parser.add_argument("--count", type=int, default=None, metavar="N",
                        help="stop after N refreshes (default: until q or Ctrl-C)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per refresh: interfaces, groups, routes, rates")
    parser.epilog = ("keys: q quits. Piped or redirected, it prints plain lines instead.\n"
                     "example:\n  mrouter top --socket /run/mrouter.sock\n"
                     "  mrouter top --count 5 --interval 2")
    parser.set_defaults(func=run)


@dataclass(frozen=True)
class Snapshot:
    """What the daemon said at ``time`` (monotonic seconds)."""

    time: float
    interfaces: list[dict[str, Any]]
    groups: list[dict[str, Any]]
    routes: list[dict[str, Any]]  # the kernel (S,G) entries


@dataclass(frozen=True)
class Rates:
    """Packets per second since the previous snapshot (None: no previous one yet)."""

    routes: dict[tuple[str, str], float | None] = field(default_factory=dict)
    iface_in: dict[str, float | None] = field(default_factory=dict)
    iface_out: dict[str, float | None] = field(default_factory=dict)


def poll(socket: str, now: Callable[[], float] = time.monotonic) -> Snapshot:
    interfaces = request(socket, "show", what="interfaces")
    groups = request(socket, "show", what="groups")
    routes = request(socket, "show", what="routes")
    return Snapshot(now(), list(interfaces), list(groups), list(routes["entries"]))


def _per_second(new: object, old: object, dt: float) -> float | None:
    if not isinstance(new, int) or not isinstance(old, int) or dt <= 0:
        return None
    if new < old:  # the route was deleted and added again: its counter restarted at 0
        return new / dt
    return (new - old) / dt


def rates(prev: Snapshot | None, cur: Snapshot) -> Rates:
    """Packets/s of each route and interface between ``prev`` and ``cur``."""
    out = Rates()
    dt = cur.time - prev.time if prev is not None else 0.0
    old_routes = {(r["source"], r["group"]): r for r in prev.routes} if prev else {}
    old_ifaces = {i["name"]: i for i in prev.interfaces} if prev else {}
    for r in cur.routes:
        key = (r["source"], r["group"])
        before = old_routes.get(key)
        out.routes[key] = _per_second(r.get("packets"), before.get("packets"), dt) \
            if before else None
    for i in cur.interfaces:
        before = old_ifaces.get(i["name"])
        out.iface_in[i["name"]] = _per_second(i.get("packets_in"), before.get("packets_in"),
                                              dt) if before else None
        out.iface_out[i["name"]] = _per_second(i.get("packets_out"),
                                               before.get("packets_out"), dt) if before else None
    return out


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _list(items: Sequence[str]) -> str:
    return ",".join(items) if items else "-"


def _timer(value: object) -> str:
    return f"{value:.1f}s" if isinstance(value, (int, float)) else "-"


def _querier(i: Mapping[str, Any]) -> str:
    if not i.get("igmp"):
        return "-"
    return "self" if i.get("is_querier") else str(i.get("querier") or "?")


def screen(snap: Snapshot, r: Rates, socket: str) -> list[str]:
    """The three tables as lines, under a one-line header."""
    ifaces = [(i["name"], i["vif"], i["address"], i["role"],
               "up" if i["active"] else "stopped", _querier(i),
               _rate(r.iface_in.get(i["name"])), _rate(r.iface_out.get(i["name"])),
               i.get("packets_in", "?"), i.get("packets_out", "?")) for i in snap.interfaces]
    groups = []
    for g in snap.groups:
        igmp = g.get("igmp") or {}
        hosts = igmp.get("hosts", [])
        groups.append((g["iface"], g["group"], g["filter_mode"], _list(g["sources"]),
                       "static" if g["static"] else "igmp", _timer(igmp.get("group_timer")),
                       _list([f"{h['host']} ({_timer(h.get('expires'))})" for h in hosts])))
    routes = [(e["source"], e["group"], e["iif"], _list(e["oifs"]),
               _rate(r.routes.get((e["source"], e["group"]))), e["packets"], e["wrong_if"],
               f"{e['age']:.0f}s") for e in snap.routes]
    lines = [f"mrouter top  {time.strftime('%H:%M:%S')}  {len(snap.interfaces)} interfaces, "
             f"{len(snap.groups)} groups, {len(snap.routes)} routes  (q quits)  {socket}",
             "", "interfaces"]
    lines += table(("IFACE", "VIF", "ADDRESS", "ROLE", "STATE", "QUERIER", "IN/S", "OUT/S",
                    "PKTS_IN", "PKTS_OUT"), ifaces).splitlines()
    lines += ["", "groups"]
    lines += table(("IFACE", "GROUP", "MODE", "SOURCES", "FROM", "TIMER", "HOSTS (expire)"),
                   groups).splitlines() if groups else ["(no members)"]
    lines += ["", "routes"]
    lines += table(("SOURCE", "GROUP", "IIF", "OIFS", "PKTS/S", "PACKETS", "WRONG_IF", "AGE"),
                   routes).splitlines() if routes else ["(no kernel routes)"]
    return lines


def plain_lines(snap: Snapshot, r: Rates) -> list[str]:
    """One line per interface, group and route, each starting with the time."""
    now = time.strftime("%H:%M:%S")
    out = [f"{now} iface {i['name']} {'up' if i['active'] else 'stopped'} querier "
           f"{_querier(i)} in {_rate(r.iface_in.get(i['name']))}/s "
           f"out {_rate(r.iface_out.get(i['name']))}/s" for i in snap.interfaces]
    for g in snap.groups:
        igmp = g.get("igmp") or {}
        out.append(f"{now} group {g['iface']} {g['group']} {g['filter_mode']} "
                   f"sources {_list(g['sources'])} timer {_timer(igmp.get('group_timer'))} "
                   f"hosts {_list([h['host'] for h in igmp.get('hosts', [])])}")
    out += [f"{now} route {e['source']} {e['group']} {e['iif']} -> {_list(e['oifs'])} "
            f"{_rate(r.routes.get((e['source'], e['group'])))} pkts/s {e['packets']} packets"
            for e in snap.routes]
    return out


def _as_json(snap: Snapshot, r: Rates) -> str:
    return json.dumps({
        "interfaces": [{**i, "in_pps": r.iface_in.get(i["name"]),
                        "out_pps": r.iface_out.get(i["name"])} for i in snap.interfaces],
        "groups": snap.groups,
        "routes": [{**e, "pps": r.routes.get((e["source"], e["group"]))}
                   for e in snap.routes]})


def run(args: argparse.Namespace) -> int:
    if args.interval <= 0:
        raise MrouterError(f"--interval must be a positive number of seconds, not "
                           f"{args.interval:g}")
    if args.count is not None and args.count < 1:
        raise MrouterError(f"--count must be at least 1, not {args.count}")
    first = poll(args.socket)  # a daemon that is not there: one error line, before curses
    if sys.stdout.isatty() and sys.stdin.isatty() and not args.json:
        return _run_curses(args, first)
    prev: Snapshot | None = None
    snap, n = first, 0
    while True:
        r = rates(prev, snap)
        if args.json:
            print(_as_json(snap, r), flush=True)
        else:
            print("\n".join(plain_lines(snap, r)), flush=True)
        n += 1
        if args.count is not None and n >= args.count:
            return 0
        time.sleep(args.interval)
        prev, snap = snap, poll(args.socket)


def _run_curses(args: argparse.Namespace, first: Snapshot) -> int:
    import curses

    def loop(win: Any) -> int:
        curses.curs_set(0)
        win.timeout(int(args.interval * 1000))
        prev: Snapshot | None = None
        snap, n = first, 0
        while True:
            lines = screen(snap, rates(prev, snap), args.socket)
            height, width = win.getmaxyx()
            win.erase()
            for y, line in enumerate(lines[:height]):
                win.addnstr(y, 0, line, width - 1)
            win.refresh()
            n += 1
            if args.count is not None and n >= args.count:
                return 0
            deadline = time.monotonic() + args.interval
            while (left := deadline - time.monotonic()) > 0:
                win.timeout(max(1, int(left * 1000)))
                if win.getch() in (ord("q"), ord("Q")):
                    return 0
            prev, snap = snap, poll(args.socket)

    status: int = curses.wrapper(loop)
    return status
