"""describe: the JSON fields and the one-line text every IGMP tool shows."""

from __future__ import annotations

import json
from ipaddress import IPv4Address

import pytest

from mrouter.errors import CodecError
from mrouter.igmp.codec import decode_packet, encode_packet
from mrouter.igmp.describe import (
    COLUMNS,
    error_fields,
    header_line,
    line,
    message_fields,
    packet_fields,
)
from mrouter.igmp.messages import (
    GroupRecord,
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
S1 = A("198.51.100.2")
HOST = A("192.0.2.2")


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (Query(1), {"version": 1, "type": "query", "query": "general", "max_resp": 10.0}),
        (Query(2, G, 15), {"version": 2, "query": "group", "group": str(G), "max_resp": 1.5}),
        (Query(3, G, 0x8F, True, 2, 0x90, (S1,)),
         {"version": 3, "query": "group-and-source", "max_resp": 24.8, "max_resp_code": 0x8F,
          "s_flag": True, "qrv": 2, "qqic": 0x90, "qqi": 256, "sources": [str(S1)]}),
        (V1Report(G), {"version": 1, "type": "v1_report", "type_code": 0x12, "group": str(G)}),
        (V2Report(G), {"version": 2, "type": "v2_report", "max_resp": None, "records": []}),
        (V2Leave(G), {"version": 2, "type": "v2_leave", "type_code": 0x17}),
        (V3Report((GroupRecord(RecordType.ALLOW_NEW_SOURCES, G, (S1,), b"abcd"),
                   GroupRecord(9, G))),
         {"version": 3, "type": "v3_report", "group": None, "records": [
             {"type": "ALLOW", "record_type": 5, "group": str(G), "sources": [str(S1)],
              "aux_data": "61626364"},
             {"type": "type-9", "record_type": 9, "group": str(G), "sources": []}]}),
        (UnknownMessage(0x1F, 3, b"\x01\x02\x03\x04"),
         {"version": None, "type": "unknown", "name": "mtrace", "code": 3, "body": "01020304"}),
    ],
)
def test_message_fields(message: object, expected: dict[str, object]) -> None:
    fields = message_fields(message)  # type: ignore[arg-type]
    assert {k: fields[k] for k in expected} == expected
    assert {"version", "type", "type_code", "group", "max_resp", "records"} <= fields.keys()
    json.dumps(fields)  # JSON-able


def test_packet_fields_and_line_for_a_v3_report() -> None:
    msg = V3Report((GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, G),
                    GroupRecord(RecordType.ALLOW_NEW_SOURCES, A("239.9.9.9"), (S1,))))
    packet = decode_packet(encode_packet(msg, HOST, A("224.0.0.22")))
    fields = packet_fields(packet, time=0.5, iface="dn0", direction="in")
    assert fields["src"] == "192.0.2.2" and fields["dst"] == "224.0.0.22"
    assert fields["router_alert"] is True and fields["checksum_ok"] is True
    assert fields["ttl"] == 1 and fields["iface"] == "dn0" and fields["direction"] == "in"
    text = line(fields)
    for word in ("dn0", "192.0.2.2", "224.0.0.22", "v3", "report", "RA", "ok",
                 "TO_EX 239.1.2.3 {}", "ALLOW 239.9.9.9 {198.51.100.2}"):
        assert word in text


def test_line_columns_align_with_header() -> None:
    packet = decode_packet(encode_packet(Query(2, G, 10), A("192.0.2.1"), G,
                                         router_alert=False))
    text = line(packet_fields(packet, time=0.0, iface="eth0"))
    head = header_line()
    start = 0
    for title, width in COLUMNS:  # each value starts where its title does
        assert head[start:start + len(title)] == title
        assert text[start - 1:start] in ("", " ")
        start += width + 1
    assert text.split()[1:8] == ["eth0", "192.0.2.1", "239.1.2.3", "v2", "query",
                                 "239.1.2.3", "1s"]
    assert " - " in text[start - 10:]  # no Router Alert


def test_error_fields_and_line() -> None:
    data = encode_packet(V2Report(G), HOST, G)[:-2]
    try:
        decode_packet(data)
    except CodecError as exc:
        fields = error_fields(exc, data, time=1.0, iface="dn0")
    else:
        pytest.fail("a cut packet decoded")
    assert fields["offset"] == 30 and "truncated" in fields["error"]
    assert fields["hex"] == data.hex()
    assert "error: truncated IPv4 packet" in line(fields)
    assert "(at byte offset 30)" in line(fields)
