"""What the engine tells its shell: small frozen actions, with typed reasons and kinds.

Theory of operation: :class:`~mrouter.igmp.engine.Engine` never performs I/O; every
call returns a list of these actions and the shell performs them (send a query,
program a route, log a drop). A :class:`Dropped` carries a :class:`DropReason` and a
:class:`TimerExpired` a :class:`TimerName`; both are ``StrEnum`` so that a shell may
compare them to the enum and print or serialise them as the same short tokens as
before (``"group-limit"``, ``"other_querier"``).

The module is pure: no sockets, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from ipaddress import IPv4Address, IPv6Address
from typing import Any, Generic, TypeVar

from mrouter.igmp.messages import Query
from mrouter.igmp.tables import FilterMode
from mrouter.mld.messages import Query as MldQuery

Address = IPv4Address | IPv6Address
#: The family's address type: the actions of an IPv4 (IGMP) interface carry
#: IPv4Address, those of an IPv6 (MLD) one IPv6Address.
A = TypeVar("A", bound=Address)

__all__ = [
    "Action",
    "DropReason",
    "Dropped",
    "MembershipChanged",
    "QuerierChanged",
    "SendQuery",
    "TimerExpired",
    "TimerName",
]


class DropReason(StrEnum):
    """Why a message (or a record, or some of its sources) was ignored."""

    FOREIGN_SOURCE = "foreign-source"  # source address not on the interface's subnet
    WRONG_DESTINATION = "wrong-destination"  # IP destination the message may not use
    BAD_TTL = "bad-ttl"  # IP TTL other than 1 (RFC 2236 §2, RFC 3376 §4)
    NO_ROUTER_ALERT = "no-router-alert"  # require_router_alert is on and RA is missing
    UNKNOWN_TYPE = "unknown-type"  # an IGMP type the engine does not handle
    OLDER_QUERIER = "older-querier"  # a query of an older version (a warning)
    BAD_GROUP = "bad-group"  # a report for a group that is not multicast
    LEAVE_IGNORED = "leave-ignored"  # IGMPv1 mode, non-querier, v1 compatibility
    VERSION = "version"  # an IGMPv3 report on an IGMPv1/v2 interface
    UNKNOWN_RECORD = "unknown-record"  # a group record type outside RFC 3376 §4.2.12
    COMPAT_IGNORED = "compat-ignored"  # BLOCK/TO_IN ignored in compatibility mode
    GROUP_LIMIT = "group-limit"  # the group table is full (max_groups)
    SOURCE_LIMIT = "source-limit"  # new sources past max_sources / max_group_sources


class TimerName(StrEnum):
    """The timers whose expiry changes state (reported as :class:`TimerExpired`)."""

    GROUP = "group"  # §6.5: EXCLUDE goes to INCLUDE
    SOURCE = "source"  # §6.3
    OTHER_QUERIER = "other_querier"  # §6.6.2: the querier went quiet


@dataclass(frozen=True, slots=True)
class SendQuery(Generic[A]):
    """Send ``query`` on interface ``iface`` to ``dst`` (all-hosts or the group): an
    IGMP query on an IPv4 interface, an MLD query on an IPv6 one."""

    iface: str
    dst: A
    query: Query | MldQuery


@dataclass(frozen=True, slots=True)
class MembershipChanged(Generic[A]):
    """New forwarding state of ``group`` on ``iface``.

    INCLUDE + sources: forward only those sources (INCLUDE with no sources: no members,
    stop forwarding). EXCLUDE + sources: forward every source except those.
    """

    iface: str
    group: A
    filter_mode: FilterMode
    sources: frozenset[A]


@dataclass(frozen=True, slots=True)
class QuerierChanged(Generic[A]):
    """The querier of ``iface`` is now ``querier`` (None: nobody known)."""

    iface: str
    querier: A | None
    is_self: bool


@dataclass(frozen=True, slots=True)
class TimerExpired(Generic[A]):
    """A timer that changes state ran out (see :class:`TimerName`). ``group`` and
    ``source`` are None where they do not apply. It comes before the
    MembershipChanged or QuerierChanged it causes (if any)."""

    iface: str
    timer: TimerName
    group: A | None = None
    source: A | None = None


@dataclass(frozen=True, slots=True)
class Dropped:
    """A message (or record) was ignored; ``reason`` says why, ``detail`` for people."""

    iface: str
    reason: DropReason
    detail: str


Action = (SendQuery[Any] | MembershipChanged[Any] | QuerierChanged[Any] | TimerExpired[Any]
          | Dropped)
"""What the engine returns; the address type is the interface's family's."""
