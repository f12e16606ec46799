"""MLD (IPv6 multicast listener discovery), sans-I/O: message types and the wire codec.

Nothing in this package opens a socket, reads the clock, draws random numbers by
itself or logs, as in :mod:`mrouter.igmp`: bytes go in, messages come out.
"""
