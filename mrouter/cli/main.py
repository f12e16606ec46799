"""Entry point of the ``mrouter`` command.

Subcommands come from one table (:data:`COMMANDS`): name, the function that adds its
arguments, a one-line help and an example. Each configure function calls
``parser.set_defaults(func=...)`` with a ``func(args) -> int`` that returns the exit
status. Modules are imported when the parser is built, so CLI modules import heavy
libraries (scapy, pyroute2) inside their run functions, not at the top.

Errors: an :class:`~mrouter.errors.MrouterError` becomes one line on stderr and exit
status 2; so does an operating-system error that no layer turned into one (a missing
privilege, a namespace or path that vanished), named with its cause and what to do
(:func:`os_error_line`). Ctrl-C exits with 130 after the command has printed what it has.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from mrouter import __version__
from mrouter.errors import MrouterError


@dataclass(frozen=True)
class Command:
    name: str
    configure: str  # "module:function"
    help: str
    example: str


COMMANDS: tuple[Command, ...] = (
    Command("ifaces", "mrouter.cli.sockets:configure_ifaces",
            "list interfaces: index, flags (UP, LOOPBACK, MULTICAST), IPv4 addresses",
            "mrouter ifaces --json"),
    Command("memberships", "mrouter.cli.sockets:configure_memberships",
            "show the kernel's group memberships per interface (/proc/net/igmp, mcfilter)",
            "mrouter memberships"),
    Command("send", "mrouter.cli.sockets:configure_send",
            "send numbered, timestamped datagrams to a multicast group",
            "mrouter send 239.1.1.1:5000 --ttl 8 --count 100 --rate 50"),
    Command("recv", "mrouter.cli.sockets:configure_recv",
            "join groups and report loss, duplicates, reordering, delay and TTL",
            "mrouter recv 239.1.1.1:5000 --count 100 --timeout 5"),
    Command("lab", "mrouter.cli.lab:configure",
            "build and drive network-namespace labs from topology files (shipped or yours)",
            "mrouter lab up basic --name demo"),
    Command("igmp", "mrouter.cli.igmp:configure",
            "watch, decode and craft IGMP messages",
            "mrouter igmp watch --iface eth0 --json"),
    Command("mld", "mrouter.cli.mld:configure",
            "watch, decode and craft MLD messages (IPv6)",
            "mrouter mld watch --iface eth0 --json"),
    Command("querier", "mrouter.cli.querier:configure",
            "run a standalone IGMP (or, with --mld, MLD) querier on one interface and "
            "print membership",
            "mrouter querier --iface eth0 --json"),
    Command("run", "mrouter.cli.daemon:configure_run",
            "run the multicast routing daemon in the foreground",
            "mrouter run --config router.toml --socket /run/mrouter.sock"),
    Command("config", "mrouter.cli.config:configure",
            "print a commented example config, or check a config file (status 0 or 2)",
            "mrouter config check /etc/mrouter/mrouter.toml"),
    Command("show", "mrouter.cli.daemon:configure_show",
            "show a running daemon's interfaces, groups, routes or statistics",
            "mrouter show routes --json"),
    Command("top", "mrouter.cli.top:configure",
            "watch a running daemon: interfaces, groups with timers, routes with packets/s",
            "mrouter top --socket /run/mrouter.sock"),
    Command("metrics", "mrouter.cli.daemon:configure_metrics",
            "print a running daemon's statistics as Prometheus metrics (text format)",
            "mrouter metrics --instance lan1"),
    Command("route", "mrouter.cli.daemon:configure_route",
            "add or delete a static route in a running daemon",
            "mrouter route add --source 198.51.100.2 --group 239.1.1.1 --from up0 --to dn0"),
    Command("join", "mrouter.cli.daemon:configure_join",
            "add a static membership (like smcroute's mgroup) to a running daemon",
            "mrouter join --iface dn0 239.1.1.1"),
    Command("leave", "mrouter.cli.daemon:configure_leave",
            "remove a static membership from a running daemon",
            "mrouter leave --iface dn0 239.1.1.1"),
    Command("reload", "mrouter.cli.daemon:configure_reload",
            "make a running daemon re-read its config and apply the difference",
            "mrouter reload"),
    Command("stop", "mrouter.cli.daemon:configure_stop",
            "stop a running daemon (its kernel routes and VIFs are removed)",
            "mrouter stop"),
    Command("explain", "mrouter.cli.diag:configure_explain",
            "say per interface whether (S,G) is forwarded and, if not, why and the fix",
            "mrouter explain 239.1.1.1 --source 198.51.100.2 --listen 2"),
    Command("events", "mrouter.cli.diag:configure_events",
            "print the daemon's events (IGMP, querier, membership, routes, upcalls, links)",
            "mrouter events --follow --json"),
    Command("timeline", "mrouter.cli.diag:configure_timeline",
            "draw an events file: lanes per interface, membership and forwarding bars",
            "mrouter timeline events.jsonl -o class.html"),
    Command("completion", "mrouter.cli.completion:configure",
            "print a bash or zsh completion script for mrouter",
            "mrouter completion bash"),
)


class _Parser(argparse.ArgumentParser):
    """Usage errors as one line on stderr with exit status 2, like every mrouter error.

    Sub-parsers (``mrouter lab up``...) inherit this class through add_subparsers.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _resolve(spec: str) -> Callable[[argparse.ArgumentParser], None]:
    module_name, func_name = spec.split(":")
    func: Callable[[argparse.ArgumentParser], None] = getattr(
        importlib.import_module(module_name), func_name)
    return func


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mrouter",
        description=(
            "mrouter: a multicast router and IGMP toolkit for Linux.\n"
            "Run 'mrouter COMMAND --help' for the options and an example of each command."
        ),
        epilog="example:\n  mrouter ifaces\n  mrouter recv 239.1.1.1:5000 --count 10",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"mrouter {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="log more (-v: INFO, -vv: DEBUG) on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in COMMANDS:
        configure = _resolve(cmd.configure)
        p = sub.add_parser(
            cmd.name, help=cmd.help, description=cmd.help[0].upper() + cmd.help[1:] + ".",
            epilog=f"example:\n  {cmd.example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        configure(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level={0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG),
        format="%(asctime)s %(name)s %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        if hasattr(args, "instance") and hasattr(args, "socket"):  # talks to a daemon
            from mrouter.cli.daemon import resolve_socket

            resolve_socket(args)
        status: int = func(args)
    except MrouterError as exc:
        print(f"mrouter {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except OSError as exc:
        print(f"mrouter {args.command}: error: {os_error_line(exc)}", file=sys.stderr)
        return 2
    return status


def os_error_line(exc: OSError) -> str:
    """One line for an OSError that reached the CLI: what failed, on what, and what to do."""
    what = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename is not None:
        what += f" ({exc.filename})"
    if isinstance(exc, PermissionError) or exc.errno in (errno.EPERM, errno.EACCES):
        hint = ("this needs root (or CAP_NET_ADMIN and CAP_NET_RAW): run it with sudo, or "
                "inside a lab node with 'mrouter lab exec LAB NODE -- mrouter ...'")
    elif isinstance(exc, FileNotFoundError):
        hint = "check that the path, namespace or interface exists"
    else:
        hint = "check the system's state and try again; run with -vv for details"
    return f"{what}; {hint}"


if __name__ == "__main__":
    raise SystemExit(main())
