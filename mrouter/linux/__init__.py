"""Linux plumbing shared by the shells: kernel constants and struct layouts
(:mod:`~mrouter.linux.constants`) and the classic-BPF socket filters (:mod:`~mrouter.linux.bpf`).
Nothing here speaks a protocol; it is what the I/O shells need from the kernel."""
