"""The timeline as a class reads it (issue 17): each host's membership and reports, the
routers' own link-local reports apart, the scenario's steps, readable tooltips, a width
from the span, and an HTML page that zooms without fetching anything."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from mrouter.diag.events import Event, make
from mrouter.diag.timeline import LABEL_WIDTH, PX_PER_SECOND, RIGHT_MARGIN, render_html, render_svg

SVG = "{http://www.w3.org/2000/svg}"
G, S = "239.1.1.1", "198.51.100.2"
H1, H2, R1 = "192.0.2.11", "192.0.2.12", "192.0.2.1"


def report(t: float, host: str, rtype: str = "TO_EX", group: str = G,
           kind: str = "report", sources: tuple[str, ...] = ()) -> Event:
    return make("igmp_in", t, "dn0", type=kind, src=host, group=group, version=3,
                records=[{"type": rtype, "group": group, "sources": list(sources)}])


def join_leave() -> list[Event]:
    """h1 joins at 1 s, h2 at 3 s, h1 leaves at 5 s, h2 at 7 s; the group ends at 8 s."""
    return [
        make("daemon_started", 0.0),
        make("step", 0.0, text="daemon up", names={H1: "h1", H2: "h2"}),
        make("querier_changed", 0.0, "dn0", querier=R1, is_self=True),
        make("igmp_out", 0.0, "dn0", type="query", dst="224.0.0.1", group=None, version=3,
             sources=[]),
        make("igmp_in", 0.01, "dn0", type="report", src=R1, group="224.0.0.2", version=3,
             records=[{"type": "TO_EX", "group": "224.0.0.2", "sources": []},
                      {"type": "TO_EX", "group": "224.0.0.22", "sources": []}]),
        make("step", 1.0, text="h1 joins 239.1.1.1: r1 starts forwarding"),
        report(1.0, H1),
        make("membership_changed", 1.0, "dn0", group=G, filter_mode="EXCLUDE", sources=[]),
        make("mfc_add", 1.0, source=S, group=G, iif="up0", oifs=["dn0"]),
        make("step", 3.0, text="h2 joins too"),
        report(3.0, H2),
        make("step", 5.0, text="h1 leaves: h2 still answers"),
        report(5.0, H1, "TO_IN", kind="leave"),
        make("igmp_out", 5.0, "dn0", type="query", dst=G, group=G, version=3, sources=[]),
        report(5.3, H2, "IS_EX"),
        make("step", 7.0, text="h2 leaves"),
        report(7.0, H2, "TO_IN", kind="leave"),
        make("timer_expired", 8.0, "dn0", timer="group", group=G),
        make("membership_changed", 8.0, "dn0", group=G, filter_mode="INCLUDE", sources=[]),
        make("mfc_update", 8.0, source=S, group=G, iif="up0", oifs=[]),
        make("daemon_stopped", 10.0),
    ]


def lane(root: ET.Element, iface: str) -> ET.Element:
    (g,) = [g for g in root.iter(f"{SVG}g") if g.get("data-iface") == iface]
    return g


def of_class(root: ET.Element, cls: str) -> list[ET.Element]:
    return [e for e in root.iter() if e.get("class") == cls]


def title(e: ET.Element) -> str:
    t = e.find(f"{SVG}title")
    assert t is not None and t.text is not None
    return t.text


def test_each_host_has_a_bar_from_its_report_to_its_leave() -> None:
    dn0 = lane(ET.fromstring(render_svg(join_leave())), "dn0")
    hosts = {title(b).split(" ")[0]: (float(b.get("data-start", "")),
                                      float(b.get("data-end", "")))
             for b in of_class(dn0, "bar host")}
    # the moment the class should see: h1 has left at 5 s, h2 is a member until 7 s,
    # the group's membership and the forwarding go on until 8 s
    assert hosts == {"h1": (1.0, 5.0), "h2": (3.0, 7.0)}
    ((m0, m1),) = [(float(b.get("data-start", "")), float(b.get("data-end", "")))
                   for b in of_class(dn0, "bar membership")]
    ((f0, f1),) = [(float(b.get("data-start", "")), float(b.get("data-end", "")))
                   for b in of_class(dn0, "bar forwarding")]
    assert (m0, m1) == (1.0, 8.0) and (f0, f1) == (1.0, 8.0)


def test_reports_name_host_record_type_sources_and_time() -> None:
    dn0 = lane(ET.fromstring(render_svg(join_leave())), "dn0")
    reports = [title(m) for m in of_class(dn0, "mark report")]
    assert reports == [
        "1 s: report from h1 (192.0.2.11): TO_EX 239.1.1.1 {} (IGMPv3, received)",
        "3 s: report from h2 (192.0.2.12): TO_EX 239.1.1.1 {} (IGMPv3, received)",
        "5.3 s: report from h2 (192.0.2.12): IS_EX 239.1.1.1 {} (IGMPv3, received)"]
    leaves = [(m.get("data-host"), title(m)) for m in of_class(dn0, "mark leave")]
    assert leaves == [(H1, "5 s: leave from h1 (192.0.2.11): TO_IN 239.1.1.1 {} "
                           "(IGMPv3, received)"),
                      (H2, "7 s: leave from h2 (192.0.2.12): TO_IN 239.1.1.1 {} "
                           "(IGMPv3, received)")]


def test_a_leave_is_not_hidden_under_a_query() -> None:
    """The leave at 5 s and the query it causes at 5 s are on different rows."""
    dn0 = lane(ET.fromstring(render_svg(join_leave())), "dn0")
    (query,) = [m for m in of_class(dn0, "mark query sent") if m.get("data-t", "")
                .startswith("5.")]
    (leave,) = [m for m in of_class(dn0, "mark leave") if m.get("data-host") == H1]
    assert abs(float(query.get("data-y", "")) - float(leave.get("data-y", ""))) >= 10


def test_the_routers_own_link_local_report_is_not_a_host() -> None:
    dn0 = lane(ET.fromstring(render_svg(join_leave())), "dn0")
    (own,) = of_class(dn0, "mark router-report")
    assert "this router's own join of link-local groups" in title(own)
    assert all(f"({R1})" not in title(b) for b in of_class(dn0, "bar host"))
    assert len(of_class(dn0, "mark report")) == 3
    # nor are those groups' memberships (learnt from another router) and timers drawn
    events = [*join_leave(),
              make("membership_changed", 2.0, "dn0", group="224.0.0.22",
                   filter_mode="EXCLUDE", sources=[]),
              make("timer_expired", 6.0, "dn0", timer="group", group="224.0.0.22")]
    svg = render_svg(events)
    assert "224.0.0.22</text>" not in svg and "224.0.0.22 ran out" not in svg


def test_steps_are_numbered_on_a_track_with_lines_through_the_lanes() -> None:
    root = ET.fromstring(render_svg(join_leave()))
    steps = [(s.get("data-step"), float(s.get("data-t", ""))) for s in of_class(root, "step")]
    assert steps == [("1", 0.0), ("2", 1.0), ("3", 3.0), ("4", 5.0), ("5", 7.0)]
    texts = " ".join(t.text or "" for t in of_class(root, "steps")[0].iter(f"{SVG}text"))
    assert "h1 leaves" in texts and "h2 still answers" not in texts  # the short form
    assert len(of_class(root, "step-line")) == 5


def test_tooltips_read_as_sentences() -> None:
    svg = render_svg(join_leave())
    root = ET.fromstring(svg)
    tips = [t.text or "" for t in root.iter(f"{SVG}title")]
    assert "this router is the querier on dn0: 0 s to 10 s" in tips
    assert ("8 s: the group timer of 239.1.1.1 ran out: no member answered the queries"
            in tips)
    assert not [t for t in tips if "querier querier" in t or t.endswith("(in)")
                or t.strip() in ("", "(in)", "(out)")]


def test_width_follows_the_span_and_the_page_fetches_nothing() -> None:
    root = ET.fromstring(render_svg(join_leave()))
    assert float(root.get("width", "")) == LABEL_WIDTH + 10 * PX_PER_SECOND + RIGHT_MARGIN
    html = render_html(join_leave())
    assert 'width="100%"' in html and "zoom-in" in html
    assert not re.search(r"""(src|href)=|@import|url\((?!#)|fetch\(|XMLHttpRequest""", html)
