"""The raw ICMPv6 socket shell for MLD: whole IPv6 packets in and out, with the interface.

Theory of operation: MLD is ICMPv6, so routers and queriers speak it through a raw
socket ``socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)``. Unlike a raw IGMP socket it
gives and takes only the ICMPv6 message, never the IPv6 header:

* on receive, ``ICMP6_FILTER`` keeps the four MLD types (130, 131, 132, 143),
  ``IPV6_RECVPKTINFO`` gives the destination and the ingress interface,
  ``IPV6_RECVHOPLIMIT`` the hop limit and ``IPV6_RECVHOPOPTS`` the Hop-by-Hop options
  (where the Router Alert is); :meth:`MldSocket.recv` puts them back together into the
  whole IPv6 packet (:func:`mrouter.mld.ipv6.build_header`), so that every shell decodes
  one shape, as it does for IGMP;
* on send, the hop limit is 1 (``IPV6_MULTICAST_HOPS``), the Router Alert (value 0,
  MLD) is a sticky ``IPV6_HOPOPTS`` option, and each packet's source address and
  interface go in an ``IPV6_PKTINFO`` control message; the kernel fills in the ICMPv6
  checksum (it always does for raw ICMPv6 sockets, RFC 3542 §3.1).

MLDv2 reports go to ff02::16 and MLDv1 dones to ff02::2, which the socket hears only
once it joined them on the interface (:meth:`MldSocket.join_router_groups`). MLDv1
reports go to the group itself, which a standalone querier has not joined: as for IGMP
(:class:`mrouter.router.querier.IgmpTap`), the querier reads MLD with :class:`MldTap`, a
packet socket whose BPF filter keeps IPv6 carrying MLD, and uses this socket to send.

:func:`link_local` finds an interface's link-local address (the source of every MLD
message, RFC 3810 §5.1.14) in ``/proc/net/if_inet6``, and says so when duplicate
address detection has not finished yet.
"""

from __future__ import annotations

import errno
import logging
import socket
import struct
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

from mrouter.errors import McastError
from mrouter.linux import bpf
from mrouter.linux.constants import ETH_P_IPV6, IN6_PKTINFO, IPV6_MREQ, Ipv6Option
from mrouter.mld.ipv6 import HEADER_LEN, ROUTER_ALERT_OPTIONS, build_header
from mrouter.mld.messages import ALL_MLDV2_ROUTERS, ALL_ROUTERS, MldType
from mrouter.sockets.igmp_socket import Received
from mrouter.sockets.tap import PacketTap

log = logging.getLogger(__name__)

__all__ = ["MLD_TYPES", "MldSocket", "MldTap", "RawIpv6Sender", "Received", "link_local"]

# Linux constants Python's socket module may lack (include/uapi/linux/icmpv6.h); the
# IPPROTO_IPV6 options and their structs have their one home in mcast6.
ICMP6_FILTER = 1  # level IPPROTO_ICMPV6
IPV6_RECVPKTINFO = Ipv6Option.IPV6_RECVPKTINFO
IPV6_PKTINFO = Ipv6Option.IPV6_PKTINFO
IPV6_RECVHOPLIMIT = Ipv6Option.IPV6_RECVHOPLIMIT
IPV6_HOPLIMIT = Ipv6Option.IPV6_HOPLIMIT
IPV6_RECVHOPOPTS = Ipv6Option.IPV6_RECVHOPOPTS
IPV6_HOPOPTS = Ipv6Option.IPV6_HOPOPTS
IPV6_JOIN_GROUP = Ipv6Option.IPV6_JOIN_GROUP
IPV6_LEAVE_GROUP = Ipv6Option.IPV6_LEAVE_GROUP
#: struct icmp6_filter { __u32 data[8]; }: a set bit blocks that type (ICMP6_FILTER_SETBLOCK)
ICMP6_FILTER_WORDS = struct.Struct("=8I")
INT = struct.Struct("=i")

MLD_TYPES = tuple(int(t) for t in MldType)  # 130, 131, 132, 143
ROUTER_GROUPS = (ALL_MLDV2_ROUTERS, ALL_ROUTERS)
RECV_BUFFER = 65535
_ANCILLARY_SPACE = (socket.CMSG_SPACE(IN6_PKTINFO.size) + socket.CMSG_SPACE(INT.size)
                    + socket.CMSG_SPACE(256))
#: The sticky Hop-by-Hop header: next header (the kernel fills it in), length 0 (8
#: bytes), then Router Alert value 0 (MLD) and a PadN, as mrouter.mld.ipv6 writes it.
HOP_BY_HOP = bytes((0, 0)) + ROUTER_ALERT_OPTIONS
#: The MLD tap's filter: IPv6 carrying MLD, whole packets (up to 65535 bytes).
MLD_ONLY = bpf.ipv6_icmp_types(MLD_TYPES, 0xFFFF, any_ethertype=False)

#: IFA_F_* flags of /proc/net/if_inet6 (linux/if_addr.h)
IFA_F_DADFAILED = 0x08
IFA_F_TENTATIVE = 0x40
SCOPE_LINK = 0x20
IF_INET6 = Path("/proc/net/if_inet6")


def icmp6_filter(types: tuple[int, ...]) -> bytes:
    """An ICMP6_FILTER value that passes only ``types``."""
    words = [0xFFFFFFFF] * 8
    for t in types:
        words[t >> 5] &= ~(1 << (t & 31)) & 0xFFFFFFFF
    return ICMP6_FILTER_WORDS.pack(*words)


@dataclass(frozen=True, slots=True)
class LinkLocal:
    """An interface's link-local address, its network (fe80::/64) and index."""

    ifindex: int
    address: IPv6Address
    network: IPv6Network


def link_local(iface: str, if_inet6: Path = IF_INET6) -> LinkLocal:
    """The link-local address of ``iface`` (the lowest, if it has several).

    Raises :class:`McastError` naming the interface when it has none, or only one that
    is still tentative (duplicate address detection runs for about a second after the
    link comes up) or failed DAD.
    """
    try:
        lines = if_inet6.read_text().splitlines()
    except OSError as exc:
        raise McastError(f"cannot read {if_inet6}: {exc.strerror}; is IPv6 enabled?") from exc
    found: list[tuple[IPv6Address, int, int]] = []
    for line in lines:
        parts = line.split()
        if len(parts) != 6 or parts[5] != iface:
            continue
        address = IPv6Address(int(parts[0], 16))
        scope, flags = int(parts[3], 16), int(parts[4], 16)
        if scope == SCOPE_LINK and address.is_link_local:
            found.append((address, int(parts[1], 16), flags))  # index, flags
    good = [f for f in found if not f[2] & (IFA_F_TENTATIVE | IFA_F_DADFAILED)]
    if not good:
        if found:
            raise McastError(
                f"interface {iface}: its link-local address {found[0][0]} is still tentative "
                "(duplicate address detection has not finished, or failed); wait a second "
                "after the link comes up, or add one with 'ip -6 addr add fe80::.../64 dev "
                f"{iface} nodad'")
        try:
            socket.if_nametoindex(iface)
        except OSError:
            raise McastError(f"no interface named {iface!r} in this network namespace; "
                             "see `mrouter ifaces`") from None
        raise McastError(
            f"interface {iface} has no IPv6 link-local address; MLD is sent from one "
            "(RFC 3810 §5.1.14): bring the link up, check net.ipv6.conf."
            f"{iface}.disable_ipv6, or add one with 'ip -6 addr add fe80::1/64 dev {iface}'")
    address, ifindex = min((f[0], f[1]) for f in good)
    return LinkLocal(ifindex, address, IPv6Network(f"{address}/64", strict=False))


def ifindex_of(ancdata: list[tuple[int, int, bytes]]) -> int:
    """The IPV6_PKTINFO ifindex of a message's ancillary data (0 when there is none)."""
    for level, kind, payload in ancdata:
        if level == socket.IPPROTO_IPV6 and kind == IPV6_PKTINFO \
                and len(payload) >= IN6_PKTINFO.size:
            return int(IN6_PKTINFO.unpack_from(payload)[1])
    return 0


class MldSocket:
    """A non-blocking raw ICMPv6 socket that reads MLD and sends it with hop limit 1 and
    a Router Alert (see the module docstring)."""

    def __init__(self, sock: socket.socket | None = None, *,
                 multicast_loop: bool = False) -> None:
        """``sock``: a raw ICMPv6 socket to use (the daemon's MRT6_INIT socket, on which
        kernel upcalls arrive too: :meth:`recv` returns those as they are); None opens
        one."""
        if sock is None:
            try:
                sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
            except PermissionError as exc:
                raise McastError("cannot open a raw ICMPv6 socket: permission denied; run "
                                 "as root or with CAP_NET_RAW") from exc
            except OSError as exc:
                raise McastError(f"cannot open a raw ICMPv6 socket: {exc.strerror}") from exc
        self.sock = sock
        try:
            sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter(MLD_TYPES))
            for option in (IPV6_RECVPKTINFO, IPV6_RECVHOPLIMIT, IPV6_RECVHOPOPTS):
                sock.setsockopt(socket.IPPROTO_IPV6, option, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_HOPS, 1)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_LOOP, int(multicast_loop))
            sock.setsockopt(socket.IPPROTO_IPV6, IPV6_HOPOPTS, HOP_BY_HOP)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            raise McastError(f"cannot set up the raw ICMPv6 socket for MLD: {exc.strerror}; "
                             "the Router Alert option needs CAP_NET_RAW") from exc

    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()

    def join_router_groups(self, ifindex: int) -> None:
        """Join ff02::16 (MLDv2 reports) and ff02::2 (MLDv1 dones) on ``ifindex``; a group
        already joined there is not an error."""
        for group in ROUTER_GROUPS:
            self._membership(IPV6_JOIN_GROUP, group, ifindex, errno.EADDRINUSE)

    def leave_router_groups(self, ifindex: int) -> None:
        """Undo :meth:`join_router_groups` (a group not joined there is not an error)."""
        for group in ROUTER_GROUPS:
            self._membership(IPV6_LEAVE_GROUP, group, ifindex, errno.EADDRNOTAVAIL)

    def _membership(self, option: int, group: IPv6Address, ifindex: int, benign: int) -> None:
        try:
            self.sock.setsockopt(socket.IPPROTO_IPV6, option, IPV6_MREQ.pack(group.packed, ifindex))
        except OSError as exc:
            if exc.errno == benign:
                return
            verb = "join" if option == IPV6_JOIN_GROUP else "leave"
            raise McastError(
                f"cannot {verb} {group} on interface index {ifindex}: {exc.strerror}; check "
                "that the interface exists, is up and has IPv6 enabled") from exc

    def recv(self) -> Received | None:
        """Read one MLD message as a whole IPv6 packet, or None if none is waiting."""
        try:
            data, ancdata, _flags, addr = self.sock.recvmsg(RECV_BUFFER, _ANCILLARY_SPACE)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            raise McastError(f"reading the ICMPv6 socket failed: {exc.strerror}") from exc
        if data and data[0] == 0:
            # a kernel upcall (struct mrt6msg, im6_mbz 0: no ICMPv6 type is 0), queued
            # past the ICMPv6 filter; handed on whole, without an IPv6 header
            return Received(bytes(data), ifindex_of(ancdata))
        src = IPv6Address(addr[0].split("%", 1)[0])
        dst, ifindex, hop_limit, options = IPv6Address(0), 0, 0, None
        for level, kind, payload in ancdata:
            if level != socket.IPPROTO_IPV6:
                continue
            if kind == IPV6_PKTINFO and len(payload) >= IN6_PKTINFO.size:
                raw, ifindex = IN6_PKTINFO.unpack_from(payload)
                dst = IPv6Address(raw)
            elif kind == IPV6_HOPLIMIT and len(payload) >= INT.size:
                hop_limit = INT.unpack_from(payload)[0]
            elif kind == IPV6_HOPOPTS and len(payload) >= 8:
                options = bytes(payload[2:8 * (payload[1] + 1)])
        header = build_header(src, dst, len(data), hop_limit=hop_limit, hop_by_hop=options)
        return Received(header + data, ifindex)

    def send(self, ip_packet: bytes, ifindex: int) -> None:
        """Send the ICMPv6 message of a whole IPv6 packet (as
        :func:`mrouter.mld.codec.encode_packet` builds it) out of ``ifindex``, from the
        packet's source to its destination; hop limit 1 and the Router Alert come from
        the socket."""
        if len(ip_packet) < HEADER_LEN:
            raise McastError(f"cannot send {len(ip_packet)} bytes: not an IPv6 packet")
        src, dst = ip_packet[8:24], ip_packet[24:40]
        start = HEADER_LEN if ip_packet[6] != 0 else HEADER_LEN + 8 * (ip_packet[41] + 1)
        pktinfo = IN6_PKTINFO.pack(src, ifindex)
        target = str(IPv6Address(dst))
        try:
            self.sock.sendmsg([ip_packet[start:]],
                              [(socket.IPPROTO_IPV6, IPV6_PKTINFO, pktinfo)], 0,
                              (target, 0, 0, ifindex))
        except OSError as exc:
            raise McastError(
                f"sending MLD to {target} on interface index {ifindex} failed: "
                f"{exc.strerror}; check that the interface is up and its link-local "
                "address is no longer tentative") from exc
        log.debug("sent %d bytes of MLD to %s on ifindex %d", len(ip_packet) - start,
                  target, ifindex)


class MldTap(PacketTap):
    """Every MLD packet seen on the node's interfaces, from an AF_PACKET socket.

    ``recv`` returns the same :class:`Received` as :meth:`MldSocket.recv` (the whole
    IPv6 packet and its ifindex) and skips packets this host sent itself.
    """

    def __init__(self) -> None:
        super().__init__("MLD", ETH_P_IPV6, MLD_ONLY)


class RawIpv6Sender:
    """Sends whole IPv6 packets as they are (``mrouter mld send``): a raw IPv6 socket of
    protocol IPPROTO_RAW, which on Linux takes the IPv6 header from the caller
    (``IPV6_HDRINCL`` is implied), so the hop limit, the Hop-by-Hop options and the
    checksum are exactly what was built, wrong ones included."""

    def __init__(self) -> None:
        try:
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
        except PermissionError as exc:
            raise McastError("cannot open a raw IPv6 socket: permission denied; run as "
                             "root or with CAP_NET_RAW") from exc
        except OSError as exc:
            raise McastError(f"cannot open a raw IPv6 socket: {exc.strerror}") from exc

    def send(self, ip_packet: bytes, ifindex: int) -> None:
        """Send ``ip_packet`` (header included) out of ``ifindex``, to its destination."""
        if len(ip_packet) < HEADER_LEN or ip_packet[0] >> 4 != 6:
            raise McastError(f"cannot send {len(ip_packet)} bytes: not an IPv6 packet")
        target = str(IPv6Address(ip_packet[24:40]))
        try:
            self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_MULTICAST_IF, ifindex)
            self.sock.sendto(ip_packet, (target, 0, 0, ifindex))
        except OSError as exc:
            raise McastError(
                f"sending {len(ip_packet)} bytes to {target} on interface index {ifindex} "
                f"failed: {exc.strerror}; check that the interface is up and has IPv6") from exc

    def close(self) -> None:
        self.sock.close()
