"""The classic BPF programs of mrouter.linux.bpf, run on packets by a small interpreter.

The kernel runs these programs; here a few lines of Python run the same instructions
(linux/filter.h semantics for the opcodes the programs use), so a wrong jump offset or
a wrong byte offset shows as a packet kept that should be dropped, or the reverse.
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import pytest

from mrouter.igmp.codec import encode_packet
from mrouter.igmp.ipv4 import build_header
from mrouter.igmp.messages import V2Report
from mrouter.linux import bpf
from mrouter.linux.constants import ETH_P_IP, ETH_P_IPV6, IPPROTO_IGMP, PACKET_MULTICAST
from mrouter.mld import codec as mld_codec
from mrouter.mld.ipv6 import ROUTER_ALERT_OPTIONS
from mrouter.mld.ipv6 import build_header as build_header6
from mrouter.mld.messages import ALL_NODES
from mrouter.mld.messages import Query as MldQuery
from mrouter.mld.messages import UnknownMessage as MldUnknown
from mrouter.mld.messages import V1Done as MldV1Done
from mrouter.mld.messages import V1Report as MldV1Report
from mrouter.mld.messages import V2Report as MldV2Report

PACKET_HOST, PACKET_OUTGOING = 0, 4
ETH_P_ARP = 0x0806
ETH_HLEN = 14


def run(program: bpf.Program, packet: bytes, *, protocol: int = ETH_P_IP,
        pkttype: int = PACKET_MULTICAST) -> int:
    """What the kernel's filter returns for ``packet``: bytes to keep, 0 to drop."""
    ancillary = {bpf.SKF_AD_PROTOCOL: protocol, bpf.SKF_AD_PKTTYPE: pkttype}
    sizes = {bpf.LD_W_ABS: 4, bpf.LD_H_ABS: 2, bpf.LD_B_ABS: 1}
    a = x = 0
    pc = 0
    while True:
        code, jt, jf, k = program[pc]
        if code in sizes:
            if k in ancillary:
                a = ancillary[k]
            elif k + sizes[code] > len(packet):
                return 0  # the kernel drops a packet too short for a load
            else:
                a = int.from_bytes(packet[k:k + sizes[code]], "big")
        elif code == bpf.LD_B_IND:
            if x + k + 1 > len(packet):
                return 0
            a = packet[x + k]
        elif code == bpf.AND_K:
            a &= k
        elif code == bpf.LSH_K:
            a = (a << k) & 0xFFFFFFFF
        elif code == bpf.TAX:
            x = a
        elif code == bpf.JA:
            pc += k
        elif code == bpf.JEQ_K:
            pc += jt if a == k else jf
        elif code == bpf.RET_K:
            return k
        else:  # pragma: no cover - a program using an opcode this test does not know
            raise AssertionError(f"opcode {code:#x} not modelled")
        pc += 1


SENDER = IPv4Address("198.51.100.2")
GROUP = IPv4Address("239.1.1.1")


def ipv4(protocol: int, dst: IPv4Address = GROUP) -> bytes:
    """An IPv4 packet of ``protocol`` with 8 zero bytes of payload."""
    return build_header(SENDER, dst, 8, protocol=protocol, options=b"") + bytes(8)


def igmp() -> bytes:
    return encode_packet(V2Report(GROUP), SENDER, GROUP)


def test_ip_protocol_keeps_only_that_protocol() -> None:
    program = bpf.ip_protocol(IPPROTO_IGMP, 0xFFFF)
    assert run(program, igmp()) == 0xFFFF
    assert run(program, ipv4(17)) == 0  # UDP
    assert run(program, b"\x45" * 5) == 0  # too short to hold a protocol byte


def test_ipv4_protocol_tests_the_ethertype_first() -> None:
    program = bpf.ipv4_protocol(IPPROTO_IGMP, 0x40000)
    assert run(program, igmp(), protocol=ETH_P_IP) == 0x40000
    assert run(program, igmp(), protocol=ETH_P_IP, pkttype=PACKET_OUTGOING) == 0x40000
    assert run(program, igmp(), protocol=ETH_P_ARP) == 0  # byte 9 is 2, but it is not IPv4
    assert run(program, ipv4(17), protocol=ETH_P_IP) == 0


@pytest.mark.parametrize(("packet", "pkttype", "kept"), [
    ("udp", PACKET_MULTICAST, True),
    ("igmp", PACKET_MULTICAST, False),  # the daemon's IGMP socket reads IGMP
    ("udp", PACKET_HOST, False),  # unicast to this host
    ("udp", PACKET_OUTGOING, False),  # sent by this host
    ("udp-unicast-dst", PACKET_MULTICAST, False),
    ("not-ipv4", PACKET_MULTICAST, False),
])
def test_received_multicast_except(packet: str, pkttype: int, kept: bool) -> None:
    program = bpf.received_multicast_except(IPPROTO_IGMP, 65536, link_header=ETH_HLEN)
    ethernet = bytes(12) + ETH_P_IP.to_bytes(2, "big")
    frame = ethernet + {
        "udp": ipv4(17),
        "igmp": igmp(),
        "udp-unicast-dst": ipv4(17, dst=IPv4Address("192.0.2.1")),
        "not-ipv4": b"\x60" + ipv4(17)[1:],  # version 6 in the first nibble
    }[packet]
    assert run(program, frame, pkttype=pkttype) == (65536 if kept else 0)


def test_drop_all_drops_everything() -> None:
    assert run(bpf.DROP_ALL, igmp()) == 0



# --- IPv6: MLD after the IPv6 header or after a Hop-by-Hop header ---------------------

MLD_TYPES = (130, 131, 132, 143)
LL = IPv6Address("fe80::11")


def mld_packet(msg: object, *, router_alert: bool = True, hop_by_hop: bytes | None = None,
               ) -> bytes:
    if hop_by_hop is not None:  # a longer Hop-by-Hop header: 16 bytes
        icmp = mld_codec.encode(msg, LL, ALL_NODES)  # type: ignore[arg-type]
        return build_header6(LL, ALL_NODES, len(icmp), hop_by_hop=hop_by_hop) + icmp
    return mld_codec.encode_packet(msg, LL, ALL_NODES,  # type: ignore[arg-type]
                                   router_alert=router_alert)


@pytest.mark.parametrize("any_ethertype", [False, True])
def test_ipv6_icmp_types_keeps_mld_with_or_without_a_hop_by_hop_header(
        any_ethertype: bool) -> None:
    program = bpf.ipv6_icmp_types(MLD_TYPES, 0xFFFF, any_ethertype=any_ethertype)
    kw = {"protocol": ETH_P_IPV6}
    for msg in (MldQuery(2, max_resp_code=1000), MldV1Report(IPv6Address("ff15::1")),
                MldV1Done(IPv6Address("ff15::1")), MldV2Report(())):
        assert run(program, mld_packet(msg), **kw) == 0xFFFF
        assert run(program, mld_packet(msg, router_alert=False), **kw) == 0xFFFF
    long_options = ROUTER_ALERT_OPTIONS + bytes((1, 6)) + bytes(6)  # PadN to 16 bytes
    assert run(program, mld_packet(MldV2Report(()), hop_by_hop=long_options), **kw) == 0xFFFF


def test_ipv6_icmp_types_drops_other_icmpv6_other_protocols_and_other_ethertypes() -> None:
    program = bpf.ipv6_icmp_types(MLD_TYPES, 0xFFFF, any_ethertype=True)
    echo = mld_packet(MldUnknown(128, 0, bytes(4)))
    neighbour = mld_packet(MldUnknown(135, 0, bytes(20)), router_alert=False)
    assert run(program, echo, protocol=ETH_P_IPV6) == 0
    assert run(program, neighbour, protocol=ETH_P_IPV6) == 0
    udp = bytearray(mld_packet(MldV2Report(()), router_alert=False))
    udp[6] = 17
    assert run(program, bytes(udp), protocol=ETH_P_IPV6) == 0
    hbh_udp = bytearray(mld_packet(MldV2Report(())))
    hbh_udp[40] = 17  # the Hop-by-Hop header says UDP follows
    assert run(program, bytes(hbh_udp), protocol=ETH_P_IPV6) == 0
    assert run(program, mld_packet(MldV2Report(())), protocol=ETH_P_IP) == 0
    assert run(program, igmp(), protocol=ETH_P_IP) == 0
    assert run(program, mld_packet(MldV2Report(()))[:45], protocol=ETH_P_IPV6) == 0
