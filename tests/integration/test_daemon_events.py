"""The daemon's event stream as a user meets it: `mrouter run --events FILE`,
`mrouter events`, and `mrouter timeline` drawing what happened."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest

from mrouter.errors import ControlError
from mrouter.events import read_events
from mrouter.router.control import request

pytestmark = pytest.mark.netns

GROUP = "239.7.7.7"
CONFIG = """\
mode = "router"
[interfaces.up0]
[interfaces.dn0]
igmp_version = 3
last_member_query_interval = 0.2
"""


def mrouter(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mrouter", *argv], capture_output=True,
                          text=True, timeout=30)


def send(lab: Any, count: int) -> None:
    with lab.node("sender").enter():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 8)
        for n in range(count):
            sock.sendto(b"%d" % n, (GROUP, 5000))
            time.sleep(0.01)


def test_events_file_socket_and_timeline(lab_factory: Callable[[str], Any],
                                         tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    config, sock = tmp_path / "r.toml", tmp_path / "ctl.sock"
    events_file, picture = tmp_path / "events.jsonl", tmp_path / "t.svg"
    config.write_text(CONFIG)
    daemon = lab.node("r1").spawn(
        [sys.executable, "-m", "mrouter", "run", "--config", str(config), "--socket",
         str(sock), "--events", str(events_file)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while True:
        try:
            request(sock, "ping")
            break
        except ControlError:
            assert daemon.poll() is None and time.monotonic() < deadline, "no daemon"
            time.sleep(0.05)

    h1 = lab.node("h1")
    with h1.enter():
        member = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    member.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                      IPv4Address(GROUP).packed + h1.address("eth0").packed)
    time.sleep(0.3)
    send(lab, 50)
    time.sleep(1.2)  # at least one counter event
    member.close()  # the host sends TO_IN({}): the router queries, then stops forwarding
    time.sleep(1.0)
    follow = mrouter("events", "--json", "--socket", str(sock))
    assert mrouter("stop", "--socket", str(sock)).returncode == 0
    daemon.wait(timeout=10)

    kinds = [e.kind for e in read_events(events_file)]
    for kind in ("daemon_started", "igmp_in", "igmp_out", "membership_changed", "upcall",
                 "mfc_add", "mfc_update", "mfc_counters", "daemon_stopped"):
        assert kind in kinds, f"{kind} missing from {sorted(set(kinds))}"
    events = read_events(events_file)
    changes = [e for e in events if e.kind == "membership_changed"]
    assert [(c.iface, c.fields["filter_mode"]) for c in changes] == [
        ("dn0", "EXCLUDE"), ("dn0", "INCLUDE")]  # joined, then left
    # the leave lowered the group timer to LMQT; its expiry ended the membership
    (expired,) = [e for e in events if e.kind == "timer_expired"
                  and (e.iface, e.fields["timer"], e.fields["group"]) == ("dn0", "group", GROUP)]
    assert events.index(expired) < events.index(changes[1])
    assert changes[1].time - expired.time < 0.05
    counted = [e.fields["packets"] for e in read_events(events_file) if e.kind == "mfc_counters"]
    assert counted and max(counted) >= 49  # the first packet may wait for the route

    # the same events come over the control socket, one JSON object per line
    assert follow.returncode == 0, follow.stderr
    served = [json.loads(line)["kind"] for line in follow.stdout.splitlines()]
    assert "membership_changed" in served and "mfc_add" in served

    drawn = mrouter("timeline", str(events_file), "-o", str(picture))
    assert drawn.returncode == 0, drawn.stderr
    svg = ET.parse(picture).getroot()
    text = " ".join(" ".join(svg.itertext()).split())
    assert "dn0" in text and f"members {GROUP}" in text and "50 pkts" in text
