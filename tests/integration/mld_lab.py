"""Helpers for the MLD lab tests: IPv6 on a lab interface, a listener socket on a host."""

from __future__ import annotations

import socket
import struct
import time
from ipaddress import IPv6Address

from mrouter.lab.lab import Node

IPV6_JOIN_GROUP, IPV6_LEAVE_GROUP = 20, 21
MCAST_JOIN_SOURCE_GROUP, MCAST_LEAVE_SOURCE_GROUP = 46, 47
IPV6_MREQ = struct.Struct("=16si")
SOCKADDR_IN6 = struct.Struct("=HHI16sI")  # family, port, flowinfo, address, scope id
SOCKADDR_STORAGE = 128


def group_source_req(ifindex: int, group: str, source: str) -> bytes:
    """struct group_source_req: u32 interface (+4 padding), two sockaddr_storage."""
    def storage(address: str) -> bytes:
        sin6 = SOCKADDR_IN6.pack(socket.AF_INET6, 0, 0, IPv6Address(address).packed, 0)
        return sin6.ljust(SOCKADDR_STORAGE, b"\0")
    return struct.pack("=I4x", ifindex) + storage(group) + storage(source)


def enable_ipv6(node: Node, iface: str) -> None:
    """IPv6 on ``iface`` with DAD off, and wait for its link-local address."""
    node.sysctl(f"net.ipv6.conf.{iface}.accept_dad", 0)
    node.sysctl(f"net.ipv6.conf.{iface}.disable_ipv6", 0)
    deadline = time.monotonic() + 5.0
    while time.monotonic() < deadline:
        lines = node.run(["cat", "/proc/net/if_inet6"], check=True).stdout.splitlines()
        if any(line.split()[5] == iface and line.startswith("fe80")
               and not int(line.split()[4], 16) & 0x40 for line in lines):
            return
        time.sleep(0.05)
    raise AssertionError(f"{node.name} {iface}: no usable link-local address")


class Listener:
    """An IPv6 UDP socket on a host that joins and leaves groups (kernel MLD reports)."""

    def __init__(self, node: Node, iface: str = "eth0") -> None:
        with node.enter():
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        self.ifindex = node.ifindex(iface)

    def join(self, group: str) -> float:
        at = time.time()
        mreq = IPV6_MREQ.pack(IPv6Address(group).packed, self.ifindex)
        self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_JOIN_GROUP, mreq)
        return at

    def leave(self, group: str) -> float:
        at = time.time()
        mreq = IPV6_MREQ.pack(IPv6Address(group).packed, self.ifindex)
        self.sock.setsockopt(socket.IPPROTO_IPV6, IPV6_LEAVE_GROUP, mreq)
        return at

    def join_source(self, group: str, source: str) -> float:
        at = time.time()
        self.sock.setsockopt(socket.IPPROTO_IPV6, MCAST_JOIN_SOURCE_GROUP,
                             group_source_req(self.ifindex, group, source))
        return at

    def close(self) -> None:
        self.sock.close()


def link_local_of(node: Node, iface: str) -> str:
    """The link-local address of ``iface`` in ``node``."""
    for line in node.run(["cat", "/proc/net/if_inet6"], check=True).stdout.splitlines():
        parts = line.split()
        if parts[5] == iface and parts[0].startswith("fe80"):
            return str(IPv6Address(int(parts[0], 16)))
    raise AssertionError(f"{node.name} {iface} has no link-local address")


def set_link_local(node: Node, iface: str, address: str) -> None:
    """IPv6 on ``iface`` with only ``address`` as its link-local address (no generated
    one, no DAD), so that a test knows who wins an election."""
    node.sysctl(f"net.ipv6.conf.{iface}.addr_gen_mode", 1)  # none
    node.sysctl(f"net.ipv6.conf.{iface}.accept_dad", 0)
    node.sysctl(f"net.ipv6.conf.{iface}.disable_ipv6", 0)
    node.run(["ip", "-6", "addr", "add", f"{address}/64", "dev", iface, "nodad"], check=True)
