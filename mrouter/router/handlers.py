"""The daemon's control requests: show, route, join, leave, reload, stop, events.

``show`` with ``what = "statistics"`` answers the daemon's counters
(:mod:`mrouter.router.stats`), which ``mrouter metrics`` renders for Prometheus.

Theory of operation: :class:`ControlHandlers` maps each command of the control socket
(:mod:`mrouter.router.control`) to a method that reads or changes the running daemon.
A request that is malformed or cannot be done raises :class:`~mrouter.errors.RequestError`
(fields that fail the config's own checks raise ConfigError, as they would in the file);
the control server sends the message back as the error reply.

The views that grow with the network (``show groups``: one row per interface and group;
``show routes``: one entry per (S,G)) are :class:`~mrouter.router.control.Stream` s: the
rows are computed one at a time as the control server sends them, a bounded slice per
loop turn, so tens of thousands of groups never hold up IGMP or upcalls. The list of
keys is taken at the first slice and ordered in steps; a row whose state went in the
meantime is left out, one that changed is shown as it is when its turn comes.

A dual-stack daemon shows every family (in the config's order of ``families``): each row
and route says its ``family`` ("ipv4", "ipv6"). An IPv6 row has the IPv4 row's keys with
MLD's names (``mld``, ``mld_version``, the engine's view under ``mld``) and the
interface's link-local ``address``; ``route`` and ``join``/``leave`` take either
family's addresses and act on that family's table.
"""

from __future__ import annotations

import heapq
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from mrouter.errors import MrouterError, RequestError
from mrouter.igmp.family import IPV4
from mrouter.router.config import RouteConfig, parse_membership, parse_route
from mrouter.router.control import PENDING, Handler, Stream
from mrouter.router.interfaces import Interface, querier_fields
from mrouter.router.routes import StaticRoute

if TYPE_CHECKING:
    from mrouter.router.daemon import Daemon
    from mrouter.router.planes import FamilyPlane

log = logging.getLogger("mrouter.router.daemon")  # the daemon's log, as before the split
K = TypeVar("K", int, tuple[int, int])
STEP = 4096  # keys turned into numbers per step of a big view's preparation


def static_route(route: RouteConfig) -> StaticRoute:
    return StaticRoute(route.group, route.iif, frozenset(route.oifs), route.source)


def describe(route: StaticRoute) -> str:
    source = route.source if route.source else "*"
    return f"({source}, {route.group}) from {route.iif} to {', '.join(sorted(route.oifs))}"


def _ordered(keys: Callable[[], list[Any]], number: Callable[[Any], K],
             ) -> Iterator[K | Any]:
    """The ``keys()`` (taken at the first step) as numbers, smallest first, made in steps
    of :data:`STEP` keys: between steps it yields :data:`~mrouter.router.control.PENDING`
    so the control server gives the loop its turn. A heap is built in linear time and
    each row pops one, so no turn pays for a whole sort."""
    taken = keys()
    numbers: list[K] = []
    for start in range(0, len(taken), STEP):
        numbers.extend(number(k) for k in taken[start:start + STEP])
        yield PENDING
    heapq.heapify(numbers)
    while numbers:
        yield heapq.heappop(numbers)


class ControlHandlers:
    """The control commands of one :class:`~mrouter.router.daemon.Daemon`."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon

    def table(self) -> dict[str, Handler]:
        return {
            "ping": lambda r: {"pid": os.getpid()},
            "show": self.show,
            "route": self.route,
            "join": lambda r: self.membership(r, join=True),
            "leave": lambda r: self.membership(r, join=False),
            "reload": lambda r: self.daemon.reload_logged(),
            "stop": self.stop,
            "events": self.events,
        }

    def events(self, request: Mapping[str, Any]) -> Any:
        return self.daemon.events.serve(request)

    def stop(self, request: Mapping[str, Any]) -> Any:
        self.daemon.stopping = True
        return {"stopping": True}

    def show(self, request: Mapping[str, Any]) -> Any:
        what = request.get("what")
        shows: dict[str, Callable[[], Any]] = {
            "interfaces": self.show_interfaces, "groups": self.show_groups,
            "routes": self.show_routes, "statistics": self.daemon.statistics}
        if what not in shows:
            raise RequestError(f"show what? {what!r} is not one of {', '.join(shows)}")
        return shows[what]()

    # --- show ----------------------------------------------------------------------------
    def show_interfaces(self) -> list[dict[str, Any]]:
        """One row per configured interface and family (at most 32 each: not streamed);
        ``dropped`` counts what was dropped there, by reason (the engine's reasons and the
        daemon's own)."""
        d = self.daemon
        rows = []
        for plane in d.planes:
            for iface in d.interfaces.values():
                rows.append(self._interface_row(plane, iface))
        return rows

    def _interface_row(self, plane: FamilyPlane, iface: Interface) -> dict[str, Any]:
        d = self.daemon
        try:
            c = plane.mrt.vif_counters(iface.vif)
            counters = {"packets_in": c.packets_in, "packets_out": c.packets_out,
                        "bytes_in": c.bytes_in, "bytes_out": c.bytes_out}
        except MrouterError:
            counters = {}
        dropped = dict(sorted(d._dropped_of[plane.key].get(iface.name, {}).items()))
        if plane.family is IPV4:
            return {
                "family": plane.key,
                "name": iface.name, "vif": iface.vif, "ifindex": iface.index,
                "address": str(iface.address), "role": iface.config.role.value,
                "active": iface.active,
                "igmp": iface.igmp,
                "igmp_version": iface.config.igmp_version if iface.igmp else None,
                **querier_fields(iface),
                **counters,
                "dropped": dropped}
        shell_iface = plane.shell.interface(iface.name) if plane.shell else None
        querier, is_self = plane.querier.get(iface.name, (None, iface.config.querier))
        return {
            "family": plane.key,
            "name": iface.name, "vif": iface.vif, "ifindex": iface.index,
            "address": str(shell_iface.address) if shell_iface else None,
            "role": iface.config.role.value, "active": iface.active,
            "mld": iface.igmp,
            "mld_version": iface.config.mld.version if iface.igmp else None,
            "querier": str(querier) if querier else None,
            "is_querier": (is_self and shell_iface is not None) if iface.igmp else None,
            **counters,
            "dropped": dropped}

    def show_groups(self) -> Stream:
        """Merged membership per (interface, group), with the interface's querier;
        ``igmp`` is the engine's view of the group (timers, sources, hosts) when IGMP
        learnt it."""
        return Stream(self._group_rows())

    def _group_rows(self) -> Iterator[Any]:  # rows, and PENDING while preparing
        for plane in self.daemon.planes:
            yield from self._plane_group_rows(plane)

    def _plane_group_rows(self, plane: FamilyPlane) -> Iterator[Any]:
        d = self.daemon
        address = type(plane.family.unspecified)
        view_key = "igmp" if plane.family is IPV4 else "mld"
        for number in _ordered(lambda: list(plane.table.groups()), int):
            if number is PENDING:
                yield PENDING
                continue
            group = address(number)
            now = d.clock()
            engine_ifaces = set(plane.engine.interfaces())  # as they are now, at this row
            for name, iface in d.interfaces.items():
                m = plane.table.membership(name, group)
                if m is None:
                    continue
                view = plane.engine.group_snapshot(name, group, now) \
                    if name in engine_ifaces else None
                if plane.family is IPV4:
                    querier = querier_fields(iface)
                else:
                    q, is_self = plane.querier.get(name, (None, False))
                    querier = {"querier": str(q) if q else None,
                               "is_querier": is_self if iface.igmp else None}
                yield {"family": plane.key, "iface": name, "group": str(group),
                       "filter_mode": m.filter_mode.name,
                       "sources": sorted(map(str, m.sources)),
                       "static": plane.table.is_static(name, group),
                       **querier,
                       view_key: None if view is None else view.to_json()}

    def show_routes(self) -> dict[str, Any]:
        d = self.daemon
        static = [{"family": p.key, "source": str(r.source) if r.source else None,
                   "group": str(r.group), "from": r.iif, "to": sorted(r.oifs)}
                  for p in d.planes for r in p.table.routes]
        return {"static": static, "entries": Stream(self._route_entries())}

    def _route_entries(self) -> Iterator[Any]:  # entries, and PENDING while preparing
        for plane in self.daemon.planes:
            yield from self._plane_route_entries(plane)

    def _plane_route_entries(self, plane: FamilyPlane) -> Iterator[Any]:
        d = self.daemon
        address = type(plane.family.unspecified)
        for numbers in _ordered(lambda: list(plane.cache.entries),
                                lambda k: (int(k[0]), int(k[1]))):
            if numbers is PENDING:
                yield PENDING
                continue
            source, group = address(numbers[0]), address(numbers[1])
            e = plane.cache.entries.get((source, group))
            if e is None:
                continue  # removed since the request came
            try:
                c = plane.mrt.sg_counters(source, group)
                packets, nbytes, wrong = c.packets, c.bytes, c.wrong_if
            except MrouterError:
                packets = nbytes = wrong = 0
            yield {"family": plane.key, "source": str(source), "group": str(group),
                   "iif": e.iif, "oifs": sorted(e.oifs), "packets": packets, "bytes": nbytes,
                   "wrong_if": wrong, "age": round(d.clock() - e.installed_at, 1),
                   "static": e.static}

    # --- changes -------------------------------------------------------------------------
    def route(self, request: Mapping[str, Any]) -> Any:
        d = self.daemon
        action = request.get("action")
        names = tuple(d.interfaces)
        fields = {k: request[k] for k in ("source", "group", "from", "to") if k in request}
        if action == "del" and not fields.get("to"):  # a route is known by (S, G, from)
            fields["to"] = [n for n in names if n != fields.get("from")][:1]
        route = static_route(parse_route(fields, names))
        plane = self._plane_of(route.group)
        if action == "add":
            plane.table.add_route(route)
        elif action == "del":
            if not plane.table.remove_route(route.source, route.group, route.iif):
                raise RequestError(f"no such route: {describe(route)}; see mrouter show routes")
            # a route is known by (S, G, from): whatever its "to", a config route deleted
            # here is no longer running, so a reload of the same file brings it back
            d.config_routes = {r for r in d.config_routes if r.key != route.key}
        else:
            raise RequestError(f"route action must be add or del, not {action!r}")
        d.apply_cache(plane.cache.install_static(d.clock()) + plane.cache.refresh())
        log.info("route %s: %s", action, describe(route))
        return {"route": describe(route)}

    def membership(self, request: Mapping[str, Any], *, join: bool) -> Any:
        d = self.daemon
        fields = {k: request[k] for k in ("iface", "group", "source") if k in request}
        m = parse_membership(fields, tuple(d.interfaces))
        table = self._plane_of(m.group).table
        done = (table.join if join else table.leave)(m.iface, m.group, m.source)
        if not done:
            state = "already joined" if join else "not joined"
            raise RequestError(f"{m.group} on {m.iface} is {state}"
                               + (f" for source {m.source}" if m.source else ""))
        d.membership_changed(m.group)
        return {"iface": m.iface, "group": str(m.group),
                "source": str(m.source) if m.source else None}

    def _plane_of(self, group: Any) -> FamilyPlane:
        plane = self.daemon.planes.of(group)
        if plane is None:
            family = "ipv6" if group.version == 6 else "ipv4"
            raise RequestError(f"{group} is {family}, which this daemon does not route "
                               f"(families = {list(self.daemon.config.families)}); add "
                               f'"{family}" to families in {self.daemon.config.path} and '
                               "restart it")
        return plane
