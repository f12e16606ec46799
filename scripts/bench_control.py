#!/usr/bin/env python3
"""Benchmark: the control socket against a daemon with many groups (issue 11).

On lan.toml, `mrouter run` with N static memberships on dn0 (default 50,000). Prints:

- ``show groups`` end to end (the CLI's client, whole reply read and parsed);
- the loop's responsiveness while ``show groups`` is being sent: the worst and median
  ``ping`` round trip from another client, against the same with nothing else going on
  (the baseline, measured in the same run);
- how late an IGMP join is learnt while 5 clients that never read hold ``show groups``
  replies: from the host's join call to the daemon's membership_changed event (both
  CLOCK_MONOTONIC; the host's own 0-20 ms report delay included), against the same
  with no such clients.

Needs root (a lab).

    .venv/bin/python scripts/bench_control.py            # 50,000 groups
    .venv/bin/python scripts/bench_control.py -n 10000
"""

from __future__ import annotations

import argparse
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv4Address
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchlib import start_mrouter  # noqa: E402

from mrouter.lab import Lab  # noqa: E402
from mrouter.router.control import request  # noqa: E402

SHOW_LOOP = """\
import sys
from mrouter.router.control import request
while True:
    request(sys.argv[1], "show", timeout=60, what="groups")
"""


def config(groups: int) -> str:
    lines = ['mode = "router"', "[interfaces.up0]", "[interfaces.dn0]", "igmp_version = 3"]
    for n in range(groups):
        g = IPv4Address(int(IPv4Address("239.16.0.0")) + n)
        lines += ["[[memberships]]", 'iface = "dn0"', f'group = "{g}"']
    return "\n".join(lines) + "\n"


def pings(sock: Path, seconds: float) -> list[float]:
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t0 = time.perf_counter()
        request(sock, "ping")
        out.append(time.perf_counter() - t0)
        time.sleep(0.005)
    return out


def join_delay(lab: Lab, sock: Path, group: str) -> float:
    cursor = request(sock, "events", since="now")["cursor"]
    h1 = lab.node("h1")
    address = h1.address("eth0")
    with h1.enter():
        member = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with member:
        t0 = time.monotonic()
        member.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                          IPv4Address(group).packed + address.packed)
        deadline = t0 + 30
        while time.monotonic() < deadline:
            batch = request(sock, "events", since=cursor)
            cursor = batch["cursor"]
            for e in batch["events"]:
                if e["kind"] == "membership_changed" and e.get("group") == group:
                    return float(e["time"]) - t0
            time.sleep(0.01)
    raise RuntimeError(f"join of {group} not learnt in 30 s")


def ms(values: list[float]) -> str:
    return (f"median {statistics.median(values) * 1000:7.1f} ms, "
            f"worst {max(values) * 1000:7.1f} ms ({len(values)} samples)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--groups", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, Lab.from_file(ROOT / "netns/lan.toml") as lab:
        work = Path(tmp)
        daemon = start_mrouter(lab.node("r1"), work, config(args.groups))
        try:
            daemon.wait_ready(timeout=120)
            sock = work / "mrouter.sock"
            shows = []
            for _ in range(3):
                t0 = time.perf_counter()
                rows = request(sock, "show", timeout=60, what="groups")
                shows.append(time.perf_counter() - t0)
            print(f"{len(rows)} groups; show groups end to end: {ms(shows)}")

            print(f"ping, idle daemon:              {ms(pings(sock, 2.0))}")
            # the big replies are read and parsed by another process: parsing them here
            # would hold this one's GIL and be counted as the daemon's stall
            shower = subprocess.Popen(
                [sys.executable, "-c", SHOW_LOOP, str(sock)], cwd=ROOT)
            try:
                time.sleep(0.5)
                busy = pings(sock, 5.0)
            finally:
                shower.terminate()
                shower.wait(10)
            print(f"ping, show groups streaming:    {ms(busy)}")

            print(f"join learnt, no slow clients:   "
                  f"{join_delay(lab, sock, '239.1.0.1') * 1000:7.1f} ms")
            slow = []
            for _ in range(5):
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(str(sock))
                s.sendall(b'{"command": "show", "what": "groups"}\n')
                slow.append(s)
            time.sleep(0.5)
            print(f"join learnt, 5 non-readers:     "
                  f"{join_delay(lab, sock, '239.1.0.2') * 1000:7.1f} ms")
            for s in slow:
                s.close()
        finally:
            daemon.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
