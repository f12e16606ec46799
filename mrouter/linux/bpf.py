"""Classic BPF socket filters (SO_ATTACH_FILTER): the one place for their layouts.

Packet sockets (``igmp watch``, the querier's IGMP tap, the userspace data plane) let
the kernel drop what they do not want before it is queued, with a small classic BPF
program. A program is a tuple of ``(code, jt, jf, k)`` instructions::

    struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; };          "=HBBI"
    struct sock_fprog  { unsigned short len; struct sock_filter *filter; };  "@HP"

Jumps are relative: ``jt``/``jf`` count instructions to skip when the test is true or
false. The opcodes below are the few these programs use (linux/bpf_common.h), and the
builders at the end are every program mrouter attaches: :func:`ip_protocol` (the querier's
IGMP tap), :func:`ipv4_protocol` (``igmp watch``), :func:`received_multicast_except` (the
userspace data plane), :func:`ipv6_icmp_types` (the MLD tap and ``mld watch``) and
:data:`DROP_ALL`.
"""

from __future__ import annotations

import ctypes
import socket
import struct

from mrouter.linux.constants import (
    ETH_P_IP,
    ETH_P_IPV6,
    IPPROTO_ICMPV6,
    IPV4_DST_OFFSET,
    IPV4_PROTOCOL_OFFSET,
    IPV6_HEADER_LEN,
    IPV6_HOP_BY_HOP,
    IPV6_NEXT_HEADER_OFFSET,
    PACKET_MULTICAST,
)

Insn = tuple[int, int, int, int]
Program = tuple[Insn, ...]

SO_ATTACH_FILTER = 26
SOCK_FILTER = struct.Struct("=HBBI")
SOCK_FPROG = struct.Struct("@HP")

LD_W_ABS = 0x20  # A = 32-bit word at k
LD_H_ABS = 0x28  # A = 16-bit half-word at k
LD_B_ABS = 0x30  # A = byte at k
AND_K = 0x54  # A &= k
JEQ_K = 0x15  # if A == k skip jt else skip jf
RET_K = 0x06  # accept k bytes (0: drop)
LD_B_IND = 0x50  # A = byte at X + k
LSH_K = 0x64  # A <<= k
TAX = 0x07  # X = A
JA = 0x05  # skip k instructions

SKF_AD_OFF = 0xFFFFF000  # ancillary data, loaded with LD_*_ABS at SKF_AD_OFF + n
SKF_AD_PROTOCOL = SKF_AD_OFF + 0  # skb->protocol (the ethertype)
SKF_AD_PKTTYPE = SKF_AD_OFF + 4  # skb->pkt_type (PACKET_HOST, PACKET_MULTICAST, ...)

DROP_ALL: Program = ((RET_K, 0, 0, 0),)


def attach_filter(sock: socket.socket, program: Program) -> None:
    """Attach ``program`` to ``sock``; the kernel copies it, so the buffer may go."""
    code = b"".join(SOCK_FILTER.pack(*insn) for insn in program)
    buffer = ctypes.create_string_buffer(code, len(code))
    fprog = SOCK_FPROG.pack(len(program), ctypes.addressof(buffer))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


# --- the programs -------------------------------------------------------------------------
# Every program mrouter attaches is built here. Offsets are from where the socket's
# packets start: the IPv4 header on a SOCK_DGRAM packet socket, the Ethernet header on a
# SOCK_RAW one (ancillary loads, SKF_AD_*, do not depend on it).


def ip_protocol(protocol: int, snap: int) -> Program:
    """Keep packets whose IPv4 protocol is ``protocol`` (their first ``snap`` bytes), on a
    socket that receives IPv4 only, from the IP header on (SOCK_DGRAM, bound to ETH_P_IP).

    ``ldb [9]; jeq #protocol, keep, drop; keep: ret #snap; drop: ret #0``
    """
    return (
        (LD_B_ABS, 0, 0, IPV4_PROTOCOL_OFFSET),
        (JEQ_K, 0, 1, protocol),
        (RET_K, 0, 0, snap),
        (RET_K, 0, 0, 0),
    )


def ipv4_protocol(protocol: int, snap: int) -> Program:
    """:func:`ip_protocol` for a SOCK_DGRAM socket that sees every ethertype (ETH_P_ALL,
    the only kind of tap that also sees outgoing packets): the ethertype is tested first.

    ``ldh proto; jeq #0x0800, next, drop; ldb [9]; jeq #protocol, keep, drop; ...``
    """
    return (
        (LD_H_ABS, 0, 0, SKF_AD_PROTOCOL),
        (JEQ_K, 0, 3, ETH_P_IP),  # skip the 3 of ip_protocol before its drop
        *ip_protocol(protocol, snap),
    )


def received_multicast_except(protocol: int, snap: int, *, link_header: int) -> Program:
    """Keep IPv4 frames received as link multicast, sent to 224.0.0.0/4 and not of IP
    ``protocol``, on a SOCK_RAW socket whose IPv4 header starts at ``link_header``.

    The pkttype test drops what this host sent and looped-back copies. A false test jumps
    to the last instruction (drop).
    """
    return (
        (LD_W_ABS, 0, 0, SKF_AD_PKTTYPE),
        (JEQ_K, 0, 9, PACKET_MULTICAST),  # not received as multicast (ours, loopback)
        (LD_B_ABS, 0, 0, link_header),
        (AND_K, 0, 0, 0xF0),
        (JEQ_K, 0, 6, 0x40),  # IP version 4
        (LD_B_ABS, 0, 0, link_header + IPV4_DST_OFFSET),
        (AND_K, 0, 0, 0xF0),
        (JEQ_K, 0, 3, 0xE0),  # destination in 224.0.0.0/4
        (LD_B_ABS, 0, 0, link_header + IPV4_PROTOCOL_OFFSET),
        (JEQ_K, 1, 0, protocol),
        (RET_K, 0, 0, snap),
        (RET_K, 0, 0, 0),
    )


def ipv6_icmp_types(types: tuple[int, ...], snap: int, *, any_ethertype: bool) -> Program:
    """Keep IPv6 packets carrying ICMPv6 of one of ``types`` (their first ``snap`` bytes),
    right after the IPv6 header or after one Hop-by-Hop Options header (where MLD's
    Router Alert is), on a SOCK_DGRAM packet socket (from the IPv6 header on).

    ``any_ethertype``: the socket sees every ethertype (ETH_P_ALL, as ``mld watch``), so
    the ethertype is tested first; otherwise it is bound to ETH_P_IPV6.
    ::

        ldb [6]; jeq #58, direct, hbh
        direct: ldb [40]; ja types
        hbh:    jeq #0, next, drop; ldb [40]; jeq #58, next, drop
                ldb [41]; lsh #3; tax; ldb [x + 48]     ; 40 + 8 x (length + 1)
        types:  jeq #t1, keep ...; ret #0
        keep:   ret #snap
    """
    n = len(types)
    first = IPV6_HEADER_LEN  # the byte after the fixed header
    body: Program = (
        (LD_B_ABS, 0, 0, IPV6_NEXT_HEADER_OFFSET),  # 0
        (JEQ_K, 0, 2, IPPROTO_ICMPV6),  # 1: ICMPv6 right away, or 4
        (LD_B_ABS, 0, 0, first),  # 2: its type
        (JA, 0, 0, 7),  # 3: to the type tests (11)
        (JEQ_K, 0, 6 + n, IPV6_HOP_BY_HOP),  # 4: else drop
        (LD_B_ABS, 0, 0, first),  # 5: the Hop-by-Hop header's next header
        (JEQ_K, 0, 4 + n, IPPROTO_ICMPV6),  # 6: else drop
        (LD_B_ABS, 0, 0, first + 1),  # 7: its length, in 8-octet units after the first 8
        (LSH_K, 0, 0, 3),  # 8
        (TAX, 0, 0, 0),  # 9
        (LD_B_IND, 0, 0, first + 8),  # 10: the ICMPv6 type
        *((JEQ_K, n - j, 0, t) for j, t in enumerate(types)),  # 11...: keep
        (RET_K, 0, 0, 0),  # 11 + n: drop
        (RET_K, 0, 0, snap),  # 12 + n: keep
    )
    if not any_ethertype:
        return body
    return ((LD_H_ABS, 0, 0, SKF_AD_PROTOCOL), (JEQ_K, 0, 11 + n, ETH_P_IPV6), *body)
