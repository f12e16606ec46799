"""Background multicast traffic for lab experiments, tests and scenarios.

``with multicast_flow(lab.node("sender"), group, ttl=8):`` sends a small datagram to the
group every ``interval`` seconds from a socket made in the node's namespace, until the
block ends (the thread is joined and the socket closed, also on an exception).
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address

from mrouter.lab.lab import Node


@contextmanager
def multicast_flow(node: Node, group: IPv4Address, *, port: int = 5000, ttl: int = 8,
                   interval: float = 0.02, source: IPv4Address | None = None,
                   payload: bytes = b"mrouter lab flow") -> Iterator[None]:
    """Send ``payload`` to ``group:port`` every ``interval`` s with this TTL (and from
    ``source``, one of the node's addresses, when given) while the block runs."""
    with node.enter():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    stop = threading.Event()
    try:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, ttl)
        if source is not None:
            sock.bind((str(source), 0))

        def loop() -> None:
            while not stop.wait(interval):
                sock.sendto(payload, (str(group), port))

        thread = threading.Thread(target=loop, name=f"flow {group}", daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
    finally:
        sock.close()
