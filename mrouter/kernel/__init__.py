"""The Linux kernel's IPv4 multicast forwarding cache (MRT_* socket options, upcalls).

Everything that talks to the kernel's multicast routing API lives in
:mod:`mrouter.kernel.mroute`: one place per C struct layout, one place per option.
"""
