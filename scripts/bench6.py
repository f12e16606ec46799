"""IPv6 pieces of the router benchmark (scripts/bench_router.py): the same topology
(netns/basic.toml) with IPv6 turned on beside IPv4, an IPv6 sender, a wire capture that
reads MLD and forwarded IPv6 data, a host that joins and leaves IPv6 groups, and the
kernel's IPv6 MFC as /proc shows it.

basic.toml starts with IPv6 off (an IPv4-only lab); :func:`enable_ipv6` gives each link
the addresses of netns/dual-stack.toml's first link and router (2001:db8:1::/64 up,
2001:db8:2::/64 down), without duplicate address detection so they are usable at once.
"""

from __future__ import annotations

import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Any

import benchlib as b

from mrouter.errors import MrouterError
from mrouter.mld.codec import decode_packet
from mrouter.mld.messages import V1Done, V1Report, V2Report

SOURCE6 = "2001:db8:1::2"
IP_PROTO_UDP = 17
ETHERTYPE_IPV6 = b"\x86\xdd"
IPV6_JOIN_GROUP, IPV6_LEAVE_GROUP = socket.IPV6_JOIN_GROUP, socket.IPV6_LEAVE_GROUP

ADDRESSES = {("sender", "eth0"): "2001:db8:1::2/64", ("r1", "up0"): "2001:db8:1::1/64",
             ("r1", "dn0"): "2001:db8:2::1/64", ("receiver", "eth0"): "2001:db8:2::2/64"}


def enable_ipv6(lab: Any, addresses: dict[tuple[str, str], str] | None = None) -> None:
    """IPv6 on for the lab's interfaces (and r1 a forwarding IPv6 router), with global
    addresses that skip DAD; link-local ones come at once too."""
    for (node, iface), address in (addresses or ADDRESSES).items():
        where = lab.node(node)
        where.sysctl(f"net.ipv6.conf.{iface}.accept_dad", 0)
        where.sysctl(f"net.ipv6.conf.{iface}.disable_ipv6", 0)
        where.run(["ip", "-6", "addr", "add", address, "dev", iface, "nodad"], check=True)
    lab.node("r1").sysctl("net.ipv6.conf.all.forwarding", 1)
    time.sleep(0.1)


_SENDER6 = r"""
import socket, sys, time
from ipaddress import IPv6Address
base, count, rate, port, size, ifindex = (IPv6Address(sys.argv[1]), int(sys.argv[2]),
    float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]))
dests = [(str(base + i), port, 0, 0) for i in range(count)]
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 8)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, 0)
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
""" + b.SEND_LOOP


def start_sender6(node: Any, group: IPv6Address, *, count: int = 1, rate: float = 0.0,
                  size: int = 64, iface: str = "eth0") -> subprocess.Popen[str]:
    """benchlib.start_sender for IPv6: hop limit 8, out of ``iface``."""
    proc: subprocess.Popen[str] = node.spawn(
        [sys.executable, "-c", _SENDER6, str(group), str(count), str(rate),
         str(b.DATA_PORT), str(size), str(node.ifindex(iface))],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc


def mld_events(msg: object) -> list[tuple[str, IPv6Address]]:
    """("join"|"leave", group) for each membership change a host's MLD message states."""
    if isinstance(msg, V1Report):
        return [("join", msg.group)]
    if isinstance(msg, V1Done):
        return [("leave", msg.group)]
    if isinstance(msg, V2Report):
        return b.record_events(msg.records)
    return []


@dataclass
class Capture6(b.Capture):
    """benchlib.Capture for IPv6: MLD membership events and forwarded IPv6 data (the
    group keys are IPv6Address; the methods are Capture's)."""

    def _frame(self, frame: bytes, stamp: int, outgoing: bool) -> None:
        if len(frame) < 54 or frame[12:14] != ETHERTYPE_IPV6:
            return
        ip = frame[14:]
        next_header = ip[6]
        if next_header == IP_PROTO_UDP and outgoing:
            group: Any = IPv6Address(ip[24:40])
            sent = int.from_bytes(ip[48:56], "big")
            with self._lock:
                seen = self.data.get(group)
                if seen is None:
                    seen = self.data[group] = b.GroupData(stamp, stamp, 0)
                seen.last_ns = stamp
                seen.count += 1
                if len(seen.early) < b.EARLY_KEPT:
                    seen.early.append((stamp, sent))
        elif next_header in (0, 58):  # MLD: after a Hop-by-Hop header (Router Alert)
            total = 40 + int.from_bytes(ip[4:6], "big")
            try:
                msg = decode_packet(ip[:total]).mld
            except MrouterError:
                return
            events = [b.IgmpEvent(stamp, kind, g, outgoing)  # type: ignore[arg-type]
                      for kind, g in mld_events(msg)]
            with self._lock:
                self.igmp.extend(events)


class HostMember6:
    """benchlib.HostMember for IPv6 (IPV6_JOIN_GROUP/IPV6_LEAVE_GROUP on one interface)."""

    def __init__(self, node: Any, iface: str) -> None:
        self.ifindex = node.ifindex(iface)
        with node.enter():
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)

    def _mreq(self, group: IPv6Address) -> bytes:
        return struct.pack("16sI", group.packed, self.ifindex)

    def join(self, group: IPv6Address) -> int:
        stamp = time.time_ns()
        self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_JOIN_GROUP, self._mreq(group))
        return stamp

    def leave(self, group: IPv6Address) -> int:
        stamp = time.time_ns()
        self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_LEAVE_GROUP, self._mreq(group))
        return stamp

    def close(self) -> None:
        self.sock.close()


def forwarding_entries6(node: Any) -> int:
    """IPv6 MFC entries that forward somewhere (/proc/net/ip6_mr_cache: Group Origin Iif
    Pkts Bytes Wrong Oifs; an unresolved entry has Iif 65535 and no oifs)."""
    count = 0
    for line in b.read_proc(node, "ip6_mr_cache").splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 7 and parts[2] != "65535":
            count += 1
    return count
