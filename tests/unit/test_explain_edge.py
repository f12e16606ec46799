"""explain at the edge of a PIM domain: what a proxy says about its upstream side (pure)."""

from __future__ import annotations

from ipaddress import IPv4Address

from mrouter.diag.explain import EdgeView, edge_notes

G = IPv4Address("239.1.2.3")
FRR = ("vtysh -c 'show ip igmp groups' -c 'show ip mroute 239.1.2.3' -c 'show ip pim "
       "upstream' (and 'show ip rpf SOURCE')")


def test_member_with_traffic_below_a_pim_router() -> None:
    view = EdgeView("up0", "EXCLUDE {}", (("198.51.100.2", 120),), ("203.0.113.1",))
    assert edge_notes(G, view, 2.0) == [
        "upstream up0: this proxy is a member of 239.1.2.3 there (EXCLUDE {}); the router "
        "above learns it from its IGMP reports",
        "traffic to 239.1.2.3 arrives upstream on up0 (from 198.51.100.2: 120 packets)",
        f"the router above (203.0.113.1) speaks PIM: the rest of the path is in the PIM "
        f"domain; on it (FRR) run: {FRR}",
    ]


def test_member_without_traffic_and_no_hello_heard() -> None:
    view = EdgeView("up0", "INCLUDE {198.51.100.2}", (), None)
    notes = edge_notes(G, view, 2.0)
    assert notes[0].endswith("(INCLUDE {198.51.100.2}); the router above learns it from "
                             "its IGMP reports")
    assert notes[1] == ("no traffic to 239.1.2.3 has arrived upstream on up0 (no kernel "
                        "route comes in on it)")
    assert notes[2] == (f"no PIM hello was heard on up0 in 2 s; if the router above runs "
                        f"PIM (FRR), see the rest there: {FRR}")


def test_not_a_member_and_not_listened() -> None:
    notes = edge_notes(G, EdgeView("up0", None, (), None))
    assert notes[0] == ("upstream up0: this proxy is not a member of 239.1.2.3 there, so "
                        "the router above has no reason to send it (no host joined "
                        "downstream?)")
    assert notes[2].endswith("(--listen also tells whether it speaks PIM)")
