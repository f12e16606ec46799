"""The MLD codec against hand-written wire bytes (RFC 2710, RFC 3810 §5 and §8.1, RFC 2711),
its Maximum Response Code float form, its pseudo-header checksum and its error offsets."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv6Address

import pytest
from codec_checks import fails_at

from mrouter.errors import CodecError
from mrouter.igmp.ipv4 import checksum
from mrouter.mld.codec import (
    checksum_ok,
    decode,
    decode_packet,
    encode,
    encode_ip,
    encode_packet,
)
from mrouter.mld.ipv6 import pseudo_header
from mrouter.mld.messages import (
    ALL_MLDV2_ROUTERS,
    ALL_NODES,
    ALL_ROUTERS,
    MAX_DELAY_MS,
    AddressRecord,
    MldMessage,
    Query,
    RecordType,
    UnknownMessage,
    V1Done,
    V1Report,
    V2Report,
    code_to_delay_ms,
    delay_ms_to_code,
)

A = IPv6Address
G = A("ff15::77")
S1, S2 = A("2001:db8::1"), A("2001:db8::2")
ROUTER, HOST = A("fe80::1"), A("fe80::2")
G_HEX = "ff15 0000 0000 0000 0000 0000 0000 0077"
S1_HEX = "2001 0db8 0000 0000 0000 0000 0000 0001"
S2_HEX = "2001 0db8 0000 0000 0000 0000 0000 0002"
ANY_HEX = "00" * 16


def wire(hexstr: str, src: IPv6Address = HOST, dst: IPv6Address = ALL_MLDV2_ROUTERS) -> bytes:
    """Hex (spaces allowed) with the checksum (bytes 2-3) computed over the pseudo-header."""
    data = bytes.fromhex(hexstr.replace(" ", ""))
    data = data[:2] + b"\0\0" + data[4:]
    value = checksum(pseudo_header(src, dst, len(data)) + data)
    return data[:2] + value.to_bytes(2, "big") + data[4:]


# (wire bytes with a zero checksum placeholder, message) — written from the RFC layouts
VECTORS = [
    (f"82 00 0000 2710 0000 {ANY_HEX}", Query(1, max_resp_code=10000)),   # v1 general, 10 s
    (f"82 00 0000 03e8 0000 {G_HEX}", Query(1, G, 1000)),                 # v1 specific
    (f"82 00 0000 2710 0000 {ANY_HEX} 02 7d 0000",                          # v2 general
     Query(2, max_resp_code=10000, qrv=2, qqic=125)),
    (f"82 00 0000 03e8 0000 {G_HEX} 0a 7d 0002 {S1_HEX} {S2_HEX}",        # S=1 QRV=2
     Query(2, G, 1000, True, 2, 125, (S1, S2))),
    (f"83 00 0000 0000 0000 {G_HEX}", V1Report(G)),
    (f"84 00 0000 0000 0000 {G_HEX}", V1Done(G)),
    ("8f 00 0000 0000 0000", V2Report()),
    (f"8f 00 0000 0000 0001 04 00 0000 {G_HEX}",
     V2Report((AddressRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, G),))),
    (f"8f 00 0000 0000 0001 05 01 0001 {G_HEX} {S1_HEX} 41555821",
     V2Report((AddressRecord(RecordType.ALLOW_NEW_SOURCES, G, (S1,), b"AUX!"),))),
    ("97 14 0000 007d 0002", UnknownMessage(151, 20, bytes.fromhex("007d0002"))),  # MRD adv.
]


@pytest.mark.parametrize(("hexstr", "message"), VECTORS, ids=[repr(m) for _, m in VECTORS])
def test_vectors_decode_and_encode(hexstr: str, message: MldMessage) -> None:
    data = wire(hexstr)
    assert decode(data, HOST, ALL_MLDV2_ROUTERS) == message
    assert encode(message, HOST, ALL_MLDV2_ROUTERS) == data


def test_query_versions_told_apart_by_length() -> None:
    # RFC 3810 §8.1: 24 octets is MLDv1, 28 or more is MLDv2, anything else is ignored.
    v1 = f"82 00 0000 2710 0000 {ANY_HEX}"
    assert decode(wire(v1), HOST, ALL_MLDV2_ROUTERS).version == 1  # type: ignore[union-attr]
    v2 = decode(wire(v1 + "00 00 0000"), HOST, ALL_MLDV2_ROUTERS)
    assert isinstance(v2, Query) and v2.version == 2
    for extra in (1, 2, 3):
        data = wire(v1 + "00" * extra)
        fails_at(lambda: decode(data, verify_checksum=False),  # noqa: B023
                 r"query of \d+ bytes.*§8.1", 24)


# --- the Maximum Response Code (RFC 3810 §5.1.3) -----------------------------------


@pytest.mark.parametrize(
    ("code", "delay_ms"),
    [
        (0, 0),
        (1, 1),
        (10000, 10000),
        (32767, 32767),            # the last literal code
        (32768, 32768),            # the first float code: exp 0, mant 0 = 0x1000 << 3
        (0x8001, 32776),           # the float form's step is 8 ms at exp 0
        (0x8FFF, 0x1FFF << 3),     # the last code of exp 0: 65528
        (0x9000, 65536),           # exp 1
        (0xF000, 0x1000 << 10),    # exp 7, mant 0: 4194304
        (0xFFFF, 8387584),         # the largest: (0xFFF | 0x1000) << 10
    ],
)
def test_max_resp_code_float_form(code: int, delay_ms: int) -> None:
    assert code_to_delay_ms(code) == delay_ms
    assert delay_ms_to_code(delay_ms) == code
    data = wire(f"82 00 0000 {code:04x} 0000 {ANY_HEX} 02 7d 0000")
    query = decode(data, HOST, ALL_MLDV2_ROUTERS)
    assert isinstance(query, Query) and query.version == 2
    assert (query.max_resp_code, query.max_resp_ms) == (code, delay_ms)
    assert encode(query, HOST, ALL_MLDV2_ROUTERS) == data


def test_max_resp_code_every_code_round_trips_and_is_monotonic() -> None:
    delays = [code_to_delay_ms(code) for code in range(0x10000)]
    assert delays == sorted(delays) and len(set(delays)) == 0x10000
    assert all(delay_ms_to_code(delay) == code for code, delay in enumerate(delays))
    assert delays[-1] == MAX_DELAY_MS == 8387584


def test_delay_ms_to_code_rounds_down_and_saturates() -> None:
    assert delay_ms_to_code(32775) == 0x8000  # between 32768 and 32776: down
    assert code_to_delay_ms(delay_ms_to_code(125_000)) <= 125_000
    assert delay_ms_to_code(MAX_DELAY_MS + 1) == 0xFFFF
    assert delay_ms_to_code(10**9) == 0xFFFF
    with pytest.raises(ValueError, match="negative"):
        delay_ms_to_code(-1)
    with pytest.raises(ValueError, match="not 16 bits"):
        code_to_delay_ms(0x10000)


def test_v1_max_response_delay_is_linear_and_qqic_is_igmps_float() -> None:
    v1 = decode(wire(f"82 00 0000 9c40 0000 {ANY_HEX}", ROUTER, ALL_NODES), ROUTER, ALL_NODES)
    assert isinstance(v1, Query) and v1.max_resp_ms == 40000  # v1: no float form
    v2 = decode(wire(f"82 00 0000 2710 0000 {ANY_HEX} 02 90 0000", ROUTER, ALL_NODES), ROUTER,
              ALL_NODES)
    assert isinstance(v2, Query) and v2.qqi == 256  # 0x90: exp 1, mant 0 = 0x10 << 4
    assert v2.is_general and not Query(2, G).is_general


# --- trailing data, checksums ------------------------------------------------------


def test_trailing_bytes_are_ignored_but_checksummed() -> None:
    # RFC 2710 §3, RFC 3810 §5.1.12/§5.2.11: ignore what follows, the checksum covers it.
    report = wire(f"83 00 0000 0000 0000 {G_HEX} deadbeef")
    assert decode(report, HOST, ALL_MLDV2_ROUTERS) == V1Report(G)
    query = wire(f"82 00 0000 2710 0000 {ANY_HEX} 02 7d 0000 cafe")
    assert decode(query, HOST, ALL_MLDV2_ROUTERS) == Query(2, max_resp_code=10000, qrv=2,
                                                          qqic=125)
    assert decode(wire("8f 00 0000 0000 0000 00"), HOST, ALL_MLDV2_ROUTERS) == V2Report()
    bad = bytearray(report)
    bad[-1] ^= 1
    with pytest.raises(CodecError, match="checksum"):
        decode(bytes(bad), HOST, ALL_MLDV2_ROUTERS)


def test_bad_checksum_raises_unless_asked_not_to() -> None:
    data = bytearray(wire(f"83 00 0000 0000 0000 {G_HEX}"))
    data[-1] ^= 0xFF
    fails_at(lambda: decode(bytes(data), HOST, ALL_MLDV2_ROUTERS), "bad ICMPv6 checksum", 2)
    assert decode(bytes(data), verify_checksum=False) == V1Report(A("ff15::88"))
    assert not checksum_ok(bytes(data), HOST, ALL_MLDV2_ROUTERS)


def test_checksum_covers_the_pseudo_header() -> None:
    # Unlike IGMP's, the same bytes are wrong from another source or to another destination.
    data = encode(V1Report(G), HOST, G)
    assert checksum_ok(data, HOST, G)
    assert not checksum_ok(data, A("fe80::3"), G)
    assert not checksum_ok(data, HOST, ALL_MLDV2_ROUTERS)
    with pytest.raises(CodecError, match="bad ICMPv6 checksum"):
        decode(data, A("fe80::3"), G)


def test_verifying_needs_the_addresses() -> None:
    data = encode(V1Report(G), HOST, G)
    with pytest.raises(TypeError, match="needs src and dst"):
        decode(data)
    assert decode(data, verify_checksum=False) == V1Report(G)


# --- errors -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hexstr", "match", "offset"),
    [
        ("", "truncated ICMPv6 message: 0 bytes", 0),
        ("82 00", "truncated ICMPv6 message: 2 bytes", 2),
        ("82 00 0000 2710 0000 ff15 0000 0000 0000", "truncated query: 16 bytes", 16),
        (f"83 00 0000 0000 0000 {G_HEX}"[:-10], "truncated MLDv1 report: 20 bytes", 20),
        ("84 00 0000", "truncated MLDv1 done: 4 bytes, it has at least 24", 4),
        ("8f 00 0000 0000", "truncated MLDv2 report: 6 bytes, it has at least 8", 6),
        (f"82 00 0000 2710 0000 {ANY_HEX} 00", "query of 25 bytes", 24),
        (f"82 00 0000 2710 0000 {ANY_HEX} 02 7d 0002 {S1_HEX}",
         "truncated MLDv2 query: 2 sources need 60 bytes, the message has 44", 44),
        (f"8f 00 0000 0000 0002 04 00 0000 {G_HEX}",
         "address record 2 of 2 starts at byte 28", 28),
        (f"8f 00 0000 0000 0001 04 00 0001 {G_HEX}", "address record 1 of 1 overruns", 8),
        (f"8f 00 0000 0000 0002 04 00 0000 {G_HEX} 05 01 0000 {G_HEX} 000000",
         "address record 2 of 2 overruns.*1 aux data words end at byte 52", 28),
    ],
)
def test_errors_say_what_and_where(hexstr: str, match: str, offset: int) -> None:
    data = bytes.fromhex(hexstr.replace(" ", ""))
    error = fails_at(lambda: decode(data, verify_checksum=False), match, offset)
    assert f"at byte offset {offset}" in str(error)


def test_other_icmpv6_types_decode_for_watchers() -> None:
    echo = decode(wire("80 00 0000 1234 0001 6869", HOST, ROUTER), HOST, ROUTER)  # "hi"
    assert echo == UnknownMessage(128, 0, bytes.fromhex("123400016869"))
    solicitation = decode(wire("98 00 0000", HOST, ALL_ROUTERS), HOST, ALL_ROUTERS)  # MRD
    assert solicitation == UnknownMessage(152, 0, b"")


def test_non_canonical_fields_are_ignored_as_the_rfcs_say() -> None:
    # code and reserved fields are "ignored by receivers" (RFC 2710 §3, RFC 3810 §5.1.1,
    # §5.1.4, §5.2.1): they decode, and encoding writes the canonical zeros
    odd = wire(f"83 07 0000 0005 ffff {G_HEX}")
    assert decode(odd, HOST, ALL_MLDV2_ROUTERS) == V1Report(G)
    odd_query = wire(f"82 01 0000 03e8 abcd {G_HEX} f3 7d 0000")  # Resv bits 1111
    query = decode(odd_query, HOST, ALL_MLDV2_ROUTERS)
    assert query == Query(2, G, 1000, False, 3, 125)
    assert encode(query, HOST, ALL_MLDV2_ROUTERS)[24] == 0x03


@pytest.mark.parametrize(
    ("message", "match", "offset"),
    [
        (Query(1, sources=(S1,)), "no S flag, QRV, QQIC or sources", 24),
        (Query(1, s_flag=True), "no S flag", 24),
        (Query(3), "version 3 is not 1 or 2", 0),
        (Query(2, qrv=8), "QRV 8 does not fit", 24),
        (Query(2, qqic=256), "QQIC 256 does not fit", 25),
        (Query(2, max_resp_code=0x10000), "Maximum Response Code 65536 does not fit", 4),
        (Query(1, max_resp_code=-1), "Maximum Response Code -1", 4),
        (V2Report((AddressRecord(1, G, (), b"abc"),)), "multiple of 4", 9),
        (V2Report((AddressRecord(1, G), AddressRecord(300, G))), "record type 300", 28),
        (V2Report((AddressRecord(1, G, (), bytes(1024)),)), "at most 1020", 9),
        (UnknownMessage(130, 0, bytes(20)), "MLD's QUERY", 0),
        (UnknownMessage(143, 0, b""), "MLD's V2_REPORT", 0),
        (UnknownMessage(256, 0, b""), "ICMPv6 type 256", 0),
        (UnknownMessage(128, 256, b""), "ICMPv6 code 256", 1),
    ],
)
def test_encode_refuses_what_would_not_decode_back(message: MldMessage, match: str,
                                                   offset: int) -> None:
    fails_at(lambda: encode(message, HOST, ALL_MLDV2_ROUTERS), match, offset)


def test_encode_rejects_a_non_message_and_bad_fields() -> None:
    with pytest.raises(CodecError, match="not an MLD message"):
        encode("hello", HOST, G)  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="cannot encode"):
        encode(V1Report("ff15::1"), HOST, G)  # type: ignore[arg-type]
    with pytest.raises(CodecError, match="cannot encode"):
        encode(V1Report(G), "fe80::2", G)  # type: ignore[arg-type]


def test_decoded_messages_equal_constructed_ones_and_stay_frozen() -> None:
    # The decoder builds messages with a fast constructor; they must be the real thing.
    for hexstr, message in VECTORS:
        decoded = decode(wire(hexstr), HOST, ALL_MLDV2_ROUTERS)
        assert decoded == message and hash(decoded) == hash(message)
        assert type(decoded) is type(message)
        first_field = dataclasses.fields(decoded)[0].name
        with pytest.raises(dataclasses.FrozenInstanceError):
            setattr(decoded, first_field, None)
    packet = decode_packet(encode_packet(V1Report(G), HOST, G))
    with pytest.raises(dataclasses.FrozenInstanceError):
        packet.checksum_ok = False  # type: ignore[misc]


# --- whole packets ------------------------------------------------------------------

HBH_MLD = bytes.fromhex("3a00 0502 0000 0100")  # what Linux sends: RA (MLD) and a PadN


def test_encode_packet_hop_limit_1_and_hop_by_hop_router_alert() -> None:
    data = encode_packet(V1Report(G), HOST, G)
    assert data[0] >> 4 == 6 and data[6] == 0 and data[7] == 1  # next header 0, hop limit 1
    assert data[40:48] == HBH_MLD
    packet = decode_packet(data)
    ip = packet.ip
    assert (ip.src, ip.dst, ip.hop_limit, ip.next_header) == (HOST, G, 1, 0)
    assert ip.router_alert and ip.router_alert_value == 0
    assert ip.hop_by_hop == HBH_MLD[2:]
    assert ip.header_len == 48 and ip.payload_len == 32 and ip.total_len == 72 == len(data)
    assert packet.checksum_ok and packet.mld == V1Report(G)
    plain = decode_packet(encode_packet(V1Report(G), HOST, G, router_alert=False,
                                        hop_limit=7, traffic_class=0xE0))
    assert not plain.ip.router_alert and plain.ip.router_alert_value is None
    assert plain.ip.hop_by_hop is None and plain.ip.next_header == 58
    assert (plain.ip.header_len, plain.ip.hop_limit, plain.ip.traffic_class) == (40, 7, 0xE0)


@pytest.mark.parametrize(
    ("options", "alert"),
    [
        (bytes.fromhex("00 0502 0000 00"), 0),                       # Pad1, RA, Pad1
        (bytes.fromhex("1e04 aabbccdd 0502 0001 0102 0000"), 1),     # unknown, RA (RSVP), PadN
        (bytes.fromhex("0104 0000 0000"), None),                     # PadN only: no alert
        (bytes.fromhex("0502 0000 0502 0001 0104 0000 0000"), 0),  # the first RA counts
    ],
)
def test_packet_with_other_hop_by_hop_options(options: bytes, alert: int | None) -> None:
    icmp = encode(V1Done(G), HOST, ALL_ROUTERS)
    ip = decode_packet(encode_packet(V1Done(G), HOST, ALL_ROUTERS)).ip
    data = encode_ip(ip._replace(hop_by_hop=options), icmp)
    packet = decode_packet(data)
    assert packet.ip.hop_by_hop == options and packet.ip.router_alert_value == alert
    assert packet.ip.router_alert is (alert is not None)
    assert packet.mld == V1Done(G)
    assert encode_ip(packet.ip, encode(packet.mld, packet.ip.src, packet.ip.dst)) == data


def test_link_padding_after_payload_length_is_ignored_and_flow_label_kept() -> None:
    data = encode_packet(V1Report(G), HOST, G) + bytes(14)
    assert decode_packet(data).mld == V1Report(G)
    ip = decode_packet(data).ip._replace(flow_label=0xABCDE, traffic_class=0x12)
    again = decode_packet(encode_ip(ip, encode(V1Report(G), HOST, G)))
    assert (again.ip.flow_label, again.ip.traffic_class) == (0xABCDE, 0x12)


def _corrupt(data: bytes, index: int, value: int) -> bytes:
    out = bytearray(data)
    out[index] = value
    return bytes(out)


def _with_hbh(options: bytes, icmp: bytes = b"") -> bytes:
    """A packet whose Hop-by-Hop options are ``options`` (length byte computed)."""
    hbh = bytes((58, (len(options) + 2) // 8 - 1)) + options
    payload = hbh + icmp
    head = bytes.fromhex("60000000") + len(payload).to_bytes(2, "big") + bytes((0, 1))
    return head + HOST.packed + ALL_MLDV2_ROUTERS.packed + payload


GOOD = encode_packet(V2Report((AddressRecord(4, G),)), HOST, ALL_MLDV2_ROUTERS)


@pytest.mark.parametrize(
    ("data", "match", "offset"),
    [
        (GOOD[:39], "truncated IPv6 header: 39 bytes", 39),
        (_corrupt(GOOD, 0, 0x40), "not an IPv6 packet: IP version 4", 0),
        (GOOD[:-1], "payload length says 36 bytes, only 35 present", 75),
        (_corrupt(GOOD, 6, 17), "next header 17 in the IPv6 header is not ICMPv6 .58. or "
                                "Hop-by-Hop .0.", 6),
        (_corrupt(GOOD, 6, 44), "fragmented IPv6 packet", 6),
        (_corrupt(GOOD, 40, 6), "next header 6 after the Hop-by-Hop header", 40),
        (_corrupt(GOOD, 40, 44), "fragmented", 40),
        (_corrupt(GOOD, 41, 5), "Hop-by-Hop header runs past the 36-byte payload", 41),
        (GOOD[:4] + b"\0\1" + GOOD[6:41], "truncated Hop-by-Hop header", 41),
        (_with_hbh(bytes.fromhex("0509 0000 0000")), "option 5 has length 9", 43),
        (_with_hbh(bytes.fromhex("0000 0000 0005")), "option 5 has no length byte", 47),
        (_with_hbh(bytes.fromhex("0503 0000 0000")), "Router Alert option: length 3", 43),
        (_corrupt(GOOD, 59, 0x01), "address record 1 of 1 overruns", 56),
        (_with_hbh(HBH_MLD[2:], b"\x83\0"), "truncated ICMPv6 message: 2 bytes", 50),
    ],
)
def test_packet_errors_say_what_and_where(data: bytes, match: str, offset: int) -> None:
    fails_at(lambda: decode_packet(data, verify_checksum=False), match, offset)


def test_packet_checksum_reported_or_enforced() -> None:
    bad = _corrupt(GOOD, 51, GOOD[51] ^ 1)
    fails_at(lambda: decode_packet(bad), "bad ICMPv6 checksum", 50)
    packet = decode_packet(bad, verify_checksum=False)
    assert not packet.checksum_ok and packet.mld == V2Report((AddressRecord(4, G),))
    # the pseudo-header: the same ICMPv6 bytes from another source are wrong too
    moved = GOOD[:23] + b"\x09" + GOOD[24:]
    assert not decode_packet(moved, verify_checksum=False).checksum_ok


def test_build_header_refuses_what_it_cannot_write() -> None:
    ip = decode_packet(GOOD).ip
    icmp = GOOD[48:]
    fails_at(lambda: encode_ip(ip._replace(hop_by_hop=bytes(5)), icmp), "multiple of 8", 42)
    fails_at(lambda: encode_ip(ip, bytes(0xFFFF)), "exceeds 65535", 4)
    with pytest.raises(CodecError, match="flow label 1048576"):
        encode_ip(ip._replace(flow_label=1 << 20), icmp)
    with pytest.raises(CodecError, match="out of range"):
        encode_packet(V1Report(G), HOST, G, hop_limit=256)


def test_memoryview_and_bytearray_input() -> None:
    assert decode_packet(memoryview(GOOD)).mld == decode_packet(bytearray(GOOD)).mld
    data = encode(V1Report(G), HOST, G)
    assert decode(bytearray(data), HOST, G) == decode(memoryview(data), HOST, G) == V1Report(G)
