"""`mrouter explain` on real broken routers: each cause built in a lab, as a user meets it.

Lab basic.toml: sender eth0 198.51.100.2 -- r1 up0 | r1 dn0 -- receiver eth0 192.0.2.2.
The kernel table is set up with mrouter.kernel.mroute from this process (inside r1's
namespace), or by a child process for the "another owner" case; explain runs as a
command in r1 (``python -m mrouter.cli.diag explain ... --json``) with a control socket
path where no daemon answers.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from helpers import member

from mrouter.kernel.mroute import MrouteSocket
from mrouter.lab.traffic import multicast_flow

pytestmark = pytest.mark.netns

S = IPv4Address("198.51.100.2")
G = IPv4Address("239.1.1.1")
UP, DN = 0, 1
DIAG = [sys.executable, "-m", "mrouter.cli.diag"]
NETNS = Path(__file__).resolve().parents[2] / "netns"


@pytest.fixture
def lab(lab_factory: Callable[[str], Any]) -> Any:
    return lab_factory("basic.toml")


@contextmanager
def mroute(lab: Any, vifs: tuple[str, ...] = ("up0", "dn0"),
           route: tuple[int, dict[int, int]] | None = None) -> Iterator[MrouteSocket]:
    """The kernel table of r1, held by this process: VIF 0 up0, VIF 1 dn0, and one
    (S,G) route (iif VIF, {oif VIF: TTL threshold}) if given."""
    r1 = lab.node("r1")
    with r1.enter():
        mrt = MrouteSocket()
    try:
        for name in vifs:
            mrt.add_vif({"up0": UP, "dn0": DN}[name], r1.ifindex(name))
        if route is not None:
            mrt.add_mfc(S, G, *route)
        yield mrt
    finally:
        mrt.close()


def flow(lab: Any, ttl: int, source: IPv4Address | None = None) -> Any:
    """The sender sends to G:5000 every 20 ms with this TTL while the block runs."""
    return multicast_flow(lab.node("sender"), G, ttl=ttl, source=source, payload=b"explain me" * 4)


def explain(node: Any, tmp_path: Path, *args: str) -> dict[str, dict[str, Any]]:
    """Run `explain --json` in the node; the verdicts by interface."""
    out = node.run([*DIAG, "explain", str(G), "--json", "--socket",
                    str(tmp_path / "no-daemon.sock"), *args], timeout=30)
    assert out.returncode in (0, 1), out.stderr
    return {v["iface"]: v for v in map(json.loads, out.stdout.splitlines())}


def test_forwarding_route_is_explained_as_forwarded(lab: Any, tmp_path: Path) -> None:
    with mroute(lab, route=(UP, {DN: 1})), flow(lab, ttl=8):
        v = explain(lab.node("r1"), tmp_path, "--listen", "1")
    assert v["up0"]["reason"] == "input" and "TTL 8" in v["up0"]["text"]
    assert v["dn0"]["forwarded"] and v["dn0"]["reason"] == "forwarded"


def test_no_multicast_routing(lab: Any, tmp_path: Path) -> None:
    v = explain(lab.node("r1"), tmp_path, "--source", str(S))["dn0"]
    assert v["reason"] == "no_mrouting" and "mrouter run" in v["fix"]


def test_sender_ttl_one(lab: Any, tmp_path: Path) -> None:
    with mroute(lab, route=(UP, {DN: 1})), flow(lab, ttl=1):
        v = explain(lab.node("r1"), tmp_path, "--listen", "1")
    assert v["dn0"]["reason"] == "sender_ttl"
    assert "TTL 1" in v["dn0"]["text"] and "IP_MULTICAST_TTL" in v["dn0"]["fix"]


def test_rp_filter_without_route_back(lab: Any, tmp_path: Path) -> None:
    """The sender uses a second address r1 has no route to; r1 filters strictly on up0."""
    other = IPv4Address("203.0.113.50")
    lab.node("sender").run(["ip", "addr", "add", f"{other}/32", "dev", "eth0"], check=True)
    r1 = lab.node("r1")
    r1.sysctl("net.ipv4.conf.up0.rp_filter", "1")
    with mroute(lab), flow(lab, ttl=8, source=other):
        v = explain(r1, tmp_path, "--source", str(other), "--listen", "1")
    assert v["up0"]["reason"] == "input"
    assert v["dn0"]["reason"] == "rp_filter"
    assert "rp_filter=1 on up0" in v["dn0"]["text"]
    assert "rp_filter=0" in v["dn0"]["fix"]


@pytest.mark.parametrize(("vifs", "reason", "fix"), [
    (("up0",), "no_vif", "add dn0"),
    (("dn0",), "no_vif_input", "add up0"),
])
def test_missing_vif(lab: Any, tmp_path: Path, vifs: tuple[str, ...], reason: str,
                     fix: str) -> None:
    with mroute(lab, vifs=vifs):
        v = explain(lab.node("r1"), tmp_path, "--source", str(S))["dn0"]
    assert v["reason"] == reason and fix in v["fix"]


def test_rpf_mismatch_counts_wrong_interface_arrivals(lab: Any, tmp_path: Path) -> None:
    """The route expects the flow on dn0; it arrives on up0."""
    with mroute(lab, route=(DN, {UP: 1})), flow(lab, ttl=8):
        v = explain(lab.node("r1"), tmp_path, "--listen", "1")["dn0"]
    assert v["reason"] == "rpf_mismatch"
    assert "expects it on dn0 but it arrives on up0" in v["text"]
    wrong = int(v["text"].split("(")[-1].split()[0])
    assert wrong > 0
    assert "--from up0" in v["fix"]


def test_ttl_threshold_above_packet_ttl(lab: Any, tmp_path: Path) -> None:
    with mroute(lab, route=(UP, {DN: 8})), flow(lab, ttl=5):
        v = explain(lab.node("r1"), tmp_path, "--listen", "1")["dn0"]
    assert v["reason"] == "ttl_threshold"
    assert "threshold of dn0 is 8" in v["text"] and "TTL 5" in v["text"]


def test_no_members(lab: Any, tmp_path: Path) -> None:
    with mroute(lab, route=(UP, {})):
        v = explain(lab.node("r1"), tmp_path)["dn0"]
    assert v["reason"] == "no_members" and "mrouter join --iface dn0" in v["fix"]


def test_link_down(lab: Any, tmp_path: Path) -> None:
    r1 = lab.node("r1")
    with mroute(lab, route=(UP, {DN: 1})):
        r1.run(["ip", "link", "set", "dn0", "down"], check=True)
        v = explain(r1, tmp_path)["dn0"]
    assert v["reason"] == "link_down" and "ip link set dn0 up" in v["fix"]


HOLDER = """
import socket, struct, sys, time
from mrouter.errors import ControlError
from mrouter.kernel.mroute import MrouteSocket
from mrouter.router.control import request
mrt = MrouteSocket()
mrt.add_vif(0, socket.if_nametoindex("up0"))
mrt.add_vif(1, socket.if_nametoindex("dn0"))
print("held", flush=True)
time.sleep(60)
"""


def test_table_owned_by_another_process(lab: Any, tmp_path: Path) -> None:
    r1 = lab.node("r1")
    holder = r1.spawn([sys.executable, "-c", HOLDER], stdout=-1, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        for args in ((), ("--probe-owner",)):
            v = explain(r1, tmp_path, "--source", str(S), *args)["dn0"]
            assert v["reason"] == "foreign_owner", args
            assert "owned by another process" in v["text"]
        human = r1.run([*DIAG, "explain", str(G), "--source", str(S), "--socket",
                        str(tmp_path / "no-daemon.sock")], timeout=30)
        assert "held by another process" in human.stdout
        assert "fix dn0:" in human.stdout and human.returncode == 1
    finally:
        holder.terminate()
        holder.wait(timeout=10)
    v = explain(r1, tmp_path, "--source", str(S))["dn0"]  # released with its owner
    assert v["reason"] == "no_mrouting"


def test_snooping_bridge_without_querier(lab_factory: Callable[[Any], Any],
                                         tmp_path: Path) -> None:
    """lan.toml with snooping on: explained from the bridge's own namespace."""
    topo = tmp_path / "lan-snooping.toml"
    topo.write_text((NETNS / "lan.toml").read_text().replace("igmp_snooping = false",
                                                             "igmp_snooping = true"))
    lan = lab_factory(topo)
    (netns,) = [n for n in lan.namespaces if n.endswith("-lan0")]

    def run(*args: str) -> dict[str, dict[str, Any]]:
        out = lan.node("r1").run(
            ["ip", "netns", "exec", netns, *DIAG, "explain", str(G), "--source", str(S),
             "--json", "--socket", str(tmp_path / "none.sock"), *args], timeout=30)
        assert out.returncode in (0, 1), out.stderr
        return {v["iface"]: v for v in map(json.loads, out.stdout.splitlines())}

    v = run("--iface", "lan0")["lan0"]
    assert v["reason"] == "snooping_no_querier"
    assert "querier" in v["fix"] and "mcast_snooping 0" in v["fix"]
    lan.node("r1").run(["ip", "netns", "exec", netns, "ip", "link", "set", "lan0", "type",
                        "bridge", "mcast_querier", "1"], check=True)
    assert run("--iface", "lan0")["lan0"]["reason"] != "snooping_no_querier"


DAEMON_CONFIG = """\
mode = "router"
[interfaces.up0]
[interfaces.dn0]
igmp_version = 3
"""


def test_with_a_running_daemon_forwarding_follows_membership(lab: Any,
                                                             tmp_path: Path) -> None:
    """Against `mrouter run`: no members on dn0 first, forwarded once the receiver joins."""
    from helpers import start

    sock = start(lab, tmp_path, DAEMON_CONFIG).sock
    r1 = lab.node("r1")

    def verdict() -> dict[str, Any]:
        out = r1.run([*DIAG, "explain", str(G), "--json", "--socket", str(sock),
                      "--listen", "1"], timeout=30)
        verdicts: dict[str, dict[str, Any]] = {
            v["iface"]: v for v in map(json.loads, out.stdout.splitlines())}
        return verdicts["dn0"]

    # before any traffic the daemon has no (S,G) entry at all: no route (and it answers,
    # so the table is not "owned by another process")
    out = r1.run([*DIAG, "explain", str(G), "--source", str(S), "--json", "--socket",
                  str(sock)], timeout=30)
    idle = {v["iface"]: v for v in map(json.loads, out.stdout.splitlines())}["dn0"]
    assert idle["reason"] == "no_route", idle
    with flow(lab, ttl=8):
        before = verdict()  # the daemon installs the route on the upcall, with no oifs
        assert before["reason"] == "no_members", before
        assert "mrouter join --iface dn0 239.1.1.1" in before["fix"]
        with member(lab, "receiver", str(G)):
            deadline = time.monotonic() + 10
            while (after := verdict())["reason"] != "forwarded":
                assert time.monotonic() < deadline, after
    # the control socket is a file every namespace sees: from the receiver, the daemon's
    # view of another namespace is not used
    elsewhere = lab.node("receiver").run([*DIAG, "explain", str(G), "--source", str(S),
                                          "--socket", str(sock)], timeout=30)
    assert "runs in another network namespace" in elsewhere.stdout
    assert "multicast routing not running" in elsewhere.stdout


def test_unresolved_upcall_only(lab: Any, tmp_path: Path) -> None:
    """VIFs but nobody answers the kernel's upcalls: the (S,G) stays unresolved."""
    with mroute(lab), flow(lab, ttl=8):
        time.sleep(0.3)
        v = explain(lab.node("r1"), tmp_path, "--listen", "1")["dn0"]
    assert v["reason"] == "unresolved", v
    assert "nobody installed a route" in v["text"] and "mrouter show routes" in v["fix"]
