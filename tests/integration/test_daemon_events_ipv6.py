"""The dual-stack daemon's event stream carries MLD beside IGMP, and the timeline draws it.

On netns/dual-stack.toml with `mrouter run --events FILE`: h1 listens to ff15::4 (its
kernel sends MLDv2) while a sender streams to it, then leaves. The events file holds
what a class should see for IPv6 as for IPv4 (mrouter.diag.events): MLD in and out,
the membership change, the forwarding entry for the IPv6 (S,G) and its removal, each with
"family": "ipv6"; `mrouter timeline` draws a "dn0 IPv6" lane.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import member6, received, send6, start, wait_for

pytestmark = pytest.mark.netns

CONFIG = """\
mode = "router"
families = ["ipv4", "ipv6"]
expire_after = 1.0
poll_interval = 0.5
[interfaces.up0]
[interfaces.dn0]
mld_version = 2
last_member_query_interval = 0.2
"""
GROUP = "ff15::4"


def events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_mld_membership_and_ipv6_routes_are_events_and_drawn(
        lab_factory: Callable[[str], Any], tmp_path: Path) -> None:
    lab = lab_factory("dual-stack.toml")
    path = tmp_path / "events.jsonl"
    daemon = start(lab, tmp_path, CONFIG, "--events", str(path))
    with member6(lab, "h1", GROUP) as h1:
        wait_for(lambda: any(g["group"] == GROUP for g in daemon("show", what="groups")))
        send6(lab, GROUP, "flow", count=3)
        time.sleep(0.3)
        received(h1, 0.3)
    wait_for(lambda: not any(g["group"] == GROUP for g in daemon("show", what="groups")),
             timeout=5)
    daemon("stop")
    daemon.proc.wait(timeout=10)
    seen = events(path)
    v6 = [e for e in seen if e.get("family") == "ipv6"]
    kinds = {e["kind"] for e in v6}
    assert {"mld_in", "mld_out", "membership_changed", "querier_changed", "mfc_add"} <= kinds
    joined = [e for e in v6 if e["kind"] == "membership_changed" and e["group"] == GROUP]
    assert [e["filter_mode"] for e in joined][:1] == ["EXCLUDE"]  # h1 joined ...
    assert joined[-1]["filter_mode"] == "INCLUDE" and joined[-1]["sources"] == []  # ... left
    reports = [e for e in v6 if e["kind"] == "mld_in" and e["iface"] == "dn0"
               and e.get("type") == "report"]
    assert reports, "h1's MLDv2 reports are recorded"
    # IPv4 events of the same run say nothing of IPv6
    assert all(e.get("family", "ipv4") == "ipv4" for e in seen if e["kind"] == "igmp_in")
    out = tmp_path / "t.svg"
    result = subprocess.run([sys.executable, "-m", "mrouter", "timeline", str(path), "-o",
                             str(out)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "dn0 IPv6" in out.read_text()
