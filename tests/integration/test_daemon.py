"""`mrouter run` on real labs: static and dynamic forwarding, control, signals, errors.

The daemon runs in r1 as a user would start it; the sender, sniffer and members are
helpers.py's, made inside the other nodes from this thread.
"""

from __future__ import annotations

import json
import signal
import socket
import sys
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from helpers import (
    BASIC,
    LAN,
    SOURCE,
    Daemon,
    entry,
    groups,
    member,
    received,
    send,
    sniffer,
    start,
    wait_for,
)

from mrouter.kernel.mroute import read_mfc_table, read_vif_table

pytestmark = pytest.mark.netns

# The configs, the daemon starter and the traffic helpers live in helpers.py.


@pytest.fixture
def basic(lab_factory: Callable[[str], Any], tmp_path: Path) -> Iterator[tuple[Any, Daemon]]:
    lab = lab_factory("basic.toml")
    yield lab, start(lab, tmp_path, BASIC)


@pytest.fixture
def lan(lab_factory: Callable[[str], Any], tmp_path: Path) -> Iterator[tuple[Any, Daemon]]:
    lab = lab_factory("lan.toml")
    yield lab, start(lab, tmp_path, LAN)


# --- static routes ------------------------------------------------------------------------

def test_static_sg_route_forwards_without_any_member(basic: tuple[Any, Daemon]) -> None:
    lab, daemon = basic
    with sniffer(lab, "receiver") as seen:
        sent = send(lab, "239.1.1.1", "sg")
        assert seen("239.1.1.1") == sent
    e = entry(daemon, "239.1.1.1")
    assert (e["source"], e["iif"], e["oifs"], e["static"]) == (SOURCE, "up0", ["dn0"], True)
    assert e["packets"] == 5 and e["bytes"] > 0 and e["wrong_if"] == 0


def test_star_g_prefix_route_forwards_any_source(basic: tuple[Any, Daemon]) -> None:
    lab, daemon = basic
    with sniffer(lab, "receiver") as seen:
        send(lab, "239.3.7.7", "warm-up", count=1)  # NOCACHE upcall installs (S,G)
        time.sleep(0.3)
        sent = send(lab, "239.3.7.7", "star-g")
        assert seen("239.3.7.7")[-5:] == sent
        send(lab, "239.4.0.1", "no route")
        assert seen("239.4.0.1", 0.5) == []
    assert entry(daemon, "239.3.7.7")["oifs"] == ["dn0"]
    assert entry(daemon, "239.4.0.1")["oifs"] == []  # negative entry: no more upcalls


def test_static_membership_and_route_commands(basic: tuple[Any, Daemon]) -> None:
    lab, daemon = basic
    out = daemon.cli("join", "--iface", "dn0", "239.5.5.5")
    assert out.returncode == 0, out.stderr
    out = daemon.cli("show", "groups")
    assert out.stdout.splitlines()[0].split() == [
        "IFACE", "GROUP", "MODE", "SOURCES", "FROM", "TIMER", "COMPAT", "QUERIER", "HOSTS"]
    # a static membership has no IGMP state: no timer, no compatibility mode, no hosts;
    # r1 is the querier of dn0 (the receiver does not query)
    assert out.stdout.splitlines()[1].split() == [
        "dn0", "239.5.5.5", "EXCLUDE", "-", "static", "-", "-", "self", "-"]
    (row,) = daemon("show", what="groups")
    assert (row["querier"], row["is_querier"]) == ("192.0.2.1", True)
    with sniffer(lab, "receiver") as seen:
        send(lab, "239.5.5.5", "warm-up", count=1)
        time.sleep(0.3)
        sent = send(lab, "239.5.5.5", "joined")
        assert seen("239.5.5.5")[-5:] == sent
        assert daemon.cli("leave", "--iface", "dn0", "239.5.5.5").returncode == 0
        send(lab, "239.5.5.5", "left")
        assert seen("239.5.5.5", 0.5) == []  # the installed entry changed at once
        out = daemon.cli("route", "add", "--source", SOURCE, "--group", "239.6.6.6",
                         "--from", "up0", "--to", "dn0")
        assert out.returncode == 0, out.stderr
        sent = send(lab, "239.6.6.6", "routed")
        assert seen("239.6.6.6") == sent  # installed before the first packet
        out = daemon.cli("route", "del", "--source", SOURCE, "--group", "239.6.6.6",
                         "--from", "up0")
        assert out.returncode == 0, out.stderr
        send(lab, "239.6.6.6", "deleted")
        assert seen("239.6.6.6", 0.5) == []  # the kernel entry lost dn0 at once
        assert entry(daemon, "239.6.6.6")["oifs"] == []
    out = daemon.cli("route", "add", "--group", "239.6.6.6", "--from", "up9", "--to", "dn0")
    assert out.returncode == 2
    assert "from: 'up9' is not one of the configured interfaces" in out.stderr
    out = daemon.cli("route", "del", "--group", "239.6.6.6", "--from", "up0")
    assert out.returncode == 2 and "no such route" in out.stderr
    out = daemon.cli("show", "routes")
    assert out.returncode == 0
    assert "239.6.6.6" in out.stdout and "PACKETS" in out.stdout and "WRONG_IF" in out.stdout
    out = daemon.cli("show", "interfaces", "--json")
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [(r["name"], r["vif"], r["active"]) for r in rows] == [("up0", 0, True),
                                                                  ("dn0", 1, True)]
    assert rows[1]["packets_out"] >= 11


def test_malformed_control_requests_get_errors_and_daemon_keeps_running(
        basic: tuple[Any, Daemon]) -> None:
    _, daemon = basic
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(daemon.sock))
        sock.sendall(b"not json\n[1, 2]\n{\"command\": \"fly\"}\n")
        replies = b""
        while replies.count(b"\n") < 3:
            replies += sock.recv(65536)
    assert replies.count(b'"ok": false') == 3
    assert b"unknown command 'fly'" in replies
    assert daemon("ping")["pid"] == daemon.proc.pid
    assert oct(daemon.sock.stat().st_mode & 0o777) == "0o600"


def test_deleted_config_route_comes_back_on_reload(lab_factory: Callable[[str], Any],
                                                   tmp_path: Path) -> None:
    """`route del` changes the running router; the file still says the route is there.
    The route goes to dn1: `route del` names it by (S, G, from) alone."""
    lab = lab_factory("two-lans.toml")
    daemon = start(lab, tmp_path, BASIC.replace('to = ["dn0"]', 'to = ["dn1"]')
                   + "[interfaces.dn1]\n")
    out = daemon.cli("route", "del", "--source", SOURCE, "--group", "239.1.1.1",
                     "--from", "up0")
    assert out.returncode == 0, out.stderr
    assert {r["group"] for r in daemon("show", what="routes")["static"]} == {"239.3.0.0/16"}
    with sniffer(lab, "h3") as seen:
        send(lab, "239.1.1.1", "deleted")
        assert seen("239.1.1.1", 0.5) == []
        assert daemon("reload")["routes_added"] == 1
        sent = send(lab, "239.1.1.1", "reloaded")
        assert seen("239.1.1.1") == sent


def test_sighup_reloads_routes(basic: tuple[Any, Daemon]) -> None:
    _, daemon = basic
    daemon.config.write_text(BASIC.replace("239.1.1.1", "239.1.1.2"))
    daemon.proc.send_signal(signal.SIGHUP)
    wait_for(lambda: {r["group"] for r in daemon("show", what="routes")["static"]}
             == {"239.1.1.2/32", "239.3.0.0/16"})


# --- dynamic membership -------------------------------------------------------------------

def test_join_starts_traffic_and_last_leave_stops_it(lan: tuple[Any, Daemon]) -> None:
    lab, daemon = lan
    group = "239.1.1.1"
    with sniffer(lab, "h3") as seen:
        send(lab, group, "nobody", count=1)
        assert seen(group, 0.5) == []
        with member(lab, "h1", group) as h1:
            wait_for(lambda: ("dn0", group) in groups(daemon))
            (row,) = daemon("show", what="groups")
            assert row["igmp"]["hosts"][0]["host"] == "192.0.2.11"  # the engine's view
            with member(lab, "h2", group) as h2:
                time.sleep(0.2)
                sent = send(lab, group, "two")
                assert received(h1) == sent
                assert received(h2) == sent
            # h2 left, h1 is still there: traffic goes on
            time.sleep(1.0)
            sent = send(lab, group, "one")
            assert received(h1) == sent
            seen(group, 0.1)
        # the last member left: after the last-member queries (2 x 0.2 s), forwarding stops
        left = time.monotonic()
        wait_for(lambda: ("dn0", group) not in groups(daemon))
        assert 0.3 < time.monotonic() - left < 1.0
        assert entry(daemon, group)["oifs"] == []
        send(lab, group, "none")
        assert seen(group, 0.5) == []


# --- lifecycle and errors -----------------------------------------------------------------

def test_sigterm_leaves_kernel_tables_empty(basic: tuple[Any, Daemon]) -> None:
    lab, daemon = basic
    r1 = lab.node("r1")
    with r1.enter():
        assert len(read_vif_table()) == 2 and len(read_mfc_table()) == 1
    daemon.proc.send_signal(signal.SIGTERM)
    assert daemon.proc.wait(timeout=10) == 0
    with r1.enter():
        assert read_vif_table() == [] and read_mfc_table() == []
    assert not daemon.sock.exists()


def test_stop_command_stops_the_daemon(basic: tuple[Any, Daemon]) -> None:
    _, daemon = basic
    out = daemon.cli("stop")
    assert out.returncode == 0, out.stderr
    assert daemon.proc.wait(timeout=10) == 0


def test_second_daemon_fails_with_clear_message(basic: tuple[Any, Daemon],
                                                tmp_path: Path) -> None:
    lab, daemon = basic
    out = lab.node("r1").run([sys.executable, "-m", "mrouter", "run", "--config",
                              str(daemon.config), "--socket",
                              str(tmp_path / "other.sock")])
    assert out.returncode == 2
    assert "already owned by another process" in out.stderr
    assert "smcroute, pimd, igmpproxy or another mrouter" in out.stderr
    assert out.stderr.count("\n") == 1  # one line, no traceback


@pytest.mark.parametrize(("config", "expected"), [
    (LAN.replace("igmp_version = 3", "igmp_version = 5"), "interfaces.dn0.igmp_version"),
    (LAN.replace("[interfaces.dn0]", "[interfaces.dn9]"),
     "interfaces.dn9: no such interface in this network namespace"),
    (LAN.replace("[interfaces.dn0]", "[interfaces.dn9]"),
     "or mark it optional = true to start without it"),
])
def test_config_errors_name_the_key_and_start_nothing(
        lab_factory: Callable[[str], Any], tmp_path: Path, config: str, expected: str) -> None:
    lab = lab_factory("basic.toml")
    path = tmp_path / "bad.toml"
    path.write_text(config)
    r1 = lab.node("r1")
    out = r1.run([sys.executable, "-m", "mrouter", "run", "--config", str(path), "--socket",
                  str(tmp_path / "ctl.sock")])
    assert out.returncode == 2
    assert f"{path}:" in out.stderr and expected in out.stderr
    with r1.enter():
        assert read_vif_table() == []
    assert not (tmp_path / "ctl.sock").exists()


def test_interface_losing_and_regaining_its_address(basic: tuple[Any, Daemon]) -> None:
    lab, daemon = basic
    r1 = lab.node("r1")
    r1.run(["ip", "addr", "flush", "dev", "dn0"], check=True)
    wait_for(lambda: [i["name"] for i in daemon("show", what="interfaces")
                      if i["active"]] == ["up0"])
    with r1.enter():
        assert [v.name for v in read_vif_table()] == ["up0"]
    assert entry(daemon, "239.1.1.1")["oifs"] == []
    r1.run(["ip", "addr", "add", "192.0.2.1/24", "dev", "dn0"], check=True)
    wait_for(lambda: entry(daemon, "239.1.1.1")["oifs"] == ["dn0"])
    with sniffer(lab, "receiver") as seen:
        sent = send(lab, "239.1.1.1", "back")
        assert seen("239.1.1.1") == sent


def test_wrong_interface_is_counted_and_logged_never_acted_on(
        basic: tuple[Any, Daemon]) -> None:
    lab, daemon = basic
    group = IPv4Address("239.1.1.1")
    # S's packets for G, but arriving on dn0
    send(lab, str(group), "spoof", 3, node="receiver", source=SOURCE, spoof=True, gap=0)
    wait_for(lambda: entry(daemon, str(group))["wrong_if"] == 3)
    e = entry(daemon, str(group))
    assert (e["iif"], e["oifs"]) == ("up0", ["dn0"])  # the route did not change
    dn0 = [i for i in daemon("show", what="interfaces") if i["name"] == "dn0"]
    assert dn0[0]["packets_out"] == 0  # and nothing was sent back out of dn0
    wait_for(lambda: "arrived on the wrong interface dn0" in daemon.log.read_text())


def test_reload_command_applies_routes_and_refuses_interface_changes(
        basic: tuple[Any, Daemon], tmp_path: Path) -> None:
    _, daemon = basic
    config = daemon.config
    config.write_text(BASIC + '[[memberships]]\niface = "dn0"\ngroup = "239.9.9.9"\n')
    out = daemon.cli("reload")
    assert out.returncode == 0, out.stderr
    assert "memberships added 1" in out.stdout
    assert ("dn0", "239.9.9.9") in groups(daemon)
    config.write_text(BASIC.replace("[interfaces.dn0]", "[interfaces.dn0]\nttl_threshold = 4"))
    out = daemon.cli("reload")
    assert out.returncode == 2
    assert "need a restart" in out.stderr and "nothing was changed" in out.stderr
    assert ("dn0", "239.9.9.9") in groups(daemon)  # still running the previous config
