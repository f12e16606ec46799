#!/usr/bin/env python3
"""Benchmark: how long each shipped lab takes to come up and go down.

For every netns/*.toml it prints the median and best of N runs of ``Lab.start()`` and
``Lab.teardown()`` through the Python API (what the test suite pays per test), the same
through the CLI (``mrouter lab up`` + ``mrouter lab down``, two Python start-ups
included), and a baseline measured in the same run: ``ip netns add`` + ``ip netns del``
of as many bare namespaces as the lab has (no links, no addresses). Needs root.

    .venv/bin/python scripts/bench_lab.py            # 10 runs each
    .venv/bin/python scripts/bench_lab.py -n 30 basic.toml lan.toml
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mrouter.lab import Lab  # noqa: E402
from mrouter.lab.topology import default_netns_dir, load_topology  # noqa: E402


def ms(seconds: float) -> str:
    return f"{seconds * 1000:7.1f}"


def bench_api(path: Path, runs: int) -> tuple[list[float], list[float]]:
    ups, downs = [], []
    for _ in range(runs):
        lab = Lab.from_file(path)
        t0 = time.perf_counter()
        lab.start()
        t1 = time.perf_counter()
        lab.teardown()
        t2 = time.perf_counter()
        ups.append(t1 - t0)
        downs.append(t2 - t1)
    return ups, downs


def bench_cli(path: Path, runs: int, env: dict[str, str]) -> list[float]:
    totals = []
    mrouter = [sys.executable, "-m", "mrouter", "lab"]
    for i in range(runs):
        name = f"bench{i}"
        t0 = time.perf_counter()
        subprocess.run([*mrouter, "up", str(path), "--name", name], env=env, check=True,
                       stdout=subprocess.DEVNULL)
        subprocess.run([*mrouter, "down", name], env=env, check=True, stdout=subprocess.DEVNULL)
        totals.append(time.perf_counter() - t0)
    return totals


def bench_baseline(count: int, runs: int) -> list[float]:
    totals = []
    for r in range(runs):
        names = [f"mrbench{os.getpid()}-{r}-{i}" for i in range(count)]
        t0 = time.perf_counter()
        for n in names:
            subprocess.run(["ip", "netns", "add", n], check=True)
        for n in names:
            subprocess.run(["ip", "netns", "del", n], check=True)
        totals.append(time.perf_counter() - t0)
    return totals


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="*", help="topology files (default: all of netns/)")
    parser.add_argument("-n", "--runs", type=int, default=10, help="runs per figure (10)")
    args = parser.parse_args()
    files = [Path(f) if Path(f).exists() else default_netns_dir() / f for f in args.files] or \
        sorted(default_netns_dir().glob("*.toml"))

    t0 = time.perf_counter()
    import pyroute2  # noqa: F401  (the first lab of a process pays for this import)
    print(f"pyroute2 import (once per process): {ms(time.perf_counter() - t0).strip()} ms")
    bench_api(files[0], 1)  # warm-up

    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, MROUTER_LAB_DIR=tmp, MROUTER_LAB_PREFIX=f"mrbench{os.getpid()}-")
        print(f"{args.runs} runs each, times in ms (median / best); machine: "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}\n")
        header = (f"{'topology':24} {'ns':>3} {'up':>15} {'down':>15} {'up+down':>15} "
                  f"{'CLI up+down':>15} {'ip netns only':>15} {'ratio':>6}")
        print(header)
        print("-" * len(header))
        for path in files:
            topo = load_topology(path)
            count = len(topo.nodes) + len(topo.lans)
            ups, downs = bench_api(path, args.runs)
            totals = [u + d for u, d in zip(ups, downs, strict=True)]
            cli = bench_cli(path, max(3, args.runs // 3), env)
            base = bench_baseline(count, max(3, args.runs // 3))
            ratio = statistics.median(totals) / statistics.median(base)
            print(
                f"{path.name:24} {count:3} "
                f"{ms(statistics.median(ups))}/{ms(min(ups)).strip():>6} "
                f"{ms(statistics.median(downs))}/{ms(min(downs)).strip():>6} "
                f"{ms(statistics.median(totals))}/{ms(min(totals)).strip():>6} "
                f"{ms(statistics.median(cli))}/{ms(min(cli)).strip():>6} "
                f"{ms(statistics.median(base))}/{ms(min(base)).strip():>6} "
                f"{ratio:6.2f}"
            )
    print("\nratio: API up+down / (ip netns add + del of the same number of bare namespaces)")
    print("targets: basic.toml up+down < 500 ms, lan.toml < 1000 ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
