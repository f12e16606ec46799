"""Structured events of the daemon: one schema, a JSON-lines file, an in-memory ring.

Theory of operation: the daemon records what it does and sees as :class:`Event` values
(a ``kind`` from :class:`EventKind`, a ``time`` in seconds, the interface it concerns or
``None``, and a few JSON-able ``fields``). An :class:`EventLog` keeps the last N events
in an :class:`EventRing` (served over the control socket to ``mrouter events``, with a
cursor so a follower never sees an event twice and learns how many it missed) and, when
``mrouter run --events FILE`` is given, appends each one as a JSON line to that file
(:class:`EventWriter`). ``mrouter timeline`` reads such a file back with
:func:`read_events` and draws it.

Kinds and their fields (:data:`FIELDS` is the same table as data; extra fields are
allowed and kept, missing ones are an error)::

    kind                 iface   fields
    igmp_in              yes     type (query|report|leave), src, group (None for a
                                 general query), version; optional sources
    igmp_out             yes     type, dst, group, version
    mld_in               yes     as igmp_in, for MLD (RFC 2710, RFC 3810): version 1
                                 or 2; an MLDv1 Done is type leave; src is the
                                 listener's link-local address
    mld_out              yes     as igmp_out, for MLD
    querier_changed      yes     querier (address or None), is_self
    membership_changed   yes     group, filter_mode (INCLUDE|EXCLUDE), sources
                                 (INCLUDE with no sources = no members left)
    timer_expired        yes     timer (group|source|other_querier), group (None for
                                 other_querier); source for a source timer
    mfc_add              None    source, group, iif, oifs (interface names)
    mfc_update           None    source, group, iif, oifs
    mfc_delete           None    source, group; optional packets, bytes, wrong_if
    mfc_counters         None    source, group, packets, bytes, wrong_if
    upcall               yes     type (NOCACHE|WRONGVIF|...), source, group
    iface_changed        yes     state (up|down|added|removed|address)
    upstream_membership  yes     group, filter_mode, sources: what a proxy now holds on
                                 its upstream interface for the group (its kernel sends
                                 the reports); INCLUDE with no sources = left
    forward_decision     yes     (the inbound interface) source, group, ttl (on
                                 arrival), oifs (sent out of), held_back (TTL below
                                 their threshold), reason (None when forwarded, else
                                 why not); only from `run --dataplane user
                                 --log-decisions`, one per packet
    daemon_started       None    (none required)
    daemon_stopped       None    (none required)
    step                 None    text: what a scenario (or a teacher) did at that moment,
                                 e.g. "h2 leaves"; optional names (address -> node
                                 name, for labels); never written by the daemon

``time`` is whatever clock the daemon uses for its engine (monotonic seconds) plus, in
``wall``, the Unix time, so a file can be read against other logs. Only
:class:`EventWriter` does I/O; everything else here is pure.

IPv6 (the schema a dual-stack daemon writes): every event about IPv6 addresses has
``"family": "ipv6"``; an event without ``family`` is IPv4 (so IPv4 events, and every
file written before IPv6, read as they always did; :attr:`Event.family` says which).
The fields are the same, with IPv6 addresses as strings in their short form
(``ff15::1``, ``2001:db8:1::2``), and the same kinds except for the membership
protocol's messages: ``mld_in``/``mld_out`` instead of ``igmp_in``/``igmp_out``.
:func:`make` fills ``family`` in when a field holds an IPv6 address and none was given,
and records an ``igmp_in``/``igmp_out`` given an IPv6 message as ``mld_in``/``mld_out``,
so a daemon may call ``record("igmp_in", now, iface, src=..., **igmp_fields(msg))`` for
either family. ``iface_changed``, ``daemon_*`` and ``step`` have no family.
``upcall`` types keep the IPv4 names (WRONGVIF for IPv6's WRONGMIF: one enum).
"""

from __future__ import annotations

import dataclasses
import json
from collections import deque
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address, ip_address
from pathlib import Path
from typing import IO, Any

from mrouter.errors import MrouterError
from mrouter.igmp.engine import (
    Action,
    MembershipChanged,
    QuerierChanged,
    SendQuery,
    TimerExpired,
)
from mrouter.igmp.messages import (
    IgmpMessage,
    Query,
    RecordType,
    V1Report,
    V2Leave,
    V2Report,
    V3Report,
)
from mrouter.mld.messages import MldMessage
from mrouter.mld.messages import Query as MldQuery
from mrouter.mld.messages import V1Done as MldV1Done
from mrouter.mld.messages import V1Report as MldV1Report
from mrouter.mld.messages import V2Report as MldV2Report


class EventsError(MrouterError):
    """A malformed event, or an events file that cannot be read or written."""


class EventKind(StrEnum):
    IGMP_IN = "igmp_in"
    IGMP_OUT = "igmp_out"
    MLD_IN = "mld_in"
    MLD_OUT = "mld_out"
    QUERIER_CHANGED = "querier_changed"
    MEMBERSHIP_CHANGED = "membership_changed"
    TIMER_EXPIRED = "timer_expired"
    MFC_ADD = "mfc_add"
    MFC_UPDATE = "mfc_update"
    MFC_DELETE = "mfc_delete"
    MFC_COUNTERS = "mfc_counters"
    UPCALL = "upcall"
    IFACE_CHANGED = "iface_changed"
    UPSTREAM_MEMBERSHIP = "upstream_membership"
    FORWARD_DECISION = "forward_decision"
    DAEMON_STARTED = "daemon_started"
    DAEMON_STOPPED = "daemon_stopped"
    STEP = "step"


#: kind -> (needs an interface, required fields). The module docstring explains them.
FIELDS: dict[EventKind, tuple[bool, tuple[str, ...]]] = {
    EventKind.IGMP_IN: (True, ("type", "src", "group", "version")),
    EventKind.IGMP_OUT: (True, ("type", "dst", "group", "version")),
    EventKind.MLD_IN: (True, ("type", "src", "group", "version")),
    EventKind.MLD_OUT: (True, ("type", "dst", "group", "version")),
    EventKind.QUERIER_CHANGED: (True, ("querier", "is_self")),
    EventKind.MEMBERSHIP_CHANGED: (True, ("group", "filter_mode", "sources")),
    EventKind.TIMER_EXPIRED: (True, ("timer", "group")),
    EventKind.MFC_ADD: (False, ("source", "group", "iif", "oifs")),
    EventKind.MFC_UPDATE: (False, ("source", "group", "iif", "oifs")),
    EventKind.MFC_DELETE: (False, ("source", "group")),
    EventKind.MFC_COUNTERS: (False, ("source", "group", "packets", "bytes", "wrong_if")),
    EventKind.UPCALL: (True, ("type", "source", "group")),
    EventKind.IFACE_CHANGED: (True, ("state",)),
    EventKind.UPSTREAM_MEMBERSHIP: (True, ("group", "filter_mode", "sources")),
    EventKind.FORWARD_DECISION: (True, ("source", "group", "ttl", "oifs", "reason")),
    EventKind.DAEMON_STARTED: (False, ()),
    EventKind.DAEMON_STOPPED: (False, ()),
    EventKind.STEP: (False, ("text",)),
}


#: Fields that hold an address: what :func:`make` looks at to tell the family.
ADDRESS_FIELDS = ("group", "source", "src", "dst", "querier")
#: The membership protocol's message kinds per family: (received, sent).
MESSAGE_KINDS = {"ipv4": (EventKind.IGMP_IN, EventKind.IGMP_OUT),
                 "ipv6": (EventKind.MLD_IN, EventKind.MLD_OUT)}
_FAMILY_LESS = (EventKind.IFACE_CHANGED, EventKind.DAEMON_STARTED,
                EventKind.DAEMON_STOPPED, EventKind.STEP)


def _address_family(fields: Mapping[str, Any]) -> str | None:
    """"ipv6" if an address field holds an IPv6 address (object or text), "ipv4" if one
    holds an IPv4 address, None if none holds an address."""
    for name in ADDRESS_FIELDS:
        value = fields.get(name)
        if isinstance(value, IPv4Address | IPv6Address):
            return "ipv6" if value.version == 6 else "ipv4"
        if isinstance(value, str):
            try:
                return "ipv6" if ip_address(value).version == 6 else "ipv4"
            except ValueError:
                continue
    return None


def _jsonable(value: Any) -> Any:
    """Addresses become strings, sets sorted lists, enums their name; the rest as is."""
    if isinstance(value, IPv4Address | IPv6Address):
        return str(value)
    if isinstance(value, (set, frozenset)):
        return sorted(_jsonable(v) for v in value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if hasattr(value, "name") and hasattr(value, "value") and not isinstance(value, str):
        return value.name  # an Enum (FilterMode.INCLUDE -> "INCLUDE")
    return value


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened. ``fields`` hold JSON-able values only (see :func:`make`)."""

    kind: EventKind
    time: float
    iface: str | None = None
    fields: Mapping[str, Any] = field(default_factory=dict)
    wall: float | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"time": round(self.time, 6), "kind": self.kind.value,
                               "iface": self.iface}
        if self.wall is not None:
            out["wall"] = round(self.wall, 6)
        out.update(self.fields)
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=False)

    @property
    def family(self) -> str | None:
        """"ipv4" or "ipv6" (no ``family`` field: IPv4); None for a kind that has none."""
        if self.kind in _FAMILY_LESS:
            return None
        return str(self.fields.get("family", "ipv4"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "event") -> Event:
        try:
            kind = EventKind(data["kind"])
        except KeyError:
            raise EventsError(f"{where}: no \"kind\" key; every event has kind, time "
                              "and iface") from None
        except ValueError:
            raise EventsError(f"{where}: unknown kind {data['kind']!r}; known: "
                              + ", ".join(k.value for k in EventKind)) from None
        t = data.get("time")
        if not isinstance(t, (int, float)) or isinstance(t, bool):
            raise EventsError(f"{where}: \"time\" must be a number of seconds, not {t!r}")
        wall = data.get("wall")
        rest = {k: v for k, v in data.items() if k not in ("kind", "time", "iface", "wall")}
        return make(kind, float(t), data.get("iface"), where=where,
                    wall=float(wall) if isinstance(wall, (int, float)) else None, **rest)


def make(kind: EventKind | str, time: float, iface: str | None = None, *,
         where: str = "event", wall: float | None = None, **fields: Any) -> Event:
    """Build and check an event: the kind's required fields present, an interface when
    the kind needs one. Values are made JSON-able (addresses to strings, sets to lists)."""
    try:
        k = EventKind(kind)
    except ValueError:
        raise EventsError(f"{where}: unknown kind {kind!r}; known: "
                          + ", ".join(e.value for e in EventKind)) from None
    family = fields.get("family")
    if family is None and k not in _FAMILY_LESS and _address_family(fields) == "ipv6":
        family = fields["family"] = "ipv6"
    if family not in (None, "ipv4", "ipv6"):
        raise EventsError(f"{where}: \"family\" must be \"ipv4\" or \"ipv6\", not "
                          f"{family!r}")
    if family is not None and k in (EventKind.IGMP_IN, EventKind.IGMP_OUT,
                                    EventKind.MLD_IN, EventKind.MLD_OUT):
        # IGMP is IPv4's, MLD IPv6's: the kind follows the family
        k = MESSAGE_KINDS[family][k in (EventKind.IGMP_OUT, EventKind.MLD_OUT)]
    needs_iface, required = FIELDS[k]
    if needs_iface and not iface:
        raise EventsError(f"{where}: a {k.value} event needs an interface (iface)")
    missing = [f for f in required if f not in fields]
    if missing:
        raise EventsError(f"{where}: a {k.value} event needs the field(s) "
                          + ", ".join(missing))
    return Event(k, time, iface, {n: _jsonable(v) for n, v in fields.items()}, wall)


# --- from the daemon's own values --------------------------------------------------------------


def igmp_fields(msg: IgmpMessage | MldQuery | MldMessage) -> dict[str, Any]:
    """``type``, ``group``, ``version`` (and ``records`` for IGMPv3 and MLDv2) of an IGMP
    or MLD message, as igmp_in/igmp_out (mld_in/mld_out) want them. A v3 (MLDv2) report
    whose every record is TO_IN {} or BLOCK is a ``leave``, as are a v2 Leave and an
    MLDv1 Done; a general query has group None."""
    if isinstance(msg, Query | MldQuery):
        group = None if msg.group.is_unspecified else str(msg.group)
        return {"type": "query", "group": group, "version": msg.version,
                "sources": [str(s) for s in msg.sources]}
    if isinstance(msg, (V1Report, V2Report, MldV1Report)):
        return {"type": "report", "group": str(msg.group),
                "version": 2 if isinstance(msg, V2Report) else 1}
    if isinstance(msg, (V2Leave, MldV1Done)):
        return {"type": "leave", "group": str(msg.group),
                "version": 2 if isinstance(msg, V2Leave) else 1}
    if isinstance(msg, (V3Report, MldV2Report)):
        leaving = bool(msg.records) and all(
            (r.record_type == RecordType.CHANGE_TO_INCLUDE_MODE and not r.sources)
            or r.record_type == RecordType.BLOCK_OLD_SOURCES for r in msg.records)
        records = [{"type": r.record_type.short
                    if isinstance(r.record_type, RecordType) else int(r.record_type),
                    "group": str(r.group), "sources": [str(x) for x in r.sources]}
                   for r in msg.records]
        return {"type": "leave" if leaving else "report",
                "group": str(msg.records[0].group) if msg.records else None,
                "version": 3 if isinstance(msg, V3Report) else 2, "records": records}
    return {"type": f"unknown({msg.type})", "group": None, "version": None}


def from_action(action: object, now: float, family: str | None = None) -> Event | None:
    """The event for an IGMP (or MLD) engine action (SendQuery -> igmp_out or mld_out,
    MembershipChanged -> membership_changed, QuerierChanged -> querier_changed,
    TimerExpired -> timer_expired); None for the others. The family follows the
    action's addresses (see the module docstring); ``family`` ("ipv6") tells it for the
    actions that may have none: a querier change to nobody, the other-querier timer."""
    extra: dict[str, Any] = {} if family is None or family == "ipv4" else {"family": family}
    if isinstance(action, SendQuery):
        if isinstance(action.query, MldQuery):
            extra = {"family": "ipv6"}
        return make(EventKind.IGMP_OUT, now, action.iface, dst=action.dst,
                    **igmp_fields(action.query), **extra)
    if isinstance(action, MembershipChanged):
        return make(EventKind.MEMBERSHIP_CHANGED, now, action.iface, group=action.group,
                    filter_mode=action.filter_mode, sources=action.sources, **extra)
    if isinstance(action, QuerierChanged):
        return make(EventKind.QUERIER_CHANGED, now, action.iface, querier=action.querier,
                    is_self=action.is_self, **extra)
    if isinstance(action, TimerExpired):
        if action.source is not None:
            extra["source"] = action.source
        return make(EventKind.TIMER_EXPIRED, now, action.iface, timer=action.timer,
                    group=action.group, **extra)
    return None


def action_event(action: Action) -> dict[str, Any]:
    """An engine action as ``mrouter querier`` prints it: one JSON object with ``event``
    (membership, querier, query, timer or dropped), ``iface`` and that event's fields.

    The standalone querier's own line format, older than the daemon's events and kept as
    it is; :func:`from_action` is the daemon's :class:`Event` for the same actions."""
    if isinstance(action, MembershipChanged):
        return {"event": "membership", "iface": action.iface, "group": str(action.group),
                "filter_mode": action.filter_mode.name,
                "sources": [str(s) for s in sorted(action.sources)]}
    if isinstance(action, QuerierChanged):
        return {"event": "querier", "iface": action.iface,
                "querier": None if action.querier is None else str(action.querier),
                "is_self": action.is_self}
    if isinstance(action, SendQuery):
        q = action.query
        max_resp = q.max_resp_tenths / 10 if isinstance(q, Query) else q.max_resp_ms / 1000
        return {"event": "query", "iface": action.iface, "dst": str(action.dst),
                "version": q.version, "group": str(q.group), "s_flag": q.s_flag,
                "max_resp": max_resp, "sources": [str(s) for s in q.sources]}
    if isinstance(action, TimerExpired):
        return {"event": "timer", "iface": action.iface, "timer": action.timer,
                "group": None if action.group is None else str(action.group),
                "source": None if action.source is None else str(action.source)}
    return {"event": "dropped", "iface": action.iface, "reason": action.reason,
            "detail": action.detail}


# --- files ---------------------------------------------------------------------------------


def parse_lines(lines: Iterable[str], name: str = "<events>") -> Iterator[Event]:
    """Events from JSON lines; blank lines are skipped; a bad line raises EventsError
    naming the file and line number."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{name} line {number}"
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EventsError(f"{where}: not JSON ({exc.msg}); an events file has one "
                              "JSON object per line") from None
        if not isinstance(data, dict):
            raise EventsError(f"{where}: expected a JSON object, got {type(data).__name__}")
        yield Event.from_dict(data, where)


def read_events(path: str | Path) -> list[Event]:
    """All events of a JSON-lines file (as written by ``mrouter run --events``)."""
    p = Path(path)
    try:
        text = p.read_text()
    except OSError as exc:
        raise EventsError(f"cannot read events file {p}: {exc.strerror}") from None
    return list(parse_lines(text.splitlines(), str(p)))


class EventWriter:
    """Appends events to a file, one JSON line each, flushed at once (a crash loses
    nothing that was recorded; ``tail -f`` shows each event as it happens)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self._file: IO[str] = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise EventsError(f"cannot open events file {self.path}: {exc.strerror}; "
                              "choose another path with --events") from None

    def write(self, event: Event) -> None:
        self._file.write(event.to_json() + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


# --- the ring --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Batch:
    """What a follower gets: the events after its cursor, the cursor to pass next time,
    and how many events it missed because the ring had already dropped them."""

    events: tuple[Event, ...]
    cursor: int
    lost: int

    def to_dict(self) -> dict[str, Any]:
        return {"events": [e.to_dict() for e in self.events], "cursor": self.cursor,
                "lost": self.lost}


class EventRing:
    """The last ``capacity`` events, numbered 1, 2, 3... A cursor is the number of the
    last event a reader has seen (0: none); :meth:`since` returns what came after."""

    def __init__(self, capacity: int = 4096) -> None:
        if capacity < 1:
            raise EventsError(f"event ring capacity must be at least 1, not {capacity}")
        self._events: deque[Event] = deque(maxlen=capacity)
        self._last = 0  # number of the newest event

    @property
    def cursor(self) -> int:
        """The cursor of a reader that has seen everything so far (to follow from now)."""
        return self._last

    def append(self, event: Event) -> int:
        self._events.append(event)
        self._last += 1
        return self._last

    def since(self, cursor: int = 0, limit: int | None = None) -> Batch:
        first = self._last - len(self._events) + 1  # number of the oldest event kept
        cursor = max(0, min(cursor, self._last))
        lost = max(0, first - 1 - cursor)
        start = max(cursor + 1, first)
        items = list(self._events)[start - first:]
        if limit is not None:
            items = items[:max(0, limit)]
        return Batch(tuple(items), start - 1 + len(items), lost)


class EventLog:
    """What the daemon holds: a ring, an optional file, one :meth:`record` call.

    ``wall_clock`` (e.g. ``time.time``) stamps ``wall``; the daemon passes ``now`` from
    its own clock so events line up with the engine's timers.
    """

    def __init__(self, capacity: int = 4096, writer: EventWriter | None = None,
                 wall_clock: Any = None) -> None:
        self.ring = EventRing(capacity)
        self.writer = writer
        self.wall_clock = wall_clock

    def record(self, kind: EventKind | str, now: float, iface: str | None = None,
               **fields: Any) -> Event:
        wall = float(self.wall_clock()) if self.wall_clock is not None else None
        return self._keep(make(kind, now, iface, wall=wall, **fields))

    def serve(self, request: Mapping[str, Any]) -> dict[str, Any]:
        """The control-socket handler for ``{"command": "events", "since": N,
        "limit": M}``; without ``since`` it returns the whole ring."""
        since = request.get("since", 0)
        limit = request.get("limit")
        if since == "now":
            since = self.ring.cursor
        if not isinstance(since, int) or (limit is not None and not isinstance(limit, int)):
            raise EventsError("events: \"since\" must be a cursor number (or \"now\") and "
                              "\"limit\" a number")
        return self.ring.since(since, limit).to_dict()

    def record_action(self, action: object, now: float,
                      family: str | None = None) -> Event | None:
        """Record an IGMP (MLD) engine action if it is one that has an event (see
        :func:`from_action`, and its ``family``); the daemon may pass every action it
        performs."""
        event = from_action(action, now, family)
        if event is None:
            return None
        return self._keep(dataclasses.replace(
            event, wall=float(self.wall_clock()) if self.wall_clock is not None else None))

    def _keep(self, event: Event) -> Event:
        self.ring.append(event)
        if self.writer is not None:
            self.writer.write(event)
        return event

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
