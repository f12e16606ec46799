"""Binding to the Linux IPv6 multicast routing API (include/uapi/linux/mroute6.h).

Theory of operation: the IPv6 twin of :mod:`mrouter.kernel.mroute`, with the same public
shape (:class:`Mroute6Socket` with ``add_vif``/``del_vif``/``add_mfc``/``del_mfc``/
``sg_counters``/``vif_counters``/``version``/``set_assert``/``close``; :class:`Upcall`,
:func:`is_upcall`, :func:`parse_upcall`; :func:`read_vif_table`, :func:`read_mfc_table`)
so that the daemon can drive either family through one interface. The kernel calls its
interfaces MIFs; the method names keep "vif", the messages say "MIF".

A daemon opens one raw ICMPv6 socket (``socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6)``)
and calls ``setsockopt(IPPROTO_IPV6, MRT6_INIT, 1)``: that socket now owns one table
(one owner per table, EADDRINUSE for a second). It declares MIFs by ifindex (at most
32, struct mif6ctl) and MFC entries (struct mf6cctl: an (S,G), an inbound MIF and a
*bitmap* of outbound MIFs; unlike IPv4 there is no TTL per outbound interface). A packet
for an (S,G) with no entry gives an MRT6MSG_NOCACHE upcall, one on the wrong MIF gives
MRT6MSG_WRONGMIF when MRT6_ASSERT is on, and a packet forwarded to a PIM register MIF
comes up whole as MRT6MSG_WHOLEPKT. Upcalls arrive on the same socket as MLD: a raw
ICMPv6 socket reads the ICMPv6 message without the IPv6 header, so the first byte is
the ICMPv6 type (130-132, 143 for MLD), and an upcall's first byte, ``im6_mbz``, is 0,
an ICMPv6 type that does not exist (RFC 4443 §2.1). Closing the socket or MRT6_DONE
removes every MIF and MFC entry of the table. Shared code (opening, MRT6_TABLE,
MRT6_DONE, version, assert, the counter ioctls, the error wording, the /proc row
parsers) is :mod:`mrouter.kernel.common`'s; every MRT6_* layout is here, once.

Measured on this machine (x86-64, kernel 6.18, uapi headers of linux-libc-dev 6.1.187,
a C program printing sizeof and offsetof): ``struct mif6ctl`` 12 bytes (mif6c_pifi at
offset 4, vifc_rate_limit at 8); ``struct sockaddr_in6`` 28 (sin6_addr at 8);
``struct mf6cctl`` 92 (mf6cc_parent at 56, mf6cc_ifset at 60, 32 bytes);
``struct mrt6msg`` 40 (im6_src at 8, im6_dst at 24); ``struct sioc_sg_req6`` 80
(pktcnt at 56); ``struct sioc_mif_req6`` 40; SIOCGETMIFCNT_IN6 0x89E0,
SIOCGETSGCNT_IN6 0x89E1; MRT6_VERSION reads 0x305. The layouts below are checked
against those sizes at import. A NOCACHE upcall was read as 80 bytes: the 40 of
``struct mrt6msg`` and 40 that no API defines (ip6mr_cache_report builds the message in
a buffer sized for an IPv6 header and the struct; what follows the struct here held
leftover bytes), so only the struct is read; WHOLEPKT upcalls are the struct and the
whole packet, IPv6 header first (measured: 40 + 56 bytes for a 56-byte packet).

What the kernel needs for MLD to reach this socket (net/ipv6/ip6_input.c, ip6_mc_input;
checked in tests/integration/test_kernel6.py):

- Nothing for MLD sent to a group of wider than link-local scope (MLDv1 reports go to
  the group itself): once MRT6_INIT has set ``net.ipv6.conf.all.mc_forwarding``, a
  packet with a Hop-by-Hop Router Alert of value 0 (MLD, RFC 2711) that is an MLD
  message is delivered locally whether or not the router joined the group, and so
  reaches every raw ICMPv6 socket. On this kernel (6.18) it is not offered to ip6mr
  as well: a report gives no NOCACHE upcall.
- For MLD sent to link-local groups, the router must be a member of the destination
  on that interface: MLDv2 reports go to ff02::16 (join it on each MIF with
  IPV6_JOIN_GROUP; nothing joins it for you), MLDv1 Dones to ff02::2 (the kernel joins
  it on every interface while ``net.ipv6.conf.IF.forwarding`` is 1), queries to ff02::1
  (always joined). Router Alert does not help there: ip6_mc_input looks at it only for
  packets it may forward, and link-local scope is never forwarded.
- ICMPv6 filters (ICMP6_FILTER at level IPPROTO_ICMPV6, RFC 3542 §3.2) pass everything
  by default on a raw ICMPv6 socket; a filter that passes only types 130, 131, 132 and
  143 keeps the router's socket to MLD, and upcalls still arrive: ip6mr queues them on
  the socket directly (sock_queue_rcv_skb), past the filter. IPV6_ROUTER_ALERT is not
  needed (it is for Router Alert packets being forwarded, not delivered).
- The socket also sees the router's own MLD reports (looped back); filter by source.

What ip6mr needs to forward: MRT6_INIT (``net.ipv6.conf.all.mc_forwarding`` reads 1
while the socket holds the table, and each MIF's own ``mc_forwarding`` is 1; both are
read-only; MRT6_DONE sets them back at once, where IPv4's flag falls only after an RCU
grace period, which this kernel's lazy RCU stretched past 10 s), IPv6 enabled on the
interfaces (``net.ipv6.conf.IF.disable_ipv6`` 0), and a hop limit above 1 on arrival
(it is decremented; the MIF threshold in ``mif6ctl`` is stored but never compared, so
this binding only accepts 0 or 1). The destination must not be link-local scope
(ff02::/16 is never forwarded). ``net.ipv6.conf.all.forwarding``
is not needed by ip6mr itself (a lab forwarded with it 0); set it anyway on a router:
it makes the kernel join ff02::2 on every interface (so MLDv1 Dones arrive), answer as
a router in Neighbor Discovery and forward unicast.
"""

from __future__ import annotations

import errno
import socket
import struct
from collections.abc import Iterable, Mapping
from enum import IntEnum, IntFlag
from ipaddress import IPv6Address
from pathlib import Path

from mrouter.errors import KernelError
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
from mrouter.linux.constants import MAXVIFS

__all__ = [
    "DEFAULT_TABLE", "FAMILY", "ICMP6_FILTER", "MAXMIFS", "MF6CCTL", "MIF6CTL",
    "MIFI", "MLD_TYPES", "MRT6MSG", "SIOCGETMIFCNT_IN6", "SIOCGETSGCNT_IN6",
    "SIOC_MIF_REQ6", "SIOC_SG_REQ6", "SOCKADDR_IN6", "MifFlag", "Mroute6Socket",
    "Mrt6Option", "ProcMfc", "ProcVif", "SgCounters", "Upcall", "UpcallType",
    "VifCounters", "encode_upcall", "icmp6_filter", "if_set", "is_upcall", "kernel_error",
    "parse_upcall", "read_mfc_table", "read_vif_table",
]

MAXMIFS = MAXVIFS
"""The kernel's limit on MIFs per table (``MAXMIFS`` in mroute6.h): 32."""

IF_SETSIZE = 256
"""Bits in ``struct if_set``; only the first :data:`MAXMIFS` mean anything."""

MLD_TYPES = (130, 131, 132, 143)
"""ICMPv6 types of MLD: query, v1 report, v1 done, v2 report (RFC 2710, RFC 3810)."""


class Mrt6Option(IntEnum):
    """Socket options at level IPPROTO_IPV6 (MRT6_BASE = 200, as MRT_BASE)."""

    INIT = 200
    DONE = 201
    ADD_MIF = 202
    DEL_MIF = 203
    ADD_MFC = 204
    DEL_MFC = 205
    VERSION = 206
    ASSERT = 207
    PIM = 208
    TABLE = 209
    ADD_MFC_PROXY = 210
    DEL_MFC_PROXY = 211
    FLUSH = 212


class MifFlag(IntFlag):
    """``mif6c_flags`` bits."""

    REGISTER = 0x1  # a PIM register MIF (pim6reg): what goes out comes up as WHOLEPKT


SIOCGETMIFCNT_IN6 = SIOCPROTOPRIVATE
SIOCGETSGCNT_IN6 = SIOCPROTOPRIVATE + 1

ICMP6_FILTER = 1
"""Socket option at level IPPROTO_ICMPV6 (linux/icmpv6.h): ``struct icmp6_filter``."""


MIF6CTL = struct.Struct("@HBBHI")
"""::

    struct mif6ctl {
        mifi_t         mif6c_mifi;       /* unsigned short: index of the MIF */
        unsigned char  mif6c_flags;      /* MIFF_REGISTER or 0 */
        unsigned char  vifc_threshold;   /* stored, never compared by ip6mr */
        __u16          mif6c_pifi;       /* ifindex of the physical interface */
        /* 2 bytes of padding */
        unsigned int   vifc_rate_limit;  /* not implemented */
    };                                   /* 12 bytes */
"""

MIFI = struct.Struct("@H")
"""``mifi_t`` (unsigned short): the value of MRT6_DEL_MIF, which takes only the index."""

SOCKADDR_IN6 = struct.Struct("@HHI16sI")
"""::

    struct sockaddr_in6 {
        sa_family_t     sin6_family;    /* AF_INET6, host order */
        __be16          sin6_port;
        __be32          sin6_flowinfo;
        struct in6_addr sin6_addr;      /* ip6mr reads only this */
        __u32           sin6_scope_id;
    };                                  /* 28 bytes */
"""

MF6CCTL = struct.Struct(f"@{SOCKADDR_IN6.size}s{SOCKADDR_IN6.size}sH{IF_SETSIZE // 32}I")
"""::

    typedef __u32 if_mask;
    typedef struct if_set {
        if_mask ifs_bits[__KERNEL_DIV_ROUND_UP(IF_SETSIZE, NIFBITS)];  /* 8 words */
    } if_set;                                /* MIF n: bit n % 32 of word n / 32 */

    struct mf6cctl {
        struct sockaddr_in6 mf6cc_origin;    /* S */
        struct sockaddr_in6 mf6cc_mcastgrp;  /* G */
        mifi_t              mf6cc_parent;    /* inbound MIF */
        /* 2 bytes of padding */
        struct if_set       mf6cc_ifset;     /* outbound MIFs: a bit each, no TTLs */
    };                                       /* 92 bytes */

The bitmap is the eight ``I`` fields (see :func:`if_set`), which also gives the padding.
"""

MRT6MSG = struct.Struct("@BBHI16s16s")
"""::

    struct mrt6msg {
        __u8            im6_mbz;      /* 0: where an ICMPv6 message has its type */
        __u8            im6_msgtype;  /* MRT6MSG_* */
        __u16           im6_mif;      /* MIF the packet arrived on */
        __u32           im6_pad;
        struct in6_addr im6_src, im6_dst;
    };                                /* 40 bytes; WHOLEPKT: the packet follows */
"""

SIOC_SG_REQ6 = struct.Struct(f"@{SOCKADDR_IN6.size}s{SOCKADDR_IN6.size}sLLL")
"""::

    struct sioc_sg_req6 {
        struct sockaddr_in6 src;
        struct sockaddr_in6 grp;
        unsigned long pktcnt;
        unsigned long bytecnt;
        unsigned long wrong_if;
    };                                /* 80 bytes */
"""

SIOC_MIF_REQ6 = SIOC_VIF_REQ
"""``struct sioc_mif_req6``: the layout of IPv4's ``sioc_vif_req``, quoted in
:data:`mrouter.kernel.common.SIOC_VIF_REQ` (40 bytes)."""

ICMP6_FILTER_STRUCT = struct.Struct("@8I")
"""::

    struct icmp6_filter {
        __u32 data[8];    /* bit T set: ICMPv6 type T is *blocked* (Linux's sense) */
    };
"""

# Checked once at import: a wrong layout here would corrupt kernel state silently.
_SIZES = {MIF6CTL: 12, SOCKADDR_IN6: 28, MF6CCTL: 92, MRT6MSG: 40, SIOC_SG_REQ6: 80,
          SIOC_MIF_REQ6: 40}
for _layout, _size in _SIZES.items():
    if _layout.size != _size:  # pragma: no cover - depends on the C ABI
        raise ImportError(f"struct {_layout.format} is {_layout.size} bytes, expected {_size}")


def _sockaddr(address: IPv6Address) -> bytes:
    return SOCKADDR_IN6.pack(socket.AF_INET6, 0, 0, address.packed, 0)


def if_set(mifs: Iterable[int]) -> tuple[int, ...]:
    """The ``if_set`` words (IF_SET in mroute6.h) with a bit for each MIF in ``mifs``."""
    words = [0] * (IF_SETSIZE // 32)
    for mif in mifs:
        words[mif // 32] |= 1 << (mif % 32)
    return tuple(words)


def _mf6cctl(source: IPv6Address, group: IPv6Address, parent: int,
             mifs: Iterable[int]) -> bytes:
    return MF6CCTL.pack(_sockaddr(source), _sockaddr(group), parent, *if_set(mifs))


def icmp6_filter(passed: tuple[int, ...] = MLD_TYPES) -> bytes:
    """An ICMP6_FILTER value that passes only the ICMPv6 types in ``passed`` (MLD by
    default). Upcalls are not ICMPv6 messages and arrive whatever the filter says."""
    words = [0xFFFFFFFF] * 8
    for t in passed:
        words[t >> 5] &= ~(1 << (t & 31))
    return ICMP6_FILTER_STRUCT.pack(*words)


# --- errors -------------------------------------------------------------------------------

FAMILY = common.KernelFamily(
    name="IPv6", prefix="MRT6", vif="MIF", config="CONFIG_IPV6_MROUTE",
    socket_kind="raw ICMPv6 socket", table="IPv6 multicast routing table",
    owners="smcroute, pim6sd, mcproxy or another mrouter",
    no_interface="interface with index {ifindex} does not exist; check the interface name",
    address_family=socket.AF_INET6, protocol=socket.IPPROTO_ICMPV6,
    level=socket.IPPROTO_IPV6, vif_ioctl="SIOCGETMIFCNT_IN6", sg_ioctl="SIOCGETSGCNT_IN6",
)
"""The IPv6 API's words and numbers."""

_ERRORS = {
    **common.error_table(FAMILY),
    # ip6mr answers MRT6_TABLE with ENOPROTOOPT when it was built with one table only.
    (common.TABLE, errno.ENOPROTOOPT): (
        "this kernel has no IPv6 multicast routing tables other than the default "
        "(CONFIG_IPV6_MROUTE_MULTIPLE_TABLES, or CONFIG_IPV6_MROUTE itself, is missing); "
        "use the default table"
    ),
    (common.TABLE, errno.EINVAL): (
        "IPv6 multicast routing table {table} is not a valid table id (below 100000000)"
    ),
    (common.ADD_VIF, errno.EINVAL): (
        "MIF {vif}: this kernel has no PIM register MIFs (CONFIG_IPV6_PIMSM_V2)"
    ),
}


def kernel_error(option: Mrt6Option, exc: OSError, **where: object) -> KernelError:
    """Turn an OSError from ``option`` into a KernelError that says what to do.

    ``where`` fills the message (table, vif, ifindex, source, group).
    """
    return common.kernel_error(FAMILY, _ERRORS, option, exc, **where)


def _check_threshold(what: str, threshold: int) -> None:
    # ip6mr sets the threshold of every outbound MIF to 1 (ip6mr_mfc_add) and never reads
    # mif6ctl's: a packet goes out when its hop limit is above 1, and that is all.
    if threshold not in (0, 1):
        raise KernelError(f"{what} asks for a hop-limit threshold of {threshold}, but "
                          "Linux IPv6 multicast routing has none (every packet with a hop "
                          "limit above 1 is forwarded); use 1")


# --- upcalls ------------------------------------------------------------------------------


class Upcall(UpcallOf[IPv6Address]):
    """A message from the kernel's IPv6 multicast forwarding code (an ``mrt6msg``):
    kind, vif (the MIF), source, group and, for WHOLEPKT and WRMIFWHOLE, the packet."""

    __slots__ = ()


def is_upcall(data: bytes) -> bool:
    """True if ``data`` read from the MRT6_INIT socket is an upcall, not an ICMPv6 message.

    A raw ICMPv6 socket reads the message from its type byte; an upcall has im6_mbz 0
    there, and no ICMPv6 type is 0.
    """
    return len(data) > 0 and data[0] == 0


def parse_upcall(data: bytes) -> Upcall:
    """Decode an upcall (see :data:`MRT6MSG`); raises KernelError if it is not one."""
    if len(data) < MRT6MSG.size:
        raise KernelError(f"upcall of {len(data)} bytes is shorter than struct mrt6msg "
                          f"({MRT6MSG.size} bytes)")
    mbz, msgtype, mif, _, src, dst = MRT6MSG.unpack_from(data)
    if mbz != 0:
        raise KernelError(f"not an upcall: im6_mbz is {mbz}, expected 0 (an ICMPv6 "
                          f"message of type {mbz}?)")
    try:
        kind = UpcallType(msgtype)
    except ValueError:
        raise KernelError(f"unknown upcall type {msgtype} (kernel newer than mrouter?)") from None
    whole = kind in WHOLE_PACKET_UPCALLS
    return Upcall(kind, mif, IPv6Address(src), IPv6Address(dst),
                  data[MRT6MSG.size:] if whole else b"")


def encode_upcall(upcall: Upcall) -> bytes:
    """The bytes the kernel would send for ``upcall`` (for tests and tools)."""
    return MRT6MSG.pack(0, upcall.kind, upcall.vif, 0, upcall.source.packed,
                        upcall.group.packed) + upcall.packet


# --- the socket ---------------------------------------------------------------------------


class Mroute6Socket(common.MrouteSocketBase[IPv6Address]):
    """The raw ICMPv6 socket that owns one kernel IPv6 multicast routing table.

    Opening does MRT6_TABLE (if ``table`` is given) and MRT6_INIT; :meth:`close` does
    MRT6_DONE, after which the kernel has dropped every MIF and MFC entry of the table.
    Use it as a context manager; MLD messages and upcalls are read from :attr:`sock`.
    """

    family = FAMILY
    options = Mrt6Option
    errors = _ERRORS
    sg_request = SIOC_SG_REQ6

    def _sg_address(self, address: IPv6Address) -> bytes:
        return _sockaddr(address)

    def add_vif(self, vif: int, ifindex: int, *, threshold: int = 1, rate_limit: int = 0) -> None:
        """MRT6_ADD_MIF: interface ``ifindex`` as MIF ``vif``. ``threshold`` must be 0 or
        1 (ip6mr has no other); ``rate_limit`` is passed on and not implemented."""
        common.check_vif(FAMILY, vif, threshold)
        _check_threshold(f"MIF {vif}", threshold)
        if not 0 < ifindex <= 0xFFFF:
            raise KernelError(f"interface index {ifindex} does not fit struct mif6ctl's "
                              "16-bit mif6c_pifi; the kernel cannot take this interface "
                              "as a MIF")
        data = MIF6CTL.pack(vif, 0, threshold, ifindex, rate_limit)
        self._setopt(Mrt6Option.ADD_MIF, data, vif=vif, ifindex=ifindex)

    def add_register_vif(self, vif: int) -> None:
        """MRT6_ADD_MIF with MIFF_REGISTER: the kernel makes a ``pim6reg`` interface, and
        every packet an MFC entry sends there comes up as a WHOLEPKT upcall."""
        common.check_vif(FAMILY, vif, 1)
        data = MIF6CTL.pack(vif, MifFlag.REGISTER, 1, 0, 0)
        self._setopt(Mrt6Option.ADD_MIF, data, vif=vif, ifindex="(register)")

    def del_vif(self, vif: int) -> None:
        """MRT6_DEL_MIF (its value is the bare index)."""
        if not 0 <= vif < MAXMIFS:
            raise KernelError(f"MIF {vif} does not exist (MIFs are 0-{MAXMIFS - 1})")
        self._setopt(Mrt6Option.DEL_MIF, MIFI.pack(vif), vif=vif)

    def add_mfc(self, source: IPv6Address, group: IPv6Address, iif_vif: int,
                oif_ttls: Mapping[int, int]) -> None:
        """MRT6_ADD_MFC: forward (source, group) arriving on MIF ``iif_vif`` out of the
        MIFs in ``oif_ttls`` (MIF -> threshold, which must be 1: the shape is IPv4's,
        the kernel's is a set). Replaces an existing entry."""
        oifs = common.outbound_vifs(FAMILY, source, group, iif_vif, oif_ttls)
        for mif, threshold in oif_ttls.items():
            _check_threshold(f"the route ({source}, {group}) on MIF {mif}", threshold)
        data = _mf6cctl(source, group, iif_vif, oifs)
        self._setopt(Mrt6Option.ADD_MFC, data, source=source, group=group, vif=iif_vif)

    def del_mfc(self, source: IPv6Address, group: IPv6Address) -> None:
        """MRT6_DEL_MFC (whatever the entry's inbound MIF)."""
        data = _mf6cctl(source, group, 0, ())
        self._setopt(Mrt6Option.DEL_MFC, data, source=source, group=group)

    def filter_mld(self) -> None:
        """ICMP6_FILTER: let only MLD through to :attr:`sock` (upcalls still arrive)."""
        try:
            self.sock.setsockopt(socket.IPPROTO_ICMPV6, ICMP6_FILTER, icmp6_filter())
        except OSError as exc:
            raise KernelError(f"ICMP6_FILTER failed: {exc.strerror}") from None


# --- /proc views --------------------------------------------------------------------------


class ProcMfc(common.ProcMfcOf[IPv6Address]):
    """One line of /proc/net/ip6_mr_cache; ``oifs`` maps MIF -> 1 (ip6mr's threshold)."""

    __slots__ = ()


def read_vif_table(proc: Path = Path("/proc/thread-self/net/ip6_mr_vif")) -> list[ProcVif]:
    """The MIFs of the calling thread's namespace (default table)."""
    return common.parse_vif_rows(proc.read_text())


def read_mfc_table(proc: Path = Path("/proc/thread-self/net/ip6_mr_cache")) -> list[ProcMfc]:
    """The MFC entries of the calling thread's namespace (default table); the kernel
    prints addresses in full (``ff15:0000:...:0001``)."""
    return [ProcMfc(r.group, r.source, r.iif_vif, r.packets, r.bytes, r.wrong_if, r.oifs)
            for r in common.parse_mfc_rows(proc.read_text(), IPv6Address)]
