"""IGMP message types shared by the codec, the engine and the tools.

Theory of operation: every IGMP message on the wire is one of a handful of shapes
(RFC 1112 v1, RFC 2236 v2, RFC 3376 v3). Each shape is a small frozen dataclass here,
with addresses as :class:`ipaddress.IPv4Address` and types as :class:`IntEnum`. Fields
keep the raw wire values (``max_resp_code``, ``qqic``) so that ``encode(decode(b)) == b``
holds exactly; properties give the decoded times.

Max Resp Code and QQIC (RFC 3376 §4.1.1, §4.1.7) share one 8-bit encoding: values
below 128 are literal; from 128 the byte is ``1 exp(3) mant(4)`` and means
``(mant | 0x10) << (exp + 3)``. :func:`code_to_value` and :func:`value_to_code` convert.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address, IPv4Network

ALL_SYSTEMS = IPv4Address("224.0.0.1")
ALL_ROUTERS = IPv4Address("224.0.0.2")
ALL_IGMPV3_ROUTERS = IPv4Address("224.0.0.22")
ANY = IPv4Address("0.0.0.0")
MULTICAST = IPv4Network("224.0.0.0/4")
#: RFC 5771 Local Network Control Block: never forwarded (RFC 4605 §6 too).
LINK_LOCAL = IPv4Network("224.0.0.0/24")

#: Largest value the 8-bit floating-point code can express: mant 15, exp 7.
MAX_CODE_VALUE = (0x0F | 0x10) << (7 + 3)


class IgmpType(IntEnum):
    MEMBERSHIP_QUERY = 0x11
    V1_MEMBERSHIP_REPORT = 0x12
    V2_MEMBERSHIP_REPORT = 0x16
    V2_LEAVE_GROUP = 0x17
    V3_MEMBERSHIP_REPORT = 0x22


class RecordType(IntEnum):
    """IGMPv3 group record types (RFC 3376 §4.2.12)."""

    MODE_IS_INCLUDE = 1
    MODE_IS_EXCLUDE = 2
    CHANGE_TO_INCLUDE_MODE = 3
    CHANGE_TO_EXCLUDE_MODE = 4
    ALLOW_NEW_SOURCES = 5
    BLOCK_OLD_SOURCES = 6

    @property
    def short(self) -> str:
        """The RFC's short name: IS_IN, IS_EX, TO_IN, TO_EX, ALLOW, BLOCK."""
        return _RECORD_SHORT[self]


_RECORD_SHORT = {
    RecordType.MODE_IS_INCLUDE: "IS_IN",
    RecordType.MODE_IS_EXCLUDE: "IS_EX",
    RecordType.CHANGE_TO_INCLUDE_MODE: "TO_IN",
    RecordType.CHANGE_TO_EXCLUDE_MODE: "TO_EX",
    RecordType.ALLOW_NEW_SOURCES: "ALLOW",
    RecordType.BLOCK_OLD_SOURCES: "BLOCK",
}


def code_to_value(code: int) -> int:
    """Decode a Max Resp Code or QQIC byte (RFC 3376 §4.1.1/§4.1.7) to its value.

    For Max Resp Code the value is in tenths of a second; for QQIC, in seconds.
    """
    if not 0 <= code <= 0xFF:
        raise ValueError(f"code {code} is not a byte")
    if code < 0x80:
        return code
    exp = (code >> 4) & 0x07
    mant = code & 0x0F
    return (mant | 0x10) << (exp + 3)


def value_to_code(value: int) -> int:
    """Encode a value as the 8-bit code, rounding down to the nearest representable.

    Values below 128 are exact; larger ones are rounded down (so a querier never asks
    for a longer time than configured); values above :data:`MAX_CODE_VALUE` saturate.
    """
    if value < 0:
        raise ValueError(f"value {value} is negative")
    if value < 0x80:
        return value
    value = min(value, MAX_CODE_VALUE)
    exp = value.bit_length() - 5 - 3  # the mantissa with its hidden bit is 5 bits wide
    mant = (value >> (exp + 3)) & 0x0F
    return 0x80 | (exp << 4) | mant


@dataclass(frozen=True, slots=True)
class Query:
    """A membership query (type 0x11), of version 1, 2 or 3 (RFC 3376 §7.1).

    ``group`` is 0.0.0.0 for a general query. ``max_resp_code`` is the raw byte: in v2
    it is tenths of a second; in v3 it uses the floating-point form. v1 queries carry 0.
    ``s_flag``, ``qrv``, ``qqic`` and ``sources`` exist only in v3.
    """

    version: int
    group: IPv4Address = ANY
    max_resp_code: int = 0
    s_flag: bool = False
    qrv: int = 0
    qqic: int = 0
    sources: tuple[IPv4Address, ...] = ()

    @property
    def type(self) -> IgmpType:
        return IgmpType.MEMBERSHIP_QUERY

    @property
    def max_resp_tenths(self) -> int:
        """Max response time in tenths of a second (v1 queries mean 10 s, RFC 2236 §4)."""
        if self.version == 1:
            return 100
        if self.version == 2:
            return self.max_resp_code
        return code_to_value(self.max_resp_code)

    @property
    def qqi(self) -> int:
        """Querier's Query Interval in seconds (v3 only; 0 when not given)."""
        return code_to_value(self.qqic)

    @property
    def is_general(self) -> bool:
        return self.group == ANY


@dataclass(frozen=True, slots=True)
class V1Report:
    """IGMPv1 membership report (type 0x12, RFC 1112)."""

    group: IPv4Address

    @property
    def type(self) -> IgmpType:
        return IgmpType.V1_MEMBERSHIP_REPORT


@dataclass(frozen=True, slots=True)
class V2Report:
    """IGMPv2 membership report (type 0x16, RFC 2236)."""

    group: IPv4Address
    max_resp_code: int = 0  # unused in reports; kept so odd packets round-trip

    @property
    def type(self) -> IgmpType:
        return IgmpType.V2_MEMBERSHIP_REPORT


@dataclass(frozen=True, slots=True)
class V2Leave:
    """IGMPv2 leave group (type 0x17, RFC 2236), sent to 224.0.0.2."""

    group: IPv4Address
    max_resp_code: int = 0

    @property
    def type(self) -> IgmpType:
        return IgmpType.V2_LEAVE_GROUP


@dataclass(frozen=True, slots=True)
class GroupRecord:
    """One group record of an IGMPv3 report (RFC 3376 §4.2.4)."""

    record_type: RecordType | int  # an unknown record type is kept as its int
    group: IPv4Address
    sources: tuple[IPv4Address, ...] = ()
    aux_data: bytes = b""  # length is a multiple of 4 (aux data len is in 32-bit words)


@dataclass(frozen=True, slots=True)
class V3Report:
    """IGMPv3 membership report (type 0x22, RFC 3376 §4.2), sent to 224.0.0.22."""

    records: tuple[GroupRecord, ...] = ()
    reserved: int = 0  # the 16-bit reserved field after the checksum; kept to round-trip

    @property
    def type(self) -> IgmpType:
        return IgmpType.V3_MEMBERSHIP_REPORT


@dataclass(frozen=True, slots=True)
class UnknownMessage:
    """An IGMP message of a type this codec does not know (mtrace, DVMRP, MRD...).

    Decoded rather than rejected so that watchers can show it.
    """

    type: int
    code: int
    body: bytes  # everything after the 4-byte type/code/checksum header


IgmpMessage = Query | V1Report | V2Report | V2Leave | V3Report | UnknownMessage
