"""The two families' multicast sockets share one implementation (mcast.FamilySocket):
the same calls keep the same record and name each family's own option in their errors.

A stand-in socket object records setsockopt calls (or refuses them) so nothing reaches
the kernel: no membership report can leave this host.
"""

from __future__ import annotations

import errno
import socket
from ipaddress import IPv4Interface, IPv6Interface
from typing import Any

import pytest

from mrouter.sockets.mcast import IfFlag, Interface, McastSocket, McastSyscallError, Mode
from mrouter.sockets.mcast6 import Mcast6Socket

ETH = Interface("eth9", 9, IfFlag.UP | IfFlag.MULTICAST,
                addresses=(IPv4Interface("192.0.2.1/24"),),
                addresses6=(IPv6Interface("fe80::1/64"),))
FAMILIES = [
    pytest.param(McastSocket, "239.1.1.1", "198.51.100.2", id="ipv4"),
    pytest.param(Mcast6Socket, "ff15::1", "2001:db8::2", id="ipv6"),
]


class FakeSocket:
    """Takes every option (``refuse`` set: fails each with that errno)."""

    def __init__(self, refuse: int | None = None) -> None:
        self.refuse = refuse
        self.calls: list[tuple[int, int]] = []

    def setsockopt(self, level: int, option: int, value: Any) -> None:
        if self.refuse is not None:
            raise OSError(self.refuse, "refused")
        self.calls.append((level, option))

    def close(self) -> None:
        pass


def wrap(cls: type[McastSocket] | type[Mcast6Socket], fake: FakeSocket
         ) -> McastSocket | Mcast6Socket:
    return cls(fake)  # type: ignore[arg-type]


@pytest.mark.parametrize(("cls", "group", "source"), FAMILIES)
def test_source_calls_keep_the_same_record_in_both_families(
        cls: type[McastSocket] | type[Mcast6Socket], group: str, source: str) -> None:
    fake = FakeSocket()
    with wrap(cls, fake) as sock:
        sock.join_source(group, source, ETH)
        (m,) = sock.memberships
        assert (m.mode, m.ifname, [str(s) for s in m.sources]) == (
            Mode.SOURCE_SPECIFIC, "eth9", [source])
        sock.leave_source(group, source, ETH)
        assert sock.memberships == ()  # INCLUDE {} is no membership
        sock.join(group, ETH)
        sock.block_source(group, source, ETH)
        (m,) = sock.memberships
        assert m.mode is Mode.ANY_SOURCE and m.describe() == f"{group} on eth9 blocking {source}"
    level = socket.IPPROTO_IPV6 if cls is Mcast6Socket else socket.IPPROTO_IP
    assert {lv for lv, _ in fake.calls} == {level}
    assert len(fake.calls) == 4


@pytest.mark.parametrize(("cls", "group", "option"), [
    (McastSocket, "239.1.1.1", "IP_DROP_MEMBERSHIP"),
    (Mcast6Socket, "ff15::1", "IPV6_LEAVE_GROUP"),
], ids=["ipv4", "ipv6"])
def test_a_leave_without_join_names_the_familys_option(
        cls: type[McastSocket] | type[Mcast6Socket], group: str, option: str) -> None:
    with wrap(cls, FakeSocket(refuse=errno.EADDRNOTAVAIL)) as sock, \
            pytest.raises(McastSyscallError) as info:
        sock.leave(group, ETH)
    assert str(info.value) == (
        f"cannot leave {group} on eth9: this socket has not joined it (it holds no "
        f"membership of {group}); {option} must name the group and interface of an "
        f"earlier join on the same socket")
    assert info.value.errno == errno.EADDRNOTAVAIL
