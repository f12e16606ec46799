"""One real scenario end to end: scripts/scenarios.py join-leave at half speed (real
daemons in a namespace lab), then its page in headless Chromium: no console error, the
lanes draw what the recorded events say, and h1's membership ends before h2's while
forwarding goes on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from chromium import Chromium, chromium_binary
from drawn import DRAWN, expected

from mrouter.diag.events import read_events

pytestmark = [pytest.mark.browser, pytest.mark.netns,
              pytest.mark.skipif(chromium_binary() is None,
                                 reason="needs chromium (scripts/setup.sh installs it)")]

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "scenarios.py"


@pytest.mark.timeout(60)
def test_join_leave_runs_and_its_page_shows_each_host(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(SCRIPT), "join-leave", "-o", str(tmp_path),
                           "--scale", "0.5"], capture_output=True, text=True, timeout=40,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    events = read_events(tmp_path / "join-leave.events.jsonl")
    with Chromium() as browser:
        browser.open((tmp_path / "join-leave.html").as_uri())
        drawn = browser.evaluate(DRAWN)
        hosts = browser.evaluate(
            "Array.from(document.querySelectorAll('g.lane[data-iface=\"r1 dn0\"] "
            "rect.bar.host')).map(b => [b.querySelector('title').textContent.split(' ')[0],"
            " +b.dataset.start, +b.dataset.end])")
        fwd = browser.evaluate("+document.querySelector('rect.bar.forwarding').dataset.end")
        assert browser.errors == []
    want = {lane: {k: v for k, v in c.items() if v} for lane, c in expected(events).items()}
    assert drawn["lanes"] == want
    assert drawn["steps"] == 5  # daemon up, h1 joins, h2 joins, h1 leaves, h2 leaves
    ends = {name: end for name, _, end in hosts}
    assert set(ends) == {"h1", "h2"}
    assert ends["h1"] < ends["h2"] < fwd, (ends, fwd)
