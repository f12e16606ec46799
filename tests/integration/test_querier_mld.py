"""``mrouter querier --mld`` on r1 of lan.toml against real Linux hosts (kernel MLDv2 and
MLDv1).

What a user sees: a host that joins an ff15::/16 group is a member for the querier
within 1.5 s; its leave ends the membership within the last-listener query time
(LLQC x LLQI = 2 s by default, plus slack); a source-specific join is INCLUDE of that
source; a host forced to MLDv1 is handled in MLDv1 compatibility mode (its Done ends the
membership the same way); and the host's kernel answers the querier's queries, which it
does only for valid MLD (link-local source, hop limit 1, Router Alert).

The lab namespaces start with IPv6 off (lan.toml); each test turns it on for the LAN's
interfaces with DAD off, so that their link-local addresses are usable at once, and
joins with plain IPv6 sockets inside the host's namespace.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv6Address

import pytest
from querier_lab import Querier

from mrouter.lab.lab import Lab, Node

pytestmark = pytest.mark.netns

G1, G2 = "ff15::1:1", "ff15::2:2"
SRC = "2001:db8:1::2"
JOIN_WITHIN = 1.5  # issue 13
LLQT = 2.0  # Last Listener Query Count x Interval (RFC 3810 §9.14 defaults)
SLACK = 0.5

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


@pytest.fixture
def lan(lab_factory: Callable[..., Lab]) -> Iterator[Lab]:
    lab = lab_factory("lan.toml")
    enable_ipv6(lab.node("r1"), "dn0")
    for host in ("h1", "h2"):
        enable_ipv6(lab.node(host), "eth0")
    listeners: list[Listener] = []
    lab.listeners = listeners  # type: ignore[attr-defined]
    try:
        yield lab
    finally:
        for listener in listeners:
            listener.close()


def listener(lab: Lab, host: str) -> Listener:
    one = Listener(lab.node(host))
    lab.listeners.append(one)  # type: ignore[attr-defined]
    return one


def test_join_within_1_5_s_and_leave_within_the_last_listener_query_time(lan: Lab) -> None:
    querier = Querier(lan.node("r1"), "dn0", "--mld")
    h1 = listener(lan, "h1")
    joined_at = h1.join(G1)
    joined = querier.membership(G1, 5.0)
    assert joined is not None, "the join was not seen"
    assert joined["time"] - joined_at <= JOIN_WITHIN
    assert (joined["family"], joined["filter_mode"], joined["sources"]) == (
        "ipv6", "EXCLUDE", [])

    time.sleep(1.0)  # the host's repeated reports are out
    querier.events.drain(0)
    left_at = h1.leave(G1)
    gone = querier.membership(G1, LLQT + 3.0)
    assert gone is not None, "the leave did not end the membership"
    assert (gone["filter_mode"], gone["sources"]) == ("INCLUDE", [])
    # the host's TO_IN({}) goes out at once; the router queries LLQC times, LLQI apart
    assert LLQT - 0.3 <= gone["time"] - left_at <= LLQT + SLACK
    sent = [e for e in querier.events.drain(0) if e["event"] == "query"]
    assert [(q["group"], q["version"], q["max_resp"]) for q in sent] == [(G1, 2, 1.0)] * 2


def test_a_source_specific_join_is_include_of_that_source(lan: Lab) -> None:
    querier = Querier(lan.node("r1"), "dn0", "--mld")
    joined_at = listener(lan, "h1").join_source(G2, SRC)
    joined = querier.membership(G2, 5.0)
    assert joined is not None and joined["time"] - joined_at <= JOIN_WITHIN
    assert (joined["filter_mode"], joined["sources"]) == ("INCLUDE", [SRC])


def test_a_host_forced_to_mldv1_is_handled_in_mldv1_compatibility_mode(lan: Lab) -> None:
    h1 = lan.node("h1")
    h1.sysctl("net.ipv6.conf.eth0.force_mld_version", 1)
    querier = Querier(lan.node("r1"), "dn0", "--mld")
    m = listener(lan, "h1")
    joined_at = m.join(G1)
    joined = querier.membership(G1, 5.0)
    assert joined is not None and joined["time"] - joined_at <= JOIN_WITHIN
    assert (joined["filter_mode"], joined["sources"]) == ("EXCLUDE", [])
    group = next(g for g in querier.groups()["groups"] if g["group"] == G1)
    assert group["compat_mode"] == 1 and group["v1_host_present"] > 250
    assert [h["host"] for h in group["hosts"]] == [_link_local(h1, "eth0")]

    time.sleep(1.0)
    querier.events.drain(0)
    left_at = m.leave(G1)  # an MLDv1 Done to ff02::2
    gone = querier.membership(G1, LLQT + 3.0)
    assert gone is not None and (gone["filter_mode"], gone["sources"]) == ("INCLUDE", [])
    assert gone["time"] - left_at <= LLQT + SLACK


def test_hosts_answer_the_queriers_queries(lan: Lab) -> None:
    """A Linux host answers only valid MLD queries (RFC 3810 §5.1.14: link-local source;
    hop limit 1; Router Alert): h2's membership, made before the querier started and
    reported only then, is learnt from its answer to a general query."""
    h2 = lan.node("h2")
    listener(lan, "h2").join(G2)
    time.sleep(2.5)  # the unsolicited reports are over before the querier starts
    querier = Querier(lan.node("r1"), "dn0", "--mld", "--query-response-interval", "1")
    answered = querier.membership(G2, 3.0)
    assert answered is not None and answered["filter_mode"] == "EXCLUDE"
    group = next(g for g in querier.groups()["groups"] if g["group"] == G2)
    assert [h["host"] for h in group["hosts"]] == [_link_local(h2, "eth0")]


def _link_local(node: Node, iface: str) -> str:
    for line in node.run(["cat", "/proc/net/if_inet6"], check=True).stdout.splitlines():
        parts = line.split()
        if parts[5] == iface and parts[0].startswith("fe80"):
            return str(IPv6Address(int(parts[0], 16)))
    raise AssertionError(f"{node.name} {iface} has no link-local address")
