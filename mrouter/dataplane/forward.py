"""The forwarding decision and the IPv4 header rewrite of the userspace data plane.

Theory of operation: a multicast packet from source S to group G arrives on interface
``iif`` with IP TTL ``ttl``. The route table names the outbound interfaces (oifs) it
wants; :func:`decide` applies the rules the kernel's ipmr applies to an MFC entry and
returns a :class:`Decision`: the oifs the packet really leaves by, and for the rest why
not. The rules, in order:

1. a group in 224.0.0.0/24 (link-local, RFC 5771 §4) is never forwarded;
2. a packet from an interface the data plane does not know is dropped;
3. TTL 1 or 0 cannot be forwarded (RFC 1812 §5.3.1: the TTL would reach zero);
4. no oif: dropped for lack of a route;
5. the inbound interface is never an oif (RFC 1812 §5.2.1.3: not back where it came from);
6. an oif whose TTL threshold is not below the packet's TTL holds it back, as
   ``mfcc_ttls`` do in the kernel: out of a VIF only if ``ttl > threshold``
   (the TTL as received, before the decrement, as in ipmr).

:func:`decrement_ttl` rewrites the header in place: TTL - 1 and the header checksum
updated incrementally (RFC 1624 eqn. 3, ``HC' = ~(~HC + ~m + m')``), so the data plane
never sums the whole header. With ``m`` the 16-bit word holding TTL and protocol,
``m' = m - 0x0100`` and ``~m + m'`` is the constant ``0xFEFF``.

Pure: no sockets, no clock; the shell in :mod:`mrouter.dataplane.user` does the I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address

from mrouter.igmp.messages import LINK_LOCAL
from mrouter.linux.constants import IPV4_CHECKSUM_OFFSET as CHECKSUM_OFFSET
from mrouter.linux.constants import IPV4_TTL_OFFSET as TTL_OFFSET

# RFC 1624 eqn. 3 with m' = m - 0x0100: ~m + m' = 0xFFFF - 0x0100.
_TTL_DECREMENT_DELTA = 0xFFFF - 0x0100


class DropReason(StrEnum):
    """Why a packet (or one copy of it, for one oif) was not forwarded."""

    LINK_LOCAL = "link-local"
    UNKNOWN_INTERFACE = "unknown-interface"
    TTL_EXPIRED = "ttl-expired"
    NO_ROUTE = "no-route"
    BELOW_THRESHOLD = "below-threshold"
    MALFORMED = "malformed"
    SEND_FAILED = "send-failed"


@dataclass(frozen=True, slots=True)
class Decision:
    """Where one packet goes: ``oifs`` it leaves by; ``reason`` if it goes nowhere for a
    packet-wide cause; ``held_back`` the oifs whose threshold stopped it."""

    oifs: tuple[str, ...]
    reason: DropReason | None = None
    held_back: tuple[str, ...] = field(default=())

    @property
    def forwarded(self) -> bool:
        return bool(self.oifs)


def decide(group: IPv4Address, ttl: int, iif: str, route_oifs: frozenset[str],
           thresholds: Mapping[str, int]) -> Decision:
    """Apply the forwarding rules (module docstring) to one packet.

    ``route_oifs`` is what the route table answered for (S, G, iif); ``thresholds`` maps
    every interface the data plane knows to its TTL threshold.
    """
    if group in LINK_LOCAL:
        return Decision((), DropReason.LINK_LOCAL)
    if iif not in thresholds:
        return Decision((), DropReason.UNKNOWN_INTERFACE)
    if ttl <= 1:
        return Decision((), DropReason.TTL_EXPIRED)
    candidates = sorted(o for o in route_oifs if o != iif and o in thresholds)
    if not candidates:
        return Decision((), DropReason.NO_ROUTE)
    out = tuple(o for o in candidates if ttl > thresholds[o])
    held = tuple(o for o in candidates if ttl <= thresholds[o])
    return Decision(out, None if out else DropReason.BELOW_THRESHOLD, held)


def decisions_by_ttl(group: IPv4Address, iif: str, route_oifs: frozenset[str],
                     thresholds: Mapping[str, int]) -> tuple[Decision, ...]:
    """:func:`decide` for every TTL 0-255 (index = TTL), for a per-route lookup table.

    The answer only changes at TTL 2 (rule 3) and just above each threshold (rule 6),
    so :func:`decide` runs once per range between those TTLs.
    """
    breaks = sorted({0, 2, 256} | {min(max(t + 1, 0), 256) for t in thresholds.values()})
    decisions: list[Decision] = []
    for start, end in itertools.pairwise(breaks):
        decisions += [decide(group, start, iif, route_oifs, thresholds)] * (end - start)
    return tuple(decisions)


def decrement_ttl(header: bytearray | memoryview, offset: int = 0) -> int:
    """TTL - 1 and the checksum fixed up (RFC 1624) in place; returns the new TTL.

    The caller has checked the TTL is at least 2 (see :func:`decide`).
    """
    ttl = header[offset + TTL_OFFSET] - 1
    header[offset + TTL_OFFSET] = ttl
    at = offset + CHECKSUM_OFFSET
    total = ((header[at] << 8 | header[at + 1]) ^ 0xFFFF) + _TTL_DECREMENT_DELTA
    total = (total & 0xFFFF) + (total >> 16)
    total ^= 0xFFFF
    header[at] = total >> 8
    header[at + 1] = total & 0xFF
    return ttl


def header_checksum(header: bytes | bytearray | memoryview) -> int:
    """The IPv4 header checksum computed from scratch (RFC 791), checksum field as zero."""
    length = (header[0] & 0x0F) * 4
    total = 0
    for i in range(0, length, 2):
        if i != CHECKSUM_OFFSET:
            total += header[i] << 8 | header[i + 1]
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total ^ 0xFFFF


def multicast_mac(group: IPv4Address) -> bytes:
    """The Ethernet address of an IPv4 group (RFC 1112 §6.4): 01:00:5e + low 23 bits."""
    low = int(group) & 0x7FFFFF
    return bytes((0x01, 0x00, 0x5E, low >> 16, (low >> 8) & 0xFF, low & 0xFF))
