"""The dual-stack daemon (issue 14, scope 2) in netns/dual-stack.toml: IPv6 static and
learnt forwarding through the kernel's ip6mr, MLD on the LAN, IPv4 and IPv6 flows
through one process, an interface deleted and re-created, SIGTERM and a second daemon.

sender (2001:db8:1::2) -- up0 r1 dn0 -- LAN: h1, h2, h3; groups in ff15::/16."""

from __future__ import annotations

import json
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    Daemon,
    ipv6_addresses,
    member,
    member6,
    received,
    send,
    send6,
    start,
    wait_for,
)

from mrouter.kernel import mroute, mroute6
from mrouter.sockets.mcast6 import group_source_req

pytestmark = pytest.mark.netns

SOURCE6 = "2001:db8:1::2"

STATIC = """\
mode = "router"
families = ["ipv4", "ipv6"]
[interfaces.up0]
[interfaces.dn0]
igmp_version = 3
mld_version = 2
[[routes]]
source = "2001:db8:1::2"
group = "ff15::1"
from = "up0"
to = ["dn0"]
[[routes]]
group = "ff15::300/120"
from = "up0"
to = ["dn0"]
"""

# short last-listener timers, so that a leave is seen within a second
DYNAMIC = """\
mode = "router"
families = ["ipv4", "ipv6"]
[interfaces.up0]
[interfaces.dn0]
igmp_version = 3
mld_version = 2
last_member_query_interval = 0.2
"""

#: MLD's last-listener time with DYNAMIC's settings: LLQC (robustness 2) x LLQI
LAST_LISTENER = 2 * 0.2


@pytest.fixture
def lab(lab_factory: Callable[[str], Any]) -> Any:
    return lab_factory("dual-stack.toml")


def groups6(daemon: Daemon) -> set[tuple[str, str]]:
    return {(g["iface"], g["group"]) for g in daemon("show", what="groups")
            if g["family"] == "ipv6"}


def flowing(lab: Any, sock: Any, group: str, tag: str) -> bool:
    """Whether datagrams sent now to ``group`` arrive on ``sock``."""
    sent = send6(lab, group, tag, count=3)
    return received(sock, 0.5) == sent


def test_static_sg_and_star_g_routes_forward_ipv6(lab: Any, tmp_path: Path) -> None:
    daemon = start(lab, tmp_path, STATIC)
    r1 = lab.node("r1")
    with r1.enter():
        assert [v.vif for v in mroute6.read_vif_table()] == [0, 1]
        (sg,) = mroute6.read_mfc_table()  # the (S,G) is installed before any packet
    assert (str(sg.source), str(sg.group), sg.iif_vif, set(sg.oifs)) == (
        SOURCE6, "ff15::1", 0, {1})
    with member6(lab, "h1", "ff15::1") as sock:
        received(sock, 0.3)
        sent = send6(lab, "ff15::1", "sg")
        assert received(sock) == sent
    with member6(lab, "h1", "ff15::305") as sock:  # (*,G) prefix route, resolved on NOCACHE
        send6(lab, "ff15::305", "warm-up", count=1)
        time.sleep(0.3)
        received(sock, 0.3)
        sent = send6(lab, "ff15::305", "star")
        assert received(sock) == sent
    routes = daemon("show", what="routes")
    assert {(r["family"], r["source"], r["group"]) for r in routes["static"]} == {
        ("ipv6", SOURCE6, "ff15::1/128"), ("ipv6", None, "ff15::300/120")}
    entries = {(e["family"], e["group"]): e for e in routes["entries"]}
    assert entries[("ipv6", "ff15::1")]["packets"] >= 5
    assert entries[("ipv6", "ff15::305")]["oifs"] == ["dn0"]
    families = {(i["family"], i["name"]) for i in daemon("show", what="interfaces")}
    assert families == {(f, n) for f in ("ipv4", "ipv6") for n in ("up0", "dn0")}


class Sequenced:
    """A sender thread: datagrams ``TAG 0``, ``TAG 1``... to an IPv6 group every 10 ms
    until stopped."""

    def __init__(self, lab: Any, group: str, tag: str, count: int = 400) -> None:
        self.thread = threading.Thread(
            target=send6, args=(lab, group, tag), kwargs={"count": count}, daemon=True)

    def __enter__(self) -> Sequenced:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.thread.join(timeout=30)


def numbers(payloads: list[bytes]) -> list[int]:
    return [int(p.split()[1]) for p in payloads]


def oifs6(daemon: Daemon, group: str) -> list[str] | None:
    found = [e for e in daemon("show", what="routes")["entries"]
             if e["family"] == "ipv6" and e["group"] == group]
    return found[0]["oifs"] if found else None


def test_mld_listeners_join_leave_and_the_last_leave_stops_forwarding(
        lab: Any, tmp_path: Path) -> None:
    daemon = start(lab, tmp_path, DYNAMIC)
    group = "ff15::2"
    with member6(lab, "h1", group) as h1:
        wait_for(lambda: ("dn0", group) in groups6(daemon))
        send6(lab, group, "warm-up", count=1)  # the first packet makes the route
        time.sleep(0.3)
        received(h1, 0.3)
        sent = send6(lab, group, "joined")
        assert received(h1) == sent
        row = next(g for g in daemon("show", what="groups") if g["group"] == group)
        assert (row["family"], row["filter_mode"], row["mld"] is not None) == (
            "ipv6", "EXCLUDE", True)

        # h2 joins too, then leaves while a flow runs: h1 misses nothing
        with Sequenced(lab, group, "seq", count=150):
            with member6(lab, "h2", group):
                time.sleep(0.5)
            # h2's socket closed: its kernel sent the MLDv2 leave, the router queries
            time.sleep(1.0)
            got = numbers(received(h1, 1.0))
        assert got and got == list(range(got[0], got[0] + len(got)))
        assert len(got) > 100
        assert oifs6(daemon, group) == ["dn0"]  # h1 is still a listener
    left = time.monotonic()
    wait_for(lambda: oifs6(daemon, group) == [], timeout=5)
    # the last listener left: the group is gone within LLQC x LLQI (and a poll's margin)
    assert time.monotonic() - left <= LAST_LISTENER + 0.5
    assert ("dn0", group) not in groups6(daemon)
    with member6(lab, "h3", "ff15::9999"):  # h3 listens elsewhere: sees nothing of group
        pass
    dn0 = next(i for i in daemon("show", what="interfaces")
               if i["family"] == "ipv6" and i["name"] == "dn0")
    send6(lab, group, "after")
    time.sleep(0.3)
    again = next(i for i in daemon("show", what="interfaces")
                 if i["family"] == "ipv6" and i["name"] == "dn0")
    assert again["packets_out"] == dn0["packets_out"]  # nothing more left by dn0


def test_mldv2_source_filters_are_honoured(lab: Any, tmp_path: Path) -> None:
    """h1 asks for ff15::5 only from another source (INCLUDE {2001:db8:1::99}): the
    sender's traffic is not forwarded; asking for the sender's address, it is."""
    daemon = start(lab, tmp_path, DYNAMIC)
    group = "ff15::5"
    h1 = lab.node("h1")
    ifindex = h1.ifindex("eth0")
    with h1.enter():
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("::", 5000))
        join_source = 46  # MCAST_JOIN_SOURCE_GROUP (linux/in.h)
        sock.setsockopt(socket.IPPROTO_IPV6, join_source,
                        group_source_req(ifindex, IPv6Address(group),
                                         IPv6Address("2001:db8:1::99")))
        wait_for(lambda: ("dn0", group) in groups6(daemon))
        send6(lab, group, "warm-up", count=1)
        time.sleep(0.3)
        assert oifs6(daemon, group) == []  # INCLUDE of another source: not forwarded
        sock.setsockopt(socket.IPPROTO_IPV6, join_source,
                        group_source_req(ifindex, IPv6Address(group), IPv6Address(SOURCE6)))
        wait_for(lambda: oifs6(daemon, group) == ["dn0"])
        received(sock, 0.3)
        sent = send6(lab, group, "included")
        assert received(sock) == sent


def test_ipv4_and_ipv6_flows_through_one_daemon_each_stops_on_its_own_leave(
        lab: Any, tmp_path: Path) -> None:
    daemon = start(lab, tmp_path, DYNAMIC)
    group4, group6 = "239.1.2.3", "ff15::3"

    def oifs4() -> list[str] | None:
        found = [e for e in daemon("show", what="routes")["entries"]
                 if e["family"] == "ipv4" and e["group"] == group4]
        return found[0]["oifs"] if found else None

    with member6(lab, "h2", group6) as rx6:
        with member(lab, "h1", group4) as rx4:
            wait_for(lambda: {("dn0", group4), ("dn0", group6)} <= {
                (g["iface"], g["group"]) for g in daemon("show", what="groups")})
            send(lab, group4, "warm-up", count=1)
            send6(lab, group6, "warm-up", count=1)
            time.sleep(0.3)
            received(rx4, 0.2)
            received(rx6, 0.2)
            sent4, sent6 = send(lab, group4, "v4"), send6(lab, group6, "v6")
            assert received(rx4) == sent4
            assert received(rx6) == sent6
        # the IPv4 member left: IPv4 stops, IPv6 keeps flowing
        wait_for(lambda: oifs4() == [])
        assert oifs6(daemon, group6) == ["dn0"]
        assert flowing(lab, rx6, group6, "v6-still")
    wait_for(lambda: oifs6(daemon, group6) == [])
    fams = {g["family"] for g in daemon("show", what="groups")}
    assert fams <= {"ipv4", "ipv6"}
    assert ("dn0", group6) not in groups6(daemon)


def test_an_interface_deleted_and_recreated_comes_back_for_ipv6(
        lab: Any, tmp_path: Path) -> None:
    daemon = start(lab, tmp_path, STATIC)
    r1, sender = lab.node("r1"), lab.node("sender")

    def up0() -> dict[str, Any]:
        return next(i for i in daemon("show", what="interfaces")
                    if i["family"] == "ipv6" and i["name"] == "up0")

    old_index = r1.ifindex("up0")
    r1.run(["ip", "link", "del", "up0"], check=True)  # its veth peer in sender goes too
    wait_for(lambda: not up0()["active"])
    with r1.enter():
        assert [v.vif for v in mroute6.read_vif_table()] == [1]
        assert mroute6.read_mfc_table() == []  # its (S,G) went with its inbound MIF
    assert daemon.proc.poll() is None

    r1.run(["ip", "link", "add", "up0", "type", "veth", "peer", "name", "eth0", "netns",
            sender.netns], check=True)
    ipv6_addresses(lab, {("r1", "up0"): "2001:db8:1::1/64",
                         ("sender", "eth0"): "2001:db8:1::2/64"})
    r1.run(["ip", "addr", "add", "198.51.100.1/24", "dev", "up0"], check=True)
    sender.run(["ip", "addr", "add", "198.51.100.2/24", "dev", "eth0"], check=True)
    r1.run(["ip", "link", "set", "up0", "up"], check=True)
    sender.run(["ip", "link", "set", "eth0", "up"], check=True)
    assert r1.ifindex("up0") != old_index
    wait_for(lambda: up0()["active"] and up0()["is_querier"], timeout=10)
    assert up0()["ifindex"] == r1.ifindex("up0")
    assert str(up0()["address"]).startswith("fe80::")  # MLD runs there again
    with r1.enter():
        assert [v.vif for v in mroute6.read_vif_table()] == [0, 1]
    with member6(lab, "h1", "ff15::1") as sock:
        wait_for(lambda: oifs6(daemon, "ff15::1") == ["dn0"])
        received(sock, 0.3)
        sent = send6(lab, "ff15::1", "back")
        assert received(sock) == sent


def test_sigterm_leaves_both_kernel_tables_empty(lab: Any, tmp_path: Path) -> None:
    daemon = start(lab, tmp_path, STATIC.replace(
        '[[routes]]', '[[routes]]\nsource = "198.51.100.2"\ngroup = "239.1.1.1"\n'
        'from = "up0"\nto = ["dn0"]\n[[routes]]', 1))
    r1 = lab.node("r1")
    with r1.enter():
        assert len(mroute6.read_vif_table()) == 2 and len(mroute6.read_mfc_table()) == 1
        assert len(mroute.read_vif_table()) == 2 and len(mroute.read_mfc_table()) == 1
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=10) == 0
    with r1.enter():
        assert mroute6.read_vif_table() == [] and mroute6.read_mfc_table() == []
        assert mroute.read_vif_table() == [] and mroute.read_mfc_table() == []
        assert Path("/proc/thread-self/net/ip6_mr_cache").read_text().count("\n") == 1
        assert Path("/proc/thread-self/net/ip6_mr_vif").read_text().count("\n") == 1
    assert not daemon.sock.exists()


def test_a_second_daemon_is_refused_clearly(lab: Any, tmp_path: Path) -> None:
    daemon = start(lab, tmp_path, STATIC)
    ipv6_only = tmp_path / "ipv6.toml"
    ipv6_only.write_text(STATIC.replace('families = ["ipv4", "ipv6"]', 'families = ["ipv6"]'))
    for config in (daemon.config, ipv6_only):
        out = lab.node("r1").run([sys.executable, "-m", "mrouter", "run", "--config",
                                  str(config), "--socket", str(tmp_path / "other.sock")])
        assert out.returncode == 2, out.stderr
        assert "already owned by another process" in out.stderr
        assert out.stderr.count("\n") == 1  # one line, no traceback
    assert "MRT6" in out.stderr or "IPv6" in out.stderr, out.stderr
    assert daemon.proc.poll() is None


def test_route_add_del_join_leave_take_ipv6(lab: Any, tmp_path: Path) -> None:
    daemon = start(lab, tmp_path, DYNAMIC)
    out = daemon.cli("route", "add", "--source", SOURCE6, "--group", "ff15::7",
                     "--from", "up0", "--to", "dn0")
    assert out.returncode == 0, out.stderr
    with lab.node("r1").enter():
        assert [(str(e.source), str(e.group)) for e in mroute6.read_mfc_table()] == [
            (SOURCE6, "ff15::7")]
    with member6(lab, "h1", "ff15::7") as sock:
        received(sock, 0.3)
        sent = send6(lab, "ff15::7", "added")
        assert received(sock) == sent
    out = daemon.cli("route", "del", "--source", SOURCE6, "--group", "ff15::7",
                     "--from", "up0")
    assert out.returncode == 0, out.stderr
    out = daemon.cli("join", "ff15::8", "--iface", "dn0")
    assert out.returncode == 0, out.stderr
    assert ("dn0", "ff15::8") in groups6(daemon)
    out = daemon.cli("leave", "ff15::8", "--iface", "dn0")
    assert out.returncode == 0, out.stderr
    assert ("dn0", "ff15::8") not in groups6(daemon)
    out = daemon.cli("show", "routes", "--json")
    assert out.returncode == 0, out.stderr
    assert all(json.loads(line).get("family") in ("ipv4", "ipv6")
               for line in out.stdout.splitlines() if line.strip())


def test_reload_adds_and_removes_ipv6_routes_and_show_prints_both_families(
        lab: Any, tmp_path: Path) -> None:
    daemon = start(lab, tmp_path, DYNAMIC)
    daemon.config.write_text(DYNAMIC + '[[routes]]\nsource = "2001:db8:1::2"\n'
                             'group = "ff15::a"\nfrom = "up0"\nto = ["dn0"]\n')
    daemon.proc.send_signal(signal.SIGHUP)
    with lab.node("r1").enter():
        wait_for(lambda: [str(e.group) for e in mroute6.read_mfc_table()] == ["ff15::a"])
    with member6(lab, "h1", "ff15::a") as sock:
        received(sock, 0.3)
        sent = send6(lab, "ff15::a", "reloaded")
        assert received(sock) == sent
    daemon.config.write_text(DYNAMIC)
    daemon.proc.send_signal(signal.SIGHUP)
    # the route is gone; its (S,G) stays as a learnt entry, with nobody to send to
    wait_for(lambda: daemon("show", what="routes")["static"] == [])
    wait_for(lambda: oifs6(daemon, "ff15::a") == [])
    out = daemon.cli("show", "interfaces")
    assert out.returncode == 0, out.stderr
    assert "MLDv2" in out.stdout and "v3" in out.stdout
