"""The IPv6 chain of `mrouter explain` (mrouter.diag.explain.diagnose), step by step.

Each test starts from an IPv6 router that forwards (S,G) from up0 to dn0 and breaks one
thing; the verdict for dn0 must name that one thing in IPv6's words (MIF, hop limit,
MLD listeners) and its fix. The family comes from the group's address."""

from __future__ import annotations

import dataclasses
from ipaddress import IPv4Address, IPv6Address
from typing import Any

import explain_facts
import pytest
from explain_facts import iface, verdicts

from mrouter.diag.explain import (
    IPV4,
    IPV6,
    EdgeView,
    Facts,
    Flow,
    Owner,
    Reason,
    Route,
    Verdict,
    diagnose,
    edge_notes,
    facts_to_dict,
    family_of,
    is_link_scope,
)
from mrouter.linux import netlink

S = IPv6Address("2001:db8:1::2")
G = IPv6Address("ff15::1")


def healthy(**changes: Any) -> Facts:
    return explain_facts.healthy(S, G, **changes)


def dn0(facts: Facts) -> Verdict:
    by_iface = verdicts(facts)
    ttls = {f.ttl for f in facts.flows}
    assert not ttls or f"hop limit {max(ttls)}" in by_iface["up0"].text
    return by_iface["dn0"]


def test_family_comes_from_the_group() -> None:
    assert family_of(G) is IPV6 and family_of(IPv4Address("239.1.1.1")) is IPV4
    assert healthy().family is IPV6


def test_healthy_is_forwarded_and_says_ipv6() -> None:
    v = dn0(healthy())
    assert v.forwarded and v.reason is Reason.FORWARDED and "10 packets" in v.text
    assert v.to_dict()["family"] == "ipv6"
    assert facts_to_dict(healthy())["family"] == "ipv6"


BASE = healthy()
CASES: list[tuple[str, Facts, Reason, str, str]] = [
    ("link down", healthy(interfaces=iface(BASE, "dn0", up=False)),
     Reason.LINK_DOWN, "dn0 is down", "ip link set dn0 up"),
    ("snooping bridge, no querier",
     healthy(interfaces=iface(BASE, "dn0", is_bridge=True, snooping=True)),
     Reason.SNOOPING_NO_QUERIER, "MLD snooping", "MLD querier"),
    ("no multicast routing", healthy(mc_forwarding=False, owner=Owner.NONE, routes=[]),
     Reason.NO_MROUTING, "net.ipv6.conf.all.mc_forwarding = 0: nobody holds MRT6_INIT",
     'families = ["ipv6"]'),
    ("sender hop limit 1", healthy(flows=[Flow("up0", S, 1, 5)]),
     Reason.SENDER_TTL, "with hop limit 1", "IPV6_MULTICAST_HOPS"),
    ("IPv6 disabled on the input", healthy(interfaces=iface(BASE, "up0", disabled=True)),
     Reason.IPV6_DISABLED, "IPv6 is disabled on up0",
     "net.ipv6.conf.up0.disable_ipv6=0"),
    ("IPv6 disabled on dn0", healthy(interfaces=iface(BASE, "dn0", disabled=True)),
     Reason.IPV6_DISABLED, "nothing IPv6 goes out", "net.ipv6.conf.dn0.disable_ipv6=0"),
    ("no MIF on the input", healthy(interfaces=iface(BASE, "up0", vif=None)),
     Reason.NO_VIF_INPUT, "not a MIF of the IPv6 multicast routing table", "add up0"),
    ("no MIF on dn0", healthy(interfaces=iface(BASE, "dn0", vif=None)),
     Reason.NO_VIF, "dn0 is not a MIF", "add dn0"),
    ("no route", healthy(routes=[]), Reason.NO_ROUTE, "no kernel route",
     "mrouter route add"),
    ("no route, other owner", healthy(routes=[], owner=Owner.OTHER),
     Reason.FOREIGN_OWNER, "pim6sd", "stop it"),
    ("unresolved", healthy(routes=[Route(S, G, None, {})]),
     Reason.UNRESOLVED, "nobody installed a route", "mrouter show routes"),
    ("route expects the flow on dn0",
     healthy(routes=[Route(S, G, "dn0", {"up0": 1}, wrong_if=42)]),
     Reason.RPF_MISMATCH, "expects it on dn0 but it arrives on up0 (42", "--from up0"),
    ("no listeners", healthy(routes=[Route(S, G, "up0", {})]), Reason.NO_MEMBERS,
     "no listeners of ff15::1 on dn0", "mrouter join --iface dn0 ff15::1"),
    ("link-scope group", healthy(group=IPv6Address("ff02::1:3")), Reason.LINK_SCOPE,
     "link-local scope", "ff15::1"),
]


@pytest.mark.parametrize(("facts", "reason", "text", "fix"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_one_broken_thing(facts: Facts, reason: Reason, text: str, fix: str) -> None:
    v = dn0(facts)
    assert not v.forwarded
    assert v.reason is reason
    assert text in v.text, v.text
    assert fix in v.fix, v.fix
    assert v.family == "ipv6"


def test_ipv6_has_no_rp_filter_step() -> None:
    """An rp_filter value (as IPv4's sysctl would give) never fails an IPv6 flow, and
    a missing route back is no reason either: ip6mr does no reverse-path check."""
    v = dn0(healthy(interfaces=iface(BASE, "up0", rp_filter=1), route_back=None))
    assert v.reason is Reason.FORWARDED


def test_ipv4_ignores_the_disabled_flag() -> None:
    s4, g4 = IPv4Address("198.51.100.2"), IPv4Address("239.1.1.1")
    facts = healthy(group=g4, source=s4, routes=[Route(s4, g4, "up0", {"dn0": 1})],
                    flows=[Flow("up0", s4, 8, 3)], interfaces=iface(BASE, "dn0", disabled=True))
    v = {x.iface: x for x in diagnose(facts)}["dn0"]
    assert v.reason is Reason.FORWARDED and v.family == "ipv4"


def test_hop_limit_two_is_forwarded() -> None:
    """ip6mr's threshold is 1 on every MIF: hop limit 2 goes out (with 1 left)."""
    assert dn0(healthy(flows=[Flow("up0", S, 2, 5)])).reason is Reason.FORWARDED


def test_threshold_step_uses_the_kernels_threshold() -> None:
    """The threshold is what the kernel's table says (1 for IPv6 on Linux): a route
    that said more would hold back a packet whose hop limit is not above it."""
    v = dn0(healthy(routes=[Route(S, G, "up0", {"dn0": 8})], flows=[Flow("up0", S, 5, 3)]))
    assert v.reason is Reason.TTL_THRESHOLD
    assert "hop-limit threshold on dn0 is 8" in v.text and "hop limit 5" in v.text
    assert "raise the sender's hop limit above 8" in v.fix


def test_unknown_mifs_never_fail_a_step() -> None:
    """Another table than the default: the kernel lists no MIFs, explain claims none
    is missing and goes on to the route."""
    facts = healthy(interfaces=iface(healthy(interfaces=iface(BASE, "dn0", vif=None)),
                                     "up0", vif=None), vifs_known=False)
    assert dn0(facts).reason is Reason.FORWARDED
    assert dn0(dataclasses.replace(facts, routes=[])).reason is Reason.NO_ROUTE


@pytest.mark.parametrize(("group", "link"), [
    ("ff02::1", True), ("ff01::1", True), ("ff02::16", True), ("ff05::1", False),
    ("ff15::1", False), ("ff0e::1", False), ("224.0.0.22", True), ("239.1.1.1", False),
])
def test_link_scope(group: str, link: bool) -> None:
    from ipaddress import ip_address

    assert is_link_scope(ip_address(group)) is link


def test_edge_notes_for_an_ipv6_proxy_name_mld_and_frr_ipv6() -> None:
    notes = edge_notes(G, EdgeView("up0", "EXCLUDE {}", (), None), 2.0)
    assert notes[0].endswith("the router above learns it from its MLD reports")
    assert "show ipv6 mld groups" in notes[2] and "show ipv6 mroute ff15::1" in notes[2]


def test_netlink_ip6mr_entry_is_parsed_with_ipv6_addresses() -> None:
    """One RTM_NEWROUTE of an RTNL_FAMILY_IP6MR dump, built field by field as
    ip6mr_fill_mroute writes it: (S,G), iif 2, oif 3 with rtnh_hops 1, counters."""
    def attr(kind: int, data: bytes) -> bytes:
        raw = netlink.RTATTR.pack(netlink.RTATTR.size + len(data), kind) + data
        return raw + bytes(-len(raw) % 4)

    body = (netlink.RTMSG.pack(netlink.RTNL_FAMILY_IP6MR, 128, 128, 0, 253, 17, 0, 5, 0)
            + attr(netlink.RTA_TABLE, netlink.U32.pack(253))
            + attr(netlink.RTA_SRC, S.packed) + attr(netlink.RTA_DST, G.packed)
            + attr(netlink.RTA_IIF, netlink.U32.pack(2))
            + attr(netlink.RTA_MULTIPATH, netlink.RTNEXTHOP.pack(8, 0, 1, 3))
            + attr(netlink.RTA_MFC_STATS, netlink.RTA_MFC_STATS_STRUCT.pack(7, 700, 1)))
    e = netlink.parse_entry(body, netlink.RTNL_FAMILY_IP6MR)
    assert e is not None
    assert (e.table, e.source, e.group, e.iif, e.oifs) == (253, S, G, 2, {3: 1})
    assert (e.packets, e.bytes, e.wrong_if) == (7, 700, 1)
    assert netlink.parse_entry(body) is None  # not an IPv4 entry


def test_a_plain_link_dump_is_no_vif_dump() -> None:
    """What the kernel answers RTM_GETLINK for RTNL_FAMILY_IP6MR (an ordinary link,
    ifi_family 0, with an IFLA_AF_SPEC of per-family settings) yields no VIFs; the MIF
    dump itself is refused with a clear OSError."""
    spec = netlink.RTATTR.pack(8, 1) + netlink.U32.pack(1)
    payload = netlink.IFINFOMSG.pack(0, 1, 2, 0x1043, 0) + netlink.RTATTR.pack(
        4 + len(spec), netlink.IFLA_AF_SPEC) + spec
    assert netlink.parse_vifs(payload) == []
    with pytest.raises(OSError, match="ip6_mr_vif"):
        netlink.mroute_vifs(netlink.RTNL_FAMILY_IP6MR)


def test_disabled_input_is_found_from_the_route_when_arrival_is_unknown() -> None:
    """IPv6 off on up0 removes its addresses, so no route back says where the flow
    comes in; the route's inbound interface does."""
    facts = healthy(interfaces=iface(BASE, "up0", disabled=True), flows=[],
                    route_back=None)
    v = {x.iface: x for x in diagnose(facts)}["dn0"]
    assert v.reason is Reason.IPV6_DISABLED and "IPv6 is disabled on up0" in v.text


def test_an_ipv6_pim_hello_is_told_from_other_packets() -> None:
    """A PIM hello over IPv6 (RFC 7761 §4.9: next header 103, to ff02::d) names its
    sender; a hello for IPv4's group address or an MLD packet does not."""
    from mrouter.diag.explain import _pim_source

    def ipv6(next_header: int, src: str, dst: str) -> bytes:
        return (bytes([0x60, 0, 0, 0, 0, 4, next_header, 1]) + IPv6Address(src).packed
                + IPv6Address(dst).packed + b"\x20\x00\x00\x00")

    assert _pim_source(ipv6(103, "fe80::1", "ff02::d"), IPV6) == "fe80::1"
    assert _pim_source(ipv6(58, "fe80::1", "ff02::d"), IPV6) is None
    assert _pim_source(ipv6(103, "fe80::1", "ff02::16"), IPV6) is None
    assert _pim_source(b"\x60" * 10, IPV6) is None


def rule(priority: int, table: int, iif: str | None = None, *, action: int = 1,
         selective: bool = False) -> netlink.MrouteRule:
    return netlink.MrouteRule(priority, action, table, iif, selective)


def test_rule_table_follows_the_first_matching_rule() -> None:
    default = rule(32767, 254)
    assert netlink.rule_table([default], "up0") == 254
    rules = [rule(0, 100, "up0"), default]
    assert netlink.rule_table(rules, "up0") == 100
    assert netlink.rule_table(rules, "dn0") == 254
    assert netlink.rule_table([rule(5, 100, selective=True), default], "up0") is None
    assert netlink.rule_table([rule(5, 0, action=6), default], "up0") is None  # blackhole
    assert netlink.rule_table([], "up0") is None


def test_a_table_no_rule_reaches_is_named_before_its_routes() -> None:
    facts = healthy(table=100, rule_tables={"up0": 254, "dn0": 254})
    v = dn0(facts)
    assert v.reason is Reason.NO_TABLE_RULE
    assert "arriving on up0 is looked up in table 254, not in table 100" in v.text
    assert v.fix == "ip -6 mrule add iif up0 lookup 100"
    assert dn0(healthy(table=100, rule_tables={"up0": 100})).reason is Reason.FORWARDED
    assert dn0(healthy(table=100, rule_tables={"up0": None})).reason is Reason.FORWARDED


def test_an_ipv4_link_local_group_is_never_forwarded() -> None:
    s4, g4 = IPv4Address("198.51.100.2"), IPv4Address("224.0.0.251")
    facts = healthy(group=g4, source=s4, routes=[], flows=[Flow("up0", s4, 255, 3)])
    v = {x.iface: x for x in diagnose(facts)}["dn0"]
    assert v.reason is Reason.LINK_SCOPE and "239.1.1.1" in v.fix


def test_ipv4_verdict_json_says_ipv4() -> None:
    s4, g4 = IPv4Address("198.51.100.2"), IPv4Address("239.1.1.1")
    facts = healthy(group=g4, source=s4, routes=[Route(s4, g4, "up0", {"dn0": 1})],
                    flows=[Flow("up0", s4, 8, 3)])
    assert {v.to_dict()["family"] for v in diagnose(facts)} == {"ipv4"}
