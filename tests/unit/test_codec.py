"""The IGMP codec against hand-written wire bytes, RFC 3376 §7.1, and its error offsets."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address

import pytest
from codec_checks import fails_at

from mrouter.errors import CodecError
from mrouter.igmp.codec import (
    checksum,
    checksum_ok,
    decode,
    decode_packet,
    encode,
    encode_ip,
    encode_packet,
)
from mrouter.igmp.messages import (
    GroupRecord,
    IgmpMessage,
    Query,
    RecordType,
    UnknownMessage,
    V1Report,
    V2Leave,
    V2Report,
    V3Report,
)

A = IPv4Address
G = A("239.1.2.3")
S1, S2 = A("198.51.100.2"), A("198.51.100.3")
HOST, ROUTER = A("192.0.2.2"), A("192.0.2.1")


def wire(hexstr: str) -> bytes:
    """Hex (spaces allowed) with the checksum bytes (2-3) computed and filled in."""
    data = bytes.fromhex(hexstr.replace(" ", ""))
    data = data[:2] + b"\0\0" + data[4:]
    return data[:2] + checksum(data).to_bytes(2, "big") + data[4:]


# (wire bytes with a zero checksum placeholder, message) — written from the RFC layouts
VECTORS = [
    ("11 00 0000 00000000", Query(1)),                                    # v1 general
    ("11 64 0000 00000000", Query(2, max_resp_code=100)),                 # v2 general, 10 s
    ("11 0a 0000 ef010203", Query(2, G, 10)),                             # v2 group-specific
    ("11 64 0000 00000000 02 7d 0000", Query(3, max_resp_code=100, qrv=2, qqic=125)),
    ("11 0a 0000 ef010203 0a 7d 0002 c6336402 c6336403",                 # S=1 QRV=2, 2 sources
     Query(3, G, 10, True, 2, 125, (S1, S2))),
    ("12 00 0000 ef010203", V1Report(G)),
    ("16 00 0000 ef010203", V2Report(G)),
    ("17 00 0000 ef010203", V2Leave(G)),
    ("22 00 0000 0000 0000", V3Report()),
    ("22 00 0000 0000 0001 04 00 0000 ef010203",
     V3Report((GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, G),))),
    ("1f 05 0000 01020304 05060708", UnknownMessage(0x1F, 5, bytes.fromhex("0102030405060708"))),
]


@pytest.mark.parametrize(("hexstr", "message"), VECTORS, ids=[repr(m) for _, m in VECTORS])
def test_vectors_decode_and_encode(hexstr: str, message: IgmpMessage) -> None:
    data = wire(hexstr)
    assert decode(data) == message
    assert encode(message) == data


def test_query_versions_told_apart_by_length_and_code() -> None:
    # RFC 3376 §7.1: 8 octets and code 0 is v1, 8 octets and code != 0 is v2, >= 12 is v3.
    assert decode(wire("11 00 0000 00000000")).version == 1  # type: ignore[union-attr]
    assert decode(wire("11 01 0000 00000000")).version == 2  # type: ignore[union-attr]
    assert decode(wire("11 00 0000 00000000 00 00 0000")).version == 3  # type: ignore[union-attr]
    for extra in (1, 2, 3):
        data = wire("11 64 0000 00000000" + "00" * extra)
        fails_at(lambda: decode(data), r"query of \d+ bytes.*§7.1", 8)  # noqa: B023


@pytest.mark.parametrize(
    ("code", "tenths"),
    [(0, 0), (127, 127), (128, 128), (0x8F, 248), (0x90, 256), (0xF0, 16 << 10),
     (0xFF, 31744)],
)
def test_v3_max_resp_code_and_qqic_float_form(code: int, tenths: int) -> None:
    data = wire(f"11 {code:02x} 0000 00000000 02 {code:02x} 0000")
    query = decode(data)
    assert isinstance(query, Query)
    assert query.max_resp_tenths == tenths
    assert query.qqi == tenths  # same 8-bit encoding, in seconds (RFC 3376 §4.1.7)
    assert encode(query) == data


def test_v2_max_resp_code_is_linear() -> None:
    query = decode(wire("11 c8 0000 00000000"))
    assert isinstance(query, Query)
    assert query.max_resp_tenths == 200  # v2: no float form, 200 tenths = 20 s


def test_trailing_bytes_are_ignored_but_checksummed() -> None:
    # RFC 2236 §2.5 / RFC 3376 §4.1.10: ignore what follows, checksum covers it.
    assert decode(wire("16 00 0000 ef010203 deadbeef")) == V2Report(G)
    assert decode(wire("11 64 0000 00000000 02 7d 0000 cafe")) == Query(
        3, max_resp_code=100, qrv=2, qqic=125)
    bad = bytearray(wire("16 00 0000 ef010203 deadbeef"))
    bad[-1] ^= 1
    with pytest.raises(CodecError, match="checksum"):
        decode(bytes(bad))


def test_bad_checksum_raises_unless_asked_not_to() -> None:
    data = bytearray(wire("16 00 0000 ef010203"))
    data[7] ^= 0xFF
    fails_at(lambda: decode(bytes(data)), "bad IGMP checksum", 2)
    assert decode(bytes(data), verify_checksum=False) == V2Report(A("239.1.2.252"))
    assert not checksum_ok(bytes(data))


@pytest.mark.parametrize(
    ("hexstr", "match", "offset"),
    [
        ("", "truncated IGMP message: 0 bytes", 0),
        ("16 00 0000 ef01", "truncated IGMP message: 6 bytes", 6),
        ("11 64 0000 00000000 02 7d 0002 c6336402", "truncated v3 query: 2 sources", 16),
        ("22 00 0000 0000 0002 04 00 0000 ef010203", "group record 2 of 2 starts at byte 16",
         16),
        ("22 00 0000 0000 0001 04 00 0001 ef010203", "group record 1 of 1 overruns", 8),
        ("22 00 0000 0000 0002 04 00 0000 ef010203 05 01 0000 ef010203 000000",
         "group record 2 of 2 overruns.*1 aux data words end at byte 28", 16),
    ],
)
def test_errors_say_what_and_where(hexstr: str, match: str, offset: int) -> None:
    data = wire(hexstr) if len(hexstr.replace(" ", "")) >= 8 else bytes.fromhex(hexstr)
    error = fails_at(lambda: decode(data, verify_checksum=False), match, offset)
    assert f"at byte offset {offset}" in str(error)


def test_unknown_type_decodes_for_watchers() -> None:
    msg = decode(wire("30 00 0000 00000000"))  # MRD advertisement (RFC 4286)
    assert msg == UnknownMessage(0x30, 0, bytes(4))


@pytest.mark.parametrize(
    ("message", "match"),
    [
        (Query(1, max_resp_code=5), "would decode as v2"),
        (Query(2), "would decode as v1"),
        (Query(2, max_resp_code=10, sources=(S1,)), "no S flag, QRV, QQIC or sources"),
        (Query(4), "version 4"),
        (Query(3, qrv=8), "QRV 8 does not fit"),
        (Query(3, max_resp_code=256), "Max Resp Code 256"),
        (V3Report((GroupRecord(1, G, (), b"abc"),)), "multiple of 4"),
        (V3Report((GroupRecord(300, G),)), "record type 300"),
        (UnknownMessage(0x30, 0, b""), "at least 8 bytes"),
    ],
)
def test_encode_refuses_what_would_not_decode_back(message: object, match: str) -> None:
    with pytest.raises(CodecError, match=match):
        encode(message)  # type: ignore[arg-type]


def test_encode_rejects_a_non_message() -> None:
    with pytest.raises(CodecError, match="not an IGMP message"):
        encode("hello")  # type: ignore[arg-type]


def test_decoded_messages_equal_constructed_ones_and_stay_frozen() -> None:
    # The decoder builds messages with a fast constructor; they must be the real thing.
    for hexstr, message in VECTORS:
        decoded = decode(wire(hexstr))
        assert decoded == message and hash(decoded) == hash(message)
        assert type(decoded) is type(message)
        first_field = dataclasses.fields(decoded)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(decoded, first_field, None)


# --- whole packets ------------------------------------------------------------------


def test_encode_packet_ttl_1_router_alert_and_tos() -> None:
    data = encode_packet(V2Report(G), HOST, G)
    assert data[:1] == b"\x46"  # IPv4, IHL 6: one word of options
    packet = decode_packet(data)
    assert packet.ip.ttl == 1 and packet.ip.tos == 0xC0 and packet.ip.protocol == 2
    assert packet.ip.router_alert and packet.ip.options == bytes((148, 4, 0, 0))
    assert (packet.ip.src, packet.ip.dst) == (HOST, G)
    assert packet.ip.header_len == 24 and packet.ip.total_len == 32 == len(data)
    assert packet.ip.checksum_ok and packet.checksum_ok
    assert packet.igmp == V2Report(G)
    plain = decode_packet(encode_packet(V2Report(G), HOST, G, router_alert=False, ttl=7))
    assert not plain.ip.router_alert and plain.ip.header_len == 20 and plain.ip.ttl == 7


def test_packet_with_other_options_and_padding() -> None:
    igmp = encode(V2Leave(G))
    ip = decode_packet(encode_packet(V2Leave(G), HOST, A("224.0.0.2"))).ip
    # NOP, a timestamp-ish option 68 of length 4, Router Alert, End of List + padding
    options = bytes((1, 68, 4, 0, 0, 148, 4, 0, 0, 0, 0, 0))
    data = encode_ip(ip._replace(options=options), igmp)
    packet = decode_packet(data)
    assert packet.ip.router_alert and packet.ip.options == options
    assert encode_ip(packet.ip, encode(packet.igmp)) == data
    no_ra = decode_packet(encode_ip(ip._replace(options=bytes((1, 1, 1, 0))), igmp))
    assert not no_ra.ip.router_alert


def test_link_padding_after_total_length_is_ignored() -> None:
    data = encode_packet(V2Report(G), HOST, G) + bytes(14)  # Ethernet minimum frame
    assert decode_packet(data).igmp == V2Report(G)


def _corrupt(data: bytes, index: int, value: int) -> bytes:
    out = bytearray(data)
    out[index] = value
    return bytes(out)


GOOD = encode_packet(V3Report((GroupRecord(4, G),)), HOST, A("224.0.0.22"))


@pytest.mark.parametrize(
    ("data", "match", "offset"),
    [
        (GOOD[:19], "truncated IPv4 header: 19 bytes", 19),
        (_corrupt(GOOD, 0, 0x66), "not an IPv4 packet: IP version 6", 0),
        (_corrupt(GOOD, 0, 0x44), "bad IP header length 16", 0),
        (_corrupt(GOOD, 0, 0x4F)[:40], "IHL says 60 bytes, only 40", 40),
        (_corrupt(GOOD, 3, 10), "bad IP total length 10", 2),
        (GOOD[:-1], "total length says 40 bytes, only 39", 39),
        (_corrupt(GOOD, 9, 17), "IP protocol 17 is not IGMP", 9),
        (_corrupt(GOOD, 6, 0x20), "fragmented", 6),
        (_corrupt(GOOD, 21, 9), "option 148 has length 9", 21),
        (_corrupt(GOOD, 21, 1), "option 148 has length 1", 21),
        (encode_ip(decode_packet(GOOD).ip._replace(options=bytes((1, 1, 1, 7))), GOOD[24:]),
         "option 7 has no length byte", 23),
        (_corrupt(GOOD, 35, 0x01), "group record 1 of 1 overruns", 32),
    ],
)
def test_packet_errors_say_what_and_where(data: bytes, match: str, offset: int) -> None:
    fails_at(lambda: decode_packet(data, verify_checksum=False), match, offset)


def test_packet_checksums_reported_or_enforced() -> None:
    bad_ip = _corrupt(GOOD, 11, GOOD[11] ^ 1)
    fails_at(lambda: decode_packet(bad_ip), "bad IPv4 header checksum", 10)
    packet = decode_packet(bad_ip, verify_checksum=False)
    assert not packet.ip.checksum_ok and packet.checksum_ok

    bad_igmp = _corrupt(GOOD, 27, GOOD[27] ^ 1)
    fails_at(lambda: decode_packet(bad_igmp), "bad IGMP checksum", 26)
    packet = decode_packet(bad_igmp, verify_checksum=False)
    assert packet.ip.checksum_ok and not packet.checksum_ok


def test_memoryview_and_bytearray_input() -> None:
    assert decode_packet(memoryview(GOOD)).igmp == decode_packet(bytearray(GOOD)).igmp
    assert decode(bytearray(encode(V2Report(G)))) == V2Report(G)
