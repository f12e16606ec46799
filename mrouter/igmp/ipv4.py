"""IPv4 header with options, and the Internet checksum (pure).

Theory of operation: a raw IGMP socket (and a capture) gives whole IPv4 packets, so
the codec needs the IPv4 header (RFC 791 §3.1) and its options: IGMP is sent with
TTL 1 and the Router Alert option (RFC 2113, option type 148, length 4, value 0),
which routers may check (RFC 3376 §4). :func:`parse_header` validates the header
(version, IHL, total length, option framing) and raises :class:`CodecError` with the
byte offset of the first problem; :func:`build_header` writes one back, byte-exact
for any header :func:`parse_header` accepted.

The Internet checksum (RFC 1071) is the one's complement of the one's complement
sum of 16-bit words. Since 2**16 ≡ 1 (mod 2**16 - 1), that sum is the whole buffer
read as one big-endian integer, reduced modulo 0xFFFF; ``int.from_bytes`` does that
in C, which is what makes :func:`checksum` fast in pure Python. The only subtlety
is one's complement's two zeros: a non-zero buffer whose sum is ≡ 0 sums to 0xFFFF.

Addresses are :class:`IPv4Address`; :func:`address` builds them from 32-bit ints
through a small bounded cache, because IGMP traffic repeats the same few groups and
sources and ``IPv4Address(int)`` costs more than decoding the rest of a header.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from enum import IntEnum
from ipaddress import IPv4Address
from typing import NamedTuple, NoReturn

from mrouter.errors import CodecError

IP_VERSION = 4
MIN_HEADER_LEN = 20
MAX_HEADER_LEN = 60
PROTO_IGMP = 2

#: version/IHL, TOS, total length, identification, flags/fragment offset, TTL,
#: protocol, header checksum, source, destination (RFC 791 §3.1)
HEADER = struct.Struct("!BBHHHBBHII")

FLAG_DF = 0x4000
FLAG_MF = 0x2000
FRAGMENT_OFFSET_MASK = 0x1FFF


class OptionType(IntEnum):
    """IPv4 option types this code cares about (copy bit included)."""

    END_OF_LIST = 0
    NO_OPERATION = 1
    ROUTER_ALERT = 148  # RFC 2113: copied, class 0, number 20


#: The Router Alert option as IGMP sends it: type 148, length 4, value 0 (RFC 2113).
ROUTER_ALERT_OPTION = bytes((OptionType.ROUTER_ALERT, 4, 0, 0))


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of ``data``: the value to put in the checksum
    field (zeroed while computing). Over data that holds a correct checksum it is 0."""
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8  # an odd byte is padded with a zero byte
    total = value % 0xFFFF
    if total == 0 and value:
        total = 0xFFFF  # one's complement: a non-zero sum that wraps is "minus zero"
    return ~total & 0xFFFF


class _AddressCache(dict[int, IPv4Address]):
    """``IPv4Address`` by 32-bit value; a hit is a plain C dict lookup, so
    ``map(ADDRESSES.__getitem__, values)`` builds a source list without Python calls."""

    limit = 4096

    def __missing__(self, value: int) -> IPv4Address:
        if len(self) >= self.limit:
            self.clear()  # bounded: forget everything rather than track recency
        made = self[value] = IPv4Address(value)
        return made


ADDRESSES = _AddressCache()
address = ADDRESSES.__getitem__
"""``address(value)`` is ``IPv4Address(value)``, cached (see :class:`_AddressCache`)."""


def iter_options(options: bytes, base: int = MIN_HEADER_LEN) -> Iterator[tuple[int, bytes]]:
    """Yield ``(type, data)`` for each option; ``data`` excludes type and length bytes.

    Stops at End of Option List (the rest is padding). ``base`` is the offset of the
    options in the packet, used in error offsets. Raises :class:`CodecError` on an
    option whose length is missing, below 2 or past the end of the header.
    """
    i, end = 0, len(options)
    while i < end:
        kind = options[i]
        if kind == OptionType.END_OF_LIST:
            return
        if kind == OptionType.NO_OPERATION:
            i += 1
            continue
        if i + 1 >= end:
            raise CodecError(
                f"bad IP options: option {kind} has no length byte before the end of the header",
                base + i,
            )
        length = options[i + 1]
        if length < 2 or i + length > end:
            raise CodecError(
                f"bad IP options: option {kind} has length {length}, but only "
                f"{end - i} header bytes are left (and the minimum is 2)",
                base + i + 1,
            )
        yield kind, options[i + 2 : i + length]
        i += length


class IPv4Header(NamedTuple):
    """An IPv4 header as received: ``options`` are the raw option bytes (padding
    included), ``header_len`` and ``total_len`` are in bytes, ``router_alert`` says
    whether the options hold Router Alert (RFC 2113), ``checksum_ok`` whether the
    header checksum was correct.

    Immutable (a named tuple: the decoder builds one per packet, and a tuple is
    built four times faster than a frozen dataclass).
    """

    src: IPv4Address
    dst: IPv4Address
    ttl: int
    tos: int
    protocol: int
    ident: int
    flags_fragment: int  # flags (3 bits) and fragment offset (13 bits) as on the wire
    options: bytes
    router_alert: bool
    header_len: int
    total_len: int
    header_checksum: int  # as received; build_header() computes it afresh
    checksum_ok: bool

    @property
    def dont_fragment(self) -> bool:
        return bool(self.flags_fragment & FLAG_DF)

    @property
    def is_fragment(self) -> bool:
        return bool(self.flags_fragment & (FLAG_MF | FRAGMENT_OFFSET_MASK))


def sum_ok(data: bytes) -> bool:
    """Whether ``data``, checksum field included, sums to one's complement zero
    (RFC 1071): the integer is a non-zero multiple of 0xFFFF."""
    total = int.from_bytes(data, "big")
    if len(data) & 1:
        total <<= 8
    return total != 0 and total % 0xFFFF == 0


def has_router_alert(options: bytes, base: int = MIN_HEADER_LEN) -> bool:
    """Whether ``options`` hold Router Alert; validates their framing (CodecError)."""
    if options == ROUTER_ALERT_OPTION:  # what every IGMP sender puts there
        return True
    found = False
    for kind, _ in iter_options(options, base):
        found = found or kind == OptionType.ROUTER_ALERT
    return found


_unpack_header = HEADER.unpack_from
_from_bytes = int.from_bytes


def parse_header(packet: bytes) -> IPv4Header:
    """Parse and validate the IPv4 header at the start of ``packet``.

    Checks version, header length, total length against the buffer (a longer buffer,
    e.g. Ethernet padding, is fine: the payload is ``packet[header_len:total_len]``)
    and option framing. The header checksum is checked and reported in
    ``checksum_ok``; the caller decides whether a bad one is fatal.
    """
    size = len(packet)
    if size < MIN_HEADER_LEN:
        raise CodecError(
            f"truncated IPv4 header: {size} bytes, a header needs at least {MIN_HEADER_LEN}",
            size,
        )
    (ver_ihl, tos, total_len, ident, flags_fragment, ttl, protocol, hdr_sum,
     src, dst) = _unpack_header(packet)
    header_len = (ver_ihl & 0x0F) << 2
    if ver_ihl >> 4 != IP_VERSION or not MIN_HEADER_LEN <= header_len <= total_len <= size:
        _header_error(ver_ihl, header_len, total_len, size)
    if header_len == MIN_HEADER_LEN:
        options = b""
        router_alert = False
    else:
        options = packet[MIN_HEADER_LEN:header_len]
        router_alert = has_router_alert(options)
    return tuple.__new__(IPv4Header, (  # what IPv4Header._make does, minus its checks
        address(src), address(dst), ttl, tos, protocol, ident, flags_fragment, options,
        router_alert, header_len, total_len, hdr_sum,
        # sum_ok() inlined (this is the hot path): a header is a whole number of words
        _from_bytes(packet[:header_len], "big") % 0xFFFF == 0 and ver_ihl != 0,
    ))


def _header_error(ver_ihl: int, header_len: int, total_len: int, size: int) -> NoReturn:
    if ver_ihl >> 4 != IP_VERSION:
        raise CodecError(f"not an IPv4 packet: IP version {ver_ihl >> 4}", 0)
    if header_len < MIN_HEADER_LEN:
        raise CodecError(
            f"bad IP header length {header_len} bytes (IHL {ver_ihl & 0x0F}); "
            f"the minimum is {MIN_HEADER_LEN} (IHL 5)",
            0,
        )
    if header_len > size:
        raise CodecError(
            f"truncated IPv4 header: IHL says {header_len} bytes, only {size} present", size
        )
    if total_len < header_len:
        raise CodecError(
            f"bad IP total length {total_len}: shorter than the {header_len}-byte header", 2
        )
    raise CodecError(
        f"truncated IPv4 packet: total length says {total_len} bytes, only {size} present",
        size,
    )


def build_header(
    src: IPv4Address,
    dst: IPv4Address,
    payload_len: int,
    *,
    ttl: int = 1,
    tos: int = 0xC0,
    protocol: int = PROTO_IGMP,
    ident: int = 0,
    flags_fragment: int = 0,
    options: bytes = ROUTER_ALERT_OPTION,
) -> bytes:
    """An IPv4 header (checksum computed) for a payload of ``payload_len`` bytes.

    ``options`` must be a multiple of 4 bytes and at most 40 (pad with End of List).
    """
    if len(options) % 4 or len(options) > MAX_HEADER_LEN - MIN_HEADER_LEN:
        raise CodecError(
            f"IP options of {len(options)} bytes: they must be padded to a multiple of 4 "
            f"and fit in {MAX_HEADER_LEN - MIN_HEADER_LEN} bytes",
            MIN_HEADER_LEN,
        )
    header_len = MIN_HEADER_LEN + len(options)
    total_len = header_len + payload_len
    if total_len > 0xFFFF:
        raise CodecError(f"IPv4 packet of {total_len} bytes exceeds 65535", 2)
    try:
        head = HEADER.pack(
            (IP_VERSION << 4) | (header_len // 4), tos, total_len, ident, flags_fragment,
            ttl, protocol, 0, int(src), int(dst),
        ) + options
    except struct.error as exc:
        raise CodecError(f"IPv4 header field out of range: {exc}", 0) from exc
    hdr_sum = checksum(head)
    return head[:10] + hdr_sum.to_bytes(2, "big") + head[12:]
