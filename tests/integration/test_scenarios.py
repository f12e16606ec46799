"""scripts/scenarios.py: each teaching scenario, at half speed (--scale 0.5, timers too),
runs real daemons, writes the merged events file and draws a picture naming the lanes."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.netns

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "scenarios.py"
SVG = "{http://www.w3.org/2000/svg}"


def run(name: str, out: Path) -> tuple[list[dict[str, Any]], ET.Element, str]:
    """One command, as the class runs it; returns events, the SVG root, the progress."""
    start = time.monotonic()
    done = subprocess.run([sys.executable, str(SCRIPT), name, "-o", str(out), "--scale",
                           "0.5"], capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    assert time.monotonic() - start < 15, "the reduced scenario should take under 15 s"
    events = [json.loads(line) for line in
              (out / f"{name}.events.jsonl").read_text().splitlines()]
    root = ET.parse(out / f"{name}.svg").getroot()
    assert "<svg" in (out / f"{name}.html").read_text()
    return events, root, done.stderr


def lanes(root: ET.Element) -> list[str | None]:
    return [g.get("data-iface") for g in root.iter(f"{SVG}g") if g.get("class") == "lane"]


def bars(root: ET.Element, lane: str, kind: str) -> list[tuple[float, float]]:
    (g,) = [g for g in root.iter(f"{SVG}g") if g.get("data-iface") == lane]
    return [(float(r.get("data-start", "")), float(r.get("data-end", "")))
            for r in g.iter(f"{SVG}rect") if r.get("class") == f"bar {kind}"]


def kinds(events: list[dict[str, Any]]) -> set[str]:
    return {e["kind"] for e in events}


@pytest.mark.timeout(40)
def test_join_leave(tmp_path: Path) -> None:
    events, root, progress = run("join-leave", tmp_path)
    assert {"daemon_started", "igmp_in", "igmp_out", "membership_changed", "mfc_add",
            "mfc_update", "upcall", "timer_expired", "daemon_stopped"} <= kinds(events)
    assert lanes(root) == ["r1 up0", "r1 dn0"]
    # one forwarding period: from h1's join (0.5 s) to after h2's leave (3.5 s)
    t0 = float(root.get("data-t0", ""))
    ((start, end),) = bars(root, "r1 dn0", "forwarding")
    assert 0.3 < start - t0 < 1.5 and 3.5 < end - t0 < 4.5, (start - t0, end - t0)
    assert "h2 leaves" in progress


@pytest.mark.timeout(40)
def test_querier_election(tmp_path: Path) -> None:
    events, root, _ = run("querier-election", tmp_path)
    assert {"daemon_started", "querier_changed", "igmp_in", "igmp_out",
            "membership_changed", "daemon_stopped"} <= kinds(events)
    assert lanes(root) == ["r1 eth0", "r2 eth0"]
    # r2 querier, then r1 (lower address) from its start until it stops, then r2 again
    changes = [(e["iface"], e["is_self"]) for e in events if e["kind"] == "querier_changed"]
    assert changes[0] == ("r2 eth0", True) and changes[-1] == ("r2 eth0", True)
    assert ("r1 eth0", True) in changes and ("r2 eth0", False) in changes
    assert len(bars(root, "r1 eth0", "querier")) == 1
    assert len(bars(root, "r2 eth0", "querier")) == 2


@pytest.mark.timeout(40)
def test_proxy_chain(tmp_path: Path) -> None:
    events, root, _ = run("proxy-chain", tmp_path)
    assert {"daemon_started", "igmp_in", "igmp_out", "membership_changed", "mfc_add",
            "mfc_update", "upcall", "daemon_stopped"} <= kinds(events)
    assert lanes(root) == ["r1 up0", "r1 dn0", "r2 up0", "r2 dn0"]
    # both hops forward while h1 is a member, and both stop after it leaves (2.5 s)
    t0, t1 = float(root.get("data-t0", "")), float(root.get("data-t1", ""))
    for lane in ("r1 dn0", "r2 dn0"):
        ((start, end),) = bars(root, lane, "forwarding")
        assert 0.3 < start - t0 < 1.5 and end < t1 - 0.2, (lane, start - t0, end - t0)
    # r2 held the group upstream over the same time as its members downstream
    ((joined, left),) = bars(root, "r2 up0", "upstream")
    ((members_from, members_to),) = bars(root, "r2 dn0", "membership")
    assert abs(joined - members_from) < 0.1 and abs(left - members_to) < 0.1
