"""scapy (>= 2.8, scapy.layers.inet6) as an oracle for the MLD codec: every message kind built
by scapy decodes to the same fields with our codec, and ours dissects in scapy to the same
fields, Hop-by-Hop Router Alert and checksum included.

Known scapy 2.8 limits: ICMPv6MLDMultAddrRec counts ``auxdata_len`` in bytes where RFC 3810
§5.2.6 counts 32-bit words, so aux data is checked only in the scapy-builds direction (with
``auxdata_len`` set by hand); scapy does not verify checksums on dissection, so we compare
its freshly computed checksum with ours. ICMPv6MLDMultAddrRec has no ``extract_padding``,
so scapy dissects the records of a report as a chain (each record the payload of the one
before) in ``records[0]``, not as a list: the records test walks that chain.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv6Address
from typing import Any

import pytest

pytest.importorskip("scapy", minversion="2.8")

from scapy.layers.inet6 import (
    ICMPv6MLDMultAddrRec,
    ICMPv6MLDone,
    ICMPv6MLQuery,
    ICMPv6MLQuery2,
    ICMPv6MLReport,
    ICMPv6MLReport2,
    ICMPv6MRD_Advertisement,
    IPv6,
    IPv6ExtHdrHopByHop,
    RouterAlert,
)

from mrouter.mld.codec import decode_packet, encode_packet
from mrouter.mld.messages import (
    AddressRecord,
    MldMessage,
    Query,
    RecordType,
    UnknownMessage,
    V1Done,
    V1Report,
    V2Report,
)

pytestmark = pytest.mark.interop

A = IPv6Address
G = "ff15::77"
SOURCES = ["2001:db8::2", "2001:db8::3", "2001:db8:ffff::9"]
SRC, DST = "fe80::2", "ff02::16"


def scapy_ip() -> Any:
    return IPv6(src=SRC, dst=DST, hlim=1) / IPv6ExtHdrHopByHop(options=[RouterAlert(value=0)])


def _record(rtype: int, group: str, sources: list[str], **kw: Any) -> Any:
    return ICMPv6MLDMultAddrRec(rtype=rtype, dst=group, sources=sources, **kw)


# (name, scapy layer builder, the message our codec must decode it to)
SCAPY_BUILT: list[tuple[str, Callable[[], Any], MldMessage]] = [
    ("v1 general query", lambda: ICMPv6MLQuery(mrd=10000), Query(1, max_resp_code=10000)),
    ("v1 specific query", lambda: ICMPv6MLQuery(mrd=1000, mladdr=G), Query(1, A(G), 1000)),
    ("v2 general query", lambda: ICMPv6MLQuery2(mrd=10000, QRV=2, QQIC=125),
     Query(2, max_resp_code=10000, qrv=2, qqic=125)),
    ("v2 source query, the largest float codes",
     lambda: ICMPv6MLQuery2(mrd=0xFFFF, mladdr=G, S=1, QRV=7, QQIC=0xFF, sources=SOURCES),
     Query(2, A(G), 0xFFFF, True, 7, 0xFF, tuple(map(A, SOURCES)))),
    ("v2 query, the last literal code", lambda: ICMPv6MLQuery2(mrd=32767, mladdr=G),
     Query(2, A(G), 32767)),
    ("v2 query, the first float code", lambda: ICMPv6MLQuery2(mrd=32768, mladdr=G, QQIC=128),
     Query(2, A(G), 32768, qqic=128)),
    ("v1 report", lambda: ICMPv6MLReport(mladdr=G), V1Report(A(G))),
    ("v1 done", lambda: ICMPv6MLDone(mladdr=G), V1Done(A(G))),
    ("v2 report, six record types",
     lambda: ICMPv6MLReport2(records=[_record(t, f"ff15::{t}", SOURCES[: t % 4])
                                      for t in range(1, 7)]),
     V2Report(tuple(AddressRecord(RecordType(t), A(f"ff15::{t}"),
                                  tuple(map(A, SOURCES[: t % 4]))) for t in range(1, 7)))),
    ("v2 report with aux data",
     lambda: ICMPv6MLReport2(records=[
         _record(5, G, SOURCES[:1], auxdata_len=2, auxdata=b"AUXDATA!"),  # 2 words, by hand
         _record(6, "ff15::99", SOURCES[1:2])]),
     V2Report((AddressRecord(RecordType.ALLOW_NEW_SOURCES, A(G), (A(SOURCES[0]),), b"AUXDATA!"),
               AddressRecord(RecordType.BLOCK_OLD_SOURCES, A("ff15::99"), (A(SOURCES[1]),))))),
    ("v2 report, no records", lambda: ICMPv6MLReport2(), V2Report()),
    ("MRD advertisement (not MLD)",
     lambda: ICMPv6MRD_Advertisement(advinter=20, queryint=125, robustness=2),
     UnknownMessage(151, 20, bytes.fromhex("007d0002"))),
]


@pytest.mark.parametrize(("name", "build", "expected"), SCAPY_BUILT,
                         ids=[n for n, _, _ in SCAPY_BUILT])
def test_scapy_built_decodes_to_the_same_fields(name: str, build: Callable[[], Any],
                                                expected: MldMessage) -> None:
    data = bytes(scapy_ip() / build())
    packet = decode_packet(data)  # checksum verified: scapy computed it
    assert packet.mld == expected
    ip = packet.ip
    assert (str(ip.src), str(ip.dst), ip.hop_limit, ip.next_header) == (SRC, DST, 1, 0)
    assert ip.router_alert and ip.router_alert_value == 0
    assert ip.hop_by_hop == bytes.fromhex("050200000100")  # scapy pads with PadN like Linux


def test_scapy_built_without_router_alert() -> None:
    data = bytes(IPv6(src=SRC, dst=G) / ICMPv6MLReport(mladdr=G))
    packet = decode_packet(data)
    assert packet.mld == V1Report(A(G))
    assert packet.ip.next_header == 58 and not packet.ip.router_alert
    assert packet.ip.hop_limit == 1  # scapy's MLD layers set the hop limit to 1


# (our message, the scapy class it must dissect as, the fields scapy must show)
OURS: list[tuple[MldMessage, type, dict[str, Any]]] = [
    (Query(1, max_resp_code=10000), ICMPv6MLQuery,
     {"type": 130, "code": 0, "mrd": 10000, "reserved": 0, "mladdr": "::"}),
    (Query(1, A(G), 65535), ICMPv6MLQuery, {"mrd": 65535, "mladdr": G}),
    (Query(2, A(G), 0x8000, True, 3, 0xFF, tuple(map(A, SOURCES))), ICMPv6MLQuery2,
     {"type": 130, "mrd": 0x8000, "mladdr": G, "Resv": 0, "S": 1, "QRV": 3, "QQIC": 0xFF,
      "sources_number": 3, "sources": SOURCES}),
    (Query(2, max_resp_code=32767, qqic=127), ICMPv6MLQuery2,
     {"mrd": 32767, "QQIC": 127, "sources_number": 0}),
    (V1Report(A(G)), ICMPv6MLReport, {"type": 131, "code": 0, "mrd": 0, "mladdr": G}),
    (V1Done(A(G)), ICMPv6MLDone, {"type": 132, "mrd": 0, "mladdr": G}),
    (V2Report((AddressRecord(RecordType.MODE_IS_INCLUDE, A(G), tuple(map(A, SOURCES))),
               AddressRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, A("ff15::99")))),
     ICMPv6MLReport2, {"type": 143, "res": 0, "reserved": 0, "records_number": 2}),
    (UnknownMessage(151, 20, bytes.fromhex("007d0002")), ICMPv6MRD_Advertisement,
     {"type": 151, "advinter": 20, "queryint": 125, "robustness": 2}),
]


@pytest.mark.parametrize(("message", "layer_class", "expected"), OURS,
                         ids=[type(m).__name__ for m, _, _ in OURS])
def test_ours_dissects_in_scapy_to_the_same_fields(message: MldMessage, layer_class: type,
                                                   expected: dict[str, Any]) -> None:
    data = encode_packet(message, A(SRC), A(DST))
    packet = IPv6(data)
    assert (packet.src, packet.dst, packet.hlim, packet.nh, packet.plen) == (
        SRC, DST, 1, 0, len(data) - 40)
    hbh = packet[IPv6ExtHdrHopByHop]
    assert hbh.nh == 58 and hbh.len == 0
    alert = hbh.options[0]
    assert isinstance(alert, RouterAlert) and alert.optlen == 2 and alert.value == 0
    layer = hbh.payload
    assert type(layer) is layer_class
    assert {k: layer.fields[k] for k in expected} == expected
    ours_checksum = layer.cksum
    layer.cksum = None  # let scapy compute it over the same bytes and pseudo-header
    assert IPv6(bytes(packet))[IPv6ExtHdrHopByHop].payload.cksum == ours_checksum
    assert bytes(IPv6(data)) == data  # scapy rebuilds our bytes exactly


def test_v2_records_dissect_in_scapy_with_sources() -> None:
    records = tuple(AddressRecord(RecordType(t), A(f"ff15::{t}"),
                                  tuple(map(A, SOURCES[: t % 4]))) for t in range(1, 7))
    layer = IPv6(encode_packet(V2Report(records), A(SRC), A(DST)))[ICMPv6MLReport2]
    assert layer.records_number == 6
    shown = []
    record = layer.records[0]
    while isinstance(record, ICMPv6MLDMultAddrRec):  # scapy chains them (see the docstring)
        shown.append(record)
        record = record.payload
    got = [(r.rtype, r.dst, r.sources_number, r.sources, r.auxdata_len) for r in shown]
    assert got == [(t, f"ff15::{t}", t % 4, SOURCES[: t % 4], 0) for t in range(1, 7)]


def test_scapy_and_ours_agree_without_router_alert_and_with_other_hop_limits() -> None:
    data = encode_packet(V1Done(A(G)), A(SRC), A("ff02::2"), router_alert=False, hop_limit=9,
                         traffic_class=0xE0)
    packet = IPv6(data)
    assert (packet.nh, packet.hlim, packet.tc) == (58, 9, 0xE0)
    assert type(packet.payload) is ICMPv6MLDone
    packet.payload.cksum = None
    assert bytes(IPv6(bytes(packet))) == data
