"""Issue 12 for the engine: typed outputs whose JSON and text are what users saw before,
one home for FilterMode and for the IGMP defaults, and the address-family seam."""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from ipaddress import IPv4Address, IPv4Network

from engine_harness import H1, H2, H3, Lan, srcs

from mrouter.cli.querier import configure, settings_from
from mrouter.igmp import tables
from mrouter.igmp.actions import DropReason, TimerName
from mrouter.igmp.family import IPV4
from mrouter.igmp.messages import RecordType, V1Report
from mrouter.igmp.settings import DEFAULTS, InterfaceSettings
from mrouter.igmp.snapshot import render_snapshot
from mrouter.router import routes
from mrouter.router.config import parse_config
from mrouter.router.routes import ForwardingCache, RouteTable

R = RecordType

#: What ``querier --json`` printed as a group table (and ``show groups --json`` as each
#: group's "igmp") for the scenario below, recorded from the engine before issue 12.
EXPECTED_JSON = (
    {'iface': 'dn0',
     'address': '192.0.2.1',
     'network': '192.0.2.0/24',
     'version': 3,
     'querier_version': 3,
     'querier': '192.0.2.1',
     'is_querier': True,
     'next_general_query': 20.75,
     'startup_queries_left': 1,
     'other_querier_present': None,
     'v1_router_present': None,
     'fast_leave': True,
     'timers': {'robustness': 2,
                'query_interval': 125.0,
                'query_response_interval': 10.0,
                'group_membership_interval': 260.0,
                'other_querier_present_interval': 255.0,
                'last_member_query_interval': 1.0,
                'last_member_query_count': 2,
                'last_member_query_time': 2.0},
     'dropped': {'foreign-source': 1},
     'groups': [{'group': '239.1.1.1',
                 'filter_mode': 'EXCLUDE',
                 'compat_mode': 3,
                 'group_timer': 249.5,
                 'v1_host_present': None,
                 'v2_host_present': None,
                 'query_retransmissions': 0,
                 'forwarding': {'filter_mode': 'EXCLUDE', 'sources': ['198.51.100.3']},
                 'sources': [{'source': '198.51.100.1',
                              'timer': 249.5,
                              'forwarded': True,
                              'query_retransmissions': 0},
                             {'source': '198.51.100.2',
                              'timer': 1.5,
                              'forwarded': True,
                              'query_retransmissions': 1},
                             {'source': '198.51.100.3',
                              'timer': 0.0,
                              'forwarded': False,
                              'query_retransmissions': 0}],
                 'hosts': [{'host': '192.0.2.11',
                            'filter_mode': 'EXCLUDE',
                            'sources': ['198.51.100.3'],
                            'expires': 249.5},
                           {'host': '192.0.2.12',
                            'filter_mode': 'INCLUDE',
                            'sources': ['198.51.100.1'],
                            'expires': 259.5}]},
                {'group': '239.2.2.2',
                 'filter_mode': 'EXCLUDE',
                 'compat_mode': 2,
                 'group_timer': 249.5,
                 'v1_host_present': None,
                 'v2_host_present': 249.5,
                 'query_retransmissions': 0,
                 'forwarding': {'filter_mode': 'EXCLUDE', 'sources': []},
                 'sources': [],
                 'hosts': [{'host': '192.0.2.13',
                            'filter_mode': 'EXCLUDE',
                            'sources': [],
                            'expires': 249.5}]},
                {'group': '239.3.3.3',
                 'filter_mode': 'EXCLUDE',
                 'compat_mode': 1,
                 'group_timer': 249.5,
                 'v1_host_present': 249.5,
                 'v2_host_present': None,
                 'query_retransmissions': 0,
                 'forwarding': {'filter_mode': 'EXCLUDE', 'sources': []},
                 'sources': [],
                 'hosts': [{'host': '192.0.2.11',
                            'filter_mode': 'EXCLUDE',
                            'sources': [],
                            'expires': 249.5}]}]}
)

#: What ``querier`` printed for it (SIGUSR1 or at the end), recorded the same way.
EXPECTED_TEXT = "\n".join([
    'dn0  192.0.2.1 on 192.0.2.0/24  IGMPv3  fast leave on',
    '  querier: 192.0.2.1 (this router)  next general query in 20.8 s',
    '  timers: robustness 2  QI 125 s  QRI 10 s  GMI 260 s  LMQT 2 x 1 s = 2 s',
    '  dropped: foreign-source 1',
    '  group 239.1.1.1  EXCLUDE  group timer 249.5 s  compatibility IGMPv3'
    '  -> forward all sources except {198.51.100.3}',
    '    source 198.51.100.1     timer   249.5 s  (forwarded)',
    '    source 198.51.100.2     timer     1.5 s  (forwarded, 1 queries left)',
    '    source 198.51.100.3     timer     0.0 s  (timer 0: not forwarded)',
    '    host 192.0.2.11       EXCLUDE {198.51.100.3}'
    '  (forgotten in 249.5 s unless it reports again)',
    '    host 192.0.2.12       INCLUDE {198.51.100.1}'
    '  (forgotten in 259.5 s unless it reports again)',
    '  group 239.2.2.2  EXCLUDE  group timer 249.5 s  compatibility IGMPv2'
    '  -> forward all sources',
    '    host 192.0.2.13       EXCLUDE {}  (forgotten in 249.5 s unless it reports again)',
    '  group 239.3.3.3  EXCLUDE  group timer 249.5 s  compatibility IGMPv1'
    '  -> forward all sources',
    '    host 192.0.2.11       EXCLUDE {}  (forgotten in 249.5 s unless it reports again)',
])


def scenario() -> Lan:
    lan = Lan(InterfaceSettings(fast_leave=True))
    lan.record(H1, R.MODE_IS_EXCLUDE, srcs(3))
    lan.record(H2, R.MODE_IS_INCLUDE, srcs(1, 2))
    lan.v2_report(H3, IPv4Address("239.2.2.2"))
    lan.receive(H1, V1Report(IPv4Address("239.3.3.3")))
    lan.record(IPv4Address("203.0.113.9"), R.MODE_IS_EXCLUDE, ())
    lan.advance(10)
    lan.record(H2, R.BLOCK_OLD_SOURCES, srcs(2))
    lan.advance(0.5)
    return lan


def test_snapshot_json_keeps_its_shape_and_values() -> None:
    got = scenario().snapshot().to_json()
    assert got == EXPECTED_JSON
    assert list(got) == list(EXPECTED_JSON)  # the key order of the printed object too
    assert json.loads(json.dumps(got)) == EXPECTED_JSON


def test_snapshot_text_is_unchanged() -> None:
    assert render_snapshot(scenario().snapshot()) == EXPECTED_TEXT


def test_typed_snapshot_reads_without_casts() -> None:
    snap = scenario().snapshot()
    g = snap.group(IPv4Address("239.1.1.1"))
    assert g is not None and g.filter_mode is tables.FilterMode.EXCLUDE
    assert g.forwarding.sources == (IPv4Address("198.51.100.3"),)
    assert snap.dropped == {DropReason.FOREIGN_SOURCE: 1}
    assert snap.group(IPv4Address("239.9.9.9")) is None


def test_reasons_and_timer_names_are_the_tokens_users_saw() -> None:
    assert str(DropReason.GROUP_LIMIT) == "group-limit" and DropReason("bad-ttl").name == "BAD_TTL"
    assert [str(t) for t in TimerName] == ["group", "source", "other_querier"]
    assert json.dumps({"reason": DropReason.FOREIGN_SOURCE}) == '{"reason": "foreign-source"}'


def test_one_filter_mode() -> None:
    from mrouter.igmp import engine

    assert routes.FilterMode is tables.FilterMode is engine.FilterMode


def test_config_and_querier_cli_take_their_defaults_from_the_engine_settings() -> None:
    cfg = parse_config("[interfaces.up0]\n[interfaces.dn0]\n")
    assert cfg.interface("dn0").igmp == DEFAULTS
    parser = argparse.ArgumentParser()
    configure(parser)
    assert settings_from(parser.parse_args(["--iface", "eth0"])) == DEFAULTS
    args = parser.parse_args(["--iface", "eth0", "--max-sources", "10",
                              "--require-router-alert", "--max-query-interval", "900"])
    assert settings_from(args) == replace(DEFAULTS, max_sources=10, require_router_alert=True,
                                          max_query_interval=900.0)


def test_ipv4_family_facts() -> None:
    assert (IPV4.all_hosts, IPV4.all_routers, IPV4.report_destination) == (
        IPv4Address("224.0.0.1"), IPv4Address("224.0.0.2"), IPv4Address("224.0.0.22"))
    assert IPV4.is_link_local(IPv4Address("224.0.0.251"))
    assert IPV4.is_forwardable(IPv4Address("239.1.1.1"))
    assert not IPV4.is_forwardable(IPv4Address("224.0.0.5"))
    assert not IPV4.is_forwardable(IPv4Address("192.0.2.1"))
    low, high = IPv4Address("192.0.2.1"), IPv4Address("192.0.2.9")
    assert IPV4.wins_election(low, high) and not IPV4.wins_election(high, low)
    assert IPV4.wins_election(high, None)


def test_route_table_takes_its_scope_from_the_family() -> None:
    """The link-local rule is the family's: a family with a wider scope changes it."""
    group, source = IPv4Address("239.255.0.1"), IPv4Address("198.51.100.2")
    wide = replace(IPV4, link_local=IPv4Network("239.255.0.0/16"))
    for family, expected in ((IPV4, frozenset({"dn0"})), (wide, frozenset())):
        table = RouteTable(["up0", "dn0"], family=family)
        table.join("dn0", group)
        assert table.oifs(source, group, "up0") == expected
        assert bool(ForwardingCache(table).resolve(source, group, "up0", 0.0)) == bool(expected)
