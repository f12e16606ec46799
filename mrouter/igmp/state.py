"""The engine's per-interface, per-group and per-source state (RFC 3376 §6.2).

Theory of operation: an :class:`InterfaceState` holds the querier election's state and
a :class:`GroupState` per group; a group holds its filter mode, group timer and a
:class:`SourceState` per source, plus what each host last said (:class:`HostState`).
Every timer is a deadline (an absolute time in the caller's clock) stored here and
indexed by :class:`TimerKey` in the engine's :class:`~mrouter.igmp.timers.DeadlineHeap`.
Only :mod:`mrouter.igmp.engine` changes this state. Versions here are the engine's
levels (:mod:`mrouter.igmp.adapter`: IGMP's version numbers; MLDv1 is 2, MLDv2 3).

The module is pure: no sockets, no clock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from enum import IntEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import NamedTuple

from mrouter.igmp.actions import DropReason
from mrouter.igmp.messages import ANY
from mrouter.igmp.settings import InterfaceSettings
from mrouter.igmp.tables import FilterMode

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

#: A source timer of 0 (RFC 3376 §6.3: an excluded source in EXCLUDE mode).
EXPIRED = float("-inf")


class TimerKind(IntEnum):
    GENERAL_QUERY = 1  # the querier's next general query
    OTHER_QUERIER = 2  # Other Querier Present timer (§6.6.2)
    GROUP = 3  # group timer (§6.2.2)
    SOURCE = 4  # source timer (§6.2.3)
    RETRANSMIT = 5  # next specific-query retransmission of a group (§6.6.3)


class TimerKey(NamedTuple):
    kind: TimerKind
    iface: str
    group: Address = ANY
    source: Address = ANY


@dataclass
class SourceState:
    timer: float  # deadline; at or before now means "timer 0"
    retransmissions: int = 0  # Q(G,S) retransmissions left (§6.6.3.2)


@dataclass
class HostState:
    """What one host last told us about a group (for fast leave and for students)."""

    filter_mode: FilterMode
    sources: set[Address]
    expires: float

    def wants(self, source: Address) -> bool:
        if self.filter_mode is FilterMode.INCLUDE:
            return source in self.sources
        return source not in self.sources


@dataclass
class GroupState:
    group: Address
    filter_mode: FilterMode = FilterMode.INCLUDE
    group_timer: float | None = None  # deadline; EXCLUDE mode only
    sources: dict[Address, SourceState] = field(default_factory=dict)
    v1_host_until: float = EXPIRED  # Older Version Host Present timers (§7.3.2)
    v2_host_until: float = EXPIRED
    retransmissions: int = 0  # Q(G) retransmissions left (§6.6.3.1)
    hosts: dict[Address, HostState] = field(default_factory=dict)
    forwarding: tuple[FilterMode, frozenset[Address]] = (
        FilterMode.INCLUDE, frozenset())

    def compat_mode(self, router_version: int, now: float) -> int:
        """Group Compatibility Mode (RFC 3376 §7.3.2)."""
        if self.v1_host_until > now:
            return 1
        if self.v2_host_until > now:
            return min(2, router_version)
        return router_version

    def excluded(self, now: float) -> frozenset[Address]:
        return frozenset(s for s, st in self.sources.items() if st.timer <= now)

    def requested(self, now: float) -> frozenset[Address]:
        return frozenset(s for s, st in self.sources.items() if st.timer > now)

    def forwarding_state(self, now: float) -> tuple[FilterMode, frozenset[Address]]:
        if self.filter_mode is FilterMode.INCLUDE:
            return (FilterMode.INCLUDE, frozenset(self.sources))
        return (FilterMode.EXCLUDE, self.excluded(now))

    def live_hosts(self, now: float) -> list[HostState]:
        for host in [h for h, st in self.hosts.items() if st.expires <= now]:
            del self.hosts[host]
        return list(self.hosts.values())


@dataclass
class InterfaceState:
    name: str
    address: Address
    network: Network
    settings: InterfaceSettings
    querier: Address | None = None
    other_querier_until: float | None = None
    startup_left: int = 0
    v1_router_until: float = EXPIRED
    adopted_robustness: int | None = None  # from the querier's QRV (§4.1.6)
    adopted_query_interval: float | None = None  # from its QQIC (§4.1.7)
    groups: dict[Address, GroupState] = field(default_factory=dict)
    dropped: Counter[DropReason] = field(default_factory=Counter)
    source_count: int = 0  # source records in all groups (bounded by max_sources)
    warned_until: dict[Address, float] = field(default_factory=dict)
    level_offset: int = 0  # the protocol's version + this = the engine's level

    @property
    def is_querier(self) -> bool:
        return self.querier == self.address

    @property
    def level(self) -> int:
        """The configured version as a level (IGMPv3 and MLDv2: 3)."""
        return self.settings.version + self.level_offset

    def version(self, now: float) -> int:
        """The level this router speaks now (IGMPv1 while a v1 router is present)."""
        return 1 if self.v1_router_until > now else self.level

    # Timer values: a non-querier uses the querier's values (§4.1.6, §4.1.7); a querier
    # uses its own.
    @property
    def robustness(self) -> int:
        return self.adopted_robustness or self.settings.robustness

    @property
    def query_interval(self) -> float:
        return self.adopted_query_interval or self.settings.query_interval

    @property
    def query_response_interval(self) -> float:
        return self.settings.query_response_interval

    @property
    def gmi(self) -> float:
        return self.robustness * self.query_interval + self.query_response_interval

    @property
    def oqpi(self) -> float:
        return self.robustness * self.query_interval + self.query_response_interval / 2

    @property
    def lmqt(self) -> float:
        return self.settings.last_member_query_time
