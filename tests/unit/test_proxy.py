"""RFC 4605 proxy: downstream memberships merged by RFC 3376 §3.2 rules."""

from __future__ import annotations

from ipaddress import IPv4Address

from mrouter.router.proxy import merge, merged_database, upstream_changes
from mrouter.router.routes import FilterMode, Membership

A, B, C = (IPv4Address(f"198.51.100.{i}") for i in (1, 2, 3))
G1, G2 = IPv4Address("239.1.1.1"), IPv4Address("239.2.2.2")
INC, EXC = FilterMode.INCLUDE, FilterMode.EXCLUDE


def m(mode: FilterMode, *sources: IPv4Address) -> Membership:
    return Membership(mode, frozenset(sources))


def test_no_members_merges_to_none() -> None:
    assert merge([]) is None
    assert merge([None, m(INC)]) is None


def test_includes_merge_to_union() -> None:
    assert merge([m(INC, A), m(INC, B)]) == m(INC, A, B)


def test_excludes_merge_to_intersection_minus_includes() -> None:
    assert merge([m(EXC, A, B), m(EXC, B, C)]) == m(EXC, B)
    assert merge([m(EXC, A, B), m(INC, B)]) == m(EXC, A)
    assert merge([m(EXC), m(INC, A)]) == m(EXC)


def test_database_and_changes() -> None:
    old = merged_database({"dn0": {G1: m(INC, A)}, "dn1": {G1: m(INC, B)}})
    assert old == {G1: m(INC, A, B)}
    new = merged_database({"dn0": {G1: m(INC, A)}, "dn1": {G2: m(EXC)}})
    assert upstream_changes(old, new) == {G1: m(INC, A), G2: m(EXC)}
    assert upstream_changes(new, {}) == {G1: None, G2: None}
    assert upstream_changes(new, new) == {}
