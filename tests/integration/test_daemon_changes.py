"""The daemon while things change under it: an interface deleted and re-created, and a
reload that adds a route while another flow keeps going."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from helpers import BASIC, member, received, send, start, wait_for

from mrouter.kernel.mroute import read_vif_table

pytestmark = pytest.mark.netns

MROUTER = [sys.executable, "-m", "mrouter"]


def make_dn0(lab: Any) -> None:
    """basic.toml's r1 dn0 -- receiver eth0 link, made (again) by hand: a new ifindex."""
    r1, receiver = lab.node("r1"), lab.node("receiver")
    r1.run(["ip", "link", "add", "dn0", "type", "veth", "peer", "name", "eth0", "netns",
            receiver.netns], check=True)
    r1.run(["ip", "addr", "add", "192.0.2.1/24", "dev", "dn0"], check=True)
    r1.run(["ip", "link", "set", "dn0", "up"], check=True)
    receiver.run(["ip", "addr", "add", "192.0.2.2/24", "dev", "eth0"], check=True)
    receiver.run(["ip", "link", "set", "eth0", "up"], check=True)


def test_interface_deleted_and_recreated_while_running(
        lab_factory: Callable[[str], Any], tmp_path: Path) -> None:
    lab = lab_factory("basic.toml")
    daemon = start(lab, tmp_path, BASIC)
    r1 = lab.node("r1")
    old_index = r1.ifindex("dn0")

    r1.run(["ip", "link", "del", "dn0"], check=True)  # its veth peer in receiver goes too
    wait_for(lambda: not next(i for i in daemon("show", what="interfaces")
                              if i["name"] == "dn0")["active"])
    assert daemon.proc.poll() is None  # still running
    assert daemon("show", what="routes")["entries"] == [] or all(
        "dn0" not in e["oifs"] for e in daemon("show", what="routes")["entries"])

    # a new dn0 (new ifindex), its peer back in the receiver's namespace as eth0
    make_dn0(lab)
    assert r1.ifindex("dn0") != old_index
    wait_for(lambda: next(i for i in daemon("show", what="interfaces")
                          if i["name"] == "dn0")["active"], timeout=10)
    row = next(i for i in daemon("show", what="interfaces") if i["name"] == "dn0")
    assert row["ifindex"] == r1.ifindex("dn0")

    # the static (S,G) route forwards again on the new link
    with member(lab, "receiver", "239.1.1.1") as sock:
        send(lab, "239.1.1.1", "warm-up", count=1)
        time.sleep(0.3)
        received(sock, 0.3)
        sent = send(lab, "239.1.1.1", "back")
        assert received(sock) == sent


def test_reload_adds_a_route_while_another_flow_keeps_going(
        lab_factory: Callable[[str], Any], tmp_path: Path) -> None:
    lab = lab_factory("basic.toml")
    daemon = start(lab, tmp_path, BASIC)
    recv = lab.node("receiver").spawn(
        [*MROUTER, "recv", "239.1.1.1:5000", "239.2.2.2:5000", "--timeout", "5", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    flow_a = lab.node("sender").spawn(
        [*MROUTER, "send", "239.1.1.1:5000", "--ttl", "8", "--rate", "200", "--count", "600"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(1.0)
    # add route B and reload
    daemon.config.write_text(BASIC + '[[routes]]\nsource = "198.51.100.2"\n'
                             'group = "239.2.2.2"\nfrom = "up0"\nto = ["dn0"]\n')
    out = daemon.cli("reload")
    assert out.returncode == 0, out.stderr
    flow_b = lab.node("sender").spawn(
        [*MROUTER, "send", "239.2.2.2:5000", "--ttl", "8", "--rate", "100", "--count", "150"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert flow_a.wait(timeout=15) == 0 and flow_b.wait(timeout=15) == 0
    out_text, err = recv.communicate(timeout=15)
    assert out_text, err
    summary = {r["group"]: r for r in map(json.loads, out_text.splitlines())}
    a, b = summary["239.1.1.1"], summary["239.2.2.2"]
    # flow A: the first datagram may wait for the route (the kernel queues a few while the
    # (S,G) is unresolved); after that, nothing lost across the reload
    assert a["received"] >= 599 and a["lost"] == 0 and a["reordered"] == 0, a
    assert b["received"] >= 149, b  # the new route forwards


def test_idle_learnt_routes_expire_and_busy_ones_stay(
        lab_factory: Callable[[str], Any], tmp_path: Path) -> None:
    lab = lab_factory("basic.toml")
    config = "expire_after = 1.5\npoll_interval = 0.25\n" + BASIC
    start(lab, tmp_path, config)

    def cached() -> set[str]:
        text = lab.node("r1").run(["cat", "/proc/net/ip_mr_cache"]).stdout
        return {str(IPv4Address(bytes.fromhex(line.split()[0])[::-1]))
                for line in text.splitlines()[1:]}

    send(lab, "239.3.1.1", "once", count=3)  # learnt through the (*,G) prefix route
    busy = lab.node("sender").spawn(
        [*MROUTER, "send", "239.3.2.2:5000", "--ttl", "8", "--rate", "20", "--count", "80"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(lambda: {"239.3.1.1", "239.3.2.2"} <= cached())
    wait_for(lambda: "239.3.1.1" not in cached(), timeout=4.0)  # idle for expire_after
    assert "239.3.2.2" in cached()  # still carrying packets: kept
    busy.terminate()
    busy.wait(timeout=5)


OPTIONAL = """\
mode = "router"
[interfaces.up0]
[interfaces.dn0]
optional = true
[[routes]]
source = "198.51.100.2"
group = "239.1.1.1"
from = "up0"
to = ["dn0"]
"""


def test_an_optional_interface_starts_when_it_appears(
        lab_factory: Callable[[str], Any], tmp_path: Path) -> None:
    """`optional = true`: the daemon starts without the interface and sets it up (VIF,
    IGMP, its routes) when it is created later, as a tunnel or a late NIC would be."""
    lab = lab_factory("basic.toml")
    r1 = lab.node("r1")
    r1.run(["ip", "link", "del", "dn0"], check=True)  # its veth peer in receiver goes too
    daemon = start(lab, tmp_path, OPTIONAL)
    row = next(i for i in daemon("show", what="interfaces") if i["name"] == "dn0")
    assert row["active"] is False
    with r1.enter():
        assert [v.name for v in read_vif_table()] == ["up0"]

    make_dn0(lab)
    wait_for(lambda: next(i for i in daemon("show", what="interfaces")
                          if i["name"] == "dn0")["active"], timeout=10)
    row = next(i for i in daemon("show", what="interfaces") if i["name"] == "dn0")
    assert row["ifindex"] == r1.ifindex("dn0") and row["is_querier"] is True
    with r1.enter():
        assert sorted(v.name for v in read_vif_table()) == ["dn0", "up0"]
    with member(lab, "receiver", "239.1.1.1") as sock:  # the static route now forwards
        send(lab, "239.1.1.1", "warm-up", count=1)
        time.sleep(0.3)
        received(sock, 0.3)
        sent = send(lab, "239.1.1.1", "appeared")
        assert received(sock) == sent

