"""tshark as an oracle: a pcap of packets our codec encoded (written with mrouter.traffic.pcap)
dissects in Wireshark's IGMP and IP dissectors to the same fields our decoder reads."""

from __future__ import annotations

from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from tshark_oracle import as_list, dissect, tshark_or_skip

from mrouter.igmp.codec import Packet, decode_packet, encode_packet
from mrouter.igmp.messages import (
    GroupRecord,
    IgmpMessage,
    Query,
    RecordType,
    V1Report,
    V2Leave,
    V2Report,
    V3Report,
)

pytestmark = pytest.mark.interop

TSHARK = tshark_or_skip()

A = IPv4Address
G = A("239.1.2.3")
S = (A("198.51.100.2"), A("198.51.100.3"), A("203.0.113.9"))

MESSAGES: list[IgmpMessage] = [
    Query(1),
    Query(2, max_resp_code=100),
    Query(2, G, 10),
    Query(3, max_resp_code=100, qrv=2, qqic=125),
    Query(3, G, 0x7F, False, 7, 0x7F),                  # last literal codes
    Query(3, G, 0x80, True, 1, 0x80, S[:1]),            # first float codes
    Query(3, G, 0x8F, False, 2, 0x90, S),
    Query(3, G, 0xFF, False, 0, 0xFF, S[:2]),           # the largest
    V1Report(G),
    V2Report(G),
    V2Leave(G),
    V3Report(tuple(GroupRecord(t, A(f"239.0.0.{t.value}"), S[: t.value % 4])
                   for t in RecordType)),
    V3Report((GroupRecord(RecordType.ALLOW_NEW_SOURCES, G, S[:1], b"AUX!AUX?"),
              GroupRecord(RecordType.BLOCK_OLD_SOURCES, A("239.9.9.9"), S[1:]))),
]


def _records(igmp: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in igmp.values() if isinstance(v, dict) and "igmp.record_type" in v]


@pytest.fixture(scope="module")
def dissected(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Packet, dict[str, Any]]]:
    folder = Path(tmp_path_factory.mktemp("tshark"))
    datas = [encode_packet(m, A("192.0.2.2"), A("224.0.0.22")) for m in MESSAGES]
    bad = bytearray(encode_packet(V2Report(G), A("192.0.2.2"), G))
    bad[-1] ^= 0x55  # a bad IGMP checksum must be bad for both
    datas.append(bytes(bad))
    layers = dissect(TSHARK, folder, datas, "-o", "ip.check_checksum:TRUE")
    return [(decode_packet(data, verify_checksum=False), layer)
            for data, layer in zip(datas, layers, strict=True)]


def test_ip_header_fields_match(dissected: list[tuple[Packet, dict[str, Any]]]) -> None:
    for packet, layers in dissected:
        ip = layers["ip"]
        assert ip["ip.src"] == str(packet.ip.src) and ip["ip.dst"] == str(packet.ip.dst)
        assert int(ip["ip.ttl"]) == packet.ip.ttl == 1
        assert int(ip["ip.proto"]) == 2
        assert int(ip["ip.hdr_len"]) == packet.ip.header_len == 24
        assert int(ip["ip.dsfield"], 16) == packet.ip.tos
        assert ip["ip.checksum.status"] == "1" and packet.ip.checksum_ok  # 1 = good
        options = ip["Options: (4 bytes), Router Alert"]["ip.options.routeralert_tree"]
        assert options["ip.opt.type"] == "148" and packet.ip.router_alert


def test_igmp_fields_match(dissected: list[tuple[Packet, dict[str, Any]]]) -> None:
    assert len(dissected) == len(MESSAGES) + 1
    for (packet, layers), message in zip(dissected, MESSAGES, strict=False):
        igmp = layers["igmp"]
        msg = packet.igmp
        assert msg == message
        assert int(igmp["igmp.type"], 16) == msg.type
        assert igmp["igmp.checksum.status"] == "1" and packet.checksum_ok
        if isinstance(msg, Query):
            assert int(igmp["igmp.version"]) == msg.version
            assert igmp["igmp.maddr"] == str(msg.group)
            if msg.version > 1:  # Wireshark shows the decoded time in tenths
                assert int(igmp["igmp.max_resp"]) == msg.max_resp_tenths
            if msg.version == 3:
                assert (int(igmp["igmp.s"]), int(igmp["igmp.qrv"])) == (msg.s_flag, msg.qrv)
                assert int(igmp["igmp.qqic"]) == msg.qqic
                assert int(igmp["igmp.num_src"]) == len(msg.sources)
                assert as_list(igmp.get("igmp.saddr")) == [str(s) for s in msg.sources]
        elif isinstance(msg, V3Report):
            assert int(igmp["igmp.version"]) == 3
            assert int(igmp["igmp.num_grp_recs"]) == len(msg.records)
            theirs = _records(igmp)
            assert len(theirs) == len(msg.records)
            for record, shown in zip(msg.records, theirs, strict=True):
                assert int(shown["igmp.record_type"]) == record.record_type
                assert shown["igmp.maddr"] == str(record.group)
                assert int(shown["igmp.num_src"]) == len(record.sources)
                assert as_list(shown.get("igmp.saddr")) == [str(s) for s in record.sources]
                assert int(shown["igmp.aux_data_len"]) == len(record.aux_data) // 4
                if record.aux_data:
                    assert bytes.fromhex(shown["igmp.aux_data"].replace(":", "")) == \
                        record.aux_data
        else:
            assert isinstance(msg, V1Report | V2Report | V2Leave)
            version = 1 if isinstance(msg, V1Report) else 2
            assert int(igmp["igmp.version"]) == version
            assert igmp["igmp.maddr"] == str(msg.group)


def test_bad_checksum_is_bad_for_both(dissected: list[tuple[Packet, dict[str, Any]]]) -> None:
    packet, layers = dissected[-1]
    assert not packet.checksum_ok
    assert layers["igmp"]["igmp.checksum.status"] == "0"  # 0 = bad
