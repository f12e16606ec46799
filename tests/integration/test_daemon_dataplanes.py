"""The same forwarding tests through `mrouter run`, once per data plane.

``--dataplane kernel`` installs (S,G) entries in the kernel's multicast cache, which
forwards; ``--dataplane user`` keeps the kernel entries without outbound interfaces and
forwards itself with packet sockets. A user must not be able to tell them apart by what
arrives: the same datagrams, once each, with the same TTL, only where members or routes
are, never back out of the inbound interface.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import BASIC, LAN, Daemon, member, received, send, sniffer, wait_for
from helpers import start as start_daemon

pytestmark = pytest.mark.netns

PLANES = ["kernel", "user"]

# test_daemon's configs, dn0 with a TTL threshold of 4 for the static ones
STATIC = BASIC.replace("[interfaces.dn0]\n", "[interfaces.dn0]\nttl_threshold = 4\n")
DYNAMIC = LAN


def start(lab: Any, tmp_path: Path, config: str, plane: str) -> Daemon:
    return start_daemon(lab, tmp_path, config, "--dataplane", plane)


def ttl_seen(lab: Any, group: str) -> int:
    """The TTL of one datagram to ``group`` as the receiver's eth0 sees it."""
    with sniffer(lab, "receiver") as seen:
        send(lab, group, "ttl", count=1)
        return seen.packets(group, 2.0)[0].header.ttl


@pytest.mark.parametrize("plane", PLANES)
def test_static_routes_threshold_and_ttl(lab_factory: Callable[[str], Any], tmp_path: Path,
                                         plane: str) -> None:
    lab = lab_factory("basic.toml")
    start(lab, tmp_path, STATIC, plane)
    with sniffer(lab, "receiver") as seen:
        send(lab, "239.1.1.1", "warm-up", count=1)  # the first packet may wait for the route
        time.sleep(0.3)
        seen("239.1.1.1", 0.3)
        sent = send(lab, "239.1.1.1", "sg")
        assert seen("239.1.1.1") == sent  # every datagram, once, in order
        sent = send(lab, "239.3.4.5", "prefix")
        assert seen("239.3.4.5")[-5:] == sent
        # dn0's threshold is 4: a packet must arrive with TTL > 4 to go out
        assert seen("239.1.1.1", 0.2) == []
        send(lab, "239.1.1.1", "low", ttl=4)
        assert seen("239.1.1.1", 0.5) == []
        send(lab, "239.4.0.1", "no route")
        assert seen("239.4.0.1", 0.5) == []
    assert ttl_seen(lab, "239.1.1.1") == 7  # one hop: the router decrements the TTL
    # who forwarded: with the user plane the kernel's entry has no outbound interface
    cache = lab.node("r1").run(["cat", "/proc/net/ip_mr_cache"]).stdout.splitlines()[1:]
    (line,) = [c for c in cache if c.startswith("0101")]  # 239.1.1.1, little-endian hex
    oifs = line.split()[6:]
    assert oifs == ([] if plane == "user" else ["1:4"])


@pytest.mark.parametrize("plane", PLANES)
def test_membership_starts_and_stops_forwarding(lab_factory: Callable[[str], Any],
                                                tmp_path: Path, plane: str) -> None:
    lab = lab_factory("lan.toml")
    daemon = start(lab, tmp_path, DYNAMIC, plane)
    group = "239.1.1.1"
    with sniffer(lab, "h3") as seen:
        send(lab, group, "nobody", count=1)
        assert seen(group, 0.5) == []
        with member(lab, "h1", group) as h1:
            wait_for(lambda: any(g["group"] == group
                                 for g in daemon("show", what="groups")))
            time.sleep(0.2)
            sent = send(lab, group, "member")
            assert received(h1) == sent
            assert seen(group)[-5:] == sent  # once on the LAN: never duplicated
        wait_for(lambda: not daemon("show", what="groups"))
        send(lab, group, "gone")
        assert seen(group, 0.5) == []


@pytest.mark.parametrize("plane", PLANES)
def test_stop_leaves_kernel_tables_empty(lab_factory: Callable[[str], Any], tmp_path: Path,
                                         plane: str) -> None:
    lab = lab_factory("basic.toml")
    daemon = start(lab, tmp_path, STATIC, plane)
    send(lab, "239.1.1.1", "x", count=2)
    assert daemon.cli("stop").returncode == 0
    daemon.proc.wait(timeout=10)
    out = lab.node("r1").run(["cat", "/proc/net/ip_mr_vif", "/proc/net/ip_mr_cache"])
    assert len(out.stdout.splitlines()) == 2  # the two header lines only


def test_user_plane_decisions_become_events(lab_factory: Callable[[str], Any],
                                            tmp_path: Path) -> None:
    """`--log-decisions`: one forward_decision event per packet, from `mrouter events`."""
    lab = lab_factory("basic.toml")
    daemon = start_daemon(lab, tmp_path, STATIC, "--dataplane", "user", "--log-decisions")
    send(lab, "239.1.1.1", "warm-up", count=1)  # the first packet may wait for the route
    time.sleep(0.3)
    send(lab, "239.1.1.1", "through", count=3)
    send(lab, "239.1.1.1", "low", ttl=4, count=2)  # dn0's threshold is 4
    send(lab, "239.1.1.1", "expiring", ttl=1, count=1)
    time.sleep(0.3)
    shown = daemon.cli("events", "--json")
    assert shown.returncode == 0, shown.stderr
    decisions = [(e["iface"], e["ttl"], e["oifs"],
                  e["held_back"], e["reason"])
                 for e in map(json.loads, shown.stdout.splitlines())
                 if e["kind"] == "forward_decision"]
    assert decisions[-6:] == [("up0", 8, ["dn0"], [], None)] * 3 + [
        ("up0", 4, [], ["dn0"], "below-threshold")] * 2 + [("up0", 1, [], [], "ttl-expired")]


def test_decisions_need_the_user_plane(lab_factory: Callable[[str], Any],
                                       tmp_path: Path) -> None:
    lab = lab_factory("basic.toml")
    config = tmp_path / "r.toml"
    config.write_text(STATIC)
    ran = lab.node("r1").run([sys.executable, "-m", "mrouter", "run", "--config", str(config),
                              "--socket", str(tmp_path / "s"), "--log-decisions"])
    assert ran.returncode == 2
    assert "--log-decisions needs --dataplane user" in ran.stderr
    assert "ip_mr_vif" not in ran.stderr and not (tmp_path / "s").exists()
