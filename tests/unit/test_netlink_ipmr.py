"""Parsing the kernel's RTNL_FAMILY_IPMR dumps (captured from Linux 6.18 in a lab node).

Table 100 held VIF 0 on up0 (ifindex 2) and VIF 1 on dn0 (ifindex 101) and one route
(198.51.100.2, 239.1.1.1) from VIF 0 to VIF 1 with TTL threshold 3; the default table
(253) had no VIF. `ip mroute show table all` agreed.
"""

from __future__ import annotations

from ipaddress import IPv4Address

from mrouter.linux import netlink

DEFAULT_TABLE_LINK = bytes.fromhex(
    "8000000000000000000000000000000038001a0008000100fd000000080002000000000008000300ffffffff"
    "05000400000000000500050000000000050007000000000004000600")
TABLE_100_LINK = bytes.fromhex(
    "80000000000000000000000000000000f0001a000800010064000000080002000000000008000300ffffffff"
    "050004000000000005000500000000000500070000000000bc0006005c000100080001000200000008000200"
    "0000000006000300080000000c00040000000000000000000c00050000000000000000000c00060000000000"
    "000000000c0007000000000000000000080008000200000008000900000000005c0001000800010065000000"
    "080002000100000006000300080000000c00040000000000000000000c00050000000000000000000c000600"
    "00000000000000000c000700000000000000000008000800650000000800090000000000")
TABLE_100_ROUTE = bytes.fromhex(
    "80202000641100050000000008000f006400000008000200c633640208000100ef01010108000300020000000c"
    "00090008000003650000001c0011000000000000000000000000000000000000000000000000000c00170000"
    "00000000000000")


def test_vifs_of_each_table() -> None:
    assert netlink.parse_vifs(DEFAULT_TABLE_LINK) == []
    assert netlink.parse_vifs(TABLE_100_LINK) == [
        netlink.MrouteVif(table=100, vif=0, ifindex=2, flags=8),
        netlink.MrouteVif(table=100, vif=1, ifindex=101, flags=8),
    ]


def test_a_resolved_entry_with_its_table() -> None:
    assert netlink.parse_entry(TABLE_100_ROUTE) == netlink.MrouteEntry(
        table=100, source=IPv4Address("198.51.100.2"), group=IPv4Address("239.1.1.1"),
        iif=2, oifs={101: 3})


def test_an_unresolved_entry_has_no_inbound_interface() -> None:
    header = netlink.RTMSG.unpack_from(TABLE_100_ROUTE)
    flags = header[-1] | netlink.RTNH_F_UNRESOLVED
    unresolved = netlink.RTMSG.pack(*header[:-1], flags) + TABLE_100_ROUTE[netlink.RTMSG.size:]
    entry = netlink.parse_entry(unresolved)
    assert entry is not None and entry.iif is None and entry.table == 100


def test_other_families_and_short_messages_are_not_entries() -> None:
    ipv4_unicast = bytes([2]) + TABLE_100_ROUTE[1:]
    assert netlink.parse_entry(ipv4_unicast) is None
    assert netlink.parse_entry(TABLE_100_ROUTE[:8]) is None
    truncated = TABLE_100_LINK[:40]  # an attribute longer than the message: no VIF read
    assert netlink.parse_vifs(truncated) == []
