"""Issue 11, fixes 5-8: bounds on source state, on the IPv4 header of what is learnt,
on what a querier's QRV/QQIC may impose, and the codec's refusal of an UnknownMessage
that would decode as a known type. Each drop must be visible in the counters."""

from __future__ import annotations

import random
from ipaddress import IPv4Address
from typing import cast

import pytest
from engine_harness import H1, H2, IFACE, NET, G, Lan, changes
from hypothesis import given, settings
from hypothesis import strategies as st

from mrouter.errors import CodecError, ConfigError
from mrouter.igmp.codec import decode, encode, encode_packet
from mrouter.igmp.engine import (
    Dropped,
    Engine,
    FilterMode,
    InterfaceSettings,
    MembershipChanged,
)
from mrouter.igmp.messages import (
    ALL_IGMPV3_ROUTERS,
    ALL_SYSTEMS,
    GroupRecord,
    Query,
    RecordType,
    UnknownMessage,
    V2Report,
    V3Report,
)
from mrouter.router.config import parse_config

R = RecordType
OTHER_LOW = IPv4Address("192.0.2.1")
ME = IPv4Address("192.0.2.5")


def sources(n: int, third: int = 0) -> tuple[IPv4Address, ...]:
    base = int(IPv4Address(f"10.{third}.0.0"))
    return tuple(IPv4Address(base + i + 1) for i in range(n))


def report(group: IPv4Address, rtype: RecordType, srcs: tuple[IPv4Address, ...]) -> V3Report:
    return V3Report((GroupRecord(rtype, group, srcs),))


def reasons(actions: object) -> list[str]:
    assert isinstance(actions, list)
    return [str(a.reason) for a in actions if isinstance(a, Dropped)]


def dropped(lan: Lan) -> dict[str, int]:
    counters: dict[str, int] = lan.engine.snapshot(IFACE).to_json()["dropped"]
    return counters


# --------------------------------------------------------------------------- 5: sources


def test_default_group_source_bound_leaves_out_the_excess_and_counts_it() -> None:
    """A 1,100-source IS_IN keeps max_group_sources (1,024, the lowest addresses)."""
    lan = Lan(InterfaceSettings(querier=False))
    many = sources(1100)
    acts = lan.receive(H1, report(G, R.MODE_IS_INCLUDE, many), ALL_IGMPV3_ROUTERS)
    (change,) = changes(acts)
    assert change.sources == frozenset(many[:1024])
    assert reasons(acts) == ["source-limit"]
    assert dropped(lan) == {"source-limit": 1}


def test_interface_source_bound_spans_groups_and_known_sources_keep_working() -> None:
    lan = Lan(InterfaceSettings(querier=False, max_sources=10, max_group_sources=8))
    g1, g2 = IPv4Address("239.9.0.1"), IPv4Address("239.9.0.2")
    lan.record(H1, R.MODE_IS_INCLUDE, sources(8, 1), group=g1)
    acts = lan.record(H1, R.MODE_IS_INCLUDE, sources(5, 2), group=g2)
    assert lan.forwarding(g2) == (FilterMode.INCLUDE, frozenset(sources(2, 2)))
    assert reasons(acts) == ["source-limit"]
    # the known sources are refreshed without a drop; a new one is still refused
    assert reasons(lan.record(H2, R.MODE_IS_INCLUDE, sources(8, 1), group=g1)) == []
    assert reasons(lan.record(H2, R.ALLOW_NEW_SOURCES, sources(9, 1), group=g1)) == [
        "source-limit"]
    # once g1's sources time out, the room is back
    lan.advance(261)
    assert changes(lan.record(H1, R.MODE_IS_INCLUDE, sources(5, 2), group=g2))[-1].sources \
        == frozenset(sources(5, 2))


def test_source_bounds_are_settings_with_ranges() -> None:
    with pytest.raises(ConfigError, match=r"r\.toml:3: interfaces\.dn0\.max_sources: must be"):
        parse_config('[interfaces.up0]\n[interfaces.dn0]\nmax_sources = 0\n', "r.toml")
    cfg = parse_config("[interfaces.up0]\n[interfaces.dn0]\nmax_sources = 100\n"
                       "max_group_sources = 10\n", "r.toml")
    igmp = cfg.interface("dn0").igmp
    assert (igmp.max_sources, igmp.max_group_sources) == (100, 10)


# --------------------------------------------------------------------------- 6: IP header


def test_report_with_ttl_2_is_dropped_and_counted() -> None:
    lan = Lan(InterfaceSettings(querier=False))
    acts = lan.engine.receive(IFACE, H1, G, V2Report(G), 0.0, ttl=2)
    assert changes(acts) == [] and reasons(acts) == ["bad-ttl"]
    assert dropped(lan) == {"bad-ttl": 1}
    acts = lan.engine.receive(IFACE, H1, G, V2Report(G), 0.0, ttl=1)
    assert changes(acts)


def test_router_alert_is_required_only_when_configured() -> None:
    lan = Lan(InterfaceSettings(querier=False))
    assert changes(lan.engine.receive(IFACE, H1, G, V2Report(G), 0.0, router_alert=False))
    strict = Lan(InterfaceSettings(querier=False, require_router_alert=True))
    acts = strict.engine.receive(IFACE, H1, G, V2Report(G), 0.0, router_alert=False)
    assert changes(acts) == [] and reasons(acts) == ["no-router-alert"]
    assert dropped(strict) == {"no-router-alert": 1}
    cfg = parse_config("[interfaces.up0]\n[interfaces.dn0]\nrequire_router_alert = true\n")
    assert cfg.interface("dn0").igmp.require_router_alert is True


def test_the_shell_passes_ttl_and_router_alert_from_the_ip_header() -> None:
    """The querier shell (also the daemon's IGMP path) hands the header's TTL and RA in."""
    from mrouter.router.querier import QuerierShell
    from mrouter.sockets.igmp_socket import IgmpSocket, Received

    class FakeSocket:
        def join_router_groups(self, ifindex: int) -> None:
            pass

        def send(self, packet: bytes, ifindex: int) -> None:
            pass

    seen: list[object] = []
    shell = QuerierShell(Engine(random.Random(1)), cast(IgmpSocket, FakeSocket()),
                         lambda: 0.0, seen.append)
    shell.add_interface(IFACE, InterfaceSettings(querier=False, require_router_alert=True),
                        ifindex=7, address=ME, network=NET)
    shell.handle_packet(Received(encode_packet(V2Report(G), H1, G, ttl=2), 7))
    shell.handle_packet(Received(encode_packet(V2Report(G), H1, G, router_alert=False), 7))
    assert [str(a.reason) for a in seen if isinstance(a, Dropped)] == [
        "bad-ttl", "no-router-alert"]
    shell.handle_packet(Received(encode_packet(V2Report(G), H1, G), 7))
    assert [a for a in seen if isinstance(a, MembershipChanged)]


def test_messages_to_a_destination_they_never_use_are_dropped() -> None:
    """RFC 3376 §4.1.12/§4.2.14: queries go to all-systems (or the group); reports go to
    the group or to an address routers listen on; the interface's own address is fine."""
    lan = Lan(InterfaceSettings(querier=False), address=ME)
    other = IPv4Address("239.7.7.7")
    assert reasons(lan.receive(H1, V2Report(G), other)) == ["wrong-destination"]
    assert reasons(lan.receive(H1, report(G, R.MODE_IS_EXCLUDE, ()), other)) == [
        "wrong-destination"]
    assert reasons(lan.receive(OTHER_LOW, Query(version=3, qrv=2, qqic=125), G)) == [
        "wrong-destination"]
    assert lan.engine.snapshot(IFACE).querier is None
    assert dropped(lan) == {"wrong-destination": 3}
    for dst in (ME, ALL_SYSTEMS, ALL_IGMPV3_ROUTERS):  # unicast to us; router groups
        assert reasons(lan.receive(H1, V2Report(G), dst)) == []
        assert reasons(lan.receive(H1, report(G, R.MODE_IS_EXCLUDE, ()), dst)) == []
    assert lan.forwarding() == (FilterMode.EXCLUDE, frozenset())


def test_a_block_on_a_full_table_is_not_a_source_limit_drop() -> None:
    """Only sources a record would add count against the bounds (INCLUDE + BLOCK adds
    none)."""
    lan = Lan(InterfaceSettings(querier=False, max_sources=2))
    lan.record(H1, R.MODE_IS_INCLUDE, sources(2))
    assert reasons(lan.record(H1, R.BLOCK_OLD_SOURCES, sources(5))) == []
    acts = lan.record(H1, R.MODE_IS_EXCLUDE, sources(5))  # would add 3 excluded sources
    assert reasons(acts) == ["source-limit"]
    assert lan.forwarding() == (FilterMode.EXCLUDE, frozenset())


# --------------------------------------------------------------------------- 7: QRV/QQIC


def test_a_forged_query_cannot_hold_a_group_for_days() -> None:
    """QRV 7, QQIC 255 (31,744 s) is adopted only up to max_robustness x max_query_interval:
    a group nobody reports again is gone after 4 x 600 + 10 s by default, not after
    7 x 31,744 + 10 s (62 hours)."""
    lan = Lan(InterfaceSettings(), address=ME)
    lan.receive(OTHER_LOW, Query(version=3, max_resp_code=100, qrv=7, qqic=255), ALL_SYSTEMS)
    lan.v2_report(H1)
    assert lan.forwarding() == (FilterMode.EXCLUDE, frozenset())
    lan.advance(4 * 600 + 10 - 0.5)
    assert lan.forwarding() == (FilterMode.EXCLUDE, frozenset())
    lan.advance(1)
    assert lan.forwarding() == (FilterMode.INCLUDE, frozenset())


def test_adopted_values_in_the_snapshot_are_the_bounded_ones() -> None:
    lan = Lan(InterfaceSettings(), address=ME)
    lan.receive(OTHER_LOW, Query(version=3, max_resp_code=100, qrv=7, qqic=255), ALL_SYSTEMS)
    timers = lan.engine.snapshot(IFACE).timers
    assert (timers.robustness, timers.query_interval) == (4, 600)
    lan.v2_report(H1)
    g = lan.group()
    assert g is not None and g.group_timer == 4 * 600 + 10


def test_adoption_bounds_never_lower_the_interfaces_own_settings() -> None:
    lan = Lan(InterfaceSettings(robustness=6, query_interval=900, query_response_interval=10),
              address=ME)
    lan.receive(OTHER_LOW, Query(version=3, max_resp_code=100, qrv=7, qqic=255), ALL_SYSTEMS)
    timers = lan.engine.snapshot(IFACE).timers
    assert (timers.robustness, timers.query_interval) == (6, 900)
    # and values under the bound are adopted as they are (§4.1.6, §4.1.7)
    lan = Lan(address=ME)
    lan.receive(OTHER_LOW, Query(version=3, max_resp_code=100, qrv=3, qqic=100), ALL_SYSTEMS)
    timers = lan.engine.snapshot(IFACE).timers
    assert (timers.robustness, timers.query_interval) == (3, 100)


def test_adoption_bounds_are_config_keys() -> None:
    cfg = parse_config("[interfaces.up0]\n[interfaces.dn0]\nmax_query_interval = 3600\n"
                       "max_robustness = 7\n")
    igmp = cfg.interface("dn0").igmp
    assert (igmp.max_query_interval, igmp.max_robustness) == (3600, 7)
    with pytest.raises(ConfigError, match=r"max_robustness: must be a whole number from 1 to 7"):
        parse_config("[interfaces.up0]\n[interfaces.dn0]\nmax_robustness = 8\n")


# --------------------------------------------------------------------------- 8: codec


@pytest.mark.parametrize("igmp_type", [0x11, 0x12, 0x16, 0x17, 0x22])
def test_unknown_message_with_a_known_type_is_refused(igmp_type: int) -> None:
    with pytest.raises(CodecError, match="known type"):
        encode(UnknownMessage(igmp_type, 0, bytes(4)))


def test_unknown_message_round_trips() -> None:
    msg = UnknownMessage(0x1F, 3, bytes(range(8)))  # mtrace's type
    assert decode(encode(msg)) == msg



# --------------------------------------------------------------------------- invariant


POOL = sources(6)
GROUPS = (G, IPv4Address("239.9.0.9"))
HOSTS = (H1, H2)


@settings(max_examples=1000, deadline=None)
@given(fast_leave=st.booleans(), steps=st.lists(st.tuples(
    st.sampled_from(list(R)), st.sampled_from(GROUPS), st.sampled_from(HOSTS),
    st.frozensets(st.sampled_from(POOL)), st.sampled_from([0.0, 1.0, 30.0])),
    max_size=25))
def test_source_bounds_hold_after_every_message(
    fast_leave: bool, steps: list[tuple[RecordType, IPv4Address, IPv4Address,
                                        frozenset[IPv4Address], float]],
) -> None:
    lan = Lan(InterfaceSettings(fast_leave=fast_leave, max_sources=5, max_group_sources=3))
    for rtype, group, host, srcs, wait in steps:
        lan.advance(wait)
        lan.record(host, rtype, srcs, group=group)
        snap = lan.snapshot()
        assert sum(len(g.sources) for g in snap.groups) <= 5
        assert all(len(g.sources) <= 3 for g in snap.groups)
