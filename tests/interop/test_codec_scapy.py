"""scapy (>= 2.8, scapy.layers.igmp) as an oracle: every message kind built by scapy
decodes to the same fields with our codec, and ours dissects in scapy to the same fields.

Known scapy 2.8 limits (see the facts file): IGMPv3_MR_Group ignores aux data len when
dissecting, so aux data is checked only in the scapy-builds direction; scapy does not
verify checksums on dissection, so we compare its freshly computed checksum with ours.
"""

from __future__ import annotations

from collections.abc import Callable
from ipaddress import IPv4Address
from typing import Any

import pytest

pytest.importorskip("scapy", minversion="2.8")

from scapy.layers.igmp import (
    IGMP,
    IGMP_MQ,
    IGMP_MR,
    IGMPv2_LG,
    IGMPv2_MR,
    IGMPv3_MQ,
    IGMPv3_MR,
    IGMPv3_MR_Group,
    IGMPv3_MRA,
)
from scapy.layers.inet import IP, IPOption_Router_Alert
from scapy.packet import Raw

from mrouter.igmp.codec import decode_packet, encode_packet
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

pytestmark = pytest.mark.interop

A = IPv4Address
G = "239.1.2.3"
SOURCES = ["198.51.100.2", "198.51.100.3", "203.0.113.9"]
SRC, DST = "192.0.2.2", "224.0.0.22"


def scapy_ip() -> Any:
    return IP(src=SRC, dst=DST, ttl=1, tos=0xC0)


# (name, scapy layer builder, the message our codec must decode it to)
SCAPY_BUILT: list[tuple[str, Callable[[], Any], IgmpMessage]] = [
    ("v1 query", lambda: IGMP(type=0x11, mrcode=0), Query(1)),
    ("v2 general query", lambda: IGMP(type=0x11, mrcode=100), Query(2, max_resp_code=100)),
    ("v2 group query", lambda: IGMP(type=0x11, mrcode=10, gaddr=G), Query(2, A(G), 10)),
    ("v3 general query", lambda: IGMPv3_MQ(mrcode=100, qrv=2, qqic=125),
     Query(3, max_resp_code=100, qrv=2, qqic=125)),
    ("v3 group-and-source query, float codes",
     lambda: IGMPv3_MQ(mrcode=31744, gaddr=G, s=1, qrv=7, qqic=0x90, srcaddrs=SOURCES),
     Query(3, A(G), 0xFF, True, 7, 0x90, tuple(map(A, SOURCES)))),
    ("v3 query, mrcode 128", lambda: IGMPv3_MQ(mrcode=128, gaddr=G), Query(3, A(G), 0x80)),
    ("v1 report", lambda: IGMP(type=0x12, gaddr=G), V1Report(A(G))),
    ("v2 report", lambda: IGMP(type=0x16, gaddr=G), V2Report(A(G))),
    ("v2 leave", lambda: IGMP(type=0x17, gaddr=G), V2Leave(A(G))),
    ("v3 report, six record types",
     lambda: IGMPv3_MR(records=[IGMPv3_MR_Group(rtype=t, maddr=f"239.0.0.{t}",
                                                srcaddrs=SOURCES[: t % 4])
                                for t in range(1, 7)]),
     V3Report(tuple(GroupRecord(RecordType(t), A(f"239.0.0.{t}"),
                                tuple(map(A, SOURCES[: t % 4]))) for t in range(1, 7)))),
    ("v3 report with aux data",
     lambda: IGMPv3_MR(records=[
         IGMPv3_MR_Group(rtype=5, auxdlen=2, maddr=G, srcaddrs=SOURCES[:1]) / Raw(b"AUXDATA!"),
         IGMPv3_MR_Group(rtype=6, maddr="239.9.9.9", srcaddrs=SOURCES[1:2])]),
     V3Report((GroupRecord(RecordType.ALLOW_NEW_SOURCES, A(G), (A(SOURCES[0]),), b"AUXDATA!"),
               GroupRecord(RecordType.BLOCK_OLD_SOURCES, A("239.9.9.9"), (A(SOURCES[1]),))))),
    ("MRD advertisement (unknown to us)",
     lambda: IGMPv3_MRA(advIntvl=20, qryIntvl=125, robust=2),
     UnknownMessage(0x30, 20, bytes.fromhex("007d0002"))),
]


@pytest.mark.parametrize(("name", "build", "expected"), SCAPY_BUILT,
                         ids=[n for n, _, _ in SCAPY_BUILT])
def test_scapy_built_decodes_to_the_same_fields(name: str, build: Callable[[], Any],
                                                expected: IgmpMessage) -> None:
    data = bytes(scapy_ip() / build())
    packet = decode_packet(data)  # checksums verified: scapy computed them
    assert packet.igmp == expected
    assert (str(packet.ip.src), str(packet.ip.dst), packet.ip.ttl) == (SRC, DST, 1)
    assert packet.ip.router_alert  # scapy adds Router Alert under IP, as RFC 2236 wants


def _scapy_query_fields(layer: Any) -> dict[str, Any]:
    return {"type": layer.type, "mrcode": layer.fields["mrcode"], "gaddr": layer.gaddr}


# (our message, the scapy class it must dissect as, the fields scapy must show)
OURS: list[tuple[IgmpMessage, type, dict[str, Any]]] = [
    (Query(1), IGMP_MQ, {"type": 0x11, "mrcode": 0, "gaddr": "0.0.0.0"}),
    (Query(2, A(G), 15), IGMP_MQ, {"type": 0x11, "mrcode": 15, "gaddr": G}),
    (Query(3, A(G), 0x8F, True, 3, 0xFF, tuple(map(A, SOURCES))), IGMPv3_MQ,
     {"type": 0x11, "mrcode": 248, "gaddr": G, "s": 1, "qrv": 3, "qqic": 0xFF,
      "numsrc": 3, "srcaddrs": SOURCES}),
    (Query(3, max_resp_code=127), IGMPv3_MQ, {"mrcode": 127, "numsrc": 0}),
    (V1Report(A(G)), IGMP_MR, {"type": 0x12, "gaddr": G}),
    (V2Report(A(G)), IGMPv2_MR, {"type": 0x16, "gaddr": G, "mrcode": 0}),
    (V2Leave(A(G)), IGMPv2_LG, {"type": 0x17, "gaddr": G}),
    (V3Report((GroupRecord(RecordType.MODE_IS_INCLUDE, A(G), tuple(map(A, SOURCES))),
               GroupRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, A("239.9.9.9")))),
     IGMPv3_MR, {"type": 0x22, "numgrp": 2}),
    (UnknownMessage(0x30, 20, bytes.fromhex("007d0002")), IGMPv3_MRA,
     {"type": 0x30, "advIntvl": 20, "qryIntvl": 125, "robust": 2}),
]


@pytest.mark.parametrize(("message", "layer_class", "expected"), OURS,
                         ids=[type(m).__name__ for m, _, _ in OURS])
def test_ours_dissects_in_scapy_to_the_same_fields(message: IgmpMessage, layer_class: type,
                                                   expected: dict[str, Any]) -> None:
    data = encode_packet(message, A(SRC), A(DST))
    packet = IP(data)
    assert (packet.src, packet.dst, packet.ttl, packet.proto) == (SRC, DST, 1, 2)
    assert isinstance(packet.options[0], IPOption_Router_Alert)
    layer = packet.payload
    assert type(layer) is layer_class
    assert {k: layer.fields[k] for k in expected} == expected
    ours_checksum = layer.chksum
    layer.chksum = None  # let scapy compute it over the same bytes
    assert IP(bytes(packet)).payload.chksum == ours_checksum
    assert bytes(IP(data)) == data  # scapy rebuilds our bytes exactly


def test_v3_records_dissect_in_scapy_with_sources() -> None:
    records = tuple(GroupRecord(RecordType(t), A(f"239.0.0.{t}"), tuple(map(A, SOURCES[:t % 4])))
                    for t in range(1, 7))
    layer = IP(encode_packet(V3Report(records), A(SRC), A(DST))).payload
    got = [(r.rtype, r.maddr, r.numsrc, r.srcaddrs) for r in layer.records]
    assert got == [(t, f"239.0.0.{t}", t % 4, SOURCES[: t % 4]) for t in range(1, 7)]
