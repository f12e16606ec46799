"""What the IPv4 and IPv6 multicast routing bindings share, written once.

Theory of operation: Linux's ip6mr (net/ipv6/ip6mr.c) is ipmr (net/ipv4/ipmr.c) with
IPv6 addresses. The two APIs line up option for option (MRT_BASE = MRT6_BASE = 200, and
the same offsets: INIT, DONE, ADD_VIF/ADD_MIF, ... FLUSH), upcall type for upcall type
(IGMPMSG_* and MRT6MSG_* are both 1 NOCACHE, 2 WRONGVIF/WRONGMIF, 3 WHOLEPKT,
4 WRVIFWHOLE/WRMIFWHOLE), errno for errno (EADDRINUSE for a table already owned,
ENOPROTOOPT without the kernel option, ENFILE past 32 interfaces, EPERM/EACCES without
the capabilities), and in their per-interface counters (``struct sioc_vif_req`` and
``struct sioc_mif_req6`` have the same layout). What differs is data: the socket's
protocol and option level, the struct layouts that carry addresses, the interface word
("VIF" or "MIF"), the kernel config name.

So this module holds the shared parts, parameterised by a :class:`KernelFamily`:

- :class:`MrouteSocketBase`: open, MRT_TABLE, MRT_INIT, version, assert, the counter
  ioctls, MRT_DONE on close; each family's socket adds the calls whose structs carry
  addresses (add/del VIF and MFC, the (S,G) counter request);
- the error table (:func:`kernel_error`): one wording for both families;
- :func:`outbound_vifs`: the checks on an MFC entry's outbound interfaces;
- the result types (:class:`UpcallOf`, :class:`SgCounters`, :class:`VifCounters`,
  :class:`ProcVif`, :class:`ProcMfcOf`) and the ``/proc`` row parsers.

:mod:`mrouter.kernel.mroute` (IPv4) and :mod:`mrouter.kernel.mroute6` (IPv6) are the
two bindings; every setsockopt still happens in one of those three modules.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import socket
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address, IPv6Address
from types import TracebackType
from typing import ClassVar, Generic, Self, TypeVar

from mrouter.errors import KernelError
from mrouter.linux.constants import INT, MAXVIFS

A = TypeVar("A", IPv4Address, IPv6Address)


DEFAULT_TABLE = 254
"""RT_TABLE_MAIN (= RT6_TABLE_DFLT): the table MRT_INIT owns when no MRT_TABLE is given."""

SIOCPROTOPRIVATE = 0x89E0
"""SIOCGETVIFCNT and SIOCGETMIFCNT_IN6; the (S,G) counter ioctls are one above."""


class UpcallType(IntEnum):
    """``im_msgtype`` (IGMPMSG_*) of an IPv4 upcall, ``im6_msgtype`` (MRT6MSG_*) of an
    IPv6 one: the values are the same, so one enum serves both; the IPv6 names are
    aliases (``UpcallType.WRONGMIF is UpcallType.WRONGVIF``)."""

    NOCACHE = 1
    WRONGVIF = 2
    WHOLEPKT = 3
    WRVIFWHOLE = 4
    WRONGMIF = 2
    WRMIFWHOLE = 4


#: Upcalls that carry the whole original packet after the struct.
WHOLE_PACKET_UPCALLS = frozenset({UpcallType.WHOLEPKT, UpcallType.WRVIFWHOLE})


@dataclass(frozen=True, slots=True)
class KernelFamily:
    """The words and numbers of one family's multicast routing API."""

    name: str  # "IPv4"
    prefix: str  # option names: "MRT" (MRT_INIT) or "MRT6" (MRT6_INIT)
    vif: str  # what the kernel calls an interface of the table: "VIF" or "MIF"
    config: str  # the kernel option without which the API is missing
    socket_kind: str  # what MRT_INIT needs, for the message
    table: str  # "multicast routing table", as a user would name it
    owners: str  # daemons that may hold the table
    no_interface: str  # ADD_VIF/ADD_MIF with EADDRNOTAVAIL: the ifindex is not usable
    address_family: socket.AddressFamily
    protocol: int  # IPPROTO_IGMP or IPPROTO_ICMPV6
    level: int  # IPPROTO_IP or IPPROTO_IPV6
    vif_ioctl: str  # SIOCGETVIFCNT / SIOCGETMIFCNT_IN6, for messages
    sg_ioctl: str  # SIOCGETSGCNT / SIOCGETSGCNT_IN6

    def option_name(self, option: IntEnum) -> str:
        return f"{self.prefix}_{option.name}"


# --- errors -------------------------------------------------------------------------------

# Option numbers shared by MRT_* and MRT6_* (MRT_BASE + n): the error table is keyed by
# number so that one table serves both enums.
INIT, DONE, ADD_VIF, DEL_VIF, ADD_MFC, DEL_MFC, VERSION, ASSERT, PIM, TABLE = range(200, 210)

_NOT_ROOT = (
    "permission denied: multicast routing needs root (CAP_NET_ADMIN and CAP_NET_RAW); "
    "run mrouter as root"
)


def error_table(family: KernelFamily) -> dict[tuple[int | None, int], str]:
    """(option number, errno) -> message template; (None, errno) is for any option.

    Templates name the fields :func:`kernel_error` fills: table, vif, ifindex, source,
    group. The words come from ``family``, so IPv4 and IPv6 say the same things.
    """
    v = family.vif
    no_mroute = (f"this kernel has no {family.name} multicast routing ({family.config}); "
                 "load or build a kernel with it")
    return {
        (None, errno.EPERM): _NOT_ROOT,
        (None, errno.EACCES): _NOT_ROOT,
        (None, errno.ENOPROTOOPT): no_mroute,
        (INIT, errno.EADDRINUSE): (
            f"{family.table} {{table}} is already owned by another process "
            f"({family.owners} may hold it); stop that daemon, "
            "or give this one another table"
        ),
        (INIT, errno.EOPNOTSUPP): f"{family.prefix}_INIT needs a {family.socket_kind}",
        (TABLE, errno.EBUSY): f"{family.prefix}_TABLE must be set before {family.prefix}_INIT",
        (TABLE, errno.ENOENT): f"{family.table} {{table}} cannot be created",
        (ADD_VIF, errno.EADDRINUSE): (
            f"{v} {{vif}} is already in use in table {{table}}; delete it first or pick "
            "another index"
        ),
        (ADD_VIF, errno.EADDRNOTAVAIL): family.no_interface,
        (ADD_VIF, errno.ENFILE): (
            f"{v} {{vif}} is out of range: the kernel allows at most {MAXVIFS} {v}s "
            f"(0-{MAXVIFS - 1})"
        ),
        (DEL_VIF, errno.EADDRNOTAVAIL): f"{v} {{vif}} does not exist",
        (ADD_MFC, errno.EINVAL): (
            f"the kernel refused the route ({{source}}, {{group}}) from {v} {{vif}}: the "
            f"group must be multicast and the {v}s must exist"
        ),
        (DEL_MFC, errno.ENOENT): "no kernel route for ({source}, {group})",
    }


def kernel_error(family: KernelFamily, errors: Mapping[tuple[int | None, int], str],
                 option: IntEnum, exc: OSError, /, **where: object) -> KernelError:
    """Turn an OSError from ``option`` into a KernelError that says what to do.

    ``errors`` is :func:`error_table`'s (a family may add rows); ``where`` fills the
    message (table, vif, ifindex, source, group).
    """
    code = exc.errno if exc.errno is not None else 0
    template = errors.get((int(option), code)) or errors.get((None, code))
    name = family.option_name(option)
    if template is None:
        detail = ", ".join(f"{k}={v}" for k, v in where.items())
        return KernelError(f"{name} failed: {exc.strerror or exc}" + (f" ({detail})" if
                                                                     detail else ""))
    fields = {"table": DEFAULT_TABLE, "vif": "?", "ifindex": "?", "source": "?",
              "group": "?", **where}
    return KernelError(f"{name}: " + template.format(**fields))


def check_vif(family: KernelFamily, vif: int, threshold: int) -> None:
    """The checks before ADD_VIF/ADD_MIF: an index the kernel accepts, a threshold in 0-255."""
    v = family.vif
    if not 0 <= vif < MAXVIFS:
        raise KernelError(f"{v} {vif} is out of range: the kernel allows at most "
                          f"{MAXVIFS} {v}s (0-{MAXVIFS - 1}); use fewer interfaces")
    if not 0 <= threshold <= 255:
        raise KernelError(f"TTL threshold {threshold} of {v} {vif} is not in 0-255")


def outbound_vifs(family: KernelFamily, source: object, group: object, iif_vif: int,
                  oif_ttls: Mapping[int, int]) -> dict[int, int]:
    """An MFC entry's outbound interfaces, checked: VIF -> TTL threshold clamped to
    1-255, never the inbound interface (a packet never goes back where it came from)."""
    v = family.vif
    if not 0 <= iif_vif < MAXVIFS:
        raise KernelError(f"inbound {v} {iif_vif} of ({source}, {group}) is not in "
                          f"0-{MAXVIFS - 1}")
    out: dict[int, int] = {}
    for vif, ttl in oif_ttls.items():
        if not 0 <= vif < MAXVIFS:
            raise KernelError(f"outbound {v} {vif} of ({source}, {group}) is not in "
                              f"0-{MAXVIFS - 1}")
        if vif != iif_vif:
            out[vif] = max(1, min(255, ttl))
    return out


# --- result types -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UpcallOf(Generic[A]):
    """A message from the kernel's multicast forwarding code (``igmpmsg`` or ``mrt6msg``).

    ``vif`` is the interface the packet arrived on (a VIF or MIF index); ``packet`` is
    the whole original packet for WHOLEPKT and WRVIFWHOLE, else empty.
    """

    kind: UpcallType
    vif: int
    source: A
    group: A
    packet: bytes = b""


@dataclass(frozen=True, slots=True)
class SgCounters:
    """Per-(S,G) counters of an MFC entry (SIOCGETSGCNT, SIOCGETSGCNT_IN6)."""

    packets: int
    bytes: int
    wrong_if: int


@dataclass(frozen=True, slots=True)
class VifCounters:
    """Per-interface counters (SIOCGETVIFCNT, SIOCGETMIFCNT_IN6)."""

    packets_in: int
    packets_out: int
    bytes_in: int
    bytes_out: int


@dataclass(frozen=True, slots=True)
class ProcVif:
    """One line of /proc/net/ip_mr_vif or ip6_mr_vif."""

    vif: int
    name: str
    bytes_in: int
    packets_in: int
    bytes_out: int
    packets_out: int
    flags: int


@dataclass(frozen=True, slots=True)
class ProcMfcOf(Generic[A]):
    """One line of /proc/net/ip_mr_cache or ip6_mr_cache; ``oifs`` maps VIF -> TTL
    threshold (always 1 for IPv6, whose MFC entries carry only a set of MIFs)."""

    group: A
    source: A
    iif_vif: int  # -1 while unresolved
    packets: int
    bytes: int
    wrong_if: int
    oifs: dict[int, int]


SIOC_VIF_REQ = struct.Struct("@HLLLL")
"""Both families' per-interface counter request::

    struct sioc_vif_req {             struct sioc_mif_req6 {
        vifi_t vifi;                      mifi_t mifi;   /* unsigned short, padded */
        unsigned long icount;             unsigned long icount;   /* packets in */
        unsigned long ocount;             unsigned long ocount;   /* packets out */
        unsigned long ibytes;             unsigned long ibytes;
        unsigned long obytes;             unsigned long obytes;
    };                                };                /* 40 bytes on x86-64 */
"""


def parse_vif_rows(text: str) -> list[ProcVif]:
    """The rows of ip_mr_vif / ip6_mr_vif (both print index, name, bytes in, packets
    in, bytes out, packets out, flags first; IPv4 adds its local and remote addresses)."""
    rows = []
    for line in text.splitlines()[1:]:
        f = line.split()
        rows.append(ProcVif(int(f[0]), f[1], int(f[2]), int(f[3]), int(f[4]), int(f[5]),
                            int(f[6], 16)))
    return rows


def parse_mfc_rows(text: str, address: Callable[[str], A]) -> list[ProcMfcOf[A]]:
    """The rows of ip_mr_cache / ip6_mr_cache: group, origin (each read by ``address``),
    iif, packets, bytes, wrong, then ``VIF:TTL`` for each outbound interface."""
    rows = []
    for line in text.splitlines()[1:]:
        f = line.split()
        oifs = {int(v): int(t) for v, t in (o.split(":") for o in f[6:])}
        rows.append(ProcMfcOf(address(f[0]), address(f[1]), int(f[2]), int(f[3]),
                              int(f[4]), int(f[5]), oifs))
    return rows


# --- the socket ---------------------------------------------------------------------------


class MrouteSocketBase(Generic[A]):
    """The raw socket that owns one kernel multicast routing table, either family.

    Opening does MRT_TABLE (if ``table`` is given) and MRT_INIT; :meth:`close` does
    MRT_DONE, after which the kernel has dropped every VIF and MFC entry of the table.
    Use it as a context manager. The socket is left blocking; the caller may set it
    non-blocking and read membership reports and upcalls from :attr:`sock`.

    A family's subclass sets :attr:`family`, :attr:`options` (its MRT_* enum) and
    :attr:`sg_request` and adds the calls whose structs carry addresses.
    """

    family: ClassVar[KernelFamily]
    options: ClassVar[type[IntEnum]]
    errors: ClassVar[Mapping[tuple[int | None, int], str]]
    sg_request: ClassVar[struct.Struct]  # (S, G, packets, bytes, wrong_if)

    def __init__(self, table: int | None = None, *, asserts: bool = False) -> None:
        self.table = DEFAULT_TABLE if table is None else table
        opt = self.options
        try:
            self.sock = socket.socket(self.family.address_family, socket.SOCK_RAW,
                                      self.family.protocol)
        except OSError as exc:
            raise self.error(opt["INIT"], exc, table=self.table) from None
        try:
            if table is not None:
                self._setopt(opt["TABLE"], INT.pack(table))
            self._setopt(opt["INIT"], INT.pack(1))
        except KernelError:
            self.sock.close()
            raise
        self._open = True
        if asserts:
            self.set_assert(True)

    @classmethod
    def error(cls, option: IntEnum, exc: OSError, **where: object) -> KernelError:
        return kernel_error(cls.family, cls.errors, option, exc, **where)

    def fileno(self) -> int:
        return self.sock.fileno()

    def _setopt(self, option: IntEnum, value: bytes, **where: object) -> None:
        try:
            self.sock.setsockopt(self.family.level, option, value)
        except OSError as exc:
            raise self.error(option, exc, table=self.table, **where) from None

    def version(self) -> int:
        """MRT_VERSION / MRT6_VERSION: the API version (0x305 on Linux)."""
        option = self.options["VERSION"]
        try:
            raw = self.sock.getsockopt(self.family.level, option, INT.size)
        except OSError as exc:
            raise self.error(option, exc, table=self.table) from None
        value: int = INT.unpack(raw)[0]
        return value

    def set_assert(self, on: bool) -> None:
        """MRT_ASSERT / MRT6_ASSERT: ask for WRONGVIF / WRONGMIF upcalls."""
        self._setopt(self.options["ASSERT"], INT.pack(int(on)))

    # What each family's subclass implements (the structs that carry addresses):

    def add_vif(self, vif: int, ifindex: int, *, threshold: int = 1, rate_limit: int = 0) -> None:
        """ADD_VIF / ADD_MIF: interface ``ifindex`` as VIF (MIF) ``vif``."""
        raise NotImplementedError

    def del_vif(self, vif: int) -> None:
        """DEL_VIF / DEL_MIF."""
        raise NotImplementedError

    def add_mfc(self, source: A, group: A, iif_vif: int, oif_ttls: Mapping[int, int]) -> None:
        """ADD_MFC: forward (source, group) from ``iif_vif`` out of ``oif_ttls``' VIFs."""
        raise NotImplementedError

    def del_mfc(self, source: A, group: A) -> None:
        """DEL_MFC."""
        raise NotImplementedError

    def _sg_address(self, address: A) -> bytes:
        """``address`` as the (S,G) counter request lays it out."""
        raise NotImplementedError

    def sg_counters(self, source: A, group: A) -> SgCounters:
        """SIOCGETSGCNT(_IN6): packets, bytes and wrong-interface arrivals of an MFC entry."""
        name = self.family.sg_ioctl
        buf = bytearray(self.sg_request.pack(self._sg_address(source),
                                             self._sg_address(group), 0, 0, 0))
        try:
            fcntl.ioctl(self.sock.fileno(), SIOCPROTOPRIVATE + 1, buf)
        except OSError as exc:
            if exc.errno == errno.EADDRNOTAVAIL:
                raise KernelError(f"no kernel route for ({source}, {group})") from None
            raise KernelError(f"{name} ({source}, {group}) failed: {exc.strerror}"
                              ) from None
        _, _, packets, nbytes, wrong_if = self.sg_request.unpack(buf)
        return SgCounters(packets, nbytes, wrong_if)

    def vif_counters(self, vif: int) -> VifCounters:
        """SIOCGETVIFCNT / SIOCGETMIFCNT_IN6: packets and bytes in and out of a VIF/MIF."""
        v = self.family.vif
        buf = bytearray(SIOC_VIF_REQ.pack(vif, 0, 0, 0, 0))
        try:
            fcntl.ioctl(self.sock.fileno(), SIOCPROTOPRIVATE, buf)
        except OSError as exc:
            raise KernelError(f"{self.family.vif_ioctl} {v} {vif} failed: {exc.strerror}; "
                              f"does the {v} exist?") from None
        _, icount, ocount, ibytes, obytes = SIOC_VIF_REQ.unpack(buf)
        return VifCounters(icount, ocount, ibytes, obytes)

    def close(self) -> None:
        """MRT_DONE and close: the kernel drops the table's VIFs and MFC entries."""
        if not self._open:
            return
        self._open = False
        with contextlib.suppress(OSError):  # closing the socket has the same effect
            self.sock.setsockopt(self.family.level, self.options["DONE"], INT.pack(1))
        self.sock.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
