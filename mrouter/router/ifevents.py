"""Link and address events from the kernel (rtnetlink, parsed by pyroute2), for the daemon.

Theory of operation: the daemon does not track interfaces message by message. It listens
on a NETLINK_ROUTE socket bound to the multicast groups for links and IPv4 addresses;
any RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR or RTM_DELADDR only says "something changed",
and the daemon then re-reads the interfaces it is configured for (a full dump through
pyroute2, :func:`mrouter.sockets.mcast.interfaces`: cheap, and it cannot drift from the kernel's
view).

The socket is a plain non-blocking one in the daemon's selector, read until it is empty,
so nothing waits unread where the selector cannot see it; pyroute2's rtnetlink marshal
parses what was read (the same parser behind its dumps). If the kernel dropped events
(ENOBUFS: the socket's buffer overflowed during a burst), :meth:`LinkEvents.read` says
that something changed, and the socket keeps working.
"""

from __future__ import annotations

import socket
from typing import Any

from mrouter.errors import KernelError

#: rtnetlink multicast groups (linux/rtnetlink.h): RTMGRP_LINK, RTMGRP_IPV4_IFADDR
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
RTMGRP_IPV6_IFADDR = 0x100  # IPv6 addresses: a link-local address leaving DAD (MLD)
#: the messages that mean an interface or an IPv4 address changed
EVENTS = frozenset({"RTM_NEWLINK", "RTM_DELLINK", "RTM_NEWADDR", "RTM_DELADDR"})
RECV_BUFFER = 1 << 16


class LinkEvents:
    """An rtnetlink listener; :meth:`read` says whether interfaces changed (never blocks)."""

    def __init__(self) -> None:
        from pyroute2.netlink.rtnl.marshal import MarshalRtnl  # loaded by the daemon already

        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            self.sock.bind((0, RTMGRP_LINK | RTMGRP_IPV4_IFADDR | RTMGRP_IPV6_IFADDR))
        except OSError as exc:
            raise KernelError(f"cannot listen for interface events (rtnetlink): "
                              f"{exc.strerror}") from None
        self.sock.setblocking(False)
        self._marshal: Any = MarshalRtnl()

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> bool:
        """Drain the socket; True if a link or an IPv4 address was added, changed or
        removed (or events were lost)."""
        changed = False
        while True:
            try:
                data = self.sock.recv(RECV_BUFFER)
            except (BlockingIOError, InterruptedError):
                return changed
            except OSError:  # ENOBUFS: events were lost; re-reading is always safe
                changed = True
                continue
            try:
                messages = list(self._marshal.parse(data))
            except Exception:  # whatever pyroute2 cannot parse: re-reading is safe
                changed = True
                continue
            changed = changed or any(m.get("event") in EVENTS for m in messages)

    def close(self) -> None:
        self.sock.close()
