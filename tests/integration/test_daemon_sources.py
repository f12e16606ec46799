"""`mrouter run` (router mode) honours IGMPv3 source filters end to end on lan.toml.

The sender has two source addresses (198.51.100.2 and .3) and sends to one group from
each. h1 joins source-specifically, h2 joins in EXCLUDE mode blocking .2 and later leaves.
What the router puts on the LAN is read on h3 with helpers.py's sniffer (h3 joins
nothing, and the bridge floods), split by IP source; `show groups` and `show routes`
give the daemon's view. A host's own kernel filters sources too, so only the sniffer shows what
the router itself forwarded.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    IP_ADD_SOURCE_MEMBERSHIP,
    IP_BLOCK_SOURCE,
    LAN,
    PORT,
    Daemon,
    Sniffer,
    received,
    send,
    sniffer,
    start,
    wait_for,
)

pytestmark = pytest.mark.netns

S2, S3 = "198.51.100.2", "198.51.100.3"
GROUP = "239.7.3.3"


def send_from(lab: Any, source: str, tag: str, count: int = 5) -> list[bytes]:
    """``count`` datagrams to GROUP from the sender, with ``source`` as IP source."""
    return send(lab, GROUP, tag, count, source=source)


def by_source(lan: Sniffer, wait: float = 1.0) -> dict[str, list[bytes]]:
    """UDP payloads to GROUP that ``lan`` sees, by IP source."""
    out: dict[str, list[bytes]] = {}
    for packet in lan.packets(GROUP, wait):
        out.setdefault(str(packet.header.src), []).append(packet.payload)
    return out


def receiver(lab: Any, node: str) -> tuple[socket.socket, bytes]:
    """An unjoined socket on GROUP in ``node``, and the group + eth0 address of an mreq."""
    with lab.node(node).enter():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((GROUP, PORT))
    return sock, IPv4Address(GROUP).packed + lab.node(node).address("eth0").packed


def lan_state(daemon: Daemon) -> tuple[str, list[str]] | None:
    """The merged (filter mode, sources) of GROUP on dn0, None when there is no member."""
    rows = [g for g in daemon("show", what="groups")
            if (g["iface"], g["group"]) == ("dn0", GROUP)]
    return (rows[0]["filter_mode"], rows[0]["sources"]) if rows else None


def routes(daemon: Daemon) -> dict[str, list[str]]:
    """oifs of the (S, GROUP) entries by source."""
    return {e["source"]: e["oifs"] for e in daemon("show", what="routes")["entries"]
            if e["group"] == GROUP}


def test_source_filters_decide_what_reaches_the_lan(lab_factory: Callable[[str], Any],
                                                    tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    r1 = lab.node("r1")
    # with rp_filter on, r1 would drop .3's packets before multicast routing saw them
    assert r1.sysctl("net.ipv4.conf.all.rp_filter") == "0"
    assert r1.sysctl("net.ipv4.conf.up0.rp_filter") == "0"
    lab.node("sender").run(["ip", "addr", "add", f"{S3}/24", "dev", "eth0"], check=True)
    daemon = start(lab, tmp_path, LAN)
    h1, h1_mreq = receiver(lab, "h1")
    h2, h2_mreq = receiver(lab, "h2")
    with h1, h2, sniffer(lab, "h3") as lan:
        # 1. h1 wants only .2: INCLUDE {.2}; .3 is not forwarded onto the LAN at all
        h1.setsockopt(socket.IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP,
                      h1_mreq + IPv4Address(S2).packed)
        wait_for(lambda: lan_state(daemon) == ("INCLUDE", [S2]))
        send_from(lab, S2, "warm-up", count=1)  # the first packets install the (S,G)s
        send_from(lab, S3, "warm-up", count=1)
        wait_for(lambda: set(routes(daemon)) == {S2, S3})
        time.sleep(0.2)
        by_source(lan, 0.3)  # drain the warm-up
        received(h1, 0.3)
        from2, from3 = send_from(lab, S2, "one"), send_from(lab, S3, "one")
        assert received(h1) == from2
        assert by_source(lan) == {S2: from2}
        assert routes(daemon) == {S2: ["dn0"], S3: []}

        # 2. h2 wants everything but .2: merged with h1, the LAN wants every source
        h2.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, h2_mreq)
        h2.setsockopt(socket.IPPROTO_IP, IP_BLOCK_SOURCE, h2_mreq + IPv4Address(S2).packed)
        wait_for(lambda: lan_state(daemon) == ("EXCLUDE", []))
        wait_for(lambda: routes(daemon) == {S2: ["dn0"], S3: ["dn0"]})
        from2, from3 = send_from(lab, S2, "two"), send_from(lab, S3, "two")
        assert by_source(lan) == {S2: from2, S3: from3}
        assert received(h1, 0.3) == from2  # h1's kernel still filters to .2
        assert received(h2, 0.3) == from3  # h2's kernel blocks .2

        # 3. h2 leaves: back to .2 only, after the last-member queries (0.2 s apart)
        left = time.monotonic()
        h2.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, h2_mreq)
        wait_for(lambda: lan_state(daemon) == ("INCLUDE", [S2]), timeout=5)
        assert time.monotonic() - left < 2.0
        assert routes(daemon) == {S2: ["dn0"], S3: []}
        from2, from3 = send_from(lab, S2, "three"), send_from(lab, S3, "three")
        assert by_source(lan) == {S2: from2}
        assert received(h1) == from2
    assert daemon.proc.poll() is None
