"""``mrouter querier``: a standalone IGMP querier (like querierd) on one or more interfaces;
with ``--mld``, an MLD querier (IPv6), through the same engine and shell.

It sends the general and last-member queries, takes part in querier election, and
prints membership and querier changes as they happen (one JSON object per line with
``--json``). SIGUSR1 prints the group table (filter mode, timers, sources, hosts); so
does the end of the run (SIGTERM or Ctrl-C). MLD events have the same kinds and keys as
IGMP's, with ``"family": "ipv6"`` added.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from mrouter.diag.events import action_event
from mrouter.errors import MrouterError
from mrouter.igmp.engine import (
    Action,
    Dropped,
    Engine,
    InterfaceSettings,
    SendQuery,
    TimerName,
)
from mrouter.igmp.family import IPV4, IPV6
from mrouter.igmp.settings import DEFAULTS, LIMITS, MLD_DEFAULTS
from mrouter.igmp.snapshot import render_snapshot

_D = DEFAULTS
EPILOG = f"""\
examples:
  mrouter querier --iface eth0
  mrouter querier --iface eth0 --json --fast-leave
  mrouter querier --iface eth0 --version 2 --query-interval 20 --query-response-interval 5
  mrouter querier --iface eth0 --mld --json          # MLDv2 (IPv6)
  mrouter querier --iface eth0 --mld --mld-version 1
  kill -USR1 <pid>     # print the group table

Timers default to RFC 3376 §8: query interval {_D.query_interval:g} s, response interval \
{_D.query_response_interval:g} s,
robustness {_D.robustness}, last member query interval {_D.last_member_query_interval:g} s \
(so a leave ends a membership within
{_D.last_member_query_time:g} s), startup queries every QI/4. A router with a lower \
address on the link wins the
querier election; this one then listens and resumes querying when that router falls
silent for robustness x QI + QRI/2 (its QRV and QQIC are adopted up to --max-robustness
and --max-query-interval, so a forged query cannot hold groups for days). IGMP with an
IP TTL other than 1 is dropped (and shown with --show-queries).

With --mld it speaks MLD (RFC 3810, RFC 2710) instead, with the same timers (RFC 3810
§9 has the same defaults): queries go from the interface's link-local address with hop
limit 1 and a Router Alert, the lowest IPv6 address wins the election, and MLD from
anything but a link-local address (the unspecified address :: included) is dropped.
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.epilog = EPILOG
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--iface", "-i", action="append", required=True, metavar="IF",
                        help="interface to run on (repeat for several); it needs an IPv4 "
                             "address, the source of the queries (with --mld: an IPv6 "
                             "link-local address)")
    d = DEFAULTS
    parser.add_argument("--version", type=int, choices=(1, 2, 3),
                        help=f"IGMP version to speak (default {d.version})")
    parser.add_argument("--mld", action="store_true",
                        help="speak MLD (IPv6) instead of IGMP")
    parser.add_argument("--mld-version", type=int, choices=(1, 2), metavar="{1,2}",
                        help=f"MLD version to speak, with --mld (default "
                             f"{MLD_DEFAULTS.version})")
    for name, metavar, text, shows_default in _NUMBER_OPTIONS:
        if shows_default:
            value = getattr(d, name)
            text += f" (default {value:g})" if LIMITS[name].seconds else f" (default {value})"
        parser.add_argument("--" + name.replace("_", "-"), type=_number(name),
                            default=getattr(d, name) if shows_default else None,
                            metavar=metavar, help=text)
    parser.add_argument("--require-router-alert", action="store_true",
                        help="drop IGMP without the IP Router Alert option")
    parser.add_argument("--fast-leave", action="store_true",
                        help="end a membership at once when the last host that reported "
                             "it leaves (hosts are tracked by address)")
    parser.add_argument("--no-querier", dest="querier", action="store_false",
                        help="never query; only listen and track membership")
    parser.add_argument("--show-queries", action="store_true",
                        help="also print every query sent and every message dropped")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per line (event, time, ...)")
    parser.set_defaults(func=run)


#: The numeric settings as options, in --help's order: (setting, metavar, help, whether
#: the option defaults to DEFAULTS' value, which the help then states). The others
#: default to what the engine derives (from QI, or from the robustness).
_NUMBER_OPTIONS: tuple[tuple[str, str | None, str, bool], ...] = (
    ("robustness", None, "robustness variable: how many lost packets are tolerated", True),
    ("query_interval", "S", "seconds between general queries", True),
    ("query_response_interval", "S", "max response time of general queries", True),
    ("startup_query_interval", "S", "seconds between startup queries (default QI/4)", False),
    ("startup_query_count", "N", "startup queries (default: robustness)", False),
    ("last_member_query_interval", "S", "seconds between last-member queries after a leave",
     True),
    ("last_member_query_count", "N", "last-member queries after a leave (default: "
     "robustness)", False),
    ("max_groups", "N", "groups learnt per interface; reports for more are dropped and "
     "counted", True),
    ("max_sources", "N", "sources learnt per interface, all groups together", True),
    ("max_group_sources", "N", "sources learnt per group", True),
    ("max_query_interval", "S", "longest query interval adopted from another querier's QQIC",
     True),
    ("max_robustness", "N", "largest robustness adopted from another querier's QRV", True),
)


def _number(name: str) -> Callable[[str], float]:
    """An argparse type for the setting ``name``: its range is the engine's (LIMITS)."""
    limit = LIMITS[name]

    def parse(text: str) -> float:
        try:
            value: float = float(text) if limit.seconds else int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r}: {limit.describe()}") from None
        if not (limit.lo < value if limit.seconds else limit.lo <= value) or value > limit.hi:
            raise argparse.ArgumentTypeError(f"{text}: {limit.describe()}")
        return value
    return parse


#: option dest -> InterfaceSettings field (the same name everywhere but the version)
_SETTINGS = (*(name for name, _, _, _ in _NUMBER_OPTIONS), "require_router_alert",
             "fast_leave", "querier")


class QuerierUsageError(MrouterError):
    """Options that do not go together (one line, exit status 2)."""


def settings_from(args: argparse.Namespace) -> InterfaceSettings:
    common = {name: getattr(args, name) for name in _SETTINGS}
    if getattr(args, "mld", False):
        if args.version is not None:
            raise QuerierUsageError("--version is the IGMP version; for MLD give "
                                    "--mld-version 1 or 2")
        version = args.mld_version or MLD_DEFAULTS.version
        return InterfaceSettings(protocol="MLD", version=version, **common)
    if getattr(args, "mld_version", None) is not None:
        raise QuerierUsageError("--mld-version is for an MLD querier: add --mld")
    version = DEFAULTS.version if args.version is None else args.version
    return InterfaceSettings(version=version, **common)


def human(event: dict[str, Any]) -> str:
    stamp = datetime.fromtimestamp(event["time"]).strftime("%H:%M:%S.%f")[:-3]
    kind = event["event"]
    if kind == "membership":
        sources = "{" + ", ".join(event["sources"]) + "}"
        if event["filter_mode"] == "INCLUDE":
            what = "left (no members)" if not event["sources"] else f"forward only {sources}"
        else:
            what = ("forward all sources" if not event["sources"]
                    else f"forward all sources except {sources}")
        detail = f"{event['group']:<15}  {event['filter_mode']:<7}  {what}"
    elif kind == "querier":
        detail = (f"querier {event['querier'] or 'none'}"
                  + (" (this router)" if event["is_self"] else ""))
    elif kind == "query":
        target = "general" if event["group"] in ("0.0.0.0", "::") else event["group"]
        sources = f" sources {{{', '.join(event['sources'])}}}" if event["sources"] else ""
        protocol = "MLD" if event.get("family") == "ipv6" else "IGMP"
        detail = (f"sent {protocol}v{event['version']} query {target}{sources}"
                  + (" S" if event["s_flag"] else ""))
    elif kind == "timer":
        what = {TimerName.GROUP: "group timer expired",
                TimerName.SOURCE: "source timer expired",
                TimerName.OTHER_QUERIER: "other querier present timer expired: the querier "
                "went quiet"}.get(event["timer"], f"{event['timer']} timer expired")
        target = event["group"] or ""
        if event["source"]:
            target += f" ({event['source']})"
        detail = f"{target:<15}  {what}" if target else what
    else:
        detail = f"dropped ({event['reason']}): {event['detail']}"
    return f"{stamp}  {event['iface']:<8}  {kind:<10}  {detail}"


def run(args: argparse.Namespace) -> int:
    from mrouter.router.querier import IgmpTap, QuerierShell
    from mrouter.sockets.igmp_socket import IgmpSocket
    from mrouter.sockets.mld_socket import MldSocket, MldTap

    settings = settings_from(args)
    family = IPV6 if settings.protocol == "MLD" else IPV4
    # every event says its family ("ipv4" or "ipv6"), like every JSON object that carries
    # addresses of one family
    tag = {"family": family.key}

    def emit(event: dict[str, Any]) -> None:
        event = {"time": round(time.time(), 6), **event}
        print(json.dumps(event) if args.json else human(event), flush=True)

    def on_action(action: Action) -> None:
        if isinstance(action, SendQuery | Dropped) and not args.show_queries:
            return
        emit({**action_event(action), **tag})

    def print_groups() -> None:
        for name in shell.engine.interfaces():
            snap = shell.engine.snapshot(name, time.monotonic())
            if args.json:
                emit({"event": "groups", "iface": name, "snapshot": snap.to_json(), **tag})
            else:
                print(render_snapshot(snap), flush=True)

    flags = {"stop": False, "dump": False}
    read_fd, write_fd = os.pipe()
    os.set_blocking(read_fd, False)
    os.set_blocking(write_fd, False)

    def on_signal(signum: int, _frame: object) -> None:
        flags["dump" if signum == signal.SIGUSR1 else "stop"] = True

    def on_wakeup() -> None:
        with contextlib.suppress(BlockingIOError):
            os.read(read_fd, 512)
        if flags["dump"]:
            flags["dump"] = False
            print_groups()

    old_wakeup = signal.set_wakeup_fd(write_fd)
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGUSR1, signal.SIGTERM,
                                                    signal.SIGINT)}
    sock: IgmpSocket | MldSocket
    tap: IgmpTap | MldTap
    if family is IPV6:
        sock, tap = MldSocket(), MldTap()
    else:
        sock, tap = IgmpSocket(), IgmpTap()
    shell = QuerierShell(Engine(random.Random(), family), sock, time.monotonic, on_action,
                         tap=tap)
    try:
        for name in args.iface:
            shell.add_interface(name, settings)
        shell.run(lambda: flags["stop"], {read_fd: on_wakeup})
        print_groups()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        signal.set_wakeup_fd(old_wakeup)
        os.close(read_fd)
        os.close(write_fd)
        sock.close()
        tap.close()
    return 0

