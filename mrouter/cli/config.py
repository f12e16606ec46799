"""``mrouter config``: print an example config, check a config file, print a systemd unit.

Parsing and output only: the examples ship with the package (:mod:`mrouter.shipped`), the
checks are the daemon's own (:func:`mrouter.router.config.load_config`), so a file that
``config check`` accepts is one ``mrouter run --config`` starts with (the interfaces
themselves are looked up only when the daemon starts).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

EXAMPLES = ("router", "proxy")

CONFIG_EXAMPLE = """\
examples:
  mrouter config example router      # redirect it into a file, then edit that
  mrouter config check /etc/mrouter/mrouter.toml
  mrouter config unit                   # into /etc/systemd/system/mrouter.service
  mrouter config unit --instance lan1   # into /etc/systemd/system/mrouter@.service
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Print a commented example config (every key with its default), or check a config "
        "file the way 'mrouter run' reads it: status 0 if it is good, 2 with the file, "
        "line, key and what to write instead if not.")
    parser.epilog = CONFIG_EXAMPLE
    parser.set_defaults(func=lambda args: _help(parser))
    sub = parser.add_subparsers(dest="config_command", metavar="ACTION")
    fmt = argparse.RawDescriptionHelpFormatter

    example = sub.add_parser("example", help="print a commented example config",
                             description="Print a commented example config on stdout: "
                             "router (IGMP querier and static routes) or proxy (RFC 4605).",
                             epilog=CONFIG_EXAMPLE, formatter_class=fmt)
    example.add_argument("kind", choices=EXAMPLES, help="router or proxy")
    example.set_defaults(func=run_example)

    check = sub.add_parser("check", help="check a config file; status 0 or 2 with the line",
                           description="Read and check a config file as 'mrouter run' "
                           "does, without starting anything. Status 0 and a summary if it "
                           "is good; status 2 and one line naming file, line, key and fix "
                           "if not.", epilog=CONFIG_EXAMPLE, formatter_class=fmt)
    check.add_argument("file", metavar="FILE", help="the TOML config file")
    check.set_defaults(func=run_check)

    unit = sub.add_parser("unit", help="print the systemd unit (mrouter.service or "
                          "mrouter@.service)",
                          description="Print the systemd unit that runs the daemon, its "
                          "ExecStart being this mrouter: mrouter.service (config "
                          "/etc/mrouter/mrouter.toml), or with --instance the template "
                          "mrouter@.service (mrouter@NAME runs /etc/mrouter/NAME.toml with "
                          "--instance NAME). Type=notify, reload by SIGHUP, restart on "
                          "failure, only CAP_NET_ADMIN and CAP_NET_RAW.",
                          epilog=CONFIG_EXAMPLE, formatter_class=fmt)
    unit.add_argument("--instance", metavar="NAME",
                      help="print the template unit mrouter@.service, with how to start "
                           "instance NAME")
    unit.set_defaults(func=run_unit)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_example(args: argparse.Namespace) -> int:
    from mrouter.shipped import example_config

    print(example_config(args.kind), end="")
    return 0


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def run_check(args: argparse.Namespace) -> int:
    from mrouter.router.config import load_config

    config = load_config(args.file)
    parts = [f"mode {config.mode}",
             _plural(len(config.interfaces), "interface") + " ("
             + ", ".join(i.name for i in config.interfaces) + ")",
             _plural(len(config.routes), "static route"),
             _plural(len(config.memberships), "static membership")]
    if config.table is not None:
        parts.insert(1, f"table {config.table}")
    print(f"{args.file}: ok: " + ", ".join(parts))
    return 0


def this_mrouter() -> str:
    """The absolute path of the ``mrouter`` command that runs now (the console script,
    or the one beside this interpreter for ``python -m mrouter``)."""
    from mrouter.shipped import UNIT_COMMAND

    script = Path(sys.argv[0])
    if script.name == "mrouter" and script.exists():
        return os.path.abspath(script)
    beside = Path(sys.executable).parent / "mrouter"
    return str(beside) if beside.exists() else UNIT_COMMAND


def run_unit(args: argparse.Namespace) -> int:
    from mrouter.router.control import check_instance
    from mrouter.shipped import unit

    text = unit(args.instance is not None, this_mrouter())
    if args.instance is not None:
        name = check_instance(args.instance)
        text = (f"# instance {name}: systemctl enable --now mrouter@{name} runs "
                f"/etc/mrouter/{name}.toml\n" + text)
    print(text, end="")
    return 0
