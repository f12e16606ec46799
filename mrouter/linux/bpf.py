"""Classic BPF socket filters (SO_ATTACH_FILTER): the one place for their layouts.

Packet sockets (``igmp watch``, the querier's IGMP tap, the userspace data plane) let
the kernel drop what they do not want before it is queued, with a small classic BPF
program. A program is a tuple of ``(code, jt, jf, k)`` instructions::

    struct sock_filter { __u16 code; __u8 jt; __u8 jf; __u32 k; };          "=HBBI"
    struct sock_fprog  { unsigned short len; struct sock_filter *filter; };  "@HP"

Jumps are relative: ``jt``/``jf`` count instructions to skip when the test is true or
false. The opcodes below are the few these programs use (linux/bpf_common.h).
"""

from __future__ import annotations

import ctypes
import socket
import struct

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
