"""Each scenario's timeline page in headless Chromium: no console error, and the marks and
bars drawn in each lane are the ones its events call for (counted here from the events,
not from the timeline's own model). The events are fixtures recorded once by the real
scenarios (``scripts/scenarios.py all -o DIR``, full speed); test_scenario_e2e.py runs one
scenario end to end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from chromium import Chromium, chromium_binary
from drawn import DRAWN, expected

from mrouter.diag.events import Event, EventKind, read_events
from mrouter.diag.timeline import render_html

pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(chromium_binary() is None,
                                 reason="needs chromium (scripts/setup.sh installs it)")]

FIXTURES = Path(__file__).parent / "fixtures"
SCENARIOS = ("join-leave", "querier-election", "proxy-chain")
@pytest.fixture(scope="module")
def browser() -> Any:
    with Chromium() as chromium:
        yield chromium


def page(tmp_path: Path, name: str) -> tuple[list[Event], Path]:
    events = read_events(FIXTURES / f"{name}.events.jsonl")
    html = tmp_path / f"{name}.html"
    html.write_text(render_html(events, title=name))
    return events, html


@pytest.mark.parametrize("name", SCENARIOS)
def test_scenario_page_draws_what_the_events_say(browser: Chromium, tmp_path: Path,
                                                 name: str) -> None:
    events, html = page(tmp_path, name)
    browser.errors.clear()
    browser.open(html.as_uri())
    drawn = browser.evaluate(DRAWN)
    assert browser.errors == []
    want = {lane: dict(c) for lane, c in expected(events).items()}
    assert {lane: {k: v for k, v in c.items() if v} for lane, c in want.items()} == \
        drawn["lanes"]
    assert drawn["steps"] == sum(e.kind is EventKind.STEP for e in events) > 0


def test_zoom_and_pan_move_the_shapes_without_errors(browser: Chromium,
                                                     tmp_path: Path) -> None:
    _, html = page(tmp_path, "join-leave")
    browser.errors.clear()
    browser.open(html.as_uri())
    first_bar = "document.querySelector('rect.bar.forwarding').getAttribute('width')"
    before = float(browser.evaluate(first_bar))
    browser.evaluate("document.getElementById('zoom-in').click()")
    assert float(browser.evaluate(first_bar)) > 1.5 * before
    shown = browser.evaluate("document.getElementById('window').textContent")
    browser.evaluate("document.dispatchEvent(new KeyboardEvent('keydown', {key: 'ArrowRight'}))")
    assert browser.evaluate("document.getElementById('window').textContent") != shown
    browser.evaluate("document.getElementById('zoom-reset').click()")
    assert float(browser.evaluate(first_bar)) == pytest.approx(before, abs=0.01)
    # the mouse: the wheel zooms in at the pointer, a drag pans
    box = browser.evaluate("(() => { const r = document.querySelector('svg.timeline')"
                           ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + 80]; })()")
    browser.call("Input.dispatchMouseEvent", type="mouseWheel", x=box[0], y=box[1],
                 deltaX=0, deltaY=-100)
    assert float(browser.evaluate(first_bar)) > 1.1 * before
    shown = browser.evaluate("document.getElementById('window').textContent")
    for kind, dx in (("mousePressed", 0), ("mouseMoved", -150), ("mouseReleased", -150)):
        browser.call("Input.dispatchMouseEvent", type=kind, x=box[0] + dx, y=box[1],
                     button="left", buttons=1 if kind != "mouseReleased" else 0,
                     clickCount=1)
    assert browser.evaluate("document.getElementById('window').textContent") != shown
    assert browser.errors == []


def test_a_page_error_is_seen(browser: Chromium, tmp_path: Path) -> None:
    """The check above can fail: a script error on a page is reported."""
    bad = tmp_path / "bad.html"
    bad.write_text("<!DOCTYPE html><html><body><script>console.error('drawn wrong');"
                   "undefinedFunction();</script></body></html>")
    browser.errors.clear()
    browser.open(bad.as_uri())
    assert any("drawn wrong" in e for e in browser.errors)
    assert any("undefinedFunction" in e for e in browser.errors)
