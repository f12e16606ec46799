"""The Internet checksum as RFC 1071 §4.1's C code computes it, word by word: an oracle
for the fast implementations (mrouter.igmp.ipv4.checksum, the data plane's checksums)."""

from __future__ import annotations

import struct


def ones_sum(data: bytes) -> int:
    """The 16-bit one's complement sum of ``data`` (padded with a zero byte if odd)."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def reference_checksum(data: bytes) -> int:
    """The checksum field's value for ``data``: the complement of :func:`ones_sum`."""
    return ~ones_sum(data) & 0xFFFF
