#!/usr/bin/env python3
"""Chaos: faults against a running `mrouter run`, one row each.

Each fault runs in a fresh lab (netns, see scripts/chaoslib.py) with a staying member h1
receiving a numbered flow through r1, and prints one row: ok or FAIL, and the figures a
user would look at. A daemon that died says so in its row; the next fault starts afresh.

    sudo .venv/bin/python scripts/chaos.py                  # every fault, full size (~4 min)
    sudo .venv/bin/python scripts/chaos.py --quick          # the short versions (the tests')
    sudo .venv/bin/python scripts/chaos.py --only kill flood --json

Faults: kill (kill -9 and restart), flaps (20 link flaps in 10 s), recreate (delete and
re-create dn0 5 times), sighup (50 SIGHUPs in 10 s, some with a broken config; then a
config nested 600 deep or with a 5000-digit number, as scripts/fuzz.py found), control
(500 idle clients, EMFILE, non-reading clients, a 20 MB request, one nested 20000 deep,
a 5000-digit number, invalid JSON/UTF-8, connect/close churn, each with `show` latency
from a well-behaved client), flood (20k IGMP reports/s), sources (a source flood), rogue
(a rogue querier, and one with a forged QQIC), ifaces (32 interfaces), groups (50k
groups: RSS, `show` latency, loop stall).

Not a pass/fail test (tests/integration/test_chaos.py runs the short versions): exit
status 1 if a row failed, so a failure is not missed. Labs are removed and processes
ended by PID on every exit, Ctrl-C and SIGTERM included.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import FrameType

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chaoslib as c
from benchlib import progress

Fault = Callable[[Path], c.Row]

FULL: dict[str, list[Fault]] = {
    "kill": [lambda d: c.kill_restart(d, rounds=5)],
    "flaps": [lambda d: c.link_flaps(d, flaps=20, seconds=10.0)],
    "recreate": [lambda d: c.recreate_interface(d, times=5)],
    "sighup": [lambda d: c.sighup_storm(d, count=50, seconds=10.0), c.sighup_hostile_config],
    "control": [lambda d: c.idle_clients(d, clients=500), c.fd_exhaustion,
                c.non_reading_clients, lambda d: c.huge_request(d, megabytes=20),
                lambda d: c.deep_request(d, depth=20000), c.huge_number_request,
                c.bad_requests,
                lambda d: c.churn(d, connections=30000)],
    "flood": [lambda d: c.igmp_flood(d, rate=20000, seconds=10.0)],
    "sources": [lambda d: c.source_flood(d, rate=2000, seconds=10.0)],
    "rogue": [lambda d: c.rogue_querier(d, seconds=6.0),
              lambda d: c.rogue_querier(d, seconds=3.0, qqic=255)],
    "ifaces": [lambda d: c.many_interfaces(d, total=32)],
    "groups": [lambda d: c.many_groups(d, groups=50000)],
}

QUICK: dict[str, list[Fault]] = {
    "kill": [lambda d: c.kill_restart(d, rounds=1)],
    "flaps": [lambda d: c.link_flaps(d, flaps=5, seconds=2.5)],
    "recreate": [lambda d: c.recreate_interface(d, times=2)],
    "sighup": [lambda d: c.sighup_storm(d, count=15, seconds=3.0), c.sighup_hostile_config],
    "control": [lambda d: c.idle_clients(d, clients=500, hold=1.0), c.fd_exhaustion,
                lambda d: c.non_reading_clients(d, clients=3),
                lambda d: c.huge_request(d, megabytes=20),
                lambda d: c.deep_request(d, depth=20000), c.huge_number_request,
                c.bad_requests,
                lambda d: c.churn(d, connections=20000)],
    "flood": [lambda d: c.igmp_flood(d, rate=20000, seconds=3.0)],
    "sources": [lambda d: c.source_flood(d, rate=2000, seconds=3.0)],
    "rogue": [lambda d: c.rogue_querier(d, seconds=3.0)],
    "ifaces": [lambda d: c.many_interfaces(d, total=32)],
    "groups": [lambda d: c.many_groups(d, groups=5000)],
}


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt  # unwinds through every fault's finally: daemon, sender, lab


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="the short versions")
    parser.add_argument("--only", nargs="+", choices=sorted(FULL), metavar="FAULT",
                        help=f"only these faults ({' '.join(FULL)})")
    parser.add_argument("--json", action="store_true", help="one JSON object per row")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGHUP, _terminate)
    table = QUICK if args.quick else FULL
    names = args.only or list(table)
    rows: list[c.Row] = []
    t0 = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="mrouter-chaos-") as tmp:
            for name in names:
                for n, fault in enumerate(table[name]):
                    progress(f"{name} {n + 1}/{len(table[name])}")
                    try:
                        row = fault(Path(tmp) / f"{name}{n}")
                    except Exception as exc:  # a fault's own failure is a row, not the end
                        row = c.Row(name, False, f"the fault itself failed: "
                                    f"{type(exc).__name__}: {str(exc)[:150]}")
                    rows.append(row)
                    print(_format(row, args.json), flush=True)
    except KeyboardInterrupt:
        print("interrupted; labs removed", file=sys.stderr)
        return 130
    failed = sum(not r.ok for r in rows)
    if not args.json:
        print(f"{len(rows)} faults, {failed} failed, {time.monotonic() - t0:.0f} s")
    return 1 if failed else 0


def _format(row: c.Row, as_json: bool) -> str:
    if as_json:
        return json.dumps({"fault": row.fault, "ok": row.ok, "detail": row.detail,
                           "figures": row.figures}, default=str)
    return f"{'ok  ' if row.ok else 'FAIL'}  {row.fault:<46} {row.detail}"


if __name__ == "__main__":
    sys.exit(main())
