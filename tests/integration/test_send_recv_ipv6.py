"""`mrouter send`, `recv`, `memberships` and `ifaces` with IPv6, and the dual-stack lab.

dual-stack.toml: sender eth0 198.51.100.2 / 2001:db8:1::2 -- up0 r1 dn0 192.0.2.1 /
2001:db8:2::1 -- LAN lan0: h1 .11 / ::11, h2 .12 / ::12, h3 .13 / ::13. No routing
daemon runs: multicast crosses one link, unicast crosses r1.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Callable
from ipaddress import IPv6Address
from typing import Any

import pytest
from helpers import wait_for

from mrouter.sockets import mcast6

pytestmark = pytest.mark.netns

MROUTER = [sys.executable, "-m", "mrouter"]
G1, G2 = "ff15::7:1", "ff15::7:2"


@pytest.fixture
def lab(lab_factory: Callable[[str], Any]) -> Any:
    return lab_factory("dual-stack.toml")


def users6(node: Any, group: str, iface: str = "eth0") -> int:
    with node.enter():
        table = mcast6.memberships6()
    return sum(g.users for ifm, g in mcast6.iter_memberships(table)
               if g.group == IPv6Address(group) and ifm.name == iface)


def start_recv(node: Any, group: str, *args: str, iface: str = "eth0"
               ) -> subprocess.Popen[str]:
    """`mrouter recv '[GROUP]:5000' ARGS` in the background, once its join is in."""
    before = users6(node, group, iface)
    proc = node.spawn([*MROUTER, "recv", f"[{group}]:5000", *args], stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
    try:
        wait_for(lambda: proc.poll() is not None or users6(node, group, iface) > before,
                 timeout=10.0)
    except AssertionError:
        proc.kill()
        raise
    assert proc.poll() is None, proc.communicate()
    return proc


def finish(proc: subprocess.Popen[str]) -> tuple[int, list[dict[str, Any]], str]:
    out, err = proc.communicate(timeout=20)
    return proc.returncode, [json.loads(x) for x in out.splitlines() if x.strip()], err


def send(node: Any, target: str, *args: str) -> dict[str, Any]:
    out = node.run([*MROUTER, "send", target, "--json", *args], timeout=30)
    assert out.returncode == 0, out.stderr
    (summary,) = [json.loads(x) for x in out.stdout.splitlines() if x.strip()]
    return summary


def test_hop_limit_on_the_sender_is_what_recv_reports_with_the_ipv4_keys(lab: Any) -> None:
    h2 = lab.node("h2")
    recv = start_recv(h2, G1, "--iface", "eth0", "--count", "20", "--timeout", "10", "--json")
    sent = send(lab.node("h1"), f"[{G1}]:5000", "--iface", "eth0", "--ttl", "9",
                "--count", "20", "--rate", "200")
    assert (sent["family"], sent["group"], sent["ttl"], sent["iface"], sent["sent"]) == (
        "ipv6", G1, 9, "eth0", 20)
    status, (summary,), err = finish(recv)
    assert status == 0, err
    assert (summary["family"], summary["group"], summary["port"]) == ("ipv6", G1, 5000)
    assert (summary["received"], summary["lost"], summary["duplicates"]) == (20, 0, 0)
    assert summary["ttl_min"] == summary["ttl_max"] == 9
    assert summary["sources"] == ["2001:db8:2::11"]

    # the same keys as an IPv4 run, which gains "family" too
    recv4 = lab.node("h2").spawn([*MROUTER, "recv", "239.7.0.1:5000", "--count", "1",
                                  "--timeout", "0.5", "--json"], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
    _, (summary4,), _ = finish(recv4)
    assert summary4["family"] == "ipv4" and set(summary4) == set(summary)
    sent4 = send(lab.node("h1"), "239.7.0.1:5000", "--count", "1")
    assert sent4["family"] == "ipv4" and set(sent4) == set(sent)


def test_ssm_recv_with_source_gets_only_that_source_while_two_send(lab: Any) -> None:
    h3 = lab.node("h3")
    ssm = start_recv(h3, G2, "--source", "2001:db8:2::11", "--iface", "eth0",
                     "--count", "20", "--timeout", "5", "--json")
    senders = [node.spawn([*MROUTER, "send", f"[{G2}]:5000", "--iface", "eth0",
                           "--count", "20", "--rate", "200"], stdout=subprocess.DEVNULL)
               for node in (lab.node("h1"), lab.node("h2"))]
    for proc in senders:
        assert proc.wait(timeout=20) == 0
    status, (summary,), err = finish(ssm)
    assert status == 0, err
    assert summary["sources"] == ["2001:db8:2::11"]
    assert (summary["received"], summary["lost"], summary["duplicates"]) == (20, 0, 0)


def test_memberships_and_ifaces_list_both_families(lab: Any) -> None:
    h1 = lab.node("h1")
    recv = start_recv(h1, G1, "--iface", "eth0", "--timeout", "10")
    try:
        out = h1.run([*MROUTER, "memberships", "--json"], check=True).stdout
        rows = [json.loads(x) for x in out.splitlines()]
        six = {(r["iface"], r["group"]): r for r in rows if r["family"] == "ipv6"}
        assert six[("eth0", G1)]["users"] == 1 and "mld_version" in six[("eth0", G1)]
        assert six[("eth0", "ff02::1")]["users"] >= 1
        four = [r for r in rows if r["family"] == "ipv4"]
        assert four and all("igmp_version" in r for r in four)
        assert {r["family"] for r in rows} == {"ipv4", "ipv6"}
        text = h1.run([*MROUTER, "memberships", "--iface", "eth0"], check=True).stdout
        assert any(G1 in line and "MLD" in line for line in text.splitlines())
    finally:
        recv.terminate()
        recv.communicate(timeout=10)
    ifaces = {i["name"]: i for i in (json.loads(x) for x in h1.run(
        [*MROUTER, "ifaces", "--json"], check=True).stdout.splitlines())}
    eth0 = ifaces["eth0"]
    assert "2001:db8:2::11/64" in eth0["addresses6"] and eth0["addresses"] == ["192.0.2.11/24"]
    assert any(a.startswith("fe80::") for a in eth0["addresses6"]) and eth0["tentative6"] == []


@pytest.mark.parametrize("argv, message", [
    (["recv", "[ff02::1:2]:5000"], "ff02::1:2 is a link-local (ff02::/16) group, which "
     "exists only on one link; name the interface (--iface)"),
    (["recv", "[2001:db8::1]:5000"], "2001:db8::1 is not a multicast group address"),
    (["recv", "ff15::1:5000"], "for IPv6 the group in brackets, e.g. [ff15::1]:5000"),
    (["recv", "[ff15::1]:5000", "--source", "192.0.2.11"],
     "--source gives no IPv6 source for the IPv6 group ff15::1"),
    (["send", "[ff15::1]:5000", "--ttl", "300"], "hop limit 300 is out of range"),
    (["send", "[ff15::1]:5000", "--iface", "eth7"], "unknown interface 'eth7'"),
])
def test_ipv6_usage_errors_are_one_line(lab: Any, argv: list[str], message: str) -> None:
    out = lab.node("h1").run([*MROUTER, *argv, *(["--timeout", "1"] if argv[0] == "recv"
                                                  else [])], timeout=20)
    assert out.returncode == 2
    assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


# --- the dual-stack lab end to end ---------------------------------------------------------

def test_dual_stack_lab_passes_ipv6_unicast_and_multicast_end_to_end(lab: Any) -> None:
    sender, h3 = lab.node("sender"), lab.node("h3")
    # unicast across r1, both families, from the sender to a LAN host
    for family, here, there in ((socket.AF_INET6, "::", "2001:db8:2::13"),
                                (socket.AF_INET, "0.0.0.0", "192.0.2.13")):
        with h3.enter():
            rx = socket.socket(family, socket.SOCK_DGRAM)
        try:
            rx.bind((here, 5100))
            rx.settimeout(3)
            with sender.enter(), socket.socket(family, socket.SOCK_DGRAM) as tx:
                tx.sendto(b"across r1", (there, 5100))
            data, peer = rx.recvfrom(100)
            assert data == b"across r1"
            assert peer[0] == ("2001:db8:1::2" if family == socket.AF_INET6 else "198.51.100.2")
        finally:
            rx.close()
    # IPv6 multicast on every link: sender -> r1 up0, r1 dn0 -> all three LAN hosts
    r1 = lab.node("r1")
    on_r1 = start_recv(r1, G1, "--iface", "up0", "--count", "5", "--timeout", "10", "--json",
                       iface="up0")
    send(sender, f"[{G1}]:5000", "--iface", "eth0", "--count", "5", "--rate", "100")
    status, (summary,), err = finish(on_r1)
    assert status == 0, err
    assert summary["received"] == 5 and summary["sources"] == ["2001:db8:1::2"]
    hosts = [lab.node(h) for h in ("h1", "h2", "h3")]
    receivers = [start_recv(h, G2, "--iface", "eth0", "--count", "5", "--timeout", "10",
                            "--json") for h in hosts]
    send(r1, f"[{G2}]:5000", "--iface", "dn0", "--count", "5", "--rate", "100")
    for proc in receivers:
        status, (summary,), err = finish(proc)
        assert status == 0, err
        assert summary["received"] == 5 and summary["sources"] == ["2001:db8:2::1"]
