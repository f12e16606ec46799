"""``mrouter querier`` on r1 of lan.toml against real Linux hosts (kernel IGMP v2 and v3).

What a user sees: a host's join shows up at once; a leave ends the membership within
LMQC x LMQI (2 s by default) with only group-specific queries on the wire; with
--fast-leave it ends in under 20 ms when the host was the last member and never while
another host is still joined; and the querier's group table matches the hosts' own
memberships.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from querier_lab import (
    Capture,
    HostMember,
    Querier,
    engine_groups,
    host_groups,
    set_igmp_version,
)

from mrouter.lab.lab import Lab

pytestmark = pytest.mark.netns

G1, G2, G3 = "239.1.1.1", "239.2.2.2", "239.3.3.3"
SRC = "198.51.100.2"


@pytest.fixture
def lan(lab_factory: Callable[..., Lab]) -> Iterator[Lab]:
    lab = lab_factory("lan.toml")
    members: list[HostMember] = []
    lab.members = members  # type: ignore[attr-defined]
    try:
        yield lab
    finally:
        for m in members:
            m.close()


def member(lab: Lab, host: str) -> HostMember:
    node = lab.node(host)
    m = HostMember(node, node.address("eth0"))
    lab.members.append(m)  # type: ignore[attr-defined]
    return m


def leave_text(version: int, group: str = G1) -> str:
    """How tcpdump -v shows the leave: a v2 leave, or a v3 TO_IN({}) record."""
    return f"leave {group}" if version == 2 else f"[gaddr {group} to_in, 0 source(s)]"


@pytest.mark.parametrize("version", [2, 3])
def test_join_at_once_and_leave_within_lmqt_with_group_queries_only(
        lan: Lab, version: int) -> None:
    r1, h1 = lan.node("r1"), lan.node("h1")
    set_igmp_version([h1], version)
    # Robustness 1 in the queries makes the v3 host send its leave once: a repeat that
    # lands after the last group query would rightly start a new round (RFC 3376
    # §6.6.3.1) and make the count below depend on the host's random delay. The router
    # still sends LMQC = 2 queries, LMQI apart.
    querier = Querier(r1, "dn0", "--robustness", "1", "--last-member-query-count", "2")
    capture = Capture(r1, "dn0")
    m = member(lan, "h1")
    m.join(G1)
    report_at = capture.wait("192.0.2.11", "report", 5.0)
    joined = querier.membership(G1, 5.0)
    assert report_at is not None and joined is not None
    assert joined["filter_mode"] == "EXCLUDE" and joined["sources"] == []
    assert joined["time"] - report_at < 0.05  # seen at once

    time.sleep(1.0)
    querier.events.drain(0)  # forget the queries so far
    m.leave(G1)
    leave_at = capture.wait("192.0.2.11", leave_text(version), 5.0)
    gone = querier.membership(G1, 5.0)
    assert leave_at is not None and gone is not None
    assert gone["filter_mode"] == "INCLUDE" and gone["sources"] == []
    assert 1.8 <= gone["time"] - leave_at <= 2.0 + 0.15  # LMQC x LMQI = 2 s
    sent = [e for e in querier.events.drain(0) if e["event"] == "query"]
    assert [(q["group"], q["version"]) for q in sent] == [(G1, 3), (G1, 3)]


@pytest.mark.parametrize("version", [2, 3])
def test_fast_leave_of_the_last_member_takes_under_20_ms(lan: Lab, version: int) -> None:
    r1, h1 = lan.node("r1"), lan.node("h1")
    set_igmp_version([h1], version)
    querier = Querier(r1, "dn0", "--fast-leave")
    capture = Capture(r1, "dn0")
    m = member(lan, "h1")
    m.join(G1)
    assert querier.membership(G1, 5.0) is not None
    time.sleep(0.5)
    m.leave(G1)
    leave_at = capture.wait("192.0.2.11", leave_text(version), 5.0)
    gone = querier.membership(G1, 5.0)
    assert leave_at is not None and gone is not None
    assert gone["sources"] == [] and gone["filter_mode"] == "INCLUDE"
    assert gone["time"] - leave_at < 0.020


def test_fast_leave_never_while_another_host_is_joined(lan: Lab) -> None:
    r1, h1, h2 = lan.node("r1"), lan.node("h1"), lan.node("h2")
    set_igmp_version([h1, h2], 3)
    querier = Querier(r1, "dn0", "--fast-leave")
    capture = Capture(r1, "dn0")
    m1, m2 = member(lan, "h1"), member(lan, "h2")
    m1.join(G1)
    assert querier.membership(G1, 5.0) is not None
    m2.join(G1)
    assert capture.wait("192.0.2.12", f"[gaddr {G1} to_ex", 5.0) is not None
    time.sleep(0.3)
    m1.leave(G1)
    assert capture.wait("192.0.2.11", leave_text(3), 5.0) is not None
    assert querier.membership(G1, 3.0) is None  # h2 is still a member
    m2.leave(G1)
    leave_at = capture.wait("192.0.2.12", leave_text(3), 5.0)
    gone = querier.membership(G1, 5.0)
    assert leave_at is not None and gone is not None and gone["sources"] == []
    assert gone["time"] - leave_at < 0.020


def test_v2_fast_leave_keeps_the_group_while_another_host_is_joined(lan: Lab) -> None:
    r1, h1, h2 = lan.node("r1"), lan.node("h1"), lan.node("h2")
    set_igmp_version([h1, h2], 2)
    querier = Querier(r1, "dn0", "--fast-leave")
    m1, m2 = member(lan, "h1"), member(lan, "h2")
    m1.join(G1)
    m2.join(G1)
    assert querier.membership(G1, 5.0) is not None
    time.sleep(0.5)
    m1.leave(G1)
    assert querier.membership(G1, 4.0) is None


def test_group_table_matches_the_hosts_memberships(lan: Lab) -> None:
    """Kernel hosts, v2 and v3 mixed, join and leave; the querier ends with their state."""
    r1, h1, h2, h3 = (lan.node(n) for n in ("r1", "h1", "h2", "h3"))
    set_igmp_version([h1], 2)
    set_igmp_version([h2, h3], 3)
    querier = Querier(r1, "dn0")
    m1, m2, m3 = member(lan, "h1"), member(lan, "h2"), member(lan, "h3")
    m1.join(G1)
    m2.join(G1)
    m2.join(G2)
    m3.join_source(G3, SRC)
    m1.join("239.4.4.4")
    time.sleep(0.5)
    m1.leave("239.4.4.4")
    m2.leave(G1)
    time.sleep(3.0)  # longer than LMQT: every leave has played out
    table = engine_groups(querier.groups())
    hosts = host_groups(h1) | host_groups(h2) | host_groups(h3)
    assert set(table) == hosts == {G1, G2, G3}
    assert table[G1] == ("EXCLUDE", []) and table[G2] == ("EXCLUDE", [])
    assert table[G3] == ("INCLUDE", [SRC])
    snapshot: dict[str, Any] = querier.groups()
    g1 = next(g for g in snapshot["groups"] if g["group"] == G1)
    assert g1["compat_mode"] == 2 and [h["host"] for h in g1["hosts"]] == ["192.0.2.11"]


def test_sigterm_prints_the_group_table_and_exits_0(lan: Lab) -> None:
    r1 = lan.node("r1")
    querier = Querier(r1, "dn0")
    member(lan, "h1").join(G1)
    assert querier.membership(G1, 5.0) is not None
    querier.proc.terminate()
    assert querier.proc.wait(5) == 0
    final = querier.events.get(lambda e: e["event"] == "groups", 2.0)
    assert final is not None and [g["group"] for g in final["snapshot"]["groups"]] == [G1]
