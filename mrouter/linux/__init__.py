"""Linux plumbing shared by the shells, one home for each kind:

- :mod:`~mrouter.linux.constants`: kernel constants, struct layouts, IPv4 header offsets;
- :mod:`~mrouter.linux.bpf`: the classic-BPF socket filters, every program built there;
- :mod:`~mrouter.linux.netlink`: rtnetlink reading (links, IPv4 addresses, route lookups);
- :mod:`~mrouter.linux.sysctl`: reading and setting /proc/sys, with clear errors.

Nothing here speaks a protocol; it is what the I/O shells need from the kernel."""
