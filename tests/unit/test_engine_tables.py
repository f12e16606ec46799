"""One test per row of RFC 3376 §6.4.1 and §6.4.2, on a simulated clock, for both
families: IGMPv3 on IPv4 and MLDv2 on IPv6 (RFC 3810 §7.4.1, §7.4.2 are the same rows).

Every row starts from a known state built by reports at t=0 and applies the row's
record at t=10 s, so that a timer that was kept reads 250 s (GMI 260 s - 10 s), a timer
set to GMI reads 260 s, one lowered by a query reads LMQT = 2 s and one set to 0 reads 0.

The sets are chosen so that every intersection and difference of the RFC is non-empty:
INCLUDE rows: A = {s1, s2}, B = {s2, s3}. EXCLUDE rows: X = {s1, s2}, Y = {s3, s4},
record A = {s2, s3, s5}. On IPv6 the same letters are the IPv6 twins of those addresses
(engine_harness.V6.like).
"""

from __future__ import annotations

from ipaddress import IPv4Address

import pytest
from engine_harness import H1, LINKS, G, Lan, Link, S, specific, srcs

from mrouter.igmp.engine import FilterMode, SendQuery
from mrouter.igmp.messages import RecordType
from mrouter.igmp.tables import TABLE, TRANSITIONS

R = RecordType
INC, EXC = FilterMode.INCLUDE, FilterMode.EXCLUDE
s1, s2, s3, s4, s5 = S[1:6]


def include_a(link: Link) -> Lan:
    """INCLUDE (A), A = {s1, s2}, both timers at GMI - 10 s."""
    lan = Lan(family=link)
    lan.record(H1, R.MODE_IS_INCLUDE, srcs(1, 2))
    lan.advance(10)
    return lan


def exclude_xy(link: Link) -> Lan:
    """EXCLUDE (X, Y), X = {s1, s2} with timers GMI - 10 s, Y = {s3, s4}, group timer GMI - 10 s."""
    lan = Lan(family=link)
    lan.record(H1, R.MODE_IS_EXCLUDE, srcs(3, 4))
    lan.record(H1, R.ALLOW_NEW_SOURCES, srcs(1, 2))
    lan.advance(10)
    return lan


Row = tuple[
    FilterMode, RecordType, frozenset[IPv4Address],  # state, record, record sources
    FilterMode, dict[IPv4Address, float], float | None,  # new mode, source timers, group timer
    set[tuple[frozenset[IPv4Address], bool]],  # specific queries sent: (sources, S flag)
]

ROWS: dict[str, Row] = {
    # §6.4.1
    "INCLUDE(A) IS_IN(B) -> INCLUDE(A+B); (B)=GMI":
        (INC, R.MODE_IS_INCLUDE, srcs(2, 3), INC, {s1: 250, s2: 260, s3: 260}, None, set()),
    "INCLUDE(A) IS_EX(B) -> EXCLUDE(A*B,B-A); (B-A)=0; Delete(A-B); GT=GMI":
        (INC, R.MODE_IS_EXCLUDE, srcs(2, 3), EXC, {s2: 250, s3: 0}, 260, set()),
    "EXCLUDE(X,Y) IS_IN(A) -> EXCLUDE(X+A,Y-A); (A)=GMI":
        (EXC, R.MODE_IS_INCLUDE, srcs(2, 3, 5), EXC,
         {s1: 250, s2: 260, s3: 260, s4: 0, s5: 260}, 250, set()),
    "EXCLUDE(X,Y) IS_EX(A) -> EXCLUDE(A-Y,Y*A); (A-X-Y)=GMI; Delete(X-A),(Y-A); GT=GMI":
        (EXC, R.MODE_IS_EXCLUDE, srcs(2, 3, 5), EXC, {s2: 250, s3: 0, s5: 260}, 260, set()),
    # §6.4.2
    "INCLUDE(A) ALLOW(B) -> INCLUDE(A+B); (B)=GMI":
        (INC, R.ALLOW_NEW_SOURCES, srcs(2, 3), INC, {s1: 250, s2: 260, s3: 260}, None, set()),
    "INCLUDE(A) BLOCK(B) -> INCLUDE(A); Send Q(G,A*B)":
        (INC, R.BLOCK_OLD_SOURCES, srcs(2, 3), INC, {s1: 250, s2: 2}, None,
         {(srcs(2), False)}),
    "INCLUDE(A) TO_EX(B) -> EXCLUDE(A*B,B-A); (B-A)=0; Delete(A-B); Send Q(G,A*B); GT=GMI":
        (INC, R.CHANGE_TO_EXCLUDE_MODE, srcs(2, 3), EXC, {s2: 2, s3: 0}, 260,
         {(srcs(2), False)}),
    "INCLUDE(A) TO_IN(B) -> INCLUDE(A+B); (B)=GMI; Send Q(G,A-B)":
        (INC, R.CHANGE_TO_INCLUDE_MODE, srcs(2, 3), INC, {s1: 2, s2: 260, s3: 260}, None,
         {(srcs(1), False)}),
    "EXCLUDE(X,Y) ALLOW(A) -> EXCLUDE(X+A,Y-A); (A)=GMI":
        (EXC, R.ALLOW_NEW_SOURCES, srcs(2, 3, 5), EXC,
         {s1: 250, s2: 260, s3: 260, s4: 0, s5: 260}, 250, set()),
    "EXCLUDE(X,Y) BLOCK(A) -> EXCLUDE(X+(A-Y),Y); (A-X-Y)=GT; Send Q(G,A-Y)":
        (EXC, R.BLOCK_OLD_SOURCES, srcs(2, 3, 5), EXC,
         {s1: 250, s2: 2, s3: 0, s4: 0, s5: 2}, 250, {(srcs(2, 5), False)}),
    "EXCLUDE(X,Y) TO_EX(A) -> EXCLUDE(A-Y,Y*A); (A-X-Y)=GT; Delete(X-A),(Y-A); "
    "Send Q(G,A-Y); GT=GMI":
        (EXC, R.CHANGE_TO_EXCLUDE_MODE, srcs(2, 3, 5), EXC, {s2: 2, s3: 0, s5: 2}, 260,
         {(srcs(2, 5), False)}),
    "EXCLUDE(X,Y) TO_IN(A) -> EXCLUDE(X+A,Y-A); (A)=GMI; Send Q(G,X-A); Send Q(G)":
        (EXC, R.CHANGE_TO_INCLUDE_MODE, srcs(2, 3, 5), EXC,
         {s1: 2, s2: 260, s3: 260, s4: 0, s5: 260}, 2, {(srcs(1), False), (srcs(), False)}),
}


def test_every_rfc_row_is_in_the_table_and_tested() -> None:
    assert len(TRANSITIONS) == len(TABLE) == len(ROWS) == 12
    assert {(r[0], r[1]) for r in ROWS.values()} == set(TABLE)


@pytest.mark.parametrize("link", LINKS, ids=str)
@pytest.mark.parametrize("name", list(ROWS))
def test_row(name: str, link: Link) -> None:
    state, rtype, sources, new_mode, timers, group_timer, sent = ROWS[name]
    like = link.like
    lan = include_a(link) if state is INC else exclude_xy(link)
    actions = lan.record(H1, rtype, sources)
    g = lan.group()
    assert g is not None
    assert g.filter_mode is new_mode
    assert lan.source_timers() == pytest.approx({like(s): t for s, t in timers.items()})
    assert g.group_timer == (None if group_timer is None else pytest.approx(group_timer))
    got = {(frozenset(srcs_), s_flag) for grp, srcs_, s_flag in
           specific(actions) if grp == like(G)}
    assert got == {(frozenset(map(like, q)), s_flag) for q, s_flag in sent}
    # the queries are the family's own: IGMPv3 or MLDv2, to the group
    assert all(isinstance(a.query, link.query) and a.dst == like(G)
               for a in actions if isinstance(a, SendQuery))


@pytest.mark.parametrize("link", LINKS, ids=str)
def test_forwarding_state_follows_the_table_and_section_6_3(link: Link) -> None:
    """INCLUDE: forward the list; EXCLUDE: forward all but the sources with timer 0."""
    lan = include_a(link)
    assert lan.forwarding() == (INC, frozenset(map(link.like, srcs(1, 2))))
    lan.record(H1, R.CHANGE_TO_EXCLUDE_MODE, srcs(2, 3))
    assert lan.forwarding() == (EXC, frozenset(map(link.like, srcs(3))))
