"""The in-place screen of `recv --live`: on a terminal the second refresh moves back up
over the first and rewrites it; elsewhere each refresh is timestamped plain lines."""

from __future__ import annotations

import io
import re

from mrouter.cli.live import LiveScreen


def test_a_terminal_refresh_rewrites_the_previous_lines_in_place() -> None:
    out = io.StringIO()
    screen = LiveScreen(out, terminal=True)
    screen.refresh("HEAD", ["a 1", "b 1"])
    first = out.getvalue()
    assert "\x1b[" not in first.replace("\r\x1b[2K", "")  # no cursor movement yet
    screen.refresh("HEAD", ["a 2", "b 2"])
    second = out.getvalue()[len(first):]
    assert second.startswith("\x1b[3A")  # up over header + 2 rows
    assert second.count("\r\x1b[2K") == 3 and "a 2\n" in second and "b 2\n" in second
    screen.close()
    assert out.getvalue().endswith("\n")


def test_a_pipe_gets_timestamped_plain_lines() -> None:
    out = io.StringIO()
    screen = LiveScreen(out, terminal=False)
    screen.refresh("HEAD", ["a 1", "b 1"])
    screen.refresh("HEAD", ["a 2"])
    lines = out.getvalue().splitlines()
    assert [line[9:] for line in lines] == ["a 1", "b 1", "a 2"]
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines)
    assert "\x1b" not in out.getvalue()
