"""The I/O shell around the IGMP (and MLD) engine: a raw socket, a clock and a loop.

Theory of operation: :class:`QuerierShell` owns nothing but plumbing. It reads whole
IPv4 packets from an :class:`~mrouter.sockets.igmp_socket.IgmpSocket`, decodes them
(:mod:`mrouter.igmp.codec`), maps the ingress ifindex to the engine's interface name
and calls :meth:`Engine.receive` with the time from the injected ``clock``. It performs
what comes back - a :class:`SendQuery` becomes a packet from the interface's address
with TTL 1 and Router Alert - and hands every action to ``on_action`` (the CLI prints
them; the daemon programs routes from :class:`MembershipChanged`). Between packets it
sleeps until :meth:`Engine.next_deadline` and then calls :meth:`Engine.tick`, exactly
as aioquic's shells do with ``get_timer()`` / ``handle_timer()``.

Where the reports come from. Linux delivers an IGMP packet to a raw socket only if
the host accepts the destination: 224.0.0.1, the groups it joined (224.0.0.22 and
224.0.0.2 via :meth:`IgmpSocket.join_router_groups`), or any group on an interface that
is a multicast-routing VIF. An IGMPv1/v2 report goes to the group itself, so a
standalone querier (no ``MRT_INIT``, no VIFs) would never hear it. It therefore reads
IGMP with :class:`IgmpTap`, an ``AF_PACKET`` socket with a BPF filter that keeps IP
protocol 2 (what tcpdump does), and uses the raw socket only to send, with a drop-all
filter on it so that nothing is read twice. The daemon instead passes no tap: its
``MRT_INIT`` socket, wrapped in an IgmpSocket, hears every report on its VIFs, and
kernel upcalls (:func:`~mrouter.kernel.mroute.is_upcall`: protocol byte 0) go to ``on_other``.

MLD is the same shell over the IPv6 family: an engine built with
:data:`~mrouter.igmp.family.IPV6` picks the MLD :class:`Wire` (the MLD codec, the
link-local source address of :func:`~mrouter.sockets.mld_socket.link_local`), and the
sockets are :class:`~mrouter.sockets.mld_socket.MldSocket` (sends with hop limit 1 and
the Hop-by-Hop Router Alert) and :class:`~mrouter.sockets.mld_socket.MldTap` (hears
MLDv1 reports sent to the groups themselves). Everything else, the loop included, is
one code path for both.
"""

from __future__ import annotations

import logging
import selectors
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, Protocol

from mrouter.errors import CodecError, EngineError, McastError
from mrouter.igmp import codec as igmp_codec
from mrouter.igmp.codec import Packet
from mrouter.igmp.engine import (
    Action,
    Dropped,
    DropReason,
    Engine,
    InterfaceSettings,
    MembershipChanged,
    QuerierChanged,
    SendQuery,
    TimerExpired,
)
from mrouter.kernel import mroute6
from mrouter.kernel.mroute import is_upcall
from mrouter.linux import bpf
from mrouter.linux.constants import ETH_P_IP, IPPROTO_IGMP
from mrouter.mld import codec as mld_codec
from mrouter.sockets.igmp_socket import Received
from mrouter.sockets.tap import PacketTap

log = logging.getLogger(__name__)

READ_BATCH = 64  # packets handled per readable event before the loop looks around again
#: ... and at most this long: one report may carry hundreds of records, so a count alone
#: does not keep a burst from holding the loop (control socket, timers) for a second
READ_SLICE = 0.02

_FIRST = (MembershipChanged, TimerExpired)  # actions handed on before the others

#: The IGMP tap's filter: IP protocol 2, whole packets (up to 65535 bytes).
IGMP_ONLY = bpf.ip_protocol(IPPROTO_IGMP, 0xFFFF)


class PacketSocket(Protocol):
    """What the shell needs of its socket: :class:`~mrouter.sockets.igmp_socket.IgmpSocket`
    or :class:`~mrouter.sockets.mld_socket.MldSocket` (whole IP packets both ways)."""

    sock: socket.socket

    def fileno(self) -> int: ...
    def recv(self) -> Received | None: ...
    def send(self, ip_packet: bytes, ifindex: int) -> None: ...
    def join_router_groups(self, ifindex: int) -> None: ...
    def leave_router_groups(self, ifindex: int) -> None: ...


class Tap(Protocol):
    def fileno(self) -> int: ...
    def recv(self) -> Received | None: ...


def _igmp_address(name: str) -> tuple[int, Any, Any]:
    from mrouter.sockets.mcast import interface  # pyroute2 is slow to import

    found = interface(name)
    if not found.addresses:
        raise EngineError(
            f"interface {name} has no IPv4 address; a querier needs one to send "
            "queries from (add one with 'ip addr add')")
    return found.index, found.addresses[0].ip, found.addresses[0].network


def _mld_address(name: str) -> tuple[int, Any, Any]:
    from mrouter.sockets.mld_socket import link_local

    found = link_local(name)
    return found.ifindex, found.address, found.network


@dataclass(frozen=True, slots=True)
class Wire:
    """One protocol's packets as the shell handles them: decode a whole IP packet (to
    a codec ``Packet``), read its message, source, destination, hop limit and Router
    Alert, encode a query from the interface's address, tell kernel upcalls apart, and
    find the address an interface sends from."""

    protocol: str
    decode: Callable[[bytes], Any]
    encode: Callable[[Any, Any, Any], bytes]  # (query, src, dst) -> whole IP packet
    message: Callable[[Any], Any]
    hop_limit: Callable[[Any], int]
    is_upcall: Callable[[bytes], bool]
    address: Callable[[str], tuple[int, Any, Any]]  # name -> (ifindex, address, network)


IGMP_WIRE = Wire("IGMP", igmp_codec.decode_packet, igmp_codec.encode_packet,
                 lambda p: p.igmp, lambda p: p.ip.ttl, is_upcall, _igmp_address)
# MLD upcalls (MRT6, im6_mbz 0) reach the daemon's MldSocket, which returns them without
# an IPv6 header (an MLD packet it returns starts with IPv6's version nibble, 6)
MLD_WIRE = Wire("MLD", mld_codec.decode_packet, mld_codec.encode_packet,
                lambda p: p.mld, lambda p: p.ip.hop_limit, mroute6.is_upcall, _mld_address)
WIRES = {"IGMP": IGMP_WIRE, "MLD": MLD_WIRE}


class IgmpTap(PacketTap):
    """Every IGMP packet seen on the node's interfaces, from an AF_PACKET socket.

    ``recv`` returns the same :class:`Received` as :meth:`IgmpSocket.recv` (the whole IP
    packet and its ifindex) and skips packets this host sent itself.
    """

    def __init__(self) -> None:
        super().__init__("IGMP", ETH_P_IP, IGMP_ONLY)


@dataclass(frozen=True, slots=True)
class ShellInterface:
    name: str
    ifindex: int
    address: IPv4Address | IPv6Address
    network: IPv4Network | IPv6Network


class QuerierShell:
    """Feed an :class:`Engine` from an :class:`IgmpSocket` (an MLD engine from an
    :class:`~mrouter.sockets.mld_socket.MldSocket`) and perform its actions."""

    def __init__(
        self, engine: Engine, sock: PacketSocket, clock: Callable[[], float] = time.monotonic,
        on_action: Callable[[Action], None] | None = None,
        on_other: Callable[[Received], None] | None = None, tap: Tap | None = None,
        on_igmp: Callable[[str, Packet, float], None] | None = None,
    ) -> None:
        self.engine = engine
        self.wire = WIRES[engine.family.adapter.protocol]
        self.sock = sock
        self.tap = tap
        if tap is not None:
            bpf.attach_filter(sock.sock, bpf.DROP_ALL)  # the tap reads; the raw socket only sends
        self.clock = clock
        self.on_action = on_action
        self.on_other = on_other
        # each decoded IGMP (MLD) packet with its interface name and arrival time, called
        # after its actions were performed (so that a join reaches the routes first)
        self.on_igmp = on_igmp
        self._by_index: dict[int, ShellInterface] = {}
        self._by_name: dict[str, ShellInterface] = {}
        self.undecodable = 0
        self._full_warned: set[str] = set()

    # ------------------------------------------------------------- interfaces

    def add_interface(
        self, name: str, settings: InterfaceSettings, *, ifindex: int | None = None,
        address: IPv4Address | IPv6Address | None = None,
        network: IPv4Network | IPv6Network | None = None,
    ) -> ShellInterface:
        """Start IGMP (MLD) on ``name``; index and address (MLD: the link-local one) are
        looked up when not given."""
        if ifindex is None or address is None or network is None:
            found_index, found_address, found_network = self.wire.address(name)
            ifindex = found_index if ifindex is None else ifindex
            address = found_address if address is None else address
            network = found_network if network is None else network
        iface = ShellInterface(name, ifindex, address, network)
        self.sock.join_router_groups(ifindex)
        self._by_index[ifindex] = iface
        self._by_name[name] = iface
        self.perform(self.engine.add_interface(name, address, network, settings, self.clock()))
        return iface

    def interface(self, name: str) -> ShellInterface | None:
        """The interface ``name`` as the shell runs it (index, source address), if it does."""
        return self._by_name.get(name)

    def remove_interface(self, name: str) -> None:
        iface = self._by_name[name]
        self.perform(self.engine.remove_interface(name, self.clock()))
        del self._by_name[name], self._by_index[iface.ifindex]
        self.sock.leave_router_groups(iface.ifindex)

    # ------------------------------------------------------------- events

    def handle_readable(self, batch: int = READ_BATCH) -> None:
        """Read and handle up to ``batch`` waiting packets (from the socket or the tap).

        Bounded in count and in time (:data:`READ_SLICE`) so that a flood cannot starve
        the rest of the loop (timers, the daemon's control socket): what is left is read
        on the next turn, as the socket stays readable.
        """
        source: PacketSocket | Tap = self.tap if self.tap is not None else self.sock
        until = time.perf_counter() + READ_SLICE
        for _ in range(batch):
            received = source.recv()
            if received is None:
                return
            self.handle_packet(received)
            if time.perf_counter() > until:
                return

    def handle_packet(self, received: Received) -> None:
        data = received.data
        wire = self.wire
        if wire.is_upcall(data):
            if self.on_other is not None:
                self.on_other(received)
            return
        iface = self._by_index.get(received.ifindex)
        if iface is None:
            return  # IGMP on an interface we do not run
        try:
            packet = wire.decode(data)
        except CodecError as exc:
            self.undecodable += 1
            log.debug("%s: undecodable %s packet: %s", iface.name, wire.protocol, exc)
            return
        message = wire.message(packet)
        log.debug("%s: %s -> %s %s", iface.name, packet.ip.src, packet.ip.dst, message)
        now = self.clock()
        self.perform(self.engine.receive(
            iface.name, packet.ip.src, packet.ip.dst, message, now,
            ttl=wire.hop_limit(packet), router_alert=packet.ip.router_alert))
        if self.on_igmp is not None:
            self.on_igmp(iface.name, packet, now)

    def handle_timers(self) -> None:
        self.perform(self.engine.tick(self.clock()))

    def timeout(self) -> float | None:
        """Seconds until the engine's next deadline (None: no timer armed)."""
        deadline = self.engine.next_deadline()
        return None if deadline is None else max(0.0, deadline - self.clock())

    def perform(self, actions: list[Action]) -> None:
        # Membership changes go to on_action (the daemon's routes) before anything else:
        # the time from a report to forwarding is what a receiver waits for. The timer
        # expiries that caused some of them go in the same pass, so they stay first.
        if self.on_action is not None:
            for action in actions:
                if isinstance(action, _FIRST):
                    self.on_action(action)
        for action in actions:
            if isinstance(action, SendQuery):
                iface = self._by_name.get(action.iface)
                if iface is None:
                    continue
                packet = self.wire.encode(action.query, iface.address, action.dst)
                try:
                    self.sock.send(packet, iface.ifindex)
                except McastError as exc:
                    # A link that went down or lost its address must not stop the loop: the
                    # engine re-sends on its next timer, and netlink events restart the
                    # interface when it comes back.
                    log.warning("%s: query not sent: %s", iface.name, exc)
                else:
                    log.debug("%s: sent %s to %s", iface.name, action.query, action.dst)
            elif isinstance(action, MembershipChanged):
                log.info("%s: %s %s {%s}", action.iface, action.group, action.filter_mode.name,
                         ", ".join(map(str, sorted(action.sources))))
            elif isinstance(action, QuerierChanged):
                log.info("%s: querier is now %s%s", action.iface, action.querier,
                         " (this router)" if action.is_self else "")
            elif isinstance(action, TimerExpired):
                log.debug("%s: %s timer expired%s%s", action.iface, action.timer,
                          f" for {action.group}" if action.group else "",
                          f" source {action.source}" if action.source else "")
            elif isinstance(action, Dropped):
                # A full group table is worth a warning, once per interface (a flood would
                # otherwise fill the log); every other drop is routine and counted.
                if action.reason is DropReason.GROUP_LIMIT \
                        and action.iface not in self._full_warned:
                    self._full_warned.add(action.iface)
                    log.warning("%s (further ones at debug level)", action.detail)
                else:
                    log.debug("dropped (%s): %s", action.reason, action.detail)
            if self.on_action is not None and not isinstance(action, _FIRST):
                self.on_action(action)

    # ------------------------------------------------------------- loop

    def run(self, should_stop: Callable[[], bool],
            extra: dict[int, Callable[[], None]] | None = None) -> None:
        """Loop until ``should_stop()``: packets, timers, and ``extra`` fds' callbacks."""
        with selectors.DefaultSelector() as sel:
            reader = self.tap if self.tap is not None else self.sock
            sel.register(reader.fileno(), selectors.EVENT_READ, self.handle_readable)
            for fd, callback in (extra or {}).items():
                sel.register(fd, selectors.EVENT_READ, callback)
            while not should_stop():
                for key, _ in sel.select(self.timeout()):
                    key.data()
                    if should_stop():
                        return
                self.handle_timers()
