"""The IPv6 kernel binding on a real namespace: MIFs, MFC entries, upcalls, counters, MLD.

Lab basic.toml with IPv6 turned on and given addresses here (topologies take IPv4 only):
sender eth0 2001:db8:1::2 -- up0 r1 dn0 -- receiver eth0 2001:db8:2::2. The MRT6_INIT
socket is opened inside r1, the sender and receiver sockets inside their own nodes, all
from this thread. The scenarios are test_kernel.py's (the IPv4 binding), plus what only
IPv6 has: no per-interface thresholds, register MIFs, and how MLD reaches the socket.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from contextlib import AbstractContextManager
from ipaddress import IPv6Address
from typing import Any

import pytest
from helpers import IPV6_MREQ, basic_ipv6, kernel_socket, member6, received, send6

from mrouter.errors import KernelError
from mrouter.kernel import for_family
from mrouter.kernel.mroute6 import (
    Mroute6Socket,
    Upcall,
    UpcallType,
    is_upcall,
    parse_upcall,
    read_mfc_table,
    read_vif_table,
)
from mrouter.mld.codec import decode
from mrouter.mld.messages import MldType, V1Done, V1Report, V2Report

pytestmark = pytest.mark.netns

SOURCE = IPv6Address("2001:db8:1::2")
GROUP = IPv6Address("ff15::1")
UP, DN = 0, 1
UDP_BYTES = 40 + 8 + 8  # IPv6 header + UDP header + "packet N"


@pytest.fixture
def lab(lab_factory: Callable[[str], Any]) -> Any:
    return basic_ipv6(lab_factory("basic.toml"))


def mroute6(lab: Any, **kwargs: Any) -> AbstractContextManager[Mroute6Socket]:
    return kernel_socket(lab, Mroute6Socket, **kwargs)  # MIF UP = up0, DN = dn0


def upcalls(mrt: Mroute6Socket, wait: float = 2.0) -> list[Upcall]:
    return [parse_upcall(d) for d in received(mrt.sock, wait) if is_upcall(d)]


def mld_heard(mrt: Mroute6Socket, wait: float = 1.5) -> set[tuple[MldType, IPv6Address]]:
    """(MLD message type, group named) for what the routing socket reads, decoded with
    mrouter's MLD codec (upcalls and other ICMPv6 left out)."""
    heard: set[tuple[MldType, IPv6Address]] = set()
    for data in received(mrt.sock, wait):
        if is_upcall(data):
            continue
        message = decode(data, verify_checksum=False)  # the kernel checked it
        if isinstance(message, V1Report | V1Done):
            heard.add((message.type, message.group))
        elif isinstance(message, V2Report):
            heard.update((message.type, record.group) for record in message.records)
    return heard


def test_mfc_entry_forwards_and_counts(lab: Any) -> None:
    with mroute6(lab) as mrt:
        mrt.add_mfc(SOURCE, GROUP, UP, {DN: 1})
        with member6(lab, "receiver", str(GROUP)) as rx:
            sent = send6(lab, str(GROUP), "packet")
            assert received(rx) == sent
            counters = mrt.sg_counters(SOURCE, GROUP)
            assert (counters.packets, counters.bytes, counters.wrong_if) == (
                5, 5 * UDP_BYTES, 0)
            assert mrt.vif_counters(UP).packets_in == 5
            assert mrt.vif_counters(DN).packets_out == 5
            send6(lab, str(GROUP), "packet", 3)
            assert len(received(rx)) == 3
        assert mrt.sg_counters(SOURCE, GROUP).packets == 8
        r1 = lab.node("r1")
        with r1.enter():
            (entry,) = read_mfc_table()
        assert (entry.source, entry.group, entry.iif_vif, entry.oifs, entry.packets) == (
            SOURCE, GROUP, UP, {DN: 1}, 8)
        assert mrt.version() == 0x305
        assert r1.sysctl("net.ipv6.conf.all.mc_forwarding") == "1"


def test_hop_limit_1_is_not_forwarded_and_thresholds_are_refused(lab: Any) -> None:
    with mroute6(lab) as mrt:
        mrt.add_mfc(SOURCE, GROUP, UP, {DN: 1})
        with member6(lab, "receiver", str(GROUP)) as rx:
            send6(lab, str(GROUP), "packet", 3, hops=1)
            assert received(rx, 0.5) == []
            send6(lab, str(GROUP), "packet", 3, hops=2)  # 1 after r1: still delivered
            assert len(received(rx)) == 3
        with pytest.raises(KernelError, match=r"has none .* use 1"):
            mrt.add_mfc(SOURCE, GROUP, UP, {DN: 8})
        with pytest.raises(KernelError, match="MIF 2 asks for a hop-limit threshold of 8"):
            mrt.add_vif(2, lab.node("r1").ifindex("dn0"), threshold=8)


def test_unknown_sg_gives_nocache_upcall_and_no_traffic(lab: Any) -> None:
    with mroute6(lab) as mrt, member6(lab, "receiver", str(GROUP)) as rx:
        send6(lab, str(GROUP), "packet", 3)
        assert received(rx, 0.5) == []
        calls = upcalls(mrt)
        assert Upcall(UpcallType.NOCACHE, UP, SOURCE, GROUP) in calls
        with lab.node("r1").enter():
            (pending,) = read_mfc_table()
        assert (pending.source, pending.group, pending.iif_vif) == (SOURCE, GROUP, -1)
        # The kernel queued the packets: a route added now sends them on.
        mrt.add_mfc(SOURCE, GROUP, UP, {DN: 1})
        assert received(rx) == [b"packet 0", b"packet 1", b"packet 2"]


def test_wrong_interface_gives_wrongmif_upcall_and_counts(lab: Any) -> None:
    with mroute6(lab, asserts=True) as mrt:
        mrt.add_mfc(SOURCE, GROUP, DN, {UP: 1})  # expects the group from dn0
        send6(lab, str(GROUP), "packet", 3)
        calls = upcalls(mrt)
        assert Upcall(UpcallType.WRONGMIF, UP, SOURCE, GROUP) in calls
        assert mrt.sg_counters(SOURCE, GROUP).wrong_if == 3


def test_register_mif_gives_wholepkt_upcalls_with_the_packet(lab: Any) -> None:
    with mroute6(lab) as mrt:
        try:
            mrt.add_register_vif(2)
        except KernelError as exc:  # a kernel without CONFIG_IPV6_PIMSM_V2
            pytest.skip(str(exc))
        mrt.add_mfc(SOURCE, GROUP, UP, {DN: 1, 2: 1})
        with lab.node("r1").enter():
            assert [(v.name, v.flags) for v in read_vif_table()] == [
                ("up0", 0), ("dn0", 0), ("pim6reg", 1)]
        send6(lab, str(GROUP), "packet", 2)
        whole = [u for u in upcalls(mrt) if u.kind is UpcallType.WHOLEPKT]
    assert [(u.vif, u.source, u.group) for u in whole] == [(2, SOURCE, GROUP)] * 2
    packet = whole[0].packet
    assert len(packet) == UDP_BYTES
    assert (packet[0] >> 4, IPv6Address(packet[8:24]), IPv6Address(packet[24:40])) == (
        6, SOURCE, GROUP)
    assert packet.endswith(b"packet 0")


def test_deleting_the_route_stops_forwarding(lab: Any) -> None:
    with mroute6(lab) as mrt, member6(lab, "receiver", str(GROUP)) as rx:
        mrt.add_mfc(SOURCE, GROUP, UP, {DN: 1})
        send6(lab, str(GROUP), "before", 2)
        assert len(received(rx)) == 2
        mrt.del_mfc(SOURCE, GROUP)
        send6(lab, str(GROUP), "after", 2)
        assert received(rx, 0.5) == []
        assert Upcall(UpcallType.NOCACHE, UP, SOURCE, GROUP) in upcalls(mrt)
        with pytest.raises(KernelError, match="no kernel route for"):
            mrt.sg_counters(IPv6Address("2001:db8:1::99"), GROUP)
        with pytest.raises(KernelError, match=r"no kernel route for \(2001:db8:1::99, ff15::1\)"):
            mrt.del_mfc(IPv6Address("2001:db8:1::99"), GROUP)


def test_second_owner_gets_clear_message(lab: Any) -> None:
    with mroute6(lab), lab.node("r1").enter(), pytest.raises(KernelError) as exc:
        Mroute6Socket()
    assert "IPv6 multicast routing table 254 is already owned by another process" in str(
        exc.value)
    assert "smcroute, pim6sd, mcproxy or another mrouter" in str(exc.value)


def test_ipv4_and_ipv6_tables_have_separate_owners(lab: Any) -> None:
    ipv4 = for_family("ipv4").socket
    with mroute6(lab), lab.node("r1").enter(), ipv4() as mrt4:
        mrt4.add_vif(0, lab.node("r1").ifindex("up0"))


def test_32_mifs_fit_and_the_33rd_is_refused(lab: Any) -> None:
    r1 = lab.node("r1")
    extra = [f"x{n}" for n in range(30)]  # 15 veth pairs inside r1: 30 more interfaces
    for a, b in zip(extra[::2], extra[1::2], strict=True):
        r1.run(["ip", "link", "add", a, "type", "veth", "peer", "name", b], check=True)
    with mroute6(lab) as mrt:
        for n, name in enumerate(extra):
            mrt.add_vif(2 + n, r1.ifindex(name))
        with r1.enter():
            assert len(read_vif_table()) == 32
        with pytest.raises(KernelError, match="MIF 32 is out of range: the kernel allows at "
                                              "most 32 MIFs"):
            mrt.add_vif(32, r1.ifindex("x0"))
        with pytest.raises(KernelError, match="MIF 1 is already in use"):
            mrt.add_vif(DN, r1.ifindex("dn0"))
        mrt.del_vif(31)
        with pytest.raises(KernelError, match="MIF 31 does not exist"):
            mrt.del_vif(31)
        with pytest.raises(KernelError, match="interface with index 9999 does not exist"):
            mrt.add_vif(31, 9999)


def _host_mld(lab: Any, version: int) -> None:
    receiver = lab.node("receiver")
    receiver.sysctl("net.ipv6.conf.eth0.force_mld_version", version)
    receiver.sysctl(f"net.ipv6.conf.eth0.mldv{version}_unsolicited_report_interval", 100)


def _join(lab: Any, node: str, sock: socket.socket, group: str, iface: str) -> None:
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP,
                    IPV6_MREQ.pack(IPv6Address(group).packed, lab.node(node).ifindex(iface)))


def test_mldv1_reports_reach_the_socket_without_a_join(lab: Any) -> None:
    _host_mld(lab, 1)
    group = IPv6Address("ff15::77")
    with mroute6(lab) as mrt:
        with member6(lab, "receiver", str(group)):
            # To ff15::77 with a Router Alert: delivered though r1 never joined it.
            assert (MldType.V1_REPORT, group) in mld_heard(mrt)
        # The Done goes to ff02::2, which r1 joined because its forwarding is 1.
        assert (MldType.V1_DONE, group) in mld_heard(mrt)
        assert upcalls(mrt, 0.5) == []  # MLD is not offered to ip6mr


def test_mldv2_reports_need_ff02_16_joined_and_a_filter_keeps_upcalls(lab: Any) -> None:
    _host_mld(lab, 2)
    unheard, heard = IPv6Address("ff15::78"), IPv6Address("ff15::79")
    with mroute6(lab) as mrt:
        with member6(lab, "receiver", str(unheard)):
            # To ff02::16, which r1 has not joined: not delivered.
            assert (MldType.V2_REPORT, unheard) not in mld_heard(mrt)
        _join(lab, "r1", mrt.sock, "ff02::16", "dn0")
        mrt.filter_mld()
        with member6(lab, "receiver", str(heard)):
            assert (MldType.V2_REPORT, heard) in mld_heard(mrt)
        send6(lab, str(GROUP), "packet", 1)
        assert Upcall(UpcallType.NOCACHE, UP, SOURCE, GROUP) in upcalls(mrt)
