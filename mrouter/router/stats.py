"""The daemon's statistics: what it received, sent, dropped and did, since it started.

Theory of operation: :class:`Statistics` is a set of counters that the daemon's loop bumps
as things happen (an IGMP message decoded on an interface, a query sent, an engine
``Dropped``, an upcall, a route put in or taken out of the kernel); the control server
counts its own requests and errors. :meth:`Statistics.snapshot` turns them, with the
drops, the control counters and the uptime the daemon passes in, into one JSON-able
dict: the reply of the ``statistics`` control request, which ``mrouter show statistics``
prints as tables and :func:`mrouter.router.metrics.exposition` as Prometheus text.

Counters only grow while the daemon runs (a restart starts from 0, as Prometheus
expects of a ``_total``); an interface appears once it has something to count.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from mrouter.igmp.messages import IgmpMessage, Query, V1Report, V2Leave, V2Report, V3Report
from mrouter.mld import messages as mld

#: the kinds of route change counted (``routes`` in the snapshot)
ROUTE_CHANGES = ("installs", "updates", "removals")


def message_kind(msg: IgmpMessage | mld.MldMessage) -> tuple[str, int | None]:
    """(type, version) of a message as the statistics count it: query, report or leave (a
    v3 report is a report, whatever its records say; an MLD Done is a leave), else unknown.
    The version is the protocol's own (IGMPv1-3, MLDv1-2)."""
    if isinstance(msg, Query | mld.Query):
        return "query", msg.version
    if isinstance(msg, mld.V1Report):
        return "report", 1
    if isinstance(msg, mld.V1Done):
        return "leave", 1
    if isinstance(msg, mld.V2Report):
        return "report", 2
    if isinstance(msg, V1Report):
        return "report", 1
    if isinstance(msg, V2Report):
        return "report", 2
    if isinstance(msg, V2Leave):
        return "leave", 2
    if isinstance(msg, V3Report):
        return "report", 3
    return "unknown", None


class Statistics:
    def __init__(self) -> None:
        # per interface: (message type, IGMP version) -> count
        self.received: dict[str, Counter[tuple[str, int | None]]] = {}
        self.sent: dict[str, Counter[tuple[str, int | None]]] = {}
        # per interface: upcall type (NOCACHE, WRONGVIF, ...) -> count
        self.upcalls: dict[str, Counter[str]] = {}
        self.routes: Counter[str] = Counter()

    def igmp_received(self, iface: str, kind: str, version: int | None) -> None:
        self.received.setdefault(iface, Counter())[kind, version] += 1

    def igmp_sent(self, iface: str, kind: str, version: int | None) -> None:
        self.sent.setdefault(iface, Counter())[kind, version] += 1

    def upcall(self, iface: str, kind: str) -> None:
        self.upcalls.setdefault(iface, Counter())[kind] += 1

    def route(self, change: str) -> None:
        assert change in ROUTE_CHANGES, change
        self.routes[change] += 1

    def snapshot(self, interfaces: Iterable[str], dropped: Mapping[str, Mapping[str, int]],
                 requests: Mapping[str, int], errors: Mapping[str, int],
                 uptime: float, kernel_routes: int) -> dict[str, Any]:
        """Everything as one JSON-able dict: ``interfaces`` (one row per configured
        interface, then any other that counted something), ``routes``, ``control``,
        ``uptime_seconds`` and ``kernel_routes`` (the (S,G) entries installed now)."""
        names = list(dict.fromkeys([*interfaces, *self.received, *self.sent,
                                    *self.upcalls, *dropped]))
        rows = []
        for name in names:
            rows.append({
                "name": name,
                "received": _messages(self.received.get(name, Counter())),
                "sent": _messages(self.sent.get(name, Counter())),
                "dropped": dict(sorted(dropped.get(name, {}).items())),
                "upcalls": dict(sorted(self.upcalls.get(name, Counter()).items())),
            })
        return {
            "uptime_seconds": round(uptime, 3),
            "interfaces": rows,
            "routes": {change: self.routes[change] for change in ROUTE_CHANGES},
            "kernel_routes": kernel_routes,
            "control": {"requests": dict(sorted(requests.items())),
                        "errors": dict(sorted(errors.items()))},
        }


def _messages(counts: Counter[tuple[str, int | None]]) -> list[dict[str, Any]]:
    """``[{"type": "report", "version": 2, "count": 3}, ...]`` in a stable order."""
    return [{"type": kind, "version": version, "count": n}
            for (kind, version), n in sorted(counts.items(),
                                             key=lambda kv: (kv[0][0], kv[0][1] or 0))]
