"""The Linux multicast socket API: options, joins, interfaces and the kernel's table.

Theory of operation
-------------------
This is the API of the Multicast HOWTO's chapter 6 ("Multicast programming") plus the
source-specific additions of RFC 3678, as Linux implements them, wrapped so that every
failure says what went wrong and what to do:

- :class:`McastSocket` wraps one UDP (or raw) socket. Options are properties and
  methods: ``loop`` (IP_MULTICAST_LOOP, on by default), ``ttl`` (IP_MULTICAST_TTL,
  0..255, 1 by default so datagrams stay on the link), ``multicast_all``
  (IP_MULTICAST_ALL: Linux delivers every group any socket on the host joined to every
  socket bound to the port unless this is off) and :meth:`McastSocket.set_interface`
  (IP_MULTICAST_IF, by address, by interface through ``ip_mreqn``'s ifindex, or back to
  INADDR_ANY, "let the routing table choose").
- Memberships: :meth:`~McastSocket.join` / :meth:`~McastSocket.leave`
  (IP_ADD/DROP_MEMBERSHIP), :meth:`~McastSocket.join_source` /
  :meth:`~McastSocket.leave_source` (IP_ADD/DROP_SOURCE_MEMBERSHIP, INCLUDE mode) and
  :meth:`~McastSocket.block_source` / :meth:`~McastSocket.unblock_source`
  (IP_BLOCK/UNBLOCK_SOURCE, on an any-source membership). A membership is a (group,
  interface) pair: one socket may hold many groups, and one group on several interfaces.
  The wrapper keeps its own record of the socket's memberships (``memberships``) to
  explain errors; the kernel remains the authority and its errno is always mapped.
- Every errno is turned into an :class:`McastError` (subclass :class:`McastSyscallError`,
  which keeps ``errno``) by one table, :data:`_ERRORS`, keyed by (operation, errno).
  What can be checked before the system call is checked first: a group that is not
  multicast, a TTL out of range, an unknown interface (the message lists the known
  ones), an interface without an IPv4 address where the kernel needs one.
- :func:`interfaces` is the one source of truth for interfaces: name, index, flags (the
  same bits SIOCGIFFLAGS returns: UP, LOOPBACK, MULTICAST, ...), IPv4 addresses (what
  SIOCGIFCONF/SIOCGIFADDR list) and IPv6 addresses (link-local ones included), read over
  netlink (:mod:`mrouter.linux.netlink`).
- :func:`memberships` reads the kernel's membership table of the current network
  namespace: ``/proc/thread-self/net/igmp`` (per interface, each group and how many
  sockets hold it) and ``/proc/thread-self/net/mcfilter`` (per group, the source filters
  and how many sockets include or exclude each source). It shows the HOWTO's point that
  one socket dropping a group does not make the host leave it while another socket holds
  it: the group stays listed, with one user fewer.

Both families' sockets are one implementation, :class:`FamilySocket`: what differs only
in numbers (option levels and names, the packet-info struct, the table of causes) is a
:class:`SocketFamily` table (:data:`IPV4_SOCKET` here, ``mcast6.IPV6_SOCKET``), and each
subclass keeps only what truly differs (validation, the request structs, the TTL or hop
limit, the outgoing interface). The IPv6 socket,
:class:`mrouter.sockets.mcast6.Mcast6Socket`, thus has the same methods and the same
errors (this module's :class:`Op`, :func:`explain`, interfaces and shared causes
:data:`_COMMON_CAUSES`, plus its own); :func:`mrouter.sockets.mcast6.open_socket` picks
the class by the group's family.

``/proc/thread-self`` rather than ``/proc/self``: a thread that switched network namespace
(``Lab.node(...).enter()``) sees its own namespace's table. ``/proc/sys`` is read the same
way (per thread) for the limits quoted in error messages.
"""

from __future__ import annotations

import enum
import errno as errno_mod
import logging
import os
import socket
import struct
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from ipaddress import AddressValueError, IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from pathlib import Path
from typing import Any, ClassVar, Self, TypeVar

from mrouter.errors import McastError
from mrouter.linux import constants, netlink, sysctl
from mrouter.linux.constants import IN_PKTINFO, INT, IP_MREQN, SO_TIMESTAMPNS, TIMESPEC

log = logging.getLogger(__name__)

INADDR_ANY = IPv4Address(0)
PROC_NET = Path("/proc/thread-self/net")

IPAddress = IPv4Address | IPv6Address
_A = TypeVar("_A", bound=IPv4Address | IPv6Address)


class Family(enum.StrEnum):
    """An address family as the JSON outputs name it (their ``family`` key)."""

    IPV4 = "ipv4"
    IPV6 = "ipv6"

    @classmethod
    def of(cls, address: IPAddress) -> Family:
        return cls.IPV6 if address.version == 6 else cls.IPV4


class IpOption(enum.IntEnum):
    """IPPROTO_IP socket options (include/uapi/linux/in.h); Python lacks several."""

    IP_TTL = 2
    IP_PKTINFO = constants.IP_PKTINFO
    IP_RECVTTL = 12
    IP_MULTICAST_IF = 32
    IP_MULTICAST_TTL = 33
    IP_MULTICAST_LOOP = 34
    IP_ADD_MEMBERSHIP = 35
    IP_DROP_MEMBERSHIP = 36
    IP_UNBLOCK_SOURCE = 37
    IP_BLOCK_SOURCE = 38
    IP_ADD_SOURCE_MEMBERSHIP = 39
    IP_DROP_SOURCE_MEMBERSHIP = 40
    IP_MULTICAST_ALL = 49




class IfFlag(enum.IntFlag):
    """Interface flags (include/uapi/linux/if.h), as SIOCGIFFLAGS and netlink report them."""

    UP = 0x1
    BROADCAST = 0x2
    DEBUG = 0x4
    LOOPBACK = 0x8
    POINTOPOINT = 0x10
    NOTRAILERS = 0x20
    RUNNING = 0x40
    NOARP = 0x80
    PROMISC = 0x100
    ALLMULTI = 0x200
    MASTER = 0x400
    SLAVE = 0x800
    MULTICAST = 0x1000
    PORTSEL = 0x2000
    AUTOMEDIA = 0x4000
    DYNAMIC = 0x8000
    LOWER_UP = 0x10000
    DORMANT = 0x20000
    ECHO = 0x40000


# --- kernel structs (one layout each; addresses are network order, ints native) -------

IP_MREQ = struct.Struct("=4s4s")
"""struct ip_mreq { struct in_addr imr_multiaddr; struct in_addr imr_interface; };"""

IP_MREQ_SOURCE = struct.Struct("=4s4s4s")
"""struct ip_mreq_source { __be32 imr_multiaddr; __be32 imr_interface; __be32 imr_sourceaddr; };
(Linux order; the BSDs put the source second)"""



# --- validation --------------------------------------------------------------------

def _address(value: IPAddress | str | int, what: str) -> IPv4Address:
    if isinstance(value, IPv4Address):
        return value
    try:
        return IPv4Address(value)
    except (AddressValueError, ValueError):
        raise McastError(f"{what} {value!r} is not an IPv4 address; "
                         f"write it in dotted form, e.g. 239.1.1.1") from None


def as_group(value: IPAddress | str) -> IPv4Address:
    """The group address, or :class:`McastError` if it is not a multicast address."""
    group = _address(value, "group")
    if not group.is_multicast:
        raise McastError(f"{group} is not a multicast group address: groups are in "
                         f"224.0.0.0/4; use one from 239.0.0.0/8 for local tests, "
                         f"e.g. 239.1.1.1")
    return group


def as_source(value: IPAddress | str) -> IPv4Address:
    """A source address for a source-specific operation: a unicast sender address."""
    source = _address(value, "source")
    if source.is_multicast or source.is_unspecified or source == IPv4Address("255.255.255.255"):
        raise McastError(f"source {source} is not a unicast address: a source is the "
                         f"address a sender sends from, e.g. 198.51.100.2")
    return source


def check_ttl(ttl: int) -> int:
    """A multicast TTL, or :class:`McastError` if it is outside 0..255."""
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= 255:
        raise McastError(f"TTL {ttl!r} is out of range: IP_MULTICAST_TTL takes 0..255 "
                         f"(0: this host only, 1: this link, the default; each router "
                         f"hop takes 1 off)")
    return ttl


# --- interfaces ----------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Interface:
    """A network interface as the kernel lists it (netlink RTM_GETLINK/RTM_GETADDR)."""

    name: str
    index: int
    flags: IfFlag
    addresses: tuple[IPv4Interface, ...] = ()
    addresses6: tuple[IPv6Interface, ...] = ()  # link-local ones included
    tentative6: tuple[IPv6Address, ...] = ()  # of those, the ones DAD still holds

    @property
    def is_up(self) -> bool:
        return IfFlag.UP in self.flags

    @property
    def is_loopback(self) -> bool:
        return IfFlag.LOOPBACK in self.flags

    @property
    def is_multicast(self) -> bool:
        return IfFlag.MULTICAST in self.flags

    @property
    def address(self) -> IPv4Address | None:
        """The first IPv4 address, the one ip_mreq and ip_mreq_source name the interface by."""
        return self.addresses[0].ip if self.addresses else None

    @property
    def link_local6(self) -> IPv6Address | None:
        """The IPv6 link-local address (fe80::/10): MLD reports are sent from it."""
        return next((a.ip for a in self.addresses6 if a.ip.is_link_local), None)

    def flag_names(self) -> list[str]:
        return [f.name for f in IfFlag if f in self.flags and f.name is not None]

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "flags": self.flag_names(),
            "up": self.is_up,
            "loopback": self.is_loopback,
            "multicast": self.is_multicast,
            "addresses": [str(a) for a in self.addresses],
            "addresses6": [str(a) for a in self.addresses6],
            "tentative6": [str(a) for a in self.tentative6],
        }


def interfaces() -> list[Interface]:
    """Every interface of the calling thread's network namespace, by index."""
    try:
        links, addrs, addrs6 = netlink.query(lambda ipr: (
            netlink.links(ipr), netlink.addresses(ipr), netlink.addresses6(ipr)))
    except OSError as exc:
        raise McastError(f"cannot list interfaces over netlink: {exc.strerror}") from exc
    by_index: dict[int, list[IPv4Interface]] = {}
    for a in addrs:
        by_index.setdefault(a.index, []).append(a.address)
    by_index6: dict[int, list[netlink.Address6]] = {}
    for a6 in addrs6:
        by_index6.setdefault(a6.index, []).append(a6)
    result = [
        Interface(name=link.name, index=link.index, flags=IfFlag(link.flags & sum(IfFlag)),
                  addresses=tuple(by_index.get(link.index, ())),
                  addresses6=tuple(a.address for a in by_index6.get(link.index, ())),
                  tentative6=tuple(a.address.ip for a in by_index6.get(link.index, ())
                                   if a.tentative))
        for link in links
    ]
    return sorted(result, key=lambda i: i.index)


def _unknown(spec: object, known: list[Interface]) -> McastError:
    names = ", ".join(i.name for i in known) or "no interfaces"
    return McastError(f"unknown interface {spec!r}: this network namespace has {names}; "
                      f"see `mrouter ifaces`")


def interface(name_or_index: str | int, *, among: list[Interface] | None = None) -> Interface:
    """The interface with that name or index (a string of digits is tried as both)."""
    known = interfaces() if among is None else among
    for iface in known:
        if iface.name == name_or_index or iface.index == name_or_index:
            return iface
    if isinstance(name_or_index, str) and name_or_index.isascii() and name_or_index.isdigit():
        for iface in known:
            if iface.index == int(name_or_index):
                return iface
    raise _unknown(name_or_index, known)


def interface_by_address(address: IPv4Address | str,
                         *, among: list[Interface] | None = None) -> Interface:
    """The interface that holds this local IPv4 address."""
    return interface_holding(_address(address, "interface address"), among=among)


def interface_holding(address: IPAddress, *, among: list[Interface] | None = None) -> Interface:
    """The interface that holds this local address, of either family."""
    known = interfaces() if among is None else among

    def own(i: Interface) -> tuple[IPv4Interface, ...] | tuple[IPv6Interface, ...]:
        return i.addresses if address.version == 4 else i.addresses6

    for iface in known:
        if any(a.ip == address for a in own(iface)):
            return iface
    here = ", ".join(f"{a.ip} ({i.name})" for i in known for a in own(i)) or "none"
    raise McastError(f"no interface has the address {address}: the IPv{address.version} "
                     f"addresses here are {here}; name an interface by one of them or by "
                     f"its name")


IfaceSpec = Interface | IPv4Address | IPv6Address | str | int | None
"""How callers name an interface: an Interface, a local address, a name or index, or
None for "let the kernel choose" (INADDR_ANY)."""


def resolve_interface(spec: IfaceSpec) -> Interface | None:
    """Turn any :data:`IfaceSpec` into an Interface (None stays None)."""
    if spec is None or isinstance(spec, Interface):
        return spec
    if isinstance(spec, IPv6Address):
        raise McastError(f"{spec} is an IPv6 address; an IPv4 socket names an interface "
                         f"by its name, index or IPv4 address")
    if isinstance(spec, IPv4Address):
        return interface_by_address(spec)
    if isinstance(spec, str):
        try:
            addr = IPv4Address(spec)
        except (AddressValueError, ValueError):
            return interface(spec)
        return interface_by_address(addr)
    return interface(spec)


def route_interface(group: IPAddress) -> Interface | None:
    """The interface the kernel picks for ``group`` when a call names none (INADDR_ANY):
    the output interface of the route to the group, None when there is no route."""
    try:
        route = netlink.query(lambda ipr: netlink.route_to(ipr, group))
    except OSError:
        return None
    if route is None or route.oif is None:
        return None
    try:
        return interface(route.oif)
    except McastError:
        return None


# --- the kernel's membership table ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SourceFilter:
    """One source of a group's filter: how many sockets include it and how many exclude it."""

    source: IPAddress
    include: int
    exclude: int


@dataclass(frozen=True, slots=True)
class GroupMembership:
    """One group the host is a member of on one interface (a line of /proc/net/igmp)."""

    group: IPAddress
    users: int  # sockets holding it (plus the kernel itself for 224.0.0.1)
    report_pending: bool  # a report timer runs (the host will report soon)
    report_in: float  # seconds until that report, 0 when none is pending
    reporter: bool  # this host sent the last report (IGMPv1/v2 report suppression)
    sources: tuple[SourceFilter, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "group": str(self.group),  # canonical: compressed IPv6
            "users": self.users,
            "report_pending": self.report_pending,
            "report_in": self.report_in,
            "reporter": self.reporter,
            "sources": [{"source": str(s.source), "include": s.include, "exclude": s.exclude}
                        for s in self.sources],
        }


@dataclass(frozen=True, slots=True)
class InterfaceMemberships:
    """The groups of one interface; ``igmp_version`` is what the host speaks on that link.

    For IPv6 (``family`` ipv6) the kernel does not publish the MLD version it speaks:
    ``igmp_version`` is 0 and ``mld_version`` is the forced one
    (``net.ipv6.conf.IF.force_mld_version``), None when the kernel chooses.
    """

    ifindex: int
    name: str
    igmp_version: int
    groups: tuple[GroupMembership, ...]
    family: Family = Family.IPV4
    mld_version: int | None = None

    def group(self, group: IPAddress | str) -> GroupMembership | None:
        if isinstance(group, str) and ":" in group:
            g: IPAddress = IPv6Address(group)
        else:
            g = group if isinstance(group, IPv6Address) else _address(group, "group")
        return next((m for m in self.groups if m.group == g), None)

    def header_json(self) -> dict[str, Any]:
        """The per-interface keys of ``mrouter memberships --json``."""
        if self.family is Family.IPV6:
            return {"family": self.family.value, "ifindex": self.ifindex, "iface": self.name,
                    "mld_version": self.mld_version}
        return {"family": self.family.value, "ifindex": self.ifindex, "iface": self.name,
                "igmp_version": self.igmp_version}


def parse_igmp(text: str, *, byteorder: str = sys.byteorder,
               clock_ticks: int = 100) -> list[InterfaceMemberships]:
    """Parse /proc/net/igmp (net/ipv4/igmp.c, igmp_mc_seq_show).

    An interface line ``"%d\\t%-10s: %5d %7s"`` (ifindex, name, count, querier version)
    is followed by group lines ``"\\t\\t\\t\\t%08X %5d %d:%08lX\\t\\t%d"``: the group as
    the raw 32-bit word (so byte-swapped on a little-endian host), users, timer running,
    timer in clock ticks, reporter.
    """
    result: list[InterfaceMemberships] = []
    current: tuple[int, str, int] | None = None
    groups: list[GroupMembership] = []

    def flush() -> None:
        if current is not None:
            result.append(InterfaceMemberships(current[0], current[1], current[2], tuple(groups)))

    for line in text.splitlines()[1:]:
        if not line.strip():
            continue
        if not line.startswith("\t"):
            flush()
            head, _, tail = line.partition(":")
            index, name = head.split()
            querier = tail.split()[1]
            current = (int(index), name, int(querier.lstrip("Vv")))
            groups = []
            continue
        word, users, timer, reporter = line.split()
        running, ticks = timer.split(":")
        group = IPv4Address(int(word, 16).to_bytes(4, byteorder))  # type: ignore[arg-type]
        groups.append(GroupMembership(
            group=group, users=int(users), report_pending=running != "0",
            report_in=int(ticks, 16) / clock_ticks, reporter=reporter != "0"))
    flush()
    return result


def parse_mcfilter(text: str) -> dict[tuple[int, IPAddress], tuple[SourceFilter, ...]]:
    """Parse /proc/net/mcfilter (ip_mcf_seq_show): ``"%3d %6.6s 0x%08x 0x%08x %6lu %6lu"``.

    The name is cut to 6 characters, so entries are keyed by (ifindex, group).
    """
    address: Callable[[int], IPAddress] = IPv4Address
    return parse_filters(text, address)


def parse_filters(text: str, address: Callable[[int], _A]
                  ) -> dict[tuple[int, _A], tuple[SourceFilter, ...]]:
    """The rows of /proc/net/mcfilter or mcfilter6 after the header line: ifindex, name,
    group, source (``address`` reads the hexadecimal number), include and exclude
    counts."""
    result: dict[tuple[int, _A], list[SourceFilter]] = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) != 6:
            continue
        index, _name, group, source, include, exclude = parts
        result.setdefault((int(index), address(int(group, 16))), []).append(
            SourceFilter(address(int(source, 16)), int(include), int(exclude)))
    return {k: tuple(v) for k, v in result.items()}


def memberships(proc_net: Path = PROC_NET) -> list[InterfaceMemberships]:
    """The kernel's membership table of the calling thread's network namespace."""
    try:
        igmp = (proc_net / "igmp").read_text()
        mcfilter = (proc_net / "mcfilter").read_text()
    except OSError as exc:
        raise McastError(f"cannot read the kernel's membership table in {proc_net}: "
                         f"{exc.strerror}; is this Linux with IPv4 multicast?") from exc
    filters = parse_mcfilter(mcfilter)
    ticks = os.sysconf("SC_CLK_TCK")
    return [
        InterfaceMemberships(
            ifm.ifindex, ifm.name, ifm.igmp_version,
            tuple(GroupMembership(g.group, g.users, g.report_pending, g.report_in, g.reporter,
                                  filters.get((ifm.ifindex, g.group), ()))
                  for g in ifm.groups))
        for ifm in parse_igmp(igmp, clock_ticks=ticks)
    ]


# --- errors ------------------------------------------------------------------------------

class McastSyscallError(McastError):
    """The kernel refused a multicast socket call; ``errno`` is its error number."""

    def __init__(self, message: str, errno: int) -> None:
        super().__init__(message)
        self.errno = errno


class Op(enum.Enum):
    """What the socket was asked to do; the first half of every error message."""

    JOIN = "cannot join {group} on {where}"
    LEAVE = "cannot leave {group} on {where}"
    JOIN_SOURCE = "cannot join {group} from source {source} on {where}"
    LEAVE_SOURCE = "cannot leave source {source} of {group} on {where}"
    BLOCK = "cannot block source {source} of {group} on {where}"
    UNBLOCK = "cannot unblock source {source} of {group} on {where}"
    SET_IF = "cannot send multicast out of {where}"
    SET_OPTION = "cannot set {option}"
    GET_OPTION = "cannot read {option}"
    BIND = "cannot bind UDP port {port}"
    SEND = "cannot send to {group}:{port}"
    RECV = "cannot receive"
    OPEN = "cannot open a socket"


_MEMBERSHIP_LIMIT = (
    "this socket already holds {count} memberships, the limit set by "
    "net.ipv4.igmp_max_memberships (currently {max_memberships}); raise it with "
    "sysctl -w net.ipv4.igmp_max_memberships=N or spread the groups over more sockets")
_SOURCE_LIMIT = (
    "this socket already filters {source_count} sources of {group} on {where}, the limit "
    "set by net.ipv4.igmp_max_msf (currently {max_msf}); raise it with "
    "sysctl -w net.ipv4.igmp_max_msf=N or spread the sources over more sockets")
_NO_ROUTE = (
    "no interface was named and the routing table has no route to {group} to choose one; "
    "name the interface (--iface), or add a route: ip route add 224.0.0.0/4 dev IFACE")
_NO_DEVICE = "{where} does not exist (any more); see `mrouter ifaces`"
_NOT_PERMITTED = (
    "not permitted ({errname}): multicast sockets need no privilege, but this step does "
    "(raw sockets need CAP_NET_RAW, ports below {unprivileged_port} need "
    "CAP_NET_BIND_SERVICE); run as root or choose an unprivileged port")

# (operation, errno) -> cause and fix, formatted with the fields the socket supplies.
# (None, errno) is the fallback for an operation without an entry of its own; an errno
# with neither gets the kernel's strerror text and its symbolic name. The rows both
# families share are :data:`_COMMON_CAUSES`; each family adds its own (:data:`_ERRORS`
# here, ``mcast6._CAUSES``).
_COMMON_CAUSES: dict[tuple[Op | None, int], str] = {
    (Op.JOIN, errno_mod.ENODEV): "{no_device}",
    (Op.LEAVE, errno_mod.ENODEV): "{no_device}",
    (Op.LEAVE, errno_mod.EADDRNOTAVAIL): (  # {option}: IP_DROP_MEMBERSHIP, IPV6_LEAVE_GROUP
        "this socket has not joined it ({joined}); {option} must name the group "
        "and interface of an earlier join on the same socket"),
    (Op.JOIN_SOURCE, errno_mod.EADDRNOTAVAIL): (
        "this socket already receives {source} in {group} on {where}; nothing to do"),
    (Op.JOIN_SOURCE, errno_mod.EINVAL): (
        "this socket holds an any-source membership of {group} on {where} with blocked "
        "sources; a socket's membership is either any-source (with blocks) or "
        "source-specific: leave the group first, or use another socket"),
    (Op.JOIN_SOURCE, errno_mod.ENODEV): "{no_device}",
    (Op.LEAVE_SOURCE, errno_mod.EADDRNOTAVAIL): (
        "this socket has not joined {source} in {group} on {where} ({joined})"),
    (Op.LEAVE_SOURCE, errno_mod.EINVAL): (
        "this socket has no source-specific membership of {group} on {where} ({joined})"),
    (Op.LEAVE_SOURCE, errno_mod.ENODEV): "{no_device}",
    (Op.BLOCK, errno_mod.EINVAL): (
        "blocking a source needs an any-source membership of {group} on {where} on this "
        "socket ({joined}); join the group without a source first"),
    (Op.BLOCK, errno_mod.EADDRNOTAVAIL): "{source} is already blocked; nothing to do",
    (Op.BLOCK, errno_mod.ENODEV): "{no_device}",
    (Op.UNBLOCK, errno_mod.EINVAL): (
        "{source} is not blocked in {group} on {where} on this socket ({joined})"),
    (Op.UNBLOCK, errno_mod.EADDRNOTAVAIL): (
        "{source} is not blocked in {group} on {where} on this socket ({joined})"),
    (Op.SET_IF, errno_mod.ENODEV): "{no_device}",
    (Op.SET_OPTION, errno_mod.EINVAL): "the kernel refused the value {value!r} (EINVAL)",
    (Op.BIND, errno_mod.EADDRINUSE): (
        "another socket holds port {port} without SO_REUSEADDR; stop that program or use "
        "another port"),
}

#: IPv4's table: the shared rows and IPv4's own.
_ERRORS: dict[tuple[Op | None, int], str] = {
    **_COMMON_CAUSES,
    (Op.JOIN, errno_mod.EADDRINUSE): (
        "this socket has already joined it (a second IP_ADD_MEMBERSHIP of one group on one "
        "interface is refused){ssm_note}; leave it first, or join from another socket"),
    (Op.JOIN, errno_mod.ENOBUFS): _MEMBERSHIP_LIMIT,
    (Op.JOIN, errno_mod.EINVAL): (
        "the kernel refused the group (EINVAL); check that {group} is a multicast address "
        "and the interface exists"),
    (Op.JOIN_SOURCE, errno_mod.ENOBUFS): "{buffers}",
    (Op.JOIN_SOURCE, errno_mod.EADDRINUSE): (
        "this socket holds an any-source membership of {group} on {where}; leave it first, "
        "or use another socket for the source-specific join"),
    (Op.BLOCK, errno_mod.ENOBUFS): _SOURCE_LIMIT,
    (Op.SET_IF, errno_mod.EADDRNOTAVAIL): (
        "no interface in this network namespace has that address or index; "
        "see `mrouter ifaces`"),
    (Op.BIND, errno_mod.EACCES): (
        "not permitted: ports below {unprivileged_port} (net.ipv4.ip_unprivileged_port_start)"
        " need root or CAP_NET_BIND_SERVICE; run as root or use a port >= "
        "{unprivileged_port}"),
    (Op.SEND, errno_mod.ENETUNREACH): (
        "no route to {group} and no outgoing interface chosen; name one with --iface "
        "(IP_MULTICAST_IF) or add a route: ip route add 224.0.0.0/4 dev IFACE"),
    (Op.SEND, errno_mod.EMSGSIZE): (
        "the datagram is larger than the interface MTU allows with fragmentation off; "
        "send smaller datagrams (--size)"),
    (Op.SEND, errno_mod.EPERM): (
        "not permitted: a firewall rule (nft/iptables OUTPUT) refused the datagram; "
        "check the ruleset of this namespace"),
    (None, errno_mod.EPERM): _NOT_PERMITTED,
    (None, errno_mod.EACCES): _NOT_PERMITTED,
}


class _Context(dict[str, Any]):
    """Message fields; a field nobody supplied shows as '?' rather than raising."""

    def __missing__(self, key: str) -> str:
        return "?"


def explain(op: Op, err: int, causes: Mapping[tuple[Op | None, int], str] | None = None,
            **fields: Any) -> str:
    """The whole message for ``op`` failing with ``err``: what, cause, fix. ``causes`` is
    the family's table (IPv4's :data:`_ERRORS` by default); (None, errno) rows of the
    IPv4 table are the fallback of every family."""
    table = _ERRORS if causes is None else causes
    ctx = _Context(fields)
    ctx.setdefault("errname", errno_mod.errorcode.get(err, str(err)))
    what = op.value.format_map(ctx)
    cause = table.get((op, err)) or table.get((None, err)) or _ERRORS.get((None, err))
    if cause is None:
        return f"{what}: {os.strerror(err)} ({ctx['errname']})"
    for key in ("no_device", "buffers"):  # causes that are themselves templates
        if isinstance(ctx.get(key), str):
            ctx[key] = ctx[key].format_map(ctx)
    return f"{what}: {cause.format_map(ctx)}"


# --- the socket ---------------------------------------------------------------------------

class Mode(enum.Enum):
    """A socket's filter on one (group, interface): RFC 3376 §3.1's INCLUDE/EXCLUDE."""

    ANY_SOURCE = "any-source"  # EXCLUDE mode: every source except the blocked ones
    SOURCE_SPECIFIC = "source-specific"  # INCLUDE mode: only the listed sources


@dataclass(slots=True)
class SocketMembership:
    """What this wrapper knows about one membership of its socket.

    ``ifindex`` is the interface the kernel used: the named one, or for a call that named
    none, the one of the route to the group (0 if that could not be found).
    """

    group: IPAddress
    ifindex: int
    ifname: str
    mode: Mode
    sources: set[IPAddress] = field(default_factory=set)  # included or blocked ones

    def describe(self) -> str:
        where = self.ifname or "the kernel's choice of interface"
        if self.mode is Mode.SOURCE_SPECIFIC:
            return f"{self.group} from {', '.join(map(str, _sorted(self.sources)))} on {where}"
        blocked = (f" blocking {', '.join(map(str, _sorted(self.sources)))}"
                   if self.sources else "")
        return f"{self.group} on {where}{blocked}"


def _sorted(addresses: set[IPAddress]) -> list[IPAddress]:
    return sorted(addresses, key=lambda a: (a.version, int(a)))


@dataclass(frozen=True, slots=True)
class OutgoingInterface:
    """IP_MULTICAST_IF as this socket has it.

    ``address`` is what getsockopt(IP_MULTICAST_IF) returns (0.0.0.0 when unset or when set
    by ifindex); the kernel reports no ifindex, so ``ifindex``/``name`` are what this
    wrapper remembers from :meth:`McastSocket.set_interface` (None when set by address or
    never set). IPv6 (IPV6_MULTICAST_IF) has only an ifindex, which the kernel reports:
    ``address`` is then ``::``.
    """

    address: IPAddress
    ifindex: int | None
    name: str | None

    @property
    def is_default(self) -> bool:
        return self.address.is_unspecified and not self.ifindex


@dataclass(frozen=True, slots=True)
class Datagram:
    """One received datagram with what the kernel said about it."""

    data: bytes
    source: IPAddress
    source_port: int
    destination: IPAddress | None  # from IP_PKTINFO / IPV6_PKTINFO: the group it was sent to
    ifindex: int | None  # from IP_PKTINFO / IPV6_PKTINFO: the interface it arrived on
    ttl: int | None  # from IP_RECVTTL, or the hop limit from IPV6_RECVHOPLIMIT
    timestamp_ns: int | None  # from SO_TIMESTAMPNS: when the kernel received it


def _where(iface: Interface | None, address: IPAddress | None = None) -> str:
    if iface is not None:
        return iface.name
    if address is not None and address != INADDR_ANY:
        return str(address)
    return "the interface the kernel picks"


@dataclass(frozen=True, slots=True)
class SocketFamily:
    """What an address family's multicast socket does differently, as data: the one
    table a :class:`FamilySocket` subclass fills in (IPv4's is :data:`IPV4_SOCKET`,
    IPv6's ``mcast6.IPV6_SOCKET``)."""

    family: Family
    level: int  # IPPROTO_IP / IPPROTO_IPV6: the level of every option below
    unspecified: IPAddress  # what bind() binds to when no address is given
    loop: enum.IntEnum
    multicast_all: enum.IntEnum
    join: enum.IntEnum
    leave: enum.IntEnum
    join_source: enum.IntEnum
    leave_source: enum.IntEnum
    block: enum.IntEnum
    unblock: enum.IntEnum
    recv_pktinfo: enum.IntEnum  # the option asking for the packet-info control message
    recv_ttl: enum.IntEnum  # the option asking for the TTL / hop limit control message
    pktinfo_cmsg: int  # the control messages those deliver
    ttl_cmsg: int
    pktinfo: struct.Struct
    destination: Callable[[bytes], tuple[IPAddress, int]]  # pktinfo -> (group, ifindex)
    sender: Callable[[str], IPAddress]  # recvmsg's address -> the source address
    causes: Mapping[tuple[Op | None, int], str]  # see explain()
    no_device: str  # the cause of ENODEV with a named interface
    no_route: str  # ... and with none (no route to the group)
    send_group: str = "{group}"  # how a send error writes the group

    @property
    def ancillary_size(self) -> int:
        return (socket.CMSG_SPACE(self.pktinfo.size) + socket.CMSG_SPACE(INT.size)
                + socket.CMSG_SPACE(TIMESPEC.size))


class FamilySocket:
    """What :class:`McastSocket` and ``mcast6.Mcast6Socket`` share: the plumbing, the
    options and calls that differ only in their numbers (:class:`SocketFamily`), the
    wrapper's record of memberships, and receiving. A subclass supplies its table
    (``FAMILY``) and what truly differs: opening, validation, the request structs,
    the TTL / hop limit and IP_MULTICAST_IF / IPV6_MULTICAST_IF.

    Closing the socket (or leaving the ``with`` block) drops all its memberships: the
    kernel does that, not this wrapper.
    """

    FAMILY: ClassVar[SocketFamily]
    family: ClassVar[Family]  # FAMILY's, as the JSON outputs name it

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.family = cls.FAMILY.family

    def __init__(self, sock: socket.socket | None = None) -> None:
        if sock is None:
            try:
                sock = self._open()
            except OSError as exc:
                raise self._error(Op.OPEN, exc) from exc
        self.sock = sock
        self._memberships: list[SocketMembership] = []  # most recent first, as the kernel
        self._out_ifindex: int | None = None
        self._out_name: str | None = None

    # -- what a family supplies
    def _open(self) -> socket.socket:
        raise NotImplementedError

    def _group(self, group: IPAddress | str) -> IPAddress:
        """The validated group (the family's ``as_group``)."""
        raise NotImplementedError

    def _resolve(self, iface: IfaceSpec) -> Interface | None:
        """The named interface (the family's ``resolve_interface``)."""
        raise NotImplementedError

    def _join_request(self, group: IPAddress | str, iface: IfaceSpec
                      ) -> tuple[IPAddress, Interface | None, bytes]:
        """A validated any-source join: the group, the interface and the request."""
        raise NotImplementedError

    def _group_request(self, group: IPAddress, iface: Interface | None) -> bytes:
        """The request of an any-source leave (by interface index)."""
        raise NotImplementedError

    def _source_request(self, op: Op, group: IPAddress | str, source: IPAddress | str,
                        iface: IfaceSpec) -> tuple[IPAddress, IPAddress, Interface | None,
                                                   Interface | None, bytes]:
        """A validated source-specific call: the group, the source, the interface the
        messages name, the interface the record keeps, and the request."""
        raise NotImplementedError

    def _family_fields(self, group: IPAddress, iface: Interface | None,
                       current: SocketMembership | None) -> dict[str, Any]:
        """The message fields only this family's causes use."""
        return {}

    def _check_send(self, group: IPAddress, port: int) -> None:
        """Refuse a send the kernel would misroute (nothing to check by default)."""

    # -- plumbing
    def fileno(self) -> int:
        return self.sock.fileno()

    def close(self) -> None:
        self.sock.close()
        self._memberships.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _error(self, op: Op, exc: OSError, **fields: Any) -> McastSyscallError:
        err = exc.errno or errno_mod.EIO
        fields.setdefault("unprivileged_port",
                          sysctl.read_or("net.ipv4.ip_unprivileged_port_start", "1024"))
        return McastSyscallError(explain(op, err, self.FAMILY.causes, **fields), err)

    def _setopt(self, op: Op, option: enum.IntEnum, value: bytes | int, **fields: Any) -> None:
        try:
            self.sock.setsockopt(self.FAMILY.level, option, value)
        except OSError as exc:
            raise self._error(op, exc, option=option.name, value=value, **fields) from exc

    def _getint(self, option: enum.IntEnum) -> int:
        try:
            return self.sock.getsockopt(self.FAMILY.level, option)
        except OSError as exc:
            raise self._error(Op.GET_OPTION, exc, option=option.name) from exc

    # -- options
    @property
    def loop(self) -> bool:
        """IP_MULTICAST_LOOP / IPV6_MULTICAST_LOOP: whether this host's own sockets get
        what this one sends."""
        return bool(self._getint(self.FAMILY.loop))

    @loop.setter
    def loop(self, on: bool) -> None:
        self._setopt(Op.SET_OPTION, self.FAMILY.loop, int(bool(on)))

    @property
    def multicast_all(self) -> bool:
        """IP_MULTICAST_ALL / IPV6_MULTICAST_ALL (Linux, on by default): receive every
        group joined on the host."""
        return bool(self._getint(self.FAMILY.multicast_all))

    @multicast_all.setter
    def multicast_all(self, on: bool) -> None:
        self._setopt(Op.SET_OPTION, self.FAMILY.multicast_all, int(bool(on)))

    # -- memberships
    @property
    def memberships(self) -> tuple[SocketMembership, ...]:
        """This socket's memberships as this wrapper made them, most recent first."""
        return tuple(self._memberships)

    def _find(self, group: IPAddress, iface: Interface | None) -> SocketMembership | None:
        for m in self._memberships:
            if m.group == group and (iface is None or m.ifindex == iface.index):
                return m
        return None

    def _fields(self, group: IPAddress, iface: Interface | None,
                source: IPAddress | None = None) -> dict[str, Any]:
        mine = [m.describe() for m in self._memberships if m.group == group]
        current = self._find(group, iface)
        return {
            "group": group, "where": _where(iface), "source": source,
            "source_count": len(current.sources) if current else 0,
            "joined": ("it holds " + "; ".join(mine)) if mine else
                      f"it holds no membership of {group}",
            "no_device": self.FAMILY.no_device if iface is not None else self.FAMILY.no_route,
            **self._family_fields(group, iface, current),
        }

    def join(self, group: IPAddress | str, iface: IfaceSpec = None) -> SocketMembership:
        """Receive ``group`` (from any source) on ``iface`` (IP_ADD_MEMBERSHIP /
        IPV6_JOIN_GROUP); None lets the kernel pick the interface from the route to the
        group."""
        g, resolved, request = self._join_request(group, iface)
        self._setopt(Op.JOIN, self.FAMILY.join, request, **self._fields(g, resolved))
        chosen = resolved or route_interface(g)
        m = SocketMembership(g, chosen.index if chosen else 0, chosen.name if chosen else "",
                             Mode.ANY_SOURCE)
        self._memberships.insert(0, m)
        return m

    def leave(self, group: IPAddress | str, iface: IfaceSpec = None) -> None:
        """Leave ``group`` on ``iface`` (IP_DROP_MEMBERSHIP / IPV6_LEAVE_GROUP).

        With no interface (INADDR_ANY) the HOWTO says "the first matching group is
        dropped"; Linux today resolves INADDR_ANY to the interface of the route to the
        group, exactly as for the join, and drops the membership on that interface.
        """
        g = self._group(group)
        resolved = self._resolve(iface)
        request = self._group_request(g, resolved)
        self._setopt(Op.LEAVE, self.FAMILY.leave, request, **self._fields(g, resolved))
        m = self._find(g, resolved or route_interface(g))
        if m is not None:
            self._memberships.remove(m)

    def _record(self, group: IPAddress, iface: Interface | None, mode: Mode,
                source: IPAddress, add: bool) -> None:
        m = self._find(group, iface)
        if m is None and add:
            m = SocketMembership(group, iface.index if iface else 0,
                                 iface.name if iface else "", mode)
            self._memberships.insert(0, m)
        if m is None:
            return
        if m.mode is not mode:  # the kernel switched an empty filter to the other mode
            m.mode, m.sources = mode, set()
        (m.sources.add if add else m.sources.discard)(source)
        if mode is Mode.SOURCE_SPECIFIC and not m.sources:  # INCLUDE {} = not a member
            self._memberships.remove(m)

    def _source_change(self, op: Op, option: enum.IntEnum, mode: Mode, add: bool,
                       group: IPAddress | str, source: IPAddress | str,
                       iface: IfaceSpec) -> None:
        """One source-specific option, then the change in this wrapper's record."""
        g, s, named, chosen, request = self._source_request(op, group, source, iface)
        self._setopt(op, option, request, **self._fields(g, named, s))
        self._record(g, chosen, mode, s, add=add)

    def join_source(self, group: IPAddress | str, source: IPAddress | str,
                    iface: IfaceSpec = None) -> None:
        """Receive ``group`` only from ``source`` (and any other sources added the same
        way) on ``iface`` (IP_ADD_SOURCE_MEMBERSHIP / MCAST_JOIN_SOURCE_GROUP)."""
        self._source_change(Op.JOIN_SOURCE, self.FAMILY.join_source, Mode.SOURCE_SPECIFIC,
                            True, group, source, iface)

    def leave_source(self, group: IPAddress | str, source: IPAddress | str,
                     iface: IfaceSpec = None) -> None:
        """IP_DROP_SOURCE_MEMBERSHIP / MCAST_LEAVE_SOURCE_GROUP; dropping the last source
        leaves the group."""
        self._source_change(Op.LEAVE_SOURCE, self.FAMILY.leave_source, Mode.SOURCE_SPECIFIC,
                            False, group, source, iface)

    def block_source(self, group: IPAddress | str, source: IPAddress | str,
                     iface: IfaceSpec = None) -> None:
        """On an any-source membership, stop receiving from ``source`` (IP_BLOCK_SOURCE /
        MCAST_BLOCK_SOURCE)."""
        self._source_change(Op.BLOCK, self.FAMILY.block, Mode.ANY_SOURCE, True,
                            group, source, iface)

    def unblock_source(self, group: IPAddress | str, source: IPAddress | str,
                       iface: IfaceSpec = None) -> None:
        """Receive ``source`` again (IP_UNBLOCK_SOURCE / MCAST_UNBLOCK_SOURCE)."""
        self._source_change(Op.UNBLOCK, self.FAMILY.unblock, Mode.ANY_SOURCE, False,
                            group, source, iface)

    # -- data
    def bind(self, port: int, address: IPAddress | None = None, *, reuse: bool = True) -> None:
        """Bind to ``address:port`` (the unspecified address by default); ``reuse``
        (SO_REUSEADDR) lets several receivers share a port, each getting its own copy of
        every datagram."""
        bound = self.FAMILY.unspecified if address is None else address
        try:
            if reuse:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((str(bound), port))
        except OSError as exc:
            raise self._error(Op.BIND, exc, port=port) from exc

    def enable_receive_info(self) -> None:
        """Ask for the packet info (group, ingress interface: IP_PKTINFO / IPV6_RECVPKTINFO),
        the TTL or hop limit (IP_RECVTTL / IPV6_RECVHOPLIMIT) and SO_TIMESTAMPNS."""
        self._setopt(Op.SET_OPTION, self.FAMILY.recv_pktinfo, 1)
        self._setopt(Op.SET_OPTION, self.FAMILY.recv_ttl, 1)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError as exc:
            raise self._error(Op.SET_OPTION, exc, option="SO_TIMESTAMPNS") from exc

    def recv(self, bufsize: int = 65535) -> Datagram | None:
        """One datagram with its ancillary data (call :meth:`enable_receive_info` first);
        None when the socket is non-blocking and nothing is waiting."""
        try:
            data, ancdata, _flags, addr = self.sock.recvmsg(bufsize,
                                                            self.FAMILY.ancillary_size)
        except BlockingIOError:
            return None
        except OSError as exc:
            raise self._error(Op.RECV, exc) from exc
        return _datagram(self.FAMILY, data, ancdata, addr)

    def sendto(self, data: bytes, group: IPAddress | str, port: int) -> int:
        g = self._group(group)
        self._check_send(g, port)
        try:
            return self.sock.sendto(data, (str(g), port))
        except OSError as exc:
            raise self._error(Op.SEND, exc, group=self.FAMILY.send_group.format(group=g),
                              port=port) from exc


def _datagram(family: SocketFamily, data: bytes, ancdata: list[tuple[int, int, bytes]],
              addr: Any) -> Datagram:
    destination: IPAddress | None = None
    ifindex: int | None = None
    ttl: int | None = None
    stamp: int | None = None
    for level, kind, payload in ancdata:
        if level == family.level and kind == family.pktinfo_cmsg:
            destination, ifindex = family.destination(payload)
        elif level == family.level and kind == family.ttl_cmsg:
            (ttl,) = INT.unpack_from(payload)
        elif level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            sec, nsec = TIMESPEC.unpack_from(payload)
            stamp = sec * 1_000_000_000 + nsec
    return Datagram(data, family.sender(addr[0]), int(addr[1]), destination, ifindex, ttl, stamp)


def _ipv4_destination(pktinfo: bytes) -> tuple[IPAddress, int]:
    ifindex, _spec_dst, dst = IN_PKTINFO.unpack_from(pktinfo)
    return IPv4Address(dst), ifindex


IPV4_SOCKET = SocketFamily(
    family=Family.IPV4, level=socket.IPPROTO_IP, unspecified=INADDR_ANY,
    loop=IpOption.IP_MULTICAST_LOOP, multicast_all=IpOption.IP_MULTICAST_ALL,
    join=IpOption.IP_ADD_MEMBERSHIP, leave=IpOption.IP_DROP_MEMBERSHIP,
    join_source=IpOption.IP_ADD_SOURCE_MEMBERSHIP,
    leave_source=IpOption.IP_DROP_SOURCE_MEMBERSHIP,
    block=IpOption.IP_BLOCK_SOURCE, unblock=IpOption.IP_UNBLOCK_SOURCE,
    recv_pktinfo=IpOption.IP_PKTINFO, recv_ttl=IpOption.IP_RECVTTL,
    pktinfo_cmsg=IpOption.IP_PKTINFO, ttl_cmsg=IpOption.IP_TTL, pktinfo=IN_PKTINFO,
    destination=_ipv4_destination, sender=IPv4Address, causes=_ERRORS,
    no_device=_NO_DEVICE, no_route=_NO_ROUTE)


class McastSocket(FamilySocket):
    """A multicast UDP socket whose every failure is an :class:`McastError`.

    ``McastSocket()`` opens ``socket(AF_INET, SOCK_DGRAM)``; ``McastSocket(sock)`` wraps an
    existing AF_INET socket (UDP or raw). Closing the socket (or leaving the ``with``
    block) drops all its memberships: the kernel does that, not this wrapper.
    """

    FAMILY = IPV4_SOCKET

    def _open(self) -> socket.socket:
        return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)

    # -- options
    @property
    def ttl(self) -> int:
        """IP_MULTICAST_TTL: the TTL of multicast datagrams this socket sends (default 1)."""
        return self._getint(IpOption.IP_MULTICAST_TTL)

    @ttl.setter
    def ttl(self, ttl: int) -> None:
        self._setopt(Op.SET_OPTION, IpOption.IP_MULTICAST_TTL, check_ttl(ttl))

    def set_interface(self, iface: IfaceSpec) -> OutgoingInterface:
        """IP_MULTICAST_IF: send out of this interface (None: the routing table decides).

        A local address uses the HOWTO's ``struct in_addr``; a name, index or
        :class:`Interface` uses ``ip_mreqn`` with the ifindex (works without an IPv4
        address and cannot be confused by two interfaces sharing one).
        """
        if iface is None:
            self._setopt(Op.SET_IF, IpOption.IP_MULTICAST_IF,
                         IP_MREQN.pack(bytes(4), bytes(4), 0), where="INADDR_ANY")
            self._out_ifindex = self._out_name = None
            return self.interface
        if isinstance(iface, IPv4Address) or (isinstance(iface, str) and _is_address(iface)):
            address = _address(iface, "interface address")
            resolved = interface_by_address(address)
            self._setopt(Op.SET_IF, IpOption.IP_MULTICAST_IF, address.packed,
                         where=f"{address} ({resolved.name})")
            self._out_ifindex = self._out_name = None
            return self.interface
        resolved_if = resolve_interface(iface)
        assert resolved_if is not None
        self._setopt(Op.SET_IF, IpOption.IP_MULTICAST_IF,
                     IP_MREQN.pack(bytes(4), bytes(4), resolved_if.index),
                     where=resolved_if.name, no_device=_NO_DEVICE)
        self._out_ifindex, self._out_name = resolved_if.index, resolved_if.name
        return self.interface

    @property
    def interface(self) -> OutgoingInterface:
        """IP_MULTICAST_IF as set; see :class:`OutgoingInterface` for what comes from where."""
        try:
            raw = self.sock.getsockopt(socket.IPPROTO_IP, IpOption.IP_MULTICAST_IF, 4)
        except OSError as exc:
            raise self._error(Op.GET_OPTION, exc, option="IP_MULTICAST_IF") from exc
        return OutgoingInterface(IPv4Address(raw), self._out_ifindex, self._out_name)

    # -- memberships: what IPv4 does its own way
    def _group(self, group: IPAddress | str) -> IPAddress:
        return as_group(group)

    def _resolve(self, iface: IfaceSpec) -> Interface | None:
        return resolve_interface(iface)

    def _family_fields(self, group: IPAddress, iface: Interface | None,
                       current: SocketMembership | None) -> dict[str, Any]:
        return {
            "count": len(self._memberships),
            "max_memberships": sysctl.read_or("net.ipv4.igmp_max_memberships", "?"),
            "max_msf": sysctl.read_or("net.ipv4.igmp_max_msf", "?"),
            "ssm_note": (" (as a source-specific membership)"
                         if current and current.mode is Mode.SOURCE_SPECIFIC else ""),
            # ENOBUFS of a source join: the source limit if it adds to a membership this
            # socket holds, the membership limit if it makes a new one
            "buffers": _SOURCE_LIMIT if current is not None else _MEMBERSHIP_LIMIT,
        }

    def _join_request(self, group: IPAddress | str, iface: IfaceSpec
                      ) -> tuple[IPAddress, Interface | None, bytes]:
        """A name, index or Interface is passed as ``ip_mreqn`` with the ifindex; a local
        address as the HOWTO's ``ip_mreq``."""
        g = as_group(group)
        resolved = resolve_interface(iface)
        by_address = isinstance(iface, IPv4Address) or (isinstance(iface, str)
                                                       and _is_address(iface))
        if by_address and resolved is not None and resolved.address is not None:
            local = IPv4Address(str(iface)) if isinstance(iface, str) else iface
            assert isinstance(local, IPv4Address)
            return g, resolved, IP_MREQ.pack(g.packed, local.packed)
        return g, resolved, self._group_request(g, resolved)

    def _group_request(self, group: IPAddress, iface: Interface | None) -> bytes:
        return IP_MREQN.pack(group.packed, bytes(4), iface.index if iface else 0)

    def _source_request(self, op: Op, group: IPAddress | str, source: IPAddress | str,
                        iface: IfaceSpec) -> tuple[IPAddress, IPAddress, Interface | None,
                                                   Interface | None, bytes]:
        g, s = as_group(group), as_source(source)
        resolved = resolve_interface(iface)
        if resolved is not None and resolved.address is None:
            raise McastError(
                f"{op.value.format(group=g, source=s, where=resolved.name)}: {resolved.name} "
                f"has no IPv4 address, and ip_mreq_source names the interface by its "
                f"address; add one (ip addr add ADDRESS/LEN dev {resolved.name}) or use "
                f"another interface")
        local = resolved.address if resolved and resolved.address else INADDR_ANY
        request = IP_MREQ_SOURCE.pack(g.packed, local.packed, s.packed)
        chosen = resolved or route_interface(g)  # messages name it too
        return g, s, chosen, chosen, request


def _is_address(text: str) -> bool:
    try:
        IPv4Address(text)
    except (AddressValueError, ValueError):
        return False
    return True


def iter_memberships(table: list[InterfaceMemberships]) -> Iterator[tuple[InterfaceMemberships,
                                                                          GroupMembership]]:
    """(interface, group) pairs of a membership table, in table order."""
    for ifm in table:
        for g in ifm.groups:
            yield ifm, g
