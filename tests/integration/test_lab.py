"""Labs as a user meets them: each shipped topology comes up, carries unicast between
its far ends through its routers, and goes away without a trace."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path

import pytest
from helpers import host_links, member, netns_list, send

from mrouter.errors import LabError
from mrouter.lab import Lab
from mrouter.lab.topology import default_netns_dir

pytestmark = pytest.mark.netns

IP_RECVTTL = 12  # linux/in.h; Python's socket module lacks it

#: (topology, sender node, receiver node, receiver address, routers on the way)
FAR_ENDS = [
    ("basic.toml", "sender", "receiver", "192.0.2.2", 1),
    ("lan.toml", "sender", "h3", "192.0.2.13", 1),
    ("two-lans.toml", "sender", "h4", "203.0.113.12", 1),
    ("two-lans.toml", "h1", "h3", "203.0.113.11", 1),
    ("chain.toml", "sender", "h2", "192.0.2.12", 2),
    ("querier-election.toml", "r1", "h2", "192.0.2.12", 0),
]


def udp_exchange(lab: Lab, src: str, dst: str, dst_addr: str
                 ) -> tuple[bytes, bytes, str, int]:
    """Send one UDP datagram src -> dst_addr:9999 with TTL 64; return (what was sent,
    what arrived, its source address, its TTL on arrival)."""
    with lab.node(dst).enter():
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with rx:
        rx.setsockopt(socket.IPPROTO_IP, IP_RECVTTL, 1)
        rx.bind((dst_addr, 9999))
        rx.settimeout(2.0)
        (sent,) = send(lab, dst_addr, "hello across the lab", 1, node=src, iface=None,
                       ttl=64, port=9999, gap=0)
        data, anc, _flags, addr = rx.recvmsg(100, socket.CMSG_SPACE(4))
    ttl = next(int.from_bytes(d[:4], "little") for lvl, typ, d in anc
               if lvl == socket.IPPROTO_IP and typ == socket.IP_TTL)
    return sent, data, addr[0], ttl


@pytest.mark.parametrize(("topo", "src", "dst", "addr", "hops"), FAR_ENDS,
                         ids=[f"{t[0]}:{t[1]}->{t[2]}" for t in FAR_ENDS])
def test_unicast_between_far_ends_and_clean_teardown(
    topo: str, src: str, dst: str, addr: str, hops: int
) -> None:
    links_before = host_links()
    with Lab.from_file(topo) as lab:
        names = set(lab.namespaces)
        assert names <= netns_list()
        sent, data, source, ttl = udp_exchange(lab, src, dst, addr)
        assert data == sent
        assert source == str(lab.node(src).address("eth0"))
        assert ttl == 64 - hops, "each router on the way decrements the TTL once"
        # a reply goes back the same way (default routes on the far side)
        sent, back, _, _ = udp_exchange(lab, dst, src, source)
        assert back == sent
    assert not names & netns_list(), "namespaces left behind"
    assert host_links() == links_before, "host interfaces changed"


def test_fixture_gives_a_started_lab(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory("basic.toml")
    r1 = lab.node("r1")
    assert r1.netns in netns_list()
    assert r1.address("up0") == IPv4Address("198.51.100.1")
    assert r1.address("dn0") == IPv4Address("192.0.2.1")
    out = r1.run(["ip", "-o", "-4", "addr", "show", "dev", "dn0"], check=True)
    assert "192.0.2.1/24" in out.stdout
    assert str(r1.ifindex("dn0")) == out.stdout.split(":")[0]


def test_routers_forward_hosts_keep_defaults(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory("lan.toml")
    r1 = lab.node("r1")
    assert r1.sysctl("net.ipv4.ip_forward") == "1"
    assert r1.sysctl("net.ipv4.conf.all.rp_filter") == "0"
    assert r1.sysctl("net.ipv4.conf.up0.rp_filter") == "0"
    assert lab.node("h1").sysctl("net.ipv4.ip_forward") == "0"
    for node in lab.nodes:
        assert node.sysctl("net.ipv6.conf.all.disable_ipv6") == "1"
    assert r1.sysctl("net.ipv4.conf.all.force_igmp_version", 2) == "2"
    assert r1.sysctl("net.ipv4.conf.all.force_igmp_version") == "2"


def test_lo_is_up_and_ipv6_absent(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory("basic.toml")
    out = lab.node("receiver").run(["ip", "-o", "addr", "show"], check=True).stdout
    assert "127.0.0.1/8" in out
    assert "inet6" not in out


def test_run_passes_stdin_and_exit_status(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory("basic.toml")
    out = lab.node("sender").run(["sh", "-c", "cat; exit 3"], input="through\n")
    assert (out.returncode, out.stdout) == (3, "through\n")
    with pytest.raises(subprocess.CalledProcessError):
        lab.node("sender").run(["false"], check=True)
    with pytest.raises(LabError, match="no such program"):
        lab.node("sender").run(["/nonexistent/program"])


def test_spawned_processes_run_inside_and_end_at_teardown(
    lab_factory: Callable[..., Lab],
) -> None:
    lab = lab_factory("basic.toml")
    proc = lab.node("r1").spawn(["sleep", "60"])
    assert Path(f"/proc/{proc.pid}/ns/net").stat().st_ino == Path(
        f"/run/netns/{lab.node('r1').netns}").stat().st_ino
    lab.teardown()
    assert proc.returncode is not None, "spawned process still running after teardown"
    lab.teardown()  # idempotent


def test_commands_from_the_topology_start_and_stop(tmp_path: Path) -> None:
    text = (default_netns_dir() / "basic.toml").read_text().replace(
        '[nodes.r1]\nkind = "router"',
        '[nodes.r1]\nkind = "router"\ncommands = ["sleep 60"]',
    )
    topo = tmp_path / "with-commands.toml"
    topo.write_text(text)
    with Lab.from_file(topo) as lab:
        ns_ino = Path(f"/run/netns/{lab.node('r1').netns}").stat().st_ino
        pids = [p.pid for p in lab._processes]
        assert len(pids) == 1
        assert Path(f"/proc/{pids[0]}/ns/net").stat().st_ino == ns_ino
    assert not Path(f"/proc/{pids[0]}").exists() or "Z" in Path(
        f"/proc/{pids[0]}/stat").read_text().rsplit(")", 1)[1][:3]


def test_enter_moves_only_this_thread_and_returns(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory("basic.toml")
    before = Path("/proc/thread-self/ns/net").stat().st_ino
    with lab.node("receiver").enter():
        inside = Path("/proc/thread-self/ns/net").stat().st_ino
        assert {name for _, name in socket.if_nameindex()} == {"lo", "eth0"}
    assert inside != before
    assert Path("/proc/thread-self/ns/net").stat().st_ino == before


def test_two_labs_at_once_get_their_own_namespaces(lab_factory: Callable[..., Lab]) -> None:
    a = lab_factory("basic.toml")
    b = lab_factory("basic.toml")
    assert a.name != b.name
    assert not set(a.namespaces) & set(b.namespaces)
    assert udp_exchange(a, "sender", "receiver", "192.0.2.2")[0]
    assert udp_exchange(b, "sender", "receiver", "192.0.2.2")[0]


def test_same_name_twice_is_refused_and_leaves_the_first(
    lab_factory: Callable[..., Lab],
) -> None:
    name = f"t{time.monotonic_ns() % 10**9}"
    first = lab_factory("basic.toml", name=name)
    with pytest.raises(LabError, match="already up"):
        lab_factory("basic.toml", name=name)
    assert set(first.namespaces) <= netns_list()


def test_failure_halfway_removes_what_was_made(tmp_path: Path) -> None:
    # The file is valid, but the sysctl does not exist: the build fails after every
    # namespace, link and address has been made.
    text = (default_netns_dir() / "lan.toml").read_text().replace(
        '[nodes.r1]\nkind = "router"',
        '[nodes.r1]\nkind = "router"\nsysctls = { "net.ipv4.conf.nosuch0.rp_filter" = 0 }',
    )
    topo = tmp_path / "fails-late.toml"
    topo.write_text(text)
    lab = Lab.from_file(topo)
    before = netns_list()
    links_before = host_links()
    with pytest.raises(LabError, match=r"net\.ipv4\.conf\.nosuch0\.rp_filter"):
        lab.start()
    assert lab.record is None
    assert not any(n.startswith(f"{lab.prefix}{lab.name}-") for n in netns_list())
    assert netns_list() - before == set()
    assert host_links() == links_before
    with pytest.raises(LabError, match="not running"):
        lab.node("r1")


def test_unknown_node_or_interface_names_what_exists(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory("basic.toml")
    with pytest.raises(LabError, match="sender, r1, receiver"):
        lab.node("r9")
    with pytest.raises(LabError, match="eth0"):
        lab.node("receiver").ifindex("dn7")
    with pytest.raises(LabError, match="net"):
        lab.node("r1").sysctl("kernel.hostname", "x")


def test_the_readme_example_builds(tmp_path: Path) -> None:
    readme = (default_netns_dir() / "README.md").read_text()
    topo = tmp_path / "example.toml"
    topo.write_text(readme.split("```toml\n", 1)[1].split("```", 1)[0])
    with Lab.from_file(topo) as lab:
        r1 = lab.node("r1")
        assert r1.sysctl("net.ipv4.conf.all.force_igmp_version") == "2"
        assert r1.sysctl("net.ipv4.icmp_echo_ignore_broadcasts") == "0"
        route = r1.run(["ip", "-4", "route", "show", "203.0.113.0/24"], check=True).stdout
        assert "via 192.0.2.2 dev dn0" in route
        assert len(lab._processes) == 2
        assert all(p.poll() is None for p in lab._processes)


@pytest.mark.parametrize("snooping", [False, True])
def test_lan_igmp_snooping_option(tmp_path: Path, snooping: bool) -> None:
    text = (default_netns_dir() / "lan.toml").read_text().replace(
        "igmp_snooping = false", f"igmp_snooping = {str(snooping).lower()}")
    topo = tmp_path / "snoop.toml"
    topo.write_text(text)
    with Lab.from_file(topo) as lab:
        ns = lab.record.namespaces["lan0"] if lab.record else ""
        out = subprocess.run(["ip", "netns", "exec", ns, "ip", "-d", "link", "show", "lan0"],
                             capture_output=True, text=True, check=True).stdout
        assert f"mcast_snooping {int(snooping)}" in out
        assert "stp_state 0" in out and "forward_delay 0" in out


def test_multicast_crosses_the_lan(lab_factory: Callable[..., Lab]) -> None:
    lab = lab_factory("lan.toml")
    group = "239.1.2.3"
    with member(lab, "h2", group) as h2, member(lab, "h3", group) as h3:
        (sent,) = send(lab, group, "to the group", 1, node="h1", ttl=1)
        for rx in (h2, h3):
            rx.settimeout(2.0)
            data, (src, _) = rx.recvfrom(100)
            assert (data, src) == (sent, "192.0.2.11")


def big_lan(hosts: int) -> str:
    nodes = "".join(f'[nodes.h{i}]\nkind = "host"\n' for i in range(hosts))
    members = ",\n".join(f'  {{ node = "h{i}", iface = "eth0", address = "192.0.2.{i + 1}/24" }}'
                         for i in range(hosts))
    return f"{nodes}\n[lans.lan0]\nmembers = [\n{members}\n]\n"


INTERRUPTED_UP = """
import sys, time
import pyroute2
from mrouter.lab import Lab
lab = Lab.from_file(sys.argv[1])
print("starting", flush=True)
with lab:
    print("up", flush=True)
    time.sleep(30)
"""


def test_ctrl_c_during_up_removes_what_was_made(tmp_path: Path) -> None:
    topo = tmp_path / "big.toml"
    topo.write_text(big_lan(60))
    prefix = f"mrint{time.monotonic_ns() % 10**6}-"
    env = {**os.environ, "MROUTER_LAB_PREFIX": prefix, "MROUTER_LAB_DIR": str(tmp_path / "labs")}
    proc = subprocess.Popen([sys.executable, "-c", INTERRUPTED_UP, str(topo)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "starting\n"
        deadline = time.monotonic() + 10
        while not any(n.startswith(prefix) for n in netns_list()):
            assert time.monotonic() < deadline, "the lab never started"
            time.sleep(0.005)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert "up" not in out, "the interrupt came too late to test an interrupted build"
    assert "KeyboardInterrupt" in err
    assert not [n for n in netns_list() if n.startswith(prefix)]
    assert not list(tmp_path.glob("labs/*.json"))
