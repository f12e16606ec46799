"""What the engine needs to know about one protocol's messages, behind one small interface.

Theory of operation: RFC 3810 (MLDv2) is RFC 3376 (IGMPv3) for IPv6, and RFC 2710
(MLDv1) is RFC 2236 (IGMPv2): the router's state machine is the same, only the
messages, their version numbers and their units differ. The engine
(:mod:`mrouter.igmp.engine`) therefore reasons in *levels*, IGMP's version numbers:

* level 1: IGMPv1 (RFC 1112): reports, no leaves, no group-specific queries;
* level 2: IGMPv2 and MLDv1: reports, leaves (dones), group-specific queries;
* level 3: IGMPv3 and MLDv2: source filters, group records, QRV and QQIC.

A :class:`MessageAdapter` maps a protocol's messages onto those levels and back: it
sorts a received message into a :class:`MessageKind`, reads a query's level and
Maximum Response time (IGMP: tenths of a second; MLD: milliseconds), builds the query
to send for a level, says which source addresses a router accepts, and names versions
and RFC sections for the ``Dropped`` details. Group records need no mapping: IGMPv3's
group records and MLDv2's address records have the same fields (``record_type``,
``group``, ``sources``) and the same six record types.

:data:`IGMP` is IGMP's adapter; MLD's is :data:`mrouter.mld.adapter.MLD`. Each
:class:`~mrouter.igmp.family.AddressFamily` carries its protocol's adapter.

The module is pure: no sockets, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any, Protocol

from mrouter.igmp.messages import (
    Query,
    UnknownMessage,
    V1Report,
    V2Leave,
    V2Report,
    V3Report,
    value_to_code,
)
from mrouter.igmp.settings import MAX_V2_TENTHS

__all__ = ["IGMP", "Citations", "IgmpAdapter", "MessageAdapter", "MessageKind"]

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network


class MessageKind(IntEnum):
    """What a received message is to the engine, whatever its protocol."""

    QUERY = 1
    REPORT_V1 = 2  # IGMPv1 report: IS_EX({}) and the level-1 Older Host Present timer
    REPORT_V2 = 3  # IGMPv2 report, MLDv1 report: IS_EX({}) and the level-2 timer
    LEAVE = 4  # IGMPv2 leave, MLDv1 done: TO_IN({})
    REPORT = 5  # IGMPv3 / MLDv2 report: group records
    UNKNOWN = 6  # any other type (mtrace, MRD, neighbour discovery...)


@dataclass(frozen=True, slots=True)
class Citations:
    """The RFC sections the engine's ``Dropped`` details cite, per protocol."""

    destinations: str  # where each message type is sent
    older_querier: str  # a querier of an older version on the link
    compat: str  # group compatibility mode
    v1_router: str  # IGMPv1 router present (IGMP only)
    non_querier_leave: str  # non-queriers ignore leaves
    router_alert: str  # a router checks for the Router Alert ("" if it need not)


class MessageAdapter(Protocol):
    """One protocol's messages as the engine sees them (see the module docstring)."""

    protocol: str  # "IGMP" or "MLD"
    level_offset: int  # level = the protocol's version + level_offset
    versions: tuple[int, ...]  # the versions a router may be configured for
    hop_limit_name: str  # what the IP header calls its TTL
    router_alert_name: str  # where its Router Alert is
    leave_name: str  # what the protocol calls a leave
    max_sources_per_query: int  # so that a query fits a 1500-byte MTU
    #: kinds dropped without a Router Alert whatever the settings say
    router_alert_required: frozenset[MessageKind]
    cite: Citations

    def kind(self, msg: Any) -> MessageKind: ...
    def query_level(self, query: Any) -> int: ...
    def max_resp(self, query: Any) -> float:
        """A query's Maximum Response time in seconds."""
    def make_query(self, level: int, group: Any, max_resp: float, s_flag: bool,
                   robustness: int, query_interval: float, sources: tuple[Any, ...]) -> Any:
        """The query to send at ``level`` (``group`` unspecified: a general query)."""
    def source_problem(self, src: Any, network: Any, kind: MessageKind) -> str | None:
        """Why ``src`` may not send a message of ``kind`` (None: it may), as the end of
        a sentence that starts with the message's description."""
    def describe(self, msg: Any) -> str: ...
    def version_name(self, level: int) -> str: ...
    def type_name(self, type_code: int) -> str: ...


_IGMP_KINDS: dict[type, MessageKind] = {
    Query: MessageKind.QUERY,
    V1Report: MessageKind.REPORT_V1,
    V2Report: MessageKind.REPORT_V2,
    V2Leave: MessageKind.LEAVE,
    V3Report: MessageKind.REPORT,
    UnknownMessage: MessageKind.UNKNOWN,
}


class IgmpAdapter:
    """IGMP (RFC 1112, RFC 2236, RFC 3376): levels are IGMP's versions."""

    protocol = "IGMP"
    level_offset = 0
    versions: tuple[int, ...] = (1, 2, 3)
    hop_limit_name = "IP TTL"
    router_alert_name = "IP Router Alert"
    leave_name = "leave"
    #: (1500 - 24 IPv4 header with Router Alert - 12 query header) / 4
    max_sources_per_query = 366
    # RFC 3376 §9.1 makes the Router Alert check a host's; require_router_alert turns
    # it on for a router.
    router_alert_required: frozenset[MessageKind] = frozenset()
    cite = Citations(
        destinations="RFC 3376 §4.1.12, §4.2.14",
        older_querier="RFC 3376 §7.3.1",
        compat="RFC 3376 §7.3.2",
        v1_router="RFC 3376 §7.3.1",
        non_querier_leave="RFC 2236 §3",
        router_alert="",
    )

    def kind(self, msg: Any) -> MessageKind:
        return _IGMP_KINDS[type(msg)]

    def query_level(self, query: Query) -> int:
        return query.version

    def max_resp(self, query: Query) -> float:
        return query.max_resp_tenths / 10

    def make_query(self, level: int, group: IPv4Address, max_resp: float, s_flag: bool,
                   robustness: int, query_interval: float,
                   sources: tuple[IPv4Address, ...]) -> Query:
        tenths = round(max_resp * 10)
        if level == 1:
            return Query(version=1)
        if level == 2:
            return Query(version=2, group=group, max_resp_code=min(tenths, MAX_V2_TENTHS))
        return Query(
            version=3, group=group, max_resp_code=value_to_code(tenths), s_flag=s_flag,
            qrv=robustness if robustness <= 7 else 0,  # §4.1.6: 0 when above 7
            qqic=value_to_code(round(query_interval)), sources=sources,
        )

    def source_problem(self, src: IPv4Address, network: IPv4Network,
                       kind: MessageKind) -> str | None:
        # The subnet check (RFC 3376 §4.2.13 allows the unspecified address for v3
        # reports only).
        if src in network or (int(src) == 0 and kind is MessageKind.REPORT):
            return None
        return f"which is not on {network}"

    def describe(self, msg: Any) -> str:
        if isinstance(msg, Query):
            return f"IGMPv{msg.version} query"
        if isinstance(msg, UnknownMessage):
            return f"IGMP type {msg.type:#04x}"
        return {V1Report: "IGMPv1 report", V2Report: "IGMPv2 report",
                V2Leave: "IGMPv2 leave", V3Report: "IGMPv3 report"}[type(msg)]

    def version_name(self, level: int) -> str:
        return f"IGMPv{level}"

    def type_name(self, type_code: int) -> str:
        return f"IGMP type {type_code:#04x}"


IGMP = IgmpAdapter()
