"""The I/O shells around sockets: the BSD/Linux multicast socket API with its errors
(:mod:`~mrouter.sockets.mcast` for IPv4, :mod:`~mrouter.sockets.mcast6` for IPv6, one
error family), the raw IGMP socket the querier and the daemon read and write
(:mod:`~mrouter.sockets.igmp_socket`) and its MLD twin, a raw ICMPv6 socket with an MLD
tap (:mod:`~mrouter.sockets.mld_socket`)."""
