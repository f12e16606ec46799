"""Timer rules, querier election, IGMPv2 leaves, compatibility modes and fast leave.

Each test drives one engine interface on a simulated clock (engine_harness.Lan) and
checks what the router would do on the wire (queries) and for forwarding
(MembershipChanged), citing the RFC rule it checks.
"""

from __future__ import annotations

import itertools
from ipaddress import IPv4Address
from typing import Any

import pytest
from engine_harness import (
    H1,
    H2,
    IFACE,
    NET,
    ROUTER,
    G,
    Lan,
    S,
    changes,
    querier_changes,
    queries,
    specific,
    srcs,
)

from mrouter.errors import EngineError
from mrouter.igmp.engine import (
    Action,
    Dropped,
    DropReason,
    FilterMode,
    InterfaceSettings,
    MembershipChanged,
    QuerierChanged,
    SendQuery,
    TimerExpired,
    TimerName,
)
from mrouter.igmp.messages import (
    ALL_SYSTEMS,
    GroupRecord,
    Query,
    RecordType,
    V1Report,
    V3Report,
    code_to_value,
)
from mrouter.igmp.snapshot import GroupView, render_snapshot


def group_of(lan: Lan, group: IPv4Address = G) -> GroupView:
    view = lan.group(group)
    assert view is not None, f"{group} is not in the engine's table"
    return view

R = RecordType
INC, EXC = FilterMode.INCLUDE, FilterMode.EXCLUDE
OTHER_LOW = IPv4Address("192.0.2.1")
ME = IPv4Address("192.0.2.5")
OTHER_HIGH = IPv4Address("192.0.2.9")


def expiries(actions: list[Action]) -> list[TimerExpired]:
    return [a for a in actions if isinstance(a, TimerExpired)]


def v3_general(qrv: int = 2, qqic: int = 125, max_resp: int = 100) -> Query:
    return Query(version=3, max_resp_code=max_resp, qrv=qrv, qqic=qqic)


# --------------------------------------------------------------------------- settings


def test_default_settings_are_the_rfcs() -> None:
    s = InterfaceSettings()
    assert (s.version, s.robustness, s.query_interval, s.query_response_interval) == (
        3, 2, 125.0, 10.0)
    assert s.startup_query_interval == 31.25 and s.startup_query_count == 2
    assert s.last_member_query_interval == 1.0 and s.last_member_query_count == 2
    assert s.group_membership_interval == 260.0
    assert s.other_querier_present_interval == 255.0
    assert s.last_member_query_time == 2.0
    assert s.older_host_present_interval == 260.0
    assert not s.fast_leave and s.querier


@pytest.mark.parametrize("kwargs", [
    {"version": 4}, {"robustness": 0}, {"query_interval": 10, "query_response_interval": 10},
    {"version": 2, "query_response_interval": 26, "query_interval": 125},
    {"last_member_query_interval": 0},
])
def test_bad_settings_are_refused_with_a_reason(kwargs: dict[str, Any]) -> None:
    with pytest.raises(EngineError, match="IGMP setting"):
        InterfaceSettings(**kwargs)


def test_unknown_interface_is_an_engine_error_naming_the_known_ones() -> None:
    lan = Lan()
    with pytest.raises(EngineError, match=r"eth9 is not running IGMP .*dn0"):
        lan.engine.snapshot("eth9")


# --------------------------------------------------------------------------- querier


def test_startup_queries_then_general_queries() -> None:
    """§8.6/§8.7: SQC general queries SQI apart, then every QI (never later)."""
    lan = Lan()
    lan.advance(1000)
    times = [t for t, a in lan.log if isinstance(a, SendQuery)]
    assert times[:2] == [0.0, 31.25]
    gaps = [b - a for a, b in itertools.pairwise(times[1:])]
    assert gaps and all(125 * 0.98 <= gap <= 125 for gap in gaps)
    first = lan.log[1][1]
    assert isinstance(first, SendQuery) and first.dst == ALL_SYSTEMS
    q = first.query
    assert (q.version, q.is_general, q.qrv, q.qqi, q.max_resp_tenths) == (3, True, 2, 125, 100)
    assert lan.log[0][1] == QuerierChanged(IFACE, ROUTER, True)


def test_lower_address_wins_and_loser_resumes_after_other_querier_present() -> None:
    """§6.6.2: a lower address takes over; OQPI after its last query we query again."""
    lan = Lan(address=ME)
    lan.advance(5)
    acts = lan.receive(OTHER_LOW, v3_general(), ALL_SYSTEMS)
    assert querier_changes(acts) == [QuerierChanged(IFACE, OTHER_LOW, False)]
    assert queries(lan.advance(254.9)) == []  # no query while the other is present
    acts = lan.advance(0.2)
    assert querier_changes(acts) == [QuerierChanged(IFACE, ME, True)]
    assert [q.is_general for q in queries(acts)] == [True]
    # the expiry comes first, then what it caused
    assert acts.index(TimerExpired(IFACE, TimerName.OTHER_QUERIER)) < acts.index(
        QuerierChanged(IFACE, ME, True))
    assert lan.log[-1][0] == pytest.approx(5 + 255)


def test_higher_address_and_zero_address_never_win() -> None:
    lan = Lan(address=ME)
    assert querier_changes(lan.receive(OTHER_HIGH, v3_general(), ALL_SYSTEMS)) == []
    acts = lan.receive(IPv4Address("0.0.0.0"), v3_general(), ALL_SYSTEMS)
    assert [a.reason for a in acts if isinstance(a, Dropped)] == ["foreign-source"]
    snap = lan.engine.snapshot(IFACE)
    assert snap.is_querier is True and snap.dropped == {DropReason.FOREIGN_SOURCE: 1}
    assert snap.to_json()["dropped"] == {"foreign-source": 1}


def test_non_querier_adopts_qrv_and_qqi() -> None:
    """§4.1.6/§4.1.7: OQPI = QRV x QQI + QRI/2 with the querier's QRV and QQI."""
    lan = Lan(address=ME)
    lan.receive(OTHER_LOW, v3_general(qrv=3, qqic=20, max_resp=40), ALL_SYSTEMS)
    timers = lan.engine.snapshot(IFACE).timers
    assert timers.robustness == 3 and timers.query_interval == 20
    assert timers.group_membership_interval == 70
    acts = lan.advance(65.1)
    assert querier_changes(acts) == [QuerierChanged(IFACE, ME, True)]
    assert lan.log[-2][0] == pytest.approx(3 * 20 + 5)
    # Once querier again it uses its own settings.
    assert lan.engine.snapshot(IFACE).timers.robustness == 2


def test_non_querier_ignores_leaves_and_sends_no_queries() -> None:
    lan = Lan(address=ME)
    lan.receive(OTHER_LOW, v3_general(), ALL_SYSTEMS)
    lan.v2_report(H1)
    acts = lan.v2_leave(H1)
    assert [a.reason for a in acts if isinstance(a, Dropped)] == ["leave-ignored"]
    acts = lan.record(H1, R.CHANGE_TO_INCLUDE_MODE, ())
    assert queries(acts) == []
    assert lan.forwarding() == (EXC, frozenset())


def test_non_querier_lowers_group_timer_on_querier_group_query_unless_s_flag() -> None:
    """§6.6.1: Q(G) with S clear lowers the group timer to LMQT; with S set it does not."""
    lan = Lan(address=ME)
    lan.receive(OTHER_LOW, v3_general(), ALL_SYSTEMS)
    lan.v2_report(H1)
    lan.receive(OTHER_LOW, Query(version=3, group=G, max_resp_code=10, s_flag=True, qrv=2,
                                 qqic=125), G)
    assert group_of(lan).group_timer == 260
    lan.receive(OTHER_LOW, Query(version=3, group=G, max_resp_code=10, qrv=2, qqic=125), G)
    assert group_of(lan).group_timer == 2
    lan.advance(2.01)
    assert lan.forwarding() == (INC, frozenset())


def test_querier_disabled_never_queries_but_tracks_members() -> None:
    lan = Lan(InterfaceSettings(querier=False))
    lan.advance(1000)
    assert queries(a for _, a in lan.log) == []
    lan.v2_report(H1)
    assert lan.forwarding() == (EXC, frozenset())
    acts = lan.receive(OTHER_HIGH, v3_general(), ALL_SYSTEMS)
    assert querier_changes(acts) == [QuerierChanged(IFACE, OTHER_HIGH, False)]
    acts = lan.advance(256)
    assert querier_changes(acts) == [QuerierChanged(IFACE, None, False)]


# --------------------------------------------------------------------------- v2 groups


def test_v2_join_is_seen_at_once_and_lasts_gmi_without_reports() -> None:
    """RFC 2236 §6: a report (IS_EX({})) starts the group timer at GMI."""
    lan = Lan(InterfaceSettings(querier=False))
    assert changes(lan.v2_report(H1)) == [MembershipChanged(IFACE, G, EXC, frozenset())]
    assert changes(lan.advance(259.9)) == []
    assert changes(lan.advance(0.2)) == [MembershipChanged(IFACE, G, INC, frozenset())]


def test_reports_refresh_the_group_timer() -> None:
    lan = Lan(InterfaceSettings(querier=False))
    for _ in range(10):
        lan.v2_report(H1)
        assert changes(lan.advance(200)) == []
    assert lan.forwarding() == (EXC, frozenset())


@pytest.mark.parametrize("version", [2, 3])
def test_leave_sends_lmqc_group_queries_and_removes_after_lmqt(version: int) -> None:
    """RFC 2236 §3 / RFC 3376 §6.6.3.1: Q(G) at 0 and LMQI, removal at LMQC x LMQI."""
    lan = Lan(InterfaceSettings(version=version))
    lan.advance(100)
    lan.v2_report(H1)
    lan.advance(1)
    start = len(lan.log)
    lan.v2_leave(H1)
    lan.advance(3)
    sent = [(t - 101, a.query) for t, a in lan.log[start:] if isinstance(a, SendQuery)]
    assert [(t, q.group, q.version, q.max_resp_tenths) for t, q in sent] == [
        (0, G, version, 10), (1, G, version, 10)]
    removed = [t - 101 for t, a in lan.log[start:] if isinstance(a, MembershipChanged)]
    assert removed == [2.0]
    assert lan.forwarding() == (INC, frozenset())


def test_report_after_leave_keeps_the_group_and_sets_s_flag_on_the_retransmission() -> None:
    lan = Lan()
    lan.v2_report(H1)
    lan.v2_report(H2)
    lan.v2_leave(H1)
    lan.advance(0.5)
    lan.v2_report(H2)
    acts = lan.advance(0.6)
    assert specific(acts) == {(G, frozenset(), True)}  # §6.6.3.1: timer > LMQT -> S set
    lan.advance(10)
    assert lan.forwarding() == (EXC, frozenset())


def test_repeated_state_change_reports_are_merged_not_requeried() -> None:
    """§6.6.3.1: a pending query is merged with a new one (hosts repeat TO_IN RV times)."""
    lan = Lan()
    lan.record(H1, R.CHANGE_TO_EXCLUDE_MODE, ())
    lan.advance(1)
    acts = lan.record(H1, R.CHANGE_TO_INCLUDE_MODE, ())
    lan.advance(0.3)
    acts += lan.record(H1, R.CHANGE_TO_INCLUDE_MODE, ())
    acts += lan.advance(5)
    assert len(queries(acts)) == 2  # LMQC, not 2 x LMQC
    assert lan.forwarding() == (INC, frozenset())


def test_losing_the_election_stops_pending_last_member_queries() -> None:
    lan = Lan(address=ME)
    lan.v2_report(H1)
    lan.v2_leave(H1)
    lan.receive(OTHER_LOW, v3_general(), ALL_SYSTEMS)
    assert specific(lan.advance(5)) == set()


# --------------------------------------------------------------------------- v3 timers


def test_include_source_timer_expiry_deletes_source_then_group() -> None:
    """§6.3: in INCLUDE mode an expired source is deleted; no sources, no group."""
    lan = Lan(InterfaceSettings(querier=False))
    lan.record(H1, R.MODE_IS_INCLUDE, srcs(1, 2))
    lan.advance(100)
    lan.record(H1, R.ALLOW_NEW_SOURCES, srcs(2))
    acts = lan.advance(160.1)
    assert changes(acts) == [MembershipChanged(IFACE, G, INC, srcs(2))]
    assert expiries(acts) == [TimerExpired(IFACE, TimerName.SOURCE, G, S[1])]
    acts = lan.advance(100)
    assert changes(acts) == [MembershipChanged(IFACE, G, INC, frozenset())]
    assert expiries(acts) == [TimerExpired(IFACE, TimerName.SOURCE, G, S[2])]
    assert lan.group() is None


def test_exclude_source_timer_expiry_stops_forwarding_that_source() -> None:
    """§6.3: in EXCLUDE mode a source whose timer reaches 0 is no longer forwarded."""
    lan = Lan(InterfaceSettings(querier=False))
    lan.record(H1, R.MODE_IS_EXCLUDE, ())
    lan.record(H2, R.MODE_IS_INCLUDE, srcs(1))
    lan.advance(100)
    lan.record(H1, R.MODE_IS_EXCLUDE, srcs(1))  # s1 stays in X with its running timer
    acts = lan.advance(160.1)
    assert changes(acts) == [MembershipChanged(IFACE, G, EXC, srcs(1))]
    assert expiries(acts) == [TimerExpired(IFACE, TimerName.SOURCE, G, S[1])]


def test_group_timer_expiry_switches_to_include_with_running_sources() -> None:
    """§6.5: EXCLUDE -> INCLUDE (sources with timers > 0) when the group timer expires."""
    lan = Lan(InterfaceSettings(querier=False))
    lan.record(H1, R.MODE_IS_EXCLUDE, srcs(3))
    lan.advance(100)
    lan.record(H2, R.MODE_IS_INCLUDE, srcs(1))
    acts = lan.advance(160.1)
    assert changes(acts) == [MembershipChanged(IFACE, G, INC, srcs(1))]
    assert expiries(acts) == [TimerExpired(IFACE, TimerName.GROUP, G)]
    g = lan.group()
    assert g is not None and g.filter_mode is INC and g.group_timer is None


def test_group_and_source_query_retransmissions_and_s_flag() -> None:
    """§6.6.3.2: LMQC queries LMQI apart; a refreshed source moves to the S-set query."""
    lan = Lan()
    lan.advance(100)
    lan.record(H1, R.MODE_IS_INCLUDE, srcs(1, 2))
    acts = lan.record(H1, R.BLOCK_OLD_SOURCES, srcs(1, 2))
    assert specific(acts) == {(G, srcs(1, 2), False)}
    lan.advance(0.5)
    lan.record(H2, R.ALLOW_NEW_SOURCES, srcs(2))
    acts = lan.advance(0.6)
    assert specific(acts) == {(G, srcs(2), True), (G, srcs(1), False)}
    assert specific(lan.advance(5)) == set()
    assert lan.forwarding() == (INC, srcs(2))


def test_current_state_answers_keep_queried_sources() -> None:
    lan = Lan()
    lan.record(H1, R.MODE_IS_INCLUDE, srcs(1))
    lan.record(H1, R.BLOCK_OLD_SOURCES, srcs(1))
    lan.advance(0.3)
    lan.record(H2, R.MODE_IS_INCLUDE, srcs(1))
    lan.advance(10)
    assert lan.forwarding() == (INC, srcs(1))


def test_v3_report_from_zero_address_is_accepted_other_foreign_sources_are_not() -> None:
    lan = Lan()
    lan.record(IPv4Address("0.0.0.0"), R.MODE_IS_EXCLUDE, ())
    assert lan.forwarding() == (EXC, frozenset())
    acts = lan.v2_report(IPv4Address("0.0.0.0"), IPv4Address("239.2.2.2"))
    acts += lan.record(IPv4Address("203.0.113.7"), R.MODE_IS_EXCLUDE, (),
                       IPv4Address("239.3.3.3"))
    assert [a.reason for a in acts if isinstance(a, Dropped)] == ["foreign-source"] * 2
    assert changes(acts) == []
    assert lan.engine.snapshot(IFACE).dropped == {DropReason.FOREIGN_SOURCE: 2}


def test_bad_group_unknown_record_and_v3_on_v2_interface_are_dropped() -> None:
    lan = Lan()
    acts = lan.record(H1, R.MODE_IS_EXCLUDE, (), IPv4Address("10.1.1.1"))
    acts += lan.receive(H1, V3Report((GroupRecord(9, G),)))
    assert [a.reason for a in acts if isinstance(a, Dropped)] == ["bad-group", "unknown-record"]
    lan2 = Lan(InterfaceSettings(version=2))
    acts = lan2.record(H1, R.MODE_IS_EXCLUDE, ())
    assert [a.reason for a in acts if isinstance(a, Dropped)] == ["version"]


# --------------------------------------------------------------------------- compatibility


def test_v1_report_puts_group_in_v1_mode_where_leaves_are_ignored() -> None:
    """§7.3.2: IGMPv1 host present -> leaves and TO_IN ignored, until OHPI passes."""
    lan = Lan()
    lan.receive(H1, V1Report(G), G)
    assert group_of(lan).compat_mode == 1
    acts = lan.v2_leave(H1) + lan.record(H2, R.CHANGE_TO_INCLUDE_MODE, ())
    assert [a.reason for a in acts if isinstance(a, Dropped)] == [
        "leave-ignored", "compat-ignored"]
    assert specific(acts) == set()
    lan.advance(100)
    lan.v2_report(H1)
    lan.advance(161)  # v1 host present timer ran out; v2 one still runs
    assert group_of(lan).compat_mode == 2


def test_v2_compat_ignores_block_and_to_ex_sources() -> None:
    """§7.3.2: in IGMPv2 mode BLOCK is ignored and TO_EX({x}) is TO_EX({})."""
    lan = Lan()
    lan.v2_report(H1)
    acts = lan.record(H2, R.BLOCK_OLD_SOURCES, srcs(1))
    assert [a.reason for a in acts if isinstance(a, Dropped)] == ["compat-ignored"]
    lan.record(H2, R.CHANGE_TO_EXCLUDE_MODE, srcs(1))
    assert lan.forwarding() == (EXC, frozenset())
    lan.advance(261)
    lan.record(H2, R.MODE_IS_EXCLUDE, srcs(1))  # v2 host gone: back to IGMPv3 rules
    assert group_of(lan).compat_mode == 3
    assert lan.forwarding() == (EXC, srcs(1))


def test_v1_router_present_makes_the_querier_speak_igmpv1_for_400s() -> None:
    lan = Lan(address=IPv4Address("192.0.2.1"))
    acts = lan.receive(OTHER_HIGH, Query(version=1), ALL_SYSTEMS)
    assert [a.reason for a in acts if isinstance(a, Dropped)] == ["older-querier"]
    lan.v2_report(H1)
    acts = lan.v2_leave(H1)
    assert [a.reason for a in acts if isinstance(a, Dropped)] == ["leave-ignored"]
    acts = lan.advance(150)
    assert {q.version for q in queries(acts)} == {1}
    acts = lan.advance(400)
    assert queries(acts)[-1].version == 3


# --------------------------------------------------------------------------- fast leave


def test_fast_leave_removes_at_once_when_the_last_host_leaves() -> None:
    lan = Lan(InterfaceSettings(fast_leave=True))
    lan.v2_report(H1)
    acts = lan.v2_leave(H1)
    assert changes(acts) == [MembershipChanged(IFACE, G, INC, frozenset())]
    assert len(specific(acts)) == 1  # one group-specific query, no retransmission
    assert specific(lan.advance(5)) == set()


def test_fast_leave_never_removes_while_another_host_is_member() -> None:
    lan = Lan(InterfaceSettings(fast_leave=True))
    lan.v2_report(H1)
    lan.v2_report(H2)
    assert changes(lan.v2_leave(H1)) == []
    lan.v2_report(H2)  # H2 answers the query
    assert changes(lan.advance(5)) == []
    assert changes(lan.v2_leave(H2)) == [MembershipChanged(IFACE, G, INC, frozenset())]


def test_fast_leave_v3_to_in_empty_and_block_of_last_wanted_source() -> None:
    lan = Lan(InterfaceSettings(fast_leave=True))
    lan.record(H1, R.MODE_IS_INCLUDE, srcs(1, 2))
    lan.record(H2, R.MODE_IS_INCLUDE, srcs(2))
    assert changes(lan.record(H1, R.BLOCK_OLD_SOURCES, srcs(1, 2))) == [
        MembershipChanged(IFACE, G, INC, srcs(2))]
    assert changes(lan.record(H2, R.CHANGE_TO_INCLUDE_MODE, ())) == [
        MembershipChanged(IFACE, G, INC, frozenset())]


def test_fast_leave_exclude_host_going_to_include() -> None:
    lan = Lan(InterfaceSettings(fast_leave=True))
    lan.record(H1, R.CHANGE_TO_EXCLUDE_MODE, ())
    lan.record(H2, R.ALLOW_NEW_SOURCES, srcs(1))
    assert changes(lan.record(H1, R.CHANGE_TO_INCLUDE_MODE, ())) == [
        MembershipChanged(IFACE, G, INC, srcs(1))]


def test_without_fast_leave_removal_waits_for_lmqt() -> None:
    lan = Lan()
    lan.v2_report(H1)
    assert changes(lan.v2_leave(H1)) == []
    assert changes(lan.advance(1.99)) == []
    assert changes(lan.advance(0.02)) == [MembershipChanged(IFACE, G, INC, frozenset())]


# --------------------------------------------------------------------------- lifecycle


def test_remove_interface_withdraws_every_group() -> None:
    lan = Lan()
    lan.v2_report(H1)
    lan.record(H1, R.MODE_IS_INCLUDE, srcs(1), IPv4Address("239.2.2.2"))
    acts = lan.engine.remove_interface(IFACE, lan.now)
    assert sorted(changes(acts), key=lambda c: c.group) == [
        MembershipChanged(IFACE, G, INC, frozenset()),
        MembershipChanged(IFACE, IPv4Address("239.2.2.2"), INC, frozenset())]
    assert lan.engine.next_deadline() is None


def test_add_interface_twice_or_outside_network_is_refused() -> None:
    lan = Lan()
    with pytest.raises(EngineError, match="already"):
        lan.engine.add_interface(IFACE, ROUTER, NET, InterfaceSettings(), 0.0)
    with pytest.raises(EngineError, match="not in its network"):
        lan.engine.add_interface("x", IPv4Address("10.0.0.1"), NET, InterfaceSettings(), 0.0)


def test_snapshot_shows_state_for_students() -> None:
    lan = Lan()
    lan.record(H1, R.MODE_IS_EXCLUDE, srcs(3))
    lan.record(H2, R.MODE_IS_INCLUDE, srcs(1))
    lan.advance(10)
    snap = lan.engine.snapshot(IFACE)
    g = snap.groups[0]
    assert g.filter_mode is EXC and g.group_timer == 250
    assert g.to_json()["forwarding"] == {"filter_mode": "EXCLUDE",
                                         "sources": [str(next(iter(srcs(3))))]}
    assert {h.host for h in g.hosts} == {H1, H2}
    text = render_snapshot(snap)
    assert "group 239.1.1.1  EXCLUDE  group timer 250.0 s  compatibility IGMPv3" in text
    assert "forward all sources except {198.51.100.3}" in text
    assert "timer 0: not forwarded" in text
    assert "querier: 192.0.2.1 (this router)" in text


def test_query_codes_encode_the_settings() -> None:
    lan = Lan(InterfaceSettings(query_interval=300, query_response_interval=20,
                                robustness=9))
    q = queries(a for _, a in lan.log)[0]
    assert (q.qrv, code_to_value(q.qqic), q.max_resp_tenths) == (0, 300 - 300 % 16, 200)


def test_full_group_table_refuses_new_groups_and_keeps_the_known_ones() -> None:
    lan = Lan(InterfaceSettings(querier=False, max_groups=2))
    g1, g2, g3 = (IPv4Address(f"239.9.0.{n}") for n in (1, 2, 3))
    assert changes(lan.v2_report(H1, g1)) and changes(lan.record(H2, R.CHANGE_TO_EXCLUDE_MODE,
                                                                group=g2))
    refused = lan.record(H1, R.CHANGE_TO_EXCLUDE_MODE, group=g3)
    assert changes(refused) == []
    (drop,) = [a for a in refused if isinstance(a, Dropped)]
    assert drop.reason == "group-limit"
    assert "239.9.0.3" in drop.detail and "max_groups" in drop.detail
    assert changes(lan.v2_report(H2, g3)) == []  # v1/v2 reports are bounded too
    # the groups that were there keep their state and keep being refreshed
    lan.advance(200)
    lan.v2_report(H1, g1)
    lan.record(H2, R.MODE_IS_EXCLUDE, group=g2)
    assert changes(lan.advance(200)) == []
    assert lan.forwarding(g1) == (EXC, frozenset()) and lan.forwarding(g2) == (EXC, frozenset())
    # once a group has gone (g1: no report for GMI), a new one fits again
    lan.record(H2, R.MODE_IS_EXCLUDE, group=g2)
    assert changes(lan.advance(61)) == [MembershipChanged(IFACE, g1, INC, frozenset())]
    assert changes(lan.record(H1, R.CHANGE_TO_EXCLUDE_MODE, group=g3))


def test_max_groups_must_be_positive() -> None:
    with pytest.raises(EngineError, match="max_groups=0 must be at least 1"):
        InterfaceSettings(max_groups=0)
