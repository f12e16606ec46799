"""The send/recv datagram format and the per-group statistics recv prints (pure)."""

from __future__ import annotations

import contextlib
from ipaddress import IPv4Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mrouter.traffic.payload import (
    HEADER_LEN,
    MAX_UDP_PAYLOAD,
    Arrival,
    GroupStats,
    Payload,
    PayloadError,
    StreamStats,
    decode,
)

SRC_A = IPv4Address("198.51.100.2")
SRC_B = IPv4Address("198.51.100.3")
GROUP = IPv4Address("239.1.1.1")


@given(stream=st.integers(0, 2**32 - 1), seq=st.integers(0, 2**64 - 1),
       sent_ns=st.integers(0, 2**64 - 1), size=st.integers(HEADER_LEN, 2000))
def test_encode_decode_round_trip(stream: int, seq: int, sent_ns: int, size: int) -> None:
    data = Payload(stream, seq, sent_ns).encode(size)
    assert len(data) == size
    assert decode(data) == Payload(stream, seq, sent_ns)


def test_header_layout_is_network_order_with_magic_first() -> None:
    data = Payload(stream=0x01020304, seq=5, sent_ns=6).encode()
    assert data[:4] == b"MRTR"
    assert data[4] == 1  # version
    assert data[8:12] == bytes([1, 2, 3, 4])
    assert data[12:20] == (5).to_bytes(8, "big")
    assert data[20:28] == (6).to_bytes(8, "big")


@pytest.mark.parametrize("size", [HEADER_LEN - 1, MAX_UDP_PAYLOAD + 1, 0])
def test_sizes_outside_the_udp_range_are_refused_with_the_range(size: int) -> None:
    with pytest.raises(PayloadError, match=rf"{HEADER_LEN}\.\.{MAX_UDP_PAYLOAD}"):
        Payload(1, 0, 0).encode(size)


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "shorter"),
    (b"hello world", "shorter"),
    (b"XXXX" + bytes(24), "magic"),
    (b"MRTR\x02" + bytes(23), "version 2"),
    (b"MRTR\x01\x00\x00\x05" + bytes(20), "header length"),
])
def test_foreign_datagrams_are_refused_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        decode(data)


@given(st.binary(max_size=64))
def test_decode_never_raises_anything_but_payload_error(data: bytes) -> None:
    with contextlib.suppress(PayloadError):
        decode(data)


def feed(seqs: list[int]) -> StreamStats:
    s = StreamStats()
    for seq in seqs:
        s.add(seq)
    return s


@pytest.mark.parametrize(("seqs", "received", "lost", "dups", "reordered"), [
    ([0, 1, 2, 3], 4, 0, 0, 0),
    ([0, 1, 3, 4], 4, 1, 0, 0),  # 2 lost
    ([0, 2, 1, 3], 4, 0, 0, 1),  # 1 late: reordered, not lost
    ([0, 1, 1, 2], 3, 0, 1, 0),  # duplicate
    ([5, 6, 7], 3, 0, 0, 0),  # joined late: 0..4 were never ours to lose
    ([6, 5, 7], 3, 0, 0, 1),  # below the first seen: late, base moves down
    ([7, 5, 8], 3, 1, 0, 1),  # 6 still missing between the new base and 7
    ([0, 10, 5], 3, 8, 0, 1),
    ([3, 3, 3], 1, 0, 2, 0),
])
def test_sequence_accounting(seqs: list[int], received: int, lost: int, dups: int,
                             reordered: int) -> None:
    s = feed(seqs)
    assert (s.received, s.lost, s.duplicates, s.reordered) == (received, lost, dups, reordered)


def test_gaps_far_behind_are_given_up_but_still_counted_lost() -> None:
    class Small(StreamStats):
        WINDOW = 4

    s = Small()
    for seq in [0, 20, 21]:
        s.add(seq)
    assert s.lost == 19
    assert s.missing == {16, 17, 18, 19}  # only the last WINDOW numbers are remembered
    s.add(40)
    assert s.missing == {36, 37, 38, 39}
    assert s.lost == 19 + 18
    s.add(17)  # a straggler from beyond the window cannot be told from a duplicate
    assert (s.received, s.duplicates, s.lost) == (4, 1, 37)


@given(st.lists(st.integers(0, 60), max_size=80))
def test_received_plus_lost_covers_the_span_seen(seqs: list[int]) -> None:
    s = feed(seqs)
    if seqs:
        assert s.received + s.lost == max(seqs) - s.base + 1
        assert s.received == len(set(seqs))
        assert s.duplicates == len(seqs) - len(set(seqs))


def arrival(seq: int | None, *, src: IPv4Address = SRC_A, stream: int = 1, at_ms: int = 0,
            sent_ms: int = 0, ttl: int | None = 8) -> Arrival:
    p = None if seq is None else Payload(stream, seq, sent_ms * 1_000_000)
    return Arrival(src, at_ms * 1_000_000, ttl, p)


def test_group_summary_reports_what_recv_prints() -> None:
    g = GroupStats(GROUP, 5000)
    g.add(arrival(0, at_ms=1000, sent_ms=999, ttl=7), 64)
    g.add(arrival(2, at_ms=1010, sent_ms=1007, ttl=9), 64)
    g.add(arrival(2, at_ms=1011, sent_ms=1007, ttl=9), 64)  # duplicate
    g.add(arrival(None, src=SRC_B, at_ms=1012, ttl=3), 11)  # someone else's datagram
    s = g.summary()
    assert s["group"] == "239.1.1.1" and s["port"] == 5000
    assert (s["received"], s["lost"], s["duplicates"], s["reordered"]) == (2, 1, 1, 0)
    assert s["foreign"] == 1
    assert (s["ttl_min"], s["ttl_max"]) == (3, 9)
    assert s["sources"] == ["198.51.100.2", "198.51.100.3"]
    assert (s["delay_min_ms"], s["delay_avg_ms"], s["delay_max_ms"]) == (1.0, 2.0, 3.0)
    assert s["first_arrival"] == 1.0 and s["last_arrival"] == 1.01
    assert s["rate"] == pytest.approx(100.0)
    assert s["bytes"] == 64 * 3 + 11


def test_two_senders_to_one_group_are_counted_separately() -> None:
    g = GroupStats(GROUP, 5000)
    for seq in range(5):
        g.add(arrival(seq, src=SRC_A))
        g.add(arrival(seq, src=SRC_B))  # the same numbers from another sender: no duplicates
    g.add(arrival(0, src=SRC_A, stream=2))  # a restarted sender: a new stream
    assert (g.received, g.lost, g.duplicates, g.reordered) == (11, 0, 0, 0)
    assert g.summary()["streams"] == 3


def test_nothing_received_gives_nulls_not_zero_divisions() -> None:
    s = GroupStats(GROUP, 5000).summary()
    assert s["received"] == 0 and s["rate"] is None and s["delay_avg_ms"] is None
    assert s["ttl_min"] is None and s["sources"] == []
