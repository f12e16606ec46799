"""Router-side IGMP (RFC 1112, RFC 2236, RFC 3376) and MLD (RFC 2710, RFC 3810), sans-I/O.

Theory of operation
-------------------
The engine decides who is a member of what on each interface. It holds no socket and
reads no clock: the I/O shell feeds it decoded messages (:meth:`Engine.receive`) and
the passing of time (:meth:`Engine.tick`), always with ``now`` (seconds, any monotonic
origin), and performs the actions it returns:

* :class:`SendQuery` - put this query on this interface, to this destination;
* :class:`MembershipChanged` - the forwarding state of (interface, group) changed;
* :class:`QuerierChanged` - the querier of an interface changed;
* :class:`Dropped` - a message was ignored, and why (the shell logs and counts it).

:meth:`Engine.next_deadline` tells the shell when to call :meth:`Engine.tick` next.
:meth:`Engine.snapshot` returns a typed :class:`~mrouter.igmp.snapshot.InterfaceSnapshot`.

Where things are: the settings and their bounds in :mod:`mrouter.igmp.settings`, the
actions (with :class:`~mrouter.igmp.actions.DropReason` and
:class:`~mrouter.igmp.actions.TimerName`) in :mod:`mrouter.igmp.actions`, the state in
:mod:`mrouter.igmp.state`, the snapshot and its text in :mod:`mrouter.igmp.snapshot`.
Every address fact (all-hosts, all-routers, the report destination, the unspecified
address, the election order) comes from the :class:`~mrouter.igmp.family.AddressFamily`
given to the constructor (:data:`~mrouter.igmp.family.IPV4`, or
:data:`~mrouter.igmp.family.IPV6` for MLD), and so does the family's message adapter
(:mod:`mrouter.igmp.adapter`): MLD is a second family and codec, not a second engine.
RFC 3810 §7 is RFC 3376 §6 with other names: an MLDv1 report is an IGMPv2 report, a
Done a leave, an MLDv2 report a report of the same six record types; the engine works
in IGMP's version numbers (*levels*: MLDv1 is 2, MLDv2 is 3) and the adapter reads and
writes each protocol's units (Max Resp Code in tenths for IGMP, milliseconds for MLD).
Snapshots give versions in the protocol's own numbers.

What is learnt at all: a message must come from the interface's subnet (MLD: from a
link-local address, never ``::``, RFC 3810 §5.1.14, §5.2.13), with IP TTL (hop
limit) 1, to a destination its type is sent to (RFC 3376 §4.1.12, §4.2.14), and with a
Router Alert if the interface requires one (MLD reports and dones always do, RFC 3810
§7); the group and source tables are bounded
(``max_groups``, ``max_sources``, ``max_group_sources``), and so is what a querier's
QRV and QQIC may impose (``max_robustness``, ``max_query_interval``). Everything left
out is a :class:`Dropped` and is counted per interface in the snapshot.
Every timer of the RFCs is a deadline kept in the state below and indexed in a
:class:`~mrouter.igmp.timers.DeadlineHeap`. The only randomness (a little jitter on
periodic general queries) comes from the ``random.Random`` given to the constructor.

One state machine for all versions. Group state is always the IGMPv3 state of RFC 3376
§6.2: a filter mode, a group timer and per-source timers. Older messages are translated
into IGMPv3 records as RFC 3376 §7.3.2 says (a v1/v2 report is IS_EX({}), a v2 leave is
TO_IN({})), so an IGMPv2 group is simply ``EXCLUDE ({}, {})`` with a group timer, and a
leave is "TO_IN({}) in EXCLUDE mode": Q(G) is sent LMQC times every LMQI and the group
timer is lowered to LMQT (= LMQC x LMQI), which is RFC 2236 §3's "last member" procedure.
Records go through the transition tables of RFC 3376 §6.4.1/§6.4.2, kept as data in
:mod:`mrouter.igmp.tables`.

Per interface:

* querier election (RFC 3376 §6.6.2, RFC 2236 §3): a router starts as querier, sends
  [Startup Query Count] general queries [Startup Query Interval] apart, then one every
  [Query Interval]. A query from a lower address makes it a non-querier and starts the
  Other Querier Present timer; when that expires it queries again. Queries from
  0.0.0.0 or from outside the interface's subnet are dropped, so they never win.
  Non-queriers adopt the querier's QRV and QQI (§4.1.6, §4.1.7), ignore
  leaves (RFC 2236 §3), send no queries, and lower their timers when they hear the
  querier's group(-and-source)-specific queries with the S flag clear (§6.6.1).
* a v1 query starts the "IGMPv1 router present" timer (400 s, RFC 2236 §4): while it
  runs the router queries in IGMPv1, sends no specific queries and ignores leaves
  (RFC 3376 §7.3.1's IGMPv1 mode).

Per group: the forwarding state is INCLUDE + the sources to forward, or EXCLUDE + the
sources *not* to forward (those whose timer is 0, RFC 3376 §6.3). A
:class:`MembershipChanged` is emitted only when that pair changes; ``INCLUDE {}`` means
"no members any more". Compatibility (§7.3.2): a v1 or v2 report starts that version's
Older Host Present timer; while one runs the group is in v1 or v2 compatibility mode.

Fast leave (optional, per interface): the engine remembers which host sent which
record. When a record makes the querier send a last-member query, and no other host
that is still known wants the group (or those sources), the queried state expires at
once instead of after LMQT. Only the first query is sent (it lets a member that kept
quiet, as IGMPv1/v2 hosts do when they hear another host's report, answer at once).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import TYPE_CHECKING, Any

from mrouter.errors import EngineError
from mrouter.igmp.actions import (
    Action,
    Dropped,
    DropReason,
    MembershipChanged,
    QuerierChanged,
    SendQuery,
    TimerExpired,
    TimerName,
)
from mrouter.igmp.adapter import MessageKind
from mrouter.igmp.family import IPV4, AddressFamily
from mrouter.igmp.messages import (
    GroupRecord,
    IgmpMessage,
    RecordType,
    UnknownMessage,
)
from mrouter.igmp.settings import InterfaceSettings
from mrouter.igmp.snapshot import (
    ForwardingView,
    GroupView,
    HostView,
    InterfaceSnapshot,
    SourceView,
    TimersView,
    render_snapshot,
)
from mrouter.igmp.state import (
    EXPIRED,
    GroupState,
    HostState,
    InterfaceState,
    SourceState,
    TimerKey,
    TimerKind,
)
from mrouter.igmp.tables import TABLE, FilterMode, TimerValue, Transition
from mrouter.igmp.timers import DeadlineHeap
from mrouter.mld.messages import AddressRecord, MldMessage
from mrouter.mld.messages import UnknownMessage as MldUnknown

if TYPE_CHECKING:
    import random  # noqa: TID251 (only the rng's type: the shell passes the instance in)

# The engine's vocabulary, re-exported so that a shell imports it from one place.
__all__ = [
    "Action",
    "DropReason",
    "Dropped",
    "Engine",
    "FilterMode",
    "InterfaceSettings",
    "InterfaceSnapshot",
    "MembershipChanged",
    "QuerierChanged",
    "SendQuery",
    "TimerExpired",
    "TimerName",
    "render_snapshot",
]

#: RFC 2236 §8.11 Version 1 Router Present Timeout.
V1_ROUTER_PRESENT_TIMEOUT = 400.0
#: Periodic general queries come up to this fraction of QI early (never late, so GMI
#: and the Other Querier Present Interval stay valid); it keeps routers that started
#: together from querying in lock-step.
QUERY_JITTER = 0.02
#: Sources per group-and-source-specific query so that it fits a 1500-byte MTU: IGMP's
#: (the adapter holds each protocol's: MLD's are 16 bytes each).
MAX_SOURCES_PER_QUERY = IPV4.adapter.max_sources_per_query

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network
Message = IgmpMessage | MldMessage
Record = GroupRecord | AddressRecord
_K = MessageKind


# --------------------------------------------------------------------------- engine


class Engine:
    """Router-side IGMP (or MLD, with ``family=IPV6``) for any number of interfaces.
    See the module docstring."""

    def __init__(self, rng: random.Random, family: AddressFamily[Any, Any] = IPV4) -> None:
        self._rng = rng
        # Every address fact (all-hosts, all-routers, the report destination, the
        # unspecified address, the election order) comes from here, not from constants,
        # and every protocol fact (message classes, units, names) from its adapter.
        self.family = family
        self._proto = family.adapter
        self._name = family.adapter.protocol
        self._leave = family.adapter.leave_name
        self._ifaces: dict[str, InterfaceState] = {}
        self._timers = DeadlineHeap()
        self._now = 0.0

    # ----------------------------------------------------------------- public API

    def add_interface(
        self, name: str, address: Address, network: Network,
        settings: InterfaceSettings, now: float,
    ) -> list[Action]:
        """Start IGMP (MLD) on an interface; as querier, the first startup query goes out
        now. MLD's ``address`` is the interface's link-local one, ``network`` its
        fe80::/64."""
        if name in self._ifaces:
            raise EngineError(
                f"interface {name} is already running {self._name}; remove it first")
        if settings.protocol != self._name:
            raise EngineError(
                f"interface {name}: {settings.protocol} settings given to an engine that "
                f"speaks {self._name}; build the settings with protocol={self._name!r}")
        if address not in network:
            raise EngineError(
                f"interface {name}: address {address} is not in its network {network}")
        self._now = now
        actions = self._run_timers(now)
        st = InterfaceState(name, address, network, settings,
                            level_offset=self._proto.level_offset)
        self._ifaces[name] = st
        if settings.querier:
            # RFC 3376 §6.6.2: every router starts as querier and sends startup queries.
            st.querier = address
            st.startup_left = settings.startup_count
            actions.append(QuerierChanged(name, address, True))
            actions += self._general_query(st, now)
        return actions

    def remove_interface(self, name: str, now: float) -> list[Action]:
        """Stop IGMP on an interface; every group it forwarded is withdrawn."""
        st = self._iface(name)
        self._now = now
        actions = self._run_timers(now)
        for g in list(st.groups.values()):
            self._delete_group(st, g, actions)
        self._timers.cancel(TimerKey(TimerKind.GENERAL_QUERY, name))
        self._timers.cancel(TimerKey(TimerKind.OTHER_QUERIER, name))
        del self._ifaces[name]
        return actions

    def receive(
        self, name: str, src: Address, dst: Address, msg: Message, now: float,
        *, ttl: int = 1, router_alert: bool = True,
    ) -> list[Action]:
        """Handle one decoded IGMP (MLD) message that arrived on interface ``name``.

        ``src``, ``dst``, ``ttl`` (the hop limit) and ``router_alert`` are from its IP
        header (the defaults are what every IGMP and MLD message should carry: TTL 1 and
        a Router Alert).
        """
        st = self._iface(name)
        self._now = now
        actions = self._run_timers(now)
        if src == st.address:
            return actions  # our own query, looped back
        kind = self._proto.kind(msg)
        problem = self._header_problem(st, src, dst, msg, kind, ttl, router_alert)
        if problem is not None:
            actions.append(self._drop(st, *problem))
            return actions
        if kind is _K.UNKNOWN:
            assert isinstance(msg, UnknownMessage | MldUnknown)
            actions.append(self._drop(
                st, DropReason.UNKNOWN_TYPE,
                f"{self._proto.type_name(msg.type)} from {src} is not handled"))
        elif kind is _K.QUERY:
            self._on_query(st, src, msg, now, actions)
        elif kind is _K.REPORT_V1 or kind is _K.REPORT_V2:
            self._on_old_report(st, src, msg, kind, now, actions)
        elif kind is _K.LEAVE:
            self._on_leave(st, src, msg, now, actions)
        else:
            self._on_v3_report(st, src, msg, now, actions)
        actions += self._run_timers(now)  # fast leave may have expired state at `now`
        return actions

    def _header_problem(
        self, st: InterfaceState, src: Address, dst: Address, msg: Message,
        kind: MessageKind, ttl: int, router_alert: bool,
    ) -> tuple[DropReason, str] | None:
        """Why the IP header rules the message out (None: it does not)."""
        what = self._proto.describe(msg)
        # IGMP: the subnet check (RFC 3376 §4.2.13 allows the unspecified address for
        # v3 reports only). MLD: link-local sources only (RFC 3810 §5.1.14, §5.2.13).
        wrong_source = self._proto.source_problem(src, st.network, kind)
        if wrong_source is not None:
            return (DropReason.FOREIGN_SOURCE, f"{what} from {src}, {wrong_source}")
        if kind is _K.UNKNOWN:
            return None  # mtrace and friends use other TTLs and destinations
        # RFC 2236 §2, RFC 3376 §4 (RFC 2710 §3, RFC 3810 §5): sent with TTL (hop
        # limit) 1, so anything else came through a router (or was forged off the link).
        if ttl != 1:
            hop = self._proto.hop_limit_name
            return (DropReason.BAD_TTL, f"{what} from {src} with {hop} {ttl}; "
                    f"{self._name} is sent with {hop.removeprefix('IP ')} 1, so this one "
                    "was routed or forged")
        if not router_alert and (st.settings.require_router_alert
                                 or kind in self._proto.router_alert_required):
            if kind in self._proto.router_alert_required:
                why = f"which a router checks for ({self._proto.cite.router_alert})"
            else:
                why = "(require_router_alert is on)"
            return (DropReason.NO_ROUTER_ALERT, f"{what} from {src} without the "
                    f"{self._proto.router_alert_name} option {why}")
        if dst not in self._destinations(st, msg, kind):
            return (DropReason.WRONG_DESTINATION, f"{what} from {src} sent to {dst}, "
                    "which that message is never sent to "
                    f"({self._proto.cite.destinations})")
        return None

    def _destinations(self, st: InterfaceState, msg: Any, kind: MessageKind,
                      ) -> tuple[Address, ...]:
        """Where ``msg`` may be sent. Queries: all-hosts, or the group for specific ones
        (RFC 3376 §4.1.12). Reports and leaves: the group they name, or any address this
        router listens on (§4.2.14 makes accepting v1/v2 reports there a MUST): all-hosts,
        all-routers (RFC 2236 §3's leaves), the report destination (v3 reports). The
        interface's own address (a unicast query or report) is accepted for all."""
        f = self.family
        if kind is _K.QUERY:
            return (f.all_hosts, st.address) if msg.is_general else (
                f.all_hosts, msg.group, st.address)
        router = (f.all_hosts, f.all_routers, f.report_destination, st.address)
        if kind is not _K.REPORT:
            return (msg.group, *router)
        return router

    def tick(self, now: float) -> list[Action]:
        """Let time pass: fire every timer due at or before ``now``."""
        self._now = now
        return self._run_timers(now)

    def next_deadline(self) -> float | None:
        """When :meth:`tick` must be called next (None: nothing scheduled)."""
        return self._timers.next_deadline()

    def interfaces(self) -> list[str]:
        return list(self._ifaces)

    def snapshot(self, name: str, now: float | None = None) -> InterfaceSnapshot:
        """A typed view of one interface: querier, timers, groups, sources, hosts.

        Times are seconds remaining from ``now`` (default: the last time given to the
        engine); a timer that is not running is None, a source timer at 0 is 0.
        ``snapshot(...).to_json()`` is the JSON form the shells print.
        """
        st = self._iface(name)
        t = self._now if now is None else now
        s = st.settings
        gq = self._timers.deadline(TimerKey(TimerKind.GENERAL_QUERY, name))
        return InterfaceSnapshot(
            iface=name,
            address=st.address,
            network=st.network,
            version=s.version,
            querier_version=st.version(t) - st.level_offset,
            querier=st.querier,
            is_querier=st.is_querier,
            next_general_query=_remaining(gq, t),
            startup_queries_left=st.startup_left,
            other_querier_present=_remaining(st.other_querier_until, t),
            v1_router_present=_remaining(st.v1_router_until, t),
            fast_leave=s.fast_leave,
            timers=TimersView(
                robustness=st.robustness,
                query_interval=st.query_interval,
                query_response_interval=st.query_response_interval,
                group_membership_interval=st.gmi,
                other_querier_present_interval=st.oqpi,
                last_member_query_interval=s.last_member_query_interval,
                last_member_query_count=s.lmq_count,
                last_member_query_time=st.lmqt,
            ),
            dropped=dict(sorted(st.dropped.items())),
            groups=tuple(self._group_view(st, g, t) for g in
                         sorted(st.groups.values(), key=lambda g: int(g.group))),
            protocol=self._name,
            family=self.family.key,
        )

    def group_snapshot(self, name: str, group: IPv4Address,
                       now: float | None = None) -> GroupView | None:
        """One group of :meth:`snapshot` (None if the interface has no state for it), for
        shells that show many groups a few at a time."""
        st = self._iface(name)
        g = st.groups.get(group)
        return None if g is None else self._group_view(st, g, self._now if now is None
                                                       else now)

    # ----------------------------------------------------------------- queries in

    def _on_query(
        self, st: InterfaceState, src: Address, q: Any, now: float,
        actions: list[Action],
    ) -> None:
        level = self._proto.query_level(q)
        if level == 1:
            # RFC 2236 §4 / RFC 3376 §7.3.1: an IGMPv1 router is present; speak IGMPv1.
            if st.v1_router_until <= now and st.settings.version > 1:
                actions.append(self._drop(
                    st, DropReason.OLDER_QUERIER,
                    f"IGMPv1 query from {src}: querying in IGMPv1 mode for "
                    f"{V1_ROUTER_PRESENT_TIMEOUT:.0f} s (RFC 3376 §7.3.1)"))
            st.v1_router_until = now + V1_ROUTER_PRESENT_TIMEOUT
        elif level < st.level and st.warned_until.get(src, EXPIRED) <= now:
            # RFC 3376 §7.3.1 (RFC 3810 §8.3.1): warn (rate-limited) about an older
            # querier on the link.
            st.warned_until[src] = now + st.oqpi
            v = self._proto.version_name
            actions.append(self._drop(
                st, DropReason.OLDER_QUERIER,
                f"{v(level)} query from {src} on an {v(st.level)} "
                "interface: configure every router on the link for the lowest version"))
        # Querier election (RFC 3376 §6.6.2, RFC 2236 §3): the lowest address wins.
        if self.family.wins_election(src, st.querier):
            st.querier = src
            st.startup_left = 0
            self._timers.cancel(TimerKey(TimerKind.GENERAL_QUERY, st.name))
            actions.append(QuerierChanged(st.name, src, False))
        if st.querier != src:
            return  # a query from a router that lost the election: nothing to learn
        if level == 3:
            # §4.1.6/§4.1.7 (RFC 3810 §5.1.8, §5.1.9): adopt the querier's robustness and
            # query interval, up to max_robustness / max_query_interval (or our own, if
            # larger), so that one forged query cannot make every timer last for days.
            st.adopted_robustness = st.settings.adopted_robustness(q.qrv)
            st.adopted_query_interval = st.settings.adopted_query_interval(float(q.qqi))
        st.other_querier_until = now + st.oqpi
        self._timers.schedule(TimerKey(TimerKind.OTHER_QUERIER, st.name), st.other_querier_until)
        if q.is_general or q.s_flag or level == 1:
            return
        # §6.6.1 (and RFC 2236 §6 for non-queriers): lower timers to LMQT, here
        # [robustness] x the query's Max Resp time.
        g = st.groups.get(q.group)
        if g is None:
            return
        lowered = now + st.robustness * self._proto.max_resp(q)
        if not q.sources:
            if g.filter_mode is FilterMode.EXCLUDE and g.group_timer is not None:
                self._set_group_timer(st, g, min(g.group_timer, lowered))
        else:
            for source in q.sources:
                s = g.sources.get(source)
                if s is not None and s.timer > now:
                    self._set_source_timer(st, g, source, min(s.timer, lowered))

    # ----------------------------------------------------------------- reports in

    def _on_old_report(
        self, st: InterfaceState, src: Address, msg: Any, kind: MessageKind, now: float,
        actions: list[Action],
    ) -> None:
        if not msg.group.is_multicast:
            actions.append(self._drop(
                st, DropReason.BAD_GROUP, f"{self._proto.describe(msg)} from {src} "
                f"for {msg.group}"))
            return
        g = self._group(st, msg.group, src, actions)
        if g is None:
            return
        # §7.3.2 (RFC 3810 §8.3.2): a v1/v2 (MLDv1) report starts that version's Older
        # Version Host Present timer and is handled as IS_EX({}).
        if kind is _K.REPORT_V1:
            g.v1_host_until = now + st.gmi
        elif st.level > 2:
            g.v2_host_until = now + st.gmi
        self._apply(st, g, RecordType.MODE_IS_EXCLUDE, frozenset(), src, now, actions)

    def _on_leave(
        self, st: InterfaceState, src: Address, msg: Any, now: float,
        actions: list[Action],
    ) -> None:
        g = st.groups.get(msg.group)
        if st.version(now) == 1:
            actions.append(self._drop(
                st, DropReason.LEAVE_IGNORED, f"leave for {msg.group} from {src}: "
                "this interface speaks IGMPv1, which has no leaves (RFC 3376 §7.3.1)"))
            return
        if not st.is_querier:
            actions.append(self._drop(
                st, DropReason.LEAVE_IGNORED, f"{self._leave} for {msg.group} from {src}: "
                f"non-queriers ignore {self._leave}s ({self._proto.cite.non_querier_leave})"))
            return
        if g is None:
            return  # no members: nothing to leave
        if g.compat_mode(st.version(now), now) == 1:
            actions.append(self._drop(
                st, DropReason.LEAVE_IGNORED, f"leave for {msg.group} from {src}: the group is in "
                "IGMPv1 compatibility mode (RFC 3376 §7.3.2)"))
            return
        # §7.3.2 (RFC 3810 §8.3.2): a v2 leave (MLDv1 done) is TO_IN({}).
        self._apply(st, g, RecordType.CHANGE_TO_INCLUDE_MODE, frozenset(), src, now, actions)

    def _on_v3_report(
        self, st: InterfaceState, src: Address, msg: Any, now: float,
        actions: list[Action],
    ) -> None:
        if st.level < 3:
            v = self._proto.version_name
            actions.append(self._drop(
                st, DropReason.VERSION,
                f"{v(3)} report from {src} on an {v(st.level)} interface "
                "(hosts fall back to the querier's version)"))
            return
        for record in msg.records:
            self._on_record(st, src, record, now, actions)

    def _on_record(
        self, st: InterfaceState, src: Address, record: Record, now: float,
        actions: list[Action],
    ) -> None:
        if not isinstance(record.record_type, RecordType):
            actions.append(self._drop(
                st, DropReason.UNKNOWN_RECORD,
                f"record type {record.record_type} for {record.group} from {src}"))
            return
        rtype = record.record_type
        if not record.group.is_multicast:
            actions.append(self._drop(
                st, DropReason.BAD_GROUP, f"{rtype.short} record from {src} for {record.group}"))
            return
        sources: frozenset[Address] = frozenset(record.sources)
        existing = st.groups.get(record.group)
        compat = (existing.compat_mode(st.version(now), now) if existing is not None
                  else st.version(now))
        # §7.3.2: in v1/v2 compatibility mode BLOCK is ignored and TO_EX's sources are;
        # in v1 mode TO_IN is ignored too.
        if compat < 3:
            if rtype is RecordType.BLOCK_OLD_SOURCES or (
                    compat == 1 and rtype is RecordType.CHANGE_TO_INCLUDE_MODE):
                actions.append(self._drop(
                    st, DropReason.COMPAT_IGNORED, f"{rtype.short} for {record.group} from {src}: "
                    f"the group is in {self._proto.version_name(compat)} compatibility mode "
                    f"({self._proto.cite.compat})"))
                return
            if rtype is RecordType.CHANGE_TO_EXCLUDE_MODE:
                sources = frozenset()
        g = existing if existing is not None else self._group(st, record.group, src, actions)
        if g is None:
            return
        self._apply(st, g, rtype, sources, src, now, actions)

    # ----------------------------------------------------------------- the tables

    def _apply(
        self, st: InterfaceState, g: GroupState, rtype: RecordType,
        record_sources: frozenset[Address], host: Address, now: float,
        actions: list[Action],
    ) -> None:
        """Apply one (possibly translated) group record: RFC 3376 §6.4.1/§6.4.2."""
        row: Transition = TABLE[(g.filter_mode, rtype)]
        env = _letters(g, record_sources, now)
        # Evaluate every expression on the old state first.
        keep = row.new_requested(**env) | row.new_excluded(**env)
        left_out = self._over_source_bounds(st, g, keep - g.sources.keys())
        if left_out:
            # The sources this record would add past max_sources / max_group_sources are
            # taken out of the record (they are in no state yet, so nothing else changes).
            actions.append(self._drop(
                st, DropReason.SOURCE_LIMIT,
                f"{rtype.short} record from {host} for {g.group}: {len(left_out)} new "
                f"sources left out: the interface holds {st.source_count} sources "
                f"(max_sources {st.settings.max_sources}) and the group {len(g.sources)} "
                f"(max_group_sources {st.settings.max_group_sources}); known sources are "
                "kept. Raise the limits if this many sources are real"))
            record_sources -= left_out
            env = _letters(g, record_sources, now)
            keep = row.new_requested(**env) | row.new_excluded(**env)
        timer_sets = [(expr(**env), value) for expr, value in row.timers]
        queried = frozenset().union(*(expr(**env) for expr in row.query_sources))
        old_group_timer = g.group_timer if g.group_timer is not None else EXPIRED
        # "Delete (...)": whatever is in neither new list goes.
        for source in [s for s in g.sources if s not in keep]:
            self._delete_source(st, g, source)
        for source in keep - g.sources.keys():
            self._add_source(st, g, source)
        for sources, value in timer_sets:
            deadline = {TimerValue.GMI: now + st.gmi, TimerValue.ZERO: EXPIRED,
                        TimerValue.GROUP_TIMER: old_group_timer}[value]
            for source in sources:
                self._set_source_timer(st, g, source, deadline)
        g.filter_mode = row.new_mode
        if row.new_mode is FilterMode.EXCLUDE:
            if row.group_timer_gmi:
                self._set_group_timer(st, g, now + st.gmi)
        else:
            self._set_group_timer(st, g, None)
        self._track_host(st, g, host, rtype, record_sources, now)
        # "Send Q(...)": only the querier sends, and IGMPv1 has no specific queries.
        version = st.version(now)
        if st.is_querier and version >= 2 and (queried or row.query_group):
            if self._schedule_specific(st, g, queried if version == 3 else frozenset(),
                                       row.query_group, now):
                actions += self._transmit_specific(st, g, now)
            if st.settings.fast_leave:
                self._fast_leave(st, g, queried, row.query_group, now)
                actions += self._run_timers(now)
        self._settle(st, g, now, actions)

    def _over_source_bounds(
        self, st: InterfaceState, g: GroupState, new: frozenset[Address],
    ) -> frozenset[Address]:
        """Those of ``new`` (sources a record would add) past the source bounds.

        New sources fit while both bounds leave room, lowest addresses first (so the
        outcome does not depend on the record's order); sources the record deletes are
        not credited, so the bounds hold at every step.
        """
        s = st.settings
        room = min(s.max_sources - st.source_count, s.max_group_sources - len(g.sources))
        if len(new) <= room:
            return frozenset()
        return frozenset(sorted(new)[max(0, room):])

    def _track_host(
        self, st: InterfaceState, g: GroupState, host: Address, rtype: RecordType,
        sources: frozenset[Address], now: float,
    ) -> None:
        """Remember what ``host`` wants (the hosts' own filter state, RFC 3376 §3)."""
        expires = now + st.gmi
        if host == self.family.unspecified:
            # Anonymous reports cannot be matched with a later leave: count them as a
            # host that wants everything until GMI passes.
            g.hosts[host] = HostState(FilterMode.EXCLUDE, set(), expires)
            return
        h = g.hosts.get(host)
        if rtype is RecordType.CHANGE_TO_INCLUDE_MODE:
            h = HostState(FilterMode.INCLUDE, set(sources), expires)
        elif rtype in (RecordType.MODE_IS_EXCLUDE, RecordType.CHANGE_TO_EXCLUDE_MODE):
            h = HostState(FilterMode.EXCLUDE, set(sources), expires)
        elif rtype in (RecordType.ALLOW_NEW_SOURCES, RecordType.MODE_IS_INCLUDE):
            # IS_IN may answer a group-and-source-specific query with only the queried
            # sources (§5.2), so like ALLOW it adds to what the host wants, never removes.
            if h is None:
                h = HostState(FilterMode.INCLUDE, set(), expires)
            if h.filter_mode is FilterMode.INCLUDE:
                h.sources |= sources
            else:
                h.sources -= sources
            h.expires = expires
        elif h is not None:  # BLOCK from a host we know
            if h.filter_mode is FilterMode.INCLUDE:
                h.sources -= sources
            else:
                h.sources |= sources
            h.expires = expires
        if h is None or (h.filter_mode is FilterMode.INCLUDE and not h.sources):
            g.hosts.pop(host, None)
        else:
            g.hosts[host] = h

    def _fast_leave(
        self, st: InterfaceState, g: GroupState, queried: frozenset[Address],
        query_group: bool, now: float,
    ) -> None:
        """Expire at once what was just queried if no other known host still wants it."""
        hosts = g.live_hosts(now)
        if (query_group and g.filter_mode is FilterMode.EXCLUDE
                and not any(h.filter_mode is FilterMode.EXCLUDE for h in hosts)):
            # The group leaves EXCLUDE mode now instead of after LMQT. The sources that
            # INCLUDE-mode hosts asked for must survive the switch (§6.5 keeps only the
            # sources with running timers, and an IS_EX in EXCLUDE mode may have deleted
            # them): we know from their own reports until when they want them. They
            # are new state again, so the source bounds apply to them as to a record.
            wanted = frozenset(source for h in hosts for source in h.sources)
            past_bounds = self._over_source_bounds(st, g, wanted - g.sources.keys())
            for h in hosts:
                for source in h.sources:
                    s = g.sources.get(source)
                    if s is None:
                        if source in past_bounds:
                            continue
                        s = self._add_source(st, g, source)
                    if s.timer < h.expires:
                        self._set_source_timer(st, g, source, h.expires)
            g.retransmissions = 0
            self._set_group_timer(st, g, now)
        for source in queried:
            s = g.sources.get(source)
            if s is not None and not any(h.wants(source) for h in hosts):
                s.retransmissions = 0
                self._set_source_timer(st, g, source, min(s.timer, now))

    # ----------------------------------------------------------------- queries out

    def _general_query(self, st: InterfaceState, now: float) -> list[Action]:
        """Send a general query and arm the next one (§6.6.2, §8.6, §8.7)."""
        s = st.settings
        if st.startup_left > 0:
            st.startup_left -= 1
        if st.startup_left > 0:
            interval = s.startup_interval
        else:
            interval = s.query_interval * (1.0 - self._rng.uniform(0.0, QUERY_JITTER))
        self._timers.schedule(TimerKey(TimerKind.GENERAL_QUERY, st.name), now + interval)
        query = self._make_query(st, self.family.unspecified, s.query_response_interval, False,
                                 (), now)
        return [SendQuery(st.name, self.family.all_hosts, query)]

    def _make_query(
        self, st: InterfaceState, group: Address, max_resp: float, s_flag: bool,
        sources: tuple[Address, ...], now: float,
    ) -> Any:
        """The query for this level, in the protocol's own form and units."""
        s = st.settings
        return self._proto.make_query(st.version(now), group, max_resp, s_flag,
                                      s.robustness, s.query_interval, sources)

    def _schedule_specific(
        self, st: InterfaceState, g: GroupState, sources: frozenset[Address],
        query_group: bool, now: float,
    ) -> bool:
        """§6.6.3: lower the queried timers to LMQT and arm LMQC transmissions.

        A query already pending for the group or a source is merged with the new one
        (§6.6.3.1: "the new and pending queries have to be merged"): its timer is lowered
        but its count is not restarted, so a host that repeats its state-change report
        (as hosts do, [Robustness] times) does not add queries. Returns whether anything
        new was scheduled, i.e. whether a query must go out now.
        """
        lowered = now + st.lmqt
        count = st.settings.lmq_count
        new = False
        if query_group and g.filter_mode is FilterMode.EXCLUDE and g.group_timer is not None:
            self._set_group_timer(st, g, min(g.group_timer, lowered))
            if g.retransmissions == 0:
                g.retransmissions = count
                new = True
        for source in sources:
            s = g.sources.get(source)
            if s is not None:
                self._set_source_timer(st, g, source, min(s.timer, lowered))
                if s.retransmissions == 0:
                    s.retransmissions = count
                    new = True
        return new

    def _transmit_specific(self, st: InterfaceState, g: GroupState, now: float) -> list[Action]:
        """Send this round of g's pending specific queries (§6.6.3.1, §6.6.3.2)."""
        actions: list[Action] = []
        lmqt_deadline = now + st.lmqt
        lmqi = st.settings.last_member_query_interval
        if not st.is_querier or st.version(now) == 1:
            # Lost the election (or an IGMPv1 router appeared) while queries were
            # pending: only a querier sends them, and IGMPv1 has no specific queries.
            g.retransmissions = 0
            for state in g.sources.values():
                state.retransmissions = 0
            self._timers.cancel(TimerKey(TimerKind.RETRANSMIT, st.name, g.group))
            return actions
        if g.retransmissions > 0 and g.filter_mode is FilterMode.EXCLUDE:
            # §6.6.3.1: S flag set when the group timer is above LMQT (a report came).
            s_flag = g.group_timer is not None and g.group_timer > lmqt_deadline
            actions.append(SendQuery(st.name, g.group, self._make_query(
                st, g.group, lmqi, s_flag, (), now)))
            g.retransmissions -= 1
        else:
            g.retransmissions = 0
        pending = sorted(s for s, state in g.sources.items() if state.retransmissions > 0)
        if st.version(now) == 3:
            # §6.6.3.2: one query with S set for sources whose timer is above LMQT,
            # one with S clear for the others.
            high = [s for s in pending if g.sources[s].timer > lmqt_deadline]
            low = [s for s in pending if g.sources[s].timer <= lmqt_deadline]
            for s_flag, group_sources in ((True, high), (False, low)):
                per_query = self._proto.max_sources_per_query
                for i in range(0, len(group_sources), per_query):
                    chunk = tuple(group_sources[i:i + per_query])
                    actions.append(SendQuery(st.name, g.group, self._make_query(
                        st, g.group, lmqi, s_flag, chunk, now)))
        for source in pending:
            g.sources[source].retransmissions -= 1
        key = TimerKey(TimerKind.RETRANSMIT, st.name, g.group)
        if g.retransmissions > 0 or any(s.retransmissions > 0 for s in g.sources.values()):
            self._timers.schedule(key, now + lmqi)
        else:
            self._timers.cancel(key)
        return actions

    # ----------------------------------------------------------------- timers

    def _run_timers(self, now: float) -> list[Action]:
        actions: list[Action] = []
        while due := self._timers.pop_due(now):
            for key in due:
                assert isinstance(key, TimerKey)
                self._fire(key, now, actions)
        return actions

    def _fire(self, key: TimerKey, now: float, actions: list[Action]) -> None:
        st = self._ifaces.get(key.iface)
        if st is None:
            return
        if key.kind is TimerKind.GENERAL_QUERY:
            if st.is_querier:
                actions += self._general_query(st, now)
            return
        if key.kind is TimerKind.OTHER_QUERIER:
            # §6.6.2: the querier went quiet; resume querying with our own values.
            actions.append(TimerExpired(st.name, TimerName.OTHER_QUERIER))
            st.other_querier_until = None
            st.adopted_robustness = st.adopted_query_interval = None
            if st.settings.querier:
                st.querier = st.address
                actions.append(QuerierChanged(st.name, st.address, True))
                actions += self._general_query(st, now)
            else:
                st.querier = None
                actions.append(QuerierChanged(st.name, None, False))
            return
        g = st.groups.get(key.group)
        if g is None:
            return
        if key.kind is TimerKind.RETRANSMIT:
            actions += self._transmit_specific(st, g, now)
        elif key.kind is TimerKind.GROUP:
            # §6.5: the group timer expired in EXCLUDE mode: switch to INCLUDE with the
            # sources whose timers still run; none left means the group is gone.
            actions.append(TimerExpired(st.name, TimerName.GROUP, g.group))
            g.group_timer = None
            g.filter_mode = FilterMode.INCLUDE
            g.retransmissions = 0
            for source in [s for s, state in g.sources.items() if state.timer <= now]:
                self._delete_source(st, g, source)
        elif key.kind is TimerKind.SOURCE:
            expired = g.sources.get(key.source)
            if expired is None:
                return
            expired.retransmissions = 0
            actions.append(TimerExpired(st.name, TimerName.SOURCE, g.group, key.source))
            # §6.3: INCLUDE mode: the source is deleted; EXCLUDE mode: it stays with its
            # timer at 0 and is no longer forwarded.
            if g.filter_mode is FilterMode.INCLUDE:
                self._delete_source(st, g, key.source)
        self._settle(st, g, now, actions)

    def _set_group_timer(self, st: InterfaceState, g: GroupState, deadline: float | None) -> None:
        g.group_timer = deadline
        key = TimerKey(TimerKind.GROUP, st.name, g.group)
        if deadline is None:
            self._timers.cancel(key)
        else:
            self._timers.schedule(key, deadline)

    def _set_source_timer(
        self, st: InterfaceState, g: GroupState, source: Address, deadline: float,
    ) -> None:
        g.sources[source].timer = deadline
        key = TimerKey(TimerKind.SOURCE, st.name, g.group, source)
        if deadline == EXPIRED:
            self._timers.cancel(key)
        else:
            self._timers.schedule(key, deadline)

    # ----------------------------------------------------------------- bookkeeping

    def _iface(self, name: str) -> InterfaceState:
        try:
            return self._ifaces[name]
        except KeyError:
            known = ", ".join(self._ifaces) or "none"
            raise EngineError(
                f"interface {name} is not running {self._name} (known: {known}); "
                "add it with add_interface first") from None

    def _group(self, st: InterfaceState, group: Address, src: Address,
               actions: list[Action]) -> GroupState | None:
        """The group's state, made if new; None (and a Dropped) when the table is full."""
        g = st.groups.get(group)
        if g is None:
            limit = st.settings.max_groups
            if len(st.groups) >= limit:
                actions.append(self._drop(
                    st, DropReason.GROUP_LIMIT, f"report from {src} for {group} ignored: the table "
                    f"holds {limit} groups, the limit (max_groups); known groups are kept. "
                    "Raise max_groups if this many receivers are real"))
                return None
            g = st.groups[group] = GroupState(group)
        return g

    def _add_source(self, st: InterfaceState, g: GroupState, source: Address
                    ) -> SourceState:
        s = g.sources[source] = SourceState(EXPIRED)
        st.source_count += 1
        return s

    def _delete_source(self, st: InterfaceState, g: GroupState, source: Address) -> None:
        del g.sources[source]
        st.source_count -= 1
        self._timers.cancel(TimerKey(TimerKind.SOURCE, st.name, g.group, source))

    def _delete_group(self, st: InterfaceState, g: GroupState, actions: list[Action]) -> None:
        for source in list(g.sources):
            self._delete_source(st, g, source)
        self._timers.cancel(TimerKey(TimerKind.GROUP, st.name, g.group))
        self._timers.cancel(TimerKey(TimerKind.RETRANSMIT, st.name, g.group))
        del st.groups[g.group]
        if g.forwarding != (FilterMode.INCLUDE, frozenset()):
            actions.append(MembershipChanged(st.name, g.group, FilterMode.INCLUDE, frozenset()))

    def _settle(self, st: InterfaceState, g: GroupState, now: float, actions: list[Action]) -> None:
        """Delete an empty INCLUDE group; report a changed forwarding state."""
        if g.group not in st.groups:
            return
        if g.filter_mode is FilterMode.INCLUDE and not g.sources:
            self._delete_group(st, g, actions)
            return
        state = g.forwarding_state(now)
        if state != g.forwarding:
            g.forwarding = state
            actions.append(MembershipChanged(st.name, g.group, state[0], state[1]))

    def _drop(self, st: InterfaceState, reason: DropReason, detail: str) -> Dropped:
        st.dropped[reason] += 1
        return Dropped(st.name, reason, f"{st.name}: {detail}")

    def _group_view(self, st: InterfaceState, g: GroupState, now: float) -> GroupView:
        mode, forwarded = g.forwarding_state(now)
        # The Older Version Host Present timers in the protocol's own numbers: MLD's
        # only one is MLDv1's (the engine's level 2).
        older = (g.v1_host_until, g.v2_host_until) if st.level_offset == 0 else (
            g.v2_host_until, EXPIRED)
        return GroupView(
            group=g.group,
            filter_mode=g.filter_mode,
            compat_mode=g.compat_mode(st.version(now), now) - st.level_offset,
            group_timer=_remaining(g.group_timer, now),
            v1_host_present=_remaining(older[0], now),
            v2_host_present=_remaining(older[1], now),
            query_retransmissions=g.retransmissions,
            forwarding=ForwardingView(mode, tuple(sorted(forwarded))),
            sources=tuple(
                SourceView(source, _remaining(s.timer, now) or 0.0,
                           g.filter_mode is FilterMode.INCLUDE or s.timer > now,
                           s.retransmissions)
                for source, s in sorted(g.sources.items())),
            hosts=tuple(
                HostView(host, h.filter_mode, tuple(sorted(h.sources)),
                         _remaining(h.expires, now))
                for host, h in sorted(g.hosts.items()) if h.expires > now),
        )


def _letters(g: GroupState, record_sources: frozenset[Address], now: float,
             ) -> dict[str, frozenset[Address]]:
    """The RFC's letters for a table row: A, B in INCLUDE mode; X, Y, A in EXCLUDE."""
    if g.filter_mode is FilterMode.INCLUDE:
        return {"A": frozenset(g.sources), "B": record_sources}
    return {"X": g.requested(now), "Y": g.excluded(now), "A": record_sources}


def _remaining(deadline: float | None, now: float) -> float | None:
    if deadline is None or deadline == EXPIRED:
        return None
    return round(max(0.0, deadline - now), 3)
