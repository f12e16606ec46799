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

Every MRT_* setsockopt and the SIOCGETVIFCNT/SIOCGETSGCNT ioctls are in this module,
each C struct quoted next to the one :class:`struct.Struct` that lays it out.
:func:`read_vif_table` and :func:`read_mfc_table` read the per-namespace views in
``/proc/thread-self/net/ip_mr_vif`` and ``ip_mr_cache``.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import socket
import struct
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from enum import IntEnum, IntFlag
from ipaddress import IPv4Address
from pathlib import Path
from types import TracebackType

from mrouter.errors import KernelError
from mrouter.igmp.messages import ANY
from mrouter.linux.constants import INT, IPV4_PROTOCOL_OFFSET

MAXVIFS = 32
"""The kernel's limit on VIFs per table (``MAXVIFS`` in mroute.h)."""

DEFAULT_TABLE = 254
"""RT_TABLE_MAIN: the table MRT_INIT owns when no MRT_TABLE is given."""


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


class UpcallType(IntEnum):
    """``im_msgtype`` of an upcall (IGMPMSG_*)."""

    NOCACHE = 1
    WRONGVIF = 2
    WHOLEPKT = 3
    WRVIFWHOLE = 4


SIOCPROTOPRIVATE = 0x89E0
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

SIOC_VIF_REQ = struct.Struct("@HLLLL")
"""::

    struct sioc_vif_req {
        vifi_t vifi;            /* unsigned short, then padding to a long */
        unsigned long icount;   /* packets in */
        unsigned long ocount;   /* packets out */
        unsigned long ibytes;
        unsigned long obytes;
    };
"""

# Checked once at import: a wrong layout here would corrupt kernel state silently.
_SIZES = {VIFCTL: 16, MFCCTL: 60, IGMPMSG: 20}
for _layout, _size in _SIZES.items():
    if _layout.size != _size:  # pragma: no cover - depends on the C ABI
        raise ImportError(f"struct {_layout.format} is {_layout.size} bytes, expected {_size}")


# --- errors -------------------------------------------------------------------------------

_NOT_ROOT = (
    "permission denied: multicast routing needs root (CAP_NET_ADMIN and CAP_NET_RAW); "
    "run mrouter as root"
)
_NO_MROUTE = (
    "this kernel has no IPv4 multicast routing (CONFIG_IP_MROUTE); "
    "load or build a kernel with it"
)

#: (option, errno) -> message; (None, errno) applies to any option.
_ERRORS: dict[tuple[MrtOption | None, int], str] = {
    (None, errno.EPERM): _NOT_ROOT,
    (None, errno.EACCES): _NOT_ROOT,
    (None, errno.ENOPROTOOPT): _NO_MROUTE,
    (MrtOption.INIT, errno.EADDRINUSE): (
        "multicast routing table {table} is already owned by another process "
        "(smcroute, pimd, igmpproxy or another mrouter may hold it); stop that daemon, "
        "or give this one another table"
    ),
    (MrtOption.INIT, errno.EOPNOTSUPP): "MRT_INIT needs a raw IGMP socket",
    (MrtOption.TABLE, errno.EBUSY): "MRT_TABLE must be set before MRT_INIT",
    (MrtOption.TABLE, errno.ENOENT): "multicast routing table {table} cannot be created",
    (MrtOption.ADD_VIF, errno.EADDRINUSE): (
        "VIF {vif} is already in use in table {table}; delete it first or pick another index"
    ),
    (MrtOption.ADD_VIF, errno.EADDRNOTAVAIL): (
        "interface with index {ifindex} does not exist or has no IPv4 configuration; "
        "check the interface name and that it has an address"
    ),
    (MrtOption.ADD_VIF, errno.ENFILE): (
        "VIF {vif} is out of range: the kernel allows at most 32 VIFs (0-31)"
    ),
    (MrtOption.DEL_VIF, errno.EADDRNOTAVAIL): "VIF {vif} does not exist",
    (MrtOption.ADD_MFC, errno.EINVAL): (
        "the kernel refused the route ({source}, {group}) from VIF {vif}: the group must "
        "be multicast and the VIFs must exist"
    ),
    (MrtOption.DEL_MFC, errno.ENOENT): "no kernel route for ({source}, {group})",
}

for _key in ((None, errno.EPERM), (None, errno.EACCES), (None, errno.ENOPROTOOPT)):
    for _opt in MrtOption:
        _ERRORS.setdefault((_opt, _key[1]), _ERRORS[_key])


def kernel_error(option: MrtOption, exc: OSError, **where: object) -> KernelError:
    """Turn an OSError from ``option`` into a KernelError that says what to do.

    ``where`` fills the message (table, vif, ifindex, source, group).
    """
    code = exc.errno if exc.errno is not None else 0
    template = _ERRORS.get((option, code))
    name = f"MRT_{option.name}"
    if template is None:
        detail = ", ".join(f"{k}={v}" for k, v in where.items())
        return KernelError(f"{name} failed: {exc.strerror or exc}" + (f" ({detail})" if
                                                                     detail else ""))
    fields = {"table": DEFAULT_TABLE, "vif": "?", "ifindex": "?", "source": "?",
              "group": "?", **where}
    return KernelError(f"{name}: " + template.format(**fields))


# --- upcalls ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upcall:
    """A message from the kernel's multicast forwarding code (an ``igmpmsg``).

    ``packet`` is the whole original packet for WHOLEPKT and WRVIFWHOLE, else empty.
    """

    kind: UpcallType
    vif: int
    source: IPv4Address
    group: IPv4Address
    packet: bytes = b""


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
    whole = kind in (UpcallType.WHOLEPKT, UpcallType.WRVIFWHOLE)
    return Upcall(kind, vif | (vif_hi << 8), IPv4Address(src), IPv4Address(dst),
                  data[IGMPMSG.size:] if whole else b"")


def encode_upcall(upcall: Upcall) -> bytes:
    """The bytes the kernel would send for ``upcall`` (for tests and tools)."""
    return IGMPMSG.pack(0, 0, upcall.kind, 0, upcall.vif & 0xFF, upcall.vif >> 8,
                        upcall.source.packed, upcall.group.packed) + upcall.packet


# --- counters -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SgCounters:
    """Per-(S,G) counters of an MFC entry (SIOCGETSGCNT)."""

    packets: int
    bytes: int
    wrong_if: int


@dataclass(frozen=True, slots=True)
class VifCounters:
    """Per-VIF counters (SIOCGETVIFCNT)."""

    packets_in: int
    packets_out: int
    bytes_in: int
    bytes_out: int


# --- the socket ---------------------------------------------------------------------------


class MrouteSocket:
    """The raw IGMP socket that owns one kernel multicast routing table.

    Opening does MRT_TABLE (if ``table`` is given) and MRT_INIT; :meth:`close` does
    MRT_DONE, after which the kernel has dropped every VIF and MFC entry of the table.
    Use it as a context manager. The socket is left blocking; the caller may set it
    non-blocking and read IGMP packets and upcalls from :attr:`sock`.
    """

    def __init__(self, table: int | None = None, *, asserts: bool = False) -> None:
        self.table = DEFAULT_TABLE if table is None else table
        try:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
        except OSError as exc:
            raise kernel_error(MrtOption.INIT, exc, table=self.table) from None
        try:
            if table is not None:
                self._setopt(MrtOption.TABLE, INT.pack(table))
            self._setopt(MrtOption.INIT, INT.pack(1))
        except KernelError:
            self.sock.close()
            raise
        self._open = True
        if asserts:
            self.set_assert(True)

    def fileno(self) -> int:
        return self.sock.fileno()

    def _setopt(self, option: MrtOption, value: bytes, **where: object) -> None:
        try:
            self.sock.setsockopt(socket.IPPROTO_IP, option, value)
        except OSError as exc:
            raise kernel_error(option, exc, table=self.table, **where) from None

    def version(self) -> int:
        """MRT_VERSION: the API version (0x305 on Linux)."""
        try:
            raw = self.sock.getsockopt(socket.IPPROTO_IP, MrtOption.VERSION, INT.size)
        except OSError as exc:
            raise kernel_error(MrtOption.VERSION, exc, table=self.table) from None
        value: int = INT.unpack(raw)[0]
        return value

    def set_assert(self, on: bool) -> None:
        """MRT_ASSERT: ask for IGMPMSG_WRONGVIF upcalls."""
        self._setopt(MrtOption.ASSERT, INT.pack(int(on)))

    def add_vif(self, vif: int, ifindex: int, *, threshold: int = 1, rate_limit: int = 0) -> None:
        """MRT_ADD_VIF by ifindex. ``threshold``: packets need a TTL above it to go out."""
        if not 0 <= vif < MAXVIFS:
            raise KernelError(f"VIF {vif} is out of range: the kernel allows at most "
                              f"{MAXVIFS} VIFs (0-{MAXVIFS - 1}); use fewer interfaces")
        if not 0 <= threshold <= 255:
            raise KernelError(f"TTL threshold {threshold} of VIF {vif} is not in 0-255")
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
        ttls = bytearray(MAXVIFS)
        for vif, ttl in oif_ttls.items():
            if not 0 <= vif < MAXVIFS:
                raise KernelError(f"outbound VIF {vif} of ({source}, {group}) is not in "
                                  f"0-{MAXVIFS - 1}")
            ttls[vif] = max(1, min(255, ttl))
        ttls[iif_vif] = 0  # never back out of the inbound interface
        data = MFCCTL.pack(source.packed, group.packed, iif_vif, bytes(ttls), 0, 0, 0, 0)
        self._setopt(MrtOption.ADD_MFC, data, source=source, group=group, vif=iif_vif)

    def del_mfc(self, source: IPv4Address, group: IPv4Address) -> None:
        """MRT_DEL_MFC."""
        data = MFCCTL.pack(source.packed, group.packed, 0, bytes(MAXVIFS), 0, 0, 0, 0)
        self._setopt(MrtOption.DEL_MFC, data, source=source, group=group)

    def sg_counters(self, source: IPv4Address, group: IPv4Address) -> SgCounters:
        """SIOCGETSGCNT: packets, bytes and wrong-interface arrivals of an MFC entry."""
        buf = bytearray(SIOC_SG_REQ.pack(source.packed, group.packed, 0, 0, 0))
        try:
            fcntl.ioctl(self.sock.fileno(), SIOCGETSGCNT, buf)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise KernelError(f"no kernel route for ({source}, {group})") from None
            raise KernelError(f"SIOCGETSGCNT ({source}, {group}) failed: {exc.strerror}"
                              ) from None
        _, _, packets, nbytes, wrong_if = SIOC_SG_REQ.unpack(buf)
        return SgCounters(packets, nbytes, wrong_if)

    def vif_counters(self, vif: int) -> VifCounters:
        """SIOCGETVIFCNT: packets and bytes in and out of a VIF."""
        buf = bytearray(SIOC_VIF_REQ.pack(vif, 0, 0, 0, 0))
        try:
            fcntl.ioctl(self.sock.fileno(), SIOCGETVIFCNT, buf)
        except OSError as exc:
            raise KernelError(f"SIOCGETVIFCNT VIF {vif} failed: {exc.strerror}; "
                              "does the VIF exist?") from None
        _, icount, ocount, ibytes, obytes = SIOC_VIF_REQ.unpack(buf)
        return VifCounters(icount, ocount, ibytes, obytes)

    def close(self) -> None:
        """MRT_DONE and close: the kernel drops the table's VIFs and MFC entries."""
        if not self._open:
            return
        self._open = False
        with contextlib.suppress(OSError):  # closing the socket has the same effect
            self.sock.setsockopt(socket.IPPROTO_IP, MrtOption.DONE, INT.pack(1))
        self.sock.close()

    def __enter__(self) -> MrouteSocket:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


# --- /proc views --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProcVif:
    """One line of /proc/net/ip_mr_vif."""

    vif: int
    name: str
    bytes_in: int
    packets_in: int
    bytes_out: int
    packets_out: int
    flags: int


@dataclass(frozen=True, slots=True)
class ProcMfc:
    """One line of /proc/net/ip_mr_cache; ``oifs`` maps VIF -> TTL threshold."""

    group: IPv4Address
    source: IPv4Address
    iif_vif: int  # -1 while unresolved
    packets: int
    bytes: int
    wrong_if: int
    oifs: dict[int, int]


def _proc_address(hex_word: str) -> IPv4Address:
    # The kernel prints the in-memory __be32 as a host-order %08X.
    return IPv4Address(int(hex_word, 16).to_bytes(4, sys.byteorder))


def read_vif_table(proc: Path = Path("/proc/thread-self/net/ip_mr_vif")) -> list[ProcVif]:
    """The VIFs of the calling thread's namespace (default table)."""
    rows = []
    for line in proc.read_text().splitlines()[1:]:
        f = line.split()
        rows.append(ProcVif(int(f[0]), f[1], int(f[2]), int(f[3]), int(f[4]), int(f[5]),
                            int(f[6], 16)))
    return rows


def read_mfc_table(proc: Path = Path("/proc/thread-self/net/ip_mr_cache")) -> list[ProcMfc]:
    """The MFC entries of the calling thread's namespace (default table)."""
    rows = []
    for line in proc.read_text().splitlines()[1:]:
        f = line.split()
        oifs = {int(v): int(t) for v, t in (o.split(":") for o in f[6:])}
        rows.append(ProcMfc(_proc_address(f[0]), _proc_address(f[1]), int(f[2]), int(f[3]),
                            int(f[4]), int(f[5]), oifs))
    return rows
