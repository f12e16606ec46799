"""Proxy mode (RFC 4605) on chain.toml: r2 proxies its LAN's memberships up to r1.

sender -- r1 (mrouter, router mode) -- r2 (mrouter, proxy: up0 upstream) -- lan0: h1, h2.
No static routes anywhere: h1's join reaches r2's IGMP engine, r2 joins the merged
membership on up0 (its kernel sends the report), r1 learns it on dn0 and forwards.

And on two-lans.toml, RFC 4605 §4.2: traffic from upstream or from another LAN reaches a
member LAN only while the proxy is that LAN's querier; from any LAN it goes upstream.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from helpers import entry, groups, member, received, send, sniffer, start
from helpers import wait_for as daemon_wait_for
from querier_lab import Querier

from mrouter.diag.events import read_events

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


# the chain takes a hop more than one router: a little longer than test_daemon's default
wait_for = functools.partial(daemon_wait_for, timeout=8.0)


@contextmanager
def h1_flow(lab: Any) -> Iterator[Callable[[str], bool]]:
    """h1 joins GROUP on chain.toml's LAN; yields ``flows(tag)``: does a warm-up and then
    five tagged datagrams from the sender reach h1, all and in order?"""
    with member(lab, "h1", GROUP) as rx:

        def flows(tag: str) -> bool:
            send(lab, GROUP, "warm-up", 1)  # the first packet may wait for the route
            time.sleep(0.3)
            received(rx, 0.1)
            sent = send(lab, GROUP, tag)
            return received(rx) == sent

        yield flows


def test_proxy_joins_upstream_and_traffic_flows_then_stops(
        lab_factory: Callable[[str], Any], tmp_path: Path) -> None:
    lab = lab_factory("chain.toml")
    r1 = start(lab, tmp_path, ROUTER, node="r1")
    events = tmp_path / "r2-events.jsonl"
    r2 = start(lab, tmp_path, PROXY, "--events", str(events), node="r2")
    with h1_flow(lab) as flows:
        wait_for(lambda: ("dn0", GROUP) in groups(r2))   # r2 learnt h1 downstream
        wait_for(lambda: ("dn0", GROUP) in groups(r1))   # r1 learnt r2's proxied join
        assert flows("proxied")
    # h1 left: r2 leaves upstream, and r1 stops forwarding to r2
    wait_for(lambda: ("dn0", GROUP) not in groups(r2))
    wait_for(lambda: ("dn0", GROUP) not in groups(r1))
    assert entry(r1, GROUP)["oifs"] == []
    # r2's event stream tells when it held the group upstream, and on which interface
    upstream = [(e.iface, e.fields["group"], e.fields["filter_mode"], e.fields["sources"])
                for e in read_events(events) if e.kind == "upstream_membership"]
    assert upstream == [("up0", GROUP, "EXCLUDE", []), ("up0", GROUP, "INCLUDE", [])]


def test_proxy_joins_again_when_its_upstream_link_is_recreated(
        lab_factory: Callable[[str], Any], tmp_path: Path) -> None:
    """The r1-r2 link is deleted and made again (a new ifindex on both ends, as after a
    PPP or tunnel reconnect): r2 forgets what it held upstream and joins it again."""
    lab = lab_factory("chain.toml")
    r1 = start(lab, tmp_path, ROUTER, node="r1")
    events = tmp_path / "r2-events.jsonl"
    r2 = start(lab, tmp_path, PROXY, "--events", str(events), node="r2")
    with h1_flow(lab) as flows:
        wait_for(lambda: ("dn0", GROUP) in groups(r1))
        assert flows("before")
        node_r1, node_r2 = lab.node("r1"), lab.node("r2")
        node_r2.run(["ip", "link", "del", "up0"], check=True)  # r1's dn0 goes with it
        wait_for(lambda: not next(i for i in r2("show", what="interfaces")
                                  if i["name"] == "up0")["active"])
        node_r2.run(["ip", "link", "add", "up0", "type", "veth", "peer", "name", "dn0",
                     "netns", node_r1.netns], check=True)
        node_r2.run(["ip", "addr", "add", "203.0.113.2/24", "dev", "up0"], check=True)
        node_r1.run(["ip", "addr", "add", "203.0.113.1/24", "dev", "dn0"], check=True)
        node_r1.run(["ip", "link", "set", "dn0", "up"], check=True)
        node_r2.run(["ip", "link", "set", "up0", "up"], check=True)
        # r2 joins again on the new link; r1 (querier there again) learns it
        wait_for(lambda: ("dn0", GROUP) in groups(r1), timeout=15.0)
        assert flows("after")
    upstream = [(e.fields["group"], e.fields["filter_mode"])
                for e in read_events(events) if e.kind == "upstream_membership"]
    assert upstream == [(GROUP, "EXCLUDE"), (GROUP, "INCLUDE"), (GROUP, "EXCLUDE")]


# --- RFC 4605 §4.2 on two-lans.toml: forwarding only where the proxy is querier ------------

TWO_LANS = """\
mode = "proxy"
[interfaces.up0]
role = "upstream"
[interfaces.dn0]
[interfaces.dn1]
query_response_interval = 1.0   # other querier present interval 2 x QI + 0.5 s
"""
FROM_LAN0, FROM_LAN1, FROM_UP = "239.7.8.1", "239.7.8.2", "239.7.8.3"


def test_a_lan_gets_traffic_only_while_the_proxy_is_its_querier(
        lab_factory: Callable[[str], Any], tmp_path: Path) -> None:
    lab = lab_factory("two-lans.toml")
    # Another querier with a lower address takes lan1: h4 (.12) against r1, moved to .100.
    r1 = lab.node("r1")
    r1.run(["ip", "addr", "del", "203.0.113.1/24", "dev", "dn1"], check=True)
    r1.run(["ip", "addr", "add", "203.0.113.100/24", "dev", "dn1"], check=True)
    other = Querier(lab.node("h4"), "eth0", "--query-interval", "2",
                    "--query-response-interval", "1")
    try:
        daemon = start(lab, tmp_path, TWO_LANS)

        def querier_of_dn1() -> bool:
            (dn1,) = [i for i in daemon("show", what="interfaces") if i["name"] == "dn1"]
            return bool(dn1["is_querier"])

        wait_for(lambda: not querier_of_dn1())
        with sniffer(lab, "sender") as upstream, member(lab, "h3", FROM_LAN0) as h3, \
                member(lab, "h1", FROM_LAN1) as h1, member(lab, "h1", FROM_UP) as h1_up, \
                member(lab, "h3", FROM_UP) as h3_up:
            wait_for(lambda: {("dn1", FROM_LAN0), ("dn0", FROM_LAN1), ("dn0", FROM_UP),
                              ("dn1", FROM_UP)} <= groups(daemon))
            # from upstream: to lan0 (r1 is querier there), not to lan1 (h4 is)
            send(lab, FROM_UP, "warm-up", count=1)
            time.sleep(0.2)
            received(h1_up, 0.2)
            sent = send(lab, FROM_UP, "down")
            assert received(h1_up) == sent
            assert received(h3_up, 0.5) == []
            # lan0 (r1 is querier): a source there goes upstream, but not to lan1
            sent = send(lab, FROM_LAN0, "lan0", node="h1")
            assert upstream(FROM_LAN0) == sent
            assert received(h3, 0.5) == []
            # lan1 (h4 is querier): a source there still goes upstream and to lan0,
            # where r1 is querier (the rule is about where packets go, not come from)
            send(lab, FROM_LAN1, "warm-up", count=1, node="h3")
            time.sleep(0.2)
            received(h1, 0.2)
            upstream(FROM_LAN1, 0.2)
            sent = send(lab, FROM_LAN1, "lan1", node="h3")
            assert upstream(FROM_LAN1) == sent
            assert received(h1) == sent
            # h4 goes quiet: r1 takes lan1 over, and then forwards to it too
            other.stop_output()
            wait_for(querier_of_dn1, timeout=15.0)
            sent = send(lab, FROM_LAN0, "lan0 again", node="h1")
            assert received(h3) == sent
            sent = send(lab, FROM_UP, "down again")
            assert received(h3_up) == sent and received(h1_up) == sent
    finally:
        other.stop_output()
