"""The daemon's event stream as a user meets it: `mrouter run --events FILE`,
`mrouter events` (once, and `--follow` as events happen), `mrouter timeline` drawing what
happened, and the events of a learnt route expiring and of an interface going and coming."""

from __future__ import annotations

import json
import queue
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from helpers import LAN, SOURCE, entry, member, received, send, start, wait_for

from mrouter.diag.events import Event, read_events
from mrouter.errors import MrouterError

pytestmark = pytest.mark.netns

GROUP = "239.7.7.7"


def mrouter(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mrouter", *argv], capture_output=True,
                          text=True, timeout=30)


def test_events_file_socket_and_timeline(lab_factory: Callable[[str], Any],
                                         tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    events_file, picture = tmp_path / "events.jsonl", tmp_path / "t.svg"
    started = start(lab, tmp_path, LAN, "--events", str(events_file))
    daemon, sock = started.proc, started.sock

    with member(lab, "h1", GROUP):
        time.sleep(0.3)
        send(lab, GROUP, "flow", 50)
        time.sleep(1.2)  # at least one counter event
    # h1 left (the host sends TO_IN({})): the router queries, then stops forwarding
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


def events_of(path: Path, kind: str) -> list[Event]:
    """The ``kind`` events written so far (a line being written counts as not yet there)."""
    try:
        return [e for e in read_events(path) if e.kind == kind]
    except MrouterError:
        return []


def test_events_follow_prints_events_as_they_happen_and_ends_on_ctrl_c(
        lab_factory: Callable[[str], Any], tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    daemon = start(lab, tmp_path, LAN)
    follow = subprocess.Popen(
        [sys.executable, "-m", "mrouter", "events", "--follow", "--json", "--socket",
         str(daemon.sock)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert follow.stdout is not None
        for line in follow.stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()

    def next_event(kind: str, group: str | None, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                event: dict[str, Any] = json.loads(
                    lines.get(timeout=max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                raise AssertionError(f"no {kind} for {group} within {timeout} s") from None
            if event["kind"] == kind and (group is None or event.get("group") == group):
                return event

    try:
        next_event("daemon_started", None, 5.0)  # it is running and has caught up
        with member(lab, "h1", GROUP):
            joined = time.monotonic()
            event = next_event("membership_changed", GROUP, 3.0)
            assert time.monotonic() - joined < 3.0
            assert (event["iface"], event["filter_mode"]) == ("dn0", "EXCLUDE")
        left = next_event("membership_changed", GROUP, 5.0)  # the leave, then LMQT
        assert (left["iface"], left["filter_mode"], left["sources"]) == ("dn0", "INCLUDE", [])
        assert follow.poll() is None, "events --follow ended by itself"
        follow.send_signal(signal.SIGINT)
        _, err = follow.communicate(timeout=2.0)  # prompt: within one poll (0.5 s) or so
    finally:
        if follow.poll() is None:
            follow.kill()
            follow.wait()
    assert follow.returncode == 130 and "Traceback" not in err, err
    assert daemon.proc.poll() is None  # the follower's end leaves the daemon alone


def test_learnt_route_expiry_writes_mfc_delete_with_its_packet_count(
        lab_factory: Callable[[str], Any], tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    events = tmp_path / "events.jsonl"
    expire_after = 1.0
    daemon = start(lab, tmp_path, f"expire_after = {expire_after}\npoll_interval = 0.2\n"
                   + LAN, "--events", str(events))
    with member(lab, "h1", GROUP) as sock:
        wait_for(lambda: bool(events_of(events, "membership_changed")))
        # 1.5 s of traffic: longer than expire_after, yet no expiry
        send(lab, GROUP, "flow", 15, gap=0.1)
        got = received(sock)
        packets = entry(daemon, GROUP)["packets"]
        assert not events_of(events, "mfc_delete"), "expired while packets were flowing"
        wait_for(lambda: bool(events_of(events, "mfc_delete")), timeout=expire_after + 3)
    assert len(got) >= 14 and packets == len(got)  # the first may wait for the route
    assert not [e for e in daemon("show", what="routes")["entries"] if e["group"] == GROUP]

    (upcall,) = [e for e in events_of(events, "upcall") if e.fields["group"] == GROUP]
    assert (upcall.iface, upcall.fields["type"], upcall.fields["source"]) == (
        "up0", "NOCACHE", SOURCE)
    (add,) = events_of(events, "mfc_add")
    assert (add.fields["source"], add.fields["group"], add.fields["iif"],
            add.fields["oifs"]) == (SOURCE, GROUP, "up0", ["dn0"])
    (delete,) = events_of(events, "mfc_delete")
    assert (delete.fields["source"], delete.fields["group"]) == (SOURCE, GROUP)
    assert delete.fields["packets"] == packets and delete.fields["bytes"] > 0
    assert delete.fields["wrong_if"] == 0
    assert delete.time - add.time >= 1.3 + expire_after  # traffic, then expire_after idle


def test_interface_losing_and_regaining_its_address_writes_iface_changed(
        lab_factory: Callable[[str], Any], tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    events = tmp_path / "events.jsonl"
    daemon = start(lab, tmp_path, LAN, "--events", str(events))
    r1 = lab.node("r1")

    def active() -> list[str]:
        return [i["name"] for i in daemon("show", what="interfaces") if i["active"]]

    assert not events_of(events, "iface_changed")
    r1.run(["ip", "addr", "flush", "dev", "dn0"], check=True)
    wait_for(lambda: active() == ["up0"])
    wait_for(lambda: bool(events_of(events, "iface_changed")))
    assert [(e.iface, e.fields["state"]) for e in events_of(events, "iface_changed")] == [
        ("dn0", "down")]
    r1.run(["ip", "addr", "add", "192.0.2.1/24", "dev", "dn0"], check=True)
    wait_for(lambda: sorted(active()) == ["dn0", "up0"])
    wait_for(lambda: len(events_of(events, "iface_changed")) >= 2)
    changed = events_of(events, "iface_changed")
    assert [(e.iface, e.fields["state"]) for e in changed] == [("dn0", "down"), ("dn0", "up")]
    assert changed[0].time < changed[1].time
