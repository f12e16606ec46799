"""The engine's view of one interface, typed, with its JSON form and its text form.

Theory of operation: :meth:`Engine.snapshot <mrouter.igmp.engine.Engine.snapshot>`
returns an :class:`InterfaceSnapshot`: frozen dataclasses of the querier, the timer
values in use, the drop counters and every group with its sources and hosts, times given
as seconds remaining (None: the timer is not running). Tests and tools read the fields;
the shells print :meth:`InterfaceSnapshot.to_json` (``querier --json``, ``show groups
--json``) and :func:`render_snapshot` (the text a student reads next to RFC 3376 §6).

The module is pure: no sockets, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

from mrouter.igmp.actions import DropReason
from mrouter.igmp.tables import FilterMode

Address = IPv4Address | IPv6Address
Network = IPv4Network | IPv6Network

__all__ = [
    "ForwardingView",
    "GroupView",
    "HostView",
    "InterfaceSnapshot",
    "SourceView",
    "TimersView",
    "render_snapshot",
]


def _addresses(items: Iterable[Address]) -> list[str]:
    return [str(a) for a in items]


@dataclass(frozen=True, slots=True)
class ForwardingView:
    """What is forwarded: INCLUDE + these sources, or EXCLUDE + all but these."""

    filter_mode: FilterMode
    sources: tuple[Address, ...]

    def to_json(self) -> dict[str, Any]:
        return {"filter_mode": self.filter_mode.name, "sources": _addresses(self.sources)}


@dataclass(frozen=True, slots=True)
class SourceView:
    source: Address
    timer: float  # seconds left; 0 for a source at "timer 0" (§6.3)
    forwarded: bool
    query_retransmissions: int

    def to_json(self) -> dict[str, Any]:
        return {"source": str(self.source), "timer": self.timer, "forwarded": self.forwarded,
                "query_retransmissions": self.query_retransmissions}


@dataclass(frozen=True, slots=True)
class HostView:
    """What one host last reported (RFC 3376 §3), until it is forgotten."""

    host: Address
    filter_mode: FilterMode
    sources: tuple[Address, ...]
    expires: float | None

    def to_json(self) -> dict[str, Any]:
        return {"host": str(self.host), "filter_mode": self.filter_mode.name,
                "sources": _addresses(self.sources), "expires": self.expires}


@dataclass(frozen=True, slots=True)
class GroupView:
    """One group's router state (RFC 3376 §6.2) and what it forwards."""

    group: Address
    filter_mode: FilterMode
    compat_mode: int
    group_timer: float | None
    v1_host_present: float | None
    v2_host_present: float | None
    query_retransmissions: int
    forwarding: ForwardingView
    sources: tuple[SourceView, ...]
    hosts: tuple[HostView, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "group": str(self.group),
            "filter_mode": self.filter_mode.name,
            "compat_mode": self.compat_mode,
            "group_timer": self.group_timer,
            "v1_host_present": self.v1_host_present,
            "v2_host_present": self.v2_host_present,
            "query_retransmissions": self.query_retransmissions,
            "forwarding": self.forwarding.to_json(),
            "sources": [s.to_json() for s in self.sources],
            "hosts": [h.to_json() for h in self.hosts],
        }

    def source_timers(self) -> dict[Address, float]:
        return {s.source: s.timer for s in self.sources}


@dataclass(frozen=True, slots=True)
class TimersView:
    """The timer values in use (a non-querier's come from the querier, §4.1.6/§4.1.7)."""

    robustness: int
    query_interval: float
    query_response_interval: float
    group_membership_interval: float
    other_querier_present_interval: float
    last_member_query_interval: float
    last_member_query_count: int
    last_member_query_time: float

    def to_json(self) -> dict[str, Any]:
        return {
            "robustness": self.robustness,
            "query_interval": self.query_interval,
            "query_response_interval": self.query_response_interval,
            "group_membership_interval": self.group_membership_interval,
            "other_querier_present_interval": self.other_querier_present_interval,
            "last_member_query_interval": self.last_member_query_interval,
            "last_member_query_count": self.last_member_query_count,
            "last_member_query_time": self.last_member_query_time,
        }


@dataclass(frozen=True, slots=True)
class InterfaceSnapshot:
    """One interface as the engine sees it (see the module docstring)."""

    iface: str
    address: Address
    network: Network
    version: int
    querier_version: int
    querier: Address | None
    is_querier: bool
    next_general_query: float | None
    startup_queries_left: int
    other_querier_present: float | None
    v1_router_present: float | None
    fast_leave: bool
    timers: TimersView
    dropped: dict[DropReason, int]  # sorted by reason
    groups: tuple[GroupView, ...]  # sorted by group
    # Versions above (version, querier_version, each group's compat_mode) are this
    # protocol's own: IGMP 1-3, MLD 1-2.
    protocol: str = "IGMP"
    family: str = "ipv4"  # the address family's JSON token

    def group(self, group: Address) -> GroupView | None:
        for g in self.groups:
            if g.group == group:
                return g
        return None

    def to_json(self) -> dict[str, Any]:
        """The JSON-able dict the shells print (the shape users and scripts read).

        An IPv6 (MLD) snapshot starts with ``"family": "ipv6"``; an IPv4 one keeps the
        shape it always had."""
        head: dict[str, Any] = {} if self.family == "ipv4" else {"family": self.family}
        return head | {
            "iface": self.iface,
            "address": str(self.address),
            "network": str(self.network),
            "version": self.version,
            "querier_version": self.querier_version,
            "querier": None if self.querier is None else str(self.querier),
            "is_querier": self.is_querier,
            "next_general_query": self.next_general_query,
            "startup_queries_left": self.startup_queries_left,
            "other_querier_present": self.other_querier_present,
            "v1_router_present": self.v1_router_present,
            "fast_leave": self.fast_leave,
            "timers": self.timers.to_json(),
            "dropped": {str(reason): count for reason, count in self.dropped.items()},
            "groups": [g.to_json() for g in self.groups],
        }


# --------------------------------------------------------------------------- text


def _secs(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} s"


def _set(items: Iterable[Address]) -> str:
    return "{" + ", ".join(str(i) for i in items) + "}"


def render_snapshot(snap: InterfaceSnapshot) -> str:
    """The snapshot as text a student can read next to RFC 3376 §6 (RFC 3810 §7)."""
    t = snap.timers
    who = "this router" if snap.is_querier else "other router"
    lines = [
        f"{snap.iface}  {snap.address} on {snap.network}  {snap.protocol}v{snap.version}"
        + (f" (speaking {snap.protocol}v{snap.querier_version})"
           if snap.querier_version != snap.version else "")
        + f"  fast leave {'on' if snap.fast_leave else 'off'}",
        f"  querier: {snap.querier or 'none'}"
        + ("" if snap.querier is None else f" ({who})")
        + (f"  next general query in {_secs(snap.next_general_query)}"
           if snap.is_querier else
           f"  other querier present timer {_secs(snap.other_querier_present)}"),
        f"  timers: robustness {t.robustness}  QI {t.query_interval:g} s"
        f"  QRI {t.query_response_interval:g} s  GMI {t.group_membership_interval:g} s"
        f"  LMQT {t.last_member_query_count} x {t.last_member_query_interval:g} s"
        f" = {t.last_member_query_time:g} s",
    ]
    if snap.dropped:
        lines.append("  dropped: " + "  ".join(f"{k} {v}" for k, v in snap.dropped.items()))
    if not snap.groups:
        lines.append("  no groups")
    for g in snap.groups:
        fwd = g.forwarding
        if fwd.filter_mode is FilterMode.INCLUDE:
            forwarding = f"forward only {_set(fwd.sources)}"
        elif fwd.sources:
            forwarding = f"forward all sources except {_set(fwd.sources)}"
        else:
            forwarding = "forward all sources"
        timer = (f"  group timer {_secs(g.group_timer)}"
                 if g.filter_mode is FilterMode.EXCLUDE else "")
        lines.append(f"  group {g.group}  {g.filter_mode.name}{timer}"
                     f"  compatibility {snap.protocol}v{g.compat_mode}  -> {forwarding}")
        for s in g.sources:
            state = "forwarded" if s.forwarded else "timer 0: not forwarded"
            rexmit = (f", {s.query_retransmissions} queries left"
                      if s.query_retransmissions else "")
            lines.append(f"    source {s.source!s:<15}  timer {_secs(s.timer):>9}"
                         f"  ({state}{rexmit})")
        if g.query_retransmissions:
            lines.append(f"    group-specific queries left: {g.query_retransmissions}")
        for h in g.hosts:
            lines.append(f"    host {h.host!s:<15}  {h.filter_mode.name} {_set(h.sources)}"
                         f"  (forgotten in {_secs(h.expires)} unless it reports again)")
    return "\n".join(lines)
