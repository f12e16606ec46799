"""The engine speaking MLD (RFC 2710, RFC 3810): what differs from IGMP is tested here;
the state machine itself is IGMP's and its table rows run for both families in
test_engine_tables.py.

Each test drives one IPv6 engine interface on a simulated clock (engine_harness.Lan with
family=V6) and checks what a router would put on the wire or forward.
"""

from __future__ import annotations

import json
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network, IPv6Address

import pytest
from engine_harness import IFACE, V6, Lan, changes, querier_changes, queries, specific

from mrouter.errors import EngineError
from mrouter.igmp.engine import (
    Dropped,
    Engine,
    FilterMode,
    InterfaceSettings,
    MembershipChanged,
    SendQuery,
)
from mrouter.igmp.family import IPV4, IPV6
from mrouter.igmp.messages import RecordType
from mrouter.igmp.settings import MLD_DEFAULTS, SettingError
from mrouter.igmp.snapshot import render_snapshot
from mrouter.mld import codec
from mrouter.mld.messages import (
    ALL_MLDV2_ROUTERS,
    ALL_NODES,
    ALL_ROUTERS,
    AddressRecord,
    Query,
    V1Done,
    V1Report,
    V2Report,
    code_to_delay_ms,
)

R = RecordType
ROUTER = IPv6Address("fe80::1")
H1, H2 = IPv6Address("fe80::11"), IPv6Address("fe80::12")
G = IPv6Address("ff15::1:1")
S1, S2, S3 = (IPv6Address(f"2001:db8:1::{i}") for i in (1, 2, 3))


def lan(settings: InterfaceSettings = MLD_DEFAULTS, **kw: object) -> Lan:
    return Lan(settings, family=V6, **kw)  # type: ignore[arg-type]


def report(*records: AddressRecord) -> V2Report:
    return V2Report(records)


def join(net: Lan, host: IPv6Address = H1, group: IPv6Address = G) -> list[object]:
    return list(net.receive(host, report(AddressRecord(R.CHANGE_TO_EXCLUDE_MODE, group))))


def reasons(actions: list[object]) -> list[str]:
    return [str(a.reason) for a in actions if isinstance(a, Dropped)]


# --------------------------------------------------------------------------- queries out


def test_general_queries_are_mldv2_to_all_nodes_with_the_delay_in_milliseconds() -> None:
    net = lan()
    sent = [a for _, a in net.log if isinstance(a, SendQuery)]
    assert [a.dst for a in sent] == [ALL_NODES]
    q = sent[0].query
    # RFC 3810 §5.1.3: below 32768 the code is the delay in ms; QRI 10 s = 10000 ms.
    assert q == Query(version=2, max_resp_code=10000, qrv=2, qqic=125)
    assert q.max_resp_ms == 10000


def test_a_long_response_interval_uses_the_floating_point_code() -> None:
    net = lan(replace(MLD_DEFAULTS, query_response_interval=40.0))
    q = queries(a for _, a in net.log)[0]
    assert q.max_resp_code >= 0x8000  # 40000 ms needs the 16-bit float form
    assert code_to_delay_ms(q.max_resp_code) == 40000  # exactly representable


def test_every_query_the_engine_makes_encodes_and_decodes_back() -> None:
    net = lan()
    join(net)
    net.receive(H1, report(AddressRecord(R.CHANGE_TO_INCLUDE_MODE, G, (S1, S2))))
    net.receive(H1, report(AddressRecord(R.BLOCK_OLD_SOURCES, G, (S1,))))
    net.advance(300)
    sent = [a for _, a in net.log if isinstance(a, SendQuery)]
    assert {type(a.query) for a in sent} == {Query} and len(sent) > 4
    for a in sent:
        packet = codec.decode_packet(codec.encode_packet(a.query, ROUTER, a.dst))
        assert packet.mld == a.query
        assert packet.ip.hop_limit == 1 and packet.ip.router_alert_value == 0


def test_last_listener_queries_are_group_specific_mldv2_with_llqi_in_ms() -> None:
    net = lan()
    join(net)
    acts = net.receive(H1, report(AddressRecord(R.CHANGE_TO_INCLUDE_MODE, G)))
    sent = [a for a in acts if isinstance(a, SendQuery)]
    assert [(a.dst, a.query.group, a.query.max_resp_ms) for a in sent] == [(G, G, 1000)]
    net.advance(2.0)  # LLQT = 2 x 1 s (RFC 3810 §9.14)
    assert net.forwarding(G) == (FilterMode.INCLUDE, frozenset())


def test_sources_are_queried_in_chunks_that_fit_an_ipv6_mtu() -> None:
    net = lan(replace(MLD_DEFAULTS, max_group_sources=1000))
    many = tuple(IPv6Address(f"2001:db8:2::{i:x}") for i in range(1, 201))
    net.receive(H1, report(AddressRecord(R.MODE_IS_INCLUDE, G, many)))
    acts = net.receive(H1, report(AddressRecord(R.BLOCK_OLD_SOURCES, G, many)))
    sent = [a.query for a in acts if isinstance(a, SendQuery)]
    assert [len(q.sources) for q in sent] == [89, 89, 22]
    assert all(len(codec.encode_packet(q, ROUTER, G)) <= 1500 for q in sent)


# --------------------------------------------------------------------------- sources, hop limit


@pytest.mark.parametrize("src", [IPv6Address("2001:db8::11"), IPv6Address("::"),
                                 IPv6Address("fd00::11")], ids=str)
def test_reports_from_anything_but_a_link_local_address_are_dropped(src: IPv6Address) -> None:
    """RFC 3810 §5.2.13: a router discards reports that do not come from a link-local
    address, the unspecified address (a host during DAD) included."""
    net = lan()
    acts = net.receive(src, report(AddressRecord(R.CHANGE_TO_EXCLUDE_MODE, G)))
    assert reasons(acts) == ["foreign-source"] and changes(acts) == []
    assert net.snapshot().groups == ()
    detail = next(a.detail for a in acts if isinstance(a, Dropped))
    assert "RFC 3810" in detail and str(src) in detail


def test_a_query_from_the_unspecified_address_is_dropped_and_wins_nothing() -> None:
    net = lan()
    acts = net.receive(IPv6Address("::"), Query(version=2, max_resp_code=1000))
    assert reasons(acts) == ["foreign-source"] and querier_changes(acts) == []
    assert net.snapshot().is_querier


def test_a_hop_limit_other_than_1_is_dropped() -> None:
    net = lan()
    acts = net.receive(H1, report(AddressRecord(R.CHANGE_TO_EXCLUDE_MODE, G)), ttl=64)
    assert reasons(acts) == ["bad-ttl"] and changes(acts) == []
    assert "hop limit 64" in next(a.detail for a in acts if isinstance(a, Dropped))


@pytest.mark.parametrize("msg", [report(AddressRecord(R.CHANGE_TO_EXCLUDE_MODE, G)),
                                 V1Report(G), V1Done(G)], ids=lambda m: type(m).__name__)
def test_reports_and_dones_without_a_router_alert_are_dropped(msg: object) -> None:
    """RFC 3810 §7: a router checks for the Router Alert, whatever the settings."""
    net = lan()
    acts = net.receive(H1, msg, router_alert=False)
    assert reasons(acts) == ["no-router-alert"]


def test_reports_to_a_destination_they_are_never_sent_to_are_dropped() -> None:
    net = lan()
    acts = net.receive(H1, report(AddressRecord(R.CHANGE_TO_EXCLUDE_MODE, G)),
                       dst=IPv6Address("ff15::99"))
    assert reasons(acts) == ["wrong-destination"]
    # ff02::16 (RFC 3810 §5.2.14), and where a router listens anyway: accepted
    for dst in (ALL_MLDV2_ROUTERS, ALL_NODES, ALL_ROUTERS):
        assert reasons(lan().receive(H1, report(AddressRecord(R.CHANGE_TO_EXCLUDE_MODE, G)),
                                     dst=dst)) == []


def test_reports_for_non_multicast_addresses_are_dropped() -> None:
    acts = lan().receive(H1, report(AddressRecord(R.CHANGE_TO_EXCLUDE_MODE,
                                                  IPv6Address("2001:db8::1"))))
    assert reasons(acts) == ["bad-group"]


# --------------------------------------------------------------------------- election


def test_the_lowest_ipv6_address_wins_the_querier_election() -> None:
    """RFC 3810 §7.6.2: a query from a lower address makes this router a non-querier; the
    Other Querier Present timer (RV x QI + QRI/2 = 255 s) brings it back."""
    net = lan(address=IPv6Address("fe80::5"))
    acts = net.receive(IPv6Address("fe80::9"), Query(version=2, max_resp_code=10000))
    assert querier_changes(acts) == [] and net.snapshot().is_querier
    lower = IPv6Address("fe80::2")
    acts = net.receive(lower, Query(version=2, max_resp_code=10000, qrv=2, qqic=125))
    assert [(c.querier, c.is_self) for c in querier_changes(acts)] == [(lower, False)]
    assert net.snapshot().other_querier_present == 255.0
    acts = net.advance(255)
    assert [(c.querier, c.is_self) for c in querier_changes(acts)] == [
        (IPv6Address("fe80::5"), True)]
    assert [a.dst for a in acts if isinstance(a, SendQuery)] == [ALL_NODES]


def test_a_non_querier_lowers_timers_by_the_queriers_delay_in_milliseconds() -> None:
    """RFC 3810 §7.6.1 (RFC 3376 §6.6.1): a group-specific query with S clear lowers the
    group timer to [robustness] x its Maximum Response Delay: here 2 x 500 ms."""
    net = lan(address=IPv6Address("fe80::5"))
    join(net)
    querier = IPv6Address("fe80::2")
    net.receive(querier, Query(version=2, max_resp_code=10000, qrv=2, qqic=125))
    net.receive(querier, Query(version=2, group=G, max_resp_code=500, qrv=2, qqic=125))
    g = net.group(G)
    assert g is not None and g.group_timer == 1.0


# --------------------------------------------------------------------------- MLDv1


def test_an_mldv1_report_puts_the_group_in_mldv1_compatibility_mode() -> None:
    """RFC 3810 §8.3.2: an MLDv1 report starts the Older Version Host Present timer
    (RV x QI + QRI = 260 s); while it runs the group is in MLDv1 mode: BLOCK records
    and TO_EX's sources are ignored, and a Done is TO_IN({}): a group-specific query
    (which an MLDv1 host reads as an MLDv1 one: its first 24 octets) and the group
    gone after LLQT."""
    net = lan()
    acts = net.receive(H1, V1Report(G), dst=G)
    assert changes(acts) == [MembershipChanged(IFACE, G, FilterMode.EXCLUDE, frozenset())]
    g = net.group(G)
    assert g is not None and g.compat_mode == 1 and g.v1_host_present == 260.0
    assert g.v2_host_present is None
    assert reasons(net.receive(H2, report(AddressRecord(R.BLOCK_OLD_SOURCES, G, (S1,))))) \
        == ["compat-ignored"]
    # TO_EX's sources are ignored in MLDv1 mode: everything stays forwarded
    net.receive(H2, report(AddressRecord(R.CHANGE_TO_EXCLUDE_MODE, G, (S1,))))
    assert net.forwarding(G) == (FilterMode.EXCLUDE, frozenset())
    acts = net.receive(H1, V1Done(G), dst=ALL_ROUTERS)
    sent = [a.query for a in acts if isinstance(a, SendQuery)]
    assert [(q.group, q.max_resp_ms, q.sources) for q in sent] == [(G, 1000, ())]
    net.advance(2.0)
    assert net.forwarding(G) == (FilterMode.INCLUDE, frozenset())


def test_mldv2_mode_comes_back_when_the_older_host_present_timer_runs_out() -> None:
    net = lan()
    net.receive(H1, V1Report(G), dst=G)
    net.advance(100)
    join(net, H2)  # keeps the group alive past the v1 host's timer
    net.advance(161)
    g = net.group(G)
    assert g is not None and g.compat_mode == 2 and not g.v1_host_present


def test_an_mldv1_interface_queries_in_mldv1_and_ignores_mldv2_reports() -> None:
    net = lan(replace(MLD_DEFAULTS, version=1))
    sent = [a.query for _, a in net.log if isinstance(a, SendQuery)]
    assert sent == [Query(version=1, max_resp_code=10000)]
    assert reasons(join(net)) == ["version"]
    acts = net.receive(H1, V1Report(G), dst=G)
    assert net.forwarding(G) == (FilterMode.EXCLUDE, frozenset()) and reasons(acts) == []
    assert net.snapshot().version == 1 and net.snapshot().querier_version == 1


def test_an_mldv1_querier_on_the_link_is_warned_about() -> None:
    """RFC 3810 §8.3.1: an MLDv2 router that hears an MLDv1 query logs a warning."""
    acts = lan().receive(IPv6Address("fe80::9"), Query(version=1, max_resp_code=10000))
    assert reasons(acts) == ["older-querier"]
    assert "MLDv1 query" in next(a.detail for a in acts if isinstance(a, Dropped))


def test_a_non_querier_ignores_dones() -> None:
    net = lan(replace(MLD_DEFAULTS, querier=False))
    net.receive(H1, V1Report(G), dst=G)
    acts = net.receive(H1, V1Done(G), dst=ALL_ROUTERS)
    assert reasons(acts) == ["leave-ignored"] and "done" in str(acts)


def test_fast_leave_works_for_mld_hosts() -> None:
    net = lan(replace(MLD_DEFAULTS, fast_leave=True))
    join(net)
    acts = net.receive(H1, report(AddressRecord(R.CHANGE_TO_INCLUDE_MODE, G)))
    assert changes(acts) == [MembershipChanged(IFACE, G, FilterMode.INCLUDE, frozenset())]
    assert specific(acts) == {(G, frozenset(), False)}


# --------------------------------------------------------------------------- settings, outputs


def test_mld_settings_name_mld_and_its_limits() -> None:
    with pytest.raises(SettingError, match=r"MLD setting version=3 must be one of 1, 2"):
        InterfaceSettings(protocol="MLD", version=3)
    # MLDv1's Maximum Response Delay is 16 bits of ms: 65.535 s at most
    with pytest.raises(SettingError, match=r"at most 65.535 s for MLDv1"):
        InterfaceSettings(protocol="MLD", version=1, query_response_interval=70,
                          query_interval=125)
    # MLDv2's 16-bit float goes far past IGMPv2's 25.5 s
    assert InterfaceSettings(protocol="MLD", version=2,
                             query_response_interval=60).query_response_interval == 60


def test_an_engine_refuses_the_other_protocols_settings() -> None:
    import random

    with pytest.raises(EngineError, match="IGMP settings given to an engine that speaks MLD"):
        Engine(random.Random(1), IPV6).add_interface(
            "dn0", ROUTER, V6.net, InterfaceSettings(), 0.0)
    with pytest.raises(EngineError, match="MLD settings given to an engine that speaks IGMP"):
        Engine(random.Random(1), IPV4).add_interface(
            "dn0", IPv4Address("192.0.2.1"), IPv4Network("192.0.2.0/24"), MLD_DEFAULTS, 0.0)


def test_the_snapshot_says_ipv6_and_mld_versions() -> None:
    net = lan()
    join(net)
    net.receive(H2, V1Report(IPv6Address("ff15::2")), dst=IPv6Address("ff15::2"))
    snap = net.snapshot()
    data = snap.to_json()
    assert list(data)[:2] == ["family", "iface"] and data["family"] == "ipv6"
    assert (data["address"], data["network"], data["version"]) == ("fe80::1", "fe80::/64", 2)
    assert [(g["group"], g["compat_mode"]) for g in data["groups"]] == [
        ("ff15::2", 1), ("ff15::1:1", 2)]  # in address order
    json.dumps(data)
    text = render_snapshot(snap)
    assert "MLDv2" in text and "compatibility MLDv1" in text and "IGMP" not in text


def test_the_ipv6_family_facts() -> None:
    assert IPV6.is_forwardable(G) and not IPV6.is_forwardable(IPv6Address("ff02::1:3"))
    assert not IPV6.is_multicast(IPv6Address("2001:db8::1"))
    assert (IPV6.all_hosts, IPV6.all_routers, IPV6.report_destination) == (
        ALL_NODES, ALL_ROUTERS, ALL_MLDV2_ROUTERS)
    assert IPV6.wins_election(IPv6Address("fe80::1"), IPv6Address("fe80::2"))
    assert not IPV6.wins_election(IPv6Address("fe80::3"), IPv6Address("fe80::2"))

