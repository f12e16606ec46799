"""The I/O shells around sockets: the BSD/Linux multicast socket API with its errors
(:mod:`~mrouter.sockets.mcast` for IPv4, :mod:`~mrouter.sockets.mcast6` for IPv6, one
error family) and the raw IGMP socket the querier and the daemon read and
write (:mod:`~mrouter.sockets.igmp_socket`)."""
