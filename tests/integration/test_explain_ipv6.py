"""`mrouter explain` for IPv6 groups on real broken routers, each cause built in a lab.

Lab dual-stack.toml: sender eth0 2001:db8:1::2 -- r1 up0 | r1 dn0 -- lan0: h1, h2, h3.
The IPv6 table of r1 is held by a stand-in router (helpers.router6: a process with
an Mroute6Socket and the MIFs and routes each test chooses, which answers no upcall
and speaks no MLD), or by smcroute for the running-router case. explain runs as a
command in r1 (``python -m mrouter.cli.diag explain ff15::1 --json``) with a control
socket path where no daemon answers. Where the kernel's behaviour is the point (hop
limit, sysctls, MIF thresholds) a listener on h1 shows what really arrives.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

import pytest
from helpers import flow6, member6, received, router6

pytestmark = pytest.mark.netns

S = IPv6Address("2001:db8:1::2")
G = IPv6Address("ff15::1")
ROUTE = f"{S},{G},up0,dn0"
DIAG = [sys.executable, "-m", "mrouter.cli.diag"]


@pytest.fixture
def lab(lab_factory: Callable[[str], Any]) -> Any:
    return lab_factory("dual-stack.toml")


def explain(node: Any, tmp_path: Path, *args: str) -> dict[str, dict[str, Any]]:
    """Run `explain GROUP --json` in the node; the verdicts by interface."""
    out = node.run([*DIAG, "explain", str(G), "--json", "--socket",
                    str(tmp_path / "no-daemon.sock"), *args], timeout=30)
    assert out.returncode in (0, 1) and "Traceback" not in out.stderr, out.stderr
    return {v["iface"]: v for v in map(json.loads, out.stdout.splitlines())}


def arrives_at_h1(lab: Any, hops: int = 8) -> int:
    """How many of a short flow's datagrams a listener on h1 receives."""
    with member6(lab, "h1", str(G)) as sock:
        time.sleep(0.2)
        with flow6(lab, str(G), hops=hops):
            time.sleep(0.5)
        return len(received(sock, wait=0.5))


def test_forwarded_route_says_hop_limit_and_family(lab: Any, tmp_path: Path) -> None:
    with router6(lab, routes=(ROUTE,)), flow6(lab, str(G), hops=8):
        v = explain(lab.node("r1"), tmp_path, "--listen", "1")
    assert v["up0"]["reason"] == "input" and "hop limit 8" in v["up0"]["text"]
    assert v["dn0"]["forwarded"] and v["dn0"]["reason"] == "forwarded", v["dn0"]
    assert {x["family"] for x in v.values()} == {"ipv6"}
    assert v["dn0"]["source"] == str(S)


def test_no_ipv6_multicast_routing(lab: Any, tmp_path: Path) -> None:
    v = explain(lab.node("r1"), tmp_path, "--source", str(S))["dn0"]
    assert v["reason"] == "no_mrouting"
    assert "net.ipv6.conf.all.mc_forwarding = 0" in v["text"] and "MRT6_INIT" in v["text"]


def test_sender_hop_limit_one(lab: Any, tmp_path: Path) -> None:
    with router6(lab, routes=(ROUTE,)):
        assert arrives_at_h1(lab, hops=1) == 0  # the kernel: hop limit 1 stays
        assert arrives_at_h1(lab, hops=2) > 0  # 2 goes out with 1 left
        with flow6(lab, str(G), hops=1):
            v = explain(lab.node("r1"), tmp_path, "--listen", "1")["dn0"]
    assert v["reason"] == "sender_ttl"
    assert "hop limit 1" in v["text"] and "IPV6_MULTICAST_HOPS" in v["fix"]


def test_ipv6_forwarding_sysctl_off_still_forwards(lab: Any, tmp_path: Path) -> None:
    """net.ipv6.conf.all.forwarding 0 (which turns every interface's off) does not stop
    ip6mr: the kernel forwards, and explain says so instead of blaming the sysctl."""
    r1 = lab.node("r1")
    r1.sysctl("net.ipv6.conf.all.forwarding", "0")
    assert r1.sysctl("net.ipv6.conf.dn0.forwarding") == "0"
    with router6(lab, routes=(ROUTE,)):
        assert arrives_at_h1(lab) > 0
        with flow6(lab, str(G)):
            v = explain(r1, tmp_path, "--listen", "1")["dn0"]
    assert v["reason"] == "forwarded", v


@pytest.mark.parametrize(("iface", "text"), [
    ("dn0", "nothing IPv6 goes out of it"),
    ("up0", "the flow is dropped as it arrives there"),
])
def test_ipv6_disabled_on_an_interface(lab: Any, tmp_path: Path, iface: str,
                                       text: str) -> None:
    r1 = lab.node("r1")
    with router6(lab, routes=(ROUTE,)):
        r1.sysctl(f"net.ipv6.conf.{iface}.disable_ipv6", "1")
        assert arrives_at_h1(lab) == 0
        v = explain(r1, tmp_path, "--source", str(S))["dn0"]
    assert v["reason"] == "ipv6_disabled"
    assert f"IPv6 is disabled on {iface}" in v["text"] and text in v["text"]
    assert f"net.ipv6.conf.{iface}.disable_ipv6=0" in v["fix"]


@pytest.mark.parametrize(("mifs", "reason", "fix"), [
    (("up0",), "no_vif", "add dn0"),
    (("dn0",), "no_vif_input", "add up0"),
])
def test_missing_mif(lab: Any, tmp_path: Path, mifs: tuple[str, ...], reason: str,
                     fix: str) -> None:
    with router6(lab, mifs=mifs):
        v = explain(lab.node("r1"), tmp_path, "--source", str(S))["dn0"]
    assert v["reason"] == reason and fix in v["fix"]
    assert "MIF of the IPv6 multicast routing table" in v["text"]


def test_no_route_in_the_daemons_table(lab: Any, tmp_path: Path) -> None:
    """MIFs and no (S,G) entry, the table held by a "daemon" that answers on its
    control socket (the stand-in's dual-stack show rows): no route."""
    sock = tmp_path / "r1.sock"
    with router6(lab, sock=sock):
        out = lab.node("r1").run([*DIAG, "explain", str(G), "--source", str(S), "--json",
                                  "--socket", str(sock)], timeout=30)
    v = {x["iface"]: x for x in map(json.loads, out.stdout.splitlines())}["dn0"]
    assert v["reason"] == "no_route", v
    assert "no kernel route (MFC entry)" in v["text"] and "mrouter route add" in v["fix"]


def test_listeners_known_but_not_in_the_route(lab: Any, tmp_path: Path) -> None:
    """The daemon says dn0 has listeners; the kernel's route does not send there."""
    sock = tmp_path / "r1.sock"
    with router6(lab, routes=(f"{S},{G},up0,",), sock=sock, members=(f"dn0,{G}",)):
        out = lab.node("r1").run([*DIAG, "explain", str(G), "--json", "--socket",
                                  str(sock)], timeout=30)
    v = {x["iface"]: x for x in map(json.loads, out.stdout.splitlines())}["dn0"]
    assert v["reason"] == "no_members"
    assert f"dn0 has listeners of {G} but is not an outbound interface" in v["text"]


def test_an_ipv4_only_daemon_does_not_own_the_ipv6_table(lab: Any, tmp_path: Path) -> None:
    """mrouter run (IPv4 only) answers on its socket while another process holds the
    IPv6 table: for an IPv6 group explain does not take the daemon's view."""
    from helpers import start

    daemon = start(lab, tmp_path, 'mode = "router"\n[interfaces.up0]\n[interfaces.dn0]\n')
    r1 = lab.node("r1")
    with router6(lab):
        out = r1.run([*DIAG, "explain", str(G), "--source", str(S), "--socket",
                      str(daemon.sock)], timeout=30).stdout
        v = explain(r1, tmp_path, "--source", str(S))["dn0"]
    assert "does not route IPv6" in out and "held by another process" in out
    assert v["reason"] == "foreign_owner"


def test_unresolved_upcall_only(lab: Any, tmp_path: Path) -> None:
    """MIFs, traffic, nobody answers the kernel's NOCACHE upcalls."""
    with router6(lab), flow6(lab, str(G)):
        time.sleep(0.3)
        v = explain(lab.node("r1"), tmp_path, "--listen", "1")["dn0"]
    assert v["reason"] == "unresolved", v
    assert "nobody installed a route" in v["text"]


def test_rpf_mismatch_counts_wrong_interface_arrivals(lab: Any, tmp_path: Path) -> None:
    with router6(lab, routes=(f"{S},{G},dn0,up0",)), flow6(lab, str(G)):
        v = explain(lab.node("r1"), tmp_path, "--listen", "1")["dn0"]
    assert v["reason"] == "rpf_mismatch"
    assert "expects it on dn0 but it arrives on up0" in v["text"]
    assert int(v["text"].split("(")[-1].split()[0]) > 0
    assert "--from up0" in v["fix"]


def test_no_listeners(lab: Any, tmp_path: Path) -> None:
    with router6(lab, routes=(f"{S},{G},up0,",)):
        v = explain(lab.node("r1"), tmp_path)["dn0"]
    assert v["reason"] == "no_members"
    assert f"no listeners of {G} on dn0" in v["text"]
    assert f"mrouter join --iface dn0 {G}" in v["fix"]


def test_mif_threshold_is_not_honoured(lab: Any, tmp_path: Path) -> None:
    """A MIF made with threshold 8 and a flow with hop limit 5: ip6mr forwards it all
    the same (its threshold is 1 on every MIF), and explain says forwarded."""
    with router6(lab, mifs=("up0", "dn0:8"), routes=(ROUTE,)):
        assert arrives_at_h1(lab, hops=5) > 0
        with flow6(lab, str(G), hops=5):
            v = explain(lab.node("r1"), tmp_path, "--listen", "1")["dn0"]
    assert v["reason"] == "forwarded", v
    assert "threshold" not in v["text"]


def test_table_owned_by_another_process(lab: Any, tmp_path: Path) -> None:
    r1 = lab.node("r1")
    with router6(lab):
        for args in ((), ("--probe-owner",)):
            v = explain(r1, tmp_path, "--source", str(S), *args)["dn0"]
            assert v["reason"] == "foreign_owner", args
            assert "owned by another process" in v["text"]
        human = r1.run([*DIAG, "explain", str(G), "--source", str(S), "--socket",
                        str(tmp_path / "no-daemon.sock")], timeout=30)
        assert "IPv6 multicast routing held by another process" in human.stdout
        assert "fix dn0:" in human.stdout and human.returncode == 1
    v = explain(r1, tmp_path, "--source", str(S))["dn0"]  # MRT6_DONE with its owner
    assert v["reason"] == "no_mrouting"


def test_link_down(lab: Any, tmp_path: Path) -> None:
    r1 = lab.node("r1")
    with router6(lab, routes=(ROUTE,)):
        r1.run(["ip", "link", "set", "dn0", "down"], check=True)
        v = explain(r1, tmp_path)["dn0"]
    assert v["reason"] == "link_down" and "ip link set dn0 up" in v["fix"]


def test_another_table_needs_a_multicast_rule(lab: Any, tmp_path: Path) -> None:
    """A table-100 stand-in: /proc shows no MIF of it, rtnetlink its route. Without an
    `ip -6 mrule` the flow is looked up in the default table (254) and nothing goes
    out; explain names the missing rule, and with it says forwarded."""
    r1 = lab.node("r1")
    with router6(lab, routes=(ROUTE,), table=100):
        assert arrives_at_h1(lab) == 0
        v = explain(r1, tmp_path, "--source", str(S))["dn0"]
        assert v["reason"] == "no_table_rule", v
        assert "looked up in table 254, not in table 100" in v["text"]
        assert v["fix"] == "ip -6 mrule add iif up0 lookup 100"
        r1.run(v["fix"].split(), check=True)
        assert arrives_at_h1(lab) > 0
        v = explain(r1, tmp_path, "--source", str(S))["dn0"]
        human = r1.run([*DIAG, "explain", str(G), "--source", str(S), "--socket",
                        str(tmp_path / "none.sock")]).stdout
    assert v["reason"] == "forwarded", v
    assert "(table 100)" in human and "known from its routes (dn0, up0)" in human


SMCROUTE_CONF = f"""\
phyint up0 enable
phyint dn0 enable
mroute from up0 source {S} group {G} to dn0
"""


@pytest.mark.skipif(shutil.which("smcrouted") is None, reason="smcroute not installed")
def test_smcroute_as_the_running_router(lab: Any, tmp_path: Path) -> None:
    """smcroute routes (S,G) from its config: explain reads the kernel's IPv6 table
    as smcroute left it, and a listener on h1 gets the flow."""
    conf = tmp_path / "smcroute.conf"
    conf.write_text(SMCROUTE_CONF)
    r1 = lab.node("r1")
    proc = r1.spawn(["smcrouted", "-n", "-N", "-f", str(conf), "-l", "debug",
                     "-u", str(tmp_path / "smcroute.sock"), "-P", str(tmp_path / "smc.pid")],
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10
        while "2001:0db8:0001" not in r1.run(["cat", "/proc/net/ip6_mr_cache"]).stdout:
            assert proc.poll() is None and time.monotonic() < deadline, (
                proc.stderr.read() if proc.stderr else "")
            time.sleep(0.1)
        assert arrives_at_h1(lab) > 0
        with flow6(lab, str(G)):
            v = explain(r1, tmp_path, "--listen", "1")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert v["up0"]["reason"] == "input"
    assert v["dn0"]["reason"] == "forwarded", v["dn0"]


def test_without_privilege_explain_still_reads_the_ipv6_table(lab: Any,
                                                              tmp_path: Path) -> None:
    """Every capability dropped: the table, sysctls and routes are readable, so the
    verdict is the same; --listen (a packet socket) is refused in one line."""
    drop = ["setpriv", "--bounding-set", "-all", "--inh-caps", "-all", "--ambient-caps",
            "-all"]
    argv = [*drop, *DIAG, "explain", str(G), "--source", str(S), "--socket",
            str(tmp_path / "none.sock")]
    r1 = lab.node("r1")
    with router6(lab, routes=(f"{S},{G},up0,",)):
        out = r1.run([*argv, "--json", "--probe-owner"], timeout=30)
        listen = r1.run([*argv, "--listen", "1"], timeout=30)
    assert out.returncode == 1 and "Traceback" not in out.stderr, out.stderr
    v = {x["iface"]: x for x in map(json.loads, out.stdout.splitlines())}["dn0"]
    assert v["reason"] == "no_members" and v["family"] == "ipv6"
    assert listen.returncode == 2 and listen.stderr.count("\n") == 1
    assert "--listen needs root" in listen.stderr
