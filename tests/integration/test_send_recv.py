"""`mrouter send`, `recv`, `memberships` and `ifaces` run in lab nodes, as a user runs them.

basic.toml: sender eth0 198.51.100.2 -- up0 .1 r1 dn0 192.0.2.1 -- eth0 192.0.2.2 receiver.
lan.toml: r1 dn0 192.0.2.1, h1 .11, h2 .12, h3 .13 on one LAN (lan0).
No routing daemon runs: every datagram here crosses at most one link.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import pytest
from helpers import users, wait_for

from mrouter.sockets import mcast
from mrouter.traffic.payload import Payload

pytestmark = pytest.mark.netns

MROUTER = [sys.executable, "-m", "mrouter"]
G1, G2, G3 = "239.3.1.1", "239.3.1.2", "239.3.1.3"


@pytest.fixture
def basic(lab_factory: Callable[[str], Any]) -> Any:
    return lab_factory("basic.toml")


def start_recv(node: Any, *args: str, iface: str = "eth0", groups: tuple[str, ...] = ()
               ) -> subprocess.Popen[str]:
    """`mrouter recv ARGS` in the background, returned once its joins are in the kernel."""
    wanted = groups or tuple(a.split(":")[0] for a in args if a[:1].isdigit() and ":" in a)
    before = {g: users(node, g, iface) for g in wanted}
    proc = node.spawn([*MROUTER, "recv", *args], stdout=subprocess.PIPE,
                      stderr=subprocess.PIPE)
    try:  # joined when each group has one more user than before
        wait_for(lambda: proc.poll() is not None
                 or all(users(node, g, iface) > n for g, n in before.items()), timeout=10.0)
    except AssertionError:
        proc.kill()
        raise
    assert proc.poll() is None, proc.communicate()
    return proc


def finish(proc: subprocess.Popen[str], timeout: float = 20.0) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def send(node: Any, target: str, *args: str) -> dict[str, Any]:
    out = node.run([*MROUTER, "send", target, "--json", *args], timeout=30)
    assert out.returncode == 0, out.stderr
    (summary,) = lines(out.stdout)
    return summary


@pytest.mark.parametrize("ttl", [1, 7, 255])
def test_the_ttl_set_on_the_sender_is_the_ttl_the_receiver_sees(basic: Any, ttl: int) -> None:
    recv = start_recv(basic.node("receiver"), f"{G1}:5000", "--count", "20",
                      "--timeout", "10", "--json")
    sent = send(basic.node("r1"), f"{G1}:5000", "--iface", "dn0", "--ttl", str(ttl),
                "--count", "20", "--rate", "200")
    assert (sent["sent"], sent["ttl"], sent["iface"], sent["port"]) == (20, ttl, "dn0", 5000)
    assert sent["rate"] > 0 and sent["elapsed"] > 0

    status, out, err = finish(recv)
    assert status == 0, err
    (summary,) = lines(out)
    assert summary["group"] == G1 and summary["port"] == 5000
    assert (summary["received"], summary["lost"], summary["duplicates"],
            summary["reordered"]) == (20, 0, 0, 0)
    assert summary["ttl_min"] == summary["ttl_max"] == ttl
    assert summary["sources"] == ["192.0.2.1"]
    assert 0 <= summary["delay_min_ms"] <= summary["delay_avg_ms"] <= summary["delay_max_ms"]
    assert summary["first_arrival"] < summary["last_arrival"] and summary["rate"] > 0


def test_loop_on_the_sending_host_gets_the_datagrams_and_no_loop_none(basic: Any) -> None:
    r1, receiver = basic.node("r1"), basic.node("receiver")
    local = start_recv(r1, f"{G1}:5000", "--iface", "dn0", "--count", "10", "--timeout", "5",
                       "--json", iface="dn0")
    send(r1, f"{G1}:5000", "--iface", "dn0", "--count", "10", "--rate", "200")
    status, out, _ = finish(local)
    assert status == 0 and lines(out)[0]["received"] == 10

    local = start_recv(r1, f"{G1}:5000", "--iface", "dn0", "--count", "10", "--timeout", "1.5",
                       "--json", iface="dn0")
    far = start_recv(receiver, f"{G1}:5000", "--count", "10", "--timeout", "5", "--json")
    sent = send(r1, f"{G1}:5000", "--iface", "dn0", "--count", "10", "--rate", "200",
                "--no-loop")
    assert sent["loop"] is False
    status, out, _ = finish(local)
    assert status == 1 and lines(out)[0]["received"] == 0  # timed out short of --count
    status, out, _ = finish(far)
    assert status == 0 and lines(out)[0]["received"] == 10  # the link still carried them


def test_ttl_0_keeps_datagrams_on_the_sending_host(basic: Any) -> None:
    r1 = basic.node("r1")
    local = start_recv(r1, f"{G1}:5000", "--iface", "dn0", "--count", "5", "--timeout", "5",
                       "--json", iface="dn0")
    far = start_recv(basic.node("receiver"), f"{G1}:5000", "--count", "5", "--timeout", "1.5",
                     "--json")
    send(r1, f"{G1}:5000", "--iface", "dn0", "--ttl", "0", "--count", "5", "--rate", "200")
    status, out, _ = finish(local)
    assert status == 0 and lines(out)[0]["received"] == 5
    status, out, _ = finish(far)
    assert status == 1 and lines(out)[0]["received"] == 0


def test_a_source_specific_receiver_gets_only_its_source(lab_factory: Callable[[str], Any]
                                                         ) -> None:
    lab = lab_factory("lan.toml")
    h3 = lab.node("h3")
    ssm = start_recv(h3, f"{G1}:5000", "--source", "192.0.2.11", "--count", "20",
                     "--timeout", "3", "--json")
    asm = start_recv(h3, f"{G1}:5000", "--count", "40", "--timeout", "10", "--json")
    senders = [node.spawn([*MROUTER, "send", f"{G1}:5000", "--count", "20", "--rate", "200"],
                          stdout=subprocess.DEVNULL)
               for node in (lab.node("h1"), lab.node("h2"))]
    for proc in senders:
        assert proc.wait(timeout=20) == 0

    status, out, _ = finish(ssm)
    (only_h1,) = lines(out)
    assert status == 0
    assert only_h1["sources"] == ["192.0.2.11"]
    assert (only_h1["received"], only_h1["lost"], only_h1["duplicates"]) == (20, 0, 0)
    status, out, _ = finish(asm)
    (both,) = lines(out)
    assert status == 0, both
    assert both["sources"] == ["192.0.2.11", "192.0.2.12"]
    assert (both["received"], both["lost"], both["duplicates"]) == (40, 0, 0)


def test_recv_reports_each_group_on_its_own_json_line(basic: Any) -> None:
    recv = start_recv(basic.node("receiver"), f"{G1}:5000", f"{G2}:5000", f"{G3}:5001",
                      "--count", "5", "--timeout", "10", "--json")
    for target in (f"{G1}:5000", f"{G2}:5000", f"{G3}:5001"):
        send(basic.node("r1"), target, "--iface", "dn0", "--count", "5", "--rate", "500")
    status, out, _ = finish(recv)
    assert status == 0
    summaries = lines(out)
    assert [(s["group"], s["port"], s["received"]) for s in summaries] == [
        (G1, 5000, 5), (G2, 5000, 5), (G3, 5001, 5)]
    for s in summaries:
        assert {"group", "port", "received", "lost", "duplicates", "reordered", "ttl_min",
                "ttl_max", "sources"} <= set(s)


def test_loss_duplicates_reordering_and_foreign_datagrams_are_counted(basic: Any) -> None:
    recv = start_recv(basic.node("receiver"), f"{G1}:5000", "--count", "5", "--timeout", "10",
                      "--json")
    with basic.node("r1").enter(), mcast.McastSocket() as sock:
        sock.set_interface("dn0")
        sock.sendto(b"not an mrouter datagram", G1, 5000)
        sock.sendto(b"MRTR", G1, 5000)
        for seq in (0, 1, 1, 3, 2, 5):  # 1 twice, 2 after 3, 4 never
            sock.sendto(Payload(7, seq, time.time_ns()).encode(64), G1, 5000)
    status, out, _ = finish(recv)
    (summary,) = lines(out)
    assert status == 0
    assert (summary["received"], summary["lost"], summary["duplicates"], summary["reordered"],
            summary["foreign"]) == (5, 1, 1, 1, 2)


def test_timeout_short_of_count_exits_1_with_the_summary(basic: Any) -> None:
    out = basic.node("receiver").run([*MROUTER, "recv", f"{G1}:5000", "--count", "5",
                                      "--timeout", "0.5"], timeout=30)
    assert out.returncode == 1
    header, row = out.stdout.splitlines()
    assert header.split()[:4] == ["GROUP", "PORT", "RECV", "LOST"]
    assert row.split()[:3] == [G1, "5000", "0"]


def test_ctrl_c_prints_the_summary_so_far_and_exits_cleanly(basic: Any) -> None:
    recv = start_recv(basic.node("receiver"), f"{G1}:5000", "--json")
    send(basic.node("r1"), f"{G1}:5000", "--iface", "dn0", "--count", "3", "--rate", "500")
    time.sleep(0.2)
    recv.send_signal(signal.SIGINT)
    status, out, err = finish(recv)
    assert status == 130
    assert lines(out)[0]["received"] == 3
    assert "Traceback" not in err


@pytest.mark.parametrize(("argv", "message"), [
    (["recv", f"{G1}:5000", "--iface", "eth9", "--timeout", "1"],
     "mrouter recv: error: unknown interface 'eth9': this network namespace has lo, eth0"),
    (["recv", "10.1.1.1:5000"], "10.1.1.1 is not a multicast group address"),
    (["send", f"{G1}:5000", "--ttl", "256"], "mrouter send: error: TTL 256 is out of range"),
    (["send", f"{G1}:5000", "--count", "1"],  # receiver has a default route: sender needs one
     None),
])
def test_errors_exit_2_with_one_line_on_stderr(basic: Any, argv: list[str],
                                               message: str | None) -> None:
    out = basic.node("receiver").run([*MROUTER, *argv], timeout=30)
    if message is None:
        assert out.returncode == 0, out.stderr  # control: the same command line works
        return
    assert out.returncode == 2
    assert message in out.stderr
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_send_without_a_route_or_iface_says_how_to_fix_it(basic: Any) -> None:
    out = basic.node("r1").run([*MROUTER, "send", f"{G1}:5000", "--count", "1"], timeout=30)
    assert out.returncode == 2
    assert out.stderr == (
        "mrouter send: error: cannot send to 239.3.1.1:5000: no route to 239.3.1.1 and no "
        "outgoing interface chosen; name one with --iface (IP_MULTICAST_IF) or add a route: "
        "ip route add 224.0.0.0/4 dev IFACE\n")


def test_memberships_show_a_group_held_by_two_receivers_until_both_leave(basic: Any) -> None:
    receiver = basic.node("receiver")

    def users_shown() -> int | None:
        out = receiver.run([*MROUTER, "memberships", "--json"], timeout=30)
        assert out.returncode == 0, out.stderr
        found = [m["users"] for m in lines(out.stdout)
                 if m["iface"] == "eth0" and m["group"] == G1]
        return found[0] if found else None

    first = start_recv(receiver, f"{G1}:5000")
    second = start_recv(receiver, f"{G1}:5000")
    assert users_shown() == 2
    first.send_signal(signal.SIGINT)
    finish(first)
    assert users_shown() == 1  # one receiver left; the host is still a member
    human = receiver.run([*MROUTER, "memberships", "--iface", "eth0"], timeout=30).stdout
    assert human.splitlines()[0].split() == ["IFACE", "INDEX", "IGMP", "GROUP", "USERS",
                                             "REPORTER", "SOURCES"]
    assert any(row.split()[3:5] == [G1, "1"] for row in human.splitlines()[1:])
    second.send_signal(signal.SIGINT)
    finish(second)
    assert users_shown() is None


def test_memberships_show_the_sources_of_a_source_specific_receiver(basic: Any) -> None:
    receiver = basic.node("receiver")
    recv = start_recv(receiver, f"{G1}:5000", "--source", "198.51.100.2", "198.51.100.3")
    out = receiver.run([*MROUTER, "memberships", "--json"], timeout=30)
    (entry,) = [m for m in lines(out.stdout) if m["group"] == G1]
    assert entry["sources"] == [{"source": "198.51.100.2", "include": 1, "exclude": 0},
                                {"source": "198.51.100.3", "include": 1, "exclude": 0}]
    recv.send_signal(signal.SIGINT)
    finish(recv)


def test_ifaces_lists_the_nodes_interfaces(basic: Any) -> None:
    out = basic.node("r1").run([*MROUTER, "ifaces", "--json"], timeout=30)
    assert out.returncode == 0
    by_name = {i["name"]: i for i in lines(out.stdout)}
    assert set(by_name) == {"lo", "up0", "dn0"}
    assert by_name["dn0"]["addresses"] == ["192.0.2.1/24"]
    assert by_name["dn0"]["up"] and by_name["dn0"]["multicast"]
    assert {"UP", "MULTICAST"} <= set(by_name["up0"]["flags"])
    assert by_name["lo"]["loopback"] and "LOOPBACK" in by_name["lo"]["flags"]
    assert by_name["dn0"]["index"] == basic.node("r1").ifindex("dn0")
    human = basic.node("r1").run([*MROUTER, "ifaces"], timeout=30).stdout.splitlines()
    assert human[0].split() == ["INDEX", "NAME", "FLAGS", "IPV4"]
    assert any(r.split()[1] == "dn0" and r.split()[-1] == "192.0.2.1/24" for r in human[1:])
