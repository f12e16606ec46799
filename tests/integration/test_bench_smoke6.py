"""scripts/bench_router.py's IPv6 parts run end to end with tiny sizes and measure."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_router.py"


@pytest.mark.timeout(90)
def test_bench_router_quick_measures_the_ipv6_parts() -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", "--only",
                           "forward6", "join6", "leave6", "scale6", "--reps", "2",
                           "--leave-reps", "1", "--groups", "120", "--timeout", "10"],
                          capture_output=True, text=True, timeout=80, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    r = json.loads(done.stdout)
    forward, join, leave, scale = r["forward6"], r["join6"], r["leave6"], r["scale6"]
    # both daemons forwarded the IPv6 blast through ip6mr
    assert forward["mrouter_median_pps"] > 1000 and forward["smcroute_median_pps"] > 1000
    # every MLD join was seen on the wire, report then data
    assert join["missed"] == 0 and len(join["reaction_ms"]) == 2
    assert all(ms > 0 for ms in join["reaction_ms"])
    # a leave stops forwarding: after LLQC x LLQI by default, at once with fast leave
    assert len(leave["mrouter"]["leave_ms"]) == 1 and leave["mrouter"]["leave_ms"][0] > 1000
    assert leave["mrouter-fast-leave"]["leave_ms"][0] < leave["mrouter"]["leave_ms"][0]
    # every MLD membership learned and every IPv6 (S,G) installed
    assert scale["learned"] == 120 and scale["routes"] == 120 and scale["rss_mb"] > 0
