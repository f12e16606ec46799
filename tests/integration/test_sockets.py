"""The multicast socket API (mrouter.sockets.mcast) with real packets in namespace labs.

Each test does what the Multicast HOWTO's chapter 6 describes and asserts what a user
would observe: which datagrams arrive where, what the kernel's membership table says,
and the error message when the kernel refuses.

basic.toml: sender eth0 198.51.100.2 -- up0 198.51.100.1 r1 dn0 192.0.2.1 -- eth0 192.0.2.2
receiver. No routing daemon runs, so datagrams cross one link only.
"""

from __future__ import annotations

import array
import errno
import fcntl
import socket
import struct
import sys
from collections.abc import Callable
from contextlib import ExitStack
from ipaddress import IPv4Address
from typing import Any

import helpers
import pytest
from helpers import collect, wait_for

from mrouter.sockets import mcast
from mrouter.sockets.mcast import (
    Datagram,
    GroupMembership,
    McastError,
    McastSocket,
    McastSyscallError,
)

pytestmark = pytest.mark.netns

PORT = 5000
G1, G2, G3 = (IPv4Address(f"239.1.2.{n}") for n in (1, 2, 3))
SENDER = IPv4Address("198.51.100.2")
R1_UP = IPv4Address("198.51.100.1")
R1_DN = IPv4Address("192.0.2.1")
H1, H2 = IPv4Address("192.0.2.11"), IPv4Address("192.0.2.12")


@pytest.fixture
def basic(lab_factory: Callable[[str], Any]) -> Any:
    return lab_factory("basic.toml")


def open_receiver(node: Any, closing: ExitStack, port: int = PORT) -> McastSocket:
    return helpers.open_receiver(node, closing, McastSocket, port)


def send_from(node: Any, group: IPv4Address, *, iface: mcast.IfaceSpec = None, ttl: int = 1,
              loop: bool = True, count: int = 3, data: bytes = b"hello") -> None:
    with node.enter(), McastSocket() as sock:
        sock.ttl = ttl
        sock.loop = loop
        if iface is not None:
            sock.set_interface(iface)
        for _ in range(count):
            sock.sendto(data, group, PORT)


def kernel_table(node: Any) -> dict[tuple[str, IPv4Address], GroupMembership]:
    with node.enter():
        table = mcast.memberships()
    return {(ifm.name, g.group): g for ifm, g in mcast.iter_memberships(table)}


def groups_of(dgs: list[Datagram]) -> set[IPv4Address | None]:
    return {d.destination for d in dgs}


# --- interfaces -------------------------------------------------------------------------

SIOCGIFCONF, SIOCGIFFLAGS = 0x8912, 0x8913
IFREQ = 40  # sizeof(struct ifreq) on 64-bit Linux


def seed_view() -> dict[str, tuple[int, IPv4Address]]:
    """The HOWTO's view: SIOCGIFCONF (interfaces with an address) and SIOCGIFFLAGS."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        buf = array.array("B", bytes(IFREQ * 32))
        addr, _ = buf.buffer_info()
        ifc = fcntl.ioctl(s, SIOCGIFCONF, struct.pack("iL", len(buf), addr))
        size, _ = struct.unpack("iL", ifc)
        raw = buf.tobytes()[:size]
        view = {}
        for off in range(0, size, IFREQ):
            name = raw[off:off + 16].split(b"\0")[0]
            address = IPv4Address(raw[off + 20:off + 24])  # sockaddr_in.sin_addr
            flags_req = fcntl.ioctl(s, SIOCGIFFLAGS, struct.pack("16sH", name, 0) + bytes(22))
            (flags,) = struct.unpack_from("H", flags_req, 16)
            view[name.decode()] = (flags, address)
    return view


def test_interfaces_agree_with_the_seeds_ioctls(basic: Any) -> None:
    with basic.node("r1").enter():
        found = {i.name: i for i in mcast.interfaces()}
        ioctl_view = seed_view()
    assert set(found) == {"lo", "up0", "dn0"}
    assert found["up0"].address == R1_UP and str(found["dn0"].addresses[0]) == "192.0.2.1/24"
    assert found["dn0"].index == basic.node("r1").ifindex("dn0")
    assert found["lo"].is_loopback and not found["lo"].is_multicast
    assert found["dn0"].is_up and found["dn0"].is_multicast and not found["dn0"].is_loopback
    assert set(ioctl_view) == {"lo", "up0", "dn0"}  # SIOCGIFCONF lists those with an address
    for name, (flags, address) in ioctl_view.items():
        assert int(found[name].flags) & 0xFFFF == flags, name  # SIOCGIFFLAGS: low 16 bits
        assert found[name].address == address


# --- options ---------------------------------------------------------------------------

def test_loop_decides_whether_the_sending_host_hears_itself(basic: Any, closing: ExitStack
                                                            ) -> None:
    r1, receiver = basic.node("r1"), basic.node("receiver")
    local, far = open_receiver(r1, closing), open_receiver(receiver, closing)
    with r1.enter():
        local.join(G1, "dn0")
    with receiver.enter():
        far.join(G1, "eth0")

    send_from(r1, G1, iface="dn0", loop=True)
    got = collect(local, far)
    assert len(got[local]) == 3 and len(got[far]) == 3
    assert {d.source for d in got[local]} == {R1_DN}

    send_from(r1, G1, iface="dn0", loop=False)
    got = collect(local, far)
    assert got[local] == []  # no copy for this host's own sockets
    assert len(got[far]) == 3  # the link still gets them


def test_multicast_all_off_keeps_out_groups_only_other_sockets_joined(
        basic: Any, closing: ExitStack) -> None:
    r1, receiver = basic.node("r1"), basic.node("receiver")
    joiner = open_receiver(receiver, closing)
    with receiver.enter():
        joiner.join(G1, "eth0")
        bystander = closing.enter_context(McastSocket())  # same port, joins nothing
        bystander.enable_receive_info()
        bystander.bind(PORT)
    bystander.sock.setblocking(False)
    assert bystander.multicast_all is True  # Linux's default

    send_from(r1, G1, iface="dn0", count=2)
    got = collect(joiner, bystander)
    assert len(got[joiner]) == 2 and len(got[bystander]) == 2  # the host's join reaches it

    bystander.multicast_all = False
    assert bystander.multicast_all is False
    send_from(r1, G1, iface="dn0", count=2)
    got = collect(joiner, bystander)
    assert len(got[joiner]) == 2 and got[bystander] == []


def test_multicast_if_decides_the_link_datagrams_leave_by(basic: Any, closing: ExitStack
                                                          ) -> None:
    r1 = basic.node("r1")
    on_up = open_receiver(basic.node("sender"), closing)
    on_dn = open_receiver(basic.node("receiver"), closing)
    for node, sock in ((basic.node("sender"), on_up), (basic.node("receiver"), on_dn)):
        with node.enter():
            sock.join(G1, "eth0")

    with r1.enter():
        out = closing.enter_context(McastSocket())
        out.loop = False
        assert out.interface.is_default
        chosen = out.set_interface("up0")  # by name: ip_mreqn with the ifindex
    assert (chosen.address, chosen.ifindex, chosen.name) == (
        IPv4Address(0), r1.ifindex("up0"), "up0")  # the kernel reports no index: remembered
    out.sendto(b"a", G1, PORT)
    got = collect(on_up, on_dn)
    assert [d.source for d in got[on_up]] == [R1_UP] and got[on_dn] == []

    with r1.enter():
        chosen = out.set_interface(R1_DN)  # by address: the HOWTO's struct in_addr
    assert chosen.address == R1_DN and chosen.ifindex is None
    out.sendto(b"b", G1, PORT)
    got = collect(on_up, on_dn)
    assert got[on_up] == [] and [d.source for d in got[on_dn]] == [R1_DN]

    with r1.enter():
        out.set_interface(r1.ifindex("up0"))  # by index
        out.sendto(b"c", G1, PORT)
        assert [d.source for d in collect(on_up, on_dn)[on_up]] == [R1_UP]

        assert out.set_interface(None).is_default  # back to INADDR_ANY: the route decides
        with pytest.raises(McastError, match=r"cannot send to 239\.1\.2\.1:5000: no route "
                                             r"to 239\.1\.2\.1.*--iface"):
            out.sendto(b"d", G1, PORT)  # r1 has no route to the group
    r1.run(["ip", "route", "add", "224.0.0.0/4", "dev", "dn0"], check=True)
    out.sendto(b"e", G1, PORT)
    got = collect(on_up, on_dn)
    assert got[on_up] == [] and len(got[on_dn]) == 1


# --- memberships ------------------------------------------------------------------------

def test_one_socket_joins_and_leaves_several_groups(basic: Any, closing: ExitStack) -> None:
    r1, receiver = basic.node("r1"), basic.node("receiver")
    sock = open_receiver(receiver, closing)
    with receiver.enter():
        for g in (G1, G2, G3):
            sock.join(g, "eth0")
    table = kernel_table(receiver)
    assert all(table[("eth0", g)].users == 1 for g in (G1, G2, G3))
    assert [m.group for m in sock.memberships] == [G3, G2, G1]

    for g in (G1, G2, G3):
        send_from(r1, g, iface="dn0", count=1)
    assert groups_of(collect(sock)[sock]) == {G1, G2, G3}

    with receiver.enter():
        sock.leave(G2, "eth0")
    table = kernel_table(receiver)
    assert ("eth0", G2) not in table and ("eth0", G1) in table and ("eth0", G3) in table
    for g in (G1, G2, G3):
        send_from(r1, g, iface="dn0", count=1)
    assert groups_of(collect(sock)[sock]) == {G1, G3}


def test_one_group_on_two_interfaces_of_one_socket(basic: Any, closing: ExitStack) -> None:
    r1 = basic.node("r1")
    sock = open_receiver(r1, closing)
    with r1.enter():
        sock.join(G1, "up0")
        sock.join(G1, "dn0")
    table = kernel_table(r1)
    assert table[("up0", G1)].users == 1 and table[("dn0", G1)].users == 1

    send_from(basic.node("sender"), G1, count=1, data=b"from the sender")
    send_from(basic.node("receiver"), G1, count=1, data=b"from the receiver")
    got = collect(sock)[sock]
    assert {(d.source, d.ifindex) for d in got} == {
        (SENDER, r1.ifindex("up0")), (IPv4Address("192.0.2.2"), r1.ifindex("dn0"))}

    # No interface named: the HOWTO says "the first matching group is dropped"; Linux
    # resolves INADDR_ANY through the route to the group, as for a join.
    r1.run(["ip", "route", "add", "224.0.0.0/4", "dev", "up0"], check=True)
    with r1.enter():
        sock.leave(G1)
    table = kernel_table(r1)
    assert ("up0", G1) not in table and table[("dn0", G1)].users == 1
    assert [(m.group, m.ifname) for m in sock.memberships] == [(G1, "dn0")]


def test_a_group_stays_while_another_socket_holds_it(basic: Any, closing: ExitStack) -> None:
    r1, receiver = basic.node("r1"), basic.node("receiver")
    first, second = open_receiver(receiver, closing), open_receiver(receiver, closing)
    with receiver.enter():
        first.join(G1, "eth0")
        second.join(G1, "eth0")
    assert kernel_table(receiver)[("eth0", G1)].users == 2

    with receiver.enter():
        first.leave(G1, "eth0")
    assert kernel_table(receiver)[("eth0", G1)].users == 1  # the host is still a member
    send_from(r1, G1, iface="dn0", count=2)
    got = collect(first, second)
    assert got[first] == [] and len(got[second]) == 2

    second.close()
    assert ("eth0", G1) not in kernel_table(receiver)


def test_closing_a_socket_drops_all_its_memberships(basic: Any, closing: ExitStack) -> None:
    receiver = basic.node("receiver")
    sock = open_receiver(receiver, closing)
    with receiver.enter():
        sock.join(G1, "eth0")
        sock.join(G2, "eth0")
        sock.join_source(G3, SENDER, "eth0")
        sock.join(G1, "lo")
    table = kernel_table(receiver)
    assert {k for k in table if k[1] != IPv4Address("224.0.0.1")} == {
        ("eth0", G1), ("eth0", G2), ("eth0", G3), ("lo", G1)}
    assert [s.source for s in table[("eth0", G3)].sources] == [SENDER]

    sock.close()
    assert all(g == IPv4Address("224.0.0.1") for _, g in kernel_table(receiver))


def test_a_killed_process_leaves_its_groups(basic: Any) -> None:
    receiver = basic.node("receiver")
    proc = receiver.spawn([sys.executable, "-m", "mrouter", "recv", f"{G1}:{PORT}",
                           f"{G2}:{PORT}", "--iface", "eth0"])
    try:
        wait_for(lambda: {("eth0", G1), ("eth0", G2)} <= set(kernel_table(receiver)),
                 timeout=10.0)
    finally:
        proc.kill()
        proc.wait(timeout=10)
    assert not {("eth0", G1), ("eth0", G2)} & set(kernel_table(receiver))


# --- source-specific -------------------------------------------------------------------

def test_source_specific_join_and_block_pick_senders(lab_factory: Callable[[str], Any],
                                                     closing: ExitStack) -> None:
    lab = lab_factory("lan.toml")
    h3 = lab.node("h3")
    ssm = open_receiver(h3, closing)
    asm = open_receiver(h3, closing)
    blocking = open_receiver(h3, closing)
    with h3.enter():
        ssm.join_source(G1, H1, "eth0")
        asm.join(G1, "eth0")
        blocking.join(G1, "eth0")
        blocking.block_source(G1, H2, "eth0")
    sources = kernel_table(h3)[("eth0", G1)].sources
    assert {(s.source, s.include, s.exclude) for s in sources} == {(H1, 1, 0), (H2, 0, 1)}

    send_from(lab.node("h1"), G1, count=3)
    send_from(lab.node("h2"), G1, count=3)
    got = collect(ssm, asm, blocking)
    assert [d.source for d in got[ssm]] == [H1] * 3
    assert sorted(d.source for d in got[asm]) == [H1] * 3 + [H2] * 3
    assert [d.source for d in got[blocking]] == [H1] * 3

    with h3.enter():
        blocking.unblock_source(G1, H2, "eth0")
        ssm.join_source(G1, H2, "eth0")
        ssm.leave_source(G1, H1, "eth0")
    send_from(lab.node("h1"), G1, count=1)
    send_from(lab.node("h2"), G1, count=1)
    got = collect(ssm, blocking)
    assert [d.source for d in got[ssm]] == [H2]
    assert sorted(d.source for d in got[blocking]) == [H1, H2]

    with h3.enter():
        ssm.leave_source(G1, H2, "eth0")  # the last source: the socket leaves the group
    assert ssm.memberships == ()
    assert kernel_table(h3)[("eth0", G1)].users == 2


# --- errors ------------------------------------------------------------------------------

def test_join_past_igmp_max_memberships_names_the_sysctl(basic: Any, closing: ExitStack
                                                         ) -> None:
    receiver = basic.node("receiver")
    sock = open_receiver(receiver, closing)
    groups = [IPv4Address(f"239.1.1.{n}") for n in range(1, 22)]
    with receiver.enter():
        for g in groups[:20]:
            sock.join(g, "eth0")
        with pytest.raises(McastSyscallError) as exc:
            sock.join(groups[20], "eth0")
    assert exc.value.errno == errno.ENOBUFS
    assert str(exc.value) == (
        "cannot join 239.1.1.21 on eth0: this socket already holds 20 memberships, the limit "
        "set by net.ipv4.igmp_max_memberships (currently 20); raise it with sysctl -w "
        "net.ipv4.igmp_max_memberships=N or spread the groups over more sockets")

    receiver.sysctl("net.ipv4.igmp_max_memberships", "21")  # the fix the message gives
    with receiver.enter():
        sock.join(groups[20], "eth0")
    assert ("eth0", groups[20]) in kernel_table(receiver)


def test_source_filter_limit_names_igmp_max_msf(basic: Any, closing: ExitStack) -> None:
    receiver = basic.node("receiver")
    receiver.sysctl("net.ipv4.igmp_max_msf", "3")
    sock = open_receiver(receiver, closing)
    sources = [IPv4Address(f"198.51.100.{n}") for n in range(10, 14)]
    with receiver.enter():
        for s in sources[:3]:
            sock.join_source(G1, s, "eth0")
        with pytest.raises(McastSyscallError) as exc:
            sock.join_source(G1, sources[3], "eth0")
    assert exc.value.errno == errno.ENOBUFS
    assert str(exc.value) == (
        "cannot join 239.1.2.1 from source 198.51.100.13 on eth0: this socket already filters "
        "3 sources of 239.1.2.1 on eth0, the limit set by net.ipv4.igmp_max_msf (currently "
        "3); raise it with sysctl -w net.ipv4.igmp_max_msf=N or spread the sources over "
        "more sockets")


def test_each_mistake_gets_a_message_with_cause_and_fix(basic: Any, closing: ExitStack
                                                        ) -> None:
    receiver = basic.node("receiver")
    receiver.run(["ip", "link", "add", "bare0", "type", "veth", "peer", "name", "bare1"],
                 check=True)
    receiver.run(["ip", "link", "set", "bare0", "up"], check=True)
    sock = open_receiver(receiver, closing)
    with receiver.enter():
        with pytest.raises(McastError, match=r"^10\.1\.1\.1 is not a multicast group address"):
            sock.join("10.1.1.1", "eth0")
        with pytest.raises(McastError, match=r"^unknown interface 'eth9': this network "
                                             r"namespace has lo, eth0, bare.*mrouter ifaces"):
            sock.join(G1, "eth9")
        with pytest.raises(McastError, match=r"bare0 has no IPv4 address.*ip addr add "
                                             r"ADDRESS/LEN dev bare0"):
            sock.join_source(G1, SENDER, "bare0")
        sock.join(G1, "bare0")  # an any-source join names it by index: no address needed

        sock.join(G1, "eth0")
        with pytest.raises(McastSyscallError, match=r"^cannot join 239\.1\.2\.1 on eth0: "
                                                    r"this socket has already joined it") as e1:
            sock.join(G1, "eth0")
        assert e1.value.errno == errno.EADDRINUSE

        with pytest.raises(McastSyscallError, match=r"^cannot leave 239\.1\.2\.2 on eth0: this "
                                                    r"socket has not joined it \(it holds no "
                                                    r"membership of 239\.1\.2\.2\)") as e2:
            sock.leave(G2, "eth0")
        assert e2.value.errno == errno.EADDRNOTAVAIL

        with pytest.raises(McastSyscallError, match=r"blocking a source needs an any-source "
                                                    r"membership of 239\.1\.2\.2"):
            sock.block_source(G2, SENDER, "eth0")
        with pytest.raises(McastError, match=r"^TTL 256 is out of range: IP_MULTICAST_TTL "
                                             r"takes 0\.\.255"):
            sock.ttl = 256
    assert sock.ttl == 1


def test_not_permitted_says_which_privilege_is_missing(basic: Any) -> None:
    out = basic.node("receiver").run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-m",
         "mrouter", "recv", f"{G1}:80", "--timeout", "1"], timeout=30)
    assert out.returncode == 2
    assert out.stderr.strip() == (
        "mrouter recv: error: cannot bind UDP port 80: not permitted: ports below 1024 "
        "(net.ipv4.ip_unprivileged_port_start) need root or CAP_NET_BIND_SERVICE; run as "
        "root or use a port >= 1024")
