"""Send IGMPv3 reports for random groups as fast as asked, from the namespace it runs in.

    python igmp_flood.py SRC RATE SECONDS

Each report carries one TO_EX({}) record for a random group in 239.128.0.0/9 (every
fifth one a TO_IN({}) leave). Prints the number sent. A test tool: lab namespaces only.
"""

from __future__ import annotations

import random
import socket
import sys
import time
from ipaddress import IPv4Address

from mrouter.igmp.codec import encode_packet
from mrouter.igmp.messages import ALL_IGMPV3_ROUTERS, GroupRecord, RecordType, V3Report


def main() -> None:
    src, rate, seconds = IPv4Address(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    rng = random.Random(7)
    packets = []
    for n in range(4096):
        group = IPv4Address((239 << 24) | (1 << 23) | rng.randrange(1 << 23))
        rtype = RecordType.CHANGE_TO_INCLUDE_MODE if n % 5 == 4 else \
            RecordType.CHANGE_TO_EXCLUDE_MODE
        packets.append(encode_packet(V3Report((GroupRecord(rtype, group),)), src,
                                     ALL_IGMPV3_ROUTERS))
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
    dst = (str(ALL_IGMPV3_ROUTERS), 0)
    sent, start, burst = 0, time.monotonic(), max(1, int(rate / 100))
    end = start + seconds
    while (now := time.monotonic()) < end:
        for _ in range(burst):
            sock.sendto(packets[sent % len(packets)], dst)  # blocks while the queue is full
            sent += 1
        ahead = start + sent / rate - now
        if ahead > 0:
            time.sleep(ahead)
    print(sent)


if __name__ == "__main__":
    main()
