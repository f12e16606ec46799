"""MLD message types (RFC 2710 MLDv1, RFC 3810 / RFC 9777 MLDv2), for the codec and tools.

Theory of operation: MLD is IGMP for IPv6, carried in ICMPv6 (next header 58). Every
message on the wire is one of five shapes, each a small frozen dataclass here, with
addresses as :class:`ipaddress.IPv6Address` and types as :class:`IntEnum`: a
:class:`Query` (type 130, v1 if 24 octets, v2 if 28 or more, RFC 3810 §8.1), an MLDv1
:class:`V1Report` (131) and :class:`V1Done` (132), an MLDv2 :class:`V2Report` (143) of
:class:`AddressRecord`\\ s, and :class:`UnknownMessage` for any other ICMPv6 type.
Fields keep the raw wire values (``max_resp_code``, ``qqic``) so that
``encode(decode(b)) == b`` holds exactly; properties give the decoded times.

The record types are IGMPv3's six (RFC 3810 §5.2.12 reuses RFC 3376 §4.2.12), so
:class:`RecordType` is imported from :mod:`mrouter.igmp.messages`, not redefined; the
records keep IGMP's field names (``record_type``, ``group``, ``sources``, ``aux_data``)
so that code reading either family's records reads both.

The Maximum Response Code is 16 bits (RFC 3810 §5.1.3), in milliseconds: below 32768 it
is the delay itself; from 32768 it is ``1 exp(3) mant(12)`` and means
``(mant | 0x1000) << (exp + 3)`` ms, up to :data:`MAX_DELAY_MS` (about 8387 s).
:func:`code_to_delay_ms` and :func:`delay_ms_to_code` convert. QQIC is 8 bits with
IGMPv3's encoding (RFC 3810 §5.1.9), so it uses :func:`mrouter.igmp.messages.code_to_value`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv6Address

from mrouter.igmp.messages import RecordType, code_to_value

__all__ = [
    "ALL_MLDV2_ROUTERS",
    "ALL_NODES",
    "ALL_ROUTERS",
    "MAX_DELAY_MS",
    "UNSPECIFIED",
    "AddressRecord",
    "MldMessage",
    "MldType",
    "Query",
    "RecordType",
    "UnknownMessage",
    "V1Done",
    "V1Report",
    "V2Report",
    "code_to_delay_ms",
    "delay_ms_to_code",
]

ALL_NODES = IPv6Address("ff02::1")
ALL_ROUTERS = IPv6Address("ff02::2")
ALL_MLDV2_ROUTERS = IPv6Address("ff02::16")
UNSPECIFIED = IPv6Address("::")

#: Largest delay the 16-bit floating-point Maximum Response Code can express, in ms:
#: mant 0xFFF, exp 7.
MAX_DELAY_MS = (0x0FFF | 0x1000) << (7 + 3)
#: The first code in the floating-point form (RFC 3810 §5.1.3).
FLOAT_THRESHOLD = 0x8000


class MldType(IntEnum):
    """ICMPv6 types of MLD messages (RFC 2710 §3, RFC 3810 §5)."""

    QUERY = 130
    V1_REPORT = 131
    V1_DONE = 132
    V2_REPORT = 143


def code_to_delay_ms(code: int) -> int:
    """Decode an MLDv2 Maximum Response Code (RFC 3810 §5.1.3) to milliseconds."""
    if not 0 <= code <= 0xFFFF:
        raise ValueError(f"Maximum Response Code {code} is not 16 bits")
    if code < FLOAT_THRESHOLD:
        return code
    exp = (code >> 12) & 0x07
    mant = code & 0x0FFF
    return (mant | 0x1000) << (exp + 3)


def delay_ms_to_code(delay_ms: int) -> int:
    """Encode a delay in ms as the 16-bit code, rounding down to the nearest representable.

    Delays below 32768 ms are exact; longer ones are rounded down (so a querier never
    asks for more time than configured); delays above :data:`MAX_DELAY_MS` saturate.
    """
    if delay_ms < 0:
        raise ValueError(f"delay {delay_ms} ms is negative")
    if delay_ms < FLOAT_THRESHOLD:
        return delay_ms
    delay_ms = min(delay_ms, MAX_DELAY_MS)
    exp = delay_ms.bit_length() - 13 - 3  # the mantissa with its hidden bit is 13 bits wide
    mant = (delay_ms >> (exp + 3)) & 0x0FFF
    return FLOAT_THRESHOLD | (exp << 12) | mant


@dataclass(frozen=True, slots=True)
class Query:
    """A Multicast Listener Query (type 130), MLDv1 (24 octets) or MLDv2 (28 or more).

    ``group`` is ``::`` for a general query. ``max_resp_code`` is the raw 16-bit field:
    in v1 it is the Maximum Response Delay in ms (RFC 2710 §3.4); in v2 it uses the
    floating-point form (RFC 3810 §5.1.3). ``s_flag``, ``qrv``, ``qqic`` and ``sources``
    exist only in v2.
    """

    version: int
    group: IPv6Address = UNSPECIFIED
    max_resp_code: int = 0
    s_flag: bool = False
    qrv: int = 0
    qqic: int = 0
    sources: tuple[IPv6Address, ...] = ()

    @property
    def type(self) -> MldType:
        return MldType.QUERY

    @property
    def max_resp_ms(self) -> int:
        """The Maximum Response Delay in milliseconds."""
        if self.version == 1:
            return self.max_resp_code
        return code_to_delay_ms(self.max_resp_code)

    @property
    def qqi(self) -> int:
        """Querier's Query Interval in seconds (v2 only; 0 when not given)."""
        return code_to_value(self.qqic)

    @property
    def is_general(self) -> bool:
        return self.group == UNSPECIFIED


@dataclass(frozen=True, slots=True)
class V1Report:
    """MLDv1 Multicast Listener Report (type 131, RFC 2710 §3), sent to the group."""

    group: IPv6Address

    @property
    def type(self) -> MldType:
        return MldType.V1_REPORT


@dataclass(frozen=True, slots=True)
class V1Done:
    """MLDv1 Multicast Listener Done (type 132, RFC 2710 §3), sent to ff02::2."""

    group: IPv6Address

    @property
    def type(self) -> MldType:
        return MldType.V1_DONE


@dataclass(frozen=True, slots=True)
class AddressRecord:
    """One Multicast Address Record of an MLDv2 report (RFC 3810 §5.2.4)."""

    record_type: RecordType | int  # an unknown record type is kept as its int
    group: IPv6Address
    sources: tuple[IPv6Address, ...] = ()
    aux_data: bytes = b""  # length is a multiple of 4 (Aux Data Len is in 32-bit words)


@dataclass(frozen=True, slots=True)
class V2Report:
    """MLDv2 Multicast Listener Report (type 143, RFC 3810 §5.2), sent to ff02::16."""

    records: tuple[AddressRecord, ...] = ()

    @property
    def type(self) -> MldType:
        return MldType.V2_REPORT


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """An ICMPv6 message that is not MLD (MRD, neighbour discovery, echo...).

    Decoded rather than rejected so that watchers can show it.
    """

    type: int
    code: int
    body: bytes  # everything after the 4-byte type/code/checksum header


MldMessage = Query | V1Report | V1Done | V2Report | UnknownMessage
