"""Link and address events from the kernel (rtnetlink through pyroute2), for the daemon.

Theory of operation: the daemon does not track interfaces message by message. It holds a
pyroute2 ``IPRoute`` socket bound to the rtnetlink multicast groups for links and IPv4
addresses; any RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR or RTM_DELADDR only says "something
changed", and the daemon then re-reads the interfaces it is configured for (a full dump
is cheap and cannot drift from the kernel's view). The same library gives the daemon its
interface dumps (:func:`mrouter.mcast.interfaces`), so events and state come from one
netlink implementation.

The socket is registered in the daemon's selector (:meth:`LinkEvents.fileno`) and read
only when it is readable, so :meth:`read` never blocks. A burst of events (a veth pair
coming up sends several) may come back from one read or several; either way the daemon
settles for a moment before it re-reads (``RESYNC_DELAY``). If the kernel dropped events
(ENOBUFS: the socket's buffer overflowed), :meth:`read` says that something changed.
"""

from __future__ import annotations

from typing import Any

from mrouter.errors import KernelError

#: rtnetlink multicast groups (linux/rtnetlink.h): RTMGRP_LINK, RTMGRP_IPV4_IFADDR
RTMGRP_LINK = 0x1
RTMGRP_IPV4_IFADDR = 0x10
#: the messages that mean an interface or an IPv4 address changed
EVENTS = frozenset({"RTM_NEWLINK", "RTM_DELLINK", "RTM_NEWADDR", "RTM_DELADDR"})


class LinkEvents:
    """An rtnetlink listener; :meth:`read` (when readable) says whether interfaces changed."""

    def __init__(self) -> None:
        from pyroute2 import IPRoute  # slow to import; the daemon has it loaded already

        try:
            self._ipr: Any = IPRoute()
            self._ipr.bind(groups=RTMGRP_LINK | RTMGRP_IPV4_IFADDR)
        except OSError as exc:
            raise KernelError(f"cannot listen for interface events (rtnetlink): "
                              f"{exc.strerror}") from None

    def fileno(self) -> int:
        return int(self._ipr.fileno())

    def read(self) -> bool:
        """Read what is waiting (call when the socket is readable); True if a link or an
        IPv4 address was added, changed or removed."""
        from pyroute2.netlink.exceptions import NetlinkError

        try:
            messages = self._ipr.get()
        except (OSError, NetlinkError):  # ENOBUFS and the like: events were lost
            return True  # re-reading the interfaces is always safe
        return any(m.get("event") in EVENTS for m in messages)

    def close(self) -> None:
        self._ipr.close()
