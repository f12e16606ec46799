"""tshark as an oracle for the MLD codec: a pcap of packets our codec encoded (written with
mrouter.traffic.pcap) dissects in Wireshark's IPv6 and ICMPv6 dissectors to the same fields our
decoder reads, the floating-point Maximum Response Code and QQIC included.

Wireshark shows the decoded values of the float fields, not the raw codes: its
``icmpv6.mld.maximum_response_code`` is the delay in ms (RFC 3810 §5.1.3) and its
``icmpv6.mld.qqi`` the interval in seconds (§5.1.9), which is what makes it an oracle for
our :func:`code_to_delay_ms` and the QQIC decoding.
"""

from __future__ import annotations

from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import pytest
from tshark_oracle import as_list, dissect, tshark_or_skip

from mrouter.mld.codec import Packet, decode_packet, encode_packet
from mrouter.mld.messages import (
    ALL_MLDV2_ROUTERS,
    AddressRecord,
    MldMessage,
    Query,
    RecordType,
    V1Done,
    V1Report,
    V2Report,
)

pytestmark = pytest.mark.interop

TSHARK = tshark_or_skip()

A = IPv6Address
G = A("ff15::77")
S = (A("2001:db8::2"), A("2001:db8::3"), A("2001:db8:ffff::9"))
HOST = A("fe80::2")

MESSAGES: list[MldMessage] = [
    Query(1, max_resp_code=10000),
    Query(1, G, 65535),                                   # v1: linear, up to 65535 ms
    Query(2, max_resp_code=10000, qrv=2, qqic=125),
    Query(2, G, 32767, False, 7, 0x7F),                   # last literal codes
    Query(2, G, 32768, True, 1, 0x80, S[:1]),             # first float codes
    Query(2, G, 0x8001, False, 2, 0x81, S),               # one step up: 32776 ms, 136 s
    Query(2, G, 0x8FFF, False, 3, 0x8F, S[:2]),           # the top of exp 0: 65528 ms
    Query(2, G, 0x9000, False, 4, 0x90),                  # exp 1: 65536 ms, 256 s
    Query(2, G, 0xFFFF, False, 0, 0xFF, S[:2]),           # the largest: 8387584 ms, 31744 s
    V1Report(G),
    V1Done(G),
    V2Report(tuple(AddressRecord(t, A(f"ff15::{t.value}"), S[: t.value % 4])
                   for t in RecordType)),
    V2Report((AddressRecord(RecordType.ALLOW_NEW_SOURCES, G, S[:1], b"AUX!AUX?"),
              AddressRecord(RecordType.BLOCK_OLD_SOURCES, A("ff15::99"), S[1:]))),
]


@pytest.fixture(scope="module")
def dissected(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Packet, dict[str, Any]]]:
    folder = Path(tmp_path_factory.mktemp("tshark"))
    datas = [encode_packet(m, HOST, ALL_MLDV2_ROUTERS, traffic_class=n)
             for n, m in enumerate(MESSAGES)]
    bad = bytearray(encode_packet(V1Report(G), HOST, G))
    bad[-1] ^= 0x55  # a bad ICMPv6 checksum must be bad for both
    datas.append(bytes(bad))
    layers = dissect(TSHARK, folder, datas)  # Wireshark verifies ICMPv6 checksums by default
    return [(decode_packet(data, verify_checksum=False), layer)
            for data, layer in zip(datas, layers, strict=True)]


def test_ipv6_header_and_router_alert_match(
        dissected: list[tuple[Packet, dict[str, Any]]]) -> None:
    for packet, layers in dissected:
        ip = layers["ipv6"]
        assert ip["ipv6.src"] == str(packet.ip.src) and ip["ipv6.dst"] == str(packet.ip.dst)
        assert int(ip["ipv6.hlim"]) == packet.ip.hop_limit == 1
        assert int(ip["ipv6.nxt"]) == packet.ip.next_header == 0  # Hop-by-Hop
        assert int(ip["ipv6.plen"]) == packet.ip.payload_len
        assert int(ip["ipv6.tclass"], 16) == packet.ip.traffic_class
        assert int(ip["ipv6.flow"], 16) == packet.ip.flow_label == 0
        hbh = ip["ipv6.hopopts"]
        assert int(hbh["ipv6.hopopts.nxt"]) == 58
        assert int(hbh["ipv6.hopopts.len_oct"]) == packet.ip.header_len - 40 == 8
        alert, pad = hbh["ipv6.opt"]
        assert int(alert["ipv6.opt.type"], 16) == 5 and int(alert["ipv6.opt.length"]) == 2
        assert packet.ip.router_alert
        assert int(alert["ipv6.opt.router_alert"]) == packet.ip.router_alert_value == 0
        assert int(pad["ipv6.opt.type"], 16) == 1 and int(pad["ipv6.opt.length"]) == 0


def test_mld_fields_match(dissected: list[tuple[Packet, dict[str, Any]]]) -> None:
    assert len(dissected) == len(MESSAGES) + 1
    for (packet, layers), message in zip(dissected, MESSAGES, strict=False):
        icmp = layers["icmpv6"]
        msg = packet.mld
        assert msg == message
        assert int(icmp["icmpv6.type"]) == msg.type and int(icmp["icmpv6.code"]) == 0
        assert icmp["icmpv6.checksum.status"] == "1" and packet.checksum_ok  # 1 = good
        if isinstance(msg, Query) and msg.version == 1:
            assert int(icmp["icmpv6.mld.maximum_response_delay"]) == msg.max_resp_ms
            assert icmp["icmpv6.mld.multicast_address"] == str(msg.group)
            assert "icmpv6.mld.flag" not in icmp  # tshark too sees a 24-byte query as v1
        elif isinstance(msg, Query):
            # the float codes, decoded by Wireshark on its own (see the module docstring)
            assert int(icmp["icmpv6.mld.maximum_response_code"]) == msg.max_resp_ms
            assert int(icmp["icmpv6.mld.qqi"]) == msg.qqi
            assert icmp["icmpv6.mld.multicast_address"] == str(msg.group)
            flags = icmp["icmpv6.mld.flag_tree"]
            assert int(flags["icmpv6.mld.flag.s"]) == msg.s_flag
            assert int(flags["icmpv6.mld.flag.qrv"]) == msg.qrv
            assert int(flags["icmpv6.mld.flag.reserved"]) == 0
            assert int(icmp["icmpv6.mld.nb_sources"]) == len(msg.sources)
            assert as_list(icmp.get("icmpv6.mld.source_address")) == [str(s) for s in msg.sources]
        elif isinstance(msg, V2Report):
            assert int(icmp["icmpv6.mldr.nb_mcast_records"]) == len(msg.records)
            theirs = as_list(icmp.get("icmpv6.mldr.mar"))
            assert len(theirs) == len(msg.records)
            for record, shown in zip(msg.records, theirs, strict=True):
                assert int(shown["icmpv6.mldr.mar.record_type"]) == record.record_type
                assert shown["icmpv6.mldr.mar.multicast_address"] == str(record.group)
                assert int(shown["icmpv6.mldr.mar.nb_sources"]) == len(record.sources)
                assert as_list(shown.get("icmpv6.mldr.mar.source_address")) == \
                    [str(s) for s in record.sources]
                assert int(shown["icmpv6.mldr.mar.aux_data_len"]) == len(record.aux_data) // 4
                if record.aux_data:
                    assert bytes.fromhex(
                        shown["icmpv6.mldr.mar.auxiliary_data"].replace(":", "")
                    ) == record.aux_data
        else:
            assert isinstance(msg, V1Report | V1Done)
            assert int(icmp["icmpv6.mld.maximum_response_delay"]) == 0
            assert icmp["icmpv6.mld.multicast_address"] == str(msg.group)


def test_every_float_code_in_the_pcap_is_checked(
        dissected: list[tuple[Packet, dict[str, Any]]]) -> None:
    # the boundaries the module docstring promises are really in the capture
    codes = {m.max_resp_code for m in MESSAGES if isinstance(m, Query) and m.version == 2}
    assert {32767, 32768, 0xFFFF} <= codes
    shown = [int(layers["icmpv6"]["icmpv6.mld.maximum_response_code"])
             for _, layers in dissected if "icmpv6.mld.maximum_response_code" in layers["icmpv6"]]
    assert shown == [10000, 32767, 32768, 32776, 65528, 65536, 8387584]


def test_bad_checksum_is_bad_for_both(dissected: list[tuple[Packet, dict[str, Any]]]) -> None:
    packet, layers = dissected[-1]
    assert not packet.checksum_ok
    assert layers["icmpv6"]["icmpv6.checksum.status"] == "0"  # 0 = bad
