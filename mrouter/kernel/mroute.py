"""Binding to the Linux IPv4 multicast routing API (include/uapi/linux/mroute.h).

Theory of operation: a multicast routing daemon opens one raw IGMP socket and calls
``setsockopt(IPPROTO_IP, MRT_INIT, 1)`` on it. From then on that socket owns one kernel
multicast routing table: the daemon declares virtual interfaces (VIFs, at most 32, here
always by ifindex with VIFF_USE_IFINDEX) and multicast forwarding cache entries (MFC:
one (S,G) with an inbound VIF and a TTL threshold per outbound VIF). When a packet
arrives for an (S,G) with no MFC entry, the kernel queues a few packets and sends the
daemon an *upcall* (IGMPMSG_NOCACHE) on that same socket; a packet arriving on the
wrong VIF gives IGMPMSG_WRONGVIF when MRT_ASSERT is on. Upcalls share the socket with
real IGMP messages and are told apart by a zero at the IP protocol byte (``im_mbz``).
Closing the socket or MRT_DONE removes every VIF and MFC entry of the table.

Every MRT_* call whose struct carries IPv4 addresses is in this module, each C struct
quoted next to the one :class:`struct.Struct` that lays it out; what the IPv6 binding
(:mod:`mrouter.kernel.mroute6`) shares with this one (MRT_INIT/TABLE/DONE/VERSION/ASSERT,
the SIOCGETVIFCNT/SIOCGETSGCNT ioctls, the error wording) is :mod:`mrouter.kernel.common`.
:func:`read_vif_table` and :func:`read_mfc_table` read the per-namespace views in
``/proc/thread-self/net/ip_mr_vif`` and ``ip_mr_cache``.
"""

from __future__ import annotations

import socket
import struct
import sys
from collections.abc import Mapping
from enum import IntEnum, IntFlag
from ipaddress import IPv4Address
from pathlib import Path

from mrouter.errors import KernelError
from mrouter.igmp.messages import ANY
from mrouter.kernel import common
from mrouter.kernel.common import (
    DEFAULT_TABLE,
    SIOC_VIF_REQ,
    SIOCPROTOPRIVATE,
    WHOLE_PACKET_UPCALLS,
    ProcVif,
    SgCounters,
    UpcallOf,
    UpcallType,
    VifCounters,
)
from mrouter.linux.constants import INT, IPV4_PROTOCOL_OFFSET, MAXVIFS

__all__ = [
    "DEFAULT_TABLE", "FAMILY", "IGMPMSG", "MAXVIFS", "MFCCTL", "SIOCGETSGCNT",
    "SIOCGETVIFCNT", "SIOCPROTOPRIVATE", "SIOC_SG_REQ", "SIOC_VIF_REQ", "VIFCTL",
    "MrouteSocket", "MrtOption", "ProcMfc", "ProcVif", "SgCounters", "Upcall", "UpcallType",
    "VifCounters", "VifFlag", "encode_upcall", "is_upcall", "kernel_error", "parse_upcall",
    "read_mfc_table", "read_vif_table",
]


class MrtOption(IntEnum):
    """Socket options at level IPPROTO_IP (MRT_BASE = 200)."""

    INIT = 200
    DONE = 201
    ADD_VIF = 202
    DEL_VIF = 203
    ADD_MFC = 204
    DEL_MFC = 205
    VERSION = 206
    ASSERT = 207
    PIM = 208
    TABLE = 209
    ADD_MFC_PROXY = 210
    DEL_MFC_PROXY = 211
    FLUSH = 212


class VifFlag(IntFlag):
    """``vifc_flags`` bits."""

    TUNNEL = 0x1
    SRCRT = 0x2
    REGISTER = 0x4
    USE_IFINDEX = 0x8


# UpcallType (IGMPMSG_*: NOCACHE, WRONGVIF, WHOLEPKT, WRVIFWHOLE) is common.UpcallType.

SIOCGETVIFCNT = SIOCPROTOPRIVATE
SIOCGETSGCNT = SIOCPROTOPRIVATE + 1


VIFCTL = struct.Struct("@HBBI4s4s")
"""::

    struct vifctl {
        vifi_t          vifc_vifi;        /* unsigned short */
        unsigned char   vifc_flags;
        unsigned char   vifc_threshold;   /* TTL threshold */
        unsigned int    vifc_rate_limit;
        union {
            struct in_addr vifc_lcl_addr;
            int            vifc_lcl_ifindex;   /* with VIFF_USE_IFINDEX */
        };
        struct in_addr  vifc_rmt_addr;     /* tunnels only */
    };                                     /* 16 bytes */

The union is packed as 4 bytes: an address, or the ifindex in :data:`INT` form.
"""

MFCCTL = struct.Struct("@4s4sH32sIIIi")
"""::

    struct mfcctl {
        struct in_addr mfcc_origin;         /* S */
        struct in_addr mfcc_mcastgrp;       /* G */
        vifi_t         mfcc_parent;         /* inbound VIF */
        unsigned char  mfcc_ttls[MAXVIFS];  /* 0: not forwarded on that VIF */
        /* 2 bytes of padding */
        unsigned int   mfcc_pkt_cnt;
        unsigned int   mfcc_byte_cnt;
        unsigned int   mfcc_wrong_if;
        int            mfcc_expire;
    };                                      /* 60 bytes */
"""

IGMPMSG = struct.Struct("@IIBBBB4s4s")
"""::

    struct igmpmsg {
        __u32 unused1, unused2;
        unsigned char im_msgtype;  /* IGMPMSG_* */
        unsigned char im_mbz;      /* 0: where an IP header has its protocol byte */
        unsigned char im_vif;      /* low 8 bits of the VIF */
        unsigned char im_vif_hi;   /* high 8 bits of the VIF */
        struct in_addr im_src, im_dst;
    };                             /* 20 bytes, overlays the IPv4 header */
"""

SIOC_SG_REQ = struct.Struct("@4s4sLLL")
"""::

    struct sioc_sg_req {
        struct in_addr src;
        struct in_addr grp;
        unsigned long pktcnt;
        unsigned long bytecnt;
        unsigned long wrong_if;
    };
"""

# SIOC_VIF_REQ (struct sioc_vif_req) is common.SIOC_VIF_REQ: IPv6's has its layout.

# Checked once at import: a wrong layout here would corrupt kernel state silently.
_SIZES = {VIFCTL: 16, MFCCTL: 60, IGMPMSG: 20}
for _layout, _size in _SIZES.items():
    if _layout.size != _size:  # pragma: no cover - depends on the C ABI
        raise ImportError(f"struct {_layout.format} is {_layout.size} bytes, expected {_size}")


# --- errors -------------------------------------------------------------------------------

FAMILY = common.KernelFamily(
    name="IPv4", prefix="MRT", vif="VIF", config="CONFIG_IP_MROUTE",
    socket_kind="raw IGMP socket", table="multicast routing table",
    owners="smcroute, pimd, igmpproxy or another mrouter",
    no_interface=("interface with index {ifindex} does not exist or has no IPv4 "
                  "configuration; check the interface name and that it has an address"),
    address_family=socket.AF_INET, protocol=socket.IPPROTO_IGMP, level=socket.IPPROTO_IP,
    vif_ioctl="SIOCGETVIFCNT", sg_ioctl="SIOCGETSGCNT",
)
"""The IPv4 API's words and numbers (the error messages are common.error_table's)."""

_ERRORS = common.error_table(FAMILY)


def kernel_error(option: MrtOption, exc: OSError, **where: object) -> KernelError:
    """Turn an OSError from ``option`` into a KernelError that says what to do.

    ``where`` fills the message (table, vif, ifindex, source, group).
    """
    return common.kernel_error(FAMILY, _ERRORS, option, exc, **where)


# --- upcalls ------------------------------------------------------------------------------


class Upcall(UpcallOf[IPv4Address]):
    """A message from the kernel's IPv4 multicast forwarding code (an ``igmpmsg``):
    kind, vif, source, group and, for WHOLEPKT and WRVIFWHOLE, the packet."""

    __slots__ = ()


def is_upcall(data: bytes) -> bool:
    """True if ``data`` read from the MRT_INIT socket is an upcall, not an IGMP packet.

    A real IGMP packet has protocol 2 at byte 9 of its IP header; an upcall has im_mbz 0.
    """
    return len(data) > IPV4_PROTOCOL_OFFSET and data[IPV4_PROTOCOL_OFFSET] == 0


def parse_upcall(data: bytes) -> Upcall:
    """Decode an upcall (see :data:`IGMPMSG`); raises KernelError if it is not one."""
    if len(data) < IGMPMSG.size:
        raise KernelError(f"upcall of {len(data)} bytes is shorter than struct igmpmsg "
                          f"({IGMPMSG.size} bytes)")
    _, _, msgtype, mbz, vif, vif_hi, src, dst = IGMPMSG.unpack_from(data)
    if mbz != 0:
        raise KernelError(f"not an upcall: im_mbz is {mbz}, expected 0")
    try:
        kind = UpcallType(msgtype)
    except ValueError:
        raise KernelError(f"unknown upcall type {msgtype} (kernel newer than mrouter?)") from None
    whole = kind in WHOLE_PACKET_UPCALLS
    return Upcall(kind, vif | (vif_hi << 8), IPv4Address(src), IPv4Address(dst),
                  data[IGMPMSG.size:] if whole else b"")


def encode_upcall(upcall: Upcall) -> bytes:
    """The bytes the kernel would send for ``upcall`` (for tests and tools)."""
    return IGMPMSG.pack(0, 0, upcall.kind, 0, upcall.vif & 0xFF, upcall.vif >> 8,
                        upcall.source.packed, upcall.group.packed) + upcall.packet


# --- the socket ---------------------------------------------------------------------------


class MrouteSocket(common.MrouteSocketBase[IPv4Address]):
    """The raw IGMP socket that owns one kernel multicast routing table.

    Opening does MRT_TABLE (if ``table`` is given) and MRT_INIT; :meth:`close` does
    MRT_DONE, after which the kernel has dropped every VIF and MFC entry of the table.
    Use it as a context manager. The socket is left blocking; the caller may set it
    non-blocking and read IGMP packets and upcalls from :attr:`sock`. Opening, closing,
    :meth:`version`, :meth:`set_assert` and the counters are common.MrouteSocketBase's.
    """

    family = FAMILY
    options = MrtOption
    errors = _ERRORS
    sg_request = SIOC_SG_REQ

    def _sg_address(self, address: IPv4Address) -> bytes:
        return address.packed

    def add_vif(self, vif: int, ifindex: int, *, threshold: int = 1, rate_limit: int = 0) -> None:
        """MRT_ADD_VIF by ifindex. ``threshold``: packets need a TTL above it to go out."""
        common.check_vif(FAMILY, vif, threshold)
        data = VIFCTL.pack(vif, VifFlag.USE_IFINDEX, threshold, rate_limit,
                           INT.pack(ifindex), ANY.packed)
        self._setopt(MrtOption.ADD_VIF, data, vif=vif, ifindex=ifindex)

    def del_vif(self, vif: int) -> None:
        """MRT_DEL_VIF."""
        data = VIFCTL.pack(vif, 0, 0, 0, ANY.packed, ANY.packed)
        self._setopt(MrtOption.DEL_VIF, data, vif=vif)

    def add_mfc(self, source: IPv4Address, group: IPv4Address, iif_vif: int,
                oif_ttls: Mapping[int, int]) -> None:
        """MRT_ADD_MFC: forward (source, group) arriving on ``iif_vif`` out of the VIFs
        in ``oif_ttls`` (VIF -> TTL threshold, at least 1). Replaces an existing entry."""
        ttls = bytearray(MAXVIFS)  # 0: not forwarded on that VIF (nor on the inbound one)
        for vif, ttl in common.outbound_vifs(FAMILY, source, group, iif_vif,
                                             oif_ttls).items():
            ttls[vif] = ttl
        data = MFCCTL.pack(source.packed, group.packed, iif_vif, bytes(ttls), 0, 0, 0, 0)
        self._setopt(MrtOption.ADD_MFC, data, source=source, group=group, vif=iif_vif)

    def del_mfc(self, source: IPv4Address, group: IPv4Address) -> None:
        """MRT_DEL_MFC."""
        data = MFCCTL.pack(source.packed, group.packed, 0, bytes(MAXVIFS), 0, 0, 0, 0)
        self._setopt(MrtOption.DEL_MFC, data, source=source, group=group)


# --- /proc views --------------------------------------------------------------------------


class ProcMfc(common.ProcMfcOf[IPv4Address]):
    """One line of /proc/net/ip_mr_cache; ``oifs`` maps VIF -> TTL threshold."""

    __slots__ = ()


def _proc_address(hex_word: str) -> IPv4Address:
    # The kernel prints the in-memory __be32 as a host-order %08X.
    return IPv4Address(int(hex_word, 16).to_bytes(4, sys.byteorder))


def read_vif_table(proc: Path = Path("/proc/thread-self/net/ip_mr_vif")) -> list[ProcVif]:
    """The VIFs of the calling thread's namespace (default table)."""
    return common.parse_vif_rows(proc.read_text())


def read_mfc_table(proc: Path = Path("/proc/thread-self/net/ip_mr_cache")) -> list[ProcMfc]:
    """The MFC entries of the calling thread's namespace (default table)."""
    return [ProcMfc(r.group, r.source, r.iif_vif, r.packets, r.bytes, r.wrong_if, r.oifs)
            for r in common.parse_mfc_rows(proc.read_text(), _proc_address)]
