#!/usr/bin/env python3
"""Benchmark: the mrouter daemon against real peers from Debian, same run, same topology.

Every figure is measured in lab namespaces (netns/basic.toml, or a generated topology
with four downstream LANs) with the peers running inside r1, interleaved with mrouter:

- forward   packets/s forwarded by the kernel for one (S,G), mrouter vs smcroute (both
            program the kernel's MFC, so the ratio should be ~1). Counted on r1 dn0's
            TX counter over a fixed window while a sender blasts; medians of rounds.
- join      router reaction on the wire: from the host's IGMP report arriving on r1 dn0
            to the first forwarded data packet leaving dn0 (kernel timestamps of an
            AF_PACKET capture), a sender at --rate packets/s already running. Each rep
            uses a fresh group. Also shown: join call -> first packet (includes the
            host's random 0-20 ms report delay), and the reaction counted to the
            first *fresh* packet, one the sender sent after the report: a router
            that leaves (S,G) unresolved until a member appears (igmpproxy) gets the
            <= 4 packets the kernel queued for it, sent up to 10 s earlier, the
            moment it installs the route; mrouter installs (S,G) at once, without
            outbound interfaces, so its first packet is always a fresh one.
            mrouter vs igmpproxy.
- leave     from the host's leave (v2 Leave or v3 TO_IN({})) on the wire to the last
            forwarded data packet: mrouter default timers (target <= LMQC x LMQI +
            50 ms) vs igmpproxy (default config); mrouter fast_leave (target < 20 ms)
            vs igmpproxy with quickleave.
- scale     --groups memberships (default 10000) over 4 downstream LANs (a generated
            topology, one host per LAN), learned from crafted IGMPv3 reports (150
            TO_EX({}) records each, repeated every 5 s as hosts answering queries
            would); VmRSS of the daemon; then one sender round robin over every group
            and the rate at which the kernel's MFC fills with forwarding (S,G)
            entries, from the first to the last. mrouter vs igmpproxy (its per-socket
            join limits raised in r1 so it can join 10k groups upstream).
- start     spawn -> control socket answers: `mrouter run` (show interfaces) vs
            smcrouted (`smcroutectl show`).
- forward6, join6, leave6, scale6: the same figures for IPv6, in the same topologies
            with IPv6 turned on beside IPv4 (scripts/bench6.py), mrouter running with
            families = ["ipv4", "ipv6"]: an IPv6 (S,G) forwarded, mrouter vs smcroute
            (the route in its config); the MLD join reaction on the wire (the host's
            MLDv2 report -> first forwarded packet) and leave -> last packet, default
            timers and fast leave, next to IGMP's; 10k IPv6 groups over the four LANs
            from crafted MLDv2 reports (60 TO_EX({}) records each): RSS, learn time and
            install rate next to the IPv4 mrouter figures (families = ["ipv6"] there).
            igmpproxy has no IPv6.

    sudo .venv/bin/python scripts/bench_router.py             # everything (~4 min)
    sudo .venv/bin/python scripts/bench_router.py --quick     # small sizes (~1 min)
    sudo .venv/bin/python scripts/bench_router.py --only join leave --json

Not a pass/fail test: it prints figures, ratios and one verdict line per target.
Progress goes to stderr, results to stdout.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from ipaddress import IPv4Address, IPv4Network, IPv6Address
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench6
import benchlib as b

from mrouter.igmp.codec import encode_packet
from mrouter.igmp.messages import GroupRecord, RecordType, V3Report
from mrouter.lab import Lab
from mrouter.router.control import request

ROOT = b.ROOT
BASIC = ROOT / "netns" / "basic.toml"
SOURCE = "198.51.100.2"
ALL_V3_ROUTERS = IPv4Address("224.0.0.22")
LINK_LOCAL = IPv4Network("224.0.0.0/24")
LMQC, LMQI = 2, 1.0  # RFC 3376 defaults (robustness 2, 1 s)

Result = dict[str, Any]


def mrouter_basic(fast_leave: bool = False, route: bool = False) -> str:
    routes = [{"source": SOURCE, "group": "239.1.1.1", "from": "up0", "to": ["dn0"]}] \
        if route else []
    return b.mrouter_config({"up0": {}, "dn0": {"igmp_version": 3, "fast_leave": fast_leave}},
                            routes)


SMCROUTE_BASIC = f"mroute from up0 source {SOURCE} group 239.1.1.1 to dn0\n"


# --- start to ready -----------------------------------------------------------------------

def bench_start(workdir: Path, reps: int) -> Result:
    times: dict[str, list[float]] = {"mrouter": [], "smcroute": []}
    starters: dict[str, Callable[[Lab], b.Daemon]] = {
        "mrouter": lambda lab: b.start_mrouter(lab.node("r1"), workdir, mrouter_basic(
            route=True)),
        "smcroute": lambda lab: b.start_smcroute(lab.node("r1"), workdir, SMCROUTE_BASIC),
    }
    with Lab.from_file(BASIC) as lab:
        for i in range(reps):
            b.progress(f"start: rep {i + 1}/{reps}")
            for name, start in starters.items():
                t0 = time.perf_counter()
                daemon = start(lab)
                with b.running(daemon):
                    daemon.wait_ready()
                    times[name].append(time.perf_counter() - t0)
    mr, smc = b.median(times["mrouter"]), b.median(times["smcroute"])
    return {"mrouter_s": times["mrouter"], "smcroute_s": times["smcroute"],
            "mrouter_median_s": mr, "smcroute_median_s": smc, "ratio": mr / smc}


# --- forwarding ---------------------------------------------------------------------------

def bench_forward(workdir: Path, rounds: int, window: float, senders: int) -> Result:
    return forward_rounds(workdir, rounds, window, senders, ipv6=False)


# --- join reaction and leave ----------------------------------------------------------------

def bench_membership(workdir: Path, peer: str, reps: int, leave_reps: int, rate: float,
                     block: int) -> Result:
    """Join reaction (every rep) and leave -> last packet (the first ``leave_reps``)."""
    with Lab.from_file(BASIC) as lab:
        r1, sender, receiver = lab.node("r1"), lab.node("sender"), lab.node("receiver")
        if peer.startswith("igmpproxy"):
            daemon = b.start_igmpproxy(r1, workdir, b.igmpproxy_config(
                "up0", ["dn0"], quickleave=peer == "igmpproxy-quickleave"), 2, tag=peer)
        else:
            daemon = b.start_mrouter(r1, workdir, mrouter_basic(
                fast_leave=peer == "mrouter-fast-leave"), tag=peer)
        member = b.HostMember(receiver, "eth0")
        with b.running(daemon), b.Capture(r1, "dn0") as cap:
            daemon.wait_ready()
            time.sleep(0.3)
            runs = membership_reps(
                cap, member, [IPv4Address(f"239.2.{block}.{i + 1}") for i in range(reps)],
                lambda group: b.start_sender(sender, group, rate=rate), leave_reps,
                label=peer, quiet_within=90.0, fresh=True)
        member.close()
    return runs


def membership_reps(cap: b.Capture, member: Any, groups: list[Any],
                    start_sender: Callable[[Any], Any], leave_reps: int, *, label: str,
                    quiet_within: float, fresh: bool) -> Result:
    """bench_membership's reps, either family: for each group a sender starts, the
    ``member`` joins, and the capture gives the report -> first forwarded packet (and,
    with ``fresh``, -> first packet sent after the report) and join call -> first packet;
    for the first ``leave_reps`` the member leaves and the capture gives leave -> last
    packet, once no data came for 0.5 s (within ``quiet_within`` s)."""
    reactions: list[float] = []
    fresh_reactions: list[float] = []
    call_to_first: list[float] = []
    leaves: list[float] = []
    missed = 0
    for i, group in enumerate(groups):
        snd = start_sender(group)
        try:
            time.sleep(0.25)  # the sender is running and (S,G) known to the router
            called = member.join(group)

            def forwarded(g: Any = group) -> bool:
                return cap.first_data(g) is not None

            def quiet(g: Any = group) -> bool:  # no data for 0.5 s
                return time.time_ns() - (cap.last_data(g) or 0) > 500_000_000

            if not b.wait_for(forwarded, 5.0, 0.005):
                missed += 1
                member.leave(group)
                continue
            first = cap.first_data(group)
            report = cap.first_igmp("join", group, called - 1_000_000)
            assert first is not None
            if report is not None:
                reactions.append((first - report) / 1e6)
                first_fresh = cap.first_fresh_data(group, report) if fresh else None
                if first_fresh is not None:
                    fresh_reactions.append((first_fresh - report) / 1e6)
            call_to_first.append((first - called) / 1e6)
            if i < leave_reps:
                b.progress(f"{label}: leave {i + 1}/{leave_reps}")
                time.sleep(0.1)
                left = member.leave(group)
                if b.wait_for(quiet, quiet_within, 0.02):
                    leave_at = cap.first_igmp("leave", group, left - 1_000_000)
                    last = cap.last_data(group)
                    if leave_at is not None and last is not None:
                        leaves.append((last - leave_at) / 1e6)
            else:
                member.leave(group)
        finally:
            b.stop(snd)
    b.progress(f"{label}: {len(reactions)} joins, {len(leaves)} leaves, {missed} missed")
    result: Result = {
        "reaction_ms": reactions, "call_to_first_ms": call_to_first, "leave_ms": leaves,
        "missed": missed,
        "reaction_p50_ms": b.percentile(reactions, 0.5),
        "reaction_p90_ms": b.percentile(reactions, 0.9)}
    if fresh:
        result |= {"fresh_reaction_ms": fresh_reactions,
                   "fresh_reaction_p50_ms": b.percentile(fresh_reactions, 0.5)}
    return result | {"call_to_first_p50_ms": b.percentile(call_to_first, 0.5),
                     "leave_p50_ms": b.percentile(leaves, 0.5),
                     "leave_max_ms": max(leaves) if leaves else math.nan}


# --- IPv6 -------------------------------------------------------------------------------------

GROUP6 = "ff15::1"
SMCROUTE_BASIC6 = f"mroute from up0 source {bench6.SOURCE6} group {GROUP6} to dn0\n"


def mrouter_basic6(fast_leave: bool = False, route: bool = False) -> str:
    routes = [{"source": bench6.SOURCE6, "group": GROUP6, "from": "up0", "to": ["dn0"]}] \
        if route else []
    text = b.mrouter_config({"up0": {}, "dn0": {"igmp_version": 3, "mld_version": 2,
                                                "fast_leave": fast_leave}}, routes)
    return text.replace('mode = "router"\n', 'mode = "router"\nfamilies = ["ipv4", "ipv6"]\n')


def bench_forward6(workdir: Path, rounds: int, window: float, senders: int) -> Result:
    return forward_rounds(workdir, rounds, window, senders, ipv6=True)


def forward_rounds(workdir: Path, rounds: int, window: float, senders: int, *,
                   ipv6: bool) -> Result:
    """Packets/s r1 forwards out of dn0 from ``senders`` blasting senders (IPv4 239.1.1.1
    or IPv6 ff15::1) with mrouter and smcroute in turn, ``rounds`` times, each once its
    (S,G) shows in the kernel's MFC: the window's TX counter delta."""
    with Lab.from_file(BASIC) as lab:
        if ipv6:
            bench6.enable_ipv6(lab)
        node = lab.node("sender")
        procs = [bench6.start_sender6(node, IPv6Address(GROUP6), rate=0) if ipv6
                 else b.start_sender(node, IPv4Address("239.1.1.1"), rate=0)
                 for _ in range(senders)]
        try:
            if ipv6:
                result = _rounds(lab, workdir, rounds, window, "forward6",
                                 (mrouter_basic6(route=True), SMCROUTE_BASIC6),
                                 bench6.forwarding_entries6, "IPv6 (S,G)")
            else:
                result = _rounds(lab, workdir, rounds, window, "forward",
                                 (mrouter_basic(route=True), SMCROUTE_BASIC),
                                 b.forwarding_entries, "(S,G) route")
        finally:
            for proc in procs:
                b.stop(proc)
    return result | {"senders": senders}


def _rounds(lab: Lab, workdir: Path, rounds: int, window: float, tag: str,
            configs: tuple[str, str], entries: Callable[[Any], int], what: str) -> Result:
    """forward_rounds' rounds in ``lab``: mrouter and smcroute with their ``configs``, each
    measured once ``entries`` (r1's MFC) holds the route (else: ``what`` never appeared)."""
    r1 = lab.node("r1")
    pps: dict[str, list[float]] = {"mrouter": [], "smcroute": []}
    for i in range(rounds):
        b.progress(f"{tag}: round {i + 1}/{rounds}")
        for name in ("mrouter", "smcroute") if i % 2 == 0 else ("smcroute", "mrouter"):
            daemon = b.start_mrouter(r1, workdir, configs[0]) if name == "mrouter" \
                else b.start_smcroute(r1, workdir, configs[1])
            with b.running(daemon):
                daemon.wait_ready()
                if not b.wait_for(lambda: entries(r1) >= 1, 5.0, 0.01):
                    raise RuntimeError(f"{name}: the {what} never appeared")
                time.sleep(0.2)
                before, t0 = b.tx_packets(r1, "dn0"), time.perf_counter()
                time.sleep(window)
                after, t1 = b.tx_packets(r1, "dn0"), time.perf_counter()
                pps[name].append((after - before) / (t1 - t0))
    mr, smc = b.median(pps["mrouter"]), b.median(pps["smcroute"])
    return {"mrouter_pps": pps["mrouter"], "smcroute_pps": pps["smcroute"],
            "mrouter_median_pps": mr, "smcroute_median_pps": smc, "ratio": mr / smc,
            "window_s": window}


def bench_membership6(workdir: Path, peer: str, reps: int, leave_reps: int, rate: float,
                      block: int) -> Result:
    """bench_membership for IPv6 and mrouter: MLD join reaction, leave -> last packet."""
    with Lab.from_file(BASIC) as lab:
        bench6.enable_ipv6(lab)
        r1, sender, receiver = lab.node("r1"), lab.node("sender"), lab.node("receiver")
        daemon = b.start_mrouter(r1, workdir, mrouter_basic6(
            fast_leave=peer == "mrouter-fast-leave"), tag=peer + "6")
        member = bench6.HostMember6(receiver, "eth0")
        with b.running(daemon), bench6.Capture6(r1, "dn0") as cap:
            daemon.wait_ready()
            time.sleep(0.3)
            runs = membership_reps(
                cap, member,
                [IPv6Address(f"ff15::{block + 2:x}:{i + 1:x}") for i in range(reps)],
                lambda group: bench6.start_sender6(sender, group, rate=rate), leave_reps,
                label=f"{peer} (IPv6)", quiet_within=30.0, fresh=False)
        member.close()
    return runs


# --- 10k groups over 4 LANs -------------------------------------------------------------------

LANS = [("dn0", "192.0.2.1/26", "192.0.2.2/26"), ("dn1", "192.0.2.65/26", "192.0.2.66/26"),
        ("dn2", "192.0.2.129/26", "192.0.2.130/26"), ("dn3", "203.0.113.1/24", "203.0.113.2/24")]


def four_lans_topology() -> str:
    lines = ['description = "bench_router: sender -- r1 -- four LANs, one host each"',
             '[nodes.sender]', 'kind = "host"', 'default_route = "198.51.100.1"',
             '[nodes.r1]', 'kind = "router"']
    for k, (_, router, _host) in enumerate(LANS):
        lines += [f"[nodes.h{k}]", 'kind = "host"',
                  f'default_route = "{router.split("/")[0]}"']
    lines += ["[[links]]", "endpoints = [",
              '  { node = "sender", iface = "eth0", address = "198.51.100.2/24" },',
              '  { node = "r1", iface = "up0", address = "198.51.100.1/24" },', "]"]
    for k, (iface, router, host) in enumerate(LANS):
        lines += [f"[lans.blan{k}]", "members = [",
                  f'  {{ node = "r1", iface = "{iface}", address = "{router}" }},',
                  f'  {{ node = "h{k}", iface = "eth0", address = "{host}" }},', "]"]
    return "\n".join(lines) + "\n"


def send_reports(lab: Lab, groups: list[IPv4Address], per_packet: int = 150) -> None:
    """IGMPv3 TO_EX({}) records for each LAN's quarter of ``groups``, from its host."""
    quarter = math.ceil(len(groups) / len(LANS))
    for k, (_, _, host) in enumerate(LANS):
        node = lab.node(f"h{k}")
        src = IPv4Address(host.split("/")[0])
        mine = groups[k * quarter:(k + 1) * quarter]
        with node.enter():
            sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
        try:
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF, src.packed)
            for start in range(0, len(mine), per_packet):
                records = tuple(GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, g)
                                for g in mine[start:start + per_packet])
                packet = encode_packet(V3Report(records=records), src, ALL_V3_ROUTERS)
                sock.sendto(packet, (str(ALL_V3_ROUTERS), 0))
                time.sleep(0.001)
        finally:
            sock.close()


REFRESH_INTERVAL = 5.0  # seconds between repeats of every host's reports


def refresh_reports(lab: Lab, groups: list[IPv4Address], done: threading.Event) -> None:
    while not done.wait(REFRESH_INTERVAL):
        send_reports(lab, groups)


def upstream_joins(node: Any, iface: str) -> int:
    """Groups joined on ``iface`` in the node (/proc/net/igmp): igmpproxy's learned set."""
    count, current = 0, None
    for line in b.read_proc(node, "igmp").splitlines()[1:]:
        if not line.startswith("\t"):
            current = line.split()[1].rstrip(":") if len(line.split()) > 1 else None
        elif current == iface:
            group = IPv4Address(bytes.fromhex(line.split()[0])[::-1])  # host byte order
            count += group not in LINK_LOCAL
    return count


REPORT_ROUNDS = 3


def wait_stable(learned: Callable[[], int], count: int, deadline: float) -> int:
    """Poll ``learned()`` until it reaches ``count``, stops growing for 1 s, or the
    deadline passes; return the last value."""
    last, since = -1, time.perf_counter()
    while True:
        have, now = learned(), time.perf_counter()
        if have >= count or now > deadline:
            return have
        if have != last:
            last, since = have, now
        elif now - since > 1.0:
            return have
        time.sleep(0.05)


def learn_groups(send: Callable[[], None], learned: Callable[[], int], count: int,
                 timeout: float) -> tuple[int, int, float]:
    """Rounds of reports (``send``) until the router has ``learned`` all ``count`` groups,
    at most REPORT_ROUNDS or ``timeout`` s: (groups learned, rounds, seconds taken)."""
    t0 = time.perf_counter()
    have, rounds = 0, 0
    while have < count and rounds < REPORT_ROUNDS and time.perf_counter() - t0 < timeout:
        rounds += 1  # like hosts answering queries: missing groups come again
        send()
        have = wait_stable(learned, count, t0 + timeout)
    return have, rounds, time.perf_counter() - t0


def install_routes(entries: Callable[[], int], count: int, timeout: float
                   ) -> tuple[bool, float, int]:
    """From the first forwarding route in ``entries`` (r1's MFC) to all ``count`` (the
    sender's start-up and the first upcall are not the router's install rate): (all
    there, seconds, routes at the end)."""
    b.wait_for(lambda: entries() >= 1, 10.0, 0.001)
    t0 = time.perf_counter()
    filled = b.wait_for(lambda: entries() >= count, timeout, 0.02, max_interval=1.0)
    install_s = time.perf_counter() - t0
    return filled, install_s, entries()


def scale_result(count: int, have: int, rounds: int, learn_s: float, busy_s: float,
                 routes: int, filled: bool, install_s: float, rss_kb: tuple[int, int, int],
                 rate: float) -> Result:
    """A scale run's figures; ``rss_kb`` is VmRSS idle, once learned, with the routes."""
    rss_idle, rss_learned, rss_routes = rss_kb
    return {"groups": count, "learned": have, "all_learned": have >= count,
            "learn_s": learn_s, "report_rounds": rounds, "busy_after_learned_s": busy_s,
            "routes": routes, "all_routes": filled, "install_s": install_s,
            "install_per_s": (routes - 1) / install_s if install_s else math.nan,
            "rss_idle_mb": rss_idle / 1024, "rss_learned_mb": rss_learned / 1024,
            "rss_mb": rss_routes / 1024, "sender_pps": rate}


def bench_scale(workdir: Path, peer: str, count: int, rate: float,
                timeout: float) -> Result:
    groups = [IPv4Address("239.10.0.0") + i for i in range(count)]
    lab = b.lab_from_text(four_lans_topology(), workdir, "fourlans")
    with lab:
        r1 = lab.node("r1")
        # igmpproxy joins every group upstream from one socket: lift the per-socket cap
        # and the socket option memory those joins take (131072 B is ~2700 joins)
        r1.sysctl("net.ipv4.igmp_max_memberships", str(count + 100))
        r1.sysctl("net.core.optmem_max", str(max(131072, 512 * count)))
        downs = [iface for iface, _, _ in LANS]
        if peer == "igmpproxy":
            daemon = b.start_igmpproxy(r1, workdir, b.igmpproxy_config("up0", downs), 5,
                                       tag="igmpproxy-scale")

            def learned() -> int:
                return upstream_joins(r1, "up0")
        else:
            daemon = b.start_mrouter(r1, workdir, b.mrouter_config(
                {"up0": {}, **{d: {"igmp_version": 3} for d in downs}}), tag="mrouter-scale")
            sock = workdir / "mrouter-scale.sock"

            def learned() -> int:
                return len(request(sock, "show", timeout=30.0, what="groups"))
        with b.running(daemon):
            daemon.wait_ready()
            time.sleep(0.3)
            rss_idle = b.rss_kb(daemon.pid)
            b.progress(f"scale {peer}: sending reports for {count} groups")
            have, rounds, learn_s = learn_groups(lambda: send_reports(lab, groups), learned,
                                                 count, timeout)
            # let it finish with the reports (later rounds repeat groups it knows)
            busy_s = b.wait_idle(daemon.pid, 0.5, timeout)
            rss_learned = b.rss_kb(daemon.pid)
            b.progress(f"scale {peer}: {have} groups learned in {learn_s:.2f} s ({rounds} "
                       f"rounds of reports), busy {busy_s:.1f} s more; sending to every group")
            # The hosts keep answering queries (crafted reports have no kernel behind
            # them): without this igmpproxy ages every group out at its second query.
            stop_refresh = threading.Event()
            refresher = threading.Thread(target=refresh_reports,
                                         args=(lab, groups, stop_refresh), daemon=True)
            refresher.start()
            snd = b.start_sender(lab.node("sender"), groups[0], count=count, rate=rate)
            try:
                filled, install_s, routes = install_routes(lambda: b.forwarding_entries(r1),
                                                           count, timeout)
            finally:
                b.stop(snd)
                stop_refresh.set()
                refresher.join()
            rss_routes = b.rss_kb(daemon.pid)
            b.progress(f"scale {peer}: {routes} routes in {install_s:.2f} s")
    return scale_result(count, have, rounds, learn_s, busy_s, routes, filled, install_s,
                        (rss_idle, rss_learned, rss_routes), rate)


# --- 10k IPv6 groups over the same 4 LANs --------------------------------------------------

ADDRESSES6 = {("sender", "eth0"): "2001:db8:1::2/64", ("r1", "up0"): "2001:db8:1::1/64",
              **{pair: address for k, (iface, _, _) in enumerate(LANS)
                 for pair, address in ((("r1", iface), f"2001:db8:1{k}::1/64"),
                                       ((f"h{k}", "eth0"), f"2001:db8:1{k}::2/64"))}}
MLD_PER_PACKET = 60  # 20-byte address records: a report fits a 1500-byte MTU


def send_reports6(lab: Lab, groups: list[IPv6Address]) -> None:
    """MLDv2 TO_EX({}) records for each LAN's quarter of ``groups``, from its host's
    link-local address (RFC 3810 §5.2.13), Router Alert and hop limit 1."""
    from mrouter.mld.codec import encode_packet as encode_mld
    from mrouter.mld.messages import ALL_MLDV2_ROUTERS, AddressRecord, V2Report
    from mrouter.mld.messages import RecordType as MldRecordType
    from mrouter.sockets.mld_socket import RawIpv6Sender, link_local

    quarter = math.ceil(len(groups) / len(LANS))
    for k in range(len(LANS)):
        node = lab.node(f"h{k}")
        with node.enter():
            src = link_local("eth0", Path("/proc/thread-self/net/if_inet6"))
            sender = RawIpv6Sender()
        mine = groups[k * quarter:(k + 1) * quarter]
        try:
            for start in range(0, len(mine), MLD_PER_PACKET):
                records = tuple(AddressRecord(MldRecordType.CHANGE_TO_EXCLUDE_MODE, g)
                                for g in mine[start:start + MLD_PER_PACKET])
                sender.send(encode_mld(V2Report(records=records), src.address,
                                       ALL_MLDV2_ROUTERS), src.ifindex)
                time.sleep(0.001)
        finally:
            sender.close()


def bench_scale6(workdir: Path, count: int, rate: float, timeout: float) -> Result:
    """bench_scale for mrouter and IPv6: MLD memberships, RSS, install rate."""
    groups = [IPv6Address("ff15::a:0") + i for i in range(count)]
    lab = b.lab_from_text(four_lans_topology(), workdir, "fourlans6")
    with lab:
        bench6.enable_ipv6(lab, ADDRESSES6)
        r1 = lab.node("r1")
        downs = [iface for iface, _, _ in LANS]
        config = b.mrouter_config({"up0": {}, **{d: {"mld_version": 2} for d in downs}})
        config = config.replace('mode = "router"\n', 'mode = "router"\nfamilies = ["ipv6"]\n')
        daemon = b.start_mrouter(r1, workdir, config, tag="mrouter-scale6")
        sock = workdir / "mrouter-scale6.sock"

        def learned() -> int:
            return sum(1 for g in request(sock, "show", timeout=30.0, what="groups")
                       if g["group"].startswith("ff15:"))
        with b.running(daemon):
            daemon.wait_ready()
            time.sleep(0.3)
            rss_idle = b.rss_kb(daemon.pid)
            b.progress(f"scale6: sending MLD reports for {count} groups")
            have, rounds, learn_s = learn_groups(lambda: send_reports6(lab, groups), learned,
                                                 count, timeout)
            busy_s = b.wait_idle(daemon.pid, 0.5, timeout)
            rss_learned = b.rss_kb(daemon.pid)
            b.progress(f"scale6: {have} groups learned in {learn_s:.2f} s; sending to every "
                       "group")
            snd = bench6.start_sender6(lab.node("sender"), groups[0], count=count, rate=rate)
            try:
                filled, install_s, routes = install_routes(
                    lambda: bench6.forwarding_entries6(r1), count, timeout)
            finally:
                b.stop(snd)
            rss_routes = b.rss_kb(daemon.pid)
            b.progress(f"scale6: {routes} routes in {install_s:.2f} s")
    return scale_result(count, have, rounds, learn_s, busy_s, routes, filled, install_s,
                        (rss_idle, rss_learned, rss_routes), rate)


# --- report -------------------------------------------------------------------------------

def fmt(value: float, digits: int = 2) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) \
        else f"{value:.{digits}f}"


def ratio(value: float) -> str:
    return "-" if math.isnan(value) or math.isinf(value) else f"{value:.3g}"


def verdict(ok: bool | None, text: str) -> str:
    mark = "n/a " if ok is None else ("PASS" if ok else "MISS")
    return f"[{mark}] {text}"


def leave_verdicts(lv: Result, what: str, timers: str) -> list[str]:
    """The two leave verdicts on mrouter's worst leave -> last packet: default timers
    within ``timers`` (count x interval, RFC defaults) + 50 ms, fast leave under 20 ms."""
    default = lv.get("mrouter", {}).get("leave_max_ms", math.nan)
    limit = LMQC * LMQI * 1000 + 50
    fast = lv.get("mrouter-fast-leave", {}).get("leave_max_ms", math.nan)
    return [verdict(None if math.isnan(default) else default <= limit,
                    f"{what}, default timers: worst {fmt(default, 1)} ms <= "
                    f"{timers} + 50 ms = {limit:.0f} ms"),
            verdict(None if math.isnan(fast) else fast < 20,
                    f"{what}, fast leave: worst {fmt(fast, 1)} ms < 20 ms")]


def report(results: Result) -> str:
    rows: list[tuple[str, str, str, str]] = []
    verdicts: list[str] = []
    if "start" in results:
        r = results["start"]
        rows.append(("start -> ready (s, median)", fmt(r["mrouter_median_s"], 3),
                     fmt(r["smcroute_median_s"], 3) + " smcroute", ratio(r["ratio"])))
        verdicts.append(verdict(r["mrouter_median_s"] < 0.3,
                                f"start to ready {r['mrouter_median_s']:.3f} s < 0.3 s"))
    if "forward" in results:
        r = results["forward"]
        rows.append(("forwarding (packets/s, median)", f"{r['mrouter_median_pps']:,.0f}",
                     f"{r['smcroute_median_pps']:,.0f} smcroute", ratio(r["ratio"])))
        verdicts.append(verdict(r["ratio"] >= 0.98,
                                f"forwarding ratio vs smcroute {r['ratio']:.3f} >= 0.98"))
    if "join" in results:
        j = results["join"]
        mr, ip = j.get("mrouter", {}), j.get("igmpproxy", {})
        for label, key in (("join reaction p50 (ms, wire)", "reaction_p50_ms"),
                           ("join reaction p90 (ms, wire)", "reaction_p90_ms"),
                           ("report -> first fresh packet p50 (ms)", "fresh_reaction_p50_ms"),
                           ("join call -> first packet p50 (ms)", "call_to_first_p50_ms")):
            mv, iv = mr.get(key, math.nan), ip.get(key, math.nan)
            rows.append((label, fmt(mv, 3), fmt(iv, 3) + " igmpproxy", ratio(mv / iv)))
        p50 = mr.get("reaction_p50_ms", math.nan)
        verdicts.append(verdict(None if math.isnan(p50) else p50 < 0.5,
                                f"join reaction p50 {fmt(p50, 3)} ms < 0.5 ms"))
    if "leave" in results:
        lv = results["leave"]
        for key, peer, label in (
                ("mrouter", "igmpproxy", "leave -> last packet p50 (ms), default timers"),
                ("mrouter-fast-leave", "igmpproxy-quickleave",
                 "leave -> last packet p50 (ms), fast leave")):
            mv = lv.get(key, {}).get("leave_p50_ms", math.nan)
            ip = lv.get(peer, {}).get("leave_p50_ms", math.nan)
            name = "igmpproxy" if peer == "igmpproxy" else "quickleave"
            rows.append((label, fmt(mv, 1), f"{fmt(ip, 1)} {name}", ratio(mv / ip)))
        verdicts += leave_verdicts(lv, "leave", "LMQC x LMQI")
    if "scale" in results:
        s = results["scale"]
        mr, ip = s.get("mrouter", {}), s.get("igmpproxy", {})
        n = mr.get("groups") or ip.get("groups")
        for label, key, digits in (
                (f"{n} groups: VmRSS after routes (MB)", "rss_mb", 1),
                (f"{n} groups: VmRSS idle (MB)", "rss_idle_mb", 1),
                (f"{n} groups: reports -> all learned (s)", "learn_s", 2),
                (f"{n} groups: route installs (routes/s)", "install_per_s", 0),
                (f"{n} groups: forwarding routes in MFC", "routes", 0)):
            mv, iv = mr.get(key, math.nan), ip.get(key, math.nan)
            rows.append((label, fmt(mv, digits), fmt(iv, digits) + " igmpproxy",
                         ratio(mv / iv) if iv else "-"))
        if mr:
            complete = mr["all_routes"] and mr["all_learned"]
            verdicts.append(verdict(mr["rss_mb"] < 80 and complete,
                                    f"{n} groups: RSS {mr['rss_mb']:.1f} MB < 80 MB"
                                    + ("" if complete else " (not all groups/routes!)")))
            verdicts.append(verdict(mr["install_per_s"] >= 5000 and complete,
                                    f"{n} groups: route install {mr['install_per_s']:,.0f}/s"
                                    " >= 5k/s"))
    if "forward6" in results:
        r = results["forward6"]
        rows.append(("IPv6 forwarding (packets/s, median)", f"{r['mrouter_median_pps']:,.0f}",
                     f"{r['smcroute_median_pps']:,.0f} smcroute", ratio(r["ratio"])))
        verdicts.append(verdict(r["ratio"] >= 0.98,
                                f"IPv6 forwarding ratio vs smcroute {r['ratio']:.3f} >= 0.98"))
    if "join6" in results:
        # next to IGMP's figure of the same run (when join ran too)
        igmp = results.get("join", {}).get("mrouter", {})
        mld = results["join6"]
        for label, key in (("MLD join reaction p50 (ms, wire)", "reaction_p50_ms"),
                           ("MLD join reaction p90 (ms, wire)", "reaction_p90_ms"),
                           ("MLD join call -> first packet p50 (ms)", "call_to_first_p50_ms")):
            mv, iv = mld.get(key, math.nan), igmp.get(key, math.nan)
            rows.append((label, fmt(mv, 3), fmt(iv, 3) + " IGMP", ratio(mv / iv)))
    if "leave6" in results:
        lv = results["leave6"]
        for key, label in (("mrouter", "MLD leave -> last packet p50 (ms), default timers"),
                           ("mrouter-fast-leave", "MLD leave -> last packet p50 (ms), fast "
                            "leave")):
            mv = lv.get(key, {}).get("leave_p50_ms", math.nan)
            iv = results.get("leave", {}).get(key, {}).get("leave_p50_ms", math.nan)
            rows.append((label, fmt(mv, 1), f"{fmt(iv, 1)} IGMP", ratio(mv / iv)))
        verdicts += leave_verdicts(lv, "MLD leave", "LLQC x LLQI")
    if "scale6" in results:
        m6 = results["scale6"]
        m4 = results.get("scale", {}).get("mrouter", {})
        n = m6["groups"]
        for label, key, digits in (
                (f"{n} IPv6 groups: VmRSS after routes (MB)", "rss_mb", 1),
                (f"{n} IPv6 groups: reports -> all learned (s)", "learn_s", 2),
                (f"{n} IPv6 groups: route installs (routes/s)", "install_per_s", 0),
                (f"{n} IPv6 groups: forwarding routes in MFC", "routes", 0)):
            mv, iv = m6.get(key, math.nan), m4.get(key, math.nan)
            rows.append((label, fmt(mv, digits), fmt(iv, digits) + " IPv4",
                         ratio(mv / iv) if iv else "-"))
        complete = m6["all_routes"] and m6["all_learned"]
        verdicts.append(verdict(m6["rss_mb"] < 80 and complete,
                                f"{n} IPv6 groups: RSS {m6['rss_mb']:.1f} MB < 80 MB"
                                + ("" if complete else " (not all groups/routes!)")))
    width = max(len(r[0]) for r in rows) if rows else 10
    lines = [f"{'measure':{width}}  {'mrouter':>12}  {'peer':>22}  {'ratio':>6}",
             "-" * (width + 48)]
    lines += [f"{a:{width}}  {m:>12}  {p:>22}  {r:>6}" for a, m, p, r in rows]
    return "\n".join([*lines, "", *verdicts])


def finite(value: Any) -> Any:
    """``value`` with NaN (not measured) as None, so the JSON is standard."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [finite(v) for v in value]
    return value


SECTIONS = ("start", "forward", "join", "leave", "scale", "forward6", "join6", "leave6",
            "scale6")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, fewer reps")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--save", metavar="FILE", help="also write the JSON results here")
    parser.add_argument("--only", nargs="+", choices=SECTIONS, default=list(SECTIONS),
                        help="run only these parts (join and leave share their runs)")
    parser.add_argument("--rate", type=float, default=5000.0,
                        help="sender packets/s for join and leave (default 5000)")
    parser.add_argument("--reps", type=int, help="join reps per peer (20; quick 5)")
    parser.add_argument("--leave-reps", type=int,
                        help="leave reps for mrouter, default timers and fast leave (5; quick 2)")
    parser.add_argument("--peer-leave-reps", type=int,
                        help="leave reps for igmpproxy, 9-26 s each (2; quick 1; 0 skips)")
    parser.add_argument("--groups", type=int, help="groups for scale (10000; quick 400)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="scale: seconds a daemon gets to learn, and to install (60)")
    parser.add_argument("--senders", type=int, default=1,
                        help="sender processes for the forwarding test (default 1)")
    args = parser.parse_args()
    q = args.quick
    reps = args.reps or (5 if q else 20)
    leave_reps = args.leave_reps if args.leave_reps is not None else (2 if q else 5)
    groups = args.groups or (400 if q else 10000)

    results: Result = {"quick": q}
    with tempfile.TemporaryDirectory(prefix="bench_router.") as tmp:
        workdir = Path(tmp)
        if "start" in args.only:
            b.progress("start to ready: mrouter vs smcroute")
            results["start"] = bench_start(workdir, 3 if q else 10)
        if "forward" in args.only:
            b.progress("forwarding: mrouter vs smcroute")
            results["forward"] = bench_forward(workdir, 2 if q else 6, 0.5 if q else 2.0,
                                               args.senders)
        if "join" in args.only or "leave" in args.only:
            want_leave = "leave" in args.only
            runs = {}
            peer_leaves = args.peer_leave_reps if args.peer_leave_reps is not None \
                else (1 if q else 2)
            peers = [("mrouter", leave_reps), ("igmpproxy", peer_leaves)]
            if want_leave:  # fast leave: join reps only as many as leave reps
                peers += [("mrouter-fast-leave", leave_reps),
                          ("igmpproxy-quickleave", peer_leaves)]
            for block, (peer, lreps) in enumerate(peers):
                if lreps == 0 and peer.endswith("leave"):
                    continue
                b.progress(f"join/leave: {peer}")
                runs[peer] = bench_membership(workdir, peer, reps if block < 2 else lreps,
                                              lreps if want_leave else 0, args.rate, block)
            if "join" in args.only:
                results["join"] = {p: runs[p] for p in ("mrouter", "igmpproxy")}
            if want_leave:
                results["leave"] = runs
            results["rate_pps"] = args.rate
        if "forward6" in args.only:
            b.progress("IPv6 forwarding: mrouter vs smcroute")
            results["forward6"] = bench_forward6(workdir, 2 if q else 6, 0.5 if q else 2.0,
                                                 args.senders)
        if "join6" in args.only or "leave6" in args.only:
            want_leave = "leave6" in args.only
            runs6 = {}
            peers6 = [("mrouter", leave_reps)]
            if want_leave:
                peers6.append(("mrouter-fast-leave", leave_reps))
            for block, (peer, lreps) in enumerate(peers6):
                b.progress(f"join/leave IPv6: {peer}")
                runs6[peer] = bench_membership6(workdir, peer, reps if block == 0 else lreps,
                                                lreps if want_leave else 0, args.rate, block)
            if "join6" in args.only:
                results["join6"] = runs6["mrouter"]
            if want_leave:
                results["leave6"] = runs6
        if "scale6" in args.only:
            b.progress(f"scale6: mrouter, {groups} IPv6 groups")
            results["scale6"] = bench_scale6(workdir, groups, 20000.0 if q else 50000.0,
                                             args.timeout)
        if "scale" in args.only:
            results["scale"] = {}
            for peer in ("mrouter", "igmpproxy"):
                b.progress(f"scale: {peer}, {groups} groups")
                results["scale"][peer] = bench_scale(workdir, peer, groups,
                                                     20000.0 if q else 50000.0, args.timeout)
    results["machine"] = {"cores": os.cpu_count(), "load_1min": os.getloadavg()[0],
                          "kernel": os.uname().release}
    if args.save:
        Path(args.save).write_text(json.dumps(finite(results), indent=1) + "\n")
    if args.json:
        print(json.dumps(finite(results)))
    else:
        print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
