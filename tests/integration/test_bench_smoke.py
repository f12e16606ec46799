"""scripts/bench_router.py runs end to end with tiny sizes and measures every part.

Not a performance test: no timing thresholds. It proves the benchmark still works
(labs, peers, capture, daemon) and that each figure it prints was actually measured.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.netns

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_router.py"


def _run(*args: str) -> dict[str, object]:
    done = subprocess.run([sys.executable, str(SCRIPT), "--quick", "--json", *args],
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert isinstance(result, dict)
    return result


@pytest.mark.timeout(90)
def test_bench_router_quick_measures_every_part() -> None:
    r = _run("--reps", "2", "--leave-reps", "1", "--peer-leave-reps", "0",
             "--groups", "120", "--timeout", "10")
    start, forward = r["start"], r["forward"]
    join, leave, scale = r["join"], r["leave"], r["scale"]
    assert isinstance(start, dict) and isinstance(forward, dict)
    assert isinstance(join, dict) and isinstance(leave, dict) and isinstance(scale, dict)

    assert start["mrouter_median_s"] > 0 and start["smcroute_median_s"] > 0
    # both daemons forwarded the blast through the kernel
    assert forward["mrouter_median_pps"] > 1000 and forward["smcroute_median_pps"] > 1000
    # every join was seen on the wire, report then data, for mrouter and igmpproxy
    for peer in ("mrouter", "igmpproxy"):
        assert join[peer]["missed"] == 0
        assert len(join[peer]["reaction_ms"]) == 2
        assert all(ms > 0 for ms in join[peer]["reaction_ms"])
    # a leave stops forwarding: after LMQC x LMQI by default, at once with fast leave
    assert len(leave["mrouter"]["leave_ms"]) == 1
    assert leave["mrouter"]["leave_ms"][0] > 1000
    assert len(leave["mrouter-fast-leave"]["leave_ms"]) == 1
    assert leave["mrouter-fast-leave"]["leave_ms"][0] < leave["mrouter"]["leave_ms"][0]
    # every membership learned and every (S,G) installed by mrouter
    assert scale["mrouter"]["learned"] == 120 and scale["mrouter"]["routes"] == 120
    assert scale["mrouter"]["rss_mb"] > 0
