"""Proxy mode's host side: the merged downstream membership held on the upstream link.

Theory of operation: in proxy mode (RFC 4605) the daemon runs router-side IGMP
downstream; :mod:`mrouter.router.proxy` merges what it learnt there into one membership
database, and :class:`UpstreamHost` holds that database on the upstream interface from
ordinary multicast sockets, one per group (of the group's family: a dual-stack proxy has
one host per family), so the kernel's own host side sends the reports (IGMP or MLD) and
answers the upstream querier. :meth:`UpstreamHost.apply` joins, changes and leaves
groups as the database changes; :meth:`UpstreamHost.reset` forgets everything when the
upstream link goes away.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from mrouter.errors import MrouterError
from mrouter.igmp.family import Address
from mrouter.router import proxy
from mrouter.router.interfaces import Interface
from mrouter.router.routes import FilterMode, Membership

log = logging.getLogger("mrouter.router.daemon")  # the daemon's log, as before the split


class UpstreamHost:
    """Proxy mode: hold the merged downstream membership on the upstream interface.

    One socket per group, so a group's state is replaced by closing its socket and
    joining afresh (the kernel reports the change) and the per-socket membership limit
    (igmp_max_memberships) never applies.
    """

    def __init__(self, iface: Interface,
                 on_change: Callable[[Address, Membership | None], None] = lambda g, m: None,
                 ) -> None:
        self.iface = iface
        # each group joined, changed (its new state) or left (None) upstream
        self.on_change = on_change
        self.joined: dict[Address, Membership] = {}
        self._sockets: dict[Address, Any] = {}

    def apply(self, database: Mapping[Address, Membership]) -> None:
        from mrouter.sockets.mcast import interface
        from mrouter.sockets.mcast6 import open_socket

        upstream = interface(self.iface.index)
        for group, state in proxy.upstream_changes(self.joined, database).items():
            old = self._sockets.pop(group, None)
            if old is not None:
                old.close()
            if state is None:
                del self.joined[group]
                log.info("proxy: left %s upstream on %s", group, self.iface.name)
                self.on_change(group, None)
                continue
            sock: Any = open_socket(group)  # IGMP or MLD: the kernel's host side of its family
            try:
                if state.filter_mode is FilterMode.INCLUDE:
                    for source in sorted(state.sources):
                        sock.join_source(group, source, upstream)
                else:
                    sock.join(group, upstream)
                    for source in sorted(state.sources):
                        sock.block_source(group, source, upstream)
            except MrouterError as exc:
                sock.close()
                log.warning("proxy: cannot join %s upstream on %s: %s", group,
                            self.iface.name, exc)
                if self.joined.pop(group, None) is not None:
                    self.on_change(group, None)
                continue
            self._sockets[group] = sock
            self.joined[group] = state
            log.info("proxy: joined %s upstream on %s as %s %s", group, self.iface.name,
                     state.filter_mode.name, sorted(map(str, state.sources)))
            self.on_change(group, state)

    def reset(self) -> None:
        """The upstream interface went away: its memberships went with it. Forget them
        (``apply`` joins afresh when it is back, on its new index if it has one)."""
        for group in list(self.joined):
            sock = self._sockets.pop(group, None)
            if sock is not None:
                sock.close()
            del self.joined[group]
            log.info("proxy: %s no longer held upstream (%s is gone)", group, self.iface.name)
            self.on_change(group, None)

    def close(self) -> None:
        for sock in self._sockets.values():
            sock.close()
        self._sockets.clear()
        self.joined.clear()
