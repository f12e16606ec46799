"""The MLD socket shell's pure parts: the link-local address from /proc/net/if_inet6 (DAD
included) and the ICMPv6 type filter (no root, no sockets opened)."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest

from mrouter.errors import McastError
from mrouter.sockets.mld_socket import MLD_TYPES, icmp6_filter, link_local

# address, ifindex, prefix length, scope, flags, name (linux/net/ipv6/addrconf.c)
IF_INET6 = """\
00000000000000000000000000000001 01 80 10 80       lo
20010db8000000000000000000000011 05 40 00 00     eth0
fe80000000000000a8c1abfffe010203 05 40 20 80     eth0
fe800000000000000000000000000011 05 40 20 80     eth0
fe800000000000000000000000000022 06 40 20 c0     eth1
fe800000000000000000000000000033 07 40 20 88     eth2
"""


@pytest.fixture
def proc(tmp_path: Path) -> Path:
    path = tmp_path / "if_inet6"
    path.write_text(IF_INET6)
    return path


def test_the_lowest_usable_link_local_address_is_the_source(proc: Path) -> None:
    found = link_local("eth0", proc)
    assert (found.ifindex, found.address, found.network) == (
        5, IPv6Address("fe80::11"), IPv6Network("fe80::/64"))


def test_a_tentative_or_failed_address_is_one_clear_error(proc: Path) -> None:
    with pytest.raises(McastError, match=r"eth1: its link-local address fe80::22 is still "
                                         r"tentative .* nodad"):
        link_local("eth1", proc)
    with pytest.raises(McastError, match=r"eth2: .*fe80::33 is still tentative"):
        link_local("eth2", proc)  # DAD failed (0x08)


def test_no_link_local_address_and_no_interface_are_one_clear_error(proc: Path) -> None:
    with pytest.raises(McastError, match=r"interface lo has no IPv6 link-local address"):
        link_local("lo", proc)
    with pytest.raises(McastError, match=r"no interface named 'nope0'"):
        link_local("nope0", proc)


def test_the_icmpv6_filter_passes_only_mld() -> None:
    words = struct.unpack("=8I", icmp6_filter(MLD_TYPES))
    passed = {t for t in range(256) if not words[t >> 5] & (1 << (t & 31))}
    assert passed == {130, 131, 132, 143}
