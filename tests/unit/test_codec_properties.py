"""Hypothesis properties of the codec: exact round trips, and totality on any bytes."""

from __future__ import annotations

from ipaddress import IPv4Address

from checksum_oracle import reference_checksum
from codec_checks import assert_total, aux_data, bytes_, damaged, record_types
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mrouter.errors import CodecError
from mrouter.igmp.codec import (
    checksum,
    decode,
    decode_packet,
    encode,
    encode_ip,
    encode_packet,
)
from mrouter.igmp.messages import (
    GroupRecord,
    IgmpMessage,
    IgmpType,
    Query,
    UnknownMessage,
    V1Report,
    V2Leave,
    V2Report,
    V3Report,
)

addresses = st.integers(0, 2**32 - 1).map(IPv4Address)
source_lists = st.lists(addresses, max_size=12).map(tuple)
records = st.builds(GroupRecord, record_types, addresses, source_lists, aux_data)

messages: st.SearchStrategy[IgmpMessage] = st.one_of(
    st.builds(Query, st.just(1), addresses),
    st.builds(Query, st.just(2), addresses, st.integers(1, 255)),
    st.builds(Query, st.just(3), addresses, bytes_, st.booleans(), st.integers(0, 7), bytes_,
              source_lists),
    st.builds(V1Report, addresses),
    st.builds(V2Report, addresses, bytes_),
    st.builds(V2Leave, addresses, bytes_),
    st.builds(V3Report, st.lists(records, max_size=6).map(tuple), st.integers(0, 0xFFFF)),
    st.builds(UnknownMessage,
              bytes_.filter(lambda t: t not in IgmpType._value2member_map_), bytes_,
              st.binary(min_size=4, max_size=40)),
)


@given(st.binary(max_size=200))
@example(b"")
@example(b"\0\0\0\0")
@example(b"\xff\xff")
@example(b"\xff\xff\xff\xff")
@example(b"\x01")
def test_checksum_matches_rfc1071_reference(data: bytes) -> None:
    assert checksum(data) == reference_checksum(data)


@given(messages)
def test_decode_encode_is_identity_on_messages(msg: IgmpMessage) -> None:
    data = encode(msg)
    assert decode(data) == msg
    assert encode(decode(data)) == data
    assert checksum(data) == 0


@given(messages, addresses, addresses, st.integers(0, 255), st.booleans(), bytes_,
       st.integers(0, 0xFFFF))
def test_packets_round_trip(msg: IgmpMessage, src: IPv4Address, dst: IPv4Address, ttl: int,
                            router_alert: bool, tos: int, ident: int) -> None:
    data = encode_packet(msg, src, dst, ttl=ttl, router_alert=router_alert, tos=tos)
    packet = decode_packet(data)
    assert packet.igmp == msg and packet.checksum_ok and packet.ip.checksum_ok
    assert (packet.ip.src, packet.ip.dst, packet.ip.ttl, packet.ip.tos) == (src, dst, ttl, tos)
    assert packet.ip.router_alert is router_alert
    assert encode_ip(packet.ip, encode(packet.igmp)) == data
    with_ident = encode_ip(packet.ip._replace(ident=ident), encode(msg))
    assert encode_ip(decode_packet(with_ident).ip, encode(msg)) == with_ident


@given(st.binary(max_size=120), st.booleans())
@settings(max_examples=500)
def test_decode_is_total_on_arbitrary_bytes(data: bytes, verify: bool) -> None:
    assert_total(lambda d: decode(d, verify_checksum=verify), data, reason=True)


@given(st.binary(max_size=120), st.booleans())
@settings(max_examples=500)
def test_decode_packet_is_total_on_arbitrary_bytes(data: bytes, verify: bool) -> None:
    assert_total(lambda d: decode_packet(d, verify_checksum=verify), data)


@st.composite
def mutated_packets(draw: st.DrawFn) -> bytes:
    """Valid packets with bytes overwritten and/or cut short: they get past the first
    checks and reach the deep ones (option walk, record loop) that random bytes miss."""
    msg = draw(messages)
    ra = draw(st.booleans())
    return damaged(draw, encode_packet(msg, IPv4Address("192.0.2.2"),
                                       IPv4Address("224.0.0.22"), router_alert=ra))


@given(mutated_packets(), st.booleans())
@settings(max_examples=1000)
def test_decode_packet_is_total_on_damaged_packets(data: bytes, verify: bool) -> None:
    assert_total(lambda d: decode_packet(d, verify_checksum=verify), data)
    try:
        decode(data[24:], verify_checksum=verify)
    except CodecError as exc:
        assert 0 <= exc.offset <= len(data) - 24 or len(data) < 24
