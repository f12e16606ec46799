"""``mrouter ifaces``, ``memberships``, ``send`` and ``recv``: the socket API from a shell.

Parsing and output only; the socket work is :mod:`mrouter.sockets.mcast` (IPv4) and
:mod:`mrouter.sockets.mcast6` (IPv6), and the datagram format and statistics are
:mod:`mrouter.traffic.payload`. Both families take the same commands and options and print
the same keys; every JSON object that has an address family says which in ``family``.
An IPv6 group is written in brackets before its port: ``[ff15::1]:5000``.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import selectors
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from ipaddress import IPv4Address, IPv6Address
from types import FrameType
from typing import Any

from mrouter.errors import McastError
from mrouter.sockets import mcast, mcast6
from mrouter.traffic import payload

log = logging.getLogger(__name__)

IPAddress = IPv4Address | IPv6Address
Target = tuple[IPAddress, int]
AnySocket = mcast.McastSocket | mcast6.Mcast6Socket


def family(address: IPAddress) -> str:
    return "ipv6" if address.version == 6 else "ipv4"


def show_target(group: IPAddress, port: int) -> str:
    """GROUP:PORT as a user writes it: ``[ff15::1]:5000`` for IPv6."""
    return f"[{group}]:{port}" if group.version == 6 else f"{group}:{port}"


# --- shared helpers -------------------------------------------------------------------

def group_port(text: str) -> Target:
    """argparse type for GROUP:PORT, e.g. 239.1.1.1:5000 or [ff15::1]:5000."""
    group_text, sep, port_text = text.rpartition(":")
    ipv6 = group_text.startswith("[") or group_text.count(":") > 0
    digits = port_text.isascii() and port_text.isdigit()
    if not sep or not digits or not 1 <= int(port_text) <= 65535 or (
            ipv6 and not (group_text.startswith("[") and group_text.endswith("]"))):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not GROUP:PORT; write e.g. 239.1.1.1:5000, or for IPv6 the "
            f"group in brackets, e.g. [ff15::1]:5000 (port 1..65535)")
    try:
        group: IPAddress = (mcast6.as_group(group_text[1:-1]) if ipv6
                            else mcast.as_group(group_text))
    except McastError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return group, int(port_text)


def source_address(text: str) -> IPAddress:
    try:
        if ":" in text and not text.startswith("["):
            return mcast6.as_source(text)
        return mcast.as_source(text)
    except McastError as exc:
        hint = ("; put the GROUP:PORT arguments before --source"
                if text.startswith("[") or text.count(":") == 1 else "")
        raise argparse.ArgumentTypeError(f"{exc}{hint}") from None


def _non_negative(kind: type[int] | type[float]) -> Callable[[str], Any]:
    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if value < 0:
            raise argparse.ArgumentTypeError(f"{text} is negative; give 0 or more")
        return value
    return parse


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Aligned columns, no trailing blanks."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in cells)


def ipv4_address(text: str) -> IPv4Address:
    """argparse type for any IPv4 address."""
    try:
        return IPv4Address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an IPv4 address") from None


def multicast_group(text: str) -> IPv4Address:
    """argparse type for a multicast group address (224.0.0.0/4)."""
    addr = ipv4_address(text)
    if not addr.is_multicast:
        raise argparse.ArgumentTypeError(f"{text} is not a multicast group (224.0.0.0/4)")
    return addr


def emit_json(obj: dict[str, Any]) -> None:
    print(json.dumps(obj, sort_keys=False), flush=True)


@contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C so a terminated send/recv still prints its summary."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- ifaces ---------------------------------------------------------------------------

def configure_ifaces(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "List this network namespace's interfaces: index, name, flags, IPv4 and IPv6\n"
        "addresses (link-local ones included; a tentative one, still in duplicate address\n"
        "detection, is marked). A multicast join or IP_MULTICAST_IF names one of these;\n"
        "the interface needs the MULTICAST flag to send and receive multicast, and UP to\n"
        "carry anything.")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per interface and line")
    parser.set_defaults(func=run_ifaces)


def run_ifaces(args: argparse.Namespace) -> int:
    found = mcast.interfaces()
    if args.json:
        for iface in found:
            emit_json(iface.to_json())
        return 0
    def v6(i: mcast.Interface) -> str:
        return " ".join(str(a) + ("(tentative)" if a.ip in i.tentative6 else "")
                        for a in i.addresses6) or "-"

    rows: list[tuple[object, ...]] = [
        (i.index, i.name, ",".join(i.flag_names()) or "-",
         " ".join(str(a) for a in i.addresses) or "-") for i in found]
    if any(i.addresses6 for i in found):  # an IPv4-only namespace shows what it always did
        rows = [(*row, v6(i)) for row, i in zip(rows, found, strict=True)]
        print(table(("INDEX", "NAME", "FLAGS", "IPV4", "IPV6"), rows))
        return 0
    print(table(("INDEX", "NAME", "FLAGS", "IPV4"), rows))
    return 0


# --- memberships ----------------------------------------------------------------------

def configure_memberships(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Show the kernel's group memberships of this network namespace, per interface:\n"
        "each group with the number of sockets holding it (USERS) and its source filters\n"
        "(per source, how many sockets include it and how many exclude it), from\n"
        "/proc/net/igmp and /proc/net/mcfilter (IPv4) and /proc/net/igmp6 and\n"
        "/proc/net/mcfilter6 (IPv6). A group stays while one socket holds it:\n"
        "a socket leaving only lowers USERS; the host leaves when USERS would reach 0.")
    parser.add_argument("--iface", metavar="IF", help="only this interface")
    parser.add_argument("--json", action="store_true", help="one JSON object per group and line")
    parser.set_defaults(func=run_memberships)


def run_memberships(args: argparse.Namespace) -> int:
    table_ = mcast.memberships()
    try:
        table_ += mcast6.memberships6()
    except McastError as exc:  # a kernel without IPv6: list IPv4 only
        log.info("%s", exc)
    if args.iface is not None:
        wanted = mcast.interface(args.iface)
        table_ = [t for t in table_ if t.ifindex == wanted.index]
    pairs = list(mcast.iter_memberships(table_))
    if args.json:
        for ifm, g in pairs:
            emit_json({**ifm.header_json(), **g.to_json()})
        return 0

    def version(ifm: mcast.InterfaceMemberships) -> str:
        if ifm.family is mcast.Family.IPV6:
            return f"MLDv{ifm.mld_version}" if ifm.mld_version else "MLD"
        return f"v{ifm.igmp_version}"

    rows = [(ifm.name, ifm.ifindex, version(ifm), g.group, g.users,
             "yes" if g.reporter else "no",
             " ".join(f"{s.source}(in={s.include},ex={s.exclude})" for s in g.sources) or "-")
            for ifm, g in pairs]
    # the IGMP column keeps its name (scripts read it); IPv6 rows show MLD there
    print(table(("IFACE", "INDEX", "IGMP", "GROUP", "USERS", "REPORTER", "SOURCES"), rows))
    return 0


# --- send -----------------------------------------------------------------------------

def configure_send(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Send numbered, timestamped UDP datagrams to a multicast group, paced at --rate,\n"
        "and print a summary (sent, elapsed, rate). Each datagram carries a sequence number\n"
        "and its send time, so `mrouter recv` can count loss, duplicates and reordering\n"
        "and measure one-way delay. The TTL (IP_MULTICAST_TTL; for IPv6 the hop limit,\n"
        "IPV6_MULTICAST_HOPS) defaults to 1, which keeps datagrams on the link: give\n"
        "--ttl N to cross N-1 routers. An IPv6 group goes in brackets: [ff15::1]:5000.")
    parser.add_argument("target", type=group_port, metavar="GROUP:PORT",
                        help="destination group and UDP port, e.g. 239.1.1.1:5000 or "
                             "[ff15::1]:5000")
    parser.add_argument("--iface", metavar="IF",
                        help="send out of this interface (name, index or local address: "
                             "IP_MULTICAST_IF / IPV6_MULTICAST_IF); default: the route to "
                             "the group decides")
    parser.add_argument("--ttl", type=int, default=1, metavar="N",
                        help="IP TTL (IPv6: hop limit) of the datagrams, 0..255 (default 1: "
                             "this link only)")
    parser.add_argument("--no-loop", action="store_true",
                        help="do not deliver copies to receivers on this host "
                             "(IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP off)")
    parser.add_argument("--count", type=_non_negative(int), default=10, metavar="N",
                        help="datagrams to send, 0 for until Ctrl-C (default 10)")
    parser.add_argument("--rate", type=_non_negative(float), default=10.0, metavar="PPS",
                        help="datagrams per second, 0 for as fast as possible (default 10)")
    parser.add_argument("--size", type=int, default=64, metavar="BYTES",
                        help=f"UDP payload size, {payload.HEADER_LEN}..{payload.MAX_UDP_PAYLOAD}"
                             " (default 64)")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(func=run_send)


def run_send(args: argparse.Namespace) -> int:
    group, port = args.target
    if group.version == 6:
        if args.ttl == -1:  # accepted by the kernel as "the default", but not documented here
            raise McastError("--ttl -1 is not a hop limit; give 0..255")
        mcast6.check_hops(args.ttl)
    else:
        mcast.check_ttl(args.ttl)
    payload.Payload(0, 0, 0).encode(args.size)  # validates the size before any socket
    stream = random.getrandbits(32)
    interval = 1.0 / args.rate if args.rate else 0.0
    sent = 0
    first = last = 0.0
    interrupted = False
    with mcast6.open_socket(group) as sock, sigterm_as_interrupt():
        sock.ttl = args.ttl
        sock.loop = not args.no_loop
        out = sock.set_interface(args.iface) if args.iface is not None else sock.interface
        start = time.monotonic()
        try:
            while args.count == 0 or sent < args.count:
                wait = start + sent * interval - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
                data = payload.Payload(stream, sent, time.time_ns()).encode(args.size)
                sock.sendto(data, group, port)
                last = time.monotonic()
                if sent == 0:
                    first = last
                sent += 1
        except KeyboardInterrupt:
            interrupted = True
    elapsed = last - first
    rate = (sent - 1) / elapsed if sent > 1 and elapsed > 0 else None
    via = out.name or (str(out.address) if not out.is_default else "route")
    summary = {"family": family(group), "group": str(group), "port": port, "sent": sent,
               "size": args.size,
               "elapsed": round(elapsed, 6), "rate": None if rate is None else round(rate, 3),
               "ttl": args.ttl, "loop": not args.no_loop, "iface": via, "stream": stream,
               "interrupted": interrupted}
    if args.json:
        emit_json(summary)
    else:
        rate_text = "-" if rate is None else f"{rate:.1f} pps"
        ttl = "hop limit" if group.version == 6 else "ttl"
        print(f"sent {sent} datagrams of {args.size} bytes to {show_target(group, port)} "
              f"via {via}, {ttl} {args.ttl}, loop {'on' if not args.no_loop else 'off'}: "
              f"{elapsed:.3f} s, {rate_text}")
    return 130 if interrupted else 0


# --- recv -----------------------------------------------------------------------------

def configure_recv(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Join multicast groups, receive `mrouter send` datagrams and report per group:\n"
        "received, lost, duplicates, reordered (from sequence numbers), first and last\n"
        "arrival, rate, one-way delay min/avg/max, the IP TTL seen (IP_RECVTTL; for IPv6\n"
        "the hop limit, IPV6_RECVHOPLIMIT) and the sources seen. With --source the join is\n"
        "source-specific (IGMPv3/MLDv2, SSM): only those senders get through; sources\n"
        "apply to the groups of their own family. Datagrams that are not mrouter's are\n"
        "counted as 'foreign'. IPv6 groups go in brackets: [ff15::1]:5000.\n"
        "Exit status: 0 when --count was reached in every group (or no --count was given),\n"
        "1 on --timeout short of it, 2 on usage or system errors, 130 on Ctrl-C (after\n"
        "printing the summary so far).")
    parser.add_argument("targets", type=group_port, nargs="+", metavar="GROUP:PORT",
                        help="groups and UDP ports to join, e.g. 239.1.1.1:5000 or "
                             "[ff15::1]:5000")
    parser.add_argument("--iface", metavar="IF", action="append",
                        help="join on this interface (name, index or local address); "
                             "repeat to join each group on several; default: the route "
                             "to the group decides")
    parser.add_argument("--source", metavar="S", type=source_address, nargs="+",
                        action="extend",
                        help="receive only from these senders (source-specific join)")
    parser.add_argument("--count", type=_non_negative(int), default=0, metavar="N",
                        help="stop when every group has received N datagrams (default: no "
                             "limit)")
    parser.add_argument("--timeout", type=_non_negative(float), default=None, metavar="SECONDS",
                        help="stop after this many seconds (default: wait for --count or "
                             "Ctrl-C)")
    parser.add_argument("--json", action="store_true",
                        help="print the summary as one JSON object per group and line")
    parser.add_argument("--live", action="store_true",
                        help="refresh one line per group each second (rate, received, lost, "
                             "duplicates, reordered, delay, TTL or hop limit, sources) in "
                             "place on a terminal, as timestamped lines otherwise (with "
                             "--json: one object per group each second, marked "
                             '"live": true); the summary follows at the end')
    parser.set_defaults(func=run_recv)


def _classify(data: bytes) -> payload.Payload | None:
    try:
        return payload.decode(data)
    except payload.PayloadError:
        return None


def run_recv(args: argparse.Namespace) -> int:
    targets: list[Target] = list(dict.fromkeys(args.targets))
    ifaces: list[str | None] = args.iface or [None]
    sources: list[IPAddress] = args.source or []
    _check_families(targets, sources)
    stats = {t: payload.GroupStats(group=t[0], port=t[1]) for t in targets}
    # one socket per family and port, joined to all that port's groups of that family
    sockets: dict[tuple[int, int], AnySocket] = {}
    selector = selectors.DefaultSelector()
    stray = 0
    reached = interrupted = False
    try:
        for version, port in sorted({(g.version, p) for g, p in targets}):
            sock = sockets[(version, port)] = mcast6.open_socket(
                IPv6Address("ff15::1") if version == 6 else IPv4Address("239.0.0.1"))
            sock.multicast_all = False  # only the groups this socket joined
            sock.enable_receive_info()
            sock.bind(port)
            for group in (g for g, p in targets if p == port and g.version == version):
                for iface in ifaces:
                    mine = [s for s in sources if s.version == version]
                    if mine:
                        for source in mine:
                            _join(sock, group, iface, source)
                    else:
                        _join(sock, group, iface, None)
            sock.sock.setblocking(False)
            selector.register(sock.sock, selectors.EVENT_READ, (version, port))
        log.info("joined %s", "; ".join(m.describe() for s in sockets.values()
                                         for m in s.memberships))
        deadline = None if args.timeout is None else time.monotonic() + args.timeout
        live = _Live(stats, json_lines=args.json) if args.live else None
        with sigterm_as_interrupt():
            try:
                while not reached:
                    now = time.monotonic()
                    remaining = None if deadline is None else deadline - now
                    if remaining is not None and remaining <= 0:
                        break
                    if live is not None:
                        live.tick(now)
                        wait = live.next_refresh - now
                        remaining = wait if remaining is None else min(wait, remaining)
                    for key, _ in selector.select(remaining):
                        sock = sockets[key.data]
                        while (dg := sock.recv()) is not None:
                            target = (dg.destination, key.data[1])
                            if target not in stats:
                                stray += 1
                                log.info("ignored a datagram from %s to %s:%s", dg.source,
                                         dg.destination, key.data[1])
                                continue
                            arrival = payload.Arrival(
                                dg.source, dg.timestamp_ns or time.time_ns(), dg.ttl,
                                _classify(dg.data))
                            stats[target].add(arrival, len(dg.data))
                    reached = bool(args.count) and all(
                        s.received >= args.count for s in stats.values())
            except KeyboardInterrupt:
                interrupted = True
            if live is not None:
                live.close()
    finally:
        selector.close()
        for sock in sockets.values():
            sock.close()
    _print_recv(stats.values(), stray, json_lines=args.json)
    if interrupted:
        return 130
    return 1 if args.count and not reached else 0


class _Live:
    """``recv --live``: each second, one line per group over what arrived since the last
    one (rate, delay) and in total (counts, TTL or hop limit range, sources)."""

    HEADER = (f"{'GROUP:PORT':<24} {'PPS':>8} {'RECV':>8} {'LOST':>6} {'DUP':>5} "
              f"{'REORD':>5} {'DELAY_MS':>9} {'TTL':>7}  SOURCES")

    def __init__(self, stats: dict[Target, payload.GroupStats], *, json_lines: bool) -> None:
        from mrouter.cli.live import LiveScreen

        self.stats = stats
        self.json_lines = json_lines
        self.screen = LiveScreen()
        self.last = time.monotonic()
        self.next_refresh = self.last + 1.0
        self.before = {t: (0, 0, 0) for t in stats}  # received, delay sum, delay count

    def tick(self, now: float) -> None:
        if now < self.next_refresh:
            return
        elapsed = max(now - self.last, 1e-9)
        self.last = now
        self.next_refresh = max(self.next_refresh + 1.0, now + 0.5)
        rows, objects = [], []
        for target, st in self.stats.items():
            received0, delay_sum0, delay_count0 = self.before[target]
            self.before[target] = (st.received, st.delay_sum_ns, st.delay_count)
            pps = (st.received - received0) / elapsed
            samples = st.delay_count - delay_count0
            delay_ms = (st.delay_sum_ns - delay_sum0) / samples / 1e6 if samples else None
            if self.json_lines:
                objects.append({**st.summary(), "live": True, "interval_rate": round(pps, 3),
                                "interval_delay_ms": None if delay_ms is None
                                else round(delay_ms, 3)})
                continue
            ttl = ("-" if st.ttl_min is None else str(st.ttl_min) if st.ttl_min == st.ttl_max
                   else f"{st.ttl_min}..{st.ttl_max}")
            sources = " ".join(str(a) for a in sorted(
                st.sources, key=lambda a: (a.version, int(a)))) or "-"
            delay = "-" if delay_ms is None else f"{delay_ms:.3f}"
            if self.screen.terminal:
                rows.append(f"{show_target(*target):<24} {pps:>8.1f} {st.received:>8} "
                            f"{st.lost:>6} {st.duplicates:>5} {st.reordered:>5} "
                            f"{delay:>9} {ttl:>7}  {sources}")
            else:
                hops = "hops" if target[0].version == 6 else "ttl"
                rows.append(f"{show_target(*target)} pps {pps:.1f} received {st.received} "
                            f"lost {st.lost} duplicates {st.duplicates} reordered "
                            f"{st.reordered} delay_ms {delay} {hops} {ttl} sources {sources}")
        if self.json_lines:
            for obj in objects:
                emit_json(obj)
            return
        self.screen.refresh(self.HEADER, rows)

    def close(self) -> None:
        self.screen.close()


def _check_families(targets: list[Target], sources: list[IPAddress]) -> None:
    """--source applies to the groups of its family; each family's groups need one."""
    if not sources:
        return
    for version in {g.version for g, _ in targets}:
        if not any(s.version == version for s in sources):
            group = next(g for g, _ in targets if g.version == version)
            raise McastError(
                f"--source gives no IPv{version} source for the IPv{version} group {group}; "
                f"add one (sources apply to the groups of their own family), or receive "
                f"that group with another `mrouter recv`")
    for s in sources:
        if not any(g.version == s.version for g, _ in targets):
            raise McastError(f"source {s} is IPv{s.version} but no group is; give an "
                             f"IPv{s.version} group or drop the source")


def _join(sock: AnySocket, group: IPAddress, iface: str | None,
          source: IPAddress | None) -> None:
    """A join on a socket of the group's family: any-source, or from ``source``."""
    if source is None:
        sock.join(group, iface)
    else:
        sock.join_source(group, source, iface)


def _clock(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%H:%M:%S.%f")[:-3]


def _print_recv(all_stats: Any, stray: int, *, json_lines: bool) -> None:
    if json_lines:
        for st in all_stats:
            emit_json(st.summary())
        return
    rows = []
    for st in all_stats:
        s = st.summary()
        delay = ("-" if s["delay_min_ms"] is None else
                 f"{s['delay_min_ms']:.3f}/{s['delay_avg_ms']:.3f}/{s['delay_max_ms']:.3f}")
        ttl = "-" if s["ttl_min"] is None else f"{s['ttl_min']}..{s['ttl_max']}"
        rate = "-" if s["rate"] is None else f"{s['rate']:.1f}"
        rows.append((s["group"], s["port"], s["received"], s["lost"], s["duplicates"],
                     s["reordered"], s["foreign"], rate, delay, ttl, _clock(st.first_ns),
                     _clock(st.last_ns), " ".join(s["sources"]) or "-"))
    print(table(("GROUP", "PORT", "RECV", "LOST", "DUP", "REORD", "FOREIGN", "PPS",
                 "DELAY_MS(min/avg/max)", "TTL", "FIRST(UTC)", "LAST(UTC)", "SOURCES"), rows))
    if stray:
        print(f"({stray} datagrams to other destinations on these ports were ignored)")

