"""The event schema, the JSON-lines file and the follow ring (mrouter/diag/events.py)."""

from __future__ import annotations

import json
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from mrouter.diag.events import (
    FIELDS,
    Event,
    EventKind,
    EventLog,
    EventRing,
    EventsError,
    EventWriter,
    make,
    parse_lines,
    read_events,
)

G = IPv4Address("239.1.1.1")
S = IPv4Address("198.51.100.2")


def _sample(kind: EventKind) -> Event:
    needs_iface, required = FIELDS[kind]
    fields: dict[str, Any] = {f: "x" for f in required}
    return make(kind, 1.5, "dn0" if needs_iface else None, **fields)


def test_every_kind_has_a_schema_row() -> None:
    assert set(FIELDS) == set(EventKind)


@pytest.mark.parametrize("kind", list(EventKind))
def test_round_trip_through_json(kind: EventKind) -> None:
    event = _sample(kind)
    (back,) = parse_lines([event.to_json()])
    assert back == event


def test_values_become_json() -> None:
    e = make("membership_changed", 2.0, "dn0", group=G, filter_mode="EXCLUDE",
             sources=frozenset({IPv4Address("10.0.0.2"), IPv4Address("10.0.0.1")}))
    assert json.loads(e.to_json()) == {"time": 2.0, "kind": "membership_changed",
                                       "iface": "dn0", "group": "239.1.1.1",
                                       "filter_mode": "EXCLUDE",
                                       "sources": ["10.0.0.1", "10.0.0.2"]}


def test_missing_field_names_the_field() -> None:
    with pytest.raises(EventsError, match=r"mfc_add event needs the field.*oifs"):
        make("mfc_add", 1.0, source=S, group=G, iif="up0")


def test_interface_required() -> None:
    with pytest.raises(EventsError, match="igmp_in event needs an interface"):
        make("igmp_in", 1.0, None, type="report", src=S, group=G, version=2)


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "ev.jsonl"
    p.write_text(_sample(EventKind.DAEMON_STARTED).to_json() + "\n\n{not json\n")
    with pytest.raises(EventsError, match=r"ev.jsonl line 3: not JSON"):
        read_events(p)
    p.write_text('{"kind": "teleport", "time": 1}\n')
    with pytest.raises(EventsError, match="unknown kind 'teleport'"):
        read_events(p)


def test_writer_appends_lines_that_read_back(tmp_path: Path) -> None:
    p = tmp_path / "ev.jsonl"
    log = EventLog(writer=EventWriter(p), wall_clock=lambda: 1700000000.0)
    log.record("daemon_started", 0.0)
    log.record(EventKind.MFC_ADD, 1.25, source=S, group=G, iif="up0", oifs=["dn0"])
    log.close()
    events = read_events(p)
    assert [e.kind for e in events] == [EventKind.DAEMON_STARTED, EventKind.MFC_ADD]
    assert events[1].fields["oifs"] == ["dn0"] and events[1].wall == 1700000000.0
    assert len(p.read_text().splitlines()) == 2


def test_ring_cursor_never_repeats_and_counts_losses() -> None:
    ring = EventRing(capacity=3)
    for i in range(2):
        ring.append(make("daemon_started", float(i)))
    first = ring.since(0)
    assert [e.time for e in first.events] == [0.0, 1.0] and first.lost == 0
    assert ring.since(first.cursor).events == ()
    for i in range(2, 7):
        ring.append(make("daemon_started", float(i)))
    later = ring.since(first.cursor)
    assert [e.time for e in later.events] == [4.0, 5.0, 6.0]
    assert later.lost == 2  # events 2.0 and 3.0 fell out of the ring
    assert later.cursor == 7
    limited = ring.since(first.cursor, limit=1)
    assert [e.time for e in limited.events] == [4.0] and limited.cursor == 5


def test_serve_is_the_control_handler() -> None:
    log = EventLog(capacity=10)
    log.record("iface_changed", 3.0, "dn0", state="down")
    reply = log.serve({"command": "events", "since": 0})
    assert reply["cursor"] == 1 and reply["events"][0]["state"] == "down"
    assert log.serve({"command": "events", "since": "now"})["events"] == []
    with pytest.raises(EventsError):
        log.serve({"command": "events", "since": "yesterday"})


def test_engine_actions_become_events() -> None:
    from mrouter.diag.events import from_action
    from mrouter.igmp.engine import (
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

    q = from_action(SendQuery("dn0", IPv4Address("224.0.0.1"), Query(version=3)), 5.0)
    assert q is not None and q.kind is EventKind.IGMP_OUT
    assert dict(q.fields) == {"dst": "224.0.0.1", "type": "query", "group": None,
                              "version": 3, "sources": []}
    m = from_action(MembershipChanged("dn0", G, FilterMode.INCLUDE, frozenset()), 6.0)
    assert m is not None and m.fields["filter_mode"] == "INCLUDE" and m.fields["sources"] == []
    qc = from_action(QuerierChanged("dn0", None, False), 7.0)
    assert qc is not None and qc.fields == {"querier": None, "is_self": False}
    assert from_action(Dropped("dn0", DropReason.BAD_GROUP, "x"), 8.0) is None
    t = from_action(TimerExpired("dn0", TimerName.SOURCE, G, IPv4Address("198.51.100.1")), 8.5)
    assert t is not None and t.kind is EventKind.TIMER_EXPIRED and t.iface == "dn0"
    assert dict(t.fields) == {"timer": "source", "group": str(G), "source": "198.51.100.1"}
    t = from_action(TimerExpired("dn0", TimerName.OTHER_QUERIER), 8.6)
    assert t is not None and dict(t.fields) == {"timer": "other_querier", "group": None}
    log = EventLog()
    assert log.record_action(Dropped("dn0", DropReason.BAD_GROUP, "x"), 8.0) is None
    assert log.record_action(QuerierChanged("dn0", G, False), 9.0) is not None
    assert log.ring.cursor == 1


@pytest.mark.parametrize(("records", "expected"), [
    (((3, ()),), "leave"),  # TO_IN {}
    (((6, ("10.0.0.1",)),), "leave"),  # BLOCK
    (((4, ()),), "report"),  # TO_EX {}: join
    (((3, ()), (4, ())), "report"),
])
def test_v3_report_or_leave(records: tuple[tuple[int, tuple[str, ...]], ...],
                            expected: str) -> None:
    from mrouter.diag.events import igmp_fields
    from mrouter.igmp.messages import GroupRecord, RecordType, V3Report

    msg = V3Report(tuple(GroupRecord(RecordType(t), G, tuple(map(IPv4Address, s)))
                         for t, s in records))
    fields = igmp_fields(msg)
    assert fields["type"] == expected and fields["version"] == 3 and fields["group"] == str(G)
