"""MLD (IPv6 multicast listener discovery), sans-I/O: message types, the wire codec, their
descriptions for the tools, and the adapter through which the one membership engine
(:mod:`mrouter.igmp.engine`, with the IPv6 family) speaks MLD; there is no second engine.

Nothing in this package opens a socket, reads the clock, draws random numbers by
itself or logs, as in :mod:`mrouter.igmp`: bytes go in, messages come out.
"""
