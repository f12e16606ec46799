"""Hearing IGMP or MLD on every interface of a node, from an ``AF_PACKET`` socket.

A raw IGMP (MLD) socket sees only what the kernel delivers to it; a packet socket of the
family's ethertype with a BPF filter that keeps only the protocol's packets hears reports
sent to groups the host has not joined. :class:`PacketTap` is that socket for both
families; what differs (the ethertype, the filter, the protocol's name in errors) is
passed in, as :class:`~mrouter.router.querier.IgmpTap` and
:class:`~mrouter.sockets.mld_socket.MldTap` do.
"""

from __future__ import annotations

import socket

from mrouter.errors import McastError
from mrouter.linux import bpf
from mrouter.linux.constants import PACKET_OUTGOING
from mrouter.sockets.igmp_socket import Received

__all__ = ["PacketTap"]


class PacketTap:
    """Every ``protocol`` packet seen on the node's interfaces, from an AF_PACKET socket.

    ``recv`` returns the same :class:`Received` as the family's raw socket does (the whole
    IP packet and its ifindex) and skips packets this host sent itself.
    """

    def __init__(self, protocol: str, ethertype: int, program: bpf.Program) -> None:
        try:
            self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM,
                                      socket.htons(ethertype))
        except OSError as exc:
            raise McastError(f"cannot open a packet socket to hear {protocol}: "
                             f"{exc.strerror}; run as root or with CAP_NET_RAW") from exc
        bpf.attach_filter(self.sock, program)
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self) -> Received | None:
        while True:
            try:
                data, addr = self.sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return None
            # addr = (ifname, proto, pkttype, hatype, hwaddr)
            if addr[2] != PACKET_OUTGOING:
                return Received(data, socket.if_nametoindex(addr[0]))

    def close(self) -> None:
        self.sock.close()
