"""``mrouter querier``: options become InterfaceSettings; events print as JSON or a line."""

from __future__ import annotations

import json
from ipaddress import IPv4Address

import pytest

from mrouter.cli.main import build_parser, main
from mrouter.cli.querier import action_event, human, settings_from
from mrouter.igmp.engine import (
    Action,
    Dropped,
    DropReason,
    FilterMode,
    MembershipChanged,
    QuerierChanged,
    SendQuery,
    TimerExpired,
    TimerName,
)
from mrouter.igmp.messages import Query

G = IPv4Address("239.1.1.1")


def test_options_become_settings_with_rfc_defaults() -> None:
    args = build_parser().parse_args(["querier", "--iface", "dn0"])
    s = settings_from(args)
    assert (s.version, s.query_interval, s.last_member_query_time, s.fast_leave, s.querier) == (
        3, 125.0, 2.0, False, True)
    args = build_parser().parse_args([
        "querier", "-i", "dn0", "-i", "dn1", "--version", "2", "--query-interval", "20",
        "--query-response-interval", "5", "--last-member-query-interval", "0.5",
        "--fast-leave", "--no-querier"])
    s = settings_from(args)
    assert args.iface == ["dn0", "dn1"]
    assert (s.version, s.startup_query_interval, s.last_member_query_time) == (2, 5.0, 1.0)
    assert s.fast_leave and not s.querier


def test_bad_timers_are_one_line_errors(capsys: pytest.CaptureFixture[str]) -> None:
    status = main(["querier", "--iface", "lo", "--query-interval", "5",
                   "--query-response-interval", "10"])
    err = capsys.readouterr().err
    assert status == 2 and err.count("\n") == 1
    assert "query_response_interval=10.0 must be less than query_interval=5.0" in err


def test_help_has_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["querier", "--help"])
    assert "mrouter querier --iface eth0 --json" in capsys.readouterr().out


@pytest.mark.parametrize(("action", "event", "line"), [
    (MembershipChanged("dn0", G, FilterMode.EXCLUDE, frozenset()),
     {"event": "membership", "iface": "dn0", "group": "239.1.1.1", "filter_mode": "EXCLUDE",
      "sources": []}, "membership  239.1.1.1        EXCLUDE  forward all sources"),
    (MembershipChanged("dn0", G, FilterMode.INCLUDE, frozenset()),
     {"event": "membership", "iface": "dn0", "group": "239.1.1.1", "filter_mode": "INCLUDE",
      "sources": []}, "INCLUDE  left (no members)"),
    (QuerierChanged("dn0", IPv4Address("192.0.2.1"), True),
     {"event": "querier", "iface": "dn0", "querier": "192.0.2.1", "is_self": True},
     "querier 192.0.2.1 (this router)"),
    (SendQuery("dn0", G, Query(3, G, 10, True, 2, 125, (IPv4Address("198.51.100.1"),))),
     {"event": "query", "iface": "dn0", "dst": "239.1.1.1", "version": 3, "group": "239.1.1.1",
      "s_flag": True, "max_resp": 1.0, "sources": ["198.51.100.1"]},
     "sent IGMPv3 query 239.1.1.1 sources {198.51.100.1} S"),
    (TimerExpired("dn0", TimerName.GROUP, G),
     {"event": "timer", "iface": "dn0", "timer": "group", "group": "239.1.1.1",
      "source": None}, "timer       239.1.1.1        group timer expired"),
    (TimerExpired("dn0", TimerName.SOURCE, G, IPv4Address("198.51.100.1")),
     {"event": "timer", "iface": "dn0", "timer": "source", "group": "239.1.1.1",
      "source": "198.51.100.1"}, "239.1.1.1 (198.51.100.1)  source timer expired"),
    (TimerExpired("dn0", TimerName.OTHER_QUERIER),
     {"event": "timer", "iface": "dn0", "timer": "other_querier", "group": None,
      "source": None}, "timer       other querier present timer expired"),
    (Dropped("dn0", DropReason.FOREIGN_SOURCE, "dn0: IGMPv2 report from 10.0.0.1"),
     {"event": "dropped", "iface": "dn0", "reason": "foreign-source",
      "detail": "dn0: IGMPv2 report from 10.0.0.1"}, "dropped (foreign-source)"),
])
def test_events(action: Action, event: dict[str, object], line: str) -> None:
    got = action_event(action)
    assert got == event
    json.dumps(got)
    assert line in human({"time": 0.0, **got})
