"""The one exception family of mrouter.

Every error a user can cause (bad input, bad config, a missing interface, a busy
kernel table) is raised as a subclass of :class:`MrouterError` whose message says what
was wrong, where, and what to do next. The CLI prints that message as one line on
stderr and exits with status 2; any other exception reaching the user is a bug.

::

    MrouterError
    ├── CodecError          malformed IGMP/IPv4 bytes (carries the byte offset)
    ├── EngineError         an engine asked to do something impossible (bad settings)
    ├── McastError          multicast socket API (joins, options, interfaces)
    │   └── McastSyscallError   the kernel refused a socket call (carries errno)
    │                           (mrouter.sockets.mcast)
    ├── KernelError         the kernel's multicast routing API (MRT_*, ioctls)
    ├── ConfigError         daemon config file (names file, key or line)
    ├── TopologyError       lab topology file (names file, key or line)
    ├── LabError            building or driving a namespace lab
    ├── ControlError        talking to a running daemon over its control socket
    │   └── RequestError    a control request the daemon cannot carry out as asked
    ├── EventsError         a malformed event or events file (mrouter.diag.events)
    ├── DataplaneError      the userspace data plane's sockets (mrouter.dataplane.user)
    ├── PayloadError        bytes that are not an mrouter datagram (mrouter.traffic.payload)
    └── UsageError          options that describe no IGMP message (mrouter.cli.igmp)

The five classes named with a module are defined there, next to the code that raises
them; the others here.

This module is pure (no I/O) so that the sans-I/O core may import it.
"""

from __future__ import annotations


class MrouterError(Exception):
    """Base of every error mrouter raises on purpose."""


class CodecError(MrouterError):
    """Bytes that are not a valid IGMP message or IPv4 header.

    ``offset`` is the byte offset (from the start of the buffer given to the decoder)
    where the problem was found.
    """

    def __init__(self, message: str, offset: int = 0) -> None:
        super().__init__(f"{message} (at byte offset {offset})")
        self.reason = message
        self.offset = offset


class EngineError(MrouterError):
    """Invalid settings or calls given to the IGMP protocol engine."""


class McastError(MrouterError):
    """A multicast socket operation failed; the message names the cause and the fix."""


class KernelError(MrouterError):
    """The kernel's multicast routing API refused an operation."""


class ConfigError(MrouterError):
    """A daemon configuration that cannot be used; nothing was started or changed."""


class TopologyError(MrouterError):
    """A lab topology file with an error; nothing was created."""


class LabError(MrouterError):
    """Building, driving or tearing down a namespace lab failed."""


class ControlError(MrouterError):
    """The daemon's control socket could not be reached or refused a request."""


class RequestError(ControlError):
    """A control request that is malformed or cannot be carried out (an unknown view, a
    route or membership that is not there); raised in the daemon, whose control server
    sends the message back, where the client raises it as a ControlError."""
