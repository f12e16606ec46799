"""``mrouter top`` against a real daemon in a lab: in a terminal (a tmux pane, read with
capture-pane) it shows the interfaces, the group with its timer and host, and the route
with its packets per second, redraws each second and quits on q; piped, it prints plain
lines per refresh."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import LAN, member, send, start, wait_for

pytestmark = pytest.mark.netns

G = "239.1.1.1"


def tmux(server: str, *argv: str) -> str:
    return subprocess.run(["tmux", "-L", server, *argv], capture_output=True, text=True,
                          timeout=10, check=True).stdout


@pytest.mark.timeout(60)
@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (scripts/setup.sh)")
def test_top_in_a_terminal_shows_rates_and_quits_on_q(lab_factory: Callable[[str], Any],
                                                      tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    d = start(lab, tmp_path, LAN)
    server = f"mrouter-top-{os.getpid()}"
    status = tmp_path / "top.status"
    stop = threading.Event()

    def stream() -> None:  # 100 packets/s until the test ends
        while not stop.is_set():
            send(lab, G, "top", count=20, gap=0.01)

    sender = threading.Thread(target=stream)
    try:
        with member(lab, "h1", G):
            wait_for(lambda: bool(d("show", what="groups")), timeout=5)
            sender.start()
            tmux(server, "new-session", "-d", "-x", "150", "-y", "40",
                 f"sh -c '{sys.executable} -m mrouter top --socket {d.sock}; "
                 f"echo $? > {status}'")
            tmux(server, "set-option", "-g", "remain-on-exit", "on")

            def counting() -> bool:  # the route's PKTS/S column shows a rate above 0
                line = next((ln for ln in tmux(server, "capture-pane", "-p").splitlines()
                             if ln.startswith("198.51.100.2")), "")
                rate = line.split()[4] if len(line.split()) > 4 else "-"
                return re.fullmatch(r"\d+\.\d", rate) is not None and float(rate) > 0

            wait_for(counting, timeout=10)
            lines = tmux(server, "capture-pane", "-p").splitlines()
            assert lines[0].startswith("mrouter top  ") and "2 interfaces" in lines[0]
            dn0 = next(ln for ln in lines if ln.startswith("dn0 ") and "192.0.2.1" in ln)
            assert "self" in dn0.split()  # the querier column
            group = next(ln for ln in lines if ln.startswith("dn0") and G in ln)
            assert re.search(r"\s\d+\.\ds\s", group) and "192.0.2.11 (" in group
            route = next(ln for ln in lines if ln.startswith("198.51.100.2"))
            _, group_, iif, oifs, pps = route.split()[:5]
            assert (group_, iif, oifs) == (G, "up0", "dn0")
            assert 20 < float(pps) < 400, route  # about 100/s; the bounds say "counting"
            first = lines[0].split()[2]  # the clock in the header
            wait_for(lambda: tmux(server, "capture-pane", "-p").split()[2] != first,
                     timeout=5)  # redrawn each second
            tmux(server, "send-keys", "q")
            # tmux 3.3 may leave #{pane_dead_status} empty: the shell records the status
            wait_for(lambda: status.exists() and status.read_text().strip() == "0",
                     timeout=5)
    finally:
        stop.set()
        if sender.is_alive():
            sender.join(timeout=10)
        subprocess.run(["tmux", "-L", server, "kill-server"], capture_output=True,
                       timeout=10, check=False)
        d("stop")


@pytest.mark.timeout(40)
def test_top_piped_prints_plain_lines_per_refresh(lab_factory: Callable[[str], Any],
                                                  tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    d = start(lab, tmp_path, LAN)
    try:
        with member(lab, "h1", G):
            wait_for(lambda: bool(d("show", what="groups")), timeout=5)
            send(lab, G, "top", count=5)
            wait_for(lambda: bool(d("show", what="routes")["entries"]), timeout=5)
            done = subprocess.run([sys.executable, "-m", "mrouter", "top", "--socket",
                                   str(d.sock), "--count", "2", "--interval", "0.3"],
                                  capture_output=True, text=True, timeout=20, check=False)
    finally:
        d("stop")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert "\x1b" not in done.stdout  # no terminal control in a pipe
    routes = [ln for ln in lines if " route 198.51.100.2 239.1.1.1 up0 -> dn0 " in ln]
    assert len(routes) == 2, lines
    assert routes[0].endswith("packets") and " - pkts/s " in routes[0]  # no rate yet
    assert re.search(r" \d+\.\d pkts/s ", routes[1])
    assert len([ln for ln in lines if f" group dn0 {G} EXCLUDE " in ln]) == 2


def test_top_without_a_daemon_is_one_line(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "mrouter", "top", "--socket",
                           str(tmp_path / "none.sock")], capture_output=True, text=True,
                          timeout=20, check=False)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "no daemon control socket" in done.stderr
