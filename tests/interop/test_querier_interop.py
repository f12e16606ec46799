"""Querier election on querier-election.toml against a real peer querier.

The peers: igmpproxy 0.3 from Debian (it queries with IGMPv2 on its downstream
interfaces; this version has no election of its own and never stops querying) and a
second ``mrouter querier``. RFC 3376 §6.6.2 / RFC 2236 §3: the lower address wins; the
loser falls silent and resumes the Other Querier Present Interval after the winner's
last query. Timers are short (QI 4 s, QRI 2 s: OQPI = 2 x 4 + 1 = 9 s) so that a takeover
takes seconds.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))
from querier_lab import Capture, Querier

from mrouter.lab.lab import Lab, Node

pytestmark = [pytest.mark.interop, pytest.mark.netns]

R1, R2 = "192.0.2.1", "192.0.2.2"
TIMERS = ("--query-interval", "4", "--query-response-interval", "2")
OQPI = 2 * 4 + 2 / 2


def igmpproxy(node: Node, tmp_path: Path) -> subprocess.Popen[str]:
    """igmpproxy on ``node``: eth0 downstream (where it queries), a veth as upstream."""
    for argv in (["ip", "link", "add", "up0", "type", "veth", "peer", "name", "up0p"],
                 ["ip", "addr", "add", "198.51.100.1/24", "dev", "up0"],
                 ["ip", "link", "set", "up0p", "up"],
                 ["ip", "link", "set", "up0", "up"]):
        node.run(argv, check=True)
    conf = tmp_path / f"igmpproxy-{node.name}.conf"
    conf.write_text(
        "phyint up0 upstream ratelimit 0 threshold 1\n  altnet 0.0.0.0/0\n"
        "phyint eth0 downstream ratelimit 0 threshold 1\n"
        "phyint up0p disabled\nphyint lo disabled\n")
    return node.spawn(["igmpproxy", "-n", str(conf)], stdout=subprocess.DEVNULL,
                      stderr=subprocess.DEVNULL)


def general_queries(q: Querier, seconds: float, after: float) -> list[dict[str, object]]:
    """General queries sent later than ``after`` (wall-clock), waiting ``seconds``."""
    return [e for e in q.events.drain(seconds)
            if e["event"] == "query" and e["group"] == "0.0.0.0" and e["time"] > after]


def test_mrouter_lower_than_igmpproxy_stays_querier(
        lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    lab = lab_factory("querier-election.toml")
    r1, r2 = lab.node("r1"), lab.node("r2")
    capture = Capture(r1, "eth0")
    ours = Querier(r1, "eth0", *TIMERS)
    igmpproxy(r2, tmp_path)
    assert capture.wait(R2, "query", 10.0) is not None, "igmpproxy sent no query"
    time.sleep(0.5)
    events = ours.events.drain(5.0)
    assert [e for e in events if e["event"] == "querier"] == []  # nothing changed
    assert any(e["event"] == "dropped" and e["reason"] == "older-querier" for e in events)
    assert len([e for e in events if e["event"] == "query"]) >= 1  # still querying
    assert ours.groups()["querier"] == R1


def test_igmpproxy_lower_wins_and_mrouter_resumes_after_it_goes(
        lab_factory: Callable[..., Lab], tmp_path: Path) -> None:
    lab = lab_factory("querier-election.toml")
    r1, r2 = lab.node("r1"), lab.node("r2")
    capture = Capture(r2, "eth0")
    ours = Querier(r2, "eth0", *TIMERS)
    proxy = igmpproxy(r1, tmp_path)
    proxy_query = capture.wait(R1, "query", 10.0)
    assert proxy_query is not None, "igmpproxy sent no query"
    lost = ours.events.get(lambda e: e["event"] == "querier", 3.0)
    assert lost is not None and lost["querier"] == R1 and not lost["is_self"]
    # silent while the lower querier is there
    assert general_queries(ours, 3.0, after=lost["time"]) == []
    proxy.terminate()
    proxy.wait(5)
    back = ours.events.get(lambda e: e["event"] == "querier", OQPI + 3)
    assert back is not None and back["is_self"] and back["querier"] == R2
    assert OQPI - 0.5 <= back["time"] - proxy_query <= OQPI + 0.5


@pytest.mark.parametrize("first", ["r1", "r2"])
def test_two_mrouters_lower_wins_and_loser_resumes(
        lab_factory: Callable[..., Lab], first: str) -> None:
    lab = lab_factory("querier-election.toml")
    order = ["r1", "r2"] if first == "r1" else ["r2", "r1"]
    q: dict[str, Querier] = {}
    for name in order:
        q[name] = Querier(lab.node(name), "eth0", *TIMERS)
        time.sleep(1.0)
    lost = q["r2"].events.get(lambda e: e["event"] == "querier" and not e["is_self"], 5.0)
    assert lost is not None and lost["querier"] == R1
    assert general_queries(q["r2"], 5.0, after=lost["time"]) == []  # r2 is silent
    winner = q["r1"].events.drain(0)
    assert all(e["event"] != "querier" for e in winner)  # r1 never lost
    assert any(e["event"] == "query" for e in winner), "r1 stopped querying"
    q["r1"].proc.terminate()
    assert q["r1"].proc.wait(5) == 0
    winner += q["r1"].events.drain(0.2)
    last = max(float(e["time"]) for e in winner
               if e["event"] == "query")
    back = q["r2"].events.get(lambda e: e["event"] == "querier", OQPI + 3)
    assert back is not None and back["is_self"] and back["querier"] == R2
    assert OQPI - 0.5 <= back["time"] - last <= OQPI + 0.5
