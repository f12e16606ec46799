"""The IPv6 multicast socket API (mrouter.sockets.mcast6) with real packets in a lab.

dual-stack.toml: sender eth0 2001:db8:1::2 -- up0 ::1 r1 dn0 2001:db8:2::1 -- LAN lan0
with h1 2001:db8:2::11, h2 ::12, h3 ::13 (and IPv4 beside). No routing daemon runs, so
multicast crosses one link only. Groups from ff15::/16.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from ipaddress import IPv6Address
from typing import Any

import helpers
import pytest
from helpers import collect, wait_for

from mrouter.errors import McastError
from mrouter.sockets import mcast6
from mrouter.sockets.mcast import GroupMembership, McastSyscallError
from mrouter.sockets.mcast6 import Mcast6Socket

pytestmark = pytest.mark.netns

PORT = 5600
G1, G2, G3 = (IPv6Address(f"ff15::6:{n}") for n in (1, 2, 3))
SENDER = IPv6Address("2001:db8:1::2")
H1, H2, H3 = (IPv6Address(f"2001:db8:2::{n}") for n in (11, 12, 13))


@pytest.fixture
def lab(lab_factory: Callable[[str], Any]) -> Any:
    return lab_factory("dual-stack.toml")


def open_receiver(node: Any, closing: ExitStack, port: int = PORT) -> Mcast6Socket:
    return helpers.open_receiver(node, closing, Mcast6Socket, port)


def send_from(node: Any, group: IPv6Address, *, iface: str | None = "eth0", hops: int = 1,
              loop: bool = True, count: int = 3, data: bytes = b"hello") -> None:
    with node.enter(), Mcast6Socket() as sock:
        sock.hops = hops
        sock.loop = loop
        if iface is not None:
            sock.set_interface(iface)
        for _ in range(count):
            sock.sendto(data, group, PORT)


def table6(node: Any) -> dict[tuple[str, IPv6Address], GroupMembership]:
    with node.enter():
        table = mcast6.memberships6()
    return {(ifm.name, g.group): g for ifm, g in mcast6.iter_memberships(table)}


def error_of(fn: Callable[[], object]) -> str:
    with pytest.raises(McastError) as info:
        fn()
    return str(info.value)


# --- options ------------------------------------------------------------------------------

def test_hop_limit_set_on_the_sender_is_what_the_receiver_reports(lab: Any,
                                                                   closing: ExitStack) -> None:
    h2 = open_receiver(lab.node("h2"), closing)
    with lab.node("h2").enter():
        h2.join(G1, "eth0")
    for hops in (7, 1, 255):
        send_from(lab.node("h1"), G1, hops=hops, count=2)
        got = collect(h2)[h2]
        assert [(d.ttl, d.source, d.destination) for d in got] == [(hops, H1, G1)] * 2
    with lab.node("h1").enter(), Mcast6Socket() as sock:
        assert sock.hops == 1  # the default: this link only
        sock.hops = 9
        assert sock.hops == 9
        sock.hops = -1  # back to the default
        assert sock.hops == 1


def test_loop_on_delivers_to_this_host_and_off_does_not(lab: Any, closing: ExitStack) -> None:
    h1 = lab.node("h1")
    local = open_receiver(h1, closing)
    with h1.enter():
        local.join(G1, "eth0")
    send_from(h1, G1, loop=True, count=2, data=b"on")
    assert [d.data for d in collect(local)[local]] == [b"on", b"on"]
    send_from(h1, G1, loop=False, count=2, data=b"off")
    assert collect(local)[local] == []
    with h1.enter(), Mcast6Socket() as sock:
        assert sock.loop is True
        sock.loop = False
        assert sock.loop is False


def test_multicast_if_picks_the_link(lab: Any, closing: ExitStack) -> None:
    sender, h1 = open_receiver(lab.node("sender"), closing), open_receiver(lab.node("h1"),
                                                                           closing)
    with lab.node("sender").enter():
        sender.join(G2, "eth0")
    with lab.node("h1").enter():
        h1.join(G2, "eth0")
    r1 = lab.node("r1")
    send_from(r1, G2, iface="up0", data=b"up")
    got = collect(sender, h1)
    assert [d.data for d in got[sender]] == [b"up"] * 3 and got[h1] == []
    send_from(r1, G2, iface="dn0", data=b"dn")
    got = collect(sender, h1)
    assert got[sender] == [] and [d.data for d in got[h1]] == [b"dn"] * 3
    with r1.enter(), Mcast6Socket() as sock:
        assert sock.interface.is_default
        out = sock.set_interface("dn0")
        assert (out.ifindex, out.name) == (r1.ifindex("dn0"), "dn0")
        assert sock.interface.ifindex == r1.ifindex("dn0")  # the kernel reports it back


def test_ssm_receiver_gets_only_its_source_while_two_send(lab: Any, closing: ExitStack) -> None:
    h3 = open_receiver(lab.node("h3"), closing)
    with lab.node("h3").enter():
        h3.join_source(G3, H1, "eth0")
        assert [m.describe() for m in h3.memberships] == [f"{G3} from {H1} on eth0"]
    send_from(lab.node("h1"), G3, data=b"h1")
    send_from(lab.node("h2"), G3, data=b"h2")
    got = collect(h3)[h3]
    assert {(d.source, d.data) for d in got} == {(H1, b"h1")} and len(got) == 3
    with lab.node("h3").enter():
        h3.join_source(G3, H2, "eth0")  # a second source: both get through now
    send_from(lab.node("h2"), G3, data=b"h2")
    assert {d.source for d in collect(h3)[h3]} == {H2}


def test_block_source_on_an_any_source_membership(lab: Any, closing: ExitStack) -> None:
    h3 = open_receiver(lab.node("h3"), closing)
    with lab.node("h3").enter():
        h3.join(G1, "eth0")
        h3.block_source(G1, H2, "eth0")
    send_from(lab.node("h1"), G1, data=b"h1")
    send_from(lab.node("h2"), G1, data=b"h2")
    assert {d.source for d in collect(h3)[h3]} == {H1}
    with lab.node("h3").enter():
        h3.unblock_source(G1, H2, "eth0")
    send_from(lab.node("h2"), G1, data=b"h2")
    assert {d.source for d in collect(h3)[h3]} == {H2}


def test_a_join_without_an_interface_uses_the_route_to_the_group(lab: Any,
                                                                 closing: ExitStack) -> None:
    h1 = lab.node("h1")
    sock = open_receiver(h1, closing)
    with h1.enter():
        m = sock.join(G2)
    assert (m.ifname, m.ifindex) == ("eth0", h1.ifindex("eth0"))
    assert table6(h1)[("eth0", G2)].users == 1
    send_from(lab.node("h2"), G2, data=b"routed")
    assert [d.data for d in collect(sock)[sock]] == [b"routed"] * 3


# --- the kernel's table ---------------------------------------------------------------------

def test_two_sockets_one_leaves_and_igmp6_still_lists_the_group_with_one_user(
        lab: Any, closing: ExitStack) -> None:
    h1 = lab.node("h1")
    a, b = open_receiver(h1, closing), open_receiver(h1, closing)
    with h1.enter():
        a.join(G1, "eth0")
        b.join(G1, "eth0")
    assert table6(h1)[("eth0", G1)].users == 2
    with h1.enter():
        a.leave(G1, "eth0")
    assert table6(h1)[("eth0", G1)].users == 1
    with h1.enter(), open("/proc/thread-self/net/igmp6") as f:
        raw = f.read()
    line = next(x for x in raw.splitlines() if "ff150000000000000000000000060001" in x)
    assert line.split()[1:4] == ["eth0", "ff150000000000000000000000060001", "1"]
    b.close()
    wait_for(lambda: ("eth0", G1) not in table6(h1))


def test_memberships6_lists_sources_of_a_source_specific_join(lab: Any,
                                                               closing: ExitStack) -> None:
    h1 = lab.node("h1")
    sock = open_receiver(h1, closing)
    with h1.enter():
        sock.join_source(G2, SENDER, "eth0")  # the most recent join: mcfilter6 shows it
    entry = table6(h1)[("eth0", G2)]
    assert [(s.source, s.include, s.exclude) for s in entry.sources] == [(SENDER, 1, 0)]


def test_interfaces_list_ipv6_addresses_with_link_local(lab: Any) -> None:
    with lab.node("h1").enter():
        found = {i.name: i for i in mcast6.interfaces()}
    eth0 = found["eth0"]
    assert IPv6Address("2001:db8:2::11") in [a.ip for a in eth0.addresses6]
    assert eth0.link_local6 is not None and eth0.link_local6.is_link_local
    assert eth0.tentative6 == ()  # the lab is up only after DAD
    assert str(eth0.addresses[0]) == "192.0.2.11/24"


# --- each error message of the API -----------------------------------------------------------

def test_error_link_scope_group_without_an_interface(lab: Any, closing: ExitStack) -> None:
    sock = open_receiver(lab.node("h1"), closing)
    with lab.node("h1").enter():
        msg = error_of(lambda: sock.join("ff02::1:3"))
    assert msg == ("cannot join ff02::1:3: ff02::1:3 is a link-local (ff02::/16) group, "
                   "which exists only on one link; name the interface (--iface)")
    with lab.node("h1").enter():
        sock.join("ff02::1:3", "eth0")  # with one it is fine


def test_error_link_scope_send_without_an_interface(lab: Any) -> None:
    with lab.node("h1").enter(), Mcast6Socket() as sock:
        msg = error_of(lambda: sock.sendto(b"x", "ff02::1", PORT))
        assert msg == ("cannot send to [ff02::1]:5600: ff02::1 is a link-scope group, which "
                       "exists only on one link; name the interface (--iface, "
                       "IPV6_MULTICAST_IF)")
        sock.set_interface("eth0")
        assert sock.sendto(b"x", "ff02::1", PORT) == 1


def test_error_not_a_multicast_group(lab: Any, closing: ExitStack) -> None:
    sock = open_receiver(lab.node("h1"), closing)
    msg = error_of(lambda: sock.join("2001:db8:2::12", "eth0"))
    assert msg.startswith("2001:db8:2::12 is not a multicast group address: IPv6 groups are "
                          "in ff00::/8")


def test_error_unknown_interface(lab: Any, closing: ExitStack) -> None:
    sock = open_receiver(lab.node("h1"), closing)
    with lab.node("h1").enter():
        msg = error_of(lambda: sock.join(G1, "eth9"))
    assert msg == ("unknown interface 'eth9': this network namespace has lo, eth0; "
                   "see `mrouter ifaces`")


def test_error_double_join(lab: Any, closing: ExitStack) -> None:
    sock = open_receiver(lab.node("h1"), closing)
    with lab.node("h1").enter():
        sock.join(G1, "eth0")
        with pytest.raises(McastSyscallError) as info:
            sock.join(G1, "eth0")
    assert str(info.value) == (
        f"cannot join {G1} on eth0: this socket has already joined it (it holds {G1} on "
        f"eth0; a second IPV6_JOIN_GROUP of one group on one interface is refused); "
        f"leave it first, or join from another socket")


def test_error_leave_of_a_group_not_joined(lab: Any, closing: ExitStack) -> None:
    sock = open_receiver(lab.node("h1"), closing)
    with lab.node("h1").enter():
        msg = error_of(lambda: sock.leave(G2, "eth0"))
    assert msg == (f"cannot leave {G2} on eth0: this socket has not joined it (it holds no "
                   f"membership of {G2}); IPV6_LEAVE_GROUP must name the group and interface "
                   f"of an earlier join on the same socket")


def test_error_msf_limit_names_mld_max_msf(lab: Any, closing: ExitStack) -> None:
    sock = open_receiver(lab.node("h1"), closing)
    with open("/proc/sys/net/ipv6/mld_max_msf") as f:  # host-wide: read only, never set
        limit = int(f.read())
    with lab.node("h1").enter():
        for n in range(limit):
            sock.join_source(G1, IPv6Address(f"2001:db8:9::{n + 1:x}"), "eth0")
        msg = error_of(lambda: sock.join_source(G1, "2001:db8:9:1::1", "eth0"))
    assert msg.startswith(f"cannot join {G1} from source 2001:db8:9:1::1 on eth0: this socket "
                          f"already filters {limit} sources of {G1} on eth0, the limit set by "
                          f"net.ipv6.mld_max_msf (")
    assert "spread the sources over more sockets" in msg


def test_error_no_ipv6_on_the_interface(lab: Any, closing: ExitStack) -> None:
    h3 = lab.node("h3")
    h3.sysctl("net.ipv6.conf.eth0.disable_ipv6", "1")
    sock = open_receiver(h3, closing)
    with h3.enter():
        wait_for(lambda: not {i.name: i for i in mcast6.interfaces()}["eth0"].addresses6)
        msg = error_of(lambda: sock.join(G1, "eth0"))
        msg_if = error_of(lambda: sock.set_interface("eth0"))
    assert msg == (f"cannot join {G1} on eth0: eth0 has no IPv6 address, IPv6 is off there "
                   f"(net.ipv6.conf.eth0.disable_ipv6=1); turn it on with sysctl -w "
                   f"net.ipv6.conf.eth0.disable_ipv6=0, or use another interface")
    assert msg_if.startswith("cannot send multicast out of eth0: eth0 has no IPv6 address")


def test_error_hop_limit_out_of_range(lab: Any) -> None:
    with lab.node("h1").enter(), Mcast6Socket() as sock:
        msg = error_of(lambda: setattr(sock, "hops", 256))
    assert msg.startswith("hop limit 256 is out of range: IPV6_MULTICAST_HOPS takes 0..255")


def test_errors_of_source_specific_calls(lab: Any, closing: ExitStack) -> None:
    sock = open_receiver(lab.node("h1"), closing)
    with lab.node("h1").enter():
        sock.join_source(G1, H2, "eth0")
        again = error_of(lambda: sock.join_source(G1, H2, "eth0"))
        block = error_of(lambda: sock.block_source(G1, H3, "eth0"))
        other = error_of(lambda: sock.leave_source(G1, H3, "eth0"))
        none = error_of(lambda: sock.leave_source(G2, H3, "eth0"))
        sock.join(G3, "eth0")
        unblock = error_of(lambda: sock.unblock_source(G3, H3, "eth0"))
    assert again == (f"cannot join {G1} from source {H2} on eth0: this socket already "
                     f"receives {H2} in {G1} on eth0; nothing to do")
    assert block.startswith(f"cannot block source {H3} of {G1} on eth0: blocking a source "
                            f"needs an any-source membership of {G1} on eth0 on this socket "
                            f"(it holds {G1} from {H2} on eth0)")
    assert other == (f"cannot leave source {H3} of {G1} on eth0: this socket has not joined "
                     f"{H3} in {G1} on eth0 (it holds {G1} from {H2} on eth0)")
    assert none == (f"cannot leave source {H3} of {G2} on eth0: this socket has no "
                    f"source-specific membership of {G2} on eth0 (it holds no membership "
                    f"of {G2})")
    assert unblock == (f"cannot unblock source {H3} of {G3} on eth0: {H3} is not blocked in "
                       f"{G3} on eth0 on this socket (it holds {G3} on eth0)")
