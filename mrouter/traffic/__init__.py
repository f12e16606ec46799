"""Test traffic, pure: the numbered datagram format with its receive statistics
(:mod:`~mrouter.traffic.payload`) and pcap/pcapng files (:mod:`~mrouter.traffic.pcap`)."""
