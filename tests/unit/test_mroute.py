"""The kernel binding's pure parts: upcall parsing (every type) and the error messages.

The socket calls themselves are tested on real namespaces (tests/integration/test_kernel.py);
the kernel only sends WHOLEPKT and WRVIFWHOLE upcalls for PIM register VIFs, which no
lab here has, so their parsing is checked here against the layout of struct igmpmsg.
"""

from __future__ import annotations

import errno
from ipaddress import IPv4Address

import pytest

from mrouter.errors import KernelError
from mrouter.kernel.mroute import (
    IGMPMSG,
    MrtOption,
    Upcall,
    UpcallType,
    encode_upcall,
    is_upcall,
    kernel_error,
    parse_upcall,
)

S, G = IPv4Address("198.51.100.2"), IPv4Address("239.1.1.1")
PACKET = bytes.fromhex("4500001c0000400008110000c6336402ef010101") + b"payload"  # (S,G) data


@pytest.mark.parametrize("kind", list(UpcallType))
def test_every_upcall_type_parses(kind: UpcallType) -> None:
    whole = kind in (UpcallType.WHOLEPKT, UpcallType.WRVIFWHOLE)
    upcall = Upcall(kind, 300 if whole else 3, S, G, PACKET if whole else b"")
    data = encode_upcall(upcall)
    assert is_upcall(data)
    assert parse_upcall(data) == upcall


def test_wholepkt_carries_the_packet_and_a_vif_above_255() -> None:
    # struct igmpmsg: unused1, unused2, im_msgtype, im_mbz, im_vif, im_vif_hi, src, dst
    data = IGMPMSG.pack(0, 0, UpcallType.WHOLEPKT, 0, 0x2C, 0x01, S.packed, G.packed) + PACKET
    upcall = parse_upcall(data)
    assert (upcall.kind, upcall.vif, upcall.source, upcall.group) == (
        UpcallType.WHOLEPKT, 0x12C, S, G)
    assert upcall.packet == PACKET


@pytest.mark.parametrize(("data", "message"), [
    (b"\0" * 7, "shorter than struct igmpmsg"),
    (IGMPMSG.pack(0, 0, 1, 2, 0, 0, S.packed, G.packed), "im_mbz is 2"),
    (IGMPMSG.pack(0, 0, 99, 0, 0, 0, S.packed, G.packed), "unknown upcall type 99"),
])
def test_bad_upcalls_are_refused_with_the_reason(data: bytes, message: str) -> None:
    with pytest.raises(KernelError, match=message):
        parse_upcall(data)


def test_igmp_is_not_an_upcall() -> None:
    igmp = bytes.fromhex("46c00020000040000102") + bytes(22)  # protocol 2 at byte 9
    assert not is_upcall(igmp)


@pytest.mark.parametrize(("option", "code", "where", "expected"), [
    (MrtOption.INIT, errno.ENOPROTOOPT, {}, "no IPv4 multicast routing (CONFIG_IP_MROUTE)"),
    (MrtOption.ADD_MFC, errno.ENOPROTOOPT, {}, "CONFIG_IP_MROUTE"),
    (MrtOption.INIT, errno.EPERM, {}, "run mrouter as root"),
    (MrtOption.INIT, errno.EADDRINUSE, {"table": 0},
     "table 0 is already owned by another process (smcroute, pimd, igmpproxy"),
    (MrtOption.ADD_VIF, errno.ENFILE, {"vif": 32}, "at most 32 VIFs"),
    (MrtOption.DEL_MFC, errno.ENOENT, {"source": S, "group": G},
     "no kernel route for (198.51.100.2, 239.1.1.1)"),
])
def test_errors_say_what_is_wrong_and_what_to_do(option: MrtOption, code: int,
                                                 where: dict[str, object],
                                                 expected: str) -> None:
    err = kernel_error(option, OSError(code, "x"), **where)
    assert expected in str(err)


def test_an_unknown_error_still_names_the_option_and_the_errno() -> None:
    err = str(kernel_error(MrtOption.ADD_MFC, OSError(errno.EIO, "I/O error"), vif=1))
    assert "MRT_ADD_MFC" in err and "I/O error" in err
