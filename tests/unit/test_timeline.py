"""Events -> timeline SVG/HTML (mrouter/diag/timeline.py): well-formed, one lane per
interface, bars where the events put them."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from mrouter.cli.diag import main as diag_main
from mrouter.diag.events import Event, make
from mrouter.diag.timeline import LABEL_WIDTH, RIGHT_MARGIN, build, render_html, render_svg

SVG = "{http://www.w3.org/2000/svg}"
G = "239.1.1.1"
S = "198.51.100.2"


def story() -> list[Event]:
    """A receiver on dn0 joins at 10 s and leaves at 60 s; h3 on dn1 joins at 30 s and
    never leaves. The route follows membership. The whole story runs from 0 s to 100 s."""
    return [
        make("daemon_started", 0.0),
        make("igmp_out", 1.0, "dn0", type="query", dst="224.0.0.1", group=None, version=3),
        make("igmp_out", 1.0, "dn1", type="query", dst="224.0.0.1", group=None, version=3),
        make("querier_changed", 1.0, "dn0", querier="192.0.2.1", is_self=True),
        make("igmp_in", 10.0, "dn0", type="report", src="192.0.2.2", group=G, version=3),
        make("membership_changed", 10.0, "dn0", group=G, filter_mode="EXCLUDE", sources=[]),
        make("upcall", 12.0, "up0", type="NOCACHE", source=S, group=G),
        make("mfc_add", 12.0, source=S, group=G, iif="up0", oifs=["dn0"]),
        make("igmp_in", 30.0, "dn1", type="report", src="203.0.113.11", group=G, version=2),
        make("membership_changed", 30.0, "dn1", group=G, filter_mode="EXCLUDE", sources=[]),
        make("mfc_update", 30.0, source=S, group=G, iif="up0", oifs=["dn0", "dn1"]),
        make("mfc_counters", 50.0, source=S, group=G, packets=3800, bytes=1, wrong_if=0),
        make("igmp_in", 60.0, "dn0", type="leave", src="192.0.2.2", group=G, version=2),
        make("membership_changed", 60.0, "dn0", group=G, filter_mode="INCLUDE", sources=[]),
        make("mfc_update", 61.0, source=S, group=G, iif="up0", oifs=["dn1"]),
        make("forward_decision", 50.0, "up0", source=S, group=G, ttl=8, oifs=["dn1"],
             held_back=[], reason=None),  # not drawn
        make("timer_expired", 70.0, "dn1", timer="other_querier", group=None),
        make("iface_changed", 80.0, "dn1", state="down"),
        make("daemon_stopped", 100.0),
    ]


WIDTH = 1000.0


def x_of(t: float) -> float:
    return LABEL_WIDTH + t * (WIDTH - LABEL_WIDTH - RIGHT_MARGIN) / 100.0


def test_svg_is_xml_with_one_lane_per_interface() -> None:
    root = ET.fromstring(render_svg(story(), width=WIDTH))
    lanes = [g.get("data-iface") for g in root.iter(f"{SVG}g") if g.get("class") == "lane"]
    assert lanes == ["dn0", "dn1", "up0"]


def bars(root: ET.Element, iface: str, kind: str) -> list[tuple[float, float]]:
    (lane,) = [g for g in root.iter(f"{SVG}g") if g.get("data-iface") == iface]
    return [(float(r.get("x", "")), float(r.get("x", "")) + float(r.get("width", "")))
            for r in lane.iter(f"{SVG}rect") if r.get("class") == f"bar {kind}"]


def test_bar_extents_follow_event_times() -> None:
    root = ET.fromstring(render_svg(story(), width=WIDTH))
    expected = {("dn0", "membership"): (10, 60), ("dn0", "forwarding"): (12, 61),
                # still on at the end: drawn to the last event
                ("dn1", "membership"): (30, 100), ("dn1", "forwarding"): (30, 100)}
    for (name, kind), (start, end) in expected.items():
        (extent,) = bars(root, name, kind)
        assert extent == pytest.approx((x_of(start), x_of(end)), abs=0.02), (name, kind)
    assert bars(root, "up0", "forwarding") == []


def test_proxy_upstream_membership_is_a_bar_on_the_upstream_lane() -> None:
    events = [
        make("daemon_started", 0.0),
        make("membership_changed", 10.0, "dn0", group=G, filter_mode="EXCLUDE", sources=[]),
        make("upstream_membership", 10.0, "up0", group=G, filter_mode="EXCLUDE", sources=[]),
        make("membership_changed", 40.0, "dn0", group=G, filter_mode="INCLUDE", sources=[]),
        make("upstream_membership", 41.0, "up0", group=G, filter_mode="INCLUDE", sources=[]),
        make("upstream_membership", 70.0, "up0", group=G, filter_mode="INCLUDE",
             sources=[S]),  # a source-specific join: still held upstream, to the end
        make("daemon_stopped", 100.0),
    ]
    svg = render_svg(events, width=WIDTH)
    root = ET.fromstring(svg)
    drawn = [x for extent in bars(root, "up0", "upstream") for x in extent]
    assert drawn == pytest.approx([x_of(10), x_of(41), x_of(70), x_of(100)], abs=0.02)
    assert bars(root, "up0", "membership") == [] and bars(root, "dn0", "upstream") == []
    assert f"joined upstream</tspan> {G}" in svg


def test_marks_and_packet_counts() -> None:
    tl = build(story())
    dn0 = next(ln for ln in tl.lanes if ln.iface == "dn0")
    assert [(m.kind, m.time, m.received) for m in dn0.marks if m.kind != "event"] == [
        ("query", 1.0, False), ("report", 10.0, True), ("leave", 60.0, True)]
    assert [b.label for b in dn0.bars if b.kind == "forwarding"] == ["3800 pkts"]
    svg = render_svg(story())
    assert "querier: this router" in svg and "link down" in svg and "upcall: new flow" in svg
    up0 = next(ln for ln in tl.lanes if ln.iface == "up0")
    assert [m.label for m in up0.marks] == ["daemon started", "upcall: new flow",
                                           "daemon stopped"]
    assert "NOCACHE upcall for 198.51.100.2 -&gt; 239.1.1.1" in svg


def test_empty_and_html() -> None:
    ET.fromstring(render_svg([]))
    html = render_html(story(), title="a <class>")
    assert "<svg" in html and "Legend" in html and "a &lt;class&gt;" in html


def test_cli_writes_svg(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ev = tmp_path / "ev.jsonl"
    ev.write_text("".join(e.to_json() + "\n" for e in story()))
    assert diag_main(["timeline", str(ev), "-o", str(tmp_path / "t.svg")]) == 0
    ET.parse(tmp_path / "t.svg")
    assert diag_main(["timeline", str(ev), "-o", str(tmp_path / "t.png")]) == 2
    assert "must end in .svg or .html" in capsys.readouterr().err


def test_packet_label_counts_packets_while_the_bar_was_on() -> None:
    events = [
        make("mfc_add", 0.0, source=S, group=G, iif="up0", oifs=["dn0"]),
        make("mfc_counters", 5.0, source=S, group=G, packets=500, bytes=0, wrong_if=0),
        make("mfc_update", 5.0, source=S, group=G, iif="up0", oifs=["dn0", "dn1"]),
        make("mfc_delete", 9.0, source=S, group=G, packets=900),
    ]
    labels = {ln.iface: [b.label for b in ln.bars] for ln in build(events).lanes}
    assert labels == {"dn0": ["900 pkts"], "dn1": ["400 pkts"], "up0": []}
