"""MLD messages and packets as JSON-able dicts, in IGMP's shape (pure).

Theory of operation: ``mrouter mld watch`` and ``decode`` show MLD exactly as
``mrouter igmp`` shows IGMP (:mod:`mrouter.igmp.describe`): a flat dict per packet with
the same keys, rendered by the same :func:`~mrouter.igmp.describe.line` with the wider
address columns of :data:`COLUMNS`. The differences are MLD's own: a ``family`` key
(``"ipv6"``), ``ttl`` is the IPv6 hop limit and there is no ``ip_checksum_ok`` (IPv6
has no header checksum); ``version`` is the MLD version (1 or 2); ``type`` is one of
query, v1_report, v1_done, v2_report or unknown; ``max_resp`` is in seconds, decoded
from milliseconds (RFC 3810 §5.1.3); MLDv2 reports list their address ``records`` with
IGMPv3's record names (IS_IN ... BLOCK).

:func:`mld_type` tells whether an IPv6 packet carries MLD without decoding it (after the
IPv6 header or one Hop-by-Hop header), so that a capture of both protocols can be split.

The module is pure: no sockets, no clock.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mrouter.errors import CodecError
from mrouter.igmp.describe import Fields, base_fields, query_fields, record_fields, where_fields
from mrouter.mld.codec import Packet
from mrouter.mld.ipv6 import (
    HEADER_LEN,
    NEXT_HEADER_HOP_BY_HOP,
    NEXT_HEADER_ICMPV6,
    IPv6Header,
)
from mrouter.mld.messages import (
    MldMessage,
    MldType,
    Query,
    UnknownMessage,
    V1Done,
    V1Report,
    V2Report,
)

__all__ = ["COLUMNS", "error_fields", "message_fields", "mld_type", "packet_fields"]

#: Columns of :func:`mrouter.igmp.describe.line` for MLD: IPv6 addresses are wider.
COLUMNS: tuple[tuple[str, int], ...] = (
    ("TIME", 15), ("IFACE", 8), ("SOURCE", 25), ("DESTINATION", 25), ("VER", 3),
    ("TYPE", 9), ("GROUP", 25), ("MAXRESP", 7), ("RA", 2), ("CKSUM", 5),
)

#: ICMPv6 types a watcher may see next to MLD (RFC 4286 Multicast Router Discovery).
KNOWN_OTHER_TYPES = {151: "mrd-advertisement", 152: "mrd-solicitation",
                     153: "mrd-termination"}
_MLD_TYPES = frozenset(int(t) for t in MldType)


def mld_type(packet: bytes) -> int | None:
    """The MLD type (130, 131, 132, 143) an IPv6 packet carries, or None if it carries
    something else (or is too short to tell)."""
    if len(packet) < HEADER_LEN + 1 or packet[0] >> 4 != 6:
        return None
    at = HEADER_LEN
    if packet[6] == NEXT_HEADER_HOP_BY_HOP:
        if len(packet) < HEADER_LEN + 2 or packet[HEADER_LEN] != NEXT_HEADER_ICMPV6:
            return None
        at = HEADER_LEN + 8 * (packet[HEADER_LEN + 1] + 1)
    elif packet[6] != NEXT_HEADER_ICMPV6:
        return None
    if at >= len(packet) or packet[at] not in _MLD_TYPES:
        return None
    return packet[at]


def _query(msg: Query) -> Fields:
    return query_fields(msg, msg.max_resp_ms / 1000, newest=msg.version == 2)


def _v1_report(msg: V1Report) -> Fields:
    return base_fields(1, "v1_report", msg.type, str(msg.group))


def _v1_done(msg: V1Done) -> Fields:
    return base_fields(1, "v1_done", msg.type, str(msg.group))


def _v2_report(msg: V2Report) -> Fields:
    fields = base_fields(2, "v2_report", msg.type, None)
    fields["records"] = [record_fields(r) for r in msg.records]
    return fields


def _unknown(msg: UnknownMessage) -> Fields:
    fields = base_fields(None, "unknown", msg.type, None)
    fields.update(name=KNOWN_OTHER_TYPES.get(msg.type, f"type-{msg.type}"),
                  code=msg.code, body=msg.body.hex())
    return fields


_DESCRIBERS: dict[type, Callable[[Any], Fields]] = {
    Query: _query,
    V1Report: _v1_report,
    V1Done: _v1_done,
    V2Report: _v2_report,
    UnknownMessage: _unknown,
}


def message_fields(msg: MldMessage) -> Fields:
    """The message as a JSON-able dict (see the module docstring for the keys)."""
    return _DESCRIBERS[type(msg)](msg)


def ip_fields(ip: IPv6Header) -> Fields:
    return {"family": "ipv6", "src": str(ip.src), "dst": str(ip.dst), "ttl": ip.hop_limit,
            "router_alert": ip.router_alert}


def packet_fields(packet: Packet, *, time: float | None = None, iface: str | None = None,
                  direction: str | None = None) -> Fields:
    """A decoded packet as one flat dict: where and when it was seen, its IPv6 header
    (family, src, dst, ttl = hop limit, router_alert), the ICMPv6 checksum verdict
    (checksum_ok) and the message's fields."""
    fields = where_fields(time, iface, direction)
    fields.update(ip_fields(packet.ip))
    fields["checksum_ok"] = packet.checksum_ok
    fields.update(message_fields(packet.mld))
    return fields


def error_fields(error: CodecError, data: bytes, *, time: float | None = None,
                 iface: str | None = None, direction: str | None = None,
                 ip: IPv6Header | None = None) -> Fields:
    """A packet that failed to decode: the error, its byte offset and the bytes."""
    fields = where_fields(time, iface, direction)
    fields.update(ip_fields(ip) if ip is not None else {"family": "ipv6"})
    fields.update(error=error.reason, offset=error.offset, hex=data.hex())
    return fields
