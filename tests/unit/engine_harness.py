"""A simulated LAN clock around one :class:`Engine` interface, for the engine tests."""

from __future__ import annotations

import random
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network

from mrouter.igmp.engine import (
    Action,
    Engine,
    FilterMode,
    InterfaceSettings,
    MembershipChanged,
    QuerierChanged,
    SendQuery,
)
from mrouter.igmp.messages import (
    ALL_IGMPV3_ROUTERS,
    ALL_ROUTERS,
    ALL_SYSTEMS,
    GroupRecord,
    IgmpMessage,
    Query,
    RecordType,
    V1Report,
    V2Leave,
    V2Report,
    V3Report,
)
from mrouter.igmp.snapshot import GroupView, InterfaceSnapshot

IFACE = "dn0"
ROUTER = IPv4Address("192.0.2.1")
NET = IPv4Network("192.0.2.0/24")
H1, H2, H3 = (IPv4Address(f"192.0.2.{i}") for i in (11, 12, 13))
G = IPv4Address("239.1.1.1")
S = [IPv4Address(f"198.51.100.{i}") for i in range(10)]  # S[1]..S[5] used as s1..s5


def srcs(*idx: int) -> frozenset[IPv4Address]:
    return frozenset(S[i] for i in idx)


class Lan:
    """One engine interface and a fake clock; every action is recorded with its time."""

    def __init__(self, settings: InterfaceSettings | None = None, *,
                 address: IPv4Address = ROUTER, seed: int = 1) -> None:
        self.engine = Engine(random.Random(seed))
        self.now = 0.0
        self.log: list[tuple[float, Action]] = []
        self._record(self.engine.add_interface(
            IFACE, address, NET, settings or InterfaceSettings(), self.now))

    def _record(self, actions: Iterable[Action]) -> list[Action]:
        out = list(actions)
        self.log += [(self.now, a) for a in out]
        return out

    def advance(self, seconds: float) -> list[Action]:
        """Move the clock, calling tick at every deadline on the way, as a shell would."""
        end = self.now + seconds
        out: list[Action] = []
        while (d := self.engine.next_deadline()) is not None and d <= end:
            self.now = max(self.now, d)
            out += self._record(self.engine.tick(self.now))
        self.now = end
        out += self._record(self.engine.tick(self.now))
        return out

    def receive(self, src: IPv4Address, msg: IgmpMessage, dst: IPv4Address | None = None,
                *, ttl: int = 1, router_alert: bool = True) -> list[Action]:
        """Deliver ``msg`` from ``src``; ``dst`` defaults to where the RFCs send it."""
        if dst is None:
            dst = destination(msg)
        return self._record(self.engine.receive(IFACE, src, dst, msg, self.now, ttl=ttl,
                                                router_alert=router_alert))

    def record(self, host: IPv4Address, rtype: RecordType, sources: Iterable[IPv4Address] = (),
               group: IPv4Address = G) -> list[Action]:
        rec = GroupRecord(rtype, group, tuple(sorted(sources)))
        return self.receive(host, V3Report((rec,)))

    def v2_report(self, host: IPv4Address, group: IPv4Address = G) -> list[Action]:
        return self.receive(host, V2Report(group), dst=group)

    def v2_leave(self, host: IPv4Address, group: IPv4Address = G) -> list[Action]:
        return self.receive(host, V2Leave(group), dst=ALL_ROUTERS)

    # ---- observations

    def snapshot(self) -> InterfaceSnapshot:
        return self.engine.snapshot(IFACE, self.now)

    def group(self, group: IPv4Address = G) -> GroupView | None:
        return self.snapshot().group(group)

    def source_timers(self, group: IPv4Address = G) -> dict[IPv4Address, float]:
        g = self.group(group)
        assert g is not None
        return g.source_timers()

    def forwarding(self, group: IPv4Address = G) -> tuple[FilterMode, frozenset[IPv4Address]]:
        """The last MembershipChanged for the group (INCLUDE {} if none)."""
        state = (FilterMode.INCLUDE, frozenset[IPv4Address]())
        for _, a in self.log:
            if isinstance(a, MembershipChanged) and a.group == group:
                state = (a.filter_mode, a.sources)
        return state


def destination(msg: IgmpMessage) -> IPv4Address:
    """The IP destination the RFCs give ``msg`` (RFC 3376 §4.1.12, §4.2.14; RFC 2236 §3)."""
    if isinstance(msg, Query):
        return ALL_SYSTEMS if msg.is_general else msg.group
    if isinstance(msg, V1Report | V2Report):
        return msg.group
    if isinstance(msg, V2Leave):
        return ALL_ROUTERS
    return ALL_IGMPV3_ROUTERS


def queries(actions: Iterable[Action]) -> list[Query]:
    return [a.query for a in actions if isinstance(a, SendQuery)]


def specific(actions: Iterable[Action]) -> set[tuple[IPv4Address, frozenset[IPv4Address], bool]]:
    """Group(-and-source)-specific queries as (group, sources, S flag)."""
    return {(q.group, frozenset(q.sources), q.s_flag) for q in queries(actions)
            if not q.is_general}


def changes(actions: Iterable[Action]) -> list[MembershipChanged]:
    return [a for a in actions if isinstance(a, MembershipChanged)]


def querier_changes(actions: Iterable[Action]) -> list[QuerierChanged]:
    return [a for a in actions if isinstance(a, QuerierChanged)]
