"""A daemon with `table = 100` forwards: its multicast rules send the packets to its table.

The kernel looks every arriving multicast packet up in the table its multicast FIB rules
choose, the default table (253) unless a rule says otherwise, so a daemon on table 100
used to forward nothing: its route counted 0 packets. It now adds `iif IF lookup 100`
(priority 32700, proto 109) for each of its interfaces and deletes them when it stops.
Lab basic.toml: sender 198.51.100.2 -- r1 up0 | r1 dn0 -- receiver.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from helpers import BASIC, Daemon, entry, member, received, send, start, wait_for

from mrouter.lab.traffic import multicast_flow

pytestmark = pytest.mark.netns

S, G = "198.51.100.2", "239.1.1.1"
TABLE_100 = BASIC.replace('mode = "router"\n', 'mode = "router"\ntable = 100\n')


@pytest.fixture
def lab(lab_factory: Callable[[str], Any]) -> Any:
    return lab_factory("basic.toml")


def mrules(node: Any) -> list[str]:
    """`ip mrule show` in ``node``, one rule a line, without the kernel's default rule."""
    out = node.run(["ip", "mrule", "show"], check=True).stdout
    return [line.strip() for line in out.splitlines()
            if line.strip() and not line.startswith("32767:")]


def ours(iface: str) -> str:
    return f"32700:\tfrom all iif {iface} lookup 100 proto 109"


def stop(daemon: Daemon, how: signal.Signals = signal.SIGTERM) -> None:
    daemon.proc.send_signal(how)
    daemon.proc.wait(timeout=10)


def forwards(lab: Any, daemon: Daemon, tag: str) -> None:
    """The receiver, having joined G, gets S's datagrams, and the route counts them."""
    before = entry(daemon, G)["packets"]
    with member(lab, "receiver", G) as sock:
        sent = send(lab, G, tag)
        assert received(sock) == sent
    assert entry(daemon, G)["packets"] - before == len(sent)


def explain(node: Any, daemon: Daemon) -> dict[str, Any]:
    """The verdict of `explain G --source S --json` for dn0, the daemon's socket given."""
    out = node.run([sys.executable, "-m", "mrouter", "explain", G, "--source", S,
                    "--socket", str(daemon.sock), "--json"], timeout=30)
    assert out.returncode in (0, 1) and "Traceback" not in out.stderr, out.stderr
    verdicts = {v["iface"]: v for v in map(json.loads, out.stdout.splitlines())}
    return verdicts["dn0"]  # type: ignore[no-any-return]


def test_a_daemon_on_table_100_forwards_and_cleans_its_rules_up(
        lab: Any, tmp_path: Path) -> None:
    r1 = lab.node("r1")
    daemon = start(lab, tmp_path, TABLE_100)
    try:
        assert sorted(mrules(r1)) == sorted([ours("up0"), ours("dn0")])
        forwards(lab, daemon, "table-100")
        shown = r1.run(["ip", "mroute", "show", "table", "100"], check=True).stdout
        assert f"({S},{G})" in shown and "Oifs: dn0" in shown
        daemon.proc.send_signal(signal.SIGHUP)  # a reload keeps them, once each
        wait_for(lambda: "reloaded" in daemon.log.read_text())
        assert sorted(mrules(r1)) == sorted([ours("up0"), ours("dn0")])
    finally:
        stop(daemon)
    assert daemon.proc.returncode == 0
    assert mrules(r1) == []


def test_an_interface_going_away_takes_its_rule_with_it(lab: Any, tmp_path: Path) -> None:
    r1 = lab.node("r1")
    daemon = start(lab, tmp_path, TABLE_100)
    try:
        r1.run(["ip", "addr", "flush", "dev", "dn0"], check=True)
        wait_for(lambda: mrules(r1) == [ours("up0")])
        r1.run(["ip", "addr", "add", "192.0.2.1/24", "dev", "dn0"], check=True)
        wait_for(lambda: sorted(mrules(r1)) == sorted([ours("up0"), ours("dn0")]))
        wait_for(lambda: entry(daemon, G)["oifs"] == ["dn0"])
        forwards(lab, daemon, "back")
    finally:
        stop(daemon)
    assert mrules(r1) == []


def test_after_kill_9_a_restart_replaces_the_stale_rules(lab: Any, tmp_path: Path) -> None:
    r1 = lab.node("r1")
    r1.run(["ip", "mrule", "add", "iif", "up0", "lookup", "200", "priority", "100"],
           check=True)  # an administrator's rule: never touched
    admins = "100:\tfrom all iif up0 lookup 200"
    killed = start(lab, tmp_path, TABLE_100)
    stop(killed, signal.SIGKILL)
    assert sorted(mrules(r1)) == sorted([admins, ours("up0"), ours("dn0")])  # left behind
    daemon = start(lab, tmp_path, TABLE_100)
    try:
        assert sorted(mrules(r1)) == sorted([admins, ours("up0"), ours("dn0")])  # once each
        r1.run(["ip", "mrule", "del", "priority", "100"], check=True)
        forwards(lab, daemon, "restarted")
    finally:
        stop(daemon)
    assert mrules(r1) == []


def test_a_daemon_on_the_default_table_clears_stale_rules_too(
        lab: Any, tmp_path: Path) -> None:
    """A daemon killed on table 100 and restarted on the default table: the stale rules
    would send its traffic to table 100, where nobody routes."""
    r1 = lab.node("r1")
    stop(start(lab, tmp_path, TABLE_100), signal.SIGKILL)
    assert len(mrules(r1)) == 2
    daemon = start(lab, tmp_path, BASIC)
    try:
        assert mrules(r1) == []
        forwards(lab, daemon, "default")
    finally:
        stop(daemon)


def test_explain_says_forwarded_only_while_the_rule_sends_the_flow(
        lab: Any, tmp_path: Path) -> None:
    r1 = lab.node("r1")
    daemon = start(lab, tmp_path, TABLE_100)
    try:
        with multicast_flow(lab.node("sender"), IPv4Address(G), ttl=8):
            wait_for(lambda: entry(daemon, G)["packets"] > 0)
            verdict = explain(r1, daemon)
            assert verdict["reason"] == "forwarded" and verdict["forwarded"] is True, verdict

            r1.run(["ip", "mrule", "del", "priority", "32700", "iif", "up0"], check=True)
            time.sleep(0.3)  # packets already on their way
            counted = entry(daemon, G)["packets"]
            time.sleep(0.5)
            assert entry(daemon, G)["packets"] == counted  # the kernel counts nothing more
            verdict = explain(r1, daemon)
            assert verdict["reason"] == "no_table_rule" and not verdict["forwarded"], verdict
            assert verdict["fix"] == "ip mrule add iif up0 lookup 100"
            assert "looked up in table 253" in verdict["text"]
    finally:
        stop(daemon)
    assert daemon.proc.returncode == 0  # the rule deleted by hand is no error at stop
    assert mrules(r1) == []


def test_a_daemon_that_dropped_root_still_deletes_its_rules(lab: Any) -> None:
    """`--user nobody` keeps CAP_NET_ADMIN, which is what deleting a rule needs."""
    r1 = lab.node("r1")
    shared = Path(tempfile.mkdtemp(prefix="mrouter-mrule-"))  # nobody reads the config
    try:
        shared.chmod(0o755)
        daemon = start(lab, shared, TABLE_100, "--user", "nobody")
        try:
            assert sorted(mrules(r1)) == sorted([ours("up0"), ours("dn0")])
            forwards(lab, daemon, "nobody")
        finally:
            stop(daemon)
        assert daemon.proc.returncode == 0
        assert "cannot delete" not in daemon.log.read_text()
        assert mrules(r1) == []
    finally:
        shutil.rmtree(shared)
