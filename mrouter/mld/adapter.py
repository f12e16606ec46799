"""MLD's messages as the family-neutral engine sees them (pure).

Theory of operation: :mod:`mrouter.igmp.engine` runs RFC 3376's router state machine in
*levels* (:mod:`mrouter.igmp.adapter`): MLDv1 (RFC 2710) is level 2, IGMPv2's twin, and
MLDv2 (RFC 3810) level 3, IGMPv3's; MLD has no IGMPv1, so level 1 never occurs. This
adapter sorts MLD messages into the engine's kinds (an MLDv1 Report is an IGMPv2
report, a Done a leave, an MLDv2 Report a report of records), reads a query's
Maximum Response Code in milliseconds (RFC 3810 §5.1.3: the 16-bit floating-point form
in MLDv2, a plain delay in MLDv1) and builds the queries the engine sends.

Source addresses (RFC 3810 §5.1.14, §5.2.13, §7; RFC 2710 §3): every MLD message is
sent from a link-local address; a router discards any other source without acting on
it. A host that has no valid link-local address yet (duplicate address detection is
running) reports from the unspecified address ``::``; RFC 3810 §5.2.13 has the router
discard those reports too ("unidentified reports are ignored"), and a query from ``::``
is discarded as §5.1.14 says. Reports and dones without the Hop-by-Hop Router Alert are
dropped (§7's checks), whatever ``require_router_alert`` says; the hop limit must be 1,
as IGMP's TTL.

The module is pure: no sockets, no clock.
"""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network
from typing import Any

from mrouter.igmp.adapter import Citations, MessageKind
from mrouter.igmp.messages import value_to_code
from mrouter.igmp.settings import MAX_MLDV1_DELAY_MS
from mrouter.mld.messages import (
    Query,
    UnknownMessage,
    V1Done,
    V1Report,
    V2Report,
    delay_ms_to_code,
)

__all__ = ["MLD", "MldAdapter"]

_KINDS: dict[type, MessageKind] = {
    Query: MessageKind.QUERY,
    V1Report: MessageKind.REPORT_V2,
    V1Done: MessageKind.LEAVE,
    V2Report: MessageKind.REPORT,
    UnknownMessage: MessageKind.UNKNOWN,
}


class MldAdapter:
    """MLD (RFC 2710, RFC 3810): level = MLD version + 1."""

    protocol = "MLD"
    level_offset = 1
    versions: tuple[int, ...] = (1, 2)
    hop_limit_name = "hop limit"
    router_alert_name = "Hop-by-Hop Router Alert"
    leave_name = "done"  # RFC 2710's name
    #: (1500 - 40 IPv6 header - 8 Hop-by-Hop Router Alert - 28 query header) / 16
    max_sources_per_query = 89
    router_alert_required = frozenset(
        {MessageKind.REPORT_V2, MessageKind.LEAVE, MessageKind.REPORT})
    cite = Citations(
        destinations="RFC 3810 §5.1.15, §5.2.14",
        older_querier="RFC 3810 §8.3.1",
        compat="RFC 3810 §8.3.2",
        v1_router="RFC 3810 §8.3.1",
        non_querier_leave="RFC 2710 §4",
        router_alert="RFC 3810 §7",
    )

    def kind(self, msg: Any) -> MessageKind:
        return _KINDS[type(msg)]

    def query_level(self, query: Query) -> int:
        return query.version + 1

    def max_resp(self, query: Query) -> float:
        return query.max_resp_ms / 1000

    def make_query(self, level: int, group: IPv6Address, max_resp: float, s_flag: bool,
                   robustness: int, query_interval: float,
                   sources: tuple[IPv6Address, ...]) -> Query:
        delay_ms = round(max_resp * 1000)
        if level <= 2:
            return Query(version=1, group=group,
                         max_resp_code=min(delay_ms, MAX_MLDV1_DELAY_MS))
        return Query(
            version=2, group=group, max_resp_code=delay_ms_to_code(delay_ms), s_flag=s_flag,
            qrv=robustness if robustness <= 7 else 0,  # RFC 3810 §5.1.8: 0 when above 7
            qqic=value_to_code(round(query_interval)), sources=sources,
        )

    def source_problem(self, src: IPv6Address, network: IPv6Network,
                       kind: MessageKind) -> str | None:
        if src.is_link_local:
            return None
        if src.is_unspecified:
            return ("which is the unspecified address (a host still doing duplicate "
                    "address detection); a router discards MLD from it (RFC 3810 §5.1.14, "
                    "§5.2.13)")
        return ("which is not a link-local address; MLD is sent from link-local "
                "addresses only (RFC 3810 §5.1.14, §5.2.13)")

    def describe(self, msg: Any) -> str:
        if isinstance(msg, Query):
            return f"MLDv{msg.version} query"
        if isinstance(msg, UnknownMessage):
            return f"ICMPv6 type {msg.type}"
        return {V1Report: "MLDv1 report", V1Done: "MLDv1 done",
                V2Report: "MLDv2 report"}[type(msg)]

    def version_name(self, level: int) -> str:
        return f"MLDv{level - 1}"

    def type_name(self, type_code: int) -> str:
        return f"ICMPv6 type {type_code}"


MLD = MldAdapter()
