"""An IGMP flood against `mrouter run`: 20k reports/s for 10 s for random groups from one
host. A user sees: `mrouter show` still answers within 100 ms, the daemon's memory stays
bounded (max_groups), and the real member keeps receiving its flow without loss."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import start

pytestmark = pytest.mark.netns

HERE = Path(__file__).resolve().parent
MROUTER = [sys.executable, "-m", "mrouter"]
CONFIG = """\
mode = "router"
[interfaces.up0]
[interfaces.dn0]
igmp_version = 3
max_groups = 2000
"""


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def test_flood_leaves_daemon_responsive_bounded_and_members_served(
        lab_factory: Callable[[str], Any], tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    daemon = start(lab, tmp_path, CONFIG)
    recv = lab.node("h1").spawn(
        [*MROUTER, "recv", "239.1.1.1:5000", "--count", "1300", "--timeout", "25", "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)  # h1's join reaches the router
    flow = lab.node("sender").spawn(
        [*MROUTER, "send", "239.1.1.1:5000", "--ttl", "8", "--rate", "100", "--count", "1300"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    rss_before = rss_kib(daemon.proc.pid)
    flood = lab.node("h2").spawn(
        [sys.executable, str(HERE / "igmp_flood.py"), "192.0.2.12", "20000", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    worst = 0.0
    while flood.poll() is None:
        t0 = time.monotonic()
        rows = daemon("show", what="interfaces")
        worst = max(worst, time.monotonic() - t0)
        assert {r["name"] for r in rows} == {"up0", "dn0"}
        time.sleep(0.1)
    flood_out, flood_err = flood.communicate(timeout=5)
    assert flood.returncode == 0, flood_err
    assert int(flood_out) >= 150_000  # the flood really was about 20k/s for 10 s
    rss_after = rss_kib(daemon.proc.pid)

    print(f"flood: {int(flood_out)} reports; worst show {worst * 1000:.1f} ms; "
          f"RSS {rss_before} -> {rss_after} KiB")
    assert worst < 0.100, f"show took {worst * 1000:.0f} ms during the flood"
    assert rss_after - rss_before < 50 * 1024, (rss_before, rss_after)
    groups = daemon("show", what="groups")
    assert len(groups) <= 2000 + 1  # max_groups on dn0 held; plus nothing elsewhere
    assert any(g["group"] == "239.1.1.1" for g in groups)  # the real member is still there
    assert "max_groups" in daemon.log.read_text()  # the full table was said, once

    assert flow.wait(timeout=20) == 0
    out, err = recv.communicate(timeout=20)
    (summary,) = [json.loads(line) for line in out.splitlines()]
    assert summary["received"] == 1300 and summary["lost"] == 0, (summary, err)
