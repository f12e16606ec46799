"""The userspace data plane's pure part: forwarding decision and TTL/checksum rewrite."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mrouter.dataplane.forward import (
    Decision,
    DropReason,
    decide,
    decisions_by_ttl,
    decrement_ttl,
    header_checksum,
    multicast_mac,
)
from mrouter.igmp.ipv4 import build_header

GROUP = IPv4Address("239.1.1.1")
THRESHOLDS = {"up0": 1, "dn0": 1, "dn1": 1}


def header(ttl: int, extra: bytes = b"", *, src: str = "198.51.100.2",
           dst: str = "239.1.1.1") -> bytearray:
    """An IPv4 header (mrouter's codec, checksum filled in) of a UDP packet, DF set."""
    return bytearray(build_header(IPv4Address(src), IPv4Address(dst), 8, ttl=ttl, tos=0,
                                  protocol=17, ident=0x1234, flags_fragment=0x4000,
                                  options=extra))


def test_checksum_of_a_known_header() -> None:
    # RFC 1071 style example: a header whose checksum is well known (Wikipedia's IPv4 one)
    raw = bytes.fromhex("450000730000400040110000c0a80001c0a800c7")
    assert header_checksum(raw) == 0xB861


def test_decrement_ttl_gives_ttl_minus_one_and_a_valid_checksum() -> None:
    raw = header(8)
    assert decrement_ttl(raw) == 7
    assert raw[8] == 7
    assert struct.unpack_from("!H", raw, 10)[0] == header_checksum(raw)


@given(st.integers(2, 255), st.binary(min_size=20, max_size=60).filter(lambda b: len(b) % 4 == 0),
       st.integers(0, 255))
def test_incremental_checksum_equals_full_recompute(ttl: int, body: bytes, tos: int) -> None:
    """RFC 1624: the incremental update after TTL - 1 equals a full recompute, whatever
    the other header bytes (options included) hold."""
    raw = bytearray(body)
    raw[0] = 0x40 | (len(body) // 4)
    raw[1] = tos
    raw[8] = ttl
    struct.pack_into("!H", raw, 10, header_checksum(raw))
    decrement_ttl(raw)
    assert raw[8] == ttl - 1
    assert struct.unpack_from("!H", raw, 10)[0] == header_checksum(raw)


@given(st.integers(2, 255), st.integers(0, 40))
def test_decrement_at_an_offset_leaves_other_bytes_alone(ttl: int, offset: int) -> None:
    raw = bytearray(b"\xaa" * offset) + header(ttl)
    before = bytes(raw)
    decrement_ttl(raw, offset)
    changed = [i for i in range(len(raw)) if raw[i] != before[i]]
    assert set(changed) <= {offset + 8, offset + 10, offset + 11}
    assert header_checksum(raw[offset:]) == struct.unpack_from("!H", raw, offset + 10)[0]


def test_forwarded_to_route_oifs_with_enough_ttl() -> None:
    assert decide(GROUP, 8, "up0", frozenset({"dn0", "dn1"}), THRESHOLDS) == Decision(
        ("dn0", "dn1"))


@pytest.mark.parametrize("ttl", [0, 1])
def test_ttl_one_or_zero_is_never_forwarded(ttl: int) -> None:
    d = decide(GROUP, ttl, "up0", frozenset({"dn0"}), THRESHOLDS)
    assert (d.oifs, d.reason) == ((), DropReason.TTL_EXPIRED)


def test_threshold_holds_back_packets_whose_ttl_is_not_above_it() -> None:
    thresholds = {"up0": 1, "dn0": 8, "dn1": 1}
    oifs = frozenset({"dn0", "dn1"})
    assert decide(GROUP, 8, "up0", oifs, thresholds) == Decision(("dn1",), None, ("dn0",))
    assert decide(GROUP, 9, "up0", oifs, thresholds) == Decision(("dn0", "dn1"))
    d = decide(GROUP, 5, "up0", frozenset({"dn0"}), thresholds)
    assert (d.oifs, d.reason, d.held_back) == ((), DropReason.BELOW_THRESHOLD, ("dn0",))


def test_never_back_out_of_the_inbound_interface() -> None:
    d = decide(GROUP, 8, "dn0", frozenset({"dn0"}), THRESHOLDS)
    assert (d.oifs, d.reason) == ((), DropReason.NO_ROUTE)
    assert decide(GROUP, 8, "dn0", frozenset({"dn0", "up0"}), THRESHOLDS).oifs == ("up0",)


@pytest.mark.parametrize("group", ["224.0.0.1", "224.0.0.251", "224.0.0.255"])
def test_link_local_groups_are_never_forwarded(group: str) -> None:
    d = decide(IPv4Address(group), 64, "up0", frozenset({"dn0"}), THRESHOLDS)
    assert (d.oifs, d.reason) == ((), DropReason.LINK_LOCAL)


def test_no_route_and_unknown_interfaces() -> None:
    assert decide(GROUP, 8, "up0", frozenset(), THRESHOLDS).reason is DropReason.NO_ROUTE
    assert decide(GROUP, 8, "eth9", frozenset({"dn0"}),
                  THRESHOLDS).reason is DropReason.UNKNOWN_INTERFACE
    # an oif the data plane does not know is not a place to send to
    assert decide(GROUP, 8, "up0", frozenset({"eth9"}), THRESHOLDS).reason is DropReason.NO_ROUTE


names = st.sampled_from(["up0", "dn0", "dn1", "dn2"])


@given(st.integers(0, 255), names, st.frozensets(names),
       st.dictionaries(names, st.integers(0, 255), min_size=1),
       st.sampled_from(["239.1.1.1", "224.0.0.5", "232.1.2.3"]))
def test_decision_invariants(ttl: int, iif: str, oifs: frozenset[str],
                             thresholds: dict[str, int], group: str) -> None:
    d = decide(IPv4Address(group), ttl, iif, oifs, thresholds)
    assert iif not in d.oifs
    assert set(d.oifs) <= oifs
    assert all(ttl > thresholds[o] for o in d.oifs)
    assert d.forwarded == (d.reason is None)
    if d.forwarded:
        assert ttl >= 2
        assert not group.startswith("224.0.0.")


@given(names, st.frozensets(names), st.dictionaries(names, st.integers(0, 255), min_size=1))
def test_per_ttl_table_matches_decide_at_every_ttl(iif: str, oifs: frozenset[str],
                                                   thresholds: dict[str, int]) -> None:
    table = decisions_by_ttl(GROUP, iif, oifs, thresholds)
    assert len(table) == 256
    assert all(table[t] == decide(GROUP, t, iif, oifs, thresholds) for t in range(256))


@pytest.mark.parametrize(("group", "mac"), [
    ("239.1.1.1", "01:00:5e:01:01:01"),
    ("224.0.0.1", "01:00:5e:00:00:01"),
    ("239.129.2.3", "01:00:5e:01:02:03"),  # the 24th bit is dropped (RFC 1112 §6.4)
])
def test_multicast_mac(group: str, mac: str) -> None:
    assert multicast_mac(IPv4Address(group)).hex(":") == mac
