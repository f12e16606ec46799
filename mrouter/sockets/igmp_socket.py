"""The raw IGMP socket shell: whole IPv4 packets in and out, with the interface.

Theory of operation: IGMP has no port, so routers and queriers read it from a raw
socket ``socket(AF_INET, SOCK_RAW, IPPROTO_IGMP)``. On receive, Linux delivers the
whole IPv4 packet (header, options, IGMP); ``IP_PKTINFO`` adds the ingress interface
index as ancillary data, so one socket serves every interface. On send we give the
whole packet too (``IP_HDRINCL``, built by :func:`mrouter.igmp.codec.encode_packet`
with TTL 1 and Router Alert) and pick the outgoing interface per packet with an
``IP_PKTINFO`` control message (``ipi_ifindex``), which ``raw_sendmsg`` honours for
multicast destinations.

IGMPv1/v2 reports and leaves reach a raw IGMP socket without any join, but IGMPv3
reports go to 224.0.0.22 and are delivered only after that group is joined on the
interface: :meth:`IgmpSocket.join_router_groups` does it (and 224.0.0.2, the v2 leave
destination, for good measure). The kernel accepts a link-local group on an interface
when *any* socket of the host joined it there, and a raw socket then gets the packet
whether or not it joined itself (``IP_MULTICAST_ALL`` is on by default). So the joins
are made from a few UDP sockets that are never read (:data:`MEMBER_SOCKETS`, opened with
the raw socket, so in its network namespace), not from the raw socket:
``net.ipv4.igmp_max_memberships`` (default 20) caps the joins of one socket, and two per
interface on one socket would stop a router at 10 interfaces, well short of the
kernel's 32 VIFs. An interface's two joins go to the first of them with room.

Multicast loopback is off by default, so a querier does not hear its own queries
(other machines on the link still do, and an ``AF_PACKET`` watcher sees them).

The same socket may be the daemon's ``MRT_INIT`` socket: kernel upcalls then arrive
through :meth:`IgmpSocket.recv` too, recognisable by a zero protocol byte (``im_mbz``).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address

from mrouter.errors import McastError
from mrouter.igmp.messages import ALL_IGMPV3_ROUTERS, ALL_ROUTERS
from mrouter.linux.constants import IN_PKTINFO, IP_MREQN, IP_PKTINFO

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)
RECEIVE_BUFFER = 4 * 1024 * 1024  # bytes the kernel may queue for the daemon

log = logging.getLogger(__name__)

# Linux constants Python's socket module lacks (include/uapi/linux/in.h).
SIOCGSKNS = 0x894C  # the network namespace of a socket, as a new fd (linux/sockios.h)


#: Largest IPv4 packet; raw IGMP never comes close, but a truncated read would be a lie.
RECV_BUFFER = 65535
_ANCILLARY_SPACE = socket.CMSG_SPACE(IN_PKTINFO.size)

ROUTER_GROUPS = (ALL_IGMPV3_ROUTERS, ALL_ROUTERS)
#: sockets for the router groups' joins: 40 interfaces at the default limit of 20 joins
MEMBER_SOCKETS = 4


@dataclass(frozen=True, slots=True)
class Received:
    """One packet read from the socket: the whole IPv4 packet and its ingress ifindex.

    ``ifindex`` is 0 if the kernel gave no ``IP_PKTINFO`` (it always does on Linux).
    """

    data: bytes
    ifindex: int


class IgmpSocket:
    """A non-blocking raw IGMP socket with ``IP_PKTINFO`` and ``IP_HDRINCL`` on.

    ``IgmpSocket()`` opens a new socket; ``IgmpSocket(sock)`` wraps an existing raw
    IGMP socket (the daemon's ``MRT_INIT`` socket) and sets the same options on it.
    """

    def __init__(self, sock: socket.socket | None = None, *, multicast_loop: bool = False) -> None:
        if sock is None:
            try:
                sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
            except PermissionError as exc:
                raise McastError(
                    "cannot open a raw IGMP socket: permission denied; "
                    "run as root or with CAP_NET_RAW"
                ) from exc
            except OSError as exc:
                raise McastError(f"cannot open a raw IGMP socket: {exc.strerror}") from exc
        self.sock = sock
        # the sockets that hold the router groups' joins, made here so that they are in
        # the raw socket's network namespace, and which one holds each interface's
        self._members = _sockets_beside(sock, MEMBER_SOCKETS)
        self._joined: dict[int, socket.socket] = {}
        try:
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
            sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, int(multicast_loop))
            sock.setblocking(False)
            # A burst of reports (a LAN answering one general query, upcalls for many new
            # flows) must wait in the socket while the loop handles it in time slices;
            # SO_RCVBUFFORCE (root) passes net.core.rmem_max, SO_RCVBUF is the fallback.
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, RECEIVE_BUFFER)
            except OSError:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        except OSError as exc:
            raise McastError(
                f"cannot set IP_PKTINFO/IP_HDRINCL on the IGMP socket: {exc.strerror}; "
                "is it a raw IPPROTO_IGMP socket?"
            ) from exc

    def fileno(self) -> int:
        return self.sock.fileno()

    def join_router_groups(self, ifindex: int) -> None:
        """Join 224.0.0.22 (IGMPv3 reports) and 224.0.0.2 (v2 leaves) on ``ifindex``,
        from the first membership socket with room for both.

        Joining where the groups are already joined is not an error.
        """
        if ifindex in self._joined:
            return
        for member in self._members:
            try:
                for group in ROUTER_GROUPS:
                    _membership(member, socket.IP_ADD_MEMBERSHIP, group, ifindex)
            except _Full:
                for group in ROUTER_GROUPS:  # undo a half join, then try the next socket
                    with contextlib.suppress(McastError):
                        _membership(member, socket.IP_DROP_MEMBERSHIP, group, ifindex)
                continue
            self._joined[ifindex] = member
            return
        raise McastError(
            f"cannot join {ROUTER_GROUPS[0]} and {ROUTER_GROUPS[1]} on interface index "
            f"{ifindex}: the per-socket limit net.ipv4.igmp_max_memberships "
            f"({_max_memberships()}) is reached on all {len(self._members)} membership "
            f"sockets ({len(self._joined)} interfaces joined); raise it, e.g. "
            "sysctl -w net.ipv4.igmp_max_memberships=20")

    def leave_router_groups(self, ifindex: int) -> None:
        """Undo :meth:`join_router_groups` (an interface not joined is not an error)."""
        member = self._joined.pop(ifindex, None)
        if member is None:
            return
        for group in ROUTER_GROUPS:
            _membership(member, socket.IP_DROP_MEMBERSHIP, group, ifindex)

    def recv(self) -> Received | None:
        """Read one packet, or return None if none is waiting."""
        try:
            data, ancdata, _flags, _addr = self.sock.recvmsg(RECV_BUFFER, _ANCILLARY_SPACE)
        except (BlockingIOError, InterruptedError):
            return None
        except OSError as exc:
            raise McastError(f"reading the IGMP socket failed: {exc.strerror}") from exc
        ifindex = 0
        for level, kind, payload in ancdata:
            if (level, kind) == (socket.IPPROTO_IP, IP_PKTINFO) and len(payload) >= IN_PKTINFO.size:
                ifindex = IN_PKTINFO.unpack_from(payload)[0]
        return Received(data, ifindex)

    def send(self, ip_packet: bytes, ifindex: int) -> None:
        """Send a whole IPv4 packet (header included) out of interface ``ifindex``.

        The destination is read from the packet's header; the kernel fills in the IP
        header checksum and total length.
        """
        if len(ip_packet) < 20:
            raise McastError(f"cannot send {len(ip_packet)} bytes: not an IPv4 packet")
        dst = str(IPv4Address(ip_packet[16:20]))
        pktinfo = IN_PKTINFO.pack(ifindex, bytes(4), bytes(4))
        try:
            self.sock.sendmsg([ip_packet], [(socket.IPPROTO_IP, IP_PKTINFO, pktinfo)], 0, (dst, 0))
        except OSError as exc:
            raise McastError(
                f"sending {len(ip_packet)} bytes to {dst} on interface index {ifindex} "
                f"failed: {exc.strerror}; check that the interface is up and has an address"
            ) from exc
        log.debug("sent %d bytes to %s on ifindex %d", len(ip_packet), dst, ifindex)

    def close(self) -> None:
        for member in self._members:
            member.close()
        self._members.clear()
        self._joined.clear()
        self.sock.close()

    def __enter__(self) -> IgmpSocket:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _sockets_beside(sock: socket.socket, count: int) -> list[socket.socket]:
    """``count`` UDP sockets in the network namespace of ``sock``, which may not be the
    caller's (a socket made inside a lab node and wrapped outside it): a join must never
    land in another namespace."""
    def make() -> list[socket.socket]:
        return [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(count)]

    try:
        netns = fcntl.ioctl(sock.fileno(), SIOCGSKNS)
    except OSError:
        # Without CAP_NET_ADMIN (a querier run with CAP_NET_RAW only) the kernel does not
        # say; such a process cannot enter another namespace either, so its raw socket
        # was made in its own, where these go too.
        return make()
    try:
        theirs = os.fstat(netns)
        ours = os.stat("/proc/thread-self/ns/net")
        if (theirs.st_dev, theirs.st_ino) == (ours.st_dev, ours.st_ino):
            return make()
        from mrouter.lab.netns import call_in_thread, setns

        def make_there() -> list[socket.socket]:
            setns(netns)  # a throw-away thread: no need to switch back
            return make()

        return call_in_thread(make_there)
    finally:
        os.close(netns)


class _Full(Exception):
    """A membership socket is at igmp_max_memberships (ENOBUFS)."""


def _membership(sock: socket.socket, option: int, group: IPv4Address, ifindex: int) -> None:
    mreqn = IP_MREQN.pack(group.packed, bytes(4), ifindex)
    try:
        sock.setsockopt(socket.IPPROTO_IP, option, mreqn)
    except OSError as exc:
        join = option == socket.IP_ADD_MEMBERSHIP
        if exc.errno == (errno.EADDRINUSE if join else errno.EADDRNOTAVAIL):
            return  # already joined / not joined
        if join and exc.errno == errno.ENOBUFS:
            raise _Full from exc
        raise McastError(
            f"cannot {'join' if join else 'leave'} {group} on interface index {ifindex}: "
            f"{exc.strerror}; check that the interface exists, is up and has multicast "
            "enabled"
        ) from exc


def _max_memberships() -> str:
    try:
        with open("/proc/sys/net/ipv4/igmp_max_memberships") as f:
            return f"now {f.read().strip()}"
    except OSError:
        return "unknown"
