"""``mrouter run`` (the daemon) and the commands that talk to it over its control socket.

Parsing and output only: the daemon is :mod:`mrouter.router.daemon`, the protocol of the
control socket is :mod:`mrouter.router.control`.
"""

from __future__ import annotations

import argparse
import json
import logging
import logging.handlers
import os
import socket
from collections.abc import Callable
from typing import Any

from mrouter.cli.sockets import table
from mrouter.errors import ConfigError, ControlError
from mrouter.router.control import (
    DEFAULT_INSTANCE,
    DEFAULT_SOCKET,
    RUN_DIR,
    check_instance,
    instance_pidfile,
    instance_socket,
    request,
)

CONFIG_DIR = "/etc/mrouter"
DEFAULT_CONFIG = f"{CONFIG_DIR}/{DEFAULT_INSTANCE}.toml"
LOG_LEVELS = ("error", "warning", "info", "debug")
SYSLOG_SOCKET = "/dev/log"


def socket_options(parser: argparse.ArgumentParser) -> None:
    """--socket and --instance, for ``run`` and every command that talks to a daemon
    (:func:`resolve_socket` turns them into ``args.socket``)."""
    parser.add_argument("--instance", metavar="NAME",
                        help=f"the daemon instance: its control socket is {RUN_DIR}/NAME.sock "
                             f"(default instance {DEFAULT_INSTANCE!r}: {DEFAULT_SOCKET})")
    parser.add_argument("--socket", metavar="PATH",
                        help="the daemon's control socket, if not the instance's "
                             "(--socket wins over --instance)")





def resolve_socket(args: argparse.Namespace) -> None:
    """Set ``args.socket`` from --socket, else --instance, else the default instance;
    ``args.socket_given`` says whether --socket was given."""
    if args.instance is not None:
        check_instance(args.instance)
    args.socket_given = args.socket is not None
    if args.socket is None:
        args.socket = instance_socket(args.instance or DEFAULT_INSTANCE)


def _json_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object per line instead of a table")


# --- run ----------------------------------------------------------------------------------

def configure_run(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the multicast routing daemon in the foreground until SIGTERM, SIGINT or "
        "`mrouter stop`. It owns the kernel's multicast routing table (MRT_INIT), runs "
        "the IGMP querier on its interfaces and installs routes; on exit the kernel "
        "drops every route and VIF it made. SIGHUP re-reads the config. It logs one line "
        "when ready and one per route or querier change (more with --log-level or -v/-vv "
        "before the command). Under systemd (Type=notify) it reports READY, RELOADING "
        "and STOPPING; 'mrouter config unit' prints the units.")
    parser.add_argument("--config", metavar="FILE",
                        help="TOML config; start from 'mrouter config example router' (or "
                             "proxy) and test it with 'mrouter config check FILE' (default "
                             f"{CONFIG_DIR}/INSTANCE.toml: {DEFAULT_CONFIG})")
    socket_options(parser)
    parser.add_argument("--log-level", choices=LOG_LEVELS,
                        help="log this and more serious (default: the ready line, route "
                             "and querier changes, warnings and errors; -v is info, "
                             "-vv debug)")
    parser.add_argument("--syslog", nargs="?", const=SYSLOG_SOCKET, metavar="SOCKET",
                        help=f"log to syslog (facility daemon, at {SYSLOG_SOCKET} unless "
                             "SOCKET is given) as mrouter or mrouter-INSTANCE, instead of "
                             "stderr")
    parser.add_argument("--user", metavar="NAME",
                        help="after start-up, run as this user keeping only CAP_NET_ADMIN "
                             "and CAP_NET_RAW (routes, reloads and IGMP go on)")
    parser.add_argument("--metrics", metavar="ADDR:PORT",
                        help="serve Prometheus metrics at http://ADDR:PORT/metrics from "
                             "the daemon's network namespace (e.g. 127.0.0.1:9641)")
    parser.add_argument("--events", metavar="FILE",
                        help="also append every event (IGMP in/out, querier and membership "
                             "changes, routes, upcalls, links) to FILE as JSON lines, for "
                             "`mrouter timeline FILE -o picture.html`; `mrouter events` "
                             "reads the last ones from the daemon without it")
    parser.add_argument("--dataplane", choices=("kernel", "user"), default="kernel",
                        help="who forwards: the kernel's multicast cache (default; no "
                             "per-packet cost in mrouter) or mrouter itself with packet "
                             "sockets (slower; each decision visible at -vv)")
    parser.add_argument("--log-decisions", action="store_true",
                        help="with --dataplane user: record every packet's forwarding "
                             "decision (source, group, inbound interface, TTL, where it "
                             "went, what was held back and why) as a forward_decision "
                             "event, for `mrouter events` and --events FILE; one event "
                             "a packet, so for lessons and low rates")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from mrouter.router.daemon import run_daemon
    from mrouter.router.metrics import parse_listen

    if args.log_decisions and args.dataplane != "user":
        raise ConfigError("--log-decisions needs --dataplane user (the kernel's data plane "
                          "decides without telling mrouter)")
    metrics = None if args.metrics is None else parse_listen(args.metrics)
    instance = args.instance or DEFAULT_INSTANCE
    config = args.config or f"{CONFIG_DIR}/{instance}.toml"
    if args.config is None and not os.path.exists(config):
        raise ConfigError(f"no config at {config}: write one (mrouter config example router "
                          f"> {config}) or name it with --config FILE")
    _setup_logging(args, instance)
    # a PID file for an instance; a daemon given only --socket (a test's, a lab's) has none
    pidfile = instance_pidfile(instance) if args.instance or not args.socket_given else None
    return run_daemon(config, args.socket, events_path=args.events,
                      dataplane=args.dataplane, log_decisions=args.log_decisions,
                      metrics=metrics, pidfile=pidfile, user=args.user)


def _setup_logging(args: argparse.Namespace, instance: str) -> None:
    """--log-level, else -v/-vv, else the daemon's own INFO lines only; --syslog."""
    root = logging.getLogger()
    if args.log_level is not None:
        root.setLevel(args.log_level.upper())
    elif args.verbose == 0:
        # the ready line, route and querier changes (the daemon's log, handlers' too)
        logging.getLogger("mrouter.router.daemon").setLevel(logging.INFO)
    for noisy in ("pyroute2", "asyncio"):  # their DEBUG drowns the daemon's own at -vv
        logging.getLogger(noisy).setLevel(logging.WARNING)
    if args.syslog:
        ident = "mrouter" if instance == DEFAULT_INSTANCE else f"mrouter-{instance}"
        # SysLogHandler keeps quiet when it cannot connect (and retries at each message):
        # find out first, so that a daemon never starts logging into the void
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            with socket.socket(socket.AF_UNIX, kind) as probe:
                try:
                    probe.connect(args.syslog)
                except OSError as exc:
                    error = exc
                    continue
                break
        else:
            raise ConfigError(f"--syslog: no syslog socket at {args.syslog} "
                              f"({error.strerror}); start a syslog daemon, name its socket, "
                              "or log to stderr")
        handler = logging.handlers.SysLogHandler(
            args.syslog, facility=logging.handlers.SysLogHandler.LOG_DAEMON)
        handler.ident = f"{ident}[{os.getpid()}]: "
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        for old in list(root.handlers):
            root.removeHandler(old)
        root.addHandler(handler)


# --- show ---------------------------------------------------------------------------------

def configure_show(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=("interfaces", "groups", "routes", "statistics"),
                        help="interfaces: VIFs, querier and counters; groups: membership "
                             "per interface; routes: static routes and kernel (S,G) entries "
                             "with packets, bytes, wrong-interface arrivals and age; "
                             "statistics: IGMP received, sent and dropped per interface, "
                             "upcalls, route changes, control requests, uptime")
    _json_option(parser)
    socket_options(parser)
    parser.set_defaults(func=_show)


def _addr_list(items: list[str]) -> str:
    return ",".join(items) if items else "-"


def _protocol(row: Any) -> str:
    """An interface row's membership protocol and version: IGMP's "v3", MLD's "MLDv2"."""
    if "mld" in row:  # an IPv6 row (dual stack)
        return f"MLDv{row['mld_version']}" if row["mld"] else "-"
    return f"v{row['igmp_version']}" if row["igmp"] else "-"


def _show_interfaces(result: Any) -> str:
    rows = [(i["name"], i["vif"], i["ifindex"], i["address"] or "-", i["role"],
             "up" if i["active"] else "stopped", _protocol(i),
             ("self" if i["is_querier"] else i["querier"] or "?")
             if i.get("igmp", i.get("mld")) else "-",
             i.get("packets_in", "?"), i.get("packets_out", "?")) for i in result]
    return table(("IFACE", "VIF", "IFINDEX", "ADDRESS", "ROLE", "STATE", "IGMP", "QUERIER",
                  "PKTS_IN", "PKTS_OUT"), rows)


def _show_groups(result: Any) -> str:
    rows = []
    for g in result:
        igmp = g.get("igmp") or g.get("mld") or {}
        timer = igmp.get("group_timer")
        rows.append((
            g["iface"], g["group"], g["filter_mode"], _addr_list(g["sources"]),
            "static" if g["static"] else "mld" if "mld" in g else "igmp",
            "-" if timer is None else f"{timer:.1f}s",
            f"v{igmp['compat_mode']}" if igmp else "-",
            ("self" if g.get("is_querier") else g.get("querier") or "?")
            if g.get("is_querier") is not None else "-",
            _addr_list([h["host"] for h in igmp.get("hosts", [])]),
        ))
    # SOURCES: forwarded ones in INCLUDE mode, blocked ones in EXCLUDE mode (RFC 3376 §6.3)
    return table(("IFACE", "GROUP", "MODE", "SOURCES", "FROM", "TIMER", "COMPAT", "QUERIER",
                  "HOSTS"), rows)


def _show_routes(result: Any) -> str:
    static = [(r["source"] or "*", r["group"], r["from"], ",".join(r["to"]))
              for r in result["static"]]
    entries = [(e["source"], e["group"], e["iif"], _addr_list(e["oifs"]), e["packets"],
                e["bytes"], e["wrong_if"], f"{e['age']:.0f}s") for e in result["entries"]]
    parts = []
    if static:
        parts.append("static routes:\n" + table(("SOURCE", "GROUP", "FROM", "TO"), static))
    parts.append("kernel routes:\n" + table(("SOURCE", "GROUP", "IIF", "OIFS", "PACKETS",
                                             "BYTES", "WRONG_IF", "AGE"), entries))
    return "\n\n".join(parts)


def _show_statistics(result: Any) -> str:
    messages = [(i["name"], direction, m["type"],
                 "-" if m["version"] is None else f"v{m['version']}", m["count"])
                for i in result["interfaces"] for direction in ("received", "sent")
                for m in i[direction]]
    dropped = [(i["name"], reason, n) for i in result["interfaces"]
               for reason, n in i["dropped"].items()]
    upcalls = [(i["name"], kind, n) for i in result["interfaces"]
               for kind, n in i["upcalls"].items()]
    control = result["control"]
    commands = [(c, n, control["errors"].get(c, 0)) for c, n in control["requests"].items()]
    routes = result["routes"]
    parts = [f"uptime {result['uptime_seconds']:.0f} s; kernel routes "
             f"{result['kernel_routes']}; route installs {routes['installs']}, updates "
             f"{routes['updates']}, removals {routes['removals']}",
             "IGMP messages:\n" + table(("IFACE", "DIRECTION", "TYPE", "VERSION", "COUNT"),
                                        messages),
             "dropped:\n" + table(("IFACE", "REASON", "COUNT"), dropped),
             "upcalls:\n" + table(("IFACE", "TYPE", "COUNT"), upcalls),
             "control requests:\n" + table(("COMMAND", "REQUESTS", "ERRORS"), commands)]
    return "\n\n".join(parts)


_SHOW: dict[str, Callable[[Any], str]] = {
    "interfaces": _show_interfaces, "groups": _show_groups, "routes": _show_routes,
    "statistics": _show_statistics}


def _show(args: argparse.Namespace) -> int:
    result = request(args.socket, "show", what=args.what)
    if args.json and args.what == "statistics":
        print(json.dumps(result))
    elif args.json:
        items = result if isinstance(result, list) else (
            [{"kind": "static", **r} for r in result["static"]]
            + [{"kind": "kernel", **e} for e in result["entries"]])
        for item in items:
            print(json.dumps(item))
    else:
        print(_SHOW[args.what](result))
    return 0


# --- route, join, leave -------------------------------------------------------------------

def configure_route(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("add", "del"))
    parser.add_argument("--source", metavar="ADDRESS",
                        help="the source; omit for (*,G): any source")
    parser.add_argument("--group", required=True, metavar="GROUP[/LEN]",
                        help="a group, or a prefix such as 239.1.0.0/16")
    parser.add_argument("--from", dest="iif", required=True, metavar="IFACE",
                        help="inbound interface")
    parser.add_argument("--to", nargs="+", default=[], metavar="IFACE",
                        help="outbound interfaces (for del, optional)")
    socket_options(parser)
    parser.set_defaults(func=_route)


def _route(args: argparse.Namespace) -> int:
    if args.action == "add" and not args.to:
        raise ControlError("route add needs --to IFACE [IFACE ...]: the outbound interfaces")
    fields: dict[str, Any] = {"action": args.action, "group": args.group, "from": args.iif,
                              "to": args.to}
    if args.source:
        fields["source"] = args.source
    result = request(args.socket, "route", **fields)
    print(f"route {args.action}: {result['route']}")
    return 0


def _membership_parser(parser: argparse.ArgumentParser, verb: str) -> None:
    parser.add_argument("group", help="the group, e.g. 239.1.1.1")
    parser.add_argument("--iface", required=True, help=f"interface to {verb} the group on")
    parser.add_argument("--source", metavar="ADDRESS",
                        help="only this source (source-specific); omit for any source")
    socket_options(parser)


def configure_join(parser: argparse.ArgumentParser) -> None:
    _membership_parser(parser, "join")
    parser.set_defaults(func=lambda a: _membership(a, "join"))


def configure_leave(parser: argparse.ArgumentParser) -> None:
    _membership_parser(parser, "leave")
    parser.set_defaults(func=lambda a: _membership(a, "leave"))


def _membership(args: argparse.Namespace, command: str) -> int:
    fields: dict[str, Any] = {"iface": args.iface, "group": args.group}
    if args.source:
        fields["source"] = args.source
    result = request(args.socket, command, **fields)
    source = f" source {result['source']}" if result["source"] else ""
    print(f"{command}: {result['group']} on {result['iface']}{source}")
    return 0


# --- reload, stop -------------------------------------------------------------------------

def configure_reload(parser: argparse.ArgumentParser) -> None:
    socket_options(parser)
    parser.set_defaults(func=_reload)


def _reload(args: argparse.Namespace) -> int:
    result = request(args.socket, "reload")
    print("reloaded: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in result.items()))
    return 0


def configure_metrics(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print a running daemon's statistics (those of 'mrouter show statistics') in the "
        "Prometheus text exposition format; 'mrouter run --metrics ADDR:PORT' serves the "
        "same at /metrics.")
    socket_options(parser)
    parser.set_defaults(func=_metrics)


def _metrics(args: argparse.Namespace) -> int:
    from mrouter.router.metrics import exposition

    print(exposition(request(args.socket, "show", what="statistics")), end="")
    return 0


def configure_stop(parser: argparse.ArgumentParser) -> None:
    socket_options(parser)
    parser.set_defaults(func=_stop)


def _stop(args: argparse.Namespace) -> int:
    request(args.socket, "stop")
    print("stopping")
    return 0
