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
userspace data plane) and :data:`DROP_ALL`.
"""

from __future__ import annotations

import ctypes
import socket
import struct

from mrouter.linux.constants import (
    ETH_P_IP,
    IPV4_DST_OFFSET,
    IPV4_PROTOCOL_OFFSET,
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
