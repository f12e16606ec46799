"""Link and address events from the kernel (rtnetlink), for the daemon's loop.

Theory of operation: the daemon does not track interfaces message by message. It listens
on a NETLINK_ROUTE socket bound to the link and IPv4 address multicast groups; any
RTM_NEWLINK, RTM_DELLINK, RTM_NEWADDR or RTM_DELADDR only says "something changed", and
the daemon then re-reads the interfaces it is configured for (a full dump is cheap and
cannot drift from the kernel's view). Like smcroute's ifevent_nl.c, only the headers
are parsed here.
"""

from __future__ import annotations

import socket
import struct
from enum import IntEnum, IntFlag

from mrouter.errors import KernelError

NLMSGHDR = struct.Struct("=IHHII")
"""struct nlmsghdr { __u32 nlmsg_len; __u16 nlmsg_type, nlmsg_flags; __u32 nlmsg_seq,
nlmsg_pid; }"""


class RtmType(IntEnum):
    NEWLINK = 16
    DELLINK = 17
    NEWADDR = 20
    DELADDR = 21


class RtmGroup(IntFlag):
    LINK = 0x1
    IPV4_IFADDR = 0x10


class LinkEvents:
    """A non-blocking rtnetlink listener; :meth:`read` says whether interfaces changed."""

    def __init__(self) -> None:
        try:
            self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, socket.NETLINK_ROUTE)
            self.sock.bind((0, RtmGroup.LINK | RtmGroup.IPV4_IFADDR))
        except OSError as exc:
            raise KernelError(f"cannot listen for interface events (rtnetlink): "
                              f"{exc.strerror}") from None
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def read(self) -> bool:
        """Drain the socket; True if a link or address was added, changed or removed."""
        changed = False
        while True:
            try:
                data = self.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return changed
            except OSError:  # ENOBUFS: we missed events; assume everything changed
                return True
            offset = 0
            while offset + NLMSGHDR.size <= len(data):
                length, kind, _, _, _ = NLMSGHDR.unpack_from(data, offset)
                if kind in RtmType._value2member_map_:
                    changed = True
                if length < NLMSGHDR.size:
                    break
                offset += (length + 3) & ~3

    def close(self) -> None:
        self.sock.close()
