"""IGMP wire codec: bytes to messages and back, with the IPv4 packet around them (pure).

Theory of operation: :func:`decode` reads one IGMP message (the IP payload) into the
frozen dataclasses of :mod:`mrouter.igmp.messages`; :func:`encode` writes it back with
the checksum filled in. :func:`decode_packet` and :func:`encode_packet` do the same for
a whole IPv4 packet (what a raw IGMP socket delivers and wants with ``IP_HDRINCL``).

Decoding is total: for any bytes it returns a message or raises
:class:`~mrouter.errors.CodecError`, whose message says what was wrong and whose
``offset`` says at which byte. Every length is checked before it is used, so no
``struct.error`` or ``IndexError`` can escape. An IGMP type this codec does not know
(mtrace, DVMRP, MRD...) decodes to :class:`~mrouter.igmp.messages.UnknownMessage`
so that watchers can show it.

The version of a query is told apart as RFC 3376 §7.1 says: 8 bytes with Max Resp
Code 0 is v1, 8 bytes with a non-zero code is v2, 12 bytes or more is v3. Queries of
9 to 11 bytes are to be ignored (§7.1), which here is a ``CodecError``.

What round-trips: ``encode(decode(b)) == b`` for every message in canonical form:
no bytes after the message (IGMPv2 §2.5 and IGMPv3 §4.1.10 allow trailing "additional
data", which is checksummed, then ignored, and so not kept), zero reserved bits in a v3
query, a zero byte 1 in a v1 report. Conversely ``decode(encode(m)) == m`` for every
message :func:`encode` accepts; it refuses messages that would decode as something
else (a v2 query with Max Resp Code 0 is a v1 query on the wire).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, TypeVar

from mrouter.errors import CodecError
from mrouter.igmp.ipv4 import (
    FLAG_MF,
    FRAGMENT_OFFSET_MASK,
    PROTO_IGMP,
    ROUTER_ALERT_OPTION,
    IPv4Header,
    address,
    build_header,
    checksum,
    parse_header,
    sum_ok,
)
from mrouter.igmp.messages import (
    GroupRecord,
    IgmpMessage,
    IgmpType,
    Query,
    RecordType,
    UnknownMessage,
    V1Report,
    V2Leave,
    V2Report,
    V3Report,
)
from mrouter.igmp.wire import AddressListReaders, fast_constructor

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = [
    "Packet",
    "checksum",
    "checksum_ok",
    "decode",
    "decode_packet",
    "encode",
    "encode_packet",
]

#: type, code (Max Resp Code), checksum, group: the 8 bytes every IGMP message starts with
HEADER = struct.Struct("!BBHI")
#: v3 query after the common header: Resv/S/QRV, QQIC, number of sources (RFC 3376 §4.1)
V3_QUERY_TAIL = struct.Struct("!BBH")
#: v3 report: type, reserved, checksum, reserved, number of group records (RFC 3376 §4.2)
V3_REPORT_HEADER = struct.Struct("!BBHHH")
#: group record: record type, aux data len (32-bit words), number of sources, group
RECORD_HEADER = struct.Struct("!BBHI")

MIN_LENGTH = 8
V3_QUERY_MIN_LENGTH = 12
S_FLAG = 0x08
QRV_MASK = 0x07
MAX_AUX_WORDS = 0xFF
MAX_COUNT = 0xFFFF
FRAGMENTED = FLAG_MF | FRAGMENT_OFFSET_MASK

_RECORD_TYPES: dict[int, RecordType | int] = {int(t): t for t in RecordType}
_RECORD_TYPES.update({n: n for n in range(256) if n not in _RECORD_TYPES})

_T = TypeVar("_T", bound="DataclassInstance")
Buffer = bytes | bytearray | memoryview




_new_query = fast_constructor(Query)
_new_v1_report = fast_constructor(V1Report)
_new_v2_report = fast_constructor(V2Report)
_new_v2_leave = fast_constructor(V2Leave)
_new_record = fast_constructor(GroupRecord)
_new_v3_report = fast_constructor(V3Report)
_new_unknown = fast_constructor(UnknownMessage)

_read_addresses = AddressListReaders[int](lambda count: f"!{count}I").__getitem__


def _sources(data: bytes, offset: int, count: int) -> tuple[IPv4Address, ...]:
    """``count`` addresses at ``offset`` (the caller has checked they fit)."""
    if count == 0:
        return ()
    return tuple(map(address, _read_addresses(count)(data, offset)))


@dataclass(frozen=True, slots=True)
class Packet:
    """A decoded IPv4 packet carrying IGMP.

    ``checksum_ok`` is the IGMP checksum's verdict (always True when decoded with
    ``verify_checksum=True``, since a bad one raises); ``ip.checksum_ok`` is the IPv4
    header checksum's.
    """

    ip: IPv4Header
    igmp: IgmpMessage
    checksum_ok: bool = True


_new_packet = fast_constructor(Packet)


# --- decoding -----------------------------------------------------------------------


def checksum_ok(data: bytes) -> bool:
    """Whether the IGMP message ``data`` (the whole IP payload) has a correct checksum."""
    return sum_ok(data)


def _decode_query(data: bytes, code: int, group: int) -> Query:
    size = len(data)
    if size == MIN_LENGTH:
        # RFC 3376 §7.1: an 8-byte query is v1 if Max Resp Code is 0, v2 otherwise.
        return _new_query(2 if code else 1, address(group), code, False, 0, 0, ())
    if size < V3_QUERY_MIN_LENGTH:
        raise CodecError(
            f"query of {size} bytes is neither v1/v2 (8 bytes) nor v3 (12 or more); "
            "RFC 3376 §7.1 says to ignore it",
            MIN_LENGTH,
        )
    flags, qqic, count = _unpack_v3_query_tail(data, MIN_LENGTH)
    end = V3_QUERY_MIN_LENGTH + 4 * count
    if end > size:
        raise CodecError(
            f"truncated v3 query: {count} sources need {end} bytes, the message has {size}",
            size,
        )
    return _new_query(
        3, address(group), code, bool(flags & S_FLAG), flags & QRV_MASK, qqic,
        _sources(data, V3_QUERY_MIN_LENGTH, count),
    )


def _decode_v1_report(data: bytes, code: int, group: int) -> V1Report:
    return _new_v1_report(address(group))


def _decode_v2_report(data: bytes, code: int, group: int) -> V2Report:
    return _new_v2_report(address(group), code)


def _decode_v2_leave(data: bytes, code: int, group: int) -> V2Leave:
    return _new_v2_leave(address(group), code)


def _decode_v3_report(data: bytes, code: int, group: int) -> V3Report:
    # In a v3 report the 4 bytes after the checksum are Reserved (16) and the number of
    # group records (16), not a group: split the "group" the common header read.
    reserved, count = group >> 16, group & 0xFFFF
    size = len(data)
    offset = MIN_LENGTH
    records = []
    for index in range(count):
        if offset + 8 > size:
            raise CodecError(
                f"truncated v3 report: group record {index + 1} of {count} starts at byte "
                f"{offset}, but its 8-byte header does not fit in {size} bytes",
                offset,
            )
        rtype, aux_words, nsources, rgroup = _unpack_record(data, offset)
        sources_at = offset + 8
        aux_at = sources_at + 4 * nsources
        end = aux_at + 4 * aux_words
        if end > size:
            raise CodecError(
                f"group record {index + 1} of {count} overruns the message: {nsources} "
                f"sources and {aux_words} aux data words end at byte {end}, the message "
                f"has {size}",
                offset,
            )
        records.append(_new_record(
            _RECORD_TYPES[rtype], address(rgroup),
            tuple(map(address, _read_addresses(nsources)(data, sources_at))) if nsources else (),
            data[aux_at:end] if aux_words else b"",
        ))
        offset = end
    return _new_v3_report(tuple(records), reserved)


def _decode_unknown(data: bytes, code: int, group: int) -> UnknownMessage:
    return _new_unknown(data[0], code, data[4:])


_DECODERS: dict[int, Callable[[bytes, int, int], IgmpMessage]] = {
    IgmpType.MEMBERSHIP_QUERY: _decode_query,
    IgmpType.V1_MEMBERSHIP_REPORT: _decode_v1_report,
    IgmpType.V2_MEMBERSHIP_REPORT: _decode_v2_report,
    IgmpType.V2_LEAVE_GROUP: _decode_v2_leave,
    IgmpType.V3_MEMBERSHIP_REPORT: _decode_v3_report,
}
_unpack_header = HEADER.unpack_from
_unpack_v3_query_tail = V3_QUERY_TAIL.unpack_from
_unpack_record = RECORD_HEADER.unpack_from
_decoder = _DECODERS.get
_from_bytes = int.from_bytes


def _decode_body(data: bytes) -> IgmpMessage:
    if len(data) < MIN_LENGTH:
        raise CodecError(
            f"truncated IGMP message: {len(data)} bytes, every IGMP message has at least "
            f"{MIN_LENGTH}",
            len(data),
        )
    kind, code, _, group = _unpack_header(data)
    return _decoder(kind, _decode_unknown)(data, code, group)


def decode(data: Buffer, *, verify_checksum: bool = True) -> IgmpMessage:
    """Decode one IGMP message (the whole IP payload, checksum included).

    Raises :class:`CodecError` if the bytes are malformed, and if the checksum is
    wrong unless ``verify_checksum`` is False (then see :func:`checksum_ok`).
    """
    data = bytes(data)  # no copy if it is bytes already
    message = _decode_body(data)
    if verify_checksum and not sum_ok(data):
        raise CodecError(_bad_checksum(data), 2)
    return message


def _bad_checksum(data: bytes) -> str:
    received = int.from_bytes(data[2:4], "big")
    expected = checksum(data[:2] + b"\0\0" + data[4:])
    return f"bad IGMP checksum 0x{received:04x}, the message sums to 0x{expected:04x}"


def decode_packet(ip_bytes: Buffer, *, verify_checksum: bool = True) -> Packet:
    """Decode a whole IPv4 packet carrying IGMP (header, options, IGMP message).

    Bytes after the IP total length (link-layer padding) are ignored. Error offsets
    count from the start of the IP packet. With ``verify_checksum`` a bad IPv4 header
    checksum or IGMP checksum raises; without, ``Packet.ip.checksum_ok`` and
    ``Packet.checksum_ok`` report them.
    """
    ip_bytes = bytes(ip_bytes)  # no copy if it is bytes already
    ip = parse_header(ip_bytes)
    if ip.protocol != PROTO_IGMP:
        raise CodecError(f"IP protocol {ip.protocol} is not IGMP ({PROTO_IGMP})", 9)
    if verify_checksum and not ip.checksum_ok:
        raise CodecError(f"bad IPv4 header checksum 0x{ip.header_checksum:04x}", 10)
    if ip.flags_fragment & FRAGMENTED:
        raise CodecError(
            "fragmented IPv4 packet: IGMP is not fragmented in practice; "
            "reassemble it first (a raw socket does)",
            6,
        )
    start = ip.header_len
    payload = ip_bytes[start:ip.total_len]
    try:
        message = _decode_body(payload)
    except CodecError as exc:
        raise CodecError(exc.reason, start + exc.offset) from None
    # sum_ok() inlined (the hot path); an odd length is padded with a zero byte
    total = _from_bytes(payload, "big") << (8 * (len(payload) & 1))
    ok = total % 0xFFFF == 0 and total != 0
    if verify_checksum and not ok:
        raise CodecError(_bad_checksum(payload), start + 2)
    return _new_packet(ip, message, ok)


# --- encoding -----------------------------------------------------------------------


def _byte(value: int, what: str, offset: int, limit: int = 0xFF) -> int:
    if not 0 <= value <= limit:
        raise CodecError(f"{what} {value} does not fit (0..{limit})", offset)
    return value


def _with_checksum(head: bytes, rest: bytes = b"") -> bytes:
    data = head + rest
    return data[:2] + checksum(data).to_bytes(2, "big") + data[4:]


def _pack_addresses(addresses: tuple[IPv4Address, ...]) -> bytes:
    return b"".join([a.packed for a in addresses])


def _encode_query(msg: Query) -> bytes:
    code = _byte(msg.max_resp_code, "Max Resp Code", 1)
    head = HEADER.pack(IgmpType.MEMBERSHIP_QUERY, code, 0, int(msg.group))
    if msg.version in (1, 2):
        if msg.s_flag or msg.qrv or msg.qqic or msg.sources:
            raise CodecError(
                f"a v{msg.version} query has no S flag, QRV, QQIC or sources; "
                "use version=3 for those",
                MIN_LENGTH,
            )
        if (msg.version == 1) != (code == 0):
            raise CodecError(
                f"a v{msg.version} query with Max Resp Code {code} would decode as "
                f"v{2 if code else 1} (RFC 3376 §7.1): v1 queries carry 0, v2 non-zero",
                1,
            )
        return _with_checksum(head)
    if msg.version != 3:
        raise CodecError(f"query version {msg.version} is not 1, 2 or 3", 0)
    qrv = _byte(msg.qrv, "QRV", 8, QRV_MASK)
    qqic = _byte(msg.qqic, "QQIC", 9)
    count = _byte(len(msg.sources), "number of sources", 10, MAX_COUNT)
    tail = V3_QUERY_TAIL.pack((S_FLAG if msg.s_flag else 0) | qrv, qqic, count)
    return _with_checksum(head, tail + _pack_addresses(msg.sources))


def _encode_v1_report(msg: V1Report) -> bytes:
    return _with_checksum(HEADER.pack(IgmpType.V1_MEMBERSHIP_REPORT, 0, 0, int(msg.group)))


def _encode_v2(kind: IgmpType, group: IPv4Address, code: int) -> bytes:
    return _with_checksum(HEADER.pack(kind, _byte(code, "Max Resp Code", 1), 0, int(group)))


def _encode_v2_report(msg: V2Report) -> bytes:
    return _encode_v2(IgmpType.V2_MEMBERSHIP_REPORT, msg.group, msg.max_resp_code)


def _encode_v2_leave(msg: V2Leave) -> bytes:
    return _encode_v2(IgmpType.V2_LEAVE_GROUP, msg.group, msg.max_resp_code)


def _encode_record(record: GroupRecord, offset: int) -> bytes:
    if len(record.aux_data) % 4 or len(record.aux_data) > 4 * MAX_AUX_WORDS:
        raise CodecError(
            f"aux data of {len(record.aux_data)} bytes: it must be a multiple of 4 bytes "
            f"and at most {4 * MAX_AUX_WORDS} (aux data len counts 32-bit words)",
            offset + 1,
        )
    head = RECORD_HEADER.pack(
        _byte(int(record.record_type), "record type", offset),
        len(record.aux_data) // 4,
        _byte(len(record.sources), "number of sources", offset + 2, MAX_COUNT),
        int(record.group),
    )
    return head + _pack_addresses(record.sources) + record.aux_data


def _encode_v3_report(msg: V3Report) -> bytes:
    count = _byte(len(msg.records), "number of group records", 6, MAX_COUNT)
    head = V3_REPORT_HEADER.pack(
        IgmpType.V3_MEMBERSHIP_REPORT, 0, 0, _byte(msg.reserved, "reserved", 4, 0xFFFF), count,
    )
    parts = []
    offset = MIN_LENGTH
    for record in msg.records:
        part = _encode_record(record, offset)
        parts.append(part)
        offset += len(part)
    return _with_checksum(head, b"".join(parts))


def _encode_unknown(msg: UnknownMessage) -> bytes:
    if msg.type in _DECODERS:
        # It would decode as that type, not as itself: the round trip must hold.
        known = IgmpType(msg.type)
        raise CodecError(
            f"UnknownMessage with type {msg.type:#04x}, which is a known type "
            f"({known.name}): build that message's own class instead", 0)
    if len(msg.body) < MIN_LENGTH - 4:
        raise CodecError(
            f"IGMP body of {len(msg.body)} bytes: a message has at least {MIN_LENGTH} bytes, "
            f"so the body needs {MIN_LENGTH - 4}",
            4,
        )
    head = bytes((_byte(msg.type, "IGMP type", 0), _byte(msg.code, "IGMP code", 1), 0, 0))
    return _with_checksum(head, msg.body)


def _encoder(msg: IgmpMessage) -> Callable[[], bytes] | None:
    """The encoder of ``msg``'s exact class (a subclass is not an IGMP message here)."""
    cls = type(msg)
    if cls is Query and isinstance(msg, Query):
        return lambda: _encode_query(msg)
    if cls is V1Report and isinstance(msg, V1Report):
        return lambda: _encode_v1_report(msg)
    if cls is V2Report and isinstance(msg, V2Report):
        return lambda: _encode_v2_report(msg)
    if cls is V2Leave and isinstance(msg, V2Leave):
        return lambda: _encode_v2_leave(msg)
    if cls is V3Report and isinstance(msg, V3Report):
        return lambda: _encode_v3_report(msg)
    if cls is UnknownMessage and isinstance(msg, UnknownMessage):
        return lambda: _encode_unknown(msg)
    return None


def encode(msg: IgmpMessage) -> bytes:
    """Encode an IGMP message, checksum filled in.

    Raises :class:`CodecError` (offset = where the field would go) for a field that
    does not fit or a message that would not decode back to itself.
    """
    encoder = _encoder(msg)
    if encoder is None:
        raise CodecError(f"cannot encode {type(msg).__name__}: not an IGMP message", 0)
    try:
        return encoder()
    except (struct.error, TypeError, ValueError, AttributeError) as exc:
        raise CodecError(f"cannot encode {msg!r}: {exc}", 0) from exc


def encode_packet(
    msg: IgmpMessage,
    src: IPv4Address,
    dst: IPv4Address,
    *,
    ttl: int = 1,
    router_alert: bool = True,
    tos: int = 0xC0,
) -> bytes:
    """A whole IPv4 packet carrying ``msg``: TTL 1 and Router Alert by default, as
    RFC 2236 §2 and RFC 3376 §4 want, TOS 0xC0 (internetwork control) like Linux."""
    igmp = encode(msg)
    options = ROUTER_ALERT_OPTION if router_alert else b""
    return build_header(src, dst, len(igmp), ttl=ttl, tos=tos, options=options) + igmp


def encode_ip(ip: IPv4Header, igmp: bytes) -> bytes:
    """Write ``ip`` (all its fields, e.g. from :func:`decode_packet`) before ``igmp``;
    the header checksum and total length are computed afresh."""
    return build_header(
        ip.src, ip.dst, len(igmp), ttl=ip.ttl, tos=ip.tos, protocol=ip.protocol,
        ident=ip.ident, flags_fragment=ip.flags_fragment, options=ip.options,
    ) + igmp
