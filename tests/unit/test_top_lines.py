"""mrouter top's arithmetic and lines (mrouter/cli/top.py), on made-up daemon answers."""

from __future__ import annotations

from mrouter.cli.top import Snapshot, plain_lines, rates, screen

IFACES = [{"name": "dn0", "vif": 1, "address": "192.0.2.1", "role": "downstream",
           "active": True, "igmp": True, "querier": "192.0.2.1", "is_querier": True}]
GROUPS = [{"iface": "dn0", "group": "239.1.1.1", "filter_mode": "EXCLUDE", "sources": [],
           "static": False, "igmp": {"group_timer": 12.34,
                                     "hosts": [{"host": "192.0.2.11", "expires": 12.34}]}}]


def snap(t: float, packets: int, out: int) -> Snapshot:
    return Snapshot(t, [{**IFACES[0], "packets_in": 0, "packets_out": out}], GROUPS,
                    [{"source": "198.51.100.2", "group": "239.1.1.1", "iif": "up0",
                      "oifs": ["dn0"], "packets": packets, "wrong_if": 0, "age": 3.0}])


def test_packets_per_second_from_two_refreshes() -> None:
    first = rates(None, snap(10.0, 100, 100))
    assert first.routes == {("198.51.100.2", "239.1.1.1"): None}
    r = rates(snap(10.0, 100, 100), snap(12.0, 300, 250))
    assert r.routes == {("198.51.100.2", "239.1.1.1"): 100.0}
    assert (r.iface_in["dn0"], r.iface_out["dn0"]) == (0.0, 75.0)
    # a route deleted and added again starts its counter from 0: no negative rate
    assert rates(snap(12.0, 300, 250), snap(13.0, 20, 250)).routes == {
        ("198.51.100.2", "239.1.1.1"): 20.0}


def test_screen_and_plain_lines_show_timers_hosts_and_rates() -> None:
    r = rates(snap(10.0, 100, 100), snap(11.0, 150, 150))
    lines = screen(snap(11.0, 150, 150), r, "/run/m.sock")
    assert lines[0].startswith("mrouter top  ") and lines[0].endswith("/run/m.sock")
    assert any(ln.split()[:2] == ["dn0", "239.1.1.1"] and "12.3s" in ln
               and "192.0.2.11 (12.3s)" in ln for ln in lines)
    assert any(ln.startswith("198.51.100.2") and ln.split()[4] == "50.0" for ln in lines)
    plain = plain_lines(snap(11.0, 150, 150), r)
    assert [ln.split(" ", 2)[1] for ln in plain] == ["iface", "group", "route"]
    assert plain[2].endswith("route 198.51.100.2 239.1.1.1 up0 -> dn0 50.0 pkts/s "
                             "150 packets")
    assert "querier self in 0.0/s out 50.0/s" in plain[0]
