"""rtnetlink: links, IPv4 and IPv6 addresses and route lookups (through pyroute2), the
kernel's multicast routing tables, every table (a plain netlink socket), and the multicast
routing rules that pick a table (`ip mrule`: read, added and deleted through pyroute2).

Theory of operation: every shell that asks the kernel about interfaces asks here. The
multicast socket shell (:func:`mrouter.sockets.mcast.interfaces`), ``mrouter explain``,
``mrouter lab status`` and the lab builder read the same dumps and get the same small
frozen records, :class:`Link`, :class:`Address` and :class:`Address6`, instead of each
picking attributes out of pyroute2's messages its own way.

:func:`query` opens one ``IPRoute`` socket, runs a function with it and closes it. A
netlink socket belongs to the network namespace of the thread that opens it, so a query
made by a thread inside a lab node answers for that node. pyroute2 runs an asyncio loop
of its own, which must not meet the caller's: when the calling thread runs a loop, the
query runs in a helper thread instead (a new thread starts in its creator's network
namespace, so the answer is the same). The functions that take an open ``ipr`` serve
callers that keep one open (the lab builder polls while links come up).

pyroute2 is imported only when a query runs: the CLI must start fast.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Interface, IPv6Address, IPv6Interface
from typing import Any, TypeVar

T = TypeVar("T")

IFF_UP = 0x1  # include/uapi/linux/if.h
RTN_UNICAST = 1  # include/uapi/linux/rtnetlink.h: a route through a gateway or direct
# include/uapi/linux/if_addr.h: IPv6 address states
IFA_F_DADFAILED = 0x08
IFA_F_DEPRECATED = 0x20
IFA_F_TENTATIVE = 0x40


@dataclass(frozen=True, slots=True)
class Link:
    """One interface from an RTM_GETLINK dump."""

    index: int
    name: str
    flags: int  # IFF_* bits, as SIOCGIFFLAGS reports them
    operstate: str | None  # IFLA_OPERSTATE: "UP", "DOWN", "UNKNOWN" (loopback, tun), ...
    kind: str | None  # IFLA_INFO_KIND: "veth", "bridge", ...; None for loopback or a NIC
    master: int | None  # the index of the bridge (or bond) it is a port of
    mcast_snooping: bool = False  # a bridge's IGMP snooping (IFLA_BR_MCAST_SNOOPING)
    mcast_querier: bool = False  # a bridge's own IGMP querier (IFLA_BR_MCAST_QUERIER)

    @property
    def admin_up(self) -> bool:
        """Set up by an administrator (IFF_UP); whether it carries traffic is operstate."""
        return bool(self.flags & IFF_UP)


@dataclass(frozen=True, slots=True)
class Address:
    """One IPv4 address from an RTM_GETADDR dump: the host's own (IFA_LOCAL, which is
    IFA_ADDRESS except on a point-to-point link, where IFA_ADDRESS is the peer)."""

    index: int
    address: IPv4Interface


@dataclass(frozen=True, slots=True)
class Address6:
    """One IPv6 address from an RTM_GETADDR dump, with its IFA_F_* state bits.

    A new address is *tentative* until duplicate address detection (RFC 4862 §5.4) ends,
    about a second: no socket can bind to it meanwhile. Link-local addresses
    (fe80::/10) are made by the kernel when the link comes up.
    """

    index: int
    address: IPv6Interface
    flags: int = 0

    @property
    def tentative(self) -> bool:
        return bool(self.flags & IFA_F_TENTATIVE)

    @property
    def dad_failed(self) -> bool:
        return bool(self.flags & IFA_F_DADFAILED)

    @property
    def link_local(self) -> bool:
        return self.address.ip.is_link_local


@dataclass(frozen=True, slots=True)
class Route:
    """The kernel's answer to "how would you reach this address" (``ip route get``)."""

    oif: int | None  # the output interface's index
    type: int  # RTN_*: RTN_UNICAST, RTN_LOCAL, RTN_MULTICAST, RTN_UNREACHABLE, ...


def query(fn: Callable[[Any], T]) -> T:
    """``fn(ipr)`` with a fresh ``IPRoute`` of the calling thread's network namespace,
    closed afterwards; in a helper thread when this thread runs an asyncio loop."""

    def run() -> T:
        from pyroute2 import IPRoute

        with IPRoute() as ipr:
            return fn(ipr)

    import asyncio  # here, not at the top: the daemon's start-up path has no asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return run()
    box: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            box.append(run())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="mrouter-netlink")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return box[0]


def _link(msg: Any) -> Link:
    info = msg.get_attr("IFLA_LINKINFO")
    kind = info.get_attr("IFLA_INFO_KIND") if info is not None else None
    data = info.get_attr("IFLA_INFO_DATA") if info is not None else None
    snooping = querier = False
    if kind == "bridge" and data is not None:
        snooping = bool(data.get_attr("IFLA_BR_MCAST_SNOOPING"))
        querier = bool(data.get_attr("IFLA_BR_MCAST_QUERIER"))
    return Link(index=int(msg["index"]), name=str(msg.get_attr("IFLA_IFNAME")),
                flags=int(msg["flags"]), operstate=msg.get_attr("IFLA_OPERSTATE"),
                kind=kind, master=msg.get_attr("IFLA_MASTER"),
                mcast_snooping=snooping, mcast_querier=querier)


def links(ipr: Any, index: int | None = None) -> list[Link]:
    """Every link of ``ipr``'s namespace, in the kernel's order (or only ``index``)."""
    found = ipr.get_links() if index is None else ipr.get_links(index)
    return [_link(msg) for msg in found]


def addresses(ipr: Any, index: int | None = None) -> list[Address]:
    """Every IPv4 address of ``ipr``'s namespace (or of the interface ``index``)."""
    where = {} if index is None else {"index": index}
    out = []
    for msg in ipr.get_addr(family=socket.AF_INET, **where):
        local = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if local is not None:
            out.append(Address(int(msg["index"]),
                               IPv4Interface(f"{local}/{int(msg['prefixlen'])}")))
    return out


def addresses6(ipr: Any, index: int | None = None) -> list[Address6]:
    """Every IPv6 address of ``ipr``'s namespace (or of the interface ``index``)."""
    where = {} if index is None else {"index": index}
    out = []
    for msg in ipr.get_addr(family=socket.AF_INET6, **where):
        local = msg.get_attr("IFA_LOCAL") or msg.get_attr("IFA_ADDRESS")
        if local is None:
            continue
        flags = msg.get_attr("IFA_FLAGS")  # 32 bits; the header's ifa_flags has the low 8
        out.append(Address6(int(msg["index"]),
                            IPv6Interface(f"{local}/{int(msg['prefixlen'])}"),
                            int(msg["flags"] if flags is None else flags)))
    return out


def route_to(ipr: Any, destination: IPv4Address | IPv6Address) -> Route | None:
    """The route the kernel would use to reach ``destination``; None when it has none."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        family = socket.AF_INET6 if destination.version == 6 else socket.AF_INET
        found = ipr.route("get", dst=str(destination), family=family)
    except NetlinkError:
        return None
    if not found:
        return None
    oif = found[0].get_attr("RTA_OIF")
    return Route(None if oif is None else int(oif), int(found[0]["type"]))


def bridge_port_states(ipr: Any) -> dict[str, int | None]:
    """Each bridge port of ``ipr``'s namespace and its STP state (IFLA_BRPORT_STATE;
    BR_STATE_FORWARDING is 3)."""
    return {
        str(port.get_attr("IFLA_IFNAME")): port.get(("IFLA_PROTINFO", "IFLA_BRPORT_STATE"))
        for port in ipr.get_links(family=socket.AF_BRIDGE)
    }


# --- the kernel's multicast routing tables (RTNL_FAMILY_IPMR, RTNL_FAMILY_IP6MR) -------------
#
# /proc/net/ip_mr_vif and ip_mr_cache show only the default table. rtnetlink shows every
# table, each entry with its table id: RTM_GETLINK with family RTNL_FAMILY_IPMR dumps each
# table's VIFs (net/ipv4/ipmr.c ipmr_rtm_dumplink), RTM_GETROUTE with that family dumps
# each table's MFC entries, resolved and unresolved (ipmr_rtm_dumproute), as `ip mroute
# show table all` does. pyroute2 does not parse the IPMRA_* attributes, so these two dumps
# are read here with a plain netlink socket. Reading needs no privilege.
#
# IPv6 (net/ipv6/ip6mr.c) has the route dump only: RTM_GETROUTE with RTNL_FAMILY_IP6MR
# dumps every table's MFC entries (ip6mr_rtm_dumproute; the same attributes, 16-byte
# addresses, rtnh_hops 1 for every outbound MIF since ip6mr has no other threshold), but
# there is no RTM_GETLINK handler for it: rtnetlink then falls back to the ordinary link
# dump (replies with ifi_family AF_UNSPEC, measured on 6.18), so MIFs are read from
# /proc/net/ip6_mr_vif (default table only) and :func:`mroute_vifs` refuses RTNL_FAMILY_IP6MR.

RTNL_FAMILY_IPMR = 128  # include/uapi/linux/rtnetlink.h
RTNL_FAMILY_IP6MR = 129
#: The table MRT_INIT takes when no MRT_TABLE was set (net/ipv4/ipmr.c: RT_TABLE_DEFAULT).
RT_TABLE_DEFAULT = 253
#: IPv6's default (net/ipv6/ip6mr.c: RT6_TABLE_DFLT, which is RT_TABLE_MAIN): 254, not 253.
RT6_TABLE_DEFAULT = 254
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWROUTE, RTM_GETROUTE = 24, 26
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED and NLA_F_NET_BYTEORDER
RTNH_F_UNRESOLVED = 32  # rtm_flags of an MFC entry still waiting for its upcall's answer
# rtattr types of an RTM_NEWROUTE (enum rtattr_type_t)
RTA_DST, RTA_SRC, RTA_IIF, RTA_MULTIPATH, RTA_TABLE, RTA_MFC_STATS = 1, 2, 3, 9, 15, 17
# One RTM_NEWLINK per table: IFLA_AF_SPEC holds the IPMRA_TABLE_* attributes of
# include/uapi/linux/mroute.h, its IPMRA_TABLE_VIFS one IPMRA_VIF per VIF, each of
# those the IPMRA_VIFA_* (ipmr_rtm_dumplink, ipmr_fill_table, ipmr_fill_vif).
IFLA_AF_SPEC = 26
IPMRA_TABLE_ID, IPMRA_TABLE_VIFS, IPMRA_VIF = 1, 6, 1
IPMRA_VIFA_IFINDEX, IPMRA_VIFA_VIF_ID, IPMRA_VIFA_FLAGS = 1, 2, 3
IPMRA_VIFA_BYTES_IN, IPMRA_VIFA_BYTES_OUT, IPMRA_VIFA_PACKETS_IN, IPMRA_VIFA_PACKETS_OUT = (
    4, 5, 6, 7)

#: struct nlmsghdr { __u32 nlmsg_len; __u16 nlmsg_type, nlmsg_flags; __u32 nlmsg_seq, nlmsg_pid; }
NLMSGHDR = struct.Struct("=IHHII")
#: struct ifinfomsg { unsigned char ifi_family, __ifi_pad; unsigned short ifi_type;
#:                    int ifi_index; unsigned ifi_flags, ifi_change; }
IFINFOMSG = struct.Struct("=BxHiII")
#: struct rtmsg { unsigned char rtm_family, rtm_dst_len, rtm_src_len, rtm_tos, rtm_table,
#:                rtm_protocol, rtm_scope, rtm_type; unsigned rtm_flags; }
RTMSG = struct.Struct("=BBBBBBBBI")
#: struct rtattr { unsigned short rta_len, rta_type; }  (struct nlattr has the same layout)
RTATTR = struct.Struct("=HH")
#: struct rtnexthop { unsigned short rtnh_len; unsigned char rtnh_flags, rtnh_hops;
#:                    int rtnh_ifindex; }  -- for an MFC entry, rtnh_hops is the TTL threshold
RTNEXTHOP = struct.Struct("=HBBi")
#: struct rta_mfc_stats { __u64 mfcs_packets, mfcs_bytes, mfcs_wrong_if; }
RTA_MFC_STATS_STRUCT = struct.Struct("=QQQ")
U16, U32, U64 = struct.Struct("=H"), struct.Struct("=I"), struct.Struct("=Q")
#: family -> (address type, bytes) of RTA_SRC and RTA_DST in an MFC entry
_MR_ADDRESS: dict[int, tuple[type[IPv4Address] | type[IPv6Address], int]] = {
    RTNL_FAMILY_IPMR: (IPv4Address, 4), RTNL_FAMILY_IP6MR: (IPv6Address, 16)}


@dataclass(frozen=True, slots=True)
class MrouteVif:
    """One VIF of one multicast routing table."""

    table: int
    vif: int
    ifindex: int
    flags: int  # VIFF_* (VIFF_REGISTER, VIFF_USE_IFINDEX, ...)
    packets_in: int = 0
    packets_out: int = 0
    bytes_in: int = 0
    bytes_out: int = 0


@dataclass(frozen=True, slots=True)
class MrouteEntry:
    """One MFC entry of one multicast routing table, interfaces by index."""

    table: int
    source: IPv4Address | IPv6Address
    group: IPv4Address | IPv6Address
    iif: int | None  # None: unresolved (an upcall is pending)
    oifs: dict[int, int]  # ifindex -> TTL threshold
    packets: int = 0
    bytes: int = 0
    wrong_if: int = 0


def _attrs(data: bytes) -> Iterator[tuple[int, bytes]]:
    """(type, payload) of each rtattr/nlattr in ``data``, 4-byte aligned."""
    at = 0
    while at + RTATTR.size <= len(data):
        length, kind = RTATTR.unpack_from(data, at)
        if length < RTATTR.size or at + length > len(data):
            return  # malformed or cut short: stop rather than read past it
        yield kind & NLA_TYPE_MASK, data[at + RTATTR.size: at + length]
        at += (length + 3) & ~3


def _dump(msg_type: int, body: bytes) -> Iterator[tuple[int, bytes]]:
    """Send one dump request on a fresh NETLINK_ROUTE socket of the calling thread's
    namespace; yield (nlmsg_type, payload) of each answer until NLMSG_DONE."""
    seq = 1
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE) as sock:
        sock.bind((0, 0))
        header = NLMSGHDR.pack(NLMSGHDR.size + len(body), msg_type, NLM_F_REQUEST | NLM_F_DUMP,
                               seq, 0)
        sock.send(header + body)
        while True:
            data = sock.recv(1 << 16)
            at = 0
            while at + NLMSGHDR.size <= len(data):
                length, kind, _, got_seq, _ = NLMSGHDR.unpack_from(data, at)
                if length < NLMSGHDR.size:
                    return
                payload = data[at + NLMSGHDR.size: at + length]
                at += (length + 3) & ~3
                if got_seq != seq:
                    continue
                if kind == NLMSG_DONE:
                    return
                if kind == NLMSG_ERROR:
                    (code,) = struct.unpack_from("=i", payload)
                    if code:
                        raise OSError(-code, f"rtnetlink dump: {os.strerror(-code)}")
                    return
                yield kind, payload


def mroute_vifs(family: int = RTNL_FAMILY_IPMR) -> list[MrouteVif]:
    """Every VIF of every multicast routing table of the calling thread's namespace.

    IPv4 only: the kernel has no MIF dump for RTNL_FAMILY_IP6MR (see above), and
    asking for one raises OSError(EOPNOTSUPP) rather than misread an ordinary link dump."""
    if family != RTNL_FAMILY_IPMR:
        raise OSError(errno.EOPNOTSUPP, "the kernel dumps no MIFs over rtnetlink for "
                                        f"family {family}; read /proc/net/ip6_mr_vif")
    request = IFINFOMSG.pack(family, 0, 0, 0, 0)
    return [vif for kind, payload in _dump(RTM_GETLINK, request) if kind == RTM_NEWLINK
            for vif in parse_vifs(payload)]


def mroute_entries(family: int = RTNL_FAMILY_IPMR) -> list[MrouteEntry]:
    """Every MFC entry of every multicast routing table of the calling thread's namespace,
    of ``family`` (RTNL_FAMILY_IPMR for IPv4, RTNL_FAMILY_IP6MR for IPv6)."""
    request = RTMSG.pack(family, 0, 0, 0, 0, 0, 0, 0, 0)
    found = (parse_entry(payload, family) for kind, payload in _dump(RTM_GETROUTE, request)
             if kind == RTM_NEWROUTE)
    return [e for e in found if e is not None]


def _number(raw: bytes | None) -> int:
    fmt = {2: U16, 4: U32, 8: U64}.get(len(raw or b""))
    return int(fmt.unpack(raw)[0]) if fmt is not None and raw is not None else 0


def parse_vifs(payload: bytes) -> list[MrouteVif]:
    """The VIFs in one RTM_NEWLINK of an RTNL_FAMILY_IPMR dump (one table's); none from
    an ordinary link (whose IFLA_AF_SPEC holds per-family link settings, not VIFs)."""
    found: list[MrouteVif] = []
    if len(payload) < IFINFOMSG.size or payload[0] != RTNL_FAMILY_IPMR:
        return found
    for a_type, spec in _attrs(payload[IFINFOMSG.size:]):
        if a_type != IFLA_AF_SPEC:
            continue
        table = dict(_attrs(spec))
        table_id = _number(table.get(IPMRA_TABLE_ID))
        for v_type, vif in _attrs(table.get(IPMRA_TABLE_VIFS, b"")):
            if v_type != IPMRA_VIF:
                continue
            v = dict(_attrs(vif))
            found.append(MrouteVif(
                table_id, _number(v.get(IPMRA_VIFA_VIF_ID)), _number(v.get(IPMRA_VIFA_IFINDEX)),
                _number(v.get(IPMRA_VIFA_FLAGS)), _number(v.get(IPMRA_VIFA_PACKETS_IN)),
                _number(v.get(IPMRA_VIFA_PACKETS_OUT)), _number(v.get(IPMRA_VIFA_BYTES_IN)),
                _number(v.get(IPMRA_VIFA_BYTES_OUT))))
    return found


def parse_entry(payload: bytes, family: int = RTNL_FAMILY_IPMR) -> MrouteEntry | None:
    """The MFC entry in one RTM_NEWROUTE of a ``family`` dump (RTNL_FAMILY_IPMR or
    RTNL_FAMILY_IP6MR); None if it is not one."""
    if len(payload) < RTMSG.size:
        return None
    got, _, _, _, table_id, _, _, _, flags = RTMSG.unpack_from(payload)
    if got != family or family not in _MR_ADDRESS:
        return None
    attrs = dict(_attrs(payload[RTMSG.size:]))
    if RTA_TABLE in attrs:  # rtm_table is a byte; RTA_TABLE holds ids above 255
        table_id = _number(attrs[RTA_TABLE])
    iif = None
    if RTA_IIF in attrs and not flags & RTNH_F_UNRESOLVED:
        iif = _number(attrs[RTA_IIF])
    oifs: dict[int, int] = {}
    nexthops = attrs.get(RTA_MULTIPATH, b"")
    at = 0
    while at + RTNEXTHOP.size <= len(nexthops):
        length, _, hops, ifindex = RTNEXTHOP.unpack_from(nexthops, at)
        if length < RTNEXTHOP.size:
            break
        oifs[ifindex] = hops
        at += (length + 3) & ~3
    packets = octets = wrong_if = 0
    if len(attrs.get(RTA_MFC_STATS, b"")) >= RTA_MFC_STATS_STRUCT.size:
        packets, octets, wrong_if = RTA_MFC_STATS_STRUCT.unpack_from(attrs[RTA_MFC_STATS])
    address, size = _MR_ADDRESS[family]
    return MrouteEntry(table_id, address(attrs.get(RTA_SRC, bytes(size))),
                       address(attrs.get(RTA_DST, bytes(size))), iif, oifs, packets, octets,
                       wrong_if)


# --- multicast routing rules (`ip mrule`, `ip -6 mrule`) ------------------------------------
#
# With several tables, an arriving packet is looked up in the table the multicast FIB rules
# choose (ipmr_fib_lookup, ip6mr_fib_lookup): by default one rule at priority 32767 sends
# everything to the default table (253 for IPv4, 254 for IPv6), so a route in table 100 sees
# no packet until a rule (`ip -6 mrule add iif up0 lookup 100`) sends the flow there.
# Rules are FIB rules of family RTNL_FAMILY_IPMR or RTNL_FAMILY_IP6MR (net/core/fib_rules.c),
# added and deleted through pyroute2 (``IPRoute.rule`` takes those families as they are,
# checked in a namespace on 6.18). The kernel deletes the first rule matching every field
# given, FRA_PROTOCOL included, so a rule is deleted by all it was added with.

FR_ACT_TO_TBL = 1  # include/uapi/linux/fib_rules.h


@dataclass(frozen=True, slots=True)
class MrouteRule:
    """One multicast FIB rule of RTNL_FAMILY_IPMR or RTNL_FAMILY_IP6MR."""

    priority: int
    action: int  # FR_ACT_*: FR_ACT_TO_TBL looks the packet up in ``table``
    table: int
    iif: str | None  # FRA_IIFNAME: only packets arriving there (None: any)
    selective: bool  # other selectors (prefixes, oif, fwmark...) explain does not weigh
    protocol: int = 0  # FRA_PROTOCOL: who added it (RTPROT_*, or a daemon's own value)


def mroute_rules(ipr: Any, family: int) -> list[MrouteRule]:
    """The multicast routing rules of ``family``, in priority order; OSError with the
    kernel's errno if it refuses the dump."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        found = list(ipr.get_rules(family=family))
    except NetlinkError as exc:
        raise OSError(exc.code, os.strerror(exc.code)) from None
    out = []
    for msg in found:
        table = msg.get_attr("FRA_TABLE") or msg["table"]
        selective = bool(msg["src_len"] or msg["dst_len"] or msg.get_attr("FRA_OIFNAME")
                         or msg.get_attr("FRA_FWMARK") or msg["flags"] & 0x2)  # FIB_RULE_INVERT
        out.append(MrouteRule(int(msg.get_attr("FRA_PRIORITY") or 0), int(msg["action"]),
                              int(table), msg.get_attr("FRA_IIFNAME"), selective,
                              int(msg.get_attr("FRA_PROTOCOL") or 0)))
    return sorted(out, key=lambda r: r.priority)


def add_mroute_rule(ipr: Any, family: int, iif: str, table: int, priority: int,
                    protocol: int) -> None:
    """Add the rule "packets arriving on ``iif`` are looked up in ``table``" of ``family``
    (`ip mrule add iif IIF lookup TABLE priority PRIORITY protocol PROTOCOL`); OSError
    with the kernel's errno if it refuses (EEXIST: that very rule is there)."""
    from pyroute2.netlink.exceptions import NetlinkError

    try:
        ipr.rule("add", family=family, iifname=iif, table=table, priority=priority,
                 protocol=protocol, action=FR_ACT_TO_TBL)
    except NetlinkError as exc:
        raise OSError(exc.code, os.strerror(exc.code)) from None


def delete_mroute_rule(ipr: Any, family: int, rule: MrouteRule) -> None:
    """Delete the multicast rule of ``family`` that has every field of ``rule`` (as
    :func:`mroute_rules` read it or :func:`add_mroute_rule` added it); OSError with the
    kernel's errno if it refuses (ENOENT: no such rule)."""
    from pyroute2.netlink.exceptions import NetlinkError

    fields: dict[str, Any] = {"iifname": rule.iif} if rule.iif is not None else {}
    try:
        ipr.rule("del", family=family, table=rule.table, priority=rule.priority,
                 protocol=rule.protocol, action=rule.action, **fields)
    except NetlinkError as exc:
        raise OSError(exc.code, os.strerror(exc.code)) from None


def rule_table(rules: list[MrouteRule], iif: str) -> int | None:
    """The table a packet arriving on ``iif`` is looked up in (None: cannot tell, e.g. the
    first rule that may match has selectors not weighed here, or is no lookup)."""
    for rule in rules:
        if rule.iif is not None and rule.iif != iif:
            continue
        if rule.selective or rule.action != FR_ACT_TO_TBL:
            return None
        return rule.table
    return None
