"""IPv6 header with a Hop-by-Hop Router Alert, and the ICMPv6 pseudo-header (pure).

Theory of operation: MLD is sent with hop limit 1 and a Hop-by-Hop Options header
(RFC 8200 §4.3) holding the Router Alert option (RFC 2711: type 5, length 2, value 0 =
"the datagram contains an MLD message"), padded to 8 octets with a PadN, which is what
Linux sends: ``3a 00 05 02 00 00 01 00``. :func:`parse_header` validates the fixed
header (RFC 8200 §3) and that one extension header, walking its options, and raises
:class:`CodecError` with the byte offset of the first problem; :func:`build_header`
writes one back, byte-exact for any header :func:`parse_header` accepted.

A Hop-by-Hop header is the only extension header taken here: RFC 8200 §4.1 puts it
first, and MLD carries no other. Any other next header (a Fragment header included: MLD
is never fragmented) is a ``CodecError``.

The ICMPv6 checksum (RFC 4443 §2.3) covers a pseudo-header (RFC 8200 §8.1: source,
destination, upper-layer length, next header 58) before the message; it is the IPv4
Internet checksum over both, so :func:`mrouter.igmp.ipv4.checksum` computes it.

Addresses are :class:`IPv6Address`; :func:`address` builds them from 16 packed bytes
through a small bounded cache, as the IGMP codec does for IPv4.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from enum import IntEnum
from ipaddress import IPv6Address
from typing import NamedTuple, NoReturn

from mrouter.errors import CodecError

IP_VERSION = 6
HEADER_LEN = 40
NEXT_HEADER_HOP_BY_HOP = 0
NEXT_HEADER_FRAGMENT = 44
NEXT_HEADER_ICMPV6 = 58
MAX_PAYLOAD_LEN = 0xFFFF

#: version/traffic class/flow label, payload length, next header, hop limit (RFC 8200 §3);
#: the two addresses follow as 16 bytes each
HEADER = struct.Struct("!IHBB")

#: RFC 2711 §2.1: Router Alert value 0, "Datagram contains a Multicast Listener
#: Discovery message".
ROUTER_ALERT_MLD = 0


class OptionType(IntEnum):
    """Hop-by-Hop option types this code cares about (RFC 8200 §4.2, RFC 2711)."""

    PAD1 = 0
    PADN = 1
    ROUTER_ALERT = 5


#: The Hop-by-Hop options MLD is sent with: Router Alert (MLD) and a 2-byte PadN, so that
#: with the next header and length bytes the extension header is 8 octets.
ROUTER_ALERT_OPTIONS = bytes((OptionType.ROUTER_ALERT, 2, 0, ROUTER_ALERT_MLD,
                              OptionType.PADN, 0))


#: the whole Hop-by-Hop header of an MLD packet: next header ICMPv6, length 0 (8 octets)
_MLD_HOP_BY_HOP = bytes((NEXT_HEADER_ICMPV6, 0)) + ROUTER_ALERT_OPTIONS


class _AddressCache(dict[bytes, IPv6Address]):
    """``IPv6Address`` by its 16 packed bytes; a hit is a plain C dict lookup."""

    limit = 4096

    def __missing__(self, packed: bytes) -> IPv6Address:
        if len(self) >= self.limit:
            self.clear()  # bounded: forget everything rather than track recency
        made = self[packed] = IPv6Address(packed)
        return made


ADDRESSES = _AddressCache()
address = ADDRESSES.__getitem__
"""``address(packed)`` is ``IPv6Address(packed)`` for 16 bytes, cached."""


def pseudo_header(src: IPv6Address, dst: IPv6Address, length: int,
                  next_header: int = NEXT_HEADER_ICMPV6) -> bytes:
    """The RFC 8200 §8.1 pseudo-header the ICMPv6 checksum covers (40 bytes)."""
    return src.packed + dst.packed + struct.pack("!I3xB", length, next_header)


def iter_options(options: bytes, base: int = HEADER_LEN + 2) -> Iterator[tuple[int, bytes]]:
    """Yield ``(type, data)`` for each Hop-by-Hop option, Pad1 and PadN included.

    ``base`` is the offset of the options in the packet, used in error offsets. Raises
    :class:`CodecError` on an option whose length byte is missing or runs past the end.
    """
    i, end = 0, len(options)
    while i < end:
        kind = options[i]
        if kind == OptionType.PAD1:
            yield kind, b""
            i += 1
            continue
        if i + 1 >= end:
            raise CodecError(
                f"bad Hop-by-Hop options: option {kind} has no length byte before the end "
                "of the header",
                base + i,
            )
        length = options[i + 1]
        if i + 2 + length > end:
            raise CodecError(
                f"bad Hop-by-Hop options: option {kind} has length {length}, but only "
                f"{end - i - 2} bytes are left in the header",
                base + i + 1,
            )
        yield kind, options[i + 2 : i + 2 + length]
        i += 2 + length


def router_alert_value(options: bytes, base: int = HEADER_LEN + 2) -> int | None:
    """The value of the first Router Alert option in ``options``, or None; validates the
    framing of every option, and that a Router Alert has length 2 (RFC 2711 §2.1)."""
    if options == ROUTER_ALERT_OPTIONS:  # what every MLD sender puts there
        return ROUTER_ALERT_MLD
    found: int | None = None
    offset = base
    for kind, data in iter_options(options, base):
        if kind == OptionType.ROUTER_ALERT:
            if len(data) != 2:
                raise CodecError(
                    f"bad Router Alert option: length {len(data)}, RFC 2711 §2.1 says 2",
                    offset + 1,
                )
            if found is None:
                found = int.from_bytes(data, "big")
        offset += 1 if kind == OptionType.PAD1 else 2 + len(data)
    return found


class IPv6Header(NamedTuple):
    """An IPv6 header as received, with its Hop-by-Hop Options header if any.

    ``next_header`` is the fixed header's (0 when a Hop-by-Hop header follows, else 58);
    ``hop_by_hop`` is that header's raw options (all of it after its next header and
    length bytes, padding included), or None without one. ``router_alert`` says whether
    it holds a Router Alert option, ``router_alert_value`` is that option's value (0 =
    MLD) or None. ``header_len`` counts the fixed header and the Hop-by-Hop header, in
    bytes; the ICMPv6 message is ``packet[header_len:HEADER_LEN + payload_len]``.
    """

    src: IPv6Address
    dst: IPv6Address
    hop_limit: int
    traffic_class: int
    flow_label: int
    next_header: int
    hop_by_hop: bytes | None
    router_alert: bool
    router_alert_value: int | None
    header_len: int
    payload_len: int

    @property
    def total_len(self) -> int:
        return HEADER_LEN + self.payload_len


_unpack_header = HEADER.unpack_from


def parse_header(packet: bytes) -> IPv6Header:
    """Parse and validate the IPv6 header (and Hop-by-Hop header) at the start of ``packet``.

    Checks version, payload length against the buffer (a longer buffer, e.g. Ethernet
    padding, is fine), the Hop-by-Hop header's length and option framing, and that the
    upper layer is ICMPv6.
    """
    size = len(packet)
    if size < HEADER_LEN:
        raise CodecError(
            f"truncated IPv6 header: {size} bytes, the header has {HEADER_LEN}", size
        )
    first, payload_len, next_header, hop_limit = _unpack_header(packet)
    if first >> 28 != IP_VERSION:
        raise CodecError(f"not an IPv6 packet: IP version {first >> 28}", 0)
    end = HEADER_LEN + payload_len
    if end > size:
        raise CodecError(
            f"truncated IPv6 packet: payload length says {payload_len} bytes, only "
            f"{size - HEADER_LEN} present",
            size,
        )
    hop_by_hop: bytes | None = None
    value: int | None = None
    header_len = HEADER_LEN
    if next_header == NEXT_HEADER_HOP_BY_HOP and packet[40:48] == _MLD_HOP_BY_HOP:
        # what every MLD sender puts there (the hot path): nothing to walk
        hop_by_hop, value, header_len = ROUTER_ALERT_OPTIONS, ROUTER_ALERT_MLD, 48
        if header_len > end:
            _short_hop_by_hop(payload_len)
    elif next_header == NEXT_HEADER_HOP_BY_HOP:
        if end < HEADER_LEN + 2:
            raise CodecError(
                f"truncated Hop-by-Hop header: the payload of {payload_len} bytes has no "
                "room for its next header and length",
                end,
            )
        upper, ext_len = packet[HEADER_LEN], packet[HEADER_LEN + 1]
        header_len = HEADER_LEN + 8 * (ext_len + 1)
        if header_len > end:
            _short_hop_by_hop(payload_len)
        hop_by_hop = packet[HEADER_LEN + 2 : header_len]
        value = router_alert_value(hop_by_hop)
        _check_upper(upper, HEADER_LEN, after_hop_by_hop=True)
    else:
        _check_upper(next_header, 6, after_hop_by_hop=False)
    return tuple.__new__(IPv6Header, (  # what IPv6Header._make does, minus its checks
        address(packet[8:24]), address(packet[24:40]), hop_limit, (first >> 20) & 0xFF,
        first & 0xFFFFF, next_header, hop_by_hop, value is not None, value, header_len,
        payload_len,
    ))


def _short_hop_by_hop(payload_len: int) -> NoReturn:
    raise CodecError(
        f"the Hop-by-Hop header runs past the {payload_len}-byte payload (its length byte "
        "counts 8-octet units after the first 8)",
        HEADER_LEN + 1,
    )


def _check_upper(next_header: int, offset: int, *, after_hop_by_hop: bool) -> None:
    if next_header == NEXT_HEADER_ICMPV6:
        return
    if next_header == NEXT_HEADER_FRAGMENT:
        raise CodecError(
            "fragmented IPv6 packet: MLD is not fragmented in practice; reassemble it "
            "first (a raw socket does)",
            offset,
        )
    where = "after the Hop-by-Hop header" if after_hop_by_hop else "in the IPv6 header"
    expected = "ICMPv6 (58)" if after_hop_by_hop else "ICMPv6 (58) or Hop-by-Hop (0)"
    raise CodecError(f"next header {next_header} {where} is not {expected}", offset)


def build_header(
    src: IPv6Address,
    dst: IPv6Address,
    payload_len: int,
    *,
    hop_limit: int = 1,
    traffic_class: int = 0,
    flow_label: int = 0,
    hop_by_hop: bytes | None = ROUTER_ALERT_OPTIONS,
) -> bytes:
    """An IPv6 header (and a Hop-by-Hop header unless ``hop_by_hop`` is None) for an
    ICMPv6 message of ``payload_len`` bytes.

    ``hop_by_hop`` holds the raw options; with its 2 header bytes it must be a multiple
    of 8 bytes (pad with PadN), at most 2048.
    """
    if hop_by_hop is None:
        ext = b""
        next_header = NEXT_HEADER_ICMPV6
    else:
        size = len(hop_by_hop) + 2
        if size % 8 or size > 8 * 256:
            raise CodecError(
                f"Hop-by-Hop options of {len(hop_by_hop)} bytes: with the 2-byte header they "
                "must be padded to a multiple of 8 bytes, at most 2048",
                HEADER_LEN + 2,
            )
        ext = bytes((NEXT_HEADER_ICMPV6, size // 8 - 1)) + hop_by_hop
        next_header = NEXT_HEADER_HOP_BY_HOP
    total = len(ext) + payload_len
    if total > MAX_PAYLOAD_LEN:
        raise CodecError(f"IPv6 payload of {total} bytes exceeds {MAX_PAYLOAD_LEN}", 4)
    if not 0 <= traffic_class <= 0xFF or not 0 <= flow_label <= 0xFFFFF:
        raise CodecError(
            f"traffic class {traffic_class} (0..255) or flow label {flow_label} "
            "(0..1048575) does not fit",
            0,
        )
    try:
        head = HEADER.pack((IP_VERSION << 28) | (traffic_class << 20) | flow_label, total,
                           next_header, hop_limit)
    except struct.error as exc:
        raise CodecError(f"IPv6 header field out of range: {exc}", 7) from exc
    return head + src.packed + dst.packed + ext
