#!/usr/bin/env python3
"""Benchmark: memory and `show groups` time of the IGMP engine under a source flood.

Issue 11's case: 2,000 IGMPv3 reports, each one IS_IN record for its own group with 762
sources (1.5 million source records if all are learnt). Each run happens in a fresh
child process so that its RSS is its own: the engine alone (no daemon, no sockets) is
fed the decoded reports, then asked for every group's snapshot as JSON (what `show
groups --json` prints). Runs: the default bounds (max_sources, max_group_sources) and,
as the baseline, bounds raised so that everything is learnt.

    .venv/bin/python scripts/bench_engine_sources.py [--groups 2000] [--sources 762]

Not a pass/fail test: it prints figures and ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, random, resource, sys, time
from ipaddress import IPv4Address, IPv4Network
sys.path.insert(0, sys.argv[1])
from mrouter.igmp.engine import Engine, InterfaceSettings
from mrouter.igmp.messages import ALL_IGMPV3_ROUTERS, GroupRecord, RecordType, V3Report

groups, nsources, bounded = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"

def rss_mb():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024

settings = InterfaceSettings(querier=False) if bounded else InterfaceSettings(
    querier=False, max_sources=10_000_000, max_group_sources=1_000_000)
engine = Engine(random.Random(1))
net = IPv4Network("192.0.2.0/24")
engine.add_interface("dn0", IPv4Address("192.0.2.1"), net, settings, 0.0)
def report(g):  # made one at a time, as a shell decodes them: RSS is the engine's
    group = IPv4Address(int(IPv4Address("239.1.0.0")) + g)
    srcs = tuple(IPv4Address(int(IPv4Address("10.0.0.0")) + g * nsources + i)
                 for i in range(nsources))
    return V3Report((GroupRecord(RecordType.MODE_IS_INCLUDE, group, srcs),))

before = rss_mb()
feed = 0.0
for g in range(groups):
    msg = report(g)
    host = IPv4Address(int(IPv4Address("192.0.2.10")) + g % 200)
    start = time.perf_counter()
    engine.receive("dn0", host, ALL_IGMPV3_ROUTERS, msg, 1.0)
    feed += time.perf_counter() - start
after = rss_mb()
start = time.perf_counter()
text = json.dumps(engine.snapshot("dn0", 2.0).to_json())
show = time.perf_counter() - start
snap = engine.snapshot("dn0", 2.0)
print(json.dumps({"rss_before_mb": round(before, 1), "rss_after_mb": round(after, 1),
                  "feed_s": round(feed, 2), "show_s": round(show, 2),
                  "groups": len(snap.groups),
                  "sources": sum(len(g.sources) for g in snap.groups),
                  "dropped": snap.to_json()["dropped"], "json_mb": round(len(text) / 1e6, 1)}))
"""


def run(groups: int, sources: int, bounded: bool) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-c", CHILD, str(ROOT), str(groups), str(sources),
                          "1" if bounded else "0"], capture_output=True, text=True, check=True)
    result: dict[str, object] = json.loads(out.stdout)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", type=int, default=2000)
    parser.add_argument("--sources", type=int, default=762)
    args = parser.parse_args()
    bounded = run(args.groups, args.sources, True)
    baseline = run(args.groups, args.sources, False)
    print(f"{args.groups} IGMPv3 reports x {args.sources} sources, engine alone")
    for name, r in (("default bounds", bounded), ("unbounded (baseline)", baseline)):
        print(f"  {name:<21} RSS {r['rss_after_mb']:>7} MB (before feeding "
              f"{r['rss_before_mb']} MB)  feed {r['feed_s']} s  show groups {r['show_s']} s"
              f"  {r['sources']} sources kept  dropped {r['dropped']}")
    b_rss, u_rss = float(str(bounded["rss_after_mb"])), float(str(baseline["rss_after_mb"]))
    b_show, u_show = float(str(bounded["show_s"])), float(str(baseline["show_s"]))
    print(f"  ratios (bounded / baseline): RSS {b_rss / u_rss:.2f}  "
          f"show groups {b_show / max(u_show, 1e-9):.2f}")


if __name__ == "__main__":
    main()
