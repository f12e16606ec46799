"""Hypothesis properties of the MLD codec: exact round trips, the checksum against RFC 1071
word by word over the pseudo-header, and totality on any bytes (only CodecError)."""

from __future__ import annotations

import struct
from ipaddress import IPv6Address

from codec_checks import assert_total, aux_data, bytes_, damaged, record_types
from hypothesis import example, given, settings
from hypothesis import strategies as st

from mrouter.mld.codec import checksum_ok, decode, decode_packet, encode, encode_ip, encode_packet
from mrouter.mld.messages import (
    ALL_MLDV2_ROUTERS,
    AddressRecord,
    MldMessage,
    MldType,
    Query,
    UnknownMessage,
    V1Done,
    V1Report,
    V2Report,
    code_to_delay_ms,
    delay_ms_to_code,
)

HOST = IPv6Address("fe80::2")
addresses = st.integers(0, 2**128 - 1).map(IPv6Address)
source_lists = st.lists(addresses, max_size=8).map(tuple)
records = st.builds(AddressRecord, record_types, addresses, source_lists, aux_data)

messages: st.SearchStrategy[MldMessage] = st.one_of(
    st.builds(Query, st.just(1), addresses, st.integers(0, 0xFFFF)),
    st.builds(Query, st.just(2), addresses, st.integers(0, 0xFFFF), st.booleans(),
              st.integers(0, 7), bytes_, source_lists),
    st.builds(V1Report, addresses),
    st.builds(V1Done, addresses),
    st.builds(V2Report, st.lists(records, max_size=6).map(tuple)),
    st.builds(UnknownMessage,
              bytes_.filter(lambda t: t not in MldType._value2member_map_), bytes_,
              st.binary(max_size=40)),
)


def reference_checksum(src: IPv6Address, dst: IPv6Address, data: bytes) -> int:
    """RFC 4443 §2.3 as RFC 1071 §4.1's C code does it, word by word: the pseudo-header
    (RFC 8200 §8.1) written out field by field, then the message."""
    whole = src.packed + dst.packed + struct.pack("!I", len(data)) + bytes(3) + bytes((58,))
    whole += data[:2] + b"\0\0" + data[4:]
    if len(whole) % 2:
        whole += b"\0"
    total: int = sum(struct.unpack(f"!{len(whole) // 2}H", whole))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


@given(messages, addresses, addresses)
def test_decode_encode_is_identity_on_messages(msg: MldMessage, src: IPv6Address,
                                               dst: IPv6Address) -> None:
    data = encode(msg, src, dst)
    assert decode(data, src, dst) == msg
    assert encode(decode(data, src, dst), src, dst) == data
    assert int.from_bytes(data[2:4], "big") == reference_checksum(src, dst, data)
    assert checksum_ok(data, src, dst)


@given(messages, addresses, addresses, st.integers(0, 255), st.booleans(), bytes_,
       st.integers(0, 0xFFFFF))
def test_packets_round_trip(msg: MldMessage, src: IPv6Address, dst: IPv6Address,
                            hop_limit: int, router_alert: bool, traffic_class: int,
                            flow_label: int) -> None:
    data = encode_packet(msg, src, dst, hop_limit=hop_limit, router_alert=router_alert,
                         traffic_class=traffic_class)
    packet = decode_packet(data)
    assert packet.mld == msg and packet.checksum_ok
    ip = packet.ip
    assert (ip.src, ip.dst, ip.hop_limit, ip.traffic_class) == (src, dst, hop_limit,
                                                                traffic_class)
    assert ip.router_alert is router_alert
    assert ip.router_alert_value == (0 if router_alert else None)
    assert encode_ip(ip, encode(msg, src, dst)) == data
    labelled = encode_ip(ip._replace(flow_label=flow_label), encode(msg, src, dst))
    assert decode_packet(labelled).ip.flow_label == flow_label


@given(st.integers(0, 0xFFFF))
def test_max_resp_code_round_trips(code: int) -> None:
    assert delay_ms_to_code(code_to_delay_ms(code)) == code


@given(st.integers(0, 10**8))
def test_delay_ms_to_code_never_asks_for_more(delay_ms: int) -> None:
    code = delay_ms_to_code(delay_ms)
    assert code_to_delay_ms(code) <= delay_ms
    if code < 0xFFFF:  # and it is the largest code that does not: the next one is longer
        assert code_to_delay_ms(code + 1) > delay_ms


@given(st.binary(max_size=160), st.booleans())
@settings(max_examples=500)
@example(b"", True)
@example(b"\x82" + bytes(27), False)
@example(b"\x8f" + bytes(6) + b"\x01", False)
def test_decode_is_total_on_arbitrary_bytes(data: bytes, verify: bool) -> None:
    assert_total(lambda d: decode(d, HOST, ALL_MLDV2_ROUTERS, verify_checksum=verify), data,
                 reason=True)


@given(st.binary(max_size=160), st.booleans())
@settings(max_examples=500)
@example(bytes.fromhex("60000000 0002 0001") + bytes(32) + b"\x3a\x00", True)
def test_decode_packet_is_total_on_arbitrary_bytes(data: bytes, verify: bool) -> None:
    assert_total(lambda d: decode_packet(d, verify_checksum=verify), data)


@st.composite
def mutated_packets(draw: st.DrawFn) -> bytes:
    """Valid packets with bytes overwritten and/or cut short: they get past the first
    checks and reach the deep ones (option walk, record loop) that random bytes miss."""
    msg = draw(messages)
    return damaged(draw, encode_packet(msg, HOST, ALL_MLDV2_ROUTERS,
                                       router_alert=draw(st.booleans())))


@given(mutated_packets(), st.booleans())
@settings(max_examples=1000)
def test_decode_packet_is_total_on_damaged_packets(data: bytes, verify: bool) -> None:
    assert_total(lambda d: decode_packet(d, verify_checksum=verify), data)
    assert_total(lambda d: decode(d, HOST, ALL_MLDV2_ROUTERS, verify_checksum=verify),
                 data[48:])
