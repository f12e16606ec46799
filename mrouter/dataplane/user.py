"""The userspace data plane: multicast forwarding with packet sockets, no kernel MFC.

Theory of operation: one AF_PACKET socket per interface receives the IPv4 multicast
packets that arrive there. A classic BPF program in the kernel passes only what the
data plane wants: frames that came in as multicast (not our own sends, not loopback
copies), IPv4, a destination in 224.0.0.0/4, and not IGMP (the daemon's IGMP socket has
those). PACKET_IGNORE_OUTGOING says the same for outgoing frames before the filter runs.

The sockets are SOCK_RAW with PACKET_VNET_HDR: each frame comes with a virtio_net_hdr
that carries its checksum-offload state. A local sender's UDP checksum on a veth (or a
NIC with offload) is still *partial* when it reaches us (VIRTIO_NET_HDR_F_NEEDS_CSUM):
the kernel keeps that state when it forwards, and so do we, by writing the header back
when sending, so the kernel or the NIC finishes the checksum (and GSO frames go out as
they came in). Reading without it hands out frames whose UDP checksum is wrong.

For each packet the (S, G) words of the header, with the socket's inbound interface,
key a cache of :class:`_Route` entries. An entry holds, for every possible TTL, the
send targets the packet goes to (:func:`forward.decisions_by_ttl`). The per-packet work
is then: one ``recv_into`` a preallocated buffer, one dictionary lookup, one tuple
index, the RFC 1624 TTL/checksum fix-up in place, and per oif the source MAC written
and one ``send``. :meth:`UserDataplane.invalidate` drops the cache when routes or
membership change; the next packet of each (S, G, iif) asks the route table again.

Two ways to send, chosen with ``send_with`` (``scripts/bench_dataplane.py`` measures
both): a packet socket bound to each oif (the frame as received, destination MAC the
group's, RFC 1112 §6.4, source MAC the oif's), or an IPPROTO_RAW socket per oif
(IP_HDRINCL implied) with IP_MULTICAST_IF, which lets the kernel build the frame; that
one cannot carry the offload state, so partial checksums are finished in Python.

The IP header checksum is not verified on receive (a full sum per packet in Python):
the incremental update keeps a bad checksum bad (RFC 1624 §3), so the next hop's IP
layer drops such a packet as it would have here.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import socket
import struct
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from enum import Enum
from ipaddress import IPv4Address
from typing import Any

from mrouter.dataplane.forward import Decision, DropReason, decisions_by_ttl, multicast_mac
from mrouter.errors import MrouterError
from mrouter.igmp.ipv4 import MIN_HEADER_LEN
from mrouter.igmp.messages import LINK_LOCAL
from mrouter.linux import bpf
from mrouter.linux.constants import ETH_P_IP, IP_MREQN, IPPROTO_IGMP, IPV4_SRC_OFFSET, SOL_PACKET

log = logging.getLogger(__name__)

Lookup = Callable[[IPv4Address, IPv4Address, str], frozenset[str]]
OnDecision = Callable[[dict[str, Any]], None]

PACKET_IGNORE_OUTGOING = 23  # linux/if_packet.h, Linux >= 4.20; Python lacks it
RECV_BUFFER = 65536
SOCKET_RCVBUF = 4 * 1024 * 1024

# The (source, group) words of an IPv4 header, as one 64-bit key.
SG_WORDS = struct.Struct("!Q")
SG_OFFSET = IPV4_SRC_OFFSET
ETH_HLEN = 14
PACKET_VNET_HDR = 15
PACKET_STATISTICS = 6
# struct tpacket_stats { unsigned int tp_packets, tp_drops; } (reading resets them)
TPACKET_STATS = struct.Struct("=II")
# struct virtio_net_hdr { u8 flags; u8 gso_type; u16 hdr_len, gso_size, csum_start,
# csum_offset; } (host order), before the Ethernet header of each frame
VNET_HDR_LEN = 10
VNET_F_NEEDS_CSUM = 1
VNET_U16 = struct.Struct("=H")
VNET_CSUM_START, VNET_CSUM_OFFSET = 6, 8
ETH = VNET_HDR_LEN  # where the Ethernet header starts in the buffer
ETH_SRC = ETH + 6
IP = ETH + ETH_HLEN  # where the IP header starts

# Multicast IPv4 received from the link, from the Ethernet header on (SOCK_RAW), except
# IGMP: that belongs to the daemon's IGMP socket.
FILTER = bpf.received_multicast_except(IPPROTO_IGMP, RECV_BUFFER, link_header=ETH_HLEN)


class DataplaneError(MrouterError):
    """The userspace data plane could not open or use its sockets."""


class SendWith(Enum):
    """How forwarded packets are sent (see the module docstring)."""

    PACKET = "packet"
    RAW = "raw"


@dataclass(frozen=True, slots=True)
class DataplaneInterface:
    """One interface the data plane forwards between; ``ttl_threshold`` as a VIF's."""

    name: str
    ifindex: int
    ttl_threshold: int = 1


@dataclass(slots=True)
class InterfaceCounters:
    packets_in: int = 0
    bytes_in: int = 0
    packets_out: int = 0
    bytes_out: int = 0
    drops: dict[DropReason, int] = field(default_factory=dict)
    socket_drops: int = 0  # frames the kernel dropped because our socket queue was full

    def as_dict(self) -> dict[str, Any]:
        return {"packets_in": self.packets_in, "bytes_in": self.bytes_in,
                "packets_out": self.packets_out, "bytes_out": self.bytes_out,
                "socket_drops": self.socket_drops,
                "drops": {str(r): n for r, n in sorted(self.drops.items())}}


@dataclass(slots=True)
class RouteCounters:
    """Per (S, G, iif): packets and bytes received, copies sent, drops by reason."""

    packets: int = 0
    bytes: int = 0
    forwarded: int = 0
    drops: dict[DropReason, int] = field(default_factory=dict)


# One send target: (send of the oif's socket, the oif's MAC for PACKET sends or the
# group's address for RAW sends, counters of the oif). Tuples, not objects, because
# the loop unpacks them per packet.
_Target = tuple[Callable[..., int], Any, InterfaceCounters]


@dataclass(slots=True)
class _Route:
    source: IPv4Address
    group: IPv4Address
    iif: str
    oifs: frozenset[str]
    group_mac: bytes
    by_ttl: tuple[tuple[_Target, ...], ...]  # 256 entries, index = TTL as received
    reason_by_ttl: tuple[DropReason | None, ...]
    decision_by_ttl: tuple[Decision, ...]
    counters: RouteCounters


@dataclass(slots=True)
class _Port:
    """One interface's receive socket, buffer, cache and counters."""

    iface: DataplaneInterface
    sock: socket.socket
    buf: bytearray
    view: memoryview
    cache: dict[int, _Route]
    counters: InterfaceCounters
    send_sock: socket.socket
    mac: bytes


def _packet_socket(iface: DataplaneInterface, *, receive: bool) -> socket.socket:
    """A non-blocking SOCK_RAW packet socket with PACKET_VNET_HDR, bound to ``iface``.

    A receiving one is created with protocol 0 (receiving nothing), filtered, then bound
    to ETH_P_IP, so no unfiltered frame is ever queued on it. A sending one is bound
    with protocol 0, so it receives nothing at all.
    """
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
    try:
        sock.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
        if receive:
            bpf.attach_filter(sock, FILTER)
            with contextlib.suppress(OSError):  # old kernels: the BPF pkttype test does it
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_RCVBUF)
        sock.bind((iface.name, ETH_P_IP if receive else 0))
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def open_raw_sender(iface: DataplaneInterface) -> socket.socket:
    """An IPPROTO_RAW socket that sends whole IPv4 packets out of ``iface``."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_IF,
                        IP_MREQN.pack(bytes(4), bytes(4), iface.ifindex))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def complete_checksum(buf: bytearray, total: int) -> None:
    """Finish a partial transport checksum (VIRTIO_NET_HDR_F_NEEDS_CSUM) in place.

    The field at csum_start + csum_offset holds the pseudo-header sum; the checksum is
    the complement of the ones'-complement sum from csum_start to the end, which is the
    big-endian number those bytes spell modulo 0xFFFF (2**16 = 1 mod 0xFFFF).
    """
    start = ETH + VNET_U16.unpack_from(buf, VNET_CSUM_START)[0]
    at = start + VNET_U16.unpack_from(buf, VNET_CSUM_OFFSET)[0]
    end = IP + total
    data = buf[start:end] if (end - start) % 2 == 0 else buf[start:end] + b"\0"
    folded = int.from_bytes(data, "big") % 0xFFFF or 0xFFFF
    checksum = (folded ^ 0xFFFF) or 0xFFFF  # RFC 768: a computed 0 is sent as 0xFFFF
    buf[at] = checksum >> 8
    buf[at + 1] = checksum & 0xFF
    buf[0] &= ~VNET_F_NEEDS_CSUM & 0xFF


class UserDataplane:
    """Forward IPv4 multicast between ``interfaces`` as ``lookup`` says.

    ``lookup(source, group, iif) -> oifs`` is the route table's question (the daemon's
    ``RouteTable.oifs`` fits as is); its answers are cached per (S, G, iif) until
    :meth:`invalidate`. ``on_decision`` (optional) receives one dict per packet:
    ``{"source", "group", "iif", "ttl", "oifs", "held_back", "reason"}`` (``reason``
    None when forwarded). Register :meth:`filenos` in a selector and call
    :meth:`handle_readable` with the fd that is readable; it reads at most ``batch``
    packets and never blocks.
    """

    def __init__(self, interfaces: Iterable[DataplaneInterface], lookup: Lookup, *,
                 on_decision: OnDecision | None = None, batch: int = 64,
                 send_with: SendWith = SendWith.PACKET) -> None:
        self.lookup = lookup
        self.on_decision = on_decision
        self.batch = batch
        self.send_with = send_with
        self._ports: dict[str, _Port] = {}
        self._by_fd: dict[int, _Port] = {}
        self._route_counters: dict[tuple[IPv4Address, IPv4Address, str], RouteCounters] = {}
        try:
            self.set_interfaces(interfaces)
        except BaseException:
            self.close()
            raise

    # --- interfaces ------------------------------------------------------------------
    def set_interfaces(self, interfaces: Iterable[DataplaneInterface]) -> None:
        """Forward between exactly these interfaces from now on (opens and closes
        sockets as needed; re-register :meth:`filenos` afterwards)."""
        wanted = {i.name: i for i in interfaces}
        for name in [n for n, p in self._ports.items() if wanted.get(n) != p.iface]:
            self._close_port(self._ports.pop(name))
        for name, iface in wanted.items():
            if name not in self._ports:
                self._ports[name] = self._open_port(iface)
        self._by_fd = {p.sock.fileno(): p for p in self._ports.values()}
        self.invalidate()

    def _open_port(self, iface: DataplaneInterface) -> _Port:
        try:
            sock = _packet_socket(iface, receive=True)
        except OSError as exc:
            raise DataplaneError(
                f"cannot open a packet socket on interface {iface.name} (ifindex "
                f"{iface.ifindex}): {exc.strerror}; the userspace data plane needs root "
                "(CAP_NET_RAW) and an existing interface") from None
        try:
            if self.send_with is SendWith.RAW:
                send_sock = open_raw_sender(iface)
            else:
                send_sock = _packet_socket(iface, receive=False)
        except OSError as exc:
            sock.close()
            raise DataplaneError(f"cannot open a send socket on interface {iface.name}: "
                                 f"{exc.strerror}; run as root") from None
        mac: bytes = sock.getsockname()[4]  # sll_addr of a bound socket: the interface's
        buf = bytearray(RECV_BUFFER)
        return _Port(iface, sock, buf, memoryview(buf), {}, InterfaceCounters(), send_sock,
                     mac)

    @staticmethod
    def _close_port(port: _Port) -> None:
        port.sock.close()
        port.send_sock.close()

    @property
    def interfaces(self) -> list[DataplaneInterface]:
        return [p.iface for p in self._ports.values()]

    def filenos(self) -> list[int]:
        """The receive sockets' fds, one per interface, to register for reading."""
        return list(self._by_fd)

    def sockets(self) -> list[socket.socket]:
        """The receive sockets themselves: after :meth:`set_interfaces` a new socket may
        reuse a closed one's fd, so a selector is best synced on socket identity."""
        return [p.sock for p in self._ports.values()]

    def invalidate(self) -> None:
        """Forget every cached route answer (routes, membership or interfaces changed)."""
        for port in self._ports.values():
            port.cache.clear()

    def close(self) -> None:
        for port in self._ports.values():
            self._close_port(port)
        self._ports.clear()
        self._by_fd.clear()

    def __enter__(self) -> UserDataplane:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the per-packet path -----------------------------------------------------------
    def handle_readable(self, fd: int) -> int:
        """Read and forward up to ``batch`` packets from the socket ``fd``; returns how
        many were read."""
        port = self._by_fd.get(fd)
        if port is None:
            return 0
        recv_into = port.sock.recv_into
        buf, view, cache, counters = port.buf, port.view, port.cache, port.counters
        unpack_sg = SG_WORDS.unpack_from
        on_decision = self.on_decision
        raw = self.send_with is SendWith.RAW
        read = 0
        while read < self.batch:
            try:
                length = recv_into(buf) - IP
            except BlockingIOError:
                break
            except OSError as exc:  # ENETDOWN and the like: the link went away
                log.warning("receive on %s failed: %s", port.iface.name, exc.strerror)
                break
            read += 1
            counters.packets_in += 1
            counters.bytes_in += length
            # the IP header starts at IP (after virtio_net_hdr and Ethernet); its total
            # length trims the Ethernet padding of short frames
            total = buf[IP + 2] << 8 | buf[IP + 3]
            if length < MIN_HEADER_LEN or not MIN_HEADER_LEN <= total <= length:
                self._drop(counters, None, DropReason.MALFORMED)
                continue
            (sg,) = unpack_sg(buf, IP + SG_OFFSET)
            route = cache.get(sg)
            if route is None:
                route = cache[sg] = self._resolve(port, sg)
            ttl = buf[IP + 8]
            rc = route.counters
            rc.packets += 1
            rc.bytes += total
            targets = route.by_ttl[ttl]
            if on_decision is not None:
                self._report(route, ttl)
            if not targets:
                reason = route.reason_by_ttl[ttl]
                assert reason is not None
                self._drop(counters, rc, reason)
                continue
            # RFC 1624 eqn. 3 inline (forward.decrement_ttl, unrolled for speed)
            buf[IP + 8] = ttl - 1
            check = ((buf[IP + 10] << 8 | buf[IP + 11]) ^ 0xFFFF) + 0xFEFF
            check = ((check & 0xFFFF) + (check >> 16)) ^ 0xFFFF
            buf[IP + 10] = check >> 8
            buf[IP + 11] = check & 0xFF
            if raw:
                if buf[0] & VNET_F_NEEDS_CSUM:
                    complete_checksum(buf, total)
                packet = view[IP:IP + total]
                for send, address, out in targets:
                    try:
                        send(packet, address)
                    except OSError as exc:
                        self._send_failed(route, out, exc)
                        continue
                    out.packets_out += 1
                    out.bytes_out += total
                    rc.forwarded += 1
            else:
                buf[0] &= VNET_F_NEEDS_CSUM  # DATA_VALID is for receive only
                buf[ETH:ETH_SRC] = route.group_mac
                packet = view[:IP + total]
                for send, mac, out in targets:
                    buf[ETH_SRC:IP - 2] = mac
                    try:
                        send(packet)
                    except OSError as exc:
                        self._send_failed(route, out, exc)
                        continue
                    out.packets_out += 1
                    out.bytes_out += total
                    rc.forwarded += 1
            packet.release()
        return read

    def _send_failed(self, route: _Route, out: InterfaceCounters, exc: OSError) -> None:
        if exc.errno not in (errno.EAGAIN, errno.ENOBUFS, errno.ENETDOWN, errno.ENXIO):
            log.warning("send (%s, %s) failed: %s", route.source, route.group, exc.strerror)
        self._drop(out, route.counters, DropReason.SEND_FAILED)

    @staticmethod
    def _drop(counters: InterfaceCounters, rc: RouteCounters | None,
              reason: DropReason) -> None:
        counters.drops[reason] = counters.drops.get(reason, 0) + 1
        if rc is not None:
            rc.drops[reason] = rc.drops.get(reason, 0) + 1

    def _report(self, route: _Route, ttl: int) -> None:
        assert self.on_decision is not None
        decision = route.decision_by_ttl[ttl]
        self.on_decision({
            "source": str(route.source), "group": str(route.group), "iif": route.iif,
            "ttl": ttl, "oifs": list(decision.oifs), "held_back": list(decision.held_back),
            "reason": None if decision.reason is None else str(decision.reason)})

    def _resolve(self, port: _Port, sg: int) -> _Route:
        source, group = IPv4Address(sg >> 32), IPv4Address(sg & 0xFFFFFFFF)
        iif = port.iface.name
        oifs = frozenset() if group in LINK_LOCAL else self.lookup(source, group, iif)
        thresholds = {name: p.iface.ttl_threshold for name, p in self._ports.items()}
        decisions = decisions_by_ttl(group, iif, oifs, thresholds)
        targets = {name: self._target(self._ports[name], group) for name in oifs
                   if name in self._ports}
        by_ttl = tuple(tuple(targets[o] for o in d.oifs) for d in decisions)
        key = (source, group, iif)
        counters = self._route_counters.setdefault(key, RouteCounters())
        log.debug("route (%s, %s) from %s: %s", source, group, iif,
                  ", ".join(sorted(oifs)) or "nowhere")
        return _Route(source, group, iif, oifs, multicast_mac(group), by_ttl,
                      tuple(d.reason for d in decisions), tuple(decisions), counters)

    def _target(self, port: _Port, group: IPv4Address) -> _Target:
        if self.send_with is SendWith.RAW:
            return (port.send_sock.sendto, (str(group), 0), port.counters)
        return (port.send_sock.send, port.mac, port.counters)

    # --- counters ----------------------------------------------------------------------
    def interface_counters(self) -> dict[str, dict[str, Any]]:
        """Per interface: packets/bytes in and out, drops by reason, socket drops."""
        for port in self._ports.values():
            with contextlib.suppress(OSError):
                raw = port.sock.getsockopt(SOL_PACKET, PACKET_STATISTICS, TPACKET_STATS.size)
                port.counters.socket_drops += TPACKET_STATS.unpack(raw)[1]
        return {name: p.counters.as_dict() for name, p in sorted(self._ports.items())}

    def route_counters(self) -> Iterator[dict[str, Any]]:
        for (source, group, iif), c in sorted(self._route_counters.items(),
                                              key=lambda kv: (kv[0][0], kv[0][1], kv[0][2])):
            yield {"source": str(source), "group": str(group), "iif": iif,
                   "packets": c.packets, "bytes": c.bytes, "forwarded": c.forwarded,
                   "drops": {str(r): n for r, n in sorted(c.drops.items())}}

    def packet_counts(self) -> dict[tuple[IPv4Address, IPv4Address], int]:
        """Packets received per (S, G), the shape ForwardingCache.age() wants."""
        out: dict[tuple[IPv4Address, IPv4Address], int] = {}
        for (source, group, _), c in self._route_counters.items():
            out[(source, group)] = out.get((source, group), 0) + c.packets
        return out

    def forget(self, source: IPv4Address, group: IPv4Address) -> None:
        """Drop the counters of (S, G) (after the daemon aged its route out)."""
        for key in [k for k in self._route_counters if k[:2] == (source, group)]:
            del self._route_counters[key]
        self.invalidate()  # cached routes hold the counters just dropped
