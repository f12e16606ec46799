#!/usr/bin/env python3
"""Benchmark: how long `wait_answering` takes to decide, against one control request.

Tools that start `mrouter run` (tests, benchmarks, scenarios) wait with
``mrouter.router.control.wait_answering`` until the daemon answers ``ping``. Measured
in the same run, each as a median of --reps repetitions (no root, no namespace: the
control socket is a Unix socket in a temporary folder):

- baseline   one ``request(path, "ping")`` where no socket is (the connect fails at once)
             and one to a server that answers (a round trip).
- ended      ``wait_answering`` when the process has already ended: it should give up at
             the first failed ping, so about 1x the failed request, whatever the timeout.
- answering  ``wait_answering`` against a server that answers: about 1x the round trip.
- timeout    ``wait_answering`` while the "process" runs but nobody answers: the timeout
             (0.2 s) plus at most one poll interval (0.05 s), as a ratio to the timeout.

    .venv/bin/python scripts/bench_wait_answering.py [--reps 50]

Not a pass/fail test: it prints figures and ratios.
"""

from __future__ import annotations

import argparse
import select
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mrouter.errors import ControlError
from mrouter.router.control import ControlServer, request, wait_answering

TIMEOUT = 0.2  # the "nobody answers" case waits this long on purpose


def median_seconds(func: Callable[[], object], reps: int) -> float:
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def failed_ping(path: Path) -> None:
    try:
        request(path, "ping", timeout=2.0)
    except ControlError:
        return
    raise RuntimeError(f"{path}: something answered where nothing should")


@contextmanager
def serving(path: Path) -> Iterator[None]:
    """A control server answering ``ping`` at ``path``, served from a thread."""
    server = ControlServer(path, {"ping": lambda r: {}})
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            for sock in select.select(server.sockets(), [], [], 0.05)[0]:
                server.ready(sock)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=50, help="repetitions per figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-control-") as tmp:
        nobody, live = Path(tmp) / "nobody.sock", Path(tmp) / "live.sock"
        failed = median_seconds(lambda: failed_ping(nobody), args.reps)
        ended = median_seconds(lambda: wait_answering(nobody, lambda: False, timeout=10.0),
                               args.reps)
        with serving(live):
            round_trip = median_seconds(lambda: request(live, "ping"), args.reps)
            answering = median_seconds(lambda: wait_answering(live, lambda: True),
                                       args.reps)
        waited = median_seconds(
            lambda: wait_answering(nobody, lambda: True, timeout=TIMEOUT),
            max(3, args.reps // 10))

    print(f"{'case':<10} {'median':>10}  ratio")
    print(f"{'no socket':<10} {failed * 1e6:>8.0f} us  1 (baseline: one failed ping)")
    print(f"{'ended':<10} {ended * 1e6:>8.0f} us  {ended / failed:.2f}x the failed ping"
          f" (timeout 10 s)")
    print(f"{'ping':<10} {round_trip * 1e6:>8.0f} us  1 (baseline: one answered ping)")
    print(f"{'answering':<10} {answering * 1e6:>8.0f} us  {answering / round_trip:.2f}x the"
          f" answered ping")
    print(f"{'timeout':<10} {waited * 1e3:>8.1f} ms  {waited / TIMEOUT:.2f}x the timeout"
          f" ({TIMEOUT:g} s)")


if __name__ == "__main__":
    main()
