"""`mrouter explain` for a daemon with `table = 100` (issue 16.7).

/proc/net/ip_mr_vif and ip_mr_cache show only the default table, so explain used to see
no VIFs and no route there and said multicast routing was missing while `ip mroute show
table 100` showed the route resolved. It now reads every table over rtnetlink
(RTNL_FAMILY_IPMR) and explains the one with VIFs, or the one given with --table.
Lab basic.toml: sender 198.51.100.2 -- r1 up0 | r1 dn0 -- receiver.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from helpers import start

from mrouter.kernel.mroute import MrouteSocket
from mrouter.lab.traffic import multicast_flow

pytestmark = pytest.mark.netns

S, G = IPv4Address("198.51.100.2"), IPv4Address("239.1.1.1")
TABLE_100 = f"""\
mode = "router"
table = 100
[interfaces.up0]
[interfaces.dn0]
[[routes]]
source = "{S}"
group = "{G}"
from = "up0"
to = ["dn0"]
"""


@pytest.fixture
def lab(lab_factory: Callable[[str], Any]) -> Any:
    return lab_factory("basic.toml")


def explain(node: Any, *args: str) -> tuple[dict[str, dict[str, Any]], str]:
    """The verdicts of `explain --json` by interface, and the human output."""
    argv = [sys.executable, "-m", "mrouter", "explain", str(G), "--source", str(S), *args]
    out = node.run([*argv, "--json"], timeout=30)
    assert out.returncode in (0, 1) and "Traceback" not in out.stderr, out.stderr
    human = node.run(argv, timeout=30)
    return {v["iface"]: v for v in map(json.loads, out.stdout.splitlines())}, human.stdout


def test_a_daemon_on_table_100_is_explained_from_its_table(lab: Any, tmp_path: Path) -> None:
    daemon = start(lab, tmp_path, TABLE_100)
    r1 = lab.node("r1")
    try:
        with multicast_flow(lab.node("sender"), G, ttl=8):
            shown = r1.run(["ip", "mroute", "show", "table", "100"]).stdout
            assert f"({S},{G})" in shown and "Oifs: dn0" in shown
            # the daemon's own view (members come from it) and the kernel's table 100
            verdicts, human = explain(r1, "--socket", str(daemon.sock))
            assert verdicts["dn0"]["forwarded"] is True, verdicts["dn0"]
            assert verdicts["dn0"]["reason"] == "forwarded"
            assert "(table 100)" in human
            # without the daemon: the kernel's state alone still names the route
            alone, _ = explain(r1, "--socket", str(tmp_path / "no-daemon.sock"))
            assert alone["dn0"]["reason"] == "forwarded", alone["dn0"]
    finally:
        daemon.proc.terminate()
        daemon.proc.wait(timeout=10)


def test_table_flag_picks_one_of_several(lab: Any, tmp_path: Path) -> None:
    """Two tables in r1: 100 routes to dn0, the default one has only up0 as a VIF."""
    r1 = lab.node("r1")
    with r1.enter():
        t100 = MrouteSocket(table=100)
        default = MrouteSocket()
    try:
        t100.add_vif(0, r1.ifindex("up0"))
        t100.add_vif(1, r1.ifindex("dn0"))
        t100.add_mfc(S, G, 0, {1: 1})
        default.add_vif(0, r1.ifindex("up0"))
        sock = str(tmp_path / "no-daemon.sock")
        in_100, human = explain(r1, "--socket", sock, "--table", "100")
        # its VIFs and route are seen; no `ip mrule` sends up0's packets to table 100
        assert in_100["dn0"]["reason"] == "no_table_rule", in_100["dn0"]
        assert in_100["dn0"]["fix"] == "ip mrule add iif up0 lookup 100"
        assert "(table 100)" in human
        in_default, human = explain(r1, "--socket", sock)
        assert in_default["dn0"]["reason"] == "no_vif"  # dn0 is no VIF of the default table
        assert "tables 100, 253 have VIFs" in human and "--table N" in human
    finally:
        t100.close()
        default.close()
