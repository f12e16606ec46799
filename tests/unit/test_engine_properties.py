"""Hypothesis: invariants of the engine over random host behaviour and hours of protocol time.

A simulated LAN of hosts that behave like RFC 3376 §5 / RFC 2236 hosts (state-change
reports, answers to every query at once, no loss) drives one querier. Invariants:

* a host that wants a source (or a whole group) and keeps answering queries is never
  cut off: the router always forwards what the hosts' merged state (§3.2) wants;
* a group nobody wants is gone no later than GMI after the last report for it;
* with several routers on a LAN, after convergence exactly one is querier, the lowest
  address, and every other one knows it (IGMP on IPv4 and MLD on IPv6 link-local
  addresses: RFC 3810 §7.6.2 elects the same way).
"""

from __future__ import annotations

import random
from ipaddress import IPv4Address
from typing import Any

import pytest
from engine_harness import IFACE, LINKS, Lan, Link
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from mrouter.igmp.engine import (
    Action,
    Engine,
    FilterMode,
    InterfaceSettings,
    MembershipChanged,
    QuerierChanged,
    SendQuery,
)
from mrouter.igmp.messages import GroupRecord, Query, RecordType, V2Leave, V2Report, V3Report

INC, EXC = FilterMode.INCLUDE, FilterMode.EXCLUDE
R = RecordType
GROUPS = [IPv4Address("239.1.1.1"), IPv4Address("239.2.2.2")]
SOURCES = [IPv4Address(f"198.51.100.{i}") for i in (1, 2, 3, 9)]
HOSTS = [IPv4Address(f"192.0.2.{i}") for i in (11, 12, 13, 14)]
GMI = 260.0

Filter = tuple[FilterMode, frozenset[IPv4Address]]
NOT_MEMBER: Filter = (INC, frozenset())


def forwards(state: Filter, source: IPv4Address) -> bool:
    mode, sources = state
    return source in sources if mode is INC else source not in sources


class Host:
    """An IGMPv2 or IGMPv3 host: its filter per group and the reports it sends."""

    def __init__(self, address: IPv4Address, version: int) -> None:
        self.address = address
        self.version = version
        self.filters: dict[IPv4Address, Filter] = {}

    def state(self, group: IPv4Address) -> Filter:
        return self.filters.get(group, NOT_MEMBER)

    def change(self, group: IPv4Address, new: Filter) -> list[V2Report | V2Leave | V3Report]:
        """Set a new filter; the state-change message(s) it sends (RFC 3376 §5.1)."""
        old = self.state(group)
        self.filters[group] = new
        if self.version == 2:
            new = (EXC, frozenset()) if new != NOT_MEMBER else NOT_MEMBER
            old = (EXC, frozenset()) if old != NOT_MEMBER else NOT_MEMBER
            self.filters[group] = new
            if old == new:
                return []
            return [V2Report(group) if new != NOT_MEMBER else V2Leave(group)]
        (old_mode, old_set), (new_mode, new_set) = old, new
        records: list[GroupRecord] = []
        if old_mode != new_mode:
            rtype = R.CHANGE_TO_INCLUDE_MODE if new_mode is INC else R.CHANGE_TO_EXCLUDE_MODE
            records.append(GroupRecord(rtype, group, tuple(sorted(new_set))))
        else:
            allow = new_set - old_set if new_mode is INC else old_set - new_set
            block = old_set - new_set if new_mode is INC else new_set - old_set
            if allow:
                records.append(GroupRecord(R.ALLOW_NEW_SOURCES, group, tuple(sorted(allow))))
            if block:
                records.append(GroupRecord(R.BLOCK_OLD_SOURCES, group, tuple(sorted(block))))
        return [V3Report((r,)) for r in records]

    def answer(self, q: Query) -> list[V2Report | V3Report]:
        """Answers to a query (RFC 3376 §5.2), sent at once."""
        groups = [g for g in self.filters if self.filters[g] != NOT_MEMBER]
        if not q.is_general:
            groups = [g for g in groups if g == q.group]
        out: list[V2Report | V3Report] = []
        for g in groups:
            mode, sources = self.filters[g]
            if self.version == 2:
                out.append(V2Report(g))
            elif q.sources:
                wanted = tuple(s for s in q.sources if forwards((mode, sources), s))
                if wanted:
                    out.append(V3Report((GroupRecord(R.MODE_IS_INCLUDE, g, wanted),)))
            else:
                rtype = R.MODE_IS_INCLUDE if mode is INC else R.MODE_IS_EXCLUDE
                out.append(V3Report((GroupRecord(rtype, g, tuple(sorted(sources))),)))
        return out


def merged(hosts: list[Host], group: IPv4Address) -> Filter:
    """RFC 3376 §3.2: the interface state that the hosts' filters merge to."""
    states = [h.state(group) for h in hosts if h.state(group) != NOT_MEMBER]
    excludes = [s for m, s in states if m is EXC]
    includes = frozenset().union(*(s for m, s in states if m is INC))
    if excludes:
        return (EXC, frozenset.intersection(*excludes) - includes)
    return (INC, includes)


class LanMachine(RuleBasedStateMachine):
    """One querier, four hosts of random versions, two groups, four sources."""

    def __init__(self) -> None:
        super().__init__()
        self.lan: Lan | None = None
        self.hosts: list[Host] = []
        self.last_report: dict[IPv4Address, float] = {}

    @initialize(versions=st.lists(st.sampled_from([2, 3]), min_size=4, max_size=4),
                fast_leave=st.booleans())
    def start(self, versions: list[int], fast_leave: bool) -> None:
        self.lan = Lan(InterfaceSettings(fast_leave=fast_leave))
        self.hosts = [Host(a, v) for a, v in zip(HOSTS, versions, strict=True)]

    def _send(self, host: Host, msgs: list[V2Report | V2Leave | V3Report]) -> list[Action]:
        assert self.lan is not None
        out: list[Action] = []
        for msg in msgs:
            if isinstance(msg, V2Report | V3Report):
                groups = [msg.group] if isinstance(msg, V2Report) else [
                    r.group for r in msg.records]
                for g in groups:
                    self.last_report[g] = self.lan.now
            actions = self.lan.receive(host.address, msg)
            self._check_no_cut(actions)
            out += actions
        return out

    def _check_no_cut(self, actions: list[Action]) -> None:
        """Not even for a moment may a change stop traffic that a host wants."""
        for a in actions:
            if isinstance(a, MembershipChanged):
                want = merged(self.hosts, a.group)
                for s in SOURCES:
                    if forwards(want, s):
                        assert forwards((a.filter_mode, a.sources), s), (a, want)

    def _deliver(self, actions: list[Action]) -> None:
        """Hosts answer every query the router sent, at once (and the router hears it)."""
        pending = [a for a in actions if isinstance(a, SendQuery)]
        while pending:
            q = pending.pop(0).query
            for host in self.hosts:
                pending += [a for a in self._send(host, list(host.answer(q)))
                            if isinstance(a, SendQuery)]

    @rule(host=st.integers(0, 3), group=st.sampled_from(GROUPS),
          mode=st.sampled_from([INC, EXC]),
          sources=st.frozensets(st.sampled_from(SOURCES[:3]), max_size=3))
    def set_filter(self, host: int, group: IPv4Address, mode: FilterMode,
                   sources: frozenset[IPv4Address]) -> None:
        if self.lan is None:
            return
        h = self.hosts[host]
        self._deliver(self._send(h, h.change(group, (mode, sources))))

    @rule(host=st.integers(0, 3), group=st.sampled_from(GROUPS))
    def leave(self, host: int, group: IPv4Address) -> None:
        if self.lan is None:
            return
        h = self.hosts[host]
        self._deliver(self._send(h, h.change(group, NOT_MEMBER)))

    @rule(seconds=st.floats(0.01, 400.0))
    def advance(self, seconds: float) -> None:
        if self.lan is None:
            return
        end = self.lan.now + seconds
        while (d := self.lan.engine.next_deadline()) is not None and d <= end:
            self.lan.now = max(self.lan.now, d)
            self._tick()
        self.lan.now = end
        self._tick()

    def _tick(self) -> None:
        assert self.lan is not None
        actions = self.lan._record(self.lan.engine.tick(self.lan.now))
        self._check_no_cut(actions)
        self._deliver(actions)

    @invariant()
    def wanted_traffic_is_always_forwarded(self) -> None:
        if self.lan is None:
            return
        for g in GROUPS:
            want = merged(self.hosts, g)
            have = self.lan.forwarding(g)
            for s in SOURCES:
                if forwards(want, s):
                    assert forwards(have, s), (g, s, want, have)

    @invariant()
    def unwanted_groups_go_within_gmi_of_the_last_report(self) -> None:
        if self.lan is None:
            return
        for g in GROUPS:
            if merged(self.hosts, g) == NOT_MEMBER and \
                    self.lan.now >= self.last_report.get(g, 0.0) + GMI:
                assert self.lan.forwarding(g) == NOT_MEMBER, g

    @invariant()
    def engine_state_matches_the_emitted_forwarding_state(self) -> None:
        if self.lan is None:
            return
        for g in GROUPS:
            snap = self.lan.group(g)
            have = self.lan.forwarding(g)
            if snap is None:
                assert have == NOT_MEMBER
            else:
                fwd = snap.forwarding
                assert (fwd.filter_mode, set(have[1])) == (have[0], set(fwd.sources))


LanMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestLan = LanMachine.TestCase


# --------------------------------------------------------------------------- election


@pytest.mark.parametrize("link", LINKS, ids=str)
@settings(max_examples=150, deadline=None)
@given(
    last_octets=st.lists(st.integers(1, 254), min_size=1, max_size=4, unique=True),
    starts=st.lists(st.floats(0, 600), min_size=4, max_size=4),
    stops=st.lists(st.one_of(st.none(), st.floats(0, 1500)), min_size=4, max_size=4),
)
def test_one_querier_per_lan_after_convergence(
        link: Link, last_octets: list[int], starts: list[float],
        stops: list[float | None]) -> None:
    """Routers come and go; OQPI + QI after the last change only the lowest queries."""
    routers: list[Any] = [link.like(IPv4Address(f"192.0.2.{o}")) for o in last_octets]
    net = link.net
    start_at = dict(zip(routers, starts, strict=False))
    stop_at = dict(zip(routers, stops, strict=False))
    if all(stop_at[r] is not None for r in routers):
        stop_at[routers[0]] = None  # keep one alive
    engines: dict[Any, Engine] = {}
    querier: dict[Any, Any] = {}
    events = sorted([(start_at[r], 0, r) for r in routers]
                    + [(t, 1, r) for r in routers if (t := stop_at[r]) is not None])
    settle = InterfaceSettings().other_querier_present_interval + 125.0
    end = max(t for t, _, _ in events) + settle

    def handle(source: Any, actions: list[Action], now: float) -> None:
        for a in actions:
            if isinstance(a, QuerierChanged):
                querier[source] = a.querier
            if isinstance(a, SendQuery):
                for other, eng in engines.items():
                    if other != source:
                        handle(other, eng.receive(IFACE, source, a.dst, a.query, now), now)

    now = 0.0
    while now < end:
        deadlines = [(d, r) for r, e in engines.items() if (d := e.next_deadline()) is not None]
        next_event = events[0][0] if events else end
        if deadlines and min(deadlines)[0] <= next_event:
            now, r = min(deadlines)
            handle(r, engines[r].tick(now), now)
            continue
        now = next_event
        if not events:
            break
        _, kind, r = events.pop(0)
        if kind == 0 and (stop_at[r] is None or stop_at[r] > now):  # type: ignore[operator]
            engines[r] = Engine(random.Random(int(r)), link.family)
            handle(r, engines[r].add_interface(IFACE, r, net, link.settings, now), now)
        elif kind == 1 and r in engines:
            engines.pop(r).remove_interface(IFACE, now)
    alive = sorted(engines)
    assert alive
    lowest = alive[0]
    assert [r for r in alive if querier[r] == r] == [lowest]
    assert all(querier[r] == lowest for r in alive)
