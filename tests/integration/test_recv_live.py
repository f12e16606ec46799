"""`mrouter recv --live` as a person sees it: through a pseudo-terminal (a tmux pane, read
back with capture-pane) one line per group, refreshed in place each second, then the
usual summary; through a pipe, plain timestamped lines and no escape codes.

dual-stack.toml: h1 2001:db8:2::11 and h2 ::12 on one LAN; groups from ff15::/16 and
239.0.0.0/8. tmux runs its own server (its socket in the test's tmp_path) started inside h2, so the
pane's processes are in h2's namespace; the test kills that server, and the lab's
teardown would end it anyway.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from helpers import wait_for

pytestmark = [pytest.mark.netns,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux")]

MROUTER = [sys.executable, "-m", "mrouter"]
G6, G4 = "ff15::8:1", "239.8.0.1"


@pytest.fixture
def lab(lab_factory: Callable[[str], Any]) -> Any:
    return lab_factory("dual-stack.toml")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Callable[..., subprocess.CompletedProcess[str]]]:
    """``tmux -S SOCKET ...`` for a private server whose socket lives in tmp_path."""
    sock = str(tmp_path / "tmux.sock")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["tmux", "-S", sock, *args], capture_output=True, text=True,
                              timeout=10)

    run.sock = sock  # type: ignore[attr-defined]
    try:
        yield run
    finally:
        run("kill-server")


def pane(tmux: Callable[..., subprocess.CompletedProcess[str]]) -> list[str]:
    return [line.rstrip() for line in tmux("capture-pane", "-p", "-t", "live").stdout
            .splitlines() if line.strip()]


def live_rows(lines: list[str], target: str) -> list[list[str]]:
    return [line.split() for line in lines if line.startswith(target)]


def test_live_refreshes_one_line_per_group_in_place_then_prints_the_summary(
        lab: Any, tmux: Any) -> None:
    h1, h2 = lab.node("h1"), lab.node("h2")
    argv = [*MROUTER, "recv", f"[{G6}]:5000", f"{G4}:5000", "--iface", "eth0", "--live",
            "--timeout", "8"]
    started = h2.spawn(["tmux", "-S", tmux.sock, "-f", "/dev/null", "new-session", "-d",
                        "-s", "live", "-x", "160", "-y", "20", *argv])
    assert started.wait(timeout=10) == 0
    tmux("set-option", "-g", "remain-on-exit", "on")
    senders = [h1.spawn([*MROUTER, "send", f"[{G6}]:5000", "--iface", "eth0", "--ttl", "4",
                         "--count", "140", "--rate", "20"], stdout=subprocess.DEVNULL),
               h1.spawn([*MROUTER, "send", f"{G4}:5000", "--iface", "eth0", "--ttl", "3",
                         "--count", "140", "--rate", "20"], stdout=subprocess.DEVNULL)]
    wait_for(lambda: len(live_rows(pane(tmux), f"[{G6}]:5000")) == 1, timeout=5)
    time.sleep(1.6)
    first = pane(tmux)
    time.sleep(1.2)
    second = pane(tmux)
    for screen in (first, second):
        assert sum(line.startswith("GROUP:PORT") for line in screen) == 1, screen
        assert len(live_rows(screen, f"[{G6}]:5000")) == 1, screen  # redrawn, not appended
        assert len(live_rows(screen, f"{G4}:5000")) == 1, screen
    (row6_a,), (row6_b,) = live_rows(first, f"[{G6}]:5000"), live_rows(second, f"[{G6}]:5000")
    # GROUP:PORT PPS RECV LOST DUP REORD DELAY_MS TTL SOURCES
    assert int(row6_b[2]) > int(row6_a[2]) > 0  # received grows between refreshes
    assert 10 <= float(row6_b[1]) <= 30  # about 20 pps
    assert row6_b[3:6] == ["0", "0", "0"] and row6_b[7:] == ["4", "2001:db8:2::11"]
    (row4,) = live_rows(second, f"{G4}:5000")
    assert row4[7:] == ["3", "192.0.2.11"]
    for proc in senders:
        proc.kill()
    wait_for(lambda: any(line.startswith("GROUP ") for line in pane(tmux)), timeout=10)
    final = pane(tmux)
    summary_at = next(i for i, line in enumerate(final) if line.startswith("GROUP "))
    assert summary_at > next(i for i, line in enumerate(final) if line.startswith(f"[{G6}]"))
    assert any(line.split()[:2] == [G6, "5000"] for line in final[summary_at:])


def test_live_through_a_pipe_prints_plain_timestamped_lines(lab: Any) -> None:
    h1, h2 = lab.node("h1"), lab.node("h2")
    recv = h2.spawn([*MROUTER, "recv", f"[{G6}]:5000", "--iface", "eth0", "--live",
                     "--timeout", "3.5"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(0.5)
    h1.run([*MROUTER, "send", f"[{G6}]:5000", "--iface", "eth0", "--count", "40",
            "--rate", "20"], timeout=20)
    out, err = recv.communicate(timeout=20)
    assert recv.returncode == 0, err
    assert "\x1b" not in out
    periodic = [line for line in out.splitlines()
                if re.fullmatch(rf"\d\d:\d\d:\d\d \[{re.escape(G6)}\]:5000 pps \S+ received "
                                r"\d+ lost 0 duplicates 0 reordered 0 delay_ms \S+ hops 1 "
                                r"sources 2001:db8:2::11", line)]
    assert len(periodic) >= 2, out
    assert any(line.split()[:2] == [G6, "5000"] for line in out.splitlines())  # summary
