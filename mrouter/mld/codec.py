"""MLD wire codec: bytes to messages and back, with the IPv6 packet around them (pure).

Theory of operation: :func:`decode` reads one ICMPv6 message (what a raw ICMPv6 socket
delivers: the IPv6 payload after the extension headers) into the frozen dataclasses of
:mod:`mrouter.mld.messages`; :func:`encode` writes it back with the checksum filled in.
Unlike IGMP's, the ICMPv6 checksum covers a pseudo-header with the IPv6 source and
destination (RFC 4443 §2.3), so both take ``src`` and ``dst``. :func:`decode_packet`
and :func:`encode_packet` do the same for a whole IPv6 packet with its Hop-by-Hop
Router Alert (:mod:`mrouter.mld.ipv6`), as a capture or a packet socket gives it.

Decoding is total: for any bytes it returns a message or raises
:class:`~mrouter.errors.CodecError`, whose message says what was wrong and whose
``offset`` says at which byte. Every length is checked before it is used, so no
``struct.error`` or ``IndexError`` can escape. An ICMPv6 type that is not MLD
(neighbour discovery, MRD, echo...) decodes to
:class:`~mrouter.mld.messages.UnknownMessage` so that watchers can show it.

The version of a query is told apart as RFC 3810 §8.1 says: 24 octets is MLDv1, 28 or
more is MLDv2; 25 to 27 octets are to be ignored, which here is a ``CodecError``.

What round-trips: ``encode(decode(b)) == b`` for every message in canonical form: ICMPv6
code 0 and zero reserved fields in MLD messages (RFC 2710 §3 and RFC 3810 §5: "set to
zero by the sender, ignored by receivers", so not kept), a zero Maximum Response
Delay in MLDv1 reports and dones, and no bytes after the message (RFC 2710 §3 and
RFC 3810 §5.1.12/§5.2.11 allow trailing data, which is checksummed, then ignored, and
so not kept). Conversely ``decode(encode(m)) == m`` for every message :func:`encode`
accepts; it refuses messages that would decode as something else (an
:class:`UnknownMessage` with an MLD type).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address

from mrouter.errors import CodecError
from mrouter.igmp.ipv4 import checksum
from mrouter.igmp.wire import AddressListReaders, fast_constructor
from mrouter.mld.ipv6 import (
    HEADER_LEN,
    NEXT_HEADER_ICMPV6,
    ROUTER_ALERT_OPTIONS,
    IPv6Header,
    address,
    build_header,
    parse_header,
    pseudo_header,
)
from mrouter.mld.messages import (
    AddressRecord,
    MldMessage,
    MldType,
    Query,
    RecordType,
    UnknownMessage,
    V1Done,
    V1Report,
    V2Report,
)

__all__ = [
    "Packet",
    "checksum_ok",
    "decode",
    "decode_packet",
    "encode",
    "encode_ip",
    "encode_packet",
]

#: type, code, checksum, Maximum Response Code/Delay, reserved, multicast address: the
#: 24 octets of every MLDv1 message and the start of an MLDv2 query (RFC 2710 §3)
V1_HEADER = struct.Struct("!BBHHH16s")
#: MLDv2 query after the v1 part: Resv/S/QRV, QQIC, number of sources (RFC 3810 §5.1)
V2_QUERY_TAIL = struct.Struct("!BBH")
#: MLDv2 report: type, reserved, checksum, reserved, number of address records (§5.2)
V2_REPORT_HEADER = struct.Struct("!BBHHH")
#: address record: record type, aux data len (32-bit words), number of sources, address
RECORD_HEADER = struct.Struct("!BBH16s")

RECORD_HEADER_LEN = RECORD_HEADER.size
ICMPV6_HEADER_LEN = 4
V1_LENGTH = 24
V2_QUERY_MIN_LENGTH = 28
V2_REPORT_MIN_LENGTH = 8
S_FLAG = 0x08
QRV_MASK = 0x07
MAX_AUX_WORDS = 0xFF
MAX_COUNT = 0xFFFF

_RECORD_TYPES: dict[int, RecordType | int] = {int(t): t for t in RecordType}
_RECORD_TYPES.update({n: n for n in range(256) if n not in _RECORD_TYPES})
_NAMES = {MldType.QUERY: "query", MldType.V1_REPORT: "MLDv1 report",
          MldType.V1_DONE: "MLDv1 done", MldType.V2_REPORT: "MLDv2 report"}

Buffer = bytes | bytearray | memoryview

# Positional constructors that skip the frozen dataclass's per-field object.__setattr__
# (a sixth of decoding time here); equal to the class's own (tests/unit/test_mld_codec.py).
_new_query = fast_constructor(Query)
_new_v1_report = fast_constructor(V1Report)
_new_v1_done = fast_constructor(V1Done)
_new_record = fast_constructor(AddressRecord)
_new_v2_report = fast_constructor(V2Report)
_new_unknown = fast_constructor(UnknownMessage)


_read_addresses = AddressListReaders[bytes](lambda count: "16s" * count).__getitem__


def _sources(data: bytes, offset: int, count: int) -> tuple[IPv6Address, ...]:
    """``count`` addresses at ``offset`` (the caller has checked they fit)."""
    if count == 0:
        return ()
    return tuple(map(address, _read_addresses(count)(data, offset)))


@dataclass(frozen=True, slots=True)
class Packet:
    """A decoded IPv6 packet carrying MLD.

    ``checksum_ok`` is the ICMPv6 checksum's verdict (always True when decoded with
    ``verify_checksum=True``, since a bad one raises). IPv6 has no header checksum.
    """

    ip: IPv6Header
    mld: MldMessage
    checksum_ok: bool = True


_new_packet = fast_constructor(Packet)


# --- decoding -----------------------------------------------------------------------


def _sum_ok(pseudo: bytes, data: bytes) -> bool:
    # The pseudo-header is 40 bytes (even), so pseudo + data pads like data alone; see
    # mrouter.igmp.ipv4 for why one big integer mod 0xFFFF is the one's complement sum.
    whole = pseudo + data
    total = int.from_bytes(whole, "big") << (8 * (len(data) & 1))
    return total != 0 and total % 0xFFFF == 0


def checksum_ok(data: Buffer, src: IPv6Address, dst: IPv6Address) -> bool:
    """Whether the ICMPv6 message ``data`` from ``src`` to ``dst`` has a correct checksum."""
    data = bytes(data)
    return _sum_ok(pseudo_header(src, dst, len(data)), data)


def _truncated(kind: int, size: int, needed: int) -> CodecError:
    return CodecError(
        f"truncated {_NAMES[MldType(kind)]}: {size} bytes, it has at least {needed}", size
    )


def _decode_query(data: bytes) -> Query:
    size = len(data)
    if size < V1_LENGTH:
        raise _truncated(MldType.QUERY, size, V1_LENGTH)
    _, _, _, code, _, group = V1_HEADER.unpack_from(data)
    if size == V1_LENGTH:
        return _new_query(1, address(group), code, False, 0, 0, ())
    if size < V2_QUERY_MIN_LENGTH:
        raise CodecError(
            f"query of {size} bytes is neither MLDv1 (24 bytes) nor MLDv2 (28 or more); "
            "RFC 3810 §8.1 says to ignore it",
            V1_LENGTH,
        )
    flags, qqic, count = V2_QUERY_TAIL.unpack_from(data, V1_LENGTH)
    end = V2_QUERY_MIN_LENGTH + 16 * count
    if end > size:
        raise CodecError(
            f"truncated MLDv2 query: {count} sources need {end} bytes, the message has {size}",
            size,
        )
    return _new_query(
        2, address(group), code, bool(flags & S_FLAG), flags & QRV_MASK, qqic,
        _sources(data, V2_QUERY_MIN_LENGTH, count),
    )


def _decode_v1(data: bytes) -> V1Report | V1Done:
    size = len(data)
    if size < V1_LENGTH:
        raise _truncated(data[0], size, V1_LENGTH)
    group = address(data[8:24])
    return _new_v1_report(group) if data[0] == MldType.V1_REPORT else _new_v1_done(group)


def _decode_v2_report(data: bytes) -> V2Report:
    size = len(data)
    if size < V2_REPORT_MIN_LENGTH:
        raise _truncated(MldType.V2_REPORT, size, V2_REPORT_MIN_LENGTH)
    count = (data[6] << 8) | data[7]
    offset = V2_REPORT_MIN_LENGTH
    records = []
    for index in range(count):
        if offset + RECORD_HEADER_LEN > size:
            raise CodecError(
                f"truncated MLDv2 report: address record {index + 1} of {count} starts at "
                f"byte {offset}, but its 20-byte header does not fit in {size} bytes",
                offset,
            )
        rtype, aux_words, nsources, group = _unpack_record(data, offset)
        sources_at = offset + RECORD_HEADER_LEN
        aux_at = sources_at + 16 * nsources
        end = aux_at + 4 * aux_words
        if end > size:
            raise CodecError(
                f"address record {index + 1} of {count} overruns the message: {nsources} "
                f"sources and {aux_words} aux data words end at byte {end}, the message "
                f"has {size}",
                offset,
            )
        records.append(_new_record(
            _RECORD_TYPES[rtype], address(group),
            tuple(map(address, _read_addresses(nsources)(data, sources_at))) if nsources else (),
            data[aux_at:end] if aux_words else b"",
        ))
        offset = end
    return _new_v2_report(tuple(records))


_DECODERS: dict[int, Callable[[bytes], MldMessage]] = {
    MldType.QUERY: _decode_query,
    MldType.V1_REPORT: _decode_v1,
    MldType.V1_DONE: _decode_v1,
    MldType.V2_REPORT: _decode_v2_report,
}
_decoder = _DECODERS.get
_unpack_record = RECORD_HEADER.unpack_from
_from_bytes = int.from_bytes


def _decode_body(data: bytes) -> MldMessage:
    if len(data) < ICMPV6_HEADER_LEN:
        raise CodecError(
            f"truncated ICMPv6 message: {len(data)} bytes, every ICMPv6 message has at "
            f"least {ICMPV6_HEADER_LEN}",
            len(data),
        )
    decoder = _decoder(data[0])
    if decoder is None:
        return _new_unknown(data[0], data[1], data[4:])
    return decoder(data)


def decode(data: Buffer, src: IPv6Address | None = None, dst: IPv6Address | None = None,
           *, verify_checksum: bool = True) -> MldMessage:
    """Decode one ICMPv6 message (the IPv6 payload after any extension headers).

    Checking the checksum needs the IPv6 source and destination (the pseudo-header):
    raises :class:`CodecError` if the bytes are malformed, and if the checksum is wrong
    unless ``verify_checksum`` is False (then ``src`` and ``dst`` may be omitted; see
    :func:`checksum_ok`).
    """
    data = bytes(data)  # no copy if it is bytes already
    message = _decode_body(data)
    if verify_checksum:
        if src is None or dst is None:
            raise TypeError(
                "decode() needs src and dst to verify the ICMPv6 checksum (it covers the "
                "IPv6 pseudo-header); pass them, or verify_checksum=False"
            )
        pseudo = pseudo_header(src, dst, len(data))
        if not _sum_ok(pseudo, data):
            raise CodecError(_bad_checksum(pseudo, data), 2)
    return message


def _bad_checksum(pseudo: bytes, data: bytes) -> str:
    received = int.from_bytes(data[2:4], "big")
    expected = checksum(pseudo + data[:2] + b"\0\0" + data[4:])
    return (f"bad ICMPv6 checksum 0x{received:04x}, the message and its pseudo-header "
            f"sum to 0x{expected:04x}")


_ICMPV6_PSEUDO_TAIL = bytes((0, 0, 0, NEXT_HEADER_ICMPV6))  # zero (24 bits), next header


def decode_packet(packet: Buffer, *, verify_checksum: bool = True) -> Packet:
    """Decode a whole IPv6 packet carrying MLD (header, Hop-by-Hop options, ICMPv6).

    Bytes after the IPv6 payload length (link-layer padding) are ignored. Error offsets
    count from the start of the IPv6 packet. With ``verify_checksum`` a bad ICMPv6
    checksum raises; without, ``Packet.checksum_ok`` reports it.
    """
    packet = bytes(packet)  # no copy if it is bytes already
    ip = parse_header(packet)
    start = ip.header_len
    payload = packet[start : HEADER_LEN + ip.payload_len]
    try:
        message = _decode_body(payload)
    except CodecError as exc:
        raise CodecError(exc.reason, start + exc.offset) from None
    # _sum_ok() inlined (the hot path): the pseudo-header (RFC 8200 §8.1) is the
    # packet's own address bytes, the length and 58, all in whole 16-bit words, so its
    # part of the sum adds up without building it; never 0, as 58 is in it
    size = len(payload)
    total = (_from_bytes(packet[8:40], "big") + size + NEXT_HEADER_ICMPV6
             + (_from_bytes(payload, "big") << (8 * (size & 1))))
    ok = total % 0xFFFF == 0
    if verify_checksum and not ok:
        pseudo = packet[8:40] + size.to_bytes(4, "big") + _ICMPV6_PSEUDO_TAIL
        raise CodecError(_bad_checksum(pseudo, payload), start + 2)
    return _new_packet(ip, message, ok)


# --- encoding -----------------------------------------------------------------------


def _field(value: int, what: str, offset: int, limit: int = 0xFF) -> int:
    if not 0 <= value <= limit:
        raise CodecError(f"{what} {value} does not fit (0..{limit})", offset)
    return value


def _pack_addresses(addresses: tuple[IPv6Address, ...]) -> bytes:
    return b"".join([a.packed for a in addresses])


def _encode_query(msg: Query) -> bytes:
    code = _field(msg.max_resp_code, "Maximum Response Code", 4, 0xFFFF)
    head = V1_HEADER.pack(MldType.QUERY, 0, 0, code, 0, msg.group.packed)
    if msg.version == 1:
        if msg.s_flag or msg.qrv or msg.qqic or msg.sources:
            raise CodecError(
                "an MLDv1 query has no S flag, QRV, QQIC or sources; use version=2 for those",
                V1_LENGTH,
            )
        return head
    if msg.version != 2:
        raise CodecError(f"query version {msg.version} is not 1 or 2", 0)
    qrv = _field(msg.qrv, "QRV", 24, QRV_MASK)
    qqic = _field(msg.qqic, "QQIC", 25)
    count = _field(len(msg.sources), "number of sources", 26, MAX_COUNT)
    tail = V2_QUERY_TAIL.pack((S_FLAG if msg.s_flag else 0) | qrv, qqic, count)
    return head + tail + _pack_addresses(msg.sources)


def _encode_v1_report(msg: V1Report) -> bytes:
    return V1_HEADER.pack(MldType.V1_REPORT, 0, 0, 0, 0, msg.group.packed)


def _encode_v1_done(msg: V1Done) -> bytes:
    return V1_HEADER.pack(MldType.V1_DONE, 0, 0, 0, 0, msg.group.packed)


def _encode_record(record: AddressRecord, offset: int) -> bytes:
    if len(record.aux_data) % 4 or len(record.aux_data) > 4 * MAX_AUX_WORDS:
        raise CodecError(
            f"aux data of {len(record.aux_data)} bytes: it must be a multiple of 4 bytes "
            f"and at most {4 * MAX_AUX_WORDS} (Aux Data Len counts 32-bit words)",
            offset + 1,
        )
    head = RECORD_HEADER.pack(
        _field(int(record.record_type), "record type", offset),
        len(record.aux_data) // 4,
        _field(len(record.sources), "number of sources", offset + 2, MAX_COUNT),
        record.group.packed,
    )
    return head + _pack_addresses(record.sources) + bytes(record.aux_data)


def _encode_v2_report(msg: V2Report) -> bytes:
    count = _field(len(msg.records), "number of address records", 6, MAX_COUNT)
    parts = [V2_REPORT_HEADER.pack(MldType.V2_REPORT, 0, 0, 0, count)]
    offset = V2_REPORT_MIN_LENGTH
    for record in msg.records:
        part = _encode_record(record, offset)
        parts.append(part)
        offset += len(part)
    return b"".join(parts)


def _encode_unknown(msg: UnknownMessage) -> bytes:
    if msg.type in _DECODERS:
        raise CodecError(
            f"ICMPv6 type {msg.type} is MLD's {MldType(msg.type).name}: an UnknownMessage "
            "of that type would decode as the MLD message; build that instead",
            0,
        )
    head = bytes((_field(msg.type, "ICMPv6 type", 0), _field(msg.code, "ICMPv6 code", 1),
                  0, 0))
    return head + bytes(msg.body)


_ENCODERS: dict[type, Callable[[MldMessage], bytes]] = {
    Query: _encode_query,  # type: ignore[dict-item]
    V1Report: _encode_v1_report,  # type: ignore[dict-item]
    V1Done: _encode_v1_done,  # type: ignore[dict-item]
    V2Report: _encode_v2_report,  # type: ignore[dict-item]
    UnknownMessage: _encode_unknown,  # type: ignore[dict-item]
}


def encode(msg: MldMessage, src: IPv6Address, dst: IPv6Address) -> bytes:
    """Encode an MLD message, with the checksum over the pseudo-header for ``src`` and
    ``dst`` filled in.

    Raises :class:`CodecError` (offset = where the field would go) for a field that
    does not fit or a message that would not decode back to itself.
    """
    encoder = _ENCODERS.get(type(msg))
    if encoder is None:
        raise CodecError(f"cannot encode {type(msg).__name__}: not an MLD message", 0)
    try:
        data = encoder(msg)
        pseudo = pseudo_header(src, dst, len(data))
    except (struct.error, TypeError, ValueError, AttributeError) as exc:
        raise CodecError(f"cannot encode {msg!r}: {exc}", 0) from exc
    return data[:2] + checksum(pseudo + data).to_bytes(2, "big") + data[4:]


def encode_packet(
    msg: MldMessage,
    src: IPv6Address,
    dst: IPv6Address,
    *,
    hop_limit: int = 1,
    router_alert: bool = True,
    traffic_class: int = 0,
) -> bytes:
    """A whole IPv6 packet carrying ``msg``: hop limit 1 and a Hop-by-Hop Router Alert
    (value 0, MLD) by default, as RFC 2710 §3 and RFC 3810 §5 want."""
    icmp = encode(msg, src, dst)
    options = ROUTER_ALERT_OPTIONS if router_alert else None
    return build_header(src, dst, len(icmp), hop_limit=hop_limit,
                        traffic_class=traffic_class, hop_by_hop=options) + icmp


def encode_ip(ip: IPv6Header, icmp: bytes) -> bytes:
    """Write ``ip`` (all its fields, e.g. from :func:`decode_packet`) before the encoded
    ICMPv6 message ``icmp``, whose checksum must be for ``ip.src`` and ``ip.dst``; the
    payload length is computed afresh."""
    return build_header(
        ip.src, ip.dst, len(icmp), hop_limit=ip.hop_limit, traffic_class=ip.traffic_class,
        flow_label=ip.flow_label, hop_by_hop=ip.hop_by_hop,
    ) + icmp
