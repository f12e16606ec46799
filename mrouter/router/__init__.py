"""The multicast routing daemon: config, route table, event loop, control socket.

- :mod:`mrouter.router.config`: the TOML config file, checked before anything starts;
- :mod:`mrouter.router.routes`: static and membership-driven routes -> outbound set (pure);
- :mod:`mrouter.router.proxy`: RFC 4605 merge of downstream memberships (pure);
- :mod:`mrouter.router.daemon`: the event loop around the kernel, IGMP engine and control;
- :mod:`mrouter.router.control`: the JSON-lines control socket (server and client).
"""
