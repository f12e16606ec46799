"""The reasoning chain of `mrouter explain` (mrouter.diag.explain.diagnose), step by step.

Each test starts from a router that forwards (S,G) from up0 to dn0 and breaks one
thing; the verdict for dn0 must name that one thing and its fix."""

from __future__ import annotations

from ipaddress import IPv4Address
from typing import Any

import explain_facts
import pytest
from explain_facts import iface, verdicts

from mrouter.diag.explain import Facts, Flow, Interface, Owner, Reason, Route, Verdict

S = IPv4Address("198.51.100.2")
G = IPv4Address("239.1.1.1")


def healthy(**changes: Any) -> Facts:
    return explain_facts.healthy(S, G, **changes)


def dn0(facts: Facts) -> Verdict:
    return verdicts(facts)["dn0"]


def test_healthy_is_forwarded() -> None:
    v = dn0(healthy())
    assert v.forwarded and v.reason is Reason.FORWARDED and "10 packets" in v.text


BASE = healthy()
CASES: list[tuple[str, Facts, Reason, str]] = [
    ("link down", healthy(interfaces=iface(BASE, "dn0", up=False)),
     Reason.LINK_DOWN, "ip link set dn0 up"),
    ("snooping bridge, no querier",
     healthy(interfaces=iface(BASE, "dn0", is_bridge=True, snooping=True)),
     Reason.SNOOPING_NO_QUERIER, "querier"),
    ("no multicast routing", healthy(mc_forwarding=False, owner=Owner.NONE, routes=[]),
     Reason.NO_MROUTING, "mrouter run"),
    ("sender TTL 1", healthy(flows=[Flow("up0", S, 1, 5)]),
     Reason.SENDER_TTL, "--ttl"),
    ("rp_filter, no route back", healthy(interfaces=iface(BASE, "up0", rp_filter=1),
                                         route_back=None),
     Reason.RP_FILTER, "rp_filter=0"),
    ("no VIF on the input", healthy(interfaces=iface(BASE, "up0", vif=None)),
     Reason.NO_VIF_INPUT, "add up0"),
    ("no VIF on dn0", healthy(interfaces=iface(BASE, "dn0", vif=None)),
     Reason.NO_VIF, "add dn0"),
    ("no route", healthy(routes=[]), Reason.NO_ROUTE, "mrouter route add"),
    ("no route, other owner", healthy(routes=[], owner=Owner.OTHER),
     Reason.FOREIGN_OWNER, "stop it"),
    ("unresolved", healthy(routes=[Route(S, G, None, {})]),
     Reason.UNRESOLVED, "mrouter show routes"),
    ("route expects the flow on dn0",
     healthy(routes=[Route(S, G, "dn0", {"up0": 1}, wrong_if=42)]),
     Reason.RPF_MISMATCH, "--from up0"),
    ("no members", healthy(routes=[Route(S, G, "up0", {})]), Reason.NO_MEMBERS,
     "mrouter join --iface dn0 239.1.1.1"),
    ("TTL threshold", healthy(routes=[Route(S, G, "up0", {"dn0": 8})]),
     Reason.TTL_THRESHOLD, "raise the sender's TTL above 8"),
]


@pytest.mark.parametrize(("facts", "reason", "fix"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_one_broken_thing(facts: Facts, reason: Reason, fix: str) -> None:
    v = dn0(facts)
    assert not v.forwarded
    assert v.reason is reason
    assert fix in v.fix


def test_rpf_mismatch_names_both_interfaces_and_the_count() -> None:
    facts = healthy(interfaces=[*BASE.interfaces, Interface("dn1", 4, vif=2)],
                    routes=[Route(S, G, "dn1", {"dn0": 1}, wrong_if=42)])
    v = dn0(facts)
    assert v.reason is Reason.RPF_MISMATCH
    assert "expects it on dn1 but it arrives on up0 (42 packets" in v.text
    assert "--from up0" in v.fix


def test_first_reason_wins() -> None:
    """Link down and no route: the link is the first thing to fix."""
    v = dn0(healthy(interfaces=iface(BASE, "dn0", up=False), routes=[]))
    assert v.reason is Reason.LINK_DOWN


def test_unknown_facts_never_fail_a_step() -> None:
    v = dn0(healthy(flows=[], route_back_known=False))  # no sniff, no route lookup
    assert v.reason is Reason.FORWARDED


def test_loose_rp_filter_only_needs_some_route() -> None:
    v = dn0(healthy(interfaces=iface(BASE, "up0", rp_filter=2), route_back="dn0"))
    assert v.reason is Reason.FORWARDED
    v = dn0(healthy(interfaces=iface(BASE, "up0", rp_filter=2), route_back=None))
    assert v.reason is Reason.RP_FILTER


def test_members_known_but_not_in_route() -> None:
    v = dn0(healthy(routes=[Route(S, G, "up0", {})], members={"dn0": True}))
    assert v.reason is Reason.NO_MEMBERS and "has members" in v.text


def test_verdict_json() -> None:
    d = dn0(healthy()).to_dict()
    assert d["reason"] == "forwarded" and d["iface"] == "dn0" and d["source"] == str(S)


def test_each_source_of_the_group_when_none_given() -> None:
    from mrouter.diag.explain import diagnose_all

    s2 = IPv4Address("198.51.100.3")
    facts = healthy(source=None, flows=[],
                    routes=[Route(S, G, "up0", {"dn0": 1}), Route(s2, G, "up0", {})])
    got = {(v.source, v.iface): v.reason for v in diagnose_all(facts)}
    assert got[(str(S), "dn0")] is Reason.FORWARDED
    assert got[(str(s2), "dn0")] is Reason.NO_MEMBERS
