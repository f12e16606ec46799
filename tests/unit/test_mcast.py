"""mrouter.sockets.mcast without a network: parsing the kernel's tables, validation and messages.

Joins send IGMP reports, so every test that joins lives in tests/integration/; the
socket options used here (TTL, loop) send nothing.
"""

from __future__ import annotations

import asyncio
import errno
import socket
from ipaddress import IPv4Address, IPv4Interface

import pytest

from mrouter.errors import McastError, MrouterError
from mrouter.sockets.mcast import (
    IfFlag,
    Interface,
    McastSocket,
    Op,
    as_group,
    as_source,
    check_ttl,
    explain,
    interface,
    interface_by_address,
    interfaces,
    parse_igmp,
    parse_mcfilter,
)

# Captured from a namespace: two sockets on 239.1.1.2 (users 2), one with sources.
PROC_IGMP = (
    "Idx\tDevice    : Count Querier\tGroup    Users Timer\tReporter\n"
    "1\tlo        :     3      V3\n"
    "\t\t\t\t020101EF     2 0:00000000\t\t0\n"
    "\t\t\t\t010101EF     1 0:00000000\t\t0\n"
    "\t\t\t\t010000E0     1 0:00000000\t\t0\n"
    "7\tverylongname0:     1      V2\n"
    "\t\t\t\t050101EF     1 1:0000000A\t\t1\n"
)
PROC_MCFILTER = (
    "Idx Device        MCA        SRC    INC    EXC\n"
    "  1     lo 0xef010102 0xc6336409      0      1\n"
    "  1     lo 0xef010101 0xc6336402      1      0\n"
    "  1     lo 0xef010101 0xc6336403      1      0\n"
)


def test_proc_net_igmp_is_read_per_interface_with_users() -> None:
    table = parse_igmp(PROC_IGMP, byteorder="little")
    assert [(t.ifindex, t.name, t.igmp_version) for t in table] == [
        (1, "lo", 3), (7, "verylongname0", 2)]
    lo = table[0]
    assert [(str(g.group), g.users) for g in lo.groups] == [
        ("239.1.1.2", 2), ("239.1.1.1", 1), ("224.0.0.1", 1)]
    pending = table[1].groups[0]
    assert pending.group == IPv4Address("239.1.1.5")
    assert pending.report_pending and pending.report_in == 0.1 and pending.reporter


def test_proc_net_mcfilter_gives_sources_with_include_and_exclude_counts() -> None:
    filters = parse_mcfilter(PROC_MCFILTER)
    g1 = filters[(1, IPv4Address("239.1.1.1"))]
    assert [(str(f.source), f.include, f.exclude) for f in g1] == [
        ("198.51.100.2", 1, 0), ("198.51.100.3", 1, 0)]
    (blocked,) = filters[(1, IPv4Address("239.1.1.2"))]
    assert (str(blocked.source), blocked.include, blocked.exclude) == ("198.51.100.9", 0, 1)


def test_empty_tables_parse_to_nothing() -> None:
    assert parse_igmp(PROC_IGMP.splitlines()[0] + "\n") == []
    assert parse_mcfilter(PROC_MCFILTER.splitlines()[0] + "\n") == {}


@pytest.mark.parametrize("text", ["10.1.1.1", "192.0.2.1", "255.255.255.255", "0.0.0.0"])
def test_a_unicast_group_is_refused_naming_the_multicast_range(text: str) -> None:
    with pytest.raises(McastError, match=rf"{text} is not a multicast group.*224\.0\.0\.0/4"):
        as_group(text)


def test_a_group_that_is_no_address_says_so() -> None:
    with pytest.raises(McastError, match=r"'239\.1\.1' is not an IPv4 address"):
        as_group("239.1.1")


@pytest.mark.parametrize("text", ["239.1.1.1", "0.0.0.0"])
def test_a_source_must_be_a_unicast_sender(text: str) -> None:
    with pytest.raises(McastError, match="not a unicast address"):
        as_source(text)


@pytest.mark.parametrize("ttl", [-1, 256, 1000])
def test_ttl_out_of_range_names_the_range(ttl: int) -> None:
    with pytest.raises(McastError, match=rf"TTL {ttl} is out of range.*0\.\.255"):
        check_ttl(ttl)


def test_ttl_is_checked_before_the_kernel_sees_it() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as raw:
        sock = McastSocket(raw)
        sock.ttl = 255
        with pytest.raises(McastError, match="TTL 256 is out of range"):
            sock.ttl = 256
        assert sock.ttl == 255


def test_socket_defaults_are_the_howto_defaults() -> None:
    # HOWTO ch. 6: loopback is enabled by default; TTL defaults to 1.
    with McastSocket() as sock:
        assert sock.loop is True
        assert sock.ttl == 1
        assert sock.multicast_all is True  # Linux's default, which recv turns off
        sock.loop = False
        sock.multicast_all = False
        assert (sock.loop, sock.multicast_all) == (False, False)
        assert sock.interface.is_default


IFACES = [
    Interface("lo", 1, IfFlag.UP | IfFlag.LOOPBACK, (IPv4Interface("127.0.0.1/8"),)),
    Interface("up0", 2, IfFlag.UP | IfFlag.MULTICAST, (IPv4Interface("198.51.100.1/24"),)),
    Interface("dn0", 3, IfFlag.UP | IfFlag.MULTICAST | IfFlag.BROADCAST,
              (IPv4Interface("192.0.2.1/24"),)),
]


def test_interfaces_are_found_by_name_index_or_digits() -> None:
    assert interface("dn0", among=IFACES).index == 3
    assert interface(2, among=IFACES).name == "up0"
    assert interface("2", among=IFACES).name == "up0"


def test_an_unknown_interface_lists_the_known_ones() -> None:
    with pytest.raises(McastError, match=r"unknown interface 'eth9'.*lo, up0, dn0"):
        interface("eth9", among=IFACES)


def test_an_address_nobody_holds_lists_the_addresses_here() -> None:
    assert interface_by_address("192.0.2.1", among=IFACES).name == "dn0"
    with pytest.raises(McastError, match=r"no interface has the address 10\.0\.0\.1.*"
                                         r"192\.0\.2\.1 \(dn0\)"):
        interface_by_address("10.0.0.1", among=IFACES)


def test_interface_flags_read_as_the_seed_names_them() -> None:
    dn0 = IFACES[2]
    assert dn0.is_up and dn0.is_multicast and not dn0.is_loopback
    assert dn0.flag_names() == ["UP", "BROADCAST", "MULTICAST"]
    assert dn0.to_json()["addresses"] == ["192.0.2.1/24"]
    assert IFACES[0].is_loopback and not IFACES[0].is_multicast


def test_membership_limit_message_names_the_sysctl_its_value_and_the_fix() -> None:
    msg = explain(Op.JOIN, errno.ENOBUFS, group="239.1.1.21", where="eth0", count=20,
                  max_memberships="20")
    assert msg == (
        "cannot join 239.1.1.21 on eth0: this socket already holds 20 memberships, the limit "
        "set by net.ipv4.igmp_max_memberships (currently 20); raise it with sysctl -w "
        "net.ipv4.igmp_max_memberships=N or spread the groups over more sockets")


@pytest.mark.parametrize(("op", "err", "expected"), [
    (Op.JOIN, errno.EADDRINUSE, "already joined it"),
    (Op.LEAVE, errno.EADDRNOTAVAIL, "has not joined it"),
    (Op.BLOCK, errno.ENOBUFS, "net.ipv4.igmp_max_msf"),
    (Op.BIND, errno.EACCES, "CAP_NET_BIND_SERVICE"),
    (Op.SET_OPTION, errno.EPERM, "not permitted"),
    (Op.SEND, errno.ENETUNREACH, "--iface"),
    (Op.JOIN, errno.ETIMEDOUT, "Connection timed out (ETIMEDOUT)"),  # no entry: errno text
])
def test_each_errno_gets_its_cause_and_fix(op: Op, err: int, expected: str) -> None:
    fields = {"group": "239.1.1.1", "where": "eth0", "port": 5000, "source": "198.51.100.2",
              "count": 3, "max_memberships": "20", "max_msf": "10", "source_count": 10,
              "joined": "it holds 239.1.1.1 on eth0", "ssm_note": "", "option": "IP_TTL",
              "unprivileged_port": "1024", "no_device": "eth0 does not exist"}
    msg = explain(op, err, **fields)
    assert expected in msg
    assert "?" not in msg.replace("?)", "")  # every field the message uses was filled in


def test_mcast_errors_belong_to_the_one_family() -> None:
    assert issubclass(McastError, MrouterError)


def test_interfaces_can_be_listed_from_inside_an_asyncio_loop() -> None:
    # pyroute2 runs an event loop of its own; a daemon's coroutine must still get an answer.
    async def from_a_coroutine() -> list[str]:
        return [i.name for i in interfaces()]

    assert asyncio.run(from_a_coroutine()) == [i.name for i in interfaces()]
