"""rtnetlink reading: links, IPv4 and IPv6 addresses and route lookups, through pyroute2.

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

import asyncio
import socket
import threading
from collections.abc import Callable
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
