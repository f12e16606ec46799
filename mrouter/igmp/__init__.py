"""IGMP, sans-I/O: message types, the wire codec and the router-side protocol engine (which
also speaks MLD, over the IPv6 family of :mod:`mrouter.igmp.family`).

Nothing in this package opens a socket, reads the clock, draws random numbers by
itself or logs: bytes and events go in, messages and actions come out, and time is an
argument. The I/O shells (``mrouter.sockets.igmp_socket``, the daemon, the ``querier`` command,
the tests) own sockets and clocks.
"""
