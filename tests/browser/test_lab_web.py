"""``mrouter lab web`` on a running lab, seen in headless Chromium: the lab's picture, the
packet rates of r1's interfaces while a flow runs, and r1's membership of the group with
its host, updated each second from the daemon's control socket; no console error. And
``mrouter lab graph`` of the same running lab, by name."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from chromium import Chromium, chromium_binary
from helpers import LAN, member, send, start, wait_for

pytestmark = [pytest.mark.browser, pytest.mark.netns,
              pytest.mark.skipif(chromium_binary() is None,
                                 reason="needs chromium (scripts/setup.sh installs it)")]

G = "239.1.1.1"
MROUTER = [sys.executable, "-m", "mrouter"]


@pytest.mark.timeout(60)
def test_lab_web_shows_rates_and_memberships(lab_factory: Callable[[str], Any],
                                             tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    d = start(lab, tmp_path, LAN)
    web = subprocess.Popen([*MROUTER, "lab", "web", lab.name, "--listen", "127.0.0.1:0"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    stop = threading.Event()

    def stream() -> None:  # 100 packets/s until the test ends
        while not stop.is_set():
            send(lab, G, "web", count=20, gap=0.01)

    sender = threading.Thread(target=stream)
    try:
        assert web.stdout is not None
        line = web.stdout.readline()
        assert line.startswith(f"lab {lab.name}: serving http://127.0.0.1:"), \
            line + (web.stderr.read() if web.stderr and web.poll() is not None else "")
        url = line.split()[3]
        with member(lab, "h1", G), Chromium() as browser:
            sender.start()
            browser.open(url)
            nodes = browser.evaluate("Array.from(document.querySelectorAll("
                                     "'svg.labgraph g.router, svg.labgraph g.host, "
                                     "svg.labgraph g.lan')).map(g => g.dataset.node)")
            assert sorted(nodes) == ["h1", "h2", "h3", "lan0", "r1", "sender"]
            rate = ("document.querySelector('g.iface[data-node=\"r1\"][data-iface=\"dn0\"] "
                    "text.rate').textContent")

            def forwarding() -> bool:
                text = str(browser.evaluate(rate))  # "in 0.0/s out 98.0/s"
                words = text.split()
                return len(words) == 4 and words[3] != "-/s" and float(words[3][:-2]) > 20

            wait_for(forwarding, timeout=15)
            group = browser.evaluate(
                f"Array.from(document.querySelectorAll('#router-r1 tbody.groups "
                f"tr[data-group=\"{G}\"] td')).map(td => td.textContent)")
            assert group[:3] == ["dn0", G, "EXCLUDE"] and group[5] == "192.0.2.11", group
            routes = browser.evaluate("document.querySelectorAll('#router-r1 tbody.routes "
                                      "tr').length")
            assert routes == 1
            updates = int(browser.evaluate("document.body.dataset.updates"))
            time.sleep(1.5)
            assert int(browser.evaluate("document.body.dataset.updates")) > updates
            assert browser.errors == []
        graph = subprocess.run([*MROUTER, "lab", "graph", lab.name, "-o",
                                str(tmp_path / "lab.svg")], capture_output=True, text=True,
                               timeout=20, check=False)
        assert graph.returncode == 0, graph.stderr
        svg = ET.parse(tmp_path / "lab.svg").getroot()
        assert f"lab {lab.name}" in "".join(svg.itertext())
    finally:
        stop.set()
        if sender.is_alive():
            sender.join(timeout=10)
        web.terminate()
        web.communicate(timeout=10)  # and close its pipes
        d("stop")
