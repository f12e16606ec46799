"""Which interfaces a multicast packet goes out of: static routes plus group membership.

Theory of operation: :class:`RouteTable` holds two kinds of state and answers one
question, :meth:`RouteTable.oifs`: for a packet from source S to group G that arrived on
interface ``iif``, which interfaces does it leave by?

- *Static routes* (from the config or ``mrouter route add``): an exact (S,G), a (*,G), or
  a group prefix with any source, each with one inbound interface and a set of outbound
  ones. Every static route that matches contributes its outbound set.
- *Membership* per interface and group, as the IGMP engine reports it
  (``MembershipChanged``: INCLUDE + the sources to forward, or EXCLUDE + the sources not
  to forward), plus static memberships (smcroute's ``mgroup``). An interface wants (S,G)
  if any of these says so (RFC 3376 §3.2 merging: the union of what each wants).
  In router mode a member interface receives the group whatever the inbound interface;
  in proxy mode (RFC 4605 §4.2) traffic from upstream goes to member downstreams, and
  traffic from a downstream goes upstream and to the other member downstreams, a member
  downstream counting only while this router is its querier.

One table serves one family; a dual-stack daemon has one per family (IPv4 and IPv6 are
separate kernel tables too).

Two rules hold whatever the state: link-local groups (the family's link-local scope,
224.0.0.0/24 for IPv4) are never forwarded, and a packet never goes back out of its
inbound interface. The table takes those facts from its
:class:`~mrouter.igmp.family.AddressFamily`, as the IGMP engine does.

:class:`ForwardingCache` is the daemon's view of the kernel's MFC: the (S,G) entries it
installed, recomputed when routes or membership change. Its methods return the
:class:`Install` and :class:`Uninstall` actions the daemon applies to the kernel, so all
of this is pure and tested without one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mrouter.igmp.family import IPV4, Address, AddressFamily, Network
from mrouter.igmp.tables import FilterMode  # the one FilterMode, the engine's

__all__ = ["CacheAction", "CacheEntry", "FilterMode", "ForwardingCache", "Install",
           "Membership", "RouteTable", "StaticRoute", "Uninstall"]


@dataclass(frozen=True, slots=True)
class StaticRoute:
    """(S,G) when ``source`` is set, else (*,G) for every group in ``group``."""

    group: Network
    iif: str
    oifs: frozenset[str]
    source: Address | None = None

    def matches(self, source: Address, group: Address, iif: str) -> bool:
        return (self.iif == iif and group in self.group
                and (self.source is None or self.source == source))

    @property
    def key(self) -> tuple[Address | None, Network, str]:
        return (self.source, self.group, self.iif)


@dataclass(frozen=True, slots=True)
class Membership:
    """Forwarding state of one group on one interface (the engine's MembershipChanged)."""

    filter_mode: FilterMode
    sources: frozenset[Address]

    def wants(self, source: Address) -> bool:
        if self.filter_mode is FilterMode.INCLUDE:
            return source in self.sources
        return source not in self.sources

    @property
    def empty(self) -> bool:
        return self.filter_mode is FilterMode.INCLUDE and not self.sources


class RouteTable:
    """Static routes and memberships -> outbound interfaces (see the module docstring).

    ``upstream`` set means proxy mode (RFC 4605) with that upstream interface;
    ``family`` says which groups may be forwarded at all.
    """

    def __init__(self, interfaces: Iterable[str], *, upstream: str | None = None,
                 family: AddressFamily[Any, Any] = IPV4) -> None:
        self.interfaces = tuple(interfaces)
        self.upstream = upstream
        self.family = family
        self._routes: dict[tuple[Address | None, Network, str], StaticRoute] = {}
        self._dynamic: dict[tuple[str, Address], Membership] = {}
        self._static: dict[tuple[str, Address], set[Address | None]] = {}
        self._not_querier: set[str] = set()

    # --- static routes ---
    def add_route(self, route: StaticRoute) -> None:
        """Add a route, replacing one with the same (source, group, iif)."""
        self._routes[route.key] = route

    def remove_route(self, source: Address | None, group: Network, iif: str) -> bool:
        """Remove a route; False if there was none."""
        return self._routes.pop((source, group, iif), None) is not None

    @property
    def routes(self) -> list[StaticRoute]:
        return list(self._routes.values())

    def static_sg(self) -> Iterator[StaticRoute]:
        """The exact (S,G) routes, which can be installed before any packet arrives."""
        return (r for r in self._routes.values()
                if r.source is not None and r.group.prefixlen == r.group.max_prefixlen)

    # --- membership ---
    def set_membership(self, iface: str, group: Address, filter_mode: FilterMode,
                       sources: Iterable[Address]) -> None:
        """The engine's latest state for (iface, group); INCLUDE {} removes it."""
        membership = Membership(filter_mode, frozenset(sources))
        if membership.empty:
            self._dynamic.pop((iface, group), None)
        else:
            self._dynamic[(iface, group)] = membership

    def join(self, iface: str, group: Address, source: Address | None = None) -> bool:
        """Static membership; ``source`` None means any source. False if already there."""
        joined = self._static.setdefault((iface, group), set())
        if source in joined:
            return False
        joined.add(source)
        return True

    def leave(self, iface: str, group: Address, source: Address | None = None) -> bool:
        """Remove a static membership; False if there was none."""
        joined = self._static.get((iface, group))
        if joined is None or source not in joined:
            return False
        joined.discard(source)
        if not joined:
            del self._static[(iface, group)]
        return True

    def static_memberships(self) -> list[tuple[str, Address, Address | None]]:
        return sorted(((i, g, s) for (i, g), ss in self._static.items() for s in ss),
                      key=lambda t: (t[0], int(t[1]), int(t[2] or 0)))

    def is_static(self, iface: str, group: Address) -> bool:
        """Whether (iface, group) has a static membership (of any source)."""
        return bool(self._static.get((iface, group)))

    def set_querier(self, iface: str, is_self: bool) -> None:
        """Proxy mode forwards to a downstream only while this router queries there."""
        if is_self:
            self._not_querier.discard(iface)
        else:
            self._not_querier.add(iface)

    def membership(self, iface: str, group: Address) -> Membership | None:
        """The merged membership of (iface, group), static joins included."""
        dynamic = self._dynamic.get((iface, group))
        static = self._static.get((iface, group), set())
        if None in static:  # a static any-source join: EXCLUDE {} wins the union
            return Membership(FilterMode.EXCLUDE, frozenset())
        static_sources = frozenset(s for s in static if s is not None)
        if dynamic is None:
            return Membership(FilterMode.INCLUDE, static_sources) if static_sources else None
        if dynamic.filter_mode is FilterMode.INCLUDE:
            return Membership(FilterMode.INCLUDE, dynamic.sources | static_sources)
        return Membership(FilterMode.EXCLUDE, dynamic.sources - static_sources)

    def groups(self) -> set[Address]:
        return {g for _, g in self._dynamic} | {g for _, g in self._static}

    def member_interfaces(self, source: Address, group: Address) -> set[str]:
        wanted = set()
        for iface in self.interfaces:
            m = self.membership(iface, group)
            if m is not None and m.wants(source):
                wanted.add(iface)
        return wanted

    # --- the question ---
    def oifs(self, source: Address, group: Address, iif: str) -> frozenset[str]:
        """Outbound interfaces for (source, group) arriving on ``iif``."""
        if not self.family.is_forwardable(group):  # link-local scope or not multicast
            return frozenset()
        out: set[str] = set()
        for route in self._routes.values():
            if route.matches(source, group, iif):
                out |= route.oifs
        members = self.member_interfaces(source, group)
        if self.upstream is None:
            out |= members
        else:
            # RFC 4605 §4.2: out of each member downstream this router is querier of
            # (whatever the inbound interface), and from any downstream also upstream
            out |= {m for m in members if m != self.upstream and m not in self._not_querier}
            if iif != self.upstream:
                out.add(self.upstream)
        out.discard(iif)
        return frozenset(o for o in out if o in self.interfaces)


# --- the forwarding cache -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Install:
    """Add or replace the kernel MFC entry for (source, group)."""

    source: Address
    group: Address
    iif: str
    oifs: frozenset[str]


@dataclass(frozen=True, slots=True)
class Uninstall:
    source: Address
    group: Address


CacheAction = Install | Uninstall


@dataclass(slots=True)
class CacheEntry:
    source: Address
    group: Address
    iif: str
    oifs: frozenset[str]
    installed_at: float
    static: bool = False
    packets: int = 0  # last counter reading, for aging
    last_active: float = field(default=0.0)


class ForwardingCache:
    """The (S,G) entries the daemon keeps in the kernel, derived from a RouteTable.

    Entries made on NOCACHE upcalls (including those with no outbound interface, which
    stop further upcalls for a source nobody wants) expire after ``expiry`` seconds
    without packets; entries of static (S,G) routes stay.
    """

    def __init__(self, table: RouteTable, *, expiry: float = 300.0) -> None:
        self.table = table
        self.expiry = expiry
        self.entries: dict[tuple[Address, Address], CacheEntry] = {}
        # the sources with an entry, per group: a membership change touches one group's
        # entries without scanning every entry (10k groups installed is a normal day)
        self._sources: dict[Address, set[Address]] = {}

    def _entry(self, source: Address, group: Address, iif: str, now: float,
               static: bool) -> Install:
        oifs = self.table.oifs(source, group, iif)
        self._sources.setdefault(group, set()).add(source)
        self.entries[(source, group)] = CacheEntry(source, group, iif, oifs, now, static,
                                                   0, now)
        return Install(source, group, iif, oifs)

    def install_static(self, now: float) -> list[CacheAction]:
        """Entries for every exact static (S,G) route not installed yet (or changed)."""
        actions: list[CacheAction] = []
        for route in self.table.static_sg():
            assert route.source is not None
            if route.iif not in self.table.interfaces:
                continue  # its inbound interface is down; installed when it returns
            key = (route.source, route.group.network_address)
            entry = self.entries.get(key)
            if entry is None or entry.iif != route.iif:
                actions.append(self._entry(*key, route.iif, now, True))
            else:
                entry.static = True
        return actions

    def resolve(self, source: Address, group: Address, iif: str,
                now: float) -> list[CacheAction]:
        """A NOCACHE upcall: install (S,G) with what the table says (maybe nothing)."""
        if self.table.family.is_link_local(group):
            return []
        return [self._entry(source, group, iif, now, self._is_static(source, group))]

    def _is_static(self, source: Address, group: Address) -> bool:
        return any(r.source == source and r.group.network_address == group
                   for r in self.table.static_sg())

    def refresh(self, group: Address | None = None) -> list[CacheAction]:
        """Recompute entries (of one group, or all) after routes or membership changed."""
        actions: list[CacheAction] = []
        entries = self.entries.values() if group is None else [
            self.entries[(source, group)] for source in self._sources.get(group, ())]
        for entry in entries:
            entry.static = self._is_static(entry.source, entry.group)  # a route may be gone
            oifs = self.table.oifs(entry.source, entry.group, entry.iif)
            if oifs != entry.oifs:
                entry.oifs = oifs
                actions.append(Install(entry.source, entry.group, entry.iif, oifs))
        return actions

    def remove(self, source: Address, group: Address) -> list[CacheAction]:
        if self.entries.pop((source, group), None) is None:
            return []
        sources = self._sources[group]
        sources.discard(source)
        if not sources:
            del self._sources[group]
        return [Uninstall(source, group)]

    def remove_interface(self, iface: str) -> list[CacheAction]:
        """Entries arriving on a vanished interface go; others drop it from their oifs."""
        actions: list[CacheAction] = []
        for key in [k for k, e in self.entries.items() if e.iif == iface]:
            actions += self.remove(*key)
        return actions + self.refresh()

    def age(self, counters: dict[tuple[Address, Address], int],
            now: float) -> list[CacheAction]:
        """Expire dynamic entries whose packet count did not move for ``expiry`` seconds.

        ``counters`` maps (S,G) to the kernel's packet count now.
        """
        actions: list[CacheAction] = []
        for key, entry in list(self.entries.items()):
            packets = counters.get(key, entry.packets)
            if packets != entry.packets:
                entry.packets = packets
                entry.last_active = now
            elif not entry.static and now - entry.last_active >= self.expiry:
                actions += self.remove(*key)
        return actions
