"""The Linux IPv6 multicast socket API: options, joins, and the kernel's IPv6 table.

Theory of operation
-------------------
:class:`Mcast6Socket` is :class:`mrouter.sockets.mcast.McastSocket` for AF_INET6: both
are :class:`~mrouter.sockets.mcast.FamilySocket` over a table of what differs
(:data:`IPV6_SOCKET` here), with the same methods, the same
:class:`~mrouter.sockets.mcast.Op` names in its messages and the same error classes
(:class:`~mrouter.errors.McastError`, :class:`~mrouter.sockets.mcast.McastSyscallError`);
only the options and the causes differ (RFC 3493 §5.2, RFC 3678, Linux
``net/ipv6/ipv6_sockglue.c`` and ``mcast.c``):

- ``loop`` is IPV6_MULTICAST_LOOP; ``hops`` (alias ``ttl``, so callers need not care
  about the family) is IPV6_MULTICAST_HOPS, 0..255 or -1 for the default (1);
  ``multicast_all`` is IPV6_MULTICAST_ALL; :meth:`~Mcast6Socket.set_interface` is
  IPV6_MULTICAST_IF, which takes an interface *index* (IPv6 has no "interface address"
  form) and which the kernel reports back, unlike IPv4's.
- Any-source joins and leaves are IPV6_JOIN_GROUP / IPV6_LEAVE_GROUP (``ipv6_mreq``);
  source-specific ones and blocks are RFC 3678's protocol-independent
  MCAST_JOIN_SOURCE_GROUP, MCAST_LEAVE_SOURCE_GROUP, MCAST_BLOCK_SOURCE and
  MCAST_UNBLOCK_SOURCE (``group_source_req``, by interface index).
- Checked before the kernel is asked: a group that is not multicast; a link-scope
  (ff02::/16) or interface-local (ff01::/16) group without an interface (the kernel
  would pick one from the routing table, which for those scopes means "some link");
  an unknown interface; an interface without any IPv6 address (IPv6 off there, or the
  link not up yet), which could neither send from nor report for the group.
- :func:`memberships6` reads ``/proc/net/igmp6`` (one line per interface and group) and
  ``/proc/net/mcfilter6`` (per group and source, the INCLUDE and EXCLUDE counts).

Kernel behaviours worth knowing, found with the probes behind :data:`_CAUSES`:
a source-specific join on a socket's *any-source* membership without blocked sources
is accepted and turns it into a source-specific one (Linux allows mode switches of
empty filters); the per-socket source limit is ``net.ipv6.mld_max_msf``, a host-wide
sysctl that a non-initial network namespace cannot even read; ``/proc/net/mcfilter6``
lists an interface's sources only when the group most recently joined there has
sources (its iterator starts at the first group of each interface), so an empty
``sources`` list there is not proof of an empty filter.
"""

from __future__ import annotations

import errno as errno_mod
import os
import socket
from ipaddress import AddressValueError, IPv4Address, IPv6Address
from pathlib import Path
from typing import Any

from mrouter.errors import McastError
from mrouter.linux import sysctl
from mrouter.linux.constants import (
    GROUP_SOURCE_REQ as GROUP_SOURCE_REQ,
)
from mrouter.linux.constants import (
    IN6_PKTINFO as IN6_PKTINFO,
)
from mrouter.linux.constants import (
    IPV6_MREQ as IPV6_MREQ,
)
from mrouter.linux.constants import (
    SOCKADDR_IN6 as SOCKADDR_IN6,
)
from mrouter.linux.constants import (
    SOCKADDR_STORAGE_LEN as SOCKADDR_STORAGE_LEN,
)
from mrouter.linux.constants import (
    Ipv6Option as Ipv6Option,
)
from mrouter.sockets.mcast import (
    _COMMON_CAUSES,
    _NO_DEVICE,
    PROC_NET,
    Family,
    FamilySocket,
    GroupMembership,
    IfaceSpec,
    Interface,
    InterfaceMemberships,
    IPAddress,
    McastSocket,
    Op,
    OutgoingInterface,
    SocketFamily,
    SourceFilter,
    interface,
    interface_holding,
    parse_filters,
    route_interface,
)
from mrouter.sockets.mcast import Datagram as Datagram  # re-exported: callers import it here
from mrouter.sockets.mcast import McastSyscallError as McastSyscallError
from mrouter.sockets.mcast import Mode as Mode
from mrouter.sockets.mcast import SocketMembership as SocketMembership
from mrouter.sockets.mcast import explain as explain
from mrouter.sockets.mcast import interfaces as interfaces
from mrouter.sockets.mcast import iter_memberships as iter_memberships
from mrouter.sockets.mcast import resolve_interface as mcast_resolve

UNSPECIFIED = IPv6Address("::")


# --- kernel structs: in mrouter.linux.constants (IPV6_MREQ, SOCKADDR_IN6, GROUP_SOURCE_REQ,
# IN6_PKTINFO), re-exported here

def _sockaddr(address: IPv6Address) -> bytes:
    raw = SOCKADDR_IN6.pack(socket.AF_INET6, 0, 0, address.packed, 0)
    return raw + bytes(SOCKADDR_STORAGE_LEN - len(raw))


def group_source_req(ifindex: int, group: IPv6Address, source: IPv6Address) -> bytes:
    return GROUP_SOURCE_REQ.pack(ifindex, _sockaddr(group), _sockaddr(source))


# --- validation --------------------------------------------------------------------------

def _address(value: IPAddress | str, what: str) -> IPv6Address:
    if isinstance(value, IPv6Address):
        return value
    try:
        return IPv6Address(str(value).strip("[]"))
    except (AddressValueError, ValueError):
        raise McastError(f"{what} {value!r} is not an IPv6 address; write it in the "
                         f"usual colon form, e.g. ff15::1") from None


def as_group(value: IPAddress | str) -> IPv6Address:
    """The IPv6 group address, or :class:`McastError` if it is not multicast (ff00::/8)."""
    group = _address(value, "group")
    if not group.is_multicast:
        raise McastError(f"{group} is not a multicast group address: IPv6 groups are in "
                         f"ff00::/8; use one from ff15::/16 (site scope, transient) for "
                         f"local tests, e.g. ff15::1")
    return group


def is_link_scope(group: IPv6Address) -> bool:
    """Interface-local (ff01::/16, scope 1) or link-local (ff02::/16, scope 2): a group
    that means something only on one named interface (RFC 4291 §2.7)."""
    return group.packed[1] & 0x0F in (1, 2)


def as_source(value: IPAddress | str) -> IPv6Address:
    """A source for a source-specific operation: a unicast IPv6 sender address."""
    source = _address(value, "source")
    if source.is_multicast or source.is_unspecified:
        raise McastError(f"source {source} is not a unicast address: a source is the "
                         f"address a sender sends from, e.g. 2001:db8:1::2")
    return source


def check_hops(hops: int) -> int:
    """A multicast hop limit, or :class:`McastError` if it is outside -1..255."""
    if isinstance(hops, bool) or not isinstance(hops, int) or not -1 <= hops <= 255:
        raise McastError(f"hop limit {hops!r} is out of range: IPV6_MULTICAST_HOPS takes "
                         f"0..255, or -1 for the default (1: this link; each router hop "
                         f"takes 1 off)")
    return hops


def _require_ipv6(what: str, iface: Interface) -> None:
    """Refuse an interface without any IPv6 address (IPv6 off there, or link not up)."""
    if iface.addresses6:
        return
    off = sysctl.read_or(sysctl_key(iface.name, "disable_ipv6"), "0") == "1"
    why = (f"IPv6 is off there (net.ipv6.conf.{iface.name}.disable_ipv6=1); turn it on "
           f"with sysctl -w net.ipv6.conf.{iface.name}.disable_ipv6=0"
           if off else "not even a link-local one (is the link up?); bring it up "
           f"(ip link set {iface.name} up) or add one (ip addr add ADDRESS/64 dev "
           f"{iface.name})")
    raise McastError(f"{what}: {iface.name} has no IPv6 address, {why}, or use another "
                     f"interface")


def sysctl_key(iface: str, name: str) -> str:
    """``net.ipv6.conf.IFACE.NAME`` (a dot in the name written as a slash)."""
    return f"net.ipv6.conf.{iface.replace('.', '/')}.{name}"


# --- the kernel's IPv6 membership table ----------------------------------------------

#: include/net/if_inet6.h: struct ifmcaddr6's mca_flags
MAF_TIMER_RUNNING = 0x01
MAF_LAST_REPORTER = 0x02


def parse_igmp6(text: str, *, clock_ticks: int = 100) -> list[InterfaceMemberships]:
    """Parse /proc/net/igmp6 (net/ipv6/mcast.c, igmp6_mc_seq_show): one line per group,
    ``"%-4d %-15s %pi6 %5d %08X %ld"``: ifindex, name, the group as 32 hex digits, users,
    the MAF_* flags, the report timer in clock ticks. No header line."""
    by_if: dict[tuple[int, str], list[GroupMembership]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) != 6:
            continue
        index, name, group, users, flags_s, ticks = parts
        flags = int(flags_s, 16)
        by_if.setdefault((int(index), name), []).append(GroupMembership(
            group=IPv6Address(int(group, 16)), users=int(users),
            report_pending=bool(flags & MAF_TIMER_RUNNING),
            report_in=int(ticks) / clock_ticks if flags & MAF_TIMER_RUNNING else 0.0,
            reporter=bool(flags & MAF_LAST_REPORTER)))
    return [InterfaceMemberships(index, name, 0, tuple(groups), Family.IPV6)
            for (index, name), groups in by_if.items()]


def parse_mcfilter6(text: str) -> dict[tuple[int, IPv6Address], tuple[SourceFilter, ...]]:
    """Parse /proc/net/mcfilter6 (igmp6_mcf_seq_show), after its header line:
    ``"%3d %6.6s %pi6 %pi6 %6lu %6lu"``: ifindex, name cut to 6 characters, group,
    source, how many sockets include and exclude it. Keyed by (ifindex, group)."""
    return parse_filters(text, IPv6Address)


def memberships6(proc_net: Path = PROC_NET) -> list[InterfaceMemberships]:
    """The kernel's IPv6 membership table of the calling thread's network namespace."""
    try:
        igmp6 = (proc_net / "igmp6").read_text()
        mcfilter6 = (proc_net / "mcfilter6").read_text()
    except OSError as exc:
        raise McastError(f"cannot read the kernel's IPv6 membership table in {proc_net}: "
                         f"{exc.strerror}; is this Linux with IPv6?") from exc
    filters: dict[Any, tuple[SourceFilter, ...]] = parse_mcfilter6(mcfilter6)
    out = []
    for ifm in parse_igmp6(igmp6, clock_ticks=os.sysconf("SC_CLK_TCK")):
        forced = sysctl.read_int(sysctl_key(ifm.name, "force_mld_version"), 0)
        forced = forced or sysctl.read_int("net.ipv6.conf.all.force_mld_version", 0)
        out.append(InterfaceMemberships(
            ifm.ifindex, ifm.name, 0,
            tuple(GroupMembership(g.group, g.users, g.report_pending, g.report_in,
                                  g.reporter, filters.get((ifm.ifindex, g.group), ()))
                  for g in ifm.groups),
            Family.IPV6, forced or None))
    return out


# --- errors --------------------------------------------------------------------------------

_SOURCE_LIMIT6 = (
    "this socket already filters {source_count} sources of {group} on {where}, the limit "
    "set by net.ipv6.mld_max_msf ({max_msf}); spread the sources over more sockets, or "
    "raise it in the host's initial namespace with sysctl -w net.ipv6.mld_max_msf=N")
_NO_ROUTE6 = (
    "no interface was named and no IPv6 route leads to {group} (is IPv6 on here?); name "
    "the interface (--iface), or add a route: ip -6 route add ff00::/8 dev IFACE table local")

#: (operation, errno) -> cause and fix, for the IPv6 socket: the rows both families share
#: (mcast._COMMON_CAUSES) and IPv6's own; see mcast.explain.
_CAUSES: dict[tuple[Op | None, int], str] = {
    **_COMMON_CAUSES,
    (Op.JOIN, errno_mod.EADDRINUSE): (
        "this socket has already joined it ({joined}; a second IPV6_JOIN_GROUP of one "
        "group on one interface is refused); leave it first, or join from another socket"),
    (Op.JOIN, errno_mod.EINVAL): (
        "the kernel refused the group (EINVAL); check that {group} is a multicast address"),
    (Op.JOIN_SOURCE, errno_mod.ENOBUFS): _SOURCE_LIMIT6,
    (Op.BLOCK, errno_mod.ENOBUFS): _SOURCE_LIMIT6,
    (Op.BIND, errno_mod.EADDRNOTAVAIL): (
        "no interface here has that address, or duplicate address detection still holds "
        "it (tentative, about a second after it was added); wait, or bind to ::"),
    (Op.SEND, errno_mod.ENETUNREACH): (
        "no IPv6 route to {group} and no outgoing interface chosen (or IPv6 is off); "
        "name one with --iface (IPV6_MULTICAST_IF)"),
    (Op.SEND, errno_mod.EADDRNOTAVAIL): (
        "the outgoing interface has no usable IPv6 source address yet (tentative: "
        "duplicate address detection takes about a second); wait and send again"),
    (Op.SEND, errno_mod.EMSGSIZE): (
        "the datagram is larger than the interface MTU allows (IPv6 routers do not "
        "fragment); send smaller datagrams (--size)"),
    (Op.SEND, errno_mod.EPERM): (
        "not permitted: a firewall rule (nft/ip6tables OUTPUT) refused the datagram; "
        "check the ruleset of this namespace"),
}


# --- the socket ----------------------------------------------------------------------------

def _ipv6_destination(pktinfo: bytes) -> tuple[IPAddress, int]:
    dst, ifindex = IN6_PKTINFO.unpack_from(pktinfo)
    return IPv6Address(dst), ifindex


def _ipv6_sender(address: str) -> IPAddress:
    return IPv6Address(address.split("%", 1)[0])  # a link-local one has "%scope"


IPV6_SOCKET = SocketFamily(
    family=Family.IPV6, level=socket.IPPROTO_IPV6, unspecified=UNSPECIFIED,
    loop=Ipv6Option.IPV6_MULTICAST_LOOP, multicast_all=Ipv6Option.IPV6_MULTICAST_ALL,
    join=Ipv6Option.IPV6_JOIN_GROUP, leave=Ipv6Option.IPV6_LEAVE_GROUP,
    join_source=Ipv6Option.MCAST_JOIN_SOURCE_GROUP,
    leave_source=Ipv6Option.MCAST_LEAVE_SOURCE_GROUP,
    block=Ipv6Option.MCAST_BLOCK_SOURCE, unblock=Ipv6Option.MCAST_UNBLOCK_SOURCE,
    recv_pktinfo=Ipv6Option.IPV6_RECVPKTINFO, recv_ttl=Ipv6Option.IPV6_RECVHOPLIMIT,
    pktinfo_cmsg=Ipv6Option.IPV6_PKTINFO, ttl_cmsg=Ipv6Option.IPV6_HOPLIMIT,
    pktinfo=IN6_PKTINFO, destination=_ipv6_destination, sender=_ipv6_sender,
    causes=_CAUSES, no_device=_NO_DEVICE, no_route=_NO_ROUTE6, send_group="[{group}]")


class Mcast6Socket(FamilySocket):
    """An IPv6 multicast UDP socket whose every failure is an McastError.

    ``Mcast6Socket()`` opens ``socket(AF_INET6, SOCK_DGRAM)`` with IPV6_V6ONLY (so it
    never sees IPv4 through mapped addresses); ``Mcast6Socket(sock)`` wraps an existing
    AF_INET6 socket.
    """

    FAMILY = IPV6_SOCKET

    def _open(self) -> socket.socket:
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        sock.setsockopt(socket.IPPROTO_IPV6, Ipv6Option.IPV6_V6ONLY, 1)
        return sock

    # -- options
    @property
    def hops(self) -> int:
        """IPV6_MULTICAST_HOPS: the hop limit of multicast datagrams sent (default 1)."""
        return self._getint(Ipv6Option.IPV6_MULTICAST_HOPS)

    @hops.setter
    def hops(self, hops: int) -> None:
        self._setopt(Op.SET_OPTION, Ipv6Option.IPV6_MULTICAST_HOPS, check_hops(hops))

    ttl = hops  # the family-neutral name the shells use

    def set_interface(self, iface: IfaceSpec) -> OutgoingInterface:
        """IPV6_MULTICAST_IF: send out of this interface (None: the routing table decides)."""
        if iface is None:
            self._setopt(Op.SET_IF, Ipv6Option.IPV6_MULTICAST_IF, 0, where="the default")
            self._out_name = None
            return self.interface
        resolved = resolve_interface(iface)
        assert resolved is not None
        _require_ipv6(Op.SET_IF.value.format(where=resolved.name), resolved)
        self._setopt(Op.SET_IF, Ipv6Option.IPV6_MULTICAST_IF, resolved.index,
                     where=resolved.name, no_device=_NO_DEVICE)
        self._out_name = resolved.name
        return self.interface

    @property
    def interface(self) -> OutgoingInterface:
        """IPV6_MULTICAST_IF as the kernel has it (an index; 0 when unset)."""
        index = self._getint(Ipv6Option.IPV6_MULTICAST_IF)
        name = self._out_name
        if index and name is None:
            try:
                name = interface(index).name
            except McastError:
                name = None
        return OutgoingInterface(UNSPECIFIED, index or None, name if index else None)

    # -- memberships: what IPv6 does its own way
    def _group(self, group: IPAddress | str) -> IPAddress:
        return as_group(group)

    def _resolve(self, iface: IfaceSpec) -> Interface | None:
        return resolve_interface(iface)

    def _family_fields(self, group: IPAddress, iface: Interface | None,
                       current: SocketMembership | None) -> dict[str, Any]:
        return {"max_msf": _max_msf()}

    def _target(self, op: Op, group: IPAddress | str, iface: IfaceSpec,
                source: IPAddress | str | None = None
                ) -> tuple[IPv6Address, Interface | None, IPv6Address | None]:
        """Validate a membership request: the group, the interface and the source."""
        g = as_group(group)
        s = as_source(source) if source is not None else None
        resolved = resolve_interface(iface)
        what = op.value.format(group=g, source=s, where=resolved.name if resolved else "?")
        if resolved is None and is_link_scope(g):
            scope = "interface-local (ff01::/16)" if g.packed[1] & 0x0F == 1 else \
                "link-local (ff02::/16)"
            raise McastError(f"{what.replace(' on ?', '')}: {g} is a {scope} group, which "
                             f"exists only on one link; name the interface (--iface)")
        if resolved is not None:
            _require_ipv6(what, resolved)
        return g, resolved, s

    def _join_request(self, group: IPAddress | str, iface: IfaceSpec
                      ) -> tuple[IPAddress, Interface | None, bytes]:
        g, resolved, _ = self._target(Op.JOIN, group, iface)
        return g, resolved, self._group_request(g, resolved)

    def _group_request(self, group: IPAddress, iface: Interface | None) -> bytes:
        return IPV6_MREQ.pack(group.packed, iface.index if iface else 0)

    def _source_request(self, op: Op, group: IPAddress | str, source: IPAddress | str,
                        iface: IfaceSpec) -> tuple[IPAddress, IPAddress, Interface | None,
                                                   Interface | None, bytes]:
        g, resolved, s = self._target(op, group, iface, source)
        assert s is not None
        chosen = resolved or route_interface(g)
        return g, s, resolved, chosen, group_source_req(resolved.index if resolved else 0, g, s)

    def _check_send(self, group: IPAddress, port: int) -> None:
        assert isinstance(group, IPv6Address)
        if is_link_scope(group) and not self._getint(Ipv6Option.IPV6_MULTICAST_IF):
            raise McastError(f"cannot send to [{group}]:{port}: {group} is a link-scope group, "
                             f"which exists only on one link; name the interface (--iface, "
                             f"IPV6_MULTICAST_IF)")


def open_socket(group: IPv4Address | IPv6Address) -> McastSocket | Mcast6Socket:
    """A multicast UDP socket of the group's family: the one place that chooses."""
    return Mcast6Socket() if group.version == 6 else McastSocket()


def _max_msf() -> str:
    value = sysctl.read_or("net.ipv6.mld_max_msf", "")
    return (f"currently {value}" if value else
            "64 unless changed; a host-wide setting, not readable in this namespace")


def resolve_interface(spec: IfaceSpec) -> Interface | None:
    """An interface named by name, index, Interface or one of its addresses (IPv4 or
    IPv6; IPV6_MULTICAST_IF and the joins take the index it has)."""
    if isinstance(spec, str) and ":" in spec:
        spec = _address(spec, "interface address")
    if isinstance(spec, IPv6Address):
        return interface_holding(spec)
    return mcast_resolve(spec)
