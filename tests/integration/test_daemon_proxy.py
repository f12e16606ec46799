"""Proxy mode (RFC 4605) on chain.toml: r2 proxies its LAN's memberships up to r1.

sender -- r1 (mrouter, router mode) -- r2 (mrouter, proxy: up0 upstream) -- lan0: h1, h2.
No static routes anywhere: h1's join reaches r2's IGMP engine, r2 joins the merged
membership on up0 (its kernel sends the report), r1 learns it on dn0 and forwards.
"""

from __future__ import annotations

import select
import socket
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from mrouter.errors import ControlError
from mrouter.router.control import request

pytestmark = pytest.mark.netns

ROUTER = """\
mode = "router"
[interfaces.up0]
[interfaces.dn0]
last_member_query_interval = 0.2
"""

PROXY = """\
mode = "proxy"
[interfaces.up0]
role = "upstream"
[interfaces.dn0]
last_member_query_interval = 0.2
"""

GROUP = "239.7.7.7"


def start(node: Any, tmp_path: Path, config: str) -> Path:
    path = tmp_path / f"{node.name}.toml"
    path.write_text(config)
    sock, log = tmp_path / f"{node.name}.sock", tmp_path / f"{node.name}.log"
    with log.open("w") as err:
        proc = node.spawn([sys.executable, "-m", "mrouter", "-v", "run", "--config", str(path),
                           "--socket", str(sock)], stderr=err)
    deadline = time.monotonic() + 15
    while True:
        try:
            request(sock, "ping")
            return sock
        except ControlError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{node.name} did not start:\n{log.read_text()}") from None
            time.sleep(0.05)


def wait_for(predicate: Callable[[], bool], timeout: float = 8.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def groups(sock: Path) -> set[tuple[str, str]]:
    return {(g["iface"], g["group"]) for g in request(sock, "show", what="groups")}


def test_proxy_joins_upstream_and_traffic_flows_then_stops(
        lab_factory: Callable[[str], Any], tmp_path: Path) -> None:
    lab = lab_factory("chain.toml")
    r1 = start(lab.node("r1"), tmp_path, ROUTER)
    r2 = start(lab.node("r2"), tmp_path, PROXY)
    with lab.node("h1").enter():
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with lab.node("sender").enter():
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 8)
    with rx, tx:
        rx.bind((GROUP, 5000))
        rx.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                      IPv4Address(GROUP).packed + IPv4Address("192.0.2.11").packed)
        wait_for(lambda: ("dn0", GROUP) in groups(r2))   # r2 learnt h1 downstream
        wait_for(lambda: ("dn0", GROUP) in groups(r1))   # r1 learnt r2's proxied join
        payloads = [b"proxied %d" % n for n in range(5)]
        tx.sendto(b"warm-up", (GROUP, 5000))
        time.sleep(0.3)
        for p in payloads:
            tx.sendto(p, (GROUP, 5000))
            time.sleep(0.01)
        got = []
        while select.select([rx], [], [], 1.0)[0]:
            got.append(rx.recv(2048))
        assert got[-5:] == payloads
    # h1 left: r2 leaves upstream, and r1 stops forwarding to r2
    wait_for(lambda: ("dn0", GROUP) not in groups(r2))
    wait_for(lambda: ("dn0", GROUP) not in groups(r1))
    (entry,) = [e for e in request(r1, "show", what="routes")["entries"]
                if e["group"] == GROUP]
    assert entry["oifs"] == []
