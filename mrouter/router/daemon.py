"""The multicast routing daemon: kernel MFC, IGMP engine and control socket in one loop.

Theory of operation: one thread, one :mod:`selectors` loop, woken by

- the MRT_INIT raw IGMP socket, which carries both IGMP messages and kernel upcalls
  (``im_mbz == 0``). IGMP is read, decoded, given to the engine and its queries sent by
  the querier's shell (:class:`mrouter.router.querier.QuerierShell`, the same plumbing as
  ``mrouter querier``); upcalls come back here: a NOCACHE upcall makes the
  :class:`~mrouter.router.routes.ForwardingCache` install the (S,G) with the outbound
  interfaces the route table gives; WRONGVIF is counted and logged, never acted on
  (acting on it could loop);
- the engine's next deadline (``engine.next_deadline()``): ``engine.tick(now)``;
- the control socket (:mod:`mrouter.router.control`; its commands are
  :mod:`mrouter.router.handlers`), whose connections are polled for reading or, while a
  reply waits, for writing, and whose streamed replies go on a slice per turn;
- netlink link and address events (:mod:`mrouter.router.ifevents`): an interface that
  goes away or loses its address stops, and starts again on its VIF when it returns
  (:mod:`mrouter.router.interfaces`);
- signals, through a wakeup socket: SIGTERM/SIGINT stop (MRT_DONE empties the kernel
  table), SIGHUP reloads the config.

The engine's MembershipChanged updates the route table and at once every installed
(S,G) of that group; QuerierChanged decides forwarding in proxy mode; Dropped is counted
per interface and reason (``show interfaces``). In proxy mode (RFC 4605) the downstream
memberships are merged (:mod:`mrouter.router.proxy`) and joined on the upstream
interface (:mod:`mrouter.router.upstream`), so the kernel's host side sends the reports
upstream.

Dual stack (issue 14): with ``families = ["ipv4", "ipv6"]`` the same loop serves both
families on the same interfaces, one :class:`~mrouter.router.planes.FamilyPlane` per
family (its engine, route table, forwarding cache, kernel table and socket: MLD and
MRT6 upcalls share the MRT6_INIT raw ICMPv6 socket as IGMP and upcalls share IPv4's).
Every step below runs for each plane, the plane of an address being its version; the
attributes ``mrt``, ``engine``, ``table``, ``cache``, ``shell`` are the first family's.

This module is the loop and the lifecycle (:meth:`Daemon.open`, :meth:`Daemon.run`,
:meth:`Daemon.close`) and what ties the parts together: the engine's decisions, the
upcalls and the kernel's forwarding cache. VIF numbers are the interfaces' positions in
the config file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import selectors
import signal
import socket
import time
from collections import Counter
from collections.abc import Callable, Mapping
from functools import partial
from types import FrameType
from typing import Any

from mrouter.dataplane.user import DataplaneInterface, UserDataplane
from mrouter.diag.events import EventLog, EventWriter, igmp_fields
from mrouter.errors import ConfigError, MrouterError
from mrouter.igmp.engine import (
    Action,
    Dropped,
    InterfaceSettings,
    MembershipChanged,
    QuerierChanged,
    SendQuery,
)
from mrouter.igmp.family import IPV4, Address
from mrouter.kernel.common import UpcallOf, UpcallType
from mrouter.linux.service import PidFile, notify
from mrouter.router import proxy
from mrouter.router.config import (
    Config,
    InterfaceConfig,
    MembershipConfig,
    Mode,
    load_config,
)
from mrouter.router.control import ControlServer
from mrouter.router.handlers import ControlHandlers, static_route
from mrouter.router.ifevents import LinkEvents
from mrouter.router.interfaces import Interface, follow, resolve_interfaces
from mrouter.router.metrics import MetricsServer, exposition
from mrouter.router.mrules import TableRules
from mrouter.router.planes import FamilyPlane, Planes
from mrouter.router.querier import QuerierShell
from mrouter.router.routes import (
    CacheAction,
    FilterMode,
    Install,
    Membership,
    StaticRoute,
    Uninstall,
)
from mrouter.router.stats import Statistics, message_kind
from mrouter.router.upstream import UpstreamHost
from mrouter.sockets.igmp_socket import IgmpSocket, Received
from mrouter.sockets.mld_socket import MldSocket

log = logging.getLogger(__name__)
_SHELL_LOG = logging.getLogger("mrouter.router.querier")

# With an events file, the (S,G) counters are recorded this often (when they changed), so
# a timeline can label forwarding with packet counts; up to this many entries.
COUNTER_EVENT_INTERVAL = 1.0
COUNTER_EVENT_MAX_ENTRIES = 1000
RESYNC_DELAY = 0.2  # seconds to let a burst of netlink events settle before re-reading
#: the daemon's own drop reason, next to the engine's in ``show interfaces``
UNDECODABLE = "undecodable"


def igmp_settings(cfg: InterfaceConfig, path: str) -> InterfaceSettings:
    """The engine's settings for a configured interface (the config parser built and
    checked them)."""
    return cfg.igmp


class _Shell(QuerierShell):
    """The querier's shell, counting per interface the IGMP packets it cannot decode and
    the queries it sends."""

    def __init__(self, *args: Any, on_undecodable: Callable[[int], None],
                 stats: Statistics, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.on_undecodable = on_undecodable
        self.stats = stats

    def perform(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, SendQuery) and action.iface in self._by_name:
                self.stats.igmp_sent(action.iface, *message_kind(action.query))
        super().perform(actions)

    def handle_packet(self, received: Received) -> None:
        before = self.undecodable
        super().handle_packet(received)
        if self.undecodable != before:
            self.on_undecodable(received.ifindex)


class Daemon:
    """Open with :meth:`open` (everything that can fail fails there), then :meth:`run`.

    The state that needs no system call is made here; :meth:`open` looks up the
    interfaces and opens the kernel table, the sockets and the control server
    (``mrt``, ``igmp_sock``, ``shell``, ``control``, ``link_events``, declared below).
    """

    mrt: Any  # the first family's kernel table (MrouteSocket or Mroute6Socket)
    igmp_sock: Any  # and its IgmpSocket (MldSocket)
    shell: QuerierShell
    control: ControlServer
    link_events: LinkEvents

    def __init__(self, config: Config, socket_path: str, *,
                 clock: Callable[[], float] = time.monotonic,
                 rng: random.Random | None = None, events_path: str | None = None,
                 dataplane: str = "kernel", log_decisions: bool = False,
                 metrics: tuple[str, int] | None = None,
                 pidfile: str | None = None) -> None:
        if dataplane not in ("kernel", "user"):
            raise ConfigError(f"dataplane {dataplane!r}: write kernel or user")
        if log_decisions and dataplane != "user":
            raise ConfigError("decisions can be logged only with the user data plane")
        if dataplane == "user" and config.families != ("ipv4",):
            raise ConfigError(f"{config.path}: families: the user data plane forwards IPv4 "
                              'only; run with families = ["ipv4"] or the kernel data plane')
        self.log_decisions = log_decisions
        self.config = config
        self.dataplane = dataplane
        self.user_plane: UserDataplane | None = None
        self.events_path = events_path
        self.events = EventLog()
        self.socket_path = socket_path
        self.metrics_address = metrics
        self.metrics: MetricsServer | None = None
        self.pidfile_path = pidfile
        self.stats = Statistics()
        self.clock = clock
        self.rng = rng or random.Random()
        self.stopping = False
        self.started = 0.0
        # drops per interface by reason: the engine's Dropped actions and the daemon's own
        # (the first family's; another family's are in its plane)
        self.dropped: dict[str, Counter[str]] = {}
        self._signals: list[int] = []
        self._closers: list[Callable[[], None]] = []
        self._next_counter_event = 0.0
        self._next_aging = 0.0
        self._resync_at: float | None = None
        self.interfaces: dict[str, Interface] = {}
        self.by_vif: dict[int, Interface] = {}
        self.by_index: dict[int, Interface] = {}
        self.upstream = config.upstream.name if config.mode is Mode.PROXY \
            and config.upstream else None
        self.planes = Planes(config.families, self.rng, upstream=self.upstream,
                             expiry=config.expire_after)
        primary = self.planes.primary
        #: per family, the multicast rules that send the interfaces' packets to the table
        self.mrules_of: dict[str, TableRules] = {}
        self._dropped_of: dict[str, dict[str, Counter[str]]] = {
            p.key: self.dropped if p is primary else {} for p in self.planes}
        # the routes and memberships of the config file that run (reload compares them)
        self.config_routes: set[StaticRoute] = {static_route(r) for r in config.routes}
        self.config_members: set[MembershipConfig] = set(config.memberships)
        self.handlers = ControlHandlers(self)

    # --- setup -------------------------------------------------------------------------
    def open(self) -> None:
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self) -> None:
        config = self.config
        now = self.clock()
        self.started = now
        if self.events_path is not None:
            self.events = EventLog(writer=EventWriter(self.events_path), wall_clock=time.time)
            self._closers.append(self.events.close)
        self._next_counter_event = now + COUNTER_EVENT_INTERVAL
        self.interfaces.update((i.name, i) for i in resolve_interfaces(config))
        self.by_vif.update((i.vif, i) for i in self.interfaces.values())
        self.by_index.update((i.index, i) for i in self.interfaces.values() if i.active)
        for plane in self.planes:
            plane.table.interfaces = self._active_names()
            if self.upstream is not None:
                plane.upstream_host = UpstreamHost(self.interfaces[self.upstream],
                                                   self._on_upstream)
                self._closers.append(plane.upstream_host.close)

        for plane in self.planes:
            plane.mrt = plane.binding.socket(config.table, asserts=True)
            self._closers.append(plane.mrt.close)
            # a table other than the default sees only what a multicast rule sends it
            rules = TableRules.open(socket.AF_INET if plane.family is IPV4 else socket.AF_INET6,
                                    config.table, self.interfaces)
            self.mrules_of[plane.key] = rules
            self._closers.append(rules.close)
            if plane.family is IPV4:
                plane.sock = IgmpSocket(plane.mrt.sock)
            else:  # MLD and MRT6 upcalls on the MRT6_INIT socket, nothing else
                plane.mrt.filter_mld()
                plane.sock = MldSocket(plane.mrt.sock)
            for iface in self.interfaces.values():
                if not iface.active:
                    continue  # an optional interface that is not there yet
                plane.mrt.add_vif(iface.vif, iface.index,
                                  threshold=plane.threshold(iface.config))
                rules.add(iface.name)
                if plane.family is IPV4:
                    log.debug("VIF %d: %s (ifindex %d, %s)", iface.vif, iface.name,
                             iface.index, iface.address)
                else:
                    log.debug("IPv6 MIF %d: %s (ifindex %d)", iface.vif, iface.name,
                             iface.index)

        if self.dataplane == "user":
            # The kernel keeps the VIFs and (S,G) entries without outbound interfaces: it
            # still delivers IGMP and upcalls and counts packets, but mrouter forwards.
            on_decision = self._on_decision if self.log_decisions \
                or log.isEnabledFor(logging.DEBUG) else None
            self.user_plane = UserDataplane(self._dataplane_interfaces(),
                                            self.planes.primary.table.oifs,
                                            on_decision=on_decision)
            self._closers.append(self.user_plane.close)

        for route in self.config_routes:
            self._plane(route.group).table.add_route(route)
        for m in config.memberships:
            self._plane(m.group).table.join(m.iface, m.group, m.source)

        # The IGMP (MLD) loop plumbing (decode, engine, send queries) is the querier's
        # shell; upcalls come back to us through on_other, engine decisions through
        # on_action.
        for plane in self.planes:
            plane.shell = _Shell(plane.engine, plane.sock, self.clock,
                                 on_action=partial(self._on_action, plane=plane),
                                 on_other=partial(self._on_other, plane=plane),
                                 on_igmp=partial(self._on_igmp, plane=plane),
                                 on_undecodable=partial(self._on_undecodable, plane=plane),
                                 stats=self.stats)
            for iface in self.interfaces.values():
                if iface.igmp and iface.active:
                    self._start_membership(plane, iface, starting=True)

        self.control = ControlServer(self.socket_path, self.handlers.table())
        self._closers.append(self.control.close)
        if self.pidfile_path is not None:  # after the control socket: no other daemon runs
            self._closers.append(PidFile(self.pidfile_path).close)
        if self.metrics_address is not None:
            self.metrics = MetricsServer(*self.metrics_address, self.render_metrics)
            self._closers.append(self.metrics.close)
        for plane in self.planes:
            self.apply_cache(plane.cache.install_static(now))
        self.membership_changed(None)
        self._next_aging = now + self.config.poll_interval
        self.link_events = LinkEvents()
        self._closers.append(self.link_events.close)

    def _plane(self, address: Any) -> FamilyPlane:
        """The plane of an address or network the config checked (its family is served)."""
        plane = self.planes.of(address)
        assert plane is not None, address
        return plane

    def _start_membership(self, plane: FamilyPlane, iface: Interface, *,
                          starting: bool = False) -> None:
        """Start IGMP (MLD) on ``iface``; while ``starting``, IGMP's errors stop the
        daemon (a full igmp_max_memberships is named), later they are logged. MLD sends
        from the link-local address, which is unusable while duplicate address detection
        runs: then the interface waits, and the next address event (DAD done) starts it."""
        if plane.family is IPV4:
            def add() -> None:
                plane.shell.add_interface(
                    iface.name, igmp_settings(iface.config, self.config.path),
                    ifindex=iface.index, address=iface.address, network=iface.network)
            if starting:
                add()
            else:
                self._guard(add)
            return
        try:
            plane.shell.add_interface(iface.name, plane.settings(iface.config),
                                      ifindex=iface.index)
        except MrouterError as exc:
            log.warning("%s: MLD waits: %s", iface.name, exc)
            plane.waiting.add(iface.name)
        else:
            plane.waiting.discard(iface.name)

    def _active_names(self) -> tuple[str, ...]:
        """The interfaces that are there and running, in config order."""
        return tuple(n for n, i in self.interfaces.items() if i.active)

    def _on_decision(self, decision: dict[str, Any]) -> None:
        """The user data plane decided about one packet (its dict, see UserDataplane)."""
        log.debug("forward %s", decision)
        if self.log_decisions:
            fields = dict(decision)
            self.events.record("forward_decision", self.clock(), fields.pop("iif"), **fields)

    def _dataplane_interfaces(self) -> list[DataplaneInterface]:
        return [DataplaneInterface(i.name, i.index, i.config.ttl_threshold)
                for i in self.interfaces.values() if i.active]

    # --- the loop ----------------------------------------------------------------------
    def run(self) -> int:
        """Serve until SIGTERM, SIGINT or a stop request; returns the exit status."""
        wake_r, wake_w = socket.socketpair()
        wake_r.setblocking(False)
        wake_w.setblocking(False)
        old_fd = signal.set_wakeup_fd(wake_w.fileno(), warn_on_full_buffer=False)
        handled = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        old_handlers = {s: signal.signal(s, self._on_signal) for s in handled}
        sel = selectors.DefaultSelector()
        try:
            for plane in self.planes:
                sel.register(plane.sock.sock, selectors.EVENT_READ, plane)
            sel.register(wake_r, selectors.EVENT_READ, "wake")
            sel.register(self.link_events, selectors.EVENT_READ, "links")
            registered: dict[int, socket.socket] = {}
            dataplane: dict[int, socket.socket] = {}
            metrics: dict[int, socket.socket] = {}
            # the control socket listens: a request made from now on is answered in the
            # first turn of the loop below
            log.info("%s", self.ready_line())
            notify(f"READY=1\nSTATUS={self.ready_line()}\nMAINPID={os.getpid()}")
            self.events.record("daemon_started", self.clock(), mode=self.config.mode.value,
                               interfaces=sorted(self.interfaces))
            while not self.stopping:
                self._sync_selector(sel, registered, self.control.interest(), "control")
                if self.user_plane is not None:
                    self._sync_selector(sel, dataplane, dict.fromkeys(
                        self.user_plane.sockets(), selectors.EVENT_READ), "dataplane")
                if self.metrics is not None:
                    self._sync_selector(sel, metrics, self.metrics.interest(), "metrics")
                for key, events in sel.select(self._timeout()):
                    if isinstance(key.data, FamilyPlane):
                        self._guard(key.data.shell.handle_readable)
                    elif key.data == "links":
                        if self.link_events.read() and self._resync_at is None:
                            self._resync_at = self.clock() + RESYNC_DELAY
                    elif key.data == "dataplane":
                        assert self.user_plane is not None
                        self.user_plane.handle_readable(key.fd)
                    elif key.data == "wake":
                        with contextlib.suppress(OSError):
                            wake_r.recv(4096)
                    elif key.data == "metrics":
                        assert self.metrics is not None
                        assert isinstance(key.fileobj, socket.socket)
                        self.metrics.ready(key.fileobj, events)
                    else:
                        assert isinstance(key.fileobj, socket.socket)
                        self.control.ready(key.fileobj, events)
                self.control.service()
                if self.metrics is not None:
                    self.metrics.service()
                self._handle_signals()
                self._on_time()
        finally:
            sel.close()
            signal.set_wakeup_fd(old_fd)
            for s, h in old_handlers.items():
                signal.signal(s, h)
            wake_r.close()
            wake_w.close()
        notify("STOPPING=1")
        log.info("mrouter stopping: kernel routes and VIFs removed")
        self.events.record("daemon_stopped", self.clock())
        return 0

    @staticmethod
    def _sync_selector(sel: selectors.BaseSelector, registered: dict[int, socket.socket],
                       wanted: Mapping[socket.socket, int], tag: str) -> None:
        """Keep ``sel`` on exactly the ``wanted`` sockets, each for its events (compared by
        identity: a socket that was closed and replaced may come back with the same
        number)."""
        current = {s.fileno(): (s, events) for s, events in wanted.items() if s.fileno() >= 0}
        for fd in [fd for fd, s in registered.items() if current.get(fd, (None,))[0] is not s]:
            sel.unregister(fd)
            del registered[fd]
        for fd, (s, events) in current.items():
            if fd not in registered:
                sel.register(s, events, tag)
                registered[fd] = s
            elif sel.get_key(fd).events != events:
                sel.modify(s, events, tag)

    def _timeout(self) -> float:
        now = self.clock()
        deadlines = [self._next_aging]
        if self.events.writer is not None:
            deadlines.append(self._next_counter_event)
        if self._resync_at is not None:
            deadlines.append(self._resync_at)
        for plane in self.planes:
            igmp = plane.shell.timeout()
            if igmp is not None:
                deadlines.append(now + igmp)
        deadlines.append(now + self.control.timeout())
        if self.metrics is not None:
            deadlines.append(now + self.metrics.timeout())
        return max(0.0, min(deadlines) - now)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._signals.append(signum)

    def _handle_signals(self) -> None:
        while self._signals:
            signum = self._signals.pop(0)
            if signum == signal.SIGHUP:
                with contextlib.suppress(MrouterError):  # logged by reload_logged
                    self.reload_logged()
            else:
                log.info("signal %s: stopping", signal.Signals(signum).name)
                self.stopping = True

    def _on_time(self) -> None:
        now = self.clock()
        for plane in self.planes:
            deadline = plane.engine.next_deadline()
            if deadline is not None and deadline <= now:
                self._guard(plane.shell.handle_timers)
        if self._resync_at is not None and now >= self._resync_at:
            self._resync_at = None
            self.sync_interfaces()
        if now >= self._next_aging:
            self._next_aging = now + self.config.poll_interval
            for plane in self.planes:
                self.apply_cache(plane.cache.age(self._packet_counts(plane), now))
        if self.events.writer is not None and now >= self._next_counter_event:
            self._next_counter_event = now + COUNTER_EVENT_INTERVAL
            self._record_counters(now)

    def _record_counters(self, now: float) -> None:
        """An ``mfc_counters`` event for each (S,G) whose packet count changed."""
        for plane in self.planes:
            self._record_plane_counters(plane, now)

    def _record_plane_counters(self, plane: FamilyPlane, now: float) -> None:
        for key in list(plane.in_kernel)[:COUNTER_EVENT_MAX_ENTRIES]:
            try:
                c = plane.mrt.sg_counters(*key)
            except MrouterError:
                continue
            if plane.counted.get(key) != c.packets:
                plane.counted[key] = c.packets
                self.events.record("mfc_counters", now, source=key[0], group=key[1],
                                   packets=c.packets, bytes=c.bytes, wrong_if=c.wrong_if)


    # --- interfaces coming and going --------------------------------------------------
    def sync_interfaces(self) -> None:
        """Re-read the configured interfaces after a netlink event and follow changes
        (:func:`mrouter.router.interfaces.follow`)."""
        from mrouter.sockets.mcast import interfaces

        try:
            current = {i.name: i for i in interfaces()}
        except MrouterError as exc:
            log.warning("cannot re-read interfaces: %s", exc)
            return
        now = self.clock()
        follow(self.interfaces, current, lambda i: self._stop_interface(i, now),
               lambda i: self._start_interface(i, now),
               need_address="ipv4" in self.config.families)
        for plane in self.planes:  # MLD waiting for a link-local address to leave DAD
            for name in sorted(plane.waiting):
                iface = self.interfaces[name]
                if iface.active:
                    self._start_membership(plane, iface)

    def _stop_interface(self, iface: Interface, now: float) -> None:
        log.warning("%s: gone or without an IPv4 address; stopped (VIF %d)", iface.name,
                    iface.vif)
        iface.active = False
        self.events.record("iface_changed", now, iface.name, state="down")
        self.by_index.pop(iface.index, None)
        for plane in self.planes:
            with contextlib.suppress(MrouterError):  # the kernel drops VIFs of deleted links
                plane.mrt.del_vif(iface.vif)
            self.mrules_of[plane.key].remove(iface.name)
            plane.table.interfaces = self._active_names()
        if self.user_plane is not None:
            self.user_plane.set_interfaces(self._dataplane_interfaces())
        for plane in self.planes:
            # leaving 224.0.0.22 (ff02::16) on a deleted link fails: nothing to undo then
            if iface.igmp and iface.name not in plane.waiting:
                self._guard(partial(plane.shell.remove_interface, iface.name))
            plane.waiting.discard(iface.name)
            plane.querier.pop(iface.name, None)
            self.apply_cache(plane.cache.remove_interface(iface.name))
            if plane.upstream_host is not None and iface is plane.upstream_host.iface:
                plane.upstream_host.reset()
        if self.upstream is not None and iface.name != self.upstream:
            self.membership_changed(None)  # its members no longer count upstream

    def _start_interface(self, iface: Interface, now: float) -> None:
        added: list[FamilyPlane] = []
        for plane in self.planes:
            try:
                plane.mrt.add_vif(iface.vif, iface.index,
                                  threshold=plane.threshold(iface.config))
            except MrouterError as exc:
                log.warning("%s: cannot start: %s", iface.name, exc)
                for done in added:
                    with contextlib.suppress(MrouterError):
                        done.mrt.del_vif(iface.vif)
                return
            added.append(plane)
        iface.active = True
        for plane in added:
            self.mrules_of[plane.key].add(iface.name, strict=False)
        self.events.record("iface_changed", now, iface.name, state="up")
        self.by_index[iface.index] = iface
        log.info("%s: back (ifindex %d, %s) on VIF %d", iface.name, iface.index,
                 iface.address, iface.vif)
        if self.user_plane is not None:
            self.user_plane.set_interfaces(self._dataplane_interfaces())
        for plane in self.planes:
            plane.table.interfaces = self._active_names()
            self.apply_cache(plane.cache.install_static(now) + plane.cache.refresh())
        if self.upstream is not None:
            self.membership_changed(None)  # join upstream again (on the new index)
        if iface.igmp:
            for plane in self.planes:
                self._start_membership(plane, iface)

    def _packet_counts(self, plane: FamilyPlane | None = None,
                       ) -> dict[tuple[Address, Address], int]:
        plane = plane or self.planes.primary
        counts = {}
        for key in plane.cache.entries:
            with contextlib.suppress(MrouterError):
                counts[key] = plane.mrt.sg_counters(*key).packets
        return counts


    # --- IGMP and upcalls --------------------------------------------------------------
    def _guard(self, step: Callable[[], object]) -> None:
        """Run one step of the IGMP shell; a failed send or read is logged, not fatal."""
        try:
            step()
        except MrouterError as exc:
            log.warning("IGMP: %s", exc)

    def _on_igmp(self, iface: str, packet: Any, now: float,
                 plane: FamilyPlane | None = None) -> None:
        """An IGMP (MLD) message the shell decoded and gave the engine: counted, recorded
        (igmp_in; mld_in with "family": "ipv6" for MLD, see mrouter.diag.events)."""
        if plane is None or plane.family is IPV4:
            self.stats.igmp_received(iface, *message_kind(packet.igmp))
            self.events.record("igmp_in", now, iface, src=packet.ip.src,
                               **igmp_fields(packet.igmp))
        else:
            self.stats.igmp_received(iface, *message_kind(packet.mld))
            self.events.record("mld_in", now, iface, src=packet.ip.src, family=plane.key,
                               **igmp_fields(packet.mld))

    def _on_other(self, received: Received, plane: FamilyPlane | None = None) -> None:
        """A packet on the MRT_INIT (MRT6_INIT) socket that is not IGMP (MLD): a kernel
        upcall."""
        plane = plane or self.planes.primary
        if not plane.binding.is_upcall(received.data):
            return
        try:
            self._on_upcall(plane.binding.parse_upcall(received.data), plane)
        except MrouterError as exc:
            log.warning("upcall: %s", exc)

    def _on_upcall(self, upcall: UpcallOf[Any], plane: FamilyPlane | None = None) -> None:
        plane = plane or self.planes.primary
        iface = self.by_vif.get(upcall.vif)
        if iface is None:
            return
        self.stats.upcall(iface.name, upcall.kind.name)
        self.events.record("upcall", self.clock(), iface.name, type=upcall.kind.name,
                           source=upcall.source, group=upcall.group)
        if upcall.kind is UpcallType.NOCACHE:
            log.debug("NOCACHE (%s, %s) on %s", upcall.source, upcall.group, iface.name)
            self.apply_cache(plane.cache.resolve(upcall.source, upcall.group, iface.name,
                                                  self.clock()))
        elif upcall.kind is UpcallType.WRONGVIF:
            key = (upcall.source, upcall.group)
            plane.wrongvif[key] = plane.wrongvif.get(key, 0) + 1
            level = logging.INFO if plane.wrongvif[key] == 1 else logging.DEBUG
            log.log(level, "(%s, %s) arrived on the wrong interface %s (%d times); ignored",
                    upcall.source, upcall.group, iface.name, plane.wrongvif[key])
        else:
            log.debug("ignored %s upcall for (%s, %s)", upcall.kind.name, upcall.source,
                      upcall.group)

    def _on_action(self, action: Action, plane: FamilyPlane | None = None) -> None:
        """The engine's decisions (the shell already sent queries and logged them).

        The routes change first and the event is recorded after, with the time the
        decision was made: a receiver's wait ends at the route update.
        """
        plane = plane or self.planes.primary
        now = self.clock()
        if isinstance(action, MembershipChanged):
            plane.table.set_membership(action.iface, action.group, action.filter_mode,
                                       action.sources)
            self.membership_changed(action.group)
        elif isinstance(action, QuerierChanged):
            if plane.family is IPV4:
                iface = self.interfaces[action.iface]
                iface.querier, iface.is_querier = action.querier, action.is_self
            else:
                plane.querier[action.iface] = (action.querier, action.is_self)
            if not _SHELL_LOG.isEnabledFor(logging.INFO):  # else the shell said it
                what = "querier" if plane.family is IPV4 else "MLD querier"
                log.info("%s: %s is now %s%s", action.iface, what, action.querier,
                         " (this router)" if action.is_self else "")
            plane.table.set_querier(action.iface, action.is_self)
            self.apply_cache(plane.cache.refresh())
        elif isinstance(action, Dropped):
            self._dropped_of[plane.key].setdefault(action.iface,
                                                   Counter())[action.reason] += 1
        self.events.record_action(action, now, plane.key)

    def _on_undecodable(self, ifindex: int, plane: FamilyPlane | None = None) -> None:
        plane = plane or self.planes.primary
        iface = self.by_index.get(ifindex)
        if iface is not None:
            self._dropped_of[plane.key].setdefault(iface.name, Counter())[UNDECODABLE] += 1

    def _on_upstream(self, group: Address, state: Membership | None) -> None:
        """Proxy mode: the membership held upstream for ``group`` changed (None: left)."""
        assert self.upstream is not None
        mode, sources = (FilterMode.INCLUDE, frozenset[Address]()) if state is None \
            else (state.filter_mode, state.sources)
        self.events.record("upstream_membership", self.clock(), self.upstream,
                           group=group, filter_mode=mode.name, sources=sources)

    def membership_changed(self, group: Address | None) -> None:
        planes = list(self.planes) if group is None else [self._plane(group)]
        for plane in planes:
            self.apply_cache(plane.cache.refresh(group))
            host = plane.upstream_host
            if host is not None and host.iface.active:
                table, family = plane.table, plane.family
                # an interface that is not there (yet) wants nothing upstream; link-scope
                # groups (MLD hosts report their solicited-node groups) stay on their link
                downstream = {
                    name: {g: m for g in table.groups()
                           if family.is_forwardable(g)
                           and (m := table.membership(name, g)) is not None}
                    for name, i in self.interfaces.items() if i.igmp and i.active}
                host.apply(proxy.merged_database(downstream))

    def apply_cache(self, actions: list[CacheAction]) -> None:
        if self.user_plane is not None:
            self.user_plane.invalidate()  # routes or membership changed: ask the table again
        for action in actions:
            plane = self._plane(action.source)
            try:
                if isinstance(action, Install):
                    ttls = {} if self.user_plane is not None else {
                        self.interfaces[o].vif: plane.threshold(self.interfaces[o].config)
                        for o in action.oifs}
                    plane.mrt.add_mfc(action.source, action.group,
                                      self.interfaces[action.iif].vif, ttls)
                    key = (action.source, action.group)
                    self.stats.route("updates" if key in plane.in_kernel else "installs")
                    self.events.record("mfc_update" if key in plane.in_kernel else "mfc_add",
                                       self.clock(), source=action.source, group=action.group,
                                       iif=action.iif, oifs=sorted(action.oifs))
                    plane.in_kernel.add(key)
                    log.info("route (%s, %s) from %s to %s", action.source, action.group,
                             action.iif, ", ".join(sorted(action.oifs)) or "nowhere")
                elif isinstance(action, Uninstall):
                    key = (action.source, action.group)
                    counts: dict[str, Any] = {}
                    with contextlib.suppress(MrouterError):
                        c = plane.mrt.sg_counters(*key)
                        counts = {"packets": c.packets, "bytes": c.bytes,
                                  "wrong_if": c.wrong_if}
                    plane.mrt.del_mfc(action.source, action.group)
                    self.stats.route("removals")
                    plane.in_kernel.discard(key)
                    plane.counted.pop(key, None)
                    self.events.record("mfc_delete", self.clock(), source=action.source,
                                       group=action.group, **counts)
                    plane.wrongvif.pop((action.source, action.group), None)
                    log.info("route (%s, %s) removed", action.source, action.group)
            except MrouterError as exc:
                log.error("kernel: %s", exc)

    def reload_logged(self) -> dict[str, Any]:
        """:meth:`reload`, told to systemd (RELOADING, then READY) and logged in one line;
        SIGHUP and the control socket's ``reload`` both come here."""
        notify(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            summary = self.reload()
        except MrouterError as exc:
            log.error("reload failed, keeping the running config: %s", exc)
            raise
        finally:
            notify(f"READY=1\nSTATUS={self.ready_line()}")
        log.info("reloaded %s: %s", self.config.path, describe_reload(summary))
        return summary

    def ready_line(self) -> str:
        """The one line logged when the daemon is ready: mode, interfaces, sockets."""
        ifaces = ", ".join(f"{i.name} (VIF {i.vif}{'' if i.active else ', absent'})"
                           for i in self.interfaces.values())
        metrics = ""
        if self.metrics is not None:
            host, port = self.metrics.address
            metrics = f"; metrics http://{f'[{host}]' if ':' in host else host}:{port}/metrics"
        return (f"mrouter ready: {self.config.mode.value} mode, {self.dataplane} data plane, "
                f"interfaces {ifaces or 'none'}; control {self.socket_path}{metrics}")

    def statistics(self) -> dict[str, Any]:
        """The ``statistics`` snapshot (:mod:`mrouter.router.stats`)."""
        return self.stats.snapshot(self.interfaces, self.dropped, self.control.requests,
                                   self.control.errors, self.clock() - self.started,
                                   len(self.planes.primary.in_kernel))

    def render_metrics(self) -> str:
        return exposition(self.statistics())

    def reload(self) -> dict[str, Any]:
        """Re-read the config file and apply route and membership differences.

        Changes to interfaces, mode or table need a restart; they are refused whole.
        """
        new = load_config(self.config.path)
        if (new.mode, new.table, new.interfaces) != (self.config.mode, self.config.table,
                                                     self.config.interfaces):
            raise ConfigError(f"{new.path}: mode, table or [interfaces] changed; those need "
                              "a restart (mrouter stop, then mrouter run); nothing was changed")
        if new.families != self.config.families:
            raise ConfigError(f"{new.path}: families changed; that needs a restart (mrouter "
                              "stop, then mrouter run); nothing was changed")
        routes = {static_route(r) for r in new.routes}
        for route in self.config_routes - routes:
            self._plane(route.group).table.remove_route(route.source, route.group, route.iif)
        for route in routes - self.config_routes:
            self._plane(route.group).table.add_route(route)
        members: set[MembershipConfig] = set(new.memberships)
        for m in self.config_members - members:
            self._plane(m.group).table.leave(m.iface, m.group, m.source)
        for m in members - self.config_members:
            self._plane(m.group).table.join(m.iface, m.group, m.source)
        summary = {"routes_added": len(routes - self.config_routes),
                   "routes_removed": len(self.config_routes - routes),
                   "memberships_added": len(members - self.config_members),
                   "memberships_removed": len(self.config_members - members)}
        self.config_routes, self.config_members, self.config = routes, members, new
        for plane in self.planes:
            plane.cache.expiry = new.expire_after  # takes effect at the next counter poll
            self.apply_cache(plane.cache.install_static(self.clock()))
        self.membership_changed(None)
        return summary

    # --- teardown ----------------------------------------------------------------------
    def close(self) -> None:
        """Remove the control socket, leave upstream groups, MRT_DONE (idempotent)."""
        while self._closers:
            closer = self._closers.pop()
            try:
                closer()
            except OSError as exc:
                log.warning("while closing: %s", exc)


def describe_reload(summary: Mapping[str, int]) -> str:
    """A reload's summary as a line: "1 route added, 0 removed; 0 memberships ..."."""
    def part(noun: str) -> str:
        added, removed = summary[f"{noun}s_added"], summary[f"{noun}s_removed"]
        return f"{added} {noun}{'' if added == 1 else 's'} added, {removed} removed"
    return f"{part('route')}; {part('membership')}"


def run_daemon(config_path: str, socket_path: str, events_path: str | None = None,
               dataplane: str = "kernel", log_decisions: bool = False,
               metrics: tuple[str, int] | None = None, pidfile: str | None = None,
               user: str | None = None) -> int:
    """``mrouter run``: load the config (nothing starts on error), open, drop root if
    ``user`` is given, serve, close."""
    from mrouter.linux import service

    config = load_config(config_path)
    if user is not None:
        owner = service.lookup_user(user)  # a wrong name fails before anything starts
    daemon = Daemon(config, socket_path, events_path=events_path, dataplane=dataplane,
                    log_decisions=log_decisions, metrics=metrics, pidfile=pidfile)
    daemon.open()
    try:
        if user is not None:
            # root clients can still connect; the user's own tools too, and the daemon
            # can remove its socket and PID file only where it may write
            for path in (socket_path, pidfile):
                if path is not None:
                    with contextlib.suppress(OSError):
                        os.chown(path, owner.pw_uid, owner.pw_gid)
            service.drop_privileges(user)
            log.info("running as %s with CAP_NET_ADMIN and CAP_NET_RAW only", user)
        return daemon.run()
    finally:
        daemon.close()
