"""Finishing a partial UDP checksum (checksum offload) for the IPPROTO_RAW send path."""

from __future__ import annotations

import struct
from ipaddress import IPv4Address

from checksum_oracle import ones_sum
from hypothesis import given
from hypothesis import strategies as st

from mrouter.dataplane.user import ETH_HLEN, IP, VNET_F_NEEDS_CSUM, complete_checksum
from mrouter.igmp.ipv4 import build_header

SRC, DST = IPv4Address("198.51.100.2"), IPv4Address("239.1.1.1")


def udp_checksum(udp: bytes) -> int:
    pseudo = SRC.packed + DST.packed + struct.pack("!BBH", 0, 17, len(udp))
    value = ones_sum(pseudo + udp) ^ 0xFFFF
    return value or 0xFFFF


def frame(payload: bytes) -> tuple[bytearray, int]:
    """virtio_net_hdr + Ethernet + IPv4 + UDP, the UDP checksum left partial as a
    sender with checksum offload leaves it (the pseudo-header sum, not complemented)."""
    udp_len = 8 + len(payload)
    total = 20 + udp_len
    ip = build_header(SRC, DST, udp_len, ttl=8, tos=0, protocol=17, ident=1, options=b"")
    pseudo = ones_sum(SRC.packed + DST.packed + struct.pack("!BBH", 0, 17, udp_len))
    udp = struct.pack("!HHHH", 40000, 5000, udp_len, pseudo) + payload
    vnet = struct.pack("=BBHHHH", VNET_F_NEEDS_CSUM, 0, 0, 0, ETH_HLEN + 20, 6)
    eth = bytes.fromhex("01005e010101" "020000000001" "0800")
    return bytearray(vnet + eth + ip + udp), total


@given(st.binary(max_size=300))
def test_completed_checksum_equals_a_full_udp_checksum(payload: bytes) -> None:
    buf, total = frame(payload)
    complete_checksum(buf, total)
    udp = bytes(buf[IP + 20:IP + total])
    expected = udp_checksum(udp[:6] + b"\0\0" + udp[8:])
    assert struct.unpack_from("!H", udp, 6)[0] == expected
    assert buf[0] & VNET_F_NEEDS_CSUM == 0
    assert ones_sum(SRC.packed + DST.packed + struct.pack("!BBH", 0, 17, len(udp)) + udp) \
        == 0xFFFF  # what a receiver verifies
