"""Proxy mode (RFC 4605) for MLD on netns/dual-chain.toml: r2 proxies its LAN's
IPv6 (and IPv4) memberships up to r1.

sender -- r1 (mrouter, router mode) -- r2 (mrouter, proxy: up0 upstream) -- lan0: h1, h2.
No static routes: h1's MLD join reaches r2's engine, r2 joins the merged membership on
up0 (its kernel's MLD host side sends the report), r1 learns it on dn0 and forwards.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import Daemon, member, member6, received, send, send6, start
from helpers import wait_for as daemon_wait_for

from mrouter.sockets.mcast6 import memberships6

pytestmark = pytest.mark.netns

ROUTER = """\
mode = "router"
families = ["ipv4", "ipv6"]
[interfaces.up0]
[interfaces.dn0]
last_member_query_interval = 0.2
"""

PROXY = """\
mode = "proxy"
families = ["ipv4", "ipv6"]
[interfaces.up0]
role = "upstream"
[interfaces.dn0]
mld_version = 2
last_member_query_interval = 0.2
"""

GROUP6 = "ff15::77"
GROUP4 = "239.7.7.7"
# the chain takes a hop more than one router
wait_for = functools.partial(daemon_wait_for, timeout=8.0)


def r2_upstream_groups(lab: Any) -> set[str]:
    """The IPv6 groups r2's host side holds on up0 (the kernel's MLD table)."""
    with lab.node("r2").enter():
        table = memberships6()
    return {str(g.group) for ifm in table if ifm.name == "up0" for g in ifm.groups}


def listeners(daemon: Daemon, family: str) -> set[tuple[str, str]]:
    return {(g["iface"], g["group"]) for g in daemon("show", what="groups")
            if g["family"] == family}


def test_mld_proxy_joins_upstream_and_traffic_flows_then_stops(
        lab_factory: Callable[[str], Any], tmp_path: Path) -> None:
    lab = lab_factory("dual-chain.toml")
    r1 = start(lab, tmp_path, ROUTER, node="r1")
    r2 = start(lab, tmp_path, PROXY, node="r2")
    with member6(lab, "h1", GROUP6) as rx, member(lab, "h2", GROUP4) as rx4:
        wait_for(lambda: ("dn0", GROUP6) in listeners(r2, "ipv6"))
        wait_for(lambda: GROUP6 in r2_upstream_groups(lab))  # the proxy's host side
        wait_for(lambda: ("dn0", GROUP6) in listeners(r1, "ipv6"))  # r1 heard its report
        wait_for(lambda: ("dn0", GROUP4) in listeners(r1, "ipv4"))  # IPv4 beside it
        send6(lab, GROUP6, "warm-up", count=1)  # each router's first packet makes its route
        time.sleep(0.5)
        received(rx, 0.2)
        sent = send6(lab, GROUP6, "through")
        assert received(rx) == sent
        send(lab, GROUP4, "warm-up", count=1, ttl=8)
        time.sleep(0.5)
        received(rx4, 0.2)
        sent4 = send(lab, GROUP4, "v4", ttl=8)
        assert received(rx4) == sent4
    # the listener left: r2 leaves upstream, r1 forgets dn0's membership
    wait_for(lambda: GROUP6 not in r2_upstream_groups(lab))
    wait_for(lambda: ("dn0", GROUP6) not in listeners(r1, "ipv6"))
    with member6(lab, "h2", "ff15::78") as other:  # a listener of another group only
        received(other, 0.2)
        send6(lab, GROUP6, "after")
        assert received(other, 0.5) == []
