"""Packet captures: read pcap and pcapng, write pcap; find the IPv4 packet in a frame.

Theory of operation: :func:`read` takes a binary stream and yields one
:class:`Record` per captured frame, from classic pcap (both byte orders, micro- or
nanosecond timestamps) or pcapng (section header, interface description, enhanced and
simple packet blocks; other blocks are skipped). :func:`ipv4_payload` strips the link
layer of the linktypes IGMP captures come in: Ethernet (with VLAN tags), Linux cooked
SLL and SLL2 (``tcpdump -i any``), and raw IP. :class:`Writer` writes classic pcap
(by default raw IP frames, which every tool reads).

Errors: a file that is not a capture, or ends in the middle of a record, raises
:class:`~mrouter.errors.CodecError` with the byte offset in the file; records read
before the problem have been yielded already.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from enum import IntEnum
from typing import BinaryIO

from mrouter.errors import CodecError
from mrouter.linux.constants import ETH_P_IP, ETH_P_IPV6


class LinkType(IntEnum):
    """Link-layer header types (tcpdump.org/linktypes.html) this module understands."""

    ETHERNET = 1
    RAW = 101  # raw IPv4 or IPv6, told apart by the version nibble
    LINUX_SLL = 113
    IPV4 = 228
    IPV6 = 229
    LINUX_SLL2 = 276


class Direction(IntEnum):
    """Linux packet types (``sll_pkttype``, include/uapi/linux/if_packet.h)."""

    HOST = 0
    BROADCAST = 1
    MULTICAST = 2
    OTHERHOST = 3
    OUTGOING = 4

    @property
    def text(self) -> str:
        return "out" if self is Direction.OUTGOING else "in"


PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
PCAPNG_IDB = 1
PCAPNG_SPB = 3
PCAPNG_EPB = 6
PCAPNG_OPT_IF_NAME = 2
PCAPNG_OPT_IF_TSRESOL = 9

#: Frames larger than this are taken as a corrupt length field, not a real frame.
MAX_FRAME = 256 * 1024

VLAN_ETHERTYPES = frozenset({0x8100, 0x88A8, 0x9100})


@dataclass(frozen=True, slots=True)
class Record:
    """One captured frame. ``number`` counts from 1 like Wireshark's frame number;
    ``interface`` is the pcapng interface name when the file has one."""

    number: int
    time: float
    linktype: int
    data: bytes
    orig_len: int
    interface: str | None = None


# --- reading ------------------------------------------------------------------------


class _Reader:
    """Reads exact byte counts from a stream and knows its offset, for error messages."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream
        self.offset = 0

    def take(self, size: int, what: str, *, eof_ok: bool = False) -> bytes | None:
        data = self.stream.read(size)
        if eof_ok and not data:
            return None
        if len(data) != size:
            raise CodecError(
                f"truncated capture: {what} needs {size} bytes, the file ends after "
                f"{len(data)}",
                self.offset + len(data),
            )
        self.offset += size
        return data

    def need(self, size: int, what: str) -> bytes:
        data = self.take(size, what)
        assert data is not None  # take() only returns None with eof_ok
        return data


def read(stream: BinaryIO) -> Iterator[Record]:
    """Yield the frames of a pcap or pcapng capture read from ``stream``."""
    reader = _Reader(stream)
    magic = reader.take(4, "the file magic", eof_ok=True)
    if magic is None:
        raise CodecError("empty file: not a pcap or pcapng capture", 0)
    if int.from_bytes(magic, "big") == PCAPNG_SHB:
        yield from _read_pcapng(reader)
        return
    for order in ("<", ">"):
        (value,) = struct.unpack(order + "I", magic)
        if value in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
            yield from _read_pcap(reader, order, 1e-9 if value == PCAP_MAGIC_NS else 1e-6)
            return
    raise CodecError(
        f"not a pcap or pcapng capture: file magic 0x{magic.hex()} "
        "(write captures with tcpdump -w, tshark -w or mrouter igmp watch --pcap)",
        0,
    )


def _read_pcap(reader: _Reader, order: str, tick: float) -> Iterator[Record]:
    _major, _minor, _zone, _sigfigs, _snaplen, network = struct.unpack(
        order + "HHiIII", reader.need(20, "the pcap file header")
    )
    linktype = network & 0xFFFF  # the upper bits may carry FCS information
    record_header = struct.Struct(order + "IIII")
    number = 0
    while True:
        at = reader.offset
        head = reader.take(record_header.size, "a record header", eof_ok=True)
        if head is None:
            return
        seconds, fraction, incl_len, orig_len = record_header.unpack(head)
        number += 1
        if incl_len > MAX_FRAME:
            raise CodecError(
                f"record {number} claims {incl_len} captured bytes: the capture is corrupt",
                at + 8,
            )
        data = reader.need(incl_len, f"record {number}")
        yield Record(number, seconds + fraction * tick, linktype, data, orig_len)


@dataclass
class _Interface:
    linktype: int
    tick: float
    name: str | None
    snaplen: int


def _read_pcapng(reader: _Reader) -> Iterator[Record]:
    order = "<"
    interfaces: list[_Interface] = []
    number = 0
    block_type = PCAPNG_SHB
    while True:
        at = reader.offset - 4
        # The section header block says the byte order of everything up to the next one.
        length_bytes = reader.need(4, "a pcapng block length")
        body_start = reader.offset
        if block_type == PCAPNG_SHB:
            order_magic = reader.need(4, "the pcapng byte-order magic")
            order = "<" if struct.unpack("<I", order_magic)[0] == PCAPNG_BYTE_ORDER_MAGIC else ">"
            if struct.unpack(order + "I", order_magic)[0] != PCAPNG_BYTE_ORDER_MAGIC:
                raise CodecError("bad pcapng byte-order magic", at + 8)
            interfaces = []
        (length,) = struct.unpack(order + "I", length_bytes)
        if length < 12 or length % 4 or length > MAX_FRAME + 1024:
            raise CodecError(f"bad pcapng block length {length}", at + 4)
        consumed = reader.offset - body_start
        body = reader.need(length - 12 - consumed, f"pcapng block of type {block_type}")
        reader.need(4, "the trailing block length")
        if block_type == PCAPNG_IDB:
            interfaces.append(_parse_idb(body, order, at))
        elif block_type in (PCAPNG_EPB, PCAPNG_SPB):
            number += 1
            yield _parse_packet_block(block_type, body, order, interfaces, number, at)
        head = reader.take(4, "a pcapng block type", eof_ok=True)
        if head is None:
            return
        (block_type,) = struct.unpack(order + "I", head)  # SHB's type reads the same both ways


def _options(body: bytes, order: str) -> Iterator[tuple[int, bytes]]:
    i = 0
    while i + 4 <= len(body):
        code, size = struct.unpack_from(order + "HH", body, i)
        if code == 0:
            return
        yield code, body[i + 4 : i + 4 + size]
        i += 4 + ((size + 3) & ~3)


def _parse_idb(body: bytes, order: str, at: int) -> _Interface:
    if len(body) < 8:
        raise CodecError("pcapng interface block shorter than 8 bytes", at + 8)
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body)
    tick, name = 1e-6, None
    for code, value in _options(body[8:], order):
        if code == PCAPNG_OPT_IF_TSRESOL and value:
            exponent = value[0] & 0x7F
            tick = 2.0 ** -exponent if value[0] & 0x80 else 10.0 ** -exponent
        elif code == PCAPNG_OPT_IF_NAME:
            name = value.rstrip(b"\0").decode("utf-8", "replace")
    return _Interface(linktype, tick, name, snaplen)


def _parse_packet_block(
    block_type: int, body: bytes, order: str, interfaces: list[_Interface], number: int,
    at: int,
) -> Record:
    if block_type == PCAPNG_SPB:
        if not interfaces or len(body) < 4:
            raise CodecError(f"pcapng simple packet block {number} without interface", at)
        iface = interfaces[0]
        (orig_len,) = struct.unpack_from(order + "I", body)
        size = min(orig_len, iface.snaplen or orig_len, len(body) - 4)
        return Record(number, 0.0, iface.linktype, body[4 : 4 + size], orig_len, iface.name)
    if len(body) < 20:
        raise CodecError(f"pcapng packet block {number} shorter than 20 bytes", at + 8)
    iface_id, high, low, cap_len, orig_len = struct.unpack_from(order + "IIIII", body)
    if iface_id >= len(interfaces):
        raise CodecError(
            f"pcapng packet block {number} names interface {iface_id}, "
            f"but only {len(interfaces)} are described",
            at + 8,
        )
    if 20 + cap_len > len(body):
        raise CodecError(f"pcapng packet block {number} overruns its block", at + 20)
    iface = interfaces[iface_id]
    return Record(number, ((high << 32) | low) * iface.tick, iface.linktype,
                  body[20 : 20 + cap_len], orig_len, iface.name)


# --- link layers --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Frame:
    """What the link layer says about a frame: the IPv4 packet (None if the frame
    holds something else), for Linux cooked captures the direction, and the IPv6
    packet (None if the frame holds something else)."""

    ipv4: bytes | None
    direction: Direction | None = None
    ipv6: bytes | None = None


def _by_ethertype(ethertype: int, payload: bytes, direction: Direction | None = None) -> Frame:
    return Frame(payload if ethertype == ETH_P_IP else None, direction,
                 payload if ethertype == ETH_P_IPV6 else None)


def _ethernet(data: bytes) -> Frame:
    offset = 12
    while offset + 2 <= len(data):
        ethertype = int.from_bytes(data[offset : offset + 2], "big")
        if ethertype in VLAN_ETHERTYPES:
            offset += 4
            continue
        return _by_ethertype(ethertype, data[offset + 2 :])
    raise CodecError(f"truncated Ethernet header: {len(data)} bytes", len(data))


def _linux_sll(data: bytes) -> Frame:
    if len(data) < 16:
        raise CodecError(f"truncated Linux cooked (SLL) header: {len(data)} bytes", len(data))
    direction = _direction(int.from_bytes(data[0:2], "big"))
    protocol = int.from_bytes(data[14:16], "big")
    return _by_ethertype(protocol, data[16:], direction)


def _linux_sll2(data: bytes) -> Frame:
    if len(data) < 20:
        raise CodecError(f"truncated Linux cooked (SLL2) header: {len(data)} bytes", len(data))
    protocol = int.from_bytes(data[0:2], "big")
    return _by_ethertype(protocol, data[20:], _direction(data[10]))


def _raw(data: bytes) -> Frame:
    version = data[0] >> 4 if data else 0
    return Frame(data if version == 4 else None, None, data if version == 6 else None)


def _ipv4(data: bytes) -> Frame:
    return Frame(data)


def _ipv6(data: bytes) -> Frame:
    return Frame(None, None, data)


def _direction(value: int) -> Direction | None:
    try:
        return Direction(value)
    except ValueError:
        return None


_LINK_LAYERS = {
    LinkType.ETHERNET: _ethernet,
    LinkType.RAW: _raw,
    LinkType.LINUX_SLL: _linux_sll,
    LinkType.IPV4: _ipv4,
    LinkType.IPV6: _ipv6,
    LinkType.LINUX_SLL2: _linux_sll2,
}


def frame(linktype: int, data: bytes) -> Frame:
    """Strip the link layer of ``data``; raises CodecError for an unknown linktype or
    a truncated link header."""
    parse = _LINK_LAYERS.get(linktype)  # type: ignore[call-overload]
    if parse is None:
        known = ", ".join(f"{t.value} ({t.name.lower()})" for t in LinkType)
        raise CodecError(f"linktype {linktype} is not supported; known: {known}", 0)
    result: Frame = parse(data)
    return result


def ipv4_payload(linktype: int, data: bytes) -> bytes | None:
    """The IPv4 packet inside a frame, or None if the frame carries something else."""
    return frame(linktype, data).ipv4


# --- writing ------------------------------------------------------------------------


class Writer:
    """Writes a classic pcap file (microsecond timestamps) to a binary stream."""

    def __init__(self, stream: BinaryIO, linktype: int = LinkType.RAW,
                 snaplen: int = 65535) -> None:
        self.stream = stream
        self.snaplen = snaplen
        stream.write(struct.pack("=IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, snaplen, linktype))

    def write(self, data: bytes, time: float) -> None:
        seconds = int(time)
        micros = round((time - seconds) * 1e6)
        if micros >= 1_000_000:
            seconds, micros = seconds + 1, micros - 1_000_000
        captured = data[: self.snaplen]
        self.stream.write(struct.pack("=IIII", seconds, micros, len(captured), len(data)))
        self.stream.write(captured)

    def flush(self) -> None:
        self.stream.flush()
