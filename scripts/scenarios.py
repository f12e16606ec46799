"""Teaching scenarios on namespace labs: `mrouter explain` answers, and real daemon runs
drawn as timelines (docs/scenarios.md says what each shows a class).

    python scripts/scenarios.py explain                 # each broken router, explain's answer
    python scripts/scenarios.py join-leave -o out/      # out/join-leave.{events.jsonl,svg,html}
    python scripts/scenarios.py querier-election -o out/
    python scripts/scenarios.py proxy-chain -o out/
    python scripts/scenarios.py all -o out/             # the three timelines

``explain`` builds each classic "route installed, nothing forwarded" situation in
netns/basic.toml (no routing, TTL 1, rp_filter, missing VIF, RPF mismatch, TTL
threshold, link down) and prints explain's answer.

The timeline scenarios run real daemons (``mrouter run --events FILE``), act on the lab
at fixed times while printing what happens on stderr (and keeping each announcement as a
``step`` event for the timeline's step track), stop the daemons, merge their events files
(lanes named "ROUTER IFACE") with the steps and draw them with mrouter.diag.timeline:

- join-leave (lan.toml): h1 joins at 1 s, h2 at 3 s, h1 leaves at 5 s, h2 at 7 s.
- querier-election (querier-election.toml): r2 starts alone, r1 (lower address) starts at
  2 s and takes over, r1 stops at 5 s, r2 resumes after the other-querier-present interval.
- proxy-chain (chain.toml): r1 router, r2 proxy; h1 joins at 1 s, leaves at 5 s.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from mrouter.diag.events import Event, EventKind, make, read_events
from mrouter.diag.timeline import render_html, render_svg
from mrouter.errors import ControlError, MrouterError
from mrouter.kernel.mroute import MrouteSocket
from mrouter.lab import Lab
from mrouter.lab.traffic import multicast_flow
from mrouter.router.control import request, wait_answering

ROOT = Path(__file__).resolve().parent.parent
S = IPv4Address("198.51.100.2")
G = IPv4Address("239.1.1.1")
DIAG = [sys.executable, "-m", "mrouter.cli.diag"]


def sending(lab: Any, ttl: int, source: IPv4Address | None = None) -> Any:
    """The sender sends to G:5000 every 20 ms with this TTL while the block runs."""
    return multicast_flow(lab.node("sender"), G, ttl=ttl, source=source, payload=b"scenario" * 8)


def _table(lab: Lab, vifs: tuple[str, ...], route: tuple[int, dict[int, int]] | None
           ) -> MrouteSocket:
    r1 = lab.node("r1")
    with r1.enter():
        mrt = MrouteSocket()
    for name in vifs:
        mrt.add_vif({"up0": 0, "dn0": 1}[name], r1.ifindex(name))
    if route is not None:
        mrt.add_mfc(S, G, *route)
    return mrt


Setup = Callable[[Lab], object]
SCENARIOS: list[tuple[str, tuple[str, ...] | None, tuple[int, dict[int, int]] | None, int,
                      Setup | None]] = [
    # title, VIFs (None: no multicast routing), route, sender TTL, extra setup
    ("nothing runs multicast routing", None, None, 8, None),
    ("the sender uses TTL 1", ("up0", "dn0"), (0, {1: 1}), 1, None),
    ("rp_filter on up0 and the source unreachable", ("up0", "dn0"), None, 8,
     lambda lab: lab.node("r1").sysctl("net.ipv4.conf.up0.rp_filter", "1")),
    ("dn0 is not a VIF", ("up0",), None, 8, None),
    ("the route expects the flow on dn0", ("up0", "dn0"), (1, {0: 1}), 8, None),
    ("TTL threshold 8, packets with TTL 5", ("up0", "dn0"), (0, {1: 8}), 5, None),
    ("dn0 is down", ("up0", "dn0"), (0, {1: 1}), 8,
     lambda lab: lab.node("r1").run(["ip", "link", "set", "dn0", "down"], check=True)),
    ("all is well", ("up0", "dn0"), (0, {1: 1}), 8, None),
]


def explain_scenarios() -> int:
    for title, vifs, route, ttl, setup in SCENARIOS:
        print(f"\n=== {title} ===", flush=True)
        with Lab.from_file(ROOT / "netns" / "basic.toml") as lab:
            source = None
            if setup is not None:
                setup(lab)
            if "rp_filter" in title:
                source = IPv4Address("203.0.113.50")
                lab.node("sender").run(["ip", "addr", "add", f"{source}/32", "dev", "eth0"],
                                       check=True)
            mrt = _table(lab, vifs, route) if vifs is not None else None
            try:
                with sending(lab, ttl, source):
                    out = lab.node("r1").run(
                        [*DIAG, "explain", str(G), "--source", str(source or S), "--listen",
                         "1", "--socket", "/nonexistent/mrouter.sock"], timeout=30)
                print(out.stdout + out.stderr, end="", flush=True)
            finally:
                if mrt is not None:
                    mrt.close()
    return 0


# --- timeline scenarios ----------------------------------------------------------------------
#
# Each scenario starts real daemons with `mrouter run --events FILE`, acts on the lab at
# fixed times (scaled by --scale, timers too), stops the daemons with `mrouter stop`, then
# merges the events files (lanes "r1 dn0", "r2 eth0", ...) and draws them.

MROUTER = [sys.executable, "-m", "mrouter"]


class Clock:
    """Seconds since the scenario began; prints what happens when, for the class, and
    keeps each announcement as a ``step`` event (on the daemons' clock, time.monotonic)
    for the timeline's step track. The first step names the lab's addresses."""

    def __init__(self, name: str, scale: float, lab: Lab | None = None) -> None:
        self.name, self.scale, self.t0 = name, scale, time.monotonic()
        self.steps: list[Event] = []
        self.names = {str(ep.address.ip): ep.node for ep in lab.topology.endpoints()
                      if ep.address is not None} if lab is not None else {}

    def now(self) -> float:
        return time.monotonic() - self.t0

    def say(self, text: str) -> None:
        print(f"[{self.name} {self.now():5.1f} s] {text}", file=sys.stderr, flush=True)
        if text != "end":
            extra: dict[str, Any] = {} if self.steps else {"names": self.names}
            self.steps.append(make(EventKind.STEP, time.monotonic(), text=text, **extra))

    def at(self, when: float, text: str) -> None:
        """Wait until ``when`` (unscaled seconds) and announce ``text``."""
        time.sleep(max(0.0, when * self.scale - self.now()))
        self.say(text)


@dataclass
class Daemon:
    node: str
    proc: subprocess.Popen[str]
    socket: Path
    events: Path


def start_daemon(lab: Lab, node: str, config: str, tmp: Path, events: Path) -> Daemon:
    """`mrouter run` on ``node`` with ``config`` (TOML text), writing ``events``; returns
    once its control socket answers."""
    cfg, sock = tmp / f"{node}.toml", tmp / f"{node}.sock"
    cfg.write_text(config)
    events.unlink(missing_ok=True)
    proc = lab.node(node).spawn([*MROUTER, "run", "--config", str(cfg), "--socket", str(sock),
                                 "--events", str(events)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if not wait_answering(sock, lambda: proc.poll() is None):
        err = proc.stderr.read() if proc.stderr and proc.poll() is not None else ""
        raise MrouterError(f"the daemon on {node} did not start: {err.strip()}")
    return Daemon(node, proc, sock, events)


def stop_daemon(d: Daemon) -> None:
    """`mrouter stop`, so the daemon writes daemon_stopped and removes its routes."""
    if d.proc.poll() is None:
        with contextlib.suppress(ControlError):
            request(d.socket, "stop")
        try:
            d.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            d.proc.terminate()
            d.proc.wait(timeout=5)


class Members:
    """Hosts joining and leaving a group with ordinary sockets (the kernel sends the IGMP)."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.socks: dict[str, socket.socket] = {}

    def join(self, host: str, group: IPv4Address = G) -> None:
        node = self.lab.node(host)
        with node.enter():
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                     group.packed + node.address("eth0").packed)
        self.socks[host] = s

    def leave(self, host: str) -> None:
        self.socks.pop(host).close()

    def close(self) -> None:
        for s in self.socks.values():
            s.close()
        self.socks.clear()


def start_sender(lab: Lab, seconds: float, rate: int = 50) -> subprocess.Popen[str]:
    """`mrouter send` on the sender node: TTL 8, ``rate`` pps for ``seconds``."""
    return lab.node("sender").spawn(
        [*MROUTER, "send", f"{G}:5000", "--ttl", "8", "--rate", str(rate),
         "--count", str(max(1, int(seconds * rate)))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def merge(files: dict[str, Path]) -> list[Event]:
    """Read each router's events file, rename its interfaces "ROUTER IFACE" (also in
    iif/oifs) and add a ``router`` field (mrouter.diag.timeline tells routes and daemon stops
    apart by it), so several routers share one timeline. All daemons run on this
    machine, so their monotonic times are comparable as they are."""
    out: list[Event] = []
    for router, path in files.items():
        def name(iface: Any, router: str = router) -> Any:
            return f"{router} {iface}" if isinstance(iface, str) else iface

        for e in read_events(path):
            fields = {**e.fields, "router": router}
            if "iif" in fields:
                fields["iif"] = name(fields["iif"])
            if "oifs" in fields:
                fields["oifs"] = [name(o) for o in fields["oifs"]]
            out.append(dataclasses.replace(e, iface=name(e.iface), fields=fields))
    return sorted(out, key=lambda e: e.time)


def draw(name: str, title: str, files: dict[str, Path], out: Path,
         order: Sequence[str] = (), steps: Sequence[Event] = ()) -> list[Event]:
    """Merge ``files`` and the scenario's ``steps`` into out/NAME.events.jsonl and draw
    NAME.svg and NAME.html, lanes in ``order`` first (upstream to downstream reads
    best)."""
    events = sorted([*merge(files), *steps], key=lambda e: e.time)
    (out / f"{name}.events.jsonl").write_text("".join(e.to_json() + "\n" for e in events))
    (out / f"{name}.svg").write_text(render_svg(events, title=title, order=order))
    (out / f"{name}.html").write_text(render_html(events, title=title, order=order))
    print(f"[{name}] {len(events)} events in {out / (name + '.events.jsonl')}; "
          f"pictures {out / (name + '.svg')} and .html", file=sys.stderr, flush=True)
    return events


def _timers(scale: float) -> str:
    return (f"query_interval = {2 * scale:g}\nquery_response_interval = {1 * scale:g}\n"
            f"last_member_query_interval = {0.5 * scale:g}\n")


def join_leave(out: Path, scale: float = 1.0) -> list[Event]:
    """lan.toml: h1 joins at 1 s, h2 at 3 s, h1 leaves at 5 s, h2 at 7 s; end at 9 s."""
    config = ('mode = "router"\n[interfaces.up0]\n[interfaces.dn0]\nigmp_version = 3\n'
              f"query_interval = {10 * scale:g}\nquery_response_interval = {1 * scale:g}\n"
              f"last_member_query_interval = {0.5 * scale:g}\n")
    clock = Clock("join-leave", scale)
    with Lab.from_file(ROOT / "netns" / "lan.toml") as lab, \
            tempfile.TemporaryDirectory() as tmp:
        members = Members(lab)
        r1 = start_daemon(lab, "r1", config, Path(tmp), Path(tmp) / "r1.jsonl")
        clock = Clock("join-leave", scale, lab)
        try:
            clock.say("daemon on r1 up; sender streams 239.1.1.1 at 50 pps, TTL 8")
            sender = start_sender(lab, 8.5 * scale)
            clock.at(1, "h1 joins 239.1.1.1: r1 starts forwarding onto dn0")
            members.join("h1")
            clock.at(3, "h2 joins too: nothing changes on dn0 (already forwarding)")
            members.join("h2")
            clock.at(5, "h1 leaves: r1 asks (group query), h2 still answers, traffic goes on")
            members.leave("h1")
            clock.at(7, "h2 leaves: group queries go unanswered, r1 stops forwarding")
            members.leave("h2")
            clock.at(9, "end")
            sender.wait(timeout=10)
        finally:
            members.close()
            stop_daemon(r1)
        return draw("join-leave", "join and leave on a LAN (lan.toml): h1 joins at 1 s, "
                    "h2 at 3 s, h1 leaves at 5 s, h2 at 7 s", {"r1": r1.events}, out,
                    order=("r1 up0", "r1 dn0"), steps=clock.steps)


def querier_election(out: Path, scale: float = 1.0) -> list[Event]:
    """querier-election.toml: r2 first, r1 (lower address) takes over at 2 s, r1 stops at
    5 s, r2 resumes after the other-querier-present interval (4.5 s); end at 12 s."""
    config = ('mode = "router"\n[interfaces.eth0]\nigmp_version = 3\nrobustness = 2\n'
              + _timers(scale))
    oqpi = (2 * 2 + 0.5) * scale
    clock = Clock("querier-election", scale)
    with Lab.from_file(ROOT / "netns" / "querier-election.toml") as lab, \
            tempfile.TemporaryDirectory() as tmp:
        members = Members(lab)
        daemons: list[Daemon] = []
        try:
            daemons.append(start_daemon(lab, "r2", config, Path(tmp), Path(tmp) / "r2.jsonl"))
            clock = Clock("querier-election", scale, lab)
            clock.say("r2 (192.0.2.2) starts alone: it is the querier, sends general queries")
            clock.at(1, "h1 joins 239.1.1.1: it answers queries with reports")
            members.join("h1")
            clock.at(2, "r1 (192.0.2.1) starts: lower address, it takes over; r2 falls silent")
            daemons.append(start_daemon(lab, "r1", config, Path(tmp), Path(tmp) / "r1.jsonl"))
            clock.at(5, f"r1 stops: r2 waits the other-querier-present interval "
                        f"({oqpi:g} s), then queries again")
            stop_daemon(daemons[1])
            clock.at(5 + 2 * 2 + 0.5, "r2 is querier again: its other-querier-present timer "
                                      "ran out 4.5 s after r1's last query")
            clock.at(12, "end")
        finally:
            members.close()
            for d in reversed(daemons):
                stop_daemon(d)
        return draw("querier-election", "querier election (querier-election.toml): r2 first, "
                    "r1 joins at 2 s and wins, r1 stops at 5 s, r2 takes over again",
                    {d.node: d.events for d in daemons}, out, order=("r1 eth0", "r2 eth0"),
                    steps=clock.steps)


def proxy_chain(out: Path, scale: float = 1.0) -> list[Event]:
    """chain.toml: r1 router, r2 IGMP proxy; h1 joins at 1 s and leaves at 5 s; end 8 s."""
    r1_config = ('mode = "router"\n[interfaces.up0]\n[interfaces.dn0]\nigmp_version = 3\n'
                 + _timers(scale))
    r2_config = ('mode = "proxy"\n[interfaces.up0]\nrole = "upstream"\n'
                 '[interfaces.dn0]\nrole = "downstream"\nigmp_version = 3\n' + _timers(scale))
    clock = Clock("proxy-chain", scale)
    with Lab.from_file(ROOT / "netns" / "chain.toml") as lab, \
            tempfile.TemporaryDirectory() as tmp:
        members = Members(lab)
        daemons: list[Daemon] = []
        try:
            daemons.append(start_daemon(lab, "r1", r1_config, Path(tmp), Path(tmp) / "r1.jsonl"))
            daemons.append(start_daemon(lab, "r2", r2_config, Path(tmp), Path(tmp) / "r2.jsonl"))
            clock = Clock("proxy-chain", scale, lab)
            clock.say("r1 (router) and r2 (proxy) up; sender streams 239.1.1.1 at 50 pps")
            sender = start_sender(lab, 7.5 * scale)
            clock.at(1, "h1 joins: r2 learns it on dn0 and reports upstream on up0; "
                        "r1 learns r2 on its dn0 and forwards; r2 forwards to the LAN")
            members.join("h1")
            clock.at(5, "h1 leaves: r2 queries dn0, then leaves upstream; r1 queries, stops")
            members.leave("h1")
            clock.at(8, "end")
            sender.wait(timeout=10)
        finally:
            members.close()
            for d in reversed(daemons):
                stop_daemon(d)
        return draw("proxy-chain", "proxy chain (chain.toml): r1 router, r2 proxy; "
                    "h1 joins at 1 s, leaves at 5 s", {d.node: d.events for d in daemons}, out,
                    order=("r1 up0", "r1 dn0", "r2 up0", "r2 dn0"), steps=clock.steps)


TIMELINES: dict[str, Callable[[Path, float], list[Event]]] = {
    "join-leave": join_leave,
    "querier-election": querier_election,
    "proxy-chain": proxy_chain,
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenario", choices=["explain", *TIMELINES, "all"],
                        help="explain, one timeline scenario, or all three timelines")
    parser.add_argument("-o", "--output", type=Path, default=Path("out"),
                        help="folder for NAME.events.jsonl, NAME.svg, NAME.html (default out/)")
    parser.add_argument("--scale", type=float, default=1.0,
                        help="multiply every time and timer (0.5: twice as fast)")
    args = parser.parse_args()
    if args.scenario == "explain":
        return explain_scenarios()
    args.output.mkdir(parents=True, exist_ok=True)
    names = list(TIMELINES) if args.scenario == "all" else [args.scenario]
    try:
        for name in names:
            TIMELINES[name](args.output, args.scale)
    except MrouterError as exc:
        print(f"scenarios: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
