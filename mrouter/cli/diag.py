"""``mrouter explain``, ``mrouter events`` and ``mrouter timeline``: parsing and output.

The reasoning is :mod:`mrouter.diag.explain`, the event schema :mod:`mrouter.diag.events`, the
drawing :mod:`mrouter.diag.timeline`. ``python -m mrouter.cli.diag explain ...`` runs these
commands before they are in the main command table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mrouter.cli.daemon import socket_options
from mrouter.cli.sockets import IPAddress, multicast_group, source_address, table
from mrouter.errors import MrouterError

# --- explain ------------------------------------------------------------------------------

def configure_explain(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Say, for each interface, whether (S,G) is forwarded out of it and if not the "
        "first reason why, with the fix. The chain follows the packet: link down, "
        "bridge snooping without a querier, multicast routing not running, sender TTL, "
        "rp_filter, missing VIFs, no route or only an unresolved one, route owned by "
        "another process, RPF mismatch (arriving on another interface), no members, "
        "TTL threshold. It reads the kernel's state in this namespace, asks a running "
        "daemon when one answers on --socket, and with --listen watches the flow for "
        "a few seconds to see where and with which TTL it arrives. An IPv6 group is "
        "explained from the IPv6 table (MIFs, hop limit, disable_ipv6; IPv6 has no "
        "rp_filter and no MIF thresholds).")
    parser.add_argument("group", type=_any_group,
                        help="the multicast group, e.g. 239.1.1.1 or ff15::1 (IPv6)")
    parser.add_argument("--source", type=source_address, metavar="S",
                        help="the sender's address (default: the one route or the one "
                             "flow seen for the group)")
    parser.add_argument("--iface", metavar="IF", help="explain only this interface")
    parser.add_argument("--from", dest="arrival", metavar="IF",
                        help="the interface the flow arrives on, if you know it")
    parser.add_argument("--listen", type=float, default=0.0, metavar="SECONDS",
                        help="sniff that long for the flow (its TTL and input interface)")
    parser.add_argument("--probe-owner", action="store_true",
                        help="try MRT_INIT to tell whether another process holds the "
                             "table (released at once; do not use while a daemon starts)")
    parser.add_argument("--table", type=int, metavar="N",
                        help="the multicast routing table (a daemon's `table = N`; "
                             "default: the one with VIFs)")
    socket_options(parser)
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per interface (and source)")
    parser.epilog = ("example:\n  mrouter explain 239.1.1.1 --source 198.51.100.2 --listen 2\n"
                     "  mrouter explain 239.1.1.1 --iface dn0 --json\n"
                     "  mrouter explain ff15::1 --source 2001:db8:1::2 --listen 2")
    parser.set_defaults(func=_explain)


def _any_group(text: str) -> IPAddress:
    """argparse type for an IPv4 or IPv6 multicast group."""
    if ":" not in text:
        return multicast_group(text)
    from mrouter.errors import McastError
    from mrouter.sockets import mcast6

    try:
        return mcast6.as_group(text)
    except McastError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _explain(args: argparse.Namespace) -> int:
    from mrouter.diag.explain import OWNER_TEXT, diagnose_all, filter_iface, gather

    facts = gather(args.group, args.source, socket_path=args.socket, listen=args.listen,
                   arrival=args.arrival, probe=args.probe_owner, table=args.table)
    verdicts = filter_iface(diagnose_all(facts), args.iface)
    if args.json:
        for v in verdicts:
            print(json.dumps(v.to_dict()), flush=True)
    else:
        in_table = ("" if facts.table == facts.family.default_table
                    else f" (table {facts.table})")
        print(f"({facts.source or '*'}, {facts.group}): {facts.family.routing} "
              f"{OWNER_TEXT[facts.owner]}{in_table}")
        for note in facts.notes:
            print(f"note: {note}")
        rows = [(v.iface, v.source or "*",
                 "yes" if v.forwarded else ("input" if v.reason == "input" else "no"),
                 v.reason.value, v.text) for v in verdicts]
        print(table(("IFACE", "SOURCE", "FORWARDED", "REASON", "WHY"), rows))
        for v in verdicts:
            if v.fix:
                print(f"fix {v.iface}: {v.fix}")
    outbound = [v for v in verdicts if v.reason != "input"]
    return 0 if outbound and all(v.forwarded for v in outbound) else 1


# --- events -------------------------------------------------------------------------------

def configure_events(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print the daemon's recorded events (IGMP and MLD in and out, querier and membership "
        "changes, timer expiries, kernel route add/update/delete, upcalls, interface "
        "changes, a proxy's upstream membership, the user data plane's decisions), from "
        "its control socket or from a file written by `mrouter run --events FILE`.")
    parser.add_argument("--follow", "-f", action="store_true",
                        help="keep printing new events until Ctrl-C")
    parser.add_argument("--file", metavar="FILE", help="read this events file instead of "
                                                       "asking the daemon")
    socket_options(parser)
    parser.add_argument("--kind", metavar="KIND", action="append", choices=_KINDS,
                        help="only events of this kind (repeat for several): "
                             + ", ".join(_KINDS))
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.epilog = ("example:\n  mrouter events --follow\n"
                     "  mrouter events --file ev.jsonl --json\n"
                     "  mrouter events --follow --kind membership_changed --kind mfc_update")
    parser.set_defaults(func=_events)


# mrouter.diag.events.EventKind's values, spelled out so that parsing the command line does not
# import the IGMP engine (a unit test keeps the two the same)
_KINDS = ("igmp_in", "igmp_out", "mld_in", "mld_out", "querier_changed", "membership_changed",
          "timer_expired", "mfc_add", "mfc_update", "mfc_delete", "mfc_counters", "upcall",
          "iface_changed", "upstream_membership", "forward_decision", "daemon_started",
          "daemon_stopped", "step")


def _format_event(e: Any, json_out: bool) -> str:
    if json_out:
        return str(e.to_json())
    fields = " ".join(f"{k}={v}" for k, v in e.fields.items())
    return f"{e.time:12.3f}  {e.kind.value:<18} {e.iface or '-':<8} {fields}"


def _events(args: argparse.Namespace) -> int:
    from mrouter.diag.events import Event, read_events
    from mrouter.router.control import request

    kinds = set(args.kind or _KINDS)
    if args.file:
        if args.follow:
            return _follow_file(Path(args.file), args.json, kinds)
        for e in read_events(args.file):
            if e.kind.value in kinds:
                print(_format_event(e, args.json), flush=True)
        return 0
    cursor: int | str = 0
    while True:
        try:
            batch = request(args.socket, "events", since=cursor)
        except MrouterError as exc:
            if "unknown command" in str(exc):
                raise MrouterError(f"the daemon at {args.socket} does not serve events "
                                   "yet; run it with --events FILE and use "
                                   "mrouter events --file FILE") from None
            raise
        if batch.get("lost"):
            print(f"# {batch['lost']} events lost (the ring dropped them)", file=sys.stderr)
        for raw in batch["events"]:
            if raw.get("kind") in kinds:
                print(_format_event(Event.from_dict(raw), args.json), flush=True)
        cursor = batch["cursor"]
        if not args.follow:
            return 0
        time.sleep(0.5)


def _follow_file(path: Path, json_out: bool, kinds: set[str]) -> int:
    from mrouter.diag.events import parse_lines

    try:
        f = path.open()
    except OSError as exc:
        raise MrouterError(f"cannot read events file {path}: {exc.strerror}") from None
    with f:
        while True:
            line = f.readline()
            if not line:
                time.sleep(0.3)
                continue
            for e in parse_lines([line], str(path)):
                if e.kind.value in kinds:
                    print(_format_event(e, json_out), flush=True)


# --- timeline -----------------------------------------------------------------------------

def configure_timeline(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Draw an events file as a timeline: one lane per interface, membership per "
        "group and forwarding per (S,G) as bars, queries, reports and leaves as marks, "
        "packet counts on the forwarding bars. .svg writes the drawing, .html adds a "
        "legend. Open it in a browser.")
    parser.add_argument("events", metavar="EVENTS.jsonl",
                        help="written by mrouter run --events FILE")
    parser.add_argument("-o", "--output", metavar="FILE", required=True,
                        help="FILE.svg or FILE.html")
    parser.add_argument("--title", default=None, help="title (default: the file name)")
    parser.add_argument("--width", type=float, default=None,
                        help="pixels of the .svg (default: about 100 per second of events)")
    parser.epilog = "example:\n  mrouter timeline events.jsonl -o class.html"
    parser.set_defaults(func=_timeline)


def _timeline(args: argparse.Namespace) -> int:
    from mrouter.diag.events import read_events
    from mrouter.diag.timeline import render_html, render_svg

    events = read_events(args.events)
    out = Path(args.output)
    title = args.title or f"mrouter timeline: {Path(args.events).name}"
    if out.suffix == ".svg":
        text = render_svg(events, width=args.width, title=title)
    elif out.suffix in (".html", ".htm"):
        text = render_html(events, title=title)
    else:
        raise MrouterError(f"{out}: the output must end in .svg or .html")
    try:
        out.write_text(text)
    except OSError as exc:
        raise MrouterError(f"cannot write {out}: {exc.strerror}") from None
    print(f"{out}: {len(events)} events")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mrouter.cli.diag explain|events|timeline ...``."""
    parser = argparse.ArgumentParser(prog="mrouter")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, configure in (("explain", configure_explain), ("events", configure_events),
                            ("timeline", configure_timeline)):
        configure(sub.add_parser(name, formatter_class=argparse.RawDescriptionHelpFormatter))
    args = parser.parse_args(argv)
    try:
        status: int = args.func(args)
    except MrouterError as exc:
        print(f"mrouter {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return status


if __name__ == "__main__":
    raise SystemExit(main())
