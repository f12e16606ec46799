"""pcap/pcapng reading and writing, and the link layers IGMP captures come in."""

from __future__ import annotations

import io
import struct
from ipaddress import IPv4Address

import pytest

from mrouter.errors import CodecError
from mrouter.igmp.codec import decode_packet, encode_packet
from mrouter.igmp.messages import V2Report
from mrouter.traffic import pcap

G = IPv4Address("239.1.2.3")
PACKET = encode_packet(V2Report(G), IPv4Address("192.0.2.2"), G)


def test_write_then_read_round_trips() -> None:
    stream = io.BytesIO()
    writer = pcap.Writer(stream)
    writer.write(PACKET, 1700000000.25)
    writer.write(PACKET[:30], 1700000001.999_999_7)  # rounds up into the next second
    records = list(pcap.read(io.BytesIO(stream.getvalue())))
    assert [r.number for r in records] == [1, 2]
    assert records[0].data == PACKET and records[0].linktype == pcap.LinkType.RAW
    assert records[0].time == pytest.approx(1700000000.25, abs=1e-6)
    assert records[1].time == pytest.approx(1700000002.0, abs=1e-6)
    assert records[1].orig_len == 30


def test_snaplen_truncates_but_keeps_original_length() -> None:
    stream = io.BytesIO()
    pcap.Writer(stream, snaplen=24).write(PACKET, 1.0)
    (record,) = pcap.read(io.BytesIO(stream.getvalue()))
    assert len(record.data) == 24 and record.orig_len == len(PACKET)


@pytest.mark.parametrize(("order", "magic", "tick"), [
    ("<", pcap.PCAP_MAGIC_US, 1e-6), (">", pcap.PCAP_MAGIC_US, 1e-6),
    ("<", pcap.PCAP_MAGIC_NS, 1e-9), (">", pcap.PCAP_MAGIC_NS, 1e-9),
])
def test_reads_both_byte_orders_and_nanosecond_files(order: str, magic: int,
                                                     tick: float) -> None:
    frac = 500_000 if tick == 1e-6 else 500_000_000
    data = struct.pack(order + "IHHiIII", magic, 2, 4, 0, 0, 65535, pcap.LinkType.IPV4)
    data += struct.pack(order + "IIII", 10, frac, len(PACKET), len(PACKET)) + PACKET
    (record,) = pcap.read(io.BytesIO(data))
    assert record.time == pytest.approx(10.5)
    assert record.linktype == pcap.LinkType.IPV4 and record.data == PACKET


def _block(block_type: int, body: bytes) -> bytes:
    body += bytes(-len(body) % 4)
    length = len(body) + 12
    return struct.pack("<II", block_type, length) + body + struct.pack("<I", length)


def _option(code: int, value: bytes) -> bytes:
    return struct.pack("<HH", code, len(value)) + value + bytes(-len(value) % 4)


def test_reads_pcapng_with_interface_names_and_resolution() -> None:
    shb = _block(pcap.PCAPNG_SHB, struct.pack("<IHHq", pcap.PCAPNG_BYTE_ORDER_MAGIC, 1, 0, -1))
    idb = _block(pcap.PCAPNG_IDB, struct.pack("<HHI", pcap.LinkType.RAW, 0, 0)
                 + _option(pcap.PCAPNG_OPT_IF_NAME, b"dn0") + _option(9, b"\x09")
                 + _option(0, b""))
    stamp = 1_700_000_000_123_456_789  # nanoseconds (if_tsresol 9)
    epb = _block(pcap.PCAPNG_EPB, struct.pack("<IIIII", 0, stamp >> 32, stamp & 0xFFFFFFFF,
                                              len(PACKET), len(PACKET)) + PACKET)
    other = _block(5, b"statistics we skip")
    records = list(pcap.read(io.BytesIO(shb + idb + other + epb + epb)))
    assert [r.number for r in records] == [1, 2]
    assert records[0].interface == "dn0" and records[0].data == PACKET
    assert records[0].time == pytest.approx(1_700_000_000.123456789)


def test_pcapng_packet_naming_an_undescribed_interface_is_an_error() -> None:
    shb = _block(pcap.PCAPNG_SHB, struct.pack("<IHHq", pcap.PCAPNG_BYTE_ORDER_MAGIC, 1, 0, -1))
    epb = _block(pcap.PCAPNG_EPB, struct.pack("<IIIII", 3, 0, 0, 8, 8) + bytes(8))
    with pytest.raises(CodecError, match="names interface 3"):
        list(pcap.read(io.BytesIO(shb + epb)))


def test_not_a_capture_and_truncated_capture() -> None:
    with pytest.raises(CodecError, match="not a pcap or pcapng capture") as info:
        list(pcap.read(io.BytesIO(b"hello world, this is text")))
    assert info.value.offset == 0
    with pytest.raises(CodecError, match="empty file"):
        list(pcap.read(io.BytesIO(b"")))
    stream = io.BytesIO()
    pcap.Writer(stream).write(PACKET, 1.0)
    cut = stream.getvalue()[:-5]
    records = pcap.read(io.BytesIO(cut))
    with pytest.raises(CodecError, match="truncated capture: record 1 needs 32 bytes") as info:
        next(records)
    assert info.value.offset == len(cut)


# --- link layers ------------------------------------------------------------------


def test_ethernet_with_and_without_vlan_tags() -> None:
    eth = bytes(12) + b"\x08\x00" + PACKET + bytes(4)
    assert pcap.ipv4_payload(pcap.LinkType.ETHERNET, eth) == PACKET + bytes(4)
    vlan = bytes(12) + b"\x81\x00\x00\x05" + b"\x08\x00" + PACKET
    payload = pcap.ipv4_payload(pcap.LinkType.ETHERNET, vlan)
    assert payload is not None and decode_packet(payload).igmp == V2Report(G)
    arp = bytes(12) + b"\x08\x06" + bytes(28)
    assert pcap.ipv4_payload(pcap.LinkType.ETHERNET, arp) is None
    with pytest.raises(CodecError, match="truncated Ethernet header"):
        pcap.ipv4_payload(pcap.LinkType.ETHERNET, bytes(13))


def test_linux_cooked_captures_give_direction() -> None:
    sll = struct.pack("!HHH8sH", 4, 1, 6, bytes(8), 0x0800) + PACKET
    frame = pcap.frame(pcap.LinkType.LINUX_SLL, sll)
    assert frame.ipv4 == PACKET and frame.direction is pcap.Direction.OUTGOING
    sll2 = struct.pack("!HHIHBB8s", 0x0800, 0, 3, 1, 2, 6, bytes(8)) + PACKET
    frame = pcap.frame(pcap.LinkType.LINUX_SLL2, sll2)
    assert frame.ipv4 == PACKET and frame.direction is pcap.Direction.MULTICAST
    assert frame.direction.text == "in"
    with pytest.raises(CodecError, match="SLL2"):
        pcap.frame(pcap.LinkType.LINUX_SLL2, bytes(10))


def test_raw_ip_tells_ipv4_from_ipv6_and_unknown_linktypes_fail() -> None:
    assert pcap.ipv4_payload(pcap.LinkType.RAW, PACKET) == PACKET
    assert pcap.ipv4_payload(pcap.LinkType.RAW, b"\x60" + bytes(39)) is None
    with pytest.raises(CodecError, match="linktype 105 is not supported"):
        pcap.ipv4_payload(105, PACKET)
