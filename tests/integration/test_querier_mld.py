"""``mrouter querier --mld`` on r1 of lan.toml against real Linux hosts (kernel MLDv2 and
MLDv1).

What a user sees: a host that joins an ff15::/16 group is a member for the querier
within 1.5 s; its leave ends the membership within the last-listener query time
(LLQC x LLQI = 2 s by default, plus slack); a source-specific join is INCLUDE of that
source; a host forced to MLDv1 is handled in MLDv1 compatibility mode (its Done ends the
membership the same way); and the host's kernel answers the querier's queries, which it
does only for valid MLD (link-local source, hop limit 1, Router Alert).

The lab namespaces start with IPv6 off (lan.toml); each test turns it on for the LAN's
interfaces with DAD off, so that their link-local addresses are usable at once, and
joins with plain IPv6 sockets inside the host's namespace.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from mld_lab import Listener, enable_ipv6, link_local_of, set_link_local
from querier_lab import Querier

from mrouter.lab.lab import Lab

pytestmark = pytest.mark.netns

G1, G2 = "ff15::1:1", "ff15::2:2"
SRC = "2001:db8:1::2"
JOIN_WITHIN = 1.5  # issue 13
LLQT = 2.0  # Last Listener Query Count x Interval (RFC 3810 §9.14 defaults)
SLACK = 0.5

@pytest.fixture
def lan(lab_factory: Callable[..., Lab]) -> Iterator[Lab]:
    lab = lab_factory("lan.toml")
    enable_ipv6(lab.node("r1"), "dn0")
    for host in ("h1", "h2"):
        enable_ipv6(lab.node(host), "eth0")
    listeners: list[Listener] = []
    lab.listeners = listeners  # type: ignore[attr-defined]
    try:
        yield lab
    finally:
        for listener in listeners:
            listener.close()


def listener(lab: Lab, host: str) -> Listener:
    one = Listener(lab.node(host))
    lab.listeners.append(one)  # type: ignore[attr-defined]
    return one


def test_join_within_1_5_s_and_leave_within_the_last_listener_query_time(lan: Lab) -> None:
    querier = Querier(lan.node("r1"), "dn0", "--mld")
    h1 = listener(lan, "h1")
    joined_at = h1.join(G1)
    joined = querier.membership(G1, 5.0)
    assert joined is not None, "the join was not seen"
    assert joined["time"] - joined_at <= JOIN_WITHIN
    assert (joined["family"], joined["filter_mode"], joined["sources"]) == (
        "ipv6", "EXCLUDE", [])

    time.sleep(1.0)  # the host's repeated reports are out
    querier.events.drain(0)
    left_at = h1.leave(G1)
    gone = querier.membership(G1, LLQT + 3.0)
    assert gone is not None, "the leave did not end the membership"
    assert (gone["filter_mode"], gone["sources"]) == ("INCLUDE", [])
    # the host's TO_IN({}) goes out at once; the router queries LLQC times, LLQI apart
    assert LLQT - 0.3 <= gone["time"] - left_at <= LLQT + SLACK
    events = querier.events.drain(0)
    sent = [e for e in events if e["event"] == "query"]
    assert [(q["group"], q["version"], q["max_resp"]) for q in sent] == [(G1, 2, 1.0)] * 2
    # the group timer's expiry is what ended it, printed as IGMP's querier prints it
    assert [(e["timer"], e["group"], e["family"]) for e in events
            if e["event"] == "timer"] == [("group", G1, "ipv6")]


def test_a_source_specific_join_is_include_of_that_source(lan: Lab) -> None:
    querier = Querier(lan.node("r1"), "dn0", "--mld")
    joined_at = listener(lan, "h1").join_source(G2, SRC)
    joined = querier.membership(G2, 5.0)
    assert joined is not None and joined["time"] - joined_at <= JOIN_WITHIN
    assert (joined["filter_mode"], joined["sources"]) == ("INCLUDE", [SRC])


def test_a_host_forced_to_mldv1_is_handled_in_mldv1_compatibility_mode(lan: Lab) -> None:
    h1 = lan.node("h1")
    h1.sysctl("net.ipv6.conf.eth0.force_mld_version", 1)
    querier = Querier(lan.node("r1"), "dn0", "--mld")
    m = listener(lan, "h1")
    joined_at = m.join(G1)
    joined = querier.membership(G1, 5.0)
    assert joined is not None and joined["time"] - joined_at <= JOIN_WITHIN
    assert (joined["filter_mode"], joined["sources"]) == ("EXCLUDE", [])
    group = next(g for g in querier.groups()["groups"] if g["group"] == G1)
    assert group["compat_mode"] == 1 and group["v1_host_present"] > 250
    assert [h["host"] for h in group["hosts"]] == [link_local_of(h1, "eth0")]

    time.sleep(1.0)
    querier.events.drain(0)
    left_at = m.leave(G1)  # an MLDv1 Done to ff02::2
    gone = querier.membership(G1, LLQT + 3.0)
    assert gone is not None and (gone["filter_mode"], gone["sources"]) == ("INCLUDE", [])
    assert gone["time"] - left_at <= LLQT + SLACK


def test_hosts_answer_the_queriers_queries(lan: Lab) -> None:
    """A Linux host answers only valid MLD queries (RFC 3810 §5.1.14: link-local source;
    hop limit 1; Router Alert): h2's membership, made before the querier started and
    reported only then, is learnt from its answer to a general query."""
    h2 = lan.node("h2")
    listener(lan, "h2").join(G2)
    time.sleep(2.5)  # the unsolicited reports are over before the querier starts
    querier = Querier(lan.node("r1"), "dn0", "--mld", "--query-response-interval", "1")
    answered = querier.membership(G2, 3.0)
    assert answered is not None and answered["filter_mode"] == "EXCLUDE"
    group = next(g for g in querier.groups()["groups"] if g["group"] == G2)
    assert [h["host"] for h in group["hosts"]] == [link_local_of(h2, "eth0")]


def test_the_lowest_link_local_address_wins_and_the_other_takes_over(
        lab_factory: Callable[..., Lab]) -> None:
    """querier-election.toml: r1 fe80::1 and r2 fe80::2. r2 queries until it hears r1;
    when r1 stops, r2 resumes after the Other Querier Present Interval (RV x QI + QRI/2
    = 2 x 2 s + 0.5 s here)."""
    lab = lab_factory("querier-election.toml")
    set_link_local(lab.node("r1"), "eth0", "fe80::1")
    set_link_local(lab.node("r2"), "eth0", "fe80::2")
    timers = ("--query-interval", "2", "--query-response-interval", "1")
    r2 = Querier(lab.node("r2"), "eth0", "--mld", *timers)
    r1 = Querier(lab.node("r1"), "eth0", "--mld", *timers)
    lost = r2.events.get(lambda e: e["event"] == "querier" and not e["is_self"], 5.0)
    assert lost is not None and lost["querier"] == "fe80::1"
    assert r1.events.get(lambda e: e["event"] == "querier" and not e["is_self"], 3.0) is None

    stopped_at = time.time()
    r1.proc.terminate()  # its reader thread sees the end of its output and stops
    r1.proc.wait(timeout=10)
    back = r2.events.get(lambda e: e["event"] == "querier" and e["is_self"], 10.0)
    assert back is not None and back["querier"] == "fe80::2"
    # OQPI counted from r1's last query, which came up to one QI (2 s) before it stopped
    assert 4.5 - 2.0 - 0.2 <= back["time"] - stopped_at <= 4.5 + 0.5
