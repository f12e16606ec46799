"""Teaching scenarios for `mrouter explain` and `mrouter timeline`, on namespace labs.

    python scripts/scenarios.py explain            # each broken router, and what explain says
    python scripts/scenarios.py timeline -o t.html # a real run drawn as a timeline

``explain`` builds each classic "route installed, nothing forwarded" situation in
netns/basic.toml (no routing, TTL 1, rp_filter, missing VIF, RPF mismatch, TTL
threshold, link down) and prints explain's answer.

``timeline`` runs netns/two-lans.toml with the daemon on r1, h1 (lan0, dn0) joining at
1 s and leaving at 6 s, h3 (lan1, dn1) joining at 3 s and leaving at 9 s, the sender
sending throughout. Until the daemon records its own events (``mrouter run --events``),
a recorder here makes them from the outside: it sniffs IGMP on r1 and polls the daemon's
``show groups`` and ``show routes`` every 0.2 s, writing the same event kinds.
"""

from __future__ import annotations

import argparse
import contextlib
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from mrouter.events import EventLog, EventWriter, igmp_fields
from mrouter.kernel.mroute import MrouteSocket
from mrouter.lab import Lab
from mrouter.router.control import request

ROOT = Path(__file__).resolve().parent.parent
S = IPv4Address("198.51.100.2")
G = IPv4Address("239.1.1.1")
DIAG = [sys.executable, "-m", "mrouter.cli.diag"]


@contextlib.contextmanager
def sending(lab: Lab, ttl: int, source: IPv4Address | None = None) -> Iterator[None]:
    with lab.node("sender").enter():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
    if source is not None:
        sock.bind((str(source), 0))
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(0.02):
            sock.sendto(b"scenario" * 8, (str(G), 5000))

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sock.close()


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


# --- timeline ------------------------------------------------------------------------------

CONFIG = """\
mode = "router"
[interfaces.up0]
[interfaces.dn0]
query_interval = 4
query_response_interval = 1
last_member_query_interval = 0.3
[interfaces.dn1]
query_interval = 4
query_response_interval = 1
last_member_query_interval = 0.3
"""


def _sniff_igmp(lab: Lab, log: EventLog, t0: float, stop: threading.Event) -> None:
    from mrouter.errors import CodecError
    from mrouter.igmp.codec import decode_packet

    r1 = lab.node("r1")
    with r1.enter():
        # ETH_P_ALL: a socket bound to ETH_P_IP does not see what r1 itself sends
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0003))
    with sock:
        while not stop.is_set():
            ready, _, _ = select.select([sock], [], [], 0.1)
            if not ready:
                continue
            data, addr = sock.recvfrom(65535)
            name = addr[0]  # (ifname, protocol, pkttype, hatype, hwaddr)
            if addr[1] != 0x0800 or len(data) < 20 or data[9] != 2 or name == "lo":
                continue
            try:
                packet = decode_packet(data)
            except CodecError:
                continue
            now = time.monotonic() - t0
            fields = igmp_fields(packet.igmp)
            if addr[2] == 4:  # PACKET_OUTGOING: r1 sent it
                log.record("igmp_out", now, name, dst=packet.ip.dst, **fields)
            else:
                log.record("igmp_in", now, name, src=packet.ip.src, **fields)


def _poll_daemon(sock: Path, log: EventLog, t0: float, stop: threading.Event) -> None:
    members: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}
    routes: dict[tuple[str, str], tuple[str, tuple[str, ...], int]] = {}
    while not stop.wait(0.2):
        now = time.monotonic() - t0
        seen = {}
        for row in request(sock, "show", what="groups"):
            seen[(row["iface"], row["group"])] = (row["filter_mode"], tuple(row["sources"]))
        for key, value in seen.items():
            if members.get(key) != value:
                log.record("membership_changed", now, key[0], group=key[1],
                           filter_mode=value[0], sources=list(value[1]))
        for key in set(members) - set(seen):
            log.record("membership_changed", now, key[0], group=key[1],
                       filter_mode="INCLUDE", sources=[])
        members = seen
        current = {}
        for e in request(sock, "show", what="routes")["entries"]:
            current[(e["source"], e["group"])] = (e["iif"], tuple(e["oifs"]), e["packets"])
        for (s, g), (iif, oifs, packets) in current.items():
            old = routes.get((s, g))
            if old is None:
                log.record("mfc_add", now, source=s, group=g, iif=iif, oifs=list(oifs))
            elif old[:2] != (iif, oifs):
                log.record("mfc_update", now, source=s, group=g, iif=iif, oifs=list(oifs))
            if old is None or old[2] != packets:
                log.record("mfc_counters", now, source=s, group=g, packets=packets,
                           bytes=0, wrong_if=0)
        for (s, g) in set(routes) - set(current):
            log.record("mfc_delete", now, source=s, group=g, packets=routes[(s, g)][2])
        routes = current


def timeline_scenario(output: Path, events_path: Path) -> int:
    from mrouter.timeline import render_html, render_svg

    events_path.unlink(missing_ok=True)
    log = EventLog(writer=EventWriter(events_path), wall_clock=time.time)
    with Lab.from_file(ROOT / "netns" / "two-lans.toml") as lab, \
            tempfile.TemporaryDirectory() as tmp:
        config, ctl = Path(tmp) / "r.toml", Path(tmp) / "ctl.sock"
        config.write_text(CONFIG)
        lab.node("r1").spawn([sys.executable, "-m", "mrouter", "run", "--config", str(config),
                              "--socket", str(ctl)], stderr=subprocess.DEVNULL)
        t0 = time.monotonic()
        stop = threading.Event()
        threads = [threading.Thread(target=_sniff_igmp, args=(lab, log, t0, stop)),
                   threading.Thread(target=_poll_daemon, args=(ctl, log, t0, stop))]
        for _ in range(100):
            with contextlib.suppress(Exception):
                request(ctl, "ping")
                break
            time.sleep(0.05)
        log.record("daemon_started", time.monotonic() - t0)
        for t in threads:
            t.start()
        joined: dict[str, socket.socket] = {}

        def join(host: str, address: str) -> None:
            with lab.node(host).enter():
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                         G.packed + IPv4Address(address).packed)
            joined[host] = s

        plan: list[tuple[float, Callable[[], Any]]] = [
            (1.0, lambda: join("h1", "192.0.2.11")),
            (3.0, lambda: join("h3", "203.0.113.11")),
            (6.0, lambda: joined.pop("h1").close()),
            (9.0, lambda: joined.pop("h3").close()),
        ]
        with sending(lab, ttl=8):
            for at, action in plan:
                time.sleep(max(0.0, at - (time.monotonic() - t0)))
                action()
            time.sleep(2.0)
        stop.set()
        for t in threads:
            t.join()
        log.record("daemon_stopped", time.monotonic() - t0)
    log.close()
    from mrouter.events import read_events

    events = read_events(events_path)
    title = "two-lans: h1 (dn0) joins at 1 s, leaves at 6 s; h3 (dn1) joins at 3 s, leaves at 9 s"
    render = render_svg if output.suffix == ".svg" else render_html
    output.write_text(render(events, title=title))
    print(f"{events_path}: {len(events)} events; drawn in {output}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    sub.add_parser("explain", help="each broken router and explain's answer")
    tl = sub.add_parser("timeline", help="a real run drawn as a timeline")
    tl.add_argument("-o", "--output", type=Path, default=Path("timeline.html"))
    tl.add_argument("--events", type=Path, default=Path("timeline-events.jsonl"))
    args = parser.parse_args()
    if args.what == "explain":
        return explain_scenarios()
    return timeline_scenario(args.output, args.events)


if __name__ == "__main__":
    raise SystemExit(main())
