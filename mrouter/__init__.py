"""mrouter: a multicast router and IGMP toolkit for Linux.

Layers, each in its own sub-package or module:

- ``mrouter.sockets.mcast`` and ``mcast6``: the BSD/Linux multicast socket API, IPv4 and
  IPv6 (options, joins, interfaces, the kernel's membership tables);
- ``mrouter.igmp``: a pure IGMPv1/v2/v3 codec and router-side protocol engine (sans-I/O);
- ``mrouter.kernel``: the kernel's multicast forwarding cache (MRT_* options, upcalls);
- ``mrouter.router``: the daemon (config, routes, event loop, control socket);
- ``mrouter.lab``: network-namespace labs built from topology files;
- ``mrouter.cli``: the ``mrouter`` command (parsing and output only).
"""

__version__ = "0.1.0"
