"""IPv6 in the event stream and on the timeline (mrouter/diag/events.py, timeline.py).

Hand-made events of a dual-stack router, as the schema in events.py says a daemon
writes them: IPv6 addresses in every field, ``family`` "ipv6", mld_in/mld_out for
MLD. They must survive the events file and draw in IPv6 lanes of their own."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

import pytest

from mrouter.diag.events import (
    Event,
    EventKind,
    EventsError,
    EventWriter,
    from_action,
    igmp_fields,
    make,
    read_events,
)
from mrouter.diag.timeline import build, render_html, render_svg
from mrouter.igmp.actions import (
    MembershipChanged,
    QuerierChanged,
    SendQuery,
    TimerExpired,
    TimerName,
)
from mrouter.igmp.tables import FilterMode
from mrouter.mld.messages import AddressRecord, Query, RecordType, V1Done, V1Report, V2Report

SVG = "{http://www.w3.org/2000/svg}"
G6, S6 = IPv6Address("ff15::1"), IPv6Address("2001:db8:1::2")
H1, H2 = IPv6Address("fe80::11"), IPv6Address("fe80::12")
G4, S4 = "239.1.1.1", "198.51.100.2"


def dual_stack() -> list[Event]:
    """dn0 carries both families: an IPv4 receiver 10-60 s; IPv6 listeners h1 (fe80::11,
    MLDv2) from 20 s and h2 (fe80::12, MLDv1) 30-50 s, forwarding of S6 -> G6 from 21 s
    to the end; the link goes down at 80 s; the daemon stops at 100 s."""
    report = V2Report((AddressRecord(RecordType.CHANGE_TO_EXCLUDE_MODE, G6),
                       AddressRecord(RecordType.CHANGE_TO_EXCLUDE_MODE,
                                     IPv6Address("ff02::1:ff00:11"))))
    return [
        make("daemon_started", 0.0),
        make("igmp_out", 1.0, "dn0", type="query", dst="224.0.0.1", group=None, version=3),
        make("mld_out", 1.0, "dn0", dst=IPv6Address("ff02::1"),
             **igmp_fields(Query(version=2))),
        make("querier_changed", 1.0, "dn0", querier=IPv6Address("fe80::1"), is_self=True),
        make("igmp_in", 10.0, "dn0", type="report", src="192.0.2.2", group=G4, version=3),
        make("membership_changed", 10.0, "dn0", group=G4, filter_mode="EXCLUDE", sources=[]),
        make("mld_in", 15.0, "dn0", src=H1, type="report", group=None, version=2,
             records=[{"type": "TO_EX", "group": "ff02::16", "sources": []}]),
        make("mld_in", 20.0, "dn0", src=H1, **igmp_fields(report)),
        make("membership_changed", 20.0, "dn0", group=G6, filter_mode=FilterMode.EXCLUDE,
             sources=frozenset()),
        make("upcall", 21.0, "up0", type="NOCACHE", source=S6, group=G6),
        make("mfc_add", 21.0, source=S6, group=G6, iif="up0", oifs=["dn0"]),
        make("igmp_in", 30.0, "dn0", src=H2, **igmp_fields(V1Report(G6))),  # -> mld_in
        make("mfc_counters", 40.0, source=S6, group=G6, packets=950, bytes=1, wrong_if=0),
        make("mld_in", 50.0, "dn0", src=H2, **igmp_fields(V1Done(G6))),
        make("igmp_in", 60.0, "dn0", type="leave", src="192.0.2.2", group=G4, version=2),
        make("membership_changed", 60.0, "dn0", group=G4, filter_mode="INCLUDE", sources=[]),
        make("iface_changed", 80.0, "dn0", state="down"),
        make("daemon_stopped", 100.0),
    ]


def test_ipv6_events_say_their_family_and_ipv4_ones_stay_as_they_were() -> None:
    events = dual_stack()
    by_time = {(e.time, e.kind.value): e for e in events}
    ipv4 = by_time[(10.0, "membership_changed")]
    assert "family" not in ipv4.fields and ipv4.family == "ipv4"
    assert json.loads(ipv4.to_json()) == {"time": 10.0, "kind": "membership_changed",
                                          "iface": "dn0", "group": G4,
                                          "filter_mode": "EXCLUDE", "sources": []}
    ipv6 = by_time[(20.0, "membership_changed")]
    assert dict(ipv6.fields) == {"group": "ff15::1", "filter_mode": "EXCLUDE",
                                 "sources": [], "family": "ipv6"}
    assert by_time[(21.0, "mfc_add")].fields["source"] == "2001:db8:1::2"
    assert by_time[(21.0, "upcall")].family == "ipv6"
    assert by_time[(1.0, "querier_changed")].fields["querier"] == "fe80::1"
    assert by_time[(80.0, "iface_changed")].family is None


def test_mld_messages_are_mld_kinds() -> None:
    events = dual_stack()
    kinds = {(e.time, e.kind) for e in events}
    assert (1.0, EventKind.MLD_OUT) in kinds and (1.0, EventKind.IGMP_OUT) in kinds
    # an igmp_in given an MLD message is recorded as mld_in
    v1 = next(e for e in events if e.time == 30.0)
    assert v1.kind is EventKind.MLD_IN
    assert dict(v1.fields) == {"src": "fe80::12", "type": "report", "group": "ff15::1",
                               "version": 1, "family": "ipv6"}
    done = next(e for e in events if e.time == 50.0)
    assert (done.fields["type"], done.fields["version"]) == ("leave", 1)
    v2 = next(e for e in events if e.time == 20.0 and e.kind is EventKind.MLD_IN)
    assert v2.fields["version"] == 2 and v2.fields["records"][0] == {
        "type": "TO_EX", "group": "ff15::1", "sources": []}


def test_an_mldv2_report_of_only_to_in_empty_is_a_leave() -> None:
    leave = V2Report((AddressRecord(RecordType.CHANGE_TO_INCLUDE_MODE, G6),))
    assert igmp_fields(leave)["type"] == "leave"


def test_ipv6_events_round_trip_through_the_events_file(tmp_path: Path) -> None:
    path = tmp_path / "ev.jsonl"
    writer = EventWriter(path)
    for e in dual_stack():
        writer.write(e)
    writer.close()
    back = read_events(path)
    assert [e.to_dict() for e in back] == [e.to_dict() for e in dual_stack()]
    assert [e.kind for e in back] == [e.kind for e in dual_stack()]
    assert sum(e.family == "ipv6" for e in back) == 10


def test_a_file_line_with_an_ipv6_igmp_in_reads_as_mld_in(tmp_path: Path) -> None:
    path = tmp_path / "ev.jsonl"
    path.write_text(json.dumps({"time": 1, "kind": "igmp_in", "iface": "dn0", "type":
                                "report", "src": "fe80::11", "group": "ff15::1",
                                "version": 1}) + "\n")
    (e,) = read_events(path)
    assert e.kind is EventKind.MLD_IN and e.family == "ipv6"


def test_a_bad_family_is_one_clear_error() -> None:
    with pytest.raises(EventsError, match='"family" must be "ipv4" or "ipv6"'):
        make("membership_changed", 1.0, "dn0", group="ff15::1", filter_mode="INCLUDE",
             sources=[], family="inet6")


def test_mld_engine_actions_become_ipv6_events() -> None:
    q = from_action(SendQuery("dn0", IPv6Address("ff02::1"), Query(version=2)), 5.0)
    assert q is not None and q.kind is EventKind.MLD_OUT and q.fields["dst"] == "ff02::1"
    m = from_action(MembershipChanged("dn0", G6, FilterMode.INCLUDE, frozenset({S6})), 5.0)
    assert m is not None and dict(m.fields)["sources"] == ["2001:db8:1::2"]
    assert m.family == "ipv6"
    # no address in the action: the daemon says the family
    nobody = from_action(QuerierChanged("dn0", None, False), 5.0, "ipv6")
    assert nobody is not None and nobody.family == "ipv6"
    timer = from_action(TimerExpired("dn0", TimerName.OTHER_QUERIER), 5.0, "ipv6")
    assert timer is not None and timer.family == "ipv6"
    ipv4 = from_action(QuerierChanged("dn0", IPv4Address("192.0.2.1"), True), 5.0, "ipv4")
    assert ipv4 is not None and "family" not in ipv4.fields


def lanes(root: ET.Element) -> list[str | None]:
    return [g.get("data-iface") for g in root.iter(f"{SVG}g") if g.get("class") == "lane"]


def lane(root: ET.Element, name: str) -> ET.Element:
    (found,) = [g for g in root.iter(f"{SVG}g")
                if g.get("class") == "lane" and g.get("data-iface") == name]
    return found


def bars(root: ET.Element, name: str, kind: str) -> list[tuple[float, float, str]]:
    return [(float(r.get("data-start", 0)), float(r.get("data-end", 0)),
             "".join(r.itertext()))
            for r in lane(root, name).iter(f"{SVG}rect") if r.get("class") == f"bar {kind}"]


def test_ipv6_has_its_own_lane_under_the_interfaces_ipv4_lane() -> None:
    root = ET.fromstring(render_svg(dual_stack(), width=1000.0))
    assert lanes(root) == ["dn0", "dn0 IPv6", "up0 IPv6"]
    texts = "".join(lane(root, "dn0 IPv6").itertext())
    assert "MLD queries" in texts and "ff15::1" in texts
    assert "IGMP queries" in "".join(lane(root, "dn0").itertext())


def test_ipv6_bars_follow_the_ipv6_events() -> None:
    root = ET.fromstring(render_svg(dual_stack(), width=1000.0))
    (v4,) = bars(root, "dn0", "membership")
    assert v4[:2] == (10.0, 60.0)
    (v6,) = bars(root, "dn0 IPv6", "membership")
    assert v6[:2] == (20.0, 100.0) and "dn0 IPv6 has members of ff15::1" in v6[2]
    (fwd,) = bars(root, "dn0 IPv6", "forwarding")
    assert fwd[:2] == (21.0, 100.0) and "2001:db8:1::2 -> ff15::1" in fwd[2]
    hosts = {text.split(" is a member")[0]: (a, b)
             for a, b, text in bars(root, "dn0 IPv6", "host")}
    assert hosts == {"fe80::11": (20.0, 100.0), "fe80::12": (30.0, 50.0)}
    (querier,) = bars(root, "dn0 IPv6", "querier")
    assert querier[:2] == (1.0, 100.0)
    assert not bars(root, "dn0", "querier")  # the MLD querier is not IGMP's


def test_mld_marks_say_mld_and_link_scope_reports_are_grey() -> None:
    root = ET.fromstring(render_svg(dual_stack(), width=1000.0))
    marks = {(g.get("class"), float(g.get("data-t", 0))): "".join(g.itertext())
             for g in lane(root, "dn0 IPv6").iter(f"{SVG}g")
             if (g.get("class") or "").startswith("mark")}
    assert "general query to ff02::1 (MLDv2, sent)" in marks[("mark query sent", 1.0)]
    assert "ff02::16" in marks[("mark router-report", 15.0)]
    assert "which no router forwards" in marks[("mark router-report", 15.0)]
    assert "(MLDv1, received)" in marks[("mark report", 30.0)]
    assert "leave from fe80::12" in marks[("mark leave", 50.0)]
    # the link change has no family: it ticks on both lanes of dn0
    for name in ("dn0", "dn0 IPv6"):
        assert any("link down" in "".join(g.itertext()) for g in lane(root, name).iter(f"{SVG}g")
                   if g.get("class") == "mark event")


def test_ipv6_only_run_has_no_ipv4_lanes() -> None:
    events = [e for e in dual_stack() if e.family in ("ipv6", None)]
    assert [ln.iface for ln in build(events).lanes] == ["dn0 IPv6", "up0 IPv6"]


def test_html_page_draws_ipv6() -> None:
    page = render_html(dual_stack(), title="dual stack")
    assert 'data-iface="dn0 IPv6"' in page and "MLD queries" in page
