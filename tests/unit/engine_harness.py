"""A simulated LAN clock around one :class:`Engine` interface, for the engine tests.

IPv4 (IGMP) by default; ``Lan(family=V6)`` runs the same engine with MLD, on the
link-local addresses of :data:`V6` (a :class:`Link` names each family's addresses, and
``V6.like(address)`` is the IPv6 twin of an IPv4 constant below, so a test written with
H1, G and S runs for both families).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from mrouter.igmp.engine import (
    Action,
    Engine,
    FilterMode,
    InterfaceSettings,
    MembershipChanged,
    QuerierChanged,
    SendQuery,
)
from mrouter.igmp.family import IPV4, IPV6, AddressFamily
from mrouter.igmp.messages import (
    ALL_IGMPV3_ROUTERS,
    ALL_ROUTERS,
    ALL_SYSTEMS,
    GroupRecord,
    Query,
    RecordType,
    V1Report,
    V2Leave,
    V2Report,
    V3Report,
)
from mrouter.igmp.settings import MLD_DEFAULTS
from mrouter.igmp.snapshot import GroupView, InterfaceSnapshot
from mrouter.mld import messages as mld

IFACE = "dn0"
ROUTER = IPv4Address("192.0.2.1")
NET = IPv4Network("192.0.2.0/24")
H1, H2, H3 = (IPv4Address(f"192.0.2.{i}") for i in (11, 12, 13))
G = IPv4Address("239.1.1.1")
S = [IPv4Address(f"198.51.100.{i}") for i in range(10)]  # S[1]..S[5] used as s1..s5


def srcs(*idx: int) -> frozenset[IPv4Address]:
    return frozenset(S[i] for i in idx)


@dataclass(frozen=True)
class Link:
    """One family's test link: the engine family, the router's address and network,
    the default settings, the messages hosts send and where they send them."""

    name: str
    family: AddressFamily[Any, Any]
    router: Any
    net: Any
    settings: InterfaceSettings
    like: Callable[[Any], Any]  # the twin, in this family, of an IPv4 test address
    report: Callable[[tuple[Any, ...]], Any]  # records -> IGMPv3 / MLDv2 report
    record: Callable[[RecordType, Any, tuple[Any, ...]], Any]
    old_report: Callable[[Any], Any]  # IGMPv2 report / MLDv1 report
    leave: Callable[[Any], Any]  # IGMPv2 leave / MLDv1 done
    query: type

    def __repr__(self) -> str:
        return self.name


def _v6_twin(address: IPv4Address | IPv6Address) -> IPv6Address:
    """H1 192.0.2.11 -> fe80::b; G 239.1.1.1 -> ff15::239:1:1:1; S 198.51.100.x ->
    2001:db8:100::x (documentation and link-local addresses, ff15::/16 groups); an
    IPv6 address is its own twin."""
    if isinstance(address, IPv6Address):
        return address
    if address in NET:
        return IPv6Address(f"fe80::{int(address) & 0xFF:x}")
    if address.is_multicast:
        return IPv6Address("ff15::" + ":".join(str(int(b)) for b in address.packed))
    return IPv6Address(f"2001:db8:100::{int(address) & 0xFF:x}")


V4 = Link("ipv4", IPV4, ROUTER, NET, InterfaceSettings(), lambda a: a, V3Report, GroupRecord,
          V2Report, V2Leave, Query)
V6 = Link("ipv6", IPV6, IPv6Address("fe80::1"), IPv6Network("fe80::/64"), MLD_DEFAULTS,
          _v6_twin, mld.V2Report, mld.AddressRecord, mld.V1Report, mld.V1Done, mld.Query)
LINKS = (V4, V6)


class Lan:
    """One engine interface and a fake clock; every action is recorded with its time."""

    def __init__(self, settings: InterfaceSettings | None = None, *,
                 address: Any = None, seed: int = 1, family: Link = V4) -> None:
        self.link = family
        self.engine = Engine(random.Random(seed), family.family)
        self.now = 0.0
        self.log: list[tuple[float, Action]] = []
        self._record(self.engine.add_interface(
            IFACE, family.router if address is None else address, family.net,
            settings or family.settings, self.now))

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

    def receive(self, src: Any, msg: Any, dst: Any = None,
                *, ttl: int = 1, router_alert: bool = True) -> list[Action]:
        """Deliver ``msg`` from ``src``; ``dst`` defaults to where the RFCs send it."""
        if dst is None:
            dst = destination(msg)
        return self._record(self.engine.receive(IFACE, src, dst, msg, self.now, ttl=ttl,
                                                router_alert=router_alert))

    def record(self, host: Any, rtype: RecordType, sources: Iterable[Any] = (),
               group: Any = None) -> list[Action]:
        """A one-record IGMPv3 / MLDv2 report; addresses may be the IPv4 constants
        (H1, G, S...), which an IPv6 link turns into their twins."""
        like = self.link.like
        rec = self.link.record(rtype, like(G if group is None else group),
                               tuple(sorted(like(s) for s in sources)))
        return self.receive(like(host), self.link.report((rec,)))

    def v2_report(self, host: Any, group: Any = G) -> list[Action]:
        """An IGMPv2 report (MLDv1 report on an IPv6 link)."""
        group = self.link.like(group)
        return self.receive(self.link.like(host), self.link.old_report(group), dst=group)

    def v2_leave(self, host: Any, group: Any = G) -> list[Action]:
        """An IGMPv2 leave (MLDv1 done on an IPv6 link)."""
        return self.receive(self.link.like(host), self.link.leave(self.link.like(group)),
                            dst=self.link.family.all_routers)

    # ---- observations

    def snapshot(self) -> InterfaceSnapshot:
        return self.engine.snapshot(IFACE, self.now)

    def group(self, group: Any = G) -> GroupView | None:
        return self.snapshot().group(self.link.like(group))

    def source_timers(self, group: Any = G) -> dict[Any, float]:
        g = self.group(group)
        assert g is not None
        return g.source_timers()

    def forwarding(self, group: Any = G) -> tuple[FilterMode, frozenset[Any]]:
        """The last MembershipChanged for the group (INCLUDE {} if none)."""
        group = self.link.like(group)
        state = (FilterMode.INCLUDE, frozenset[Any]())
        for _, a in self.log:
            if isinstance(a, MembershipChanged) and a.group == group:
                state = (a.filter_mode, a.sources)
        return state


def destination(msg: Any) -> Any:
    """The IP destination the RFCs give ``msg`` (RFC 3376 §4.1.12, §4.2.14; RFC 2236 §3;
    for MLD RFC 3810 §5.1.15, §5.2.14 and RFC 2710 §3)."""
    if isinstance(msg, mld.Query):
        return mld.ALL_NODES if msg.is_general else msg.group
    if isinstance(msg, mld.V1Report):
        return msg.group
    if isinstance(msg, mld.V1Done):
        return mld.ALL_ROUTERS
    if isinstance(msg, mld.V2Report):
        return mld.ALL_MLDV2_ROUTERS
    if isinstance(msg, Query):
        return ALL_SYSTEMS if msg.is_general else msg.group
    if isinstance(msg, V1Report | V2Report):
        return msg.group
    if isinstance(msg, V2Leave):
        return ALL_ROUTERS
    return ALL_IGMPV3_ROUTERS


def queries(actions: Iterable[Action]) -> list[Any]:
    return [a.query for a in actions if isinstance(a, SendQuery)]


def specific(actions: Iterable[Action]) -> set[tuple[Any, frozenset[Any], bool]]:
    """Group(-and-source)-specific queries as (group, sources, S flag)."""
    return {(q.group, frozenset(q.sources), q.s_flag) for q in queries(actions)
            if not q.is_general}


def changes(actions: Iterable[Action]) -> list[MembershipChanged[Any]]:
    return [a for a in actions if isinstance(a, MembershipChanged)]


def querier_changes(actions: Iterable[Action]) -> list[QuerierChanged[Any]]:
    return [a for a in actions if isinstance(a, QuerierChanged)]
