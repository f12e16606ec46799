"""The IPv6 kernel binding's pure parts: struct layouts, upcall parsing, error messages.

The layouts are checked against sizes and offsets measured with a C program on this
machine (sizeof/offsetof over linux/mroute6.h; see mroute6's docstring), byte by byte;
the socket calls are tested on real namespaces (tests/integration/test_kernel6.py).
"""

from __future__ import annotations

import errno
import socket
import struct
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from mrouter.errors import KernelError
from mrouter.igmp.family import IPV4
from mrouter.kernel import for_family, mroute, mroute6
from mrouter.kernel.mroute6 import (
    MF6CCTL,
    MIF6CTL,
    MRT6MSG,
    SIOC_MIF_REQ6,
    SIOC_SG_REQ6,
    SOCKADDR_IN6,
    Mrt6Option,
    Upcall,
    UpcallType,
    encode_upcall,
    icmp6_filter,
    if_set,
    is_upcall,
    kernel_error,
    parse_upcall,
    read_mfc_table,
    read_vif_table,
)

S, G = IPv6Address("2001:db8:1::2"), IPv6Address("ff15::1")
# An IPv6 + UDP packet from S to G (what a WHOLEPKT upcall carries after the struct).
PACKET = (bytes.fromhex("6000000000101108") + S.packed + G.packed
          + bytes.fromhex("138813880010 0000".replace(" ", "")) + b"payload!")
MLDV1_REPORT = bytes.fromhex("83000000") + bytes(4) + IPv6Address("ff15::77").packed


@pytest.mark.parametrize(("layout", "size"), [
    (MIF6CTL, 12), (SOCKADDR_IN6, 28), (MF6CCTL, 92), (MRT6MSG, 40), (SIOC_SG_REQ6, 80),
    (SIOC_MIF_REQ6, 40),
])
def test_layouts_have_the_measured_sizes(layout: struct.Struct, size: int) -> None:
    assert layout.size == size


def test_mif6ctl_puts_the_ifindex_at_offset_4_and_the_rate_limit_at_8() -> None:
    data = MIF6CTL.pack(3, 1, 1, 0x1234, 0xAABBCCDD)
    assert int.from_bytes(data[0:2], "little") == 3
    assert (data[2], data[3]) == (1, 1)  # mif6c_flags, vifc_threshold
    assert int.from_bytes(data[4:6], "little") == 0x1234  # mif6c_pifi
    assert int.from_bytes(data[8:12], "little") == 0xAABBCCDD


def test_mf6cctl_lays_out_origin_group_parent_and_the_if_set() -> None:
    data = mroute6._mf6cctl(S, G, 5, [0, 2, 31])
    assert len(data) == 92
    origin, group = data[0:28], data[28:56]
    assert int.from_bytes(origin[0:2], "little") == socket.AF_INET6
    assert (origin[8:24], group[8:24]) == (S.packed, G.packed)  # sin6_addr at offset 8
    assert int.from_bytes(data[56:58], "little") == 5  # mf6cc_parent
    assert data[58:60] == b"\0\0"  # padding before the u32 words
    assert int.from_bytes(data[60:64], "little") == (1 << 0) | (1 << 2) | (1 << 31)
    assert data[64:92] == bytes(28)  # words 1-7: MIFs 32-255, never used


def test_if_set_sets_bit_n_mod_32_of_word_n_div_32() -> None:
    assert if_set([]) == (0,) * 8
    assert if_set([1, 33, 255]) == (2, 2, 0, 0, 0, 0, 0, 1 << 31)


def test_sg_request_has_the_counters_after_two_sockaddrs() -> None:
    data = SIOC_SG_REQ6.pack(bytes(28), bytes(28), 7, 8, 9)
    assert [int.from_bytes(data[o:o + 8], "little") for o in (56, 64, 72)] == [7, 8, 9]


@pytest.mark.parametrize("kind", list(UpcallType))
def test_every_upcall_type_parses(kind: UpcallType) -> None:
    whole = kind in (UpcallType.WHOLEPKT, UpcallType.WRMIFWHOLE)
    upcall = Upcall(kind, 31 if whole else 3, S, G, PACKET if whole else b"")
    data = encode_upcall(upcall)
    assert is_upcall(data)
    assert parse_upcall(data) == upcall


def test_mrt6msg_fields_sit_where_the_header_puts_them() -> None:
    # im6_mbz, im6_msgtype, im6_mif (u16), im6_pad (u32), im6_src, im6_dst
    data = bytes([0, 2]) + (300).to_bytes(2, "little") + bytes(4) + S.packed + G.packed
    assert parse_upcall(data) == Upcall(UpcallType.WRONGMIF, 300, S, G)


def test_nocache_ignores_the_40_bytes_the_kernel_leaves_after_the_struct() -> None:
    # Measured: a NOCACHE upcall is read as 80 bytes, the struct and 40 undefined ones.
    data = encode_upcall(Upcall(UpcallType.NOCACHE, 0, S, G)) + bytes(range(40))
    assert parse_upcall(data) == Upcall(UpcallType.NOCACHE, 0, S, G)


def test_wholepkt_carries_the_whole_ipv6_packet() -> None:
    data = MRT6MSG.pack(0, UpcallType.WHOLEPKT, 2, 0, S.packed, G.packed) + PACKET
    assert parse_upcall(data).packet == PACKET


def test_wrongmif_is_the_ipv4_wrongvif() -> None:
    # An enum alias: the same member (mypy does not know aliases, hence the values).
    assert UpcallType(UpcallType.WRONGMIF.value).name == "WRONGVIF"
    assert UpcallType(UpcallType.WRMIFWHOLE.value).name == "WRVIFWHOLE"
    assert mroute.UpcallType is mroute6.UpcallType


@pytest.mark.parametrize(("data", "message"), [
    (b"", "0 bytes is shorter than struct mrt6msg"),
    (b"\0" * 39, "39 bytes is shorter than struct mrt6msg (40 bytes)"),
    (MLDV1_REPORT + bytes(16), "im6_mbz is 131, expected 0"),
    (MRT6MSG.pack(0, 99, 0, 0, S.packed, G.packed), "unknown upcall type 99"),
    (MRT6MSG.pack(0, 0, 0, 0, S.packed, G.packed), "unknown upcall type 0"),
])
def test_bad_upcalls_are_refused_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(KernelError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_upcall(data)


def test_mld_is_not_an_upcall() -> None:
    assert not is_upcall(MLDV1_REPORT)
    assert not is_upcall(bytes([143]) + bytes(27))  # MLDv2 report
    assert not is_upcall(b"")


def test_icmp6_filter_passes_mld_only() -> None:
    words = struct.unpack("@8I", icmp6_filter())

    def passes(icmp_type: int) -> bool:  # Linux: a set bit blocks the type
        return not words[icmp_type >> 5] & (1 << (icmp_type & 31))

    assert [t for t in range(256) if passes(t)] == [130, 131, 132, 143]


@pytest.mark.parametrize(("option", "code", "where", "expected"), [
    (Mrt6Option.INIT, errno.ENOPROTOOPT, {},
     "MRT6_INIT: this kernel has no IPv6 multicast routing (CONFIG_IPV6_MROUTE); "
     "load or build a kernel with it"),
    (Mrt6Option.ADD_MFC, errno.ENOPROTOOPT, {}, "CONFIG_IPV6_MROUTE"),
    (Mrt6Option.INIT, errno.EPERM, {}, "multicast routing needs root"),
    (Mrt6Option.ADD_MIF, errno.EACCES, {}, "run mrouter as root"),
    (Mrt6Option.INIT, errno.EADDRINUSE, {"table": 254},
     "MRT6_INIT: IPv6 multicast routing table 254 is already owned by another process "
     "(smcroute, pim6sd, mcproxy or another mrouter may hold it); stop that daemon, or "
     "give this one another table"),
    (Mrt6Option.INIT, errno.EOPNOTSUPP, {}, "MRT6_INIT needs a raw ICMPv6 socket"),
    (Mrt6Option.ADD_MIF, errno.ENFILE, {"vif": 32},
     "MIF 32 is out of range: the kernel allows at most 32 MIFs (0-31)"),
    (Mrt6Option.ADD_MIF, errno.EADDRINUSE, {"vif": 1, "table": 254},
     "MIF 1 is already in use in table 254"),
    (Mrt6Option.ADD_MIF, errno.EADDRNOTAVAIL, {"ifindex": 9},
     "interface with index 9 does not exist"),
    (Mrt6Option.DEL_MIF, errno.EADDRNOTAVAIL, {"vif": 4}, "MIF 4 does not exist"),
    (Mrt6Option.DEL_MFC, errno.ENOENT, {"source": S, "group": G},
     "no kernel route for (2001:db8:1::2, ff15::1)"),
    (Mrt6Option.TABLE, errno.EBUSY, {}, "MRT6_TABLE must be set before MRT6_INIT"),
    (Mrt6Option.TABLE, errno.ENOPROTOOPT, {}, "CONFIG_IPV6_MROUTE_MULTIPLE_TABLES"),
])
def test_errors_say_what_is_wrong_and_what_to_do(option: Mrt6Option, code: int,
                                                 where: dict[str, object],
                                                 expected: str) -> None:
    assert expected in str(kernel_error(option, OSError(code, "x"), **where))


def test_an_unknown_error_still_names_the_option_and_the_errno() -> None:
    err = str(kernel_error(Mrt6Option.ADD_MFC, OSError(errno.EIO, "I/O error"), vif=1))
    assert err == "MRT6_ADD_MFC failed: I/O error (vif=1)"


def test_ipv4_wording_is_unchanged_by_the_shared_table() -> None:
    err = mroute.kernel_error(mroute.MrtOption.INIT, OSError(errno.EADDRINUSE, "x"))
    assert str(err) == (
        "MRT_INIT: multicast routing table 254 is already owned by another process "
        "(smcroute, pimd, igmpproxy or another mrouter may hold it); stop that daemon, "
        "or give this one another table")
    err = mroute.kernel_error(mroute.MrtOption.ADD_VIF, OSError(errno.EADDRNOTAVAIL, "x"),
                              ifindex=7)
    assert str(err) == ("MRT_ADD_VIF: interface with index 7 does not exist or has no IPv4 "
                        "configuration; check the interface name and that it has an address")


def test_proc_tables_parse_what_the_kernel_prints(tmp_path: Path) -> None:
    # Copied from /proc/net/ip6_mr_vif and ip6_mr_cache in a lab (kernel 6.18).
    vifs = tmp_path / "ip6_mr_vif"
    vifs.write_text(
        "Interface      BytesIn  PktsIn  BytesOut PktsOut Flags\n"
        " 0 up0             969      19         0       0 00000\n"
        " 2 pim6reg           0       0       204       4 00001\n")
    cache = tmp_path / "ip6_mr_cache"
    cache.write_text(
        "Group                            Origin                           "
        "Iif      Pkts  Bytes     Wrong  Oifs\n"
        "ff15:0000:0000:0000:0000:0000:0000:0001 2001:0db8:0001:0000:0000:0000:0000:0002 "
        "0         12      612        0  1:1    2:1  \n"
        "ff15:0000:0000:0000:0000:0000:0000:0002 2001:0db8:0001:0000:0000:0000:0000:0002 "
        "-1         0        0        0\n")
    assert [(v.vif, v.name, v.bytes_in, v.packets_out, v.flags)
            for v in read_vif_table(vifs)] == [(0, "up0", 969, 0, 0), (2, "pim6reg", 0, 4, 1)]
    resolved, pending = read_mfc_table(cache)
    assert (resolved.group, resolved.source, resolved.iif_vif, resolved.packets,
            resolved.bytes, resolved.oifs) == (G, S, 0, 12, 612, {1: 1, 2: 1})
    assert (pending.group, pending.iif_vif, pending.oifs) == (IPv6Address("ff15::2"), -1, {})


def test_for_family_picks_the_binding_by_name_or_family_object() -> None:
    assert for_family("ipv6").socket is mroute6.Mroute6Socket
    assert for_family("IPv6").parse_upcall is mroute6.parse_upcall
    assert for_family(IPV4).socket is mroute.MrouteSocket
    assert for_family(IPV4).parse_upcall(mroute.encode_upcall(mroute.Upcall(
        UpcallType.NOCACHE, 1, IPv4Address("198.51.100.2"), IPv4Address("239.1.1.1")))
    ).vif == 1
    with pytest.raises(KernelError, match="no kernel multicast routing binding for address "
                                          "family 'ipx'; known: ipv4, ipv6"):
        for_family("ipx")
