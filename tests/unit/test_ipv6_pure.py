"""The pure parts of IPv6 support: GROUP:PORT in brackets, sources of both families,
/proc/net/igmp6 and mcfilter6 parsing, the family key of the statistics, and topology
files with IPv6 addresses and routes (no namespaces, no packets)."""

from __future__ import annotations

import argparse
from ipaddress import IPv4Address, IPv6Address, IPv6Interface, IPv6Network

import pytest

from mrouter.cli.sockets import group_port, source_address
from mrouter.errors import McastError, TopologyError
from mrouter.lab.topology import (
    NAMESPACE_SYSCTLS,
    default_netns_dir,
    load_topology,
    namespace_sysctls,
    parse_topology,
    router_sysctls,
)
from mrouter.sockets import mcast6
from mrouter.traffic.payload import Arrival, GroupStats, Payload


def test_group_port_parses_the_bracket_form_and_compresses() -> None:
    assert group_port("[ff15::1]:5000") == (IPv6Address("ff15::1"), 5000)
    assert group_port("[FF15:0:0::0001]:5001") == (IPv6Address("ff15::1"), 5001)
    assert str(group_port("[ff15:0000::0001]:1")[0]) == "ff15::1"
    for bad in ("ff15::1:5000", "[ff15::1]", "[ff15::1]:0", "[ff15::1:5000", "ff15::1]:5"):
        with pytest.raises(argparse.ArgumentTypeError):
            group_port(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="not a multicast group"):
        group_port("[2001:db8::1]:5000")


def test_sources_of_both_families() -> None:
    assert source_address("2001:db8:1::2") == IPv6Address("2001:db8:1::2")
    assert source_address("192.0.2.1") == IPv4Address("192.0.2.1")
    for bad in ("ff15::1", "::", "239.1.1.1"):
        with pytest.raises(argparse.ArgumentTypeError, match="not a unicast address"):
            source_address(bad)


def test_group_and_hop_checks() -> None:
    assert mcast6.is_link_scope(IPv6Address("ff02::1:3"))
    assert mcast6.is_link_scope(IPv6Address("ff01::1"))
    assert not mcast6.is_link_scope(IPv6Address("ff15::1"))
    assert not mcast6.is_link_scope(IPv6Address("ff05::2"))
    assert mcast6.check_hops(-1) == -1 and mcast6.check_hops(255) == 255
    for bad in (256, -2, True):
        with pytest.raises(McastError, match=r"IPV6_MULTICAST_HOPS takes 0\.\.255"):
            mcast6.check_hops(bad)  # type: ignore[arg-type]
    with pytest.raises(McastError, match="IPv6 groups are in ff00::/8"):
        mcast6.as_group("2001:db8::1")


def test_group_source_req_has_the_kernel_layout() -> None:
    raw = mcast6.group_source_req(7, IPv6Address("ff15::1"), IPv6Address("2001:db8::2"))
    assert len(raw) == 264  # x86-64 sizeof(struct group_source_req)
    assert raw[:4] == (7).to_bytes(4, "little") and raw[4:8] == bytes(4)
    assert raw[8:10] == (10).to_bytes(2, "little")  # AF_INET6
    assert raw[16:32] == IPv6Address("ff15::1").packed
    assert raw[136 + 8:136 + 24] == IPv6Address("2001:db8::2").packed


IGMP6 = """\
1    lo              ff020000000000000000000000000001     1 0000000C 0
2    eth0            ff150000000000000000000000060001     2 00000005 37
2    eth0            ff150000000000000000000000060002     1 00000006 0
"""
MCFILTER6 = """\
Idx Device                Multicast Address                   Source Address    INC    EXC
  2   eth0 ff150000000000000000000000060002 20010db8000100000000000000000002      1      0
"""


def test_parse_igmp6_and_mcfilter6() -> None:
    table = mcast6.parse_igmp6(IGMP6, clock_ticks=100)
    assert [(t.ifindex, t.name, t.family.value) for t in table] == [
        (1, "lo", "ipv6"), (2, "eth0", "ipv6")]
    g1, g2 = table[1].groups
    assert (g1.group, g1.users, g1.report_pending, g1.report_in, g1.reporter) == (
        IPv6Address("ff15::6:1"), 2, True, 0.37, False)
    assert (g2.report_pending, g2.reporter) == (False, True)
    filters = mcast6.parse_mcfilter6(MCFILTER6)
    (only,) = filters[(2, IPv6Address("ff15::6:2"))]
    assert (only.source, only.include, only.exclude) == (IPv6Address("2001:db8:1::2"), 1, 0)
    assert table[1].header_json() == {"family": "ipv6", "ifindex": 2, "iface": "eth0",
                                      "mld_version": None}


def test_stats_summary_says_the_family() -> None:
    six = GroupStats(group=IPv6Address("ff15::1"), port=5000)
    six.add(Arrival(IPv6Address("2001:db8::2"), 10, 5, Payload(1, 0, 5)), 64)
    s = six.summary()
    assert (s["family"], s["group"], s["ttl_min"], s["sources"]) == (
        "ipv6", "ff15::1", 5, ["2001:db8::2"])
    assert GroupStats(group=IPv4Address("239.1.1.1"), port=1).summary()["family"] == "ipv4"


R_DN0 = ('  { node = "r", iface = "dn0", address = "192.0.2.1/24", '
         'address6 = ["2001:db8:2::1/64", "2001:db8:3::1/64"] },')
DUAL = """\
[nodes.a]
kind = "host"
default_route = "192.0.2.1"
default_route6 = "2001:db8:2::1"

[nodes.r]
kind = "router"
routes = [
  { to = "2001:db8:9::/64", via = "2001:db8:2::2" },
  { to = "default", via = "2001:db8:2::2" },
]

[[links]]
endpoints = [
  { node = "a", iface = "eth0", address = "192.0.2.2/24", address6 = "2001:db8:2::2/64" },
""" + R_DN0 + """
]
"""


def test_topology_takes_ipv6_addresses_and_routes() -> None:
    topo = parse_topology(DUAL)
    a, r = topo.links[0].a, topo.links[0].b
    assert a.address6 == (IPv6Interface("2001:db8:2::2/64"),)
    assert r.address6 == (IPv6Interface("2001:db8:2::1/64"), IPv6Interface("2001:db8:3::1/64"))
    assert [(str(x.to), str(x.via)) for x in topo.node("a").routes] == [
        ("0.0.0.0/0", "192.0.2.1"), ("::/0", "2001:db8:2::1")]
    assert [(x.to, str(x.via)) for x in topo.node("r").routes] == [
        (IPv6Network("2001:db8:9::/64"), "2001:db8:2::2"), (IPv6Network("::/0"), "2001:db8:2::2")]
    assert topo.has_ipv6
    assert ("net.ipv6.conf.all.forwarding", "1") in router_sysctls(topo, topo.node("r"))
    assert router_sysctls(topo, topo.node("a")) == []
    assert namespace_sysctls(topo, bridge=False) == ()
    assert namespace_sysctls(topo, bridge=True) == NAMESPACE_SYSCTLS


def test_an_ipv4_only_lab_keeps_ipv6_off_and_no_ipv6_forwarding() -> None:
    topo = load_topology(default_netns_dir() / "basic.toml")
    assert not topo.has_ipv6
    assert namespace_sysctls(topo, bridge=False) == NAMESPACE_SYSCTLS
    assert all("ipv6" not in k for k, _ in router_sysctls(topo, topo.node("r1")))


def test_dual_stack_toml_has_both_families_on_every_link() -> None:
    topo = load_topology(default_netns_dir() / "dual-stack.toml")
    assert {n.name for n in topo.nodes} == {"sender", "r1", "h1", "h2", "h3"}
    assert [m.node for m in topo.lans[0].members] == ["r1", "h1", "h2", "h3"]
    for e in topo.endpoints():
        assert e.address is not None and e.address6, e.where
        assert all(a.ip in IPv6Network("2001:db8::/32") for a in e.address6)
    for host in ("sender", "h1", "h2", "h3"):
        assert {r.to.version for r in topo.node(host).routes} == {4, 6}


@pytest.mark.parametrize(("change", "message"), [
    (('address6 = "2001:db8:2::2/64"', 'address6 = "2001:db8:2::2"'),
     'links[0].endpoints[0].address6: address \'2001:db8:2::2\' has no prefix length'),
    (('address6 = "2001:db8:2::2/64"', 'address6 = "fe80::2/64"'),
     "it is link-local (the kernel makes that one)"),
    (('address6 = "2001:db8:2::2/64"', 'address6 = "ff15::2/64"'), "cannot be an interface"),
    (('address6 = "2001:db8:2::2/64"', 'address6 = "2001:db8:2::1/64"'),
     "duplicate address 2001:db8:2::1"),
    (('address6 = "2001:db8:2::2/64"', 'address6 = "2001:db8:2::2/129"'), "bad prefix length"),
    (('address = "192.0.2.2/24"', 'address = "2001:db8:7::2/64"'),
     'give it as address6 = "2001:db8:7::2/64"'),
    (('default_route6 = "2001:db8:2::1"', 'default_route6 = "2001:db8:5::1"'),
     "gateway 2001:db8:5::1 of route to ::/0 is not on any subnet"),
    (('default_route6 = "2001:db8:2::1"', 'default_route6 = "192.0.2.1"'),
     "'192.0.2.1' is not an IPv6 address"),
    (('to = "2001:db8:9::/64"', 'to = "192.0.9.0/24"'), "makes it an IPv6 route"),
])
def test_bad_ipv6_topology_lines_are_refused(change: tuple[str, str], message: str) -> None:
    text = DUAL.replace(*change, 1)
    assert text != DUAL
    with pytest.raises(TopologyError) as info:
        parse_topology(text, source="t.toml")
    assert message in str(info.value)


def test_recv_sources_apply_to_the_groups_of_their_family() -> None:
    from mrouter.cli.sockets import _check_families

    g4, g6 = (IPv4Address("232.1.1.1"), 5000), (IPv6Address("ff35::1"), 5000)
    s4, s6 = IPv4Address("192.0.2.11"), IPv6Address("2001:db8:2::11")
    _check_families([g4, g6], [s4, s6])
    _check_families([g4, g6], [])
    with pytest.raises(McastError, match="no IPv6 source for the IPv6 group ff35::1"):
        _check_families([g4, g6], [s4])
    with pytest.raises(McastError, match="source 2001:db8:2::11 is IPv6 but no group is"):
        _check_families([g4], [s4, s6])
