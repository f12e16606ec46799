"""``mrouter lab``: build and drive network-namespace labs from topology files.

Parsing and output only; the work is in :mod:`mrouter.lab`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from pathlib import Path
from typing import Any

from mrouter.cli.sockets import table
from mrouter.errors import LabError

UP_EXAMPLE = """\
examples:
  mrouter lab list                           # the shipped topologies
  mrouter lab up basic                       # a shipped one: lab "basic"
  mrouter lab up lan.toml --name demo        # a bare file name: yours here, else shipped
  mrouter lab up ./my-lab.toml               # your own topology file
  mrouter lab exec demo h1 -- ip -br addr
"""
LIST_EXAMPLE = """\
examples:
  mrouter lab list
  mrouter lab list --json
  mrouter lab up lan --name demo
"""
STATUS_EXAMPLE = """\
examples:
  mrouter lab status
  mrouter lab status demo --json
"""
EXEC_EXAMPLE = """\
examples:
  mrouter lab exec basic r1 -- ip route
  mrouter lab exec basic receiver -- mrouter recv 239.1.1.1:5000 --count 10
  mrouter lab exec basic sender -- sh -c 'echo hi | cat'   # stdin/stdout pass through
  mrouter lab exec lan lan0 -- tcpdump -ni lan0 igmp          # a LAN's bridge
"""
DOWN_EXAMPLE = """\
examples:
  mrouter lab down demo
  mrouter lab down --all        # every lab whose owner has exited, and stray namespaces
  mrouter lab down --all --force   # also labs a running process (a test run) owns
"""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Build network-namespace labs from topology files (shipped ones: 'mrouter lab "
        "list'; the format: 'mrouter lab list' names its README) and run commands in "
        "their nodes. Each node is a network namespace named mrlab-LAB-NODE, usable with "
        "'ip netns exec' too."
    )
    parser.epilog = UP_EXAMPLE + "  mrouter lab status\n  mrouter lab down demo\n"
    parser.set_defaults(func=lambda args: _help(parser))
    sub = parser.add_subparsers(dest="lab_command", metavar="ACTION")
    fmt = argparse.RawDescriptionHelpFormatter

    lst = sub.add_parser("list", help="list the shipped topologies with their descriptions",
                         description="List the topologies that ship with mrouter, each with "
                         "its one-line description; 'mrouter lab up NAME' builds one.",
                         epilog=LIST_EXAMPLE, formatter_class=fmt)
    lst.add_argument("--json", action="store_true", help="print one JSON object")
    lst.set_defaults(func=run_list)

    up = sub.add_parser("up", help="build a lab from a topology file and leave it running",
                        description="Build a lab from a topology file. It stays up until "
                        "'mrouter lab down NAME'. Running it again for a lab that is "
                        "already up from the same file does nothing.",
                        epilog=UP_EXAMPLE, formatter_class=fmt)
    up.add_argument("file", metavar="FILE",
                    help="topology file, or the name of a shipped one (basic or basic.toml; "
                    "see 'mrouter lab list')")
    up.add_argument("--name", help="lab name (default: the file name without .toml)")
    up.add_argument("--json", action="store_true", help="print the result as one JSON object")
    up.set_defaults(func=run_up)

    status = sub.add_parser("status", help="show labs: nodes, interfaces, addresses, up/down",
                            description="Show the labs mrouter made (or one of them): each "
                            "node's namespace and interfaces with state and addresses.",
                            epilog=STATUS_EXAMPLE, formatter_class=fmt)
    status.add_argument("name", nargs="?", metavar="NAME", help="only this lab")
    status.add_argument("--json", action="store_true", help="print one JSON object")
    status.set_defaults(func=run_status)

    exe = sub.add_parser("exec", help="run a command in a node; its exit status is returned",
                         description="Run CMD in the network namespace of NODE, with this "
                         "terminal's stdin/stdout/stderr; exits with CMD's exit status.",
                         epilog=EXEC_EXAMPLE, formatter_class=fmt)
    exe.add_argument("name", metavar="NAME", help="lab name")
    exe.add_argument("node", metavar="NODE",
                     help="node name, e.g. r1 (or a LAN's name, to watch its bridge)")
    exe.add_argument("cmd", nargs=argparse.REMAINDER, metavar="-- CMD ...",
                     help="the command and its arguments, after --")
    exe.set_defaults(func=run_exec)

    down = sub.add_parser("down", help="remove a lab (or --all); nothing to do is not an error",
                          description="End the processes in a lab's namespaces and remove "
                          "them. Only labs mrouter made are touched.",
                          epilog=DOWN_EXAMPLE, formatter_class=fmt)
    down.add_argument("names", nargs="*", metavar="NAME", help="lab names")
    down.add_argument("--all", action="store_true",
                      help="remove every lab mrouter made whose owning process has exited "
                           "(or that 'lab up' made), and stray mrlab-* namespaces")
    down.add_argument("--force", action="store_true",
                      help="with --all: also remove labs whose owning process is alive "
                           "(a test run's labs: that run will fail)")
    down.set_defaults(func=run_down)

    from mrouter.cli.labweb import add_subcommands  # lab graph, lab web
    add_subcommands(sub, fmt)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


# -- list ---------------------------------------------------------------------------


def _description(path: Path) -> str:
    """A topology's one-line description, without building it (a broken file says so)."""
    import tomllib

    try:
        value = tomllib.loads(path.read_text(encoding="utf-8")).get("description", "")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        return f"(unreadable: {exc})"
    return str(value)


def run_list(args: argparse.Namespace) -> int:
    from mrouter.lab.topology import default_netns_dir

    folder = default_netns_dir()
    rows = [(p.stem, _description(p)) for p in sorted(folder.glob("*.toml"))]
    readme = folder / "README.md"
    if args.json:
        print(json.dumps({"folder": str(folder), "format": str(readme),
                          "topologies": [{"name": n, "description": d} for n, d in rows]}))
        return 0
    print(table(("NAME", "DESCRIPTION"), rows))
    print(f"\nbuild one: mrouter lab up NAME [--name LAB]"
          f"\nfiles:     {folder}"
          f"\nformat:    {readme}")
    return 0


# -- up -----------------------------------------------------------------------------


def _default_name(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_-]", "-", path.stem).strip("-_") or "lab"
    return stem[:32]


def run_up(args: argparse.Namespace) -> int:
    from mrouter.lab import Lab, state
    from mrouter.lab.topology import load_topology, resolve_topology_path

    path = resolve_topology_path(args.file)
    if not path.exists() and path.parent == Path("netns"):
        path = resolve_topology_path(path.name)  # netns/basic.toml away from a checkout
    topology = load_topology(path)
    name = state.check_lab_name(args.name or _default_name(path))
    existing = state.load(name)
    if existing is not None:
        if state.is_alive(existing) and existing.ready:
            if existing.topology != str(path.resolve()):
                raise LabError(
                    f"a lab named {name!r} is already up from {existing.topology}; take it "
                    f"down first (mrouter lab down {name}) or give --name"
                )
            _say(args, f"lab {name} is already up (from {path})", existing, already=True)
            return 0
        state.down(existing)  # a stale record: its namespaces are gone or half made
    started = time.monotonic()
    lab = Lab(topology, name=name)
    lab.start(detached=True)
    assert lab.record is not None
    elapsed = time.monotonic() - started
    _say(args, f"lab {name} up from {path} in {elapsed * 1000:.0f} ms", lab.record,
         already=False)
    return 0


def _say(args: argparse.Namespace, headline: str, record: Any, *, already: bool) -> None:
    if args.json:
        print(json.dumps({"lab": record.name, "already_up": already, "topology": record.topology,
                          "namespaces": record.namespaces, "pids": record.pids}))
        return
    print(headline)
    print(table(("NODE", "KIND", "NETNS"), [
        (n, record.kinds.get(n, "lan" if n in record.lans else "?"), ns)
        for n, ns in record.namespaces.items()
    ]))
    first = record.nodes[0] if record.nodes else "NODE"
    print(f"\nnext: mrouter lab exec {record.name} {first} -- ip -br addr"
          f"\n      mrouter lab status {record.name}"
          f"\n      mrouter lab down {record.name}")


# -- status -------------------------------------------------------------------------


def _interfaces(ns: str) -> list[dict[str, Any]]:
    """The interfaces of one namespace, from netlink."""
    from mrouter.lab import netns
    from mrouter.linux import netlink

    def query(ipr: Any) -> list[dict[str, Any]]:
        addrs: dict[int, list[str]] = {}
        for a in netlink.addresses(ipr):
            addrs.setdefault(a.index, []).append(str(a.address))
        return [{"name": link.name, "index": link.index, "kind": link.kind or "",
                 "up": link.admin_up, "operstate": link.operstate,
                 "addresses": addrs.get(link.index, [])}
                for link in netlink.links(ipr)]

    try:
        return netns.call_in(ns, lambda: netlink.query(query))
    except LabError:
        return []


def run_status(args: argparse.Namespace) -> int:
    from mrouter.lab import state

    records = state.all_records()
    if args.name is not None:
        records = [r for r in records if r.name == args.name]
        if not records:
            known = ", ".join(r.name for r in state.all_records()) or "none"
            raise LabError(f"no lab named {args.name!r} is up (labs up: {known}); "
                           f"start one with 'mrouter lab up FILE --name {args.name}'")
    labs: list[dict[str, Any]] = []
    for r in records:
        nodes = []
        for n, ns in r.namespaces.items():
            nodes.append({
                "name": n, "kind": r.kinds.get(n, "lan" if n in r.lans else "?"),
                "netns": ns, "exists": os.path.exists(f"/run/netns/{ns}"),
                "interfaces": [i for i in _interfaces(ns) if i["name"] != "lo"],
            })
            if n in r.frr:
                nodes[-1]["frr"] = _frr_status(ns, r.frr[n])
        labs.append({
            "name": r.name, "topology": r.topology, "created": r.created,
            "owner_pid": r.owner_pid, "owner_alive": state.owner_alive(r),
            "ready": r.ready, "up": state.is_alive(r) and r.ready, "pids": r.pids,
            "nodes": nodes,
        })
    stray = state.orphans() if args.name is None else []
    if args.json:
        print(json.dumps({"labs": labs, "stray_namespaces": stray}))
        return 0
    if not labs and not stray:
        print("no labs are up; start one with: mrouter lab up basic (see mrouter lab list)")
        return 0
    for lab in labs:
        age = time.time() - float(lab["created"])
        if lab["owner_pid"] is None:
            owner = f"until 'mrouter lab down {lab['name']}'"
        elif lab["owner_alive"]:
            owner = f"owned by pid {lab['owner_pid']}"
        else:
            owner = (f"owner pid {lab['owner_pid']} has exited: stale, remove it with "
                     f"'mrouter lab down {lab['name']}'")
        state_word = "up" if lab["up"] else "INCOMPLETE"
        print(f"lab {lab['name']} ({state_word}) from {lab['topology']}, "
              f"{_age(age)} old, {owner}")
        rows: list[tuple[str, ...]] = []
        for node in lab["nodes"]:
            ifaces = node["interfaces"] or [None]
            for i, iface in enumerate(ifaces):
                head = (node["name"], node["kind"], node["netns"]) if i == 0 else ("", "", "")
                if iface is None:
                    rows.append((*head, "-", "MISSING" if not node["exists"] else "-", ""))
                    continue
                st = "UP" if iface["up"] else "DOWN"
                if iface["up"] and iface["operstate"] not in ("UP", "UNKNOWN"):
                    st = f"UP ({iface['operstate']})"
                rows.append((*head, iface["name"], st, " ".join(iface["addresses"])))
        print(table(("NODE", "KIND", "NETNS", "IFACE", "STATE", "ADDRESSES"), rows))
        for node in lab["nodes"]:
            if "frr" in node:
                said = ", ".join(f"{d['name']} ({_daemon_word(d)})"
                                 for d in node["frr"]["daemons"])
                print(f"FRR on {node['name']}: {said}; try: mrouter lab exec {lab['name']} "
                      f"{node['name']} -- vtysh -c 'show ip pim neighbor'")
        print()
    if stray:
        print(f"stray namespaces (no lab record): {' '.join(stray)}; remove them with "
              f"'mrouter lab down --all'")
    return 0


def _daemon_word(daemon: dict[str, Any]) -> str:
    if daemon["answers"]:
        return "answers"
    return "NOT answering" if daemon["running"] else "NOT running"


def _frr_status(ns: str, daemons: list[str]) -> dict[str, Any]:
    """An FRR node's daemons: PID, running, answering vtysh."""
    from mrouter.lab import frr

    found = frr.status(ns, daemons, frr.runner_in(ns)) if os.path.exists(
        f"/run/netns/{ns}") else [frr.DaemonStatus(d, None, False, False) for d in daemons]
    return {"run_dir": str(frr.run_dir(ns)),
            "daemons": [{"name": d.name, "pid": d.pid, "running": d.running,
                         "answers": d.answers} for d in found]}


def _age(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# -- exec ---------------------------------------------------------------------------


def run_exec(args: argparse.Namespace) -> int:
    from mrouter.lab import netns, state

    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise LabError(f"no command given; write: mrouter lab exec {args.name} {args.node} "
                       f"-- CMD ARGS...")
    record = state.load(args.name)
    if record is None:
        known = ", ".join(r.name for r in state.all_records()) or "none"
        raise LabError(f"no lab named {args.name!r} is up (labs up: {known})")
    if args.node not in record.namespaces:  # a LAN's namespace too: tcpdump on the bridge
        lans = f" (LANs: {', '.join(record.lans)})" if record.lans else ""
        raise LabError(f"lab {args.name} has no node {args.node!r}; its nodes are: "
                       f"{', '.join(record.nodes)}{lans}")
    from mrouter.lab.command import same_mrouter

    cmd, env = same_mrouter(cmd)  # the mrouter the user ran, venv activated or not
    if args.node in record.frr:  # plain `vtysh` reaches this node's FRR daemons
        from mrouter.lab import frr

        env = frr.env_for(record.namespaces[args.node], env)
    fd = netns.open_fd(record.namespaces[args.node])
    netns.setns(fd)  # this process becomes the command: exec, like `ip netns exec`
    os.close(fd)
    sys.stdout.flush()
    try:
        os.execvpe(cmd[0], cmd, env)
    except FileNotFoundError:
        print(f"mrouter lab exec: {cmd[0]}: command not found", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"mrouter lab exec: {cmd[0]}: permission denied", file=sys.stderr)
        return 126


# -- down ---------------------------------------------------------------------------


def run_down(args: argparse.Namespace) -> int:
    from mrouter.lab import state

    if not args.names and not args.all:
        raise LabError("say which lab: mrouter lab down NAME, or mrouter lab down --all")
    if args.force and not args.all:
        raise LabError("--force goes with --all (a lab named on the command line is always "
                       "taken down)")
    records = state.all_records() if args.all else []
    kept = []
    if args.all and not args.force:
        kept = [r for r in records if state.owned_by_live_process(r)]
        records = [r for r in records if r not in kept]
    for name in args.names:
        record = state.load(state.check_lab_name(name))
        if record is None:
            print(f"lab {name} is not up: nothing to do")
        elif record not in records:
            records.append(record)
    for record in records:
        removed = state.down(record)
        print(f"lab {record.name} down ({len(removed)} namespaces removed)")
    for record in kept:
        print(f"lab {record.name} left up: pid {record.owner_pid} owns it and is running "
              f"(end that process, or add --force)")
    if args.all:
        stray = state.orphans()
        if stray:
            state.remove_namespaces(stray)
            print(f"removed stray namespaces: {' '.join(stray)}")
        if not records and not stray and not kept:
            print("no labs were up: nothing to do")
    return 0
