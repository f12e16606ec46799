#!/usr/bin/env python3
"""Packets per second through r1: the kernel data plane vs the userspace one, one run.

Lab basic.toml: sender -- up0 r1 dn0 -- receiver. The sender runs ``--senders`` processes
of a tight ``sendto`` loop (64-byte UDP payloads, TTL 8, to 239.1.1.1:5000). For each data
plane in turn, r1 forwards (198.51.100.2, 239.1.1.1) from up0 to dn0:

- kernel: an MRT_INIT socket, two VIFs and one MFC entry (mrouter.kernel.mroute);
- user-packet / user-raw: UserDataplane in its own process inside r1 (this script with
  ``--serve``), sending with packet sockets or with IPPROTO_RAW sockets.

Forwarded packets are counted at the receiver's eth0 (the kernel's rx counter, so the
count costs the receiver nothing) over a fixed window after a warm-up; the sender's tx
counter over the same window gives the offered load. Prints each rate and the ratio of
each userspace rate to the kernel's (target: at least 0.1).

    sudo .venv/bin/python scripts/bench_dataplane.py [--window 3] [--senders 2] [--json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from mrouter.dataplane import DataplaneInterface, SendWith, UserDataplane
from mrouter.kernel.mroute import MrouteSocket
from mrouter.lab import Lab

SOURCE = IPv4Address("198.51.100.2")
GROUP = IPv4Address("239.1.1.1")
PORT = 5000
TOPOLOGY = Path(__file__).resolve().parent.parent / "netns" / "basic.toml"

SENDER = f"""
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 8)
s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_LOOP, 0)
data, addr, send = b"x" * 64, ("{GROUP}", {PORT}), s.sendto
while True:
    try:
        send(data, addr)
    except BlockingIOError:
        pass
    except OSError:
        pass
"""


def serve(send_with: str, up: int, dn: int) -> int:
    """Run the userspace data plane (inside r1) until SIGTERM; print its counters."""
    stopping = False

    def stop(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    interfaces = [DataplaneInterface("up0", up), DataplaneInterface("dn0", dn)]
    route = frozenset({"dn0"})

    def lookup(source: IPv4Address, group: IPv4Address, iif: str) -> frozenset[str]:
        return route if iif == "up0" and group == GROUP else frozenset()

    with UserDataplane(interfaces, lookup, send_with=SendWith(send_with)) as dp, \
            selectors.DefaultSelector() as sel:
        for fd in dp.filenos():
            sel.register(fd, selectors.EVENT_READ)
        print("ready", flush=True)
        while not stopping:
            for key, _ in sel.select(0.1):
                dp.handle_readable(key.fd)
        print(json.dumps(dp.interface_counters()), flush=True)
    return 0


def link_packets(node: Any, ifname: str, direction: str) -> int:
    out = node.run(["ip", "-s", "-j", "link", "show", ifname], check=True)
    packets: int = json.loads(out.stdout)[0]["stats64"][direction]["packets"]
    return packets


@contextlib.contextmanager
def kernel_plane(lab: Lab) -> Iterator[None]:
    r1 = lab.node("r1")
    with r1.enter():
        mrt = MrouteSocket()
    try:
        mrt.add_vif(0, r1.ifindex("up0"))
        mrt.add_vif(1, r1.ifindex("dn0"))
        mrt.add_mfc(SOURCE, GROUP, 0, {1: 1})
        yield
    finally:
        mrt.close()


@contextlib.contextmanager
def user_plane(lab: Lab, send_with: str, stats: dict[str, Any]) -> Iterator[None]:
    r1 = lab.node("r1")
    proc = r1.spawn([sys.executable, __file__, "--serve", send_with,
                     str(r1.ifindex("up0")), str(r1.ifindex("dn0"))],
                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert proc.stdout is not None
        ready = proc.stdout.readline().strip()
        if ready != "ready":
            raise SystemExit(f"user data plane did not start: {proc.communicate()[1]}")
        yield
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=10)
        if proc.returncode != 0:
            print(f"user data plane exited {proc.returncode}: {err}", file=sys.stderr)
        elif out.strip():
            stats.update(json.loads(out.splitlines()[-1]))


def measure(lab: Lab, plane: str, window: float, warmup: float) -> dict[str, float]:
    sender, receiver = lab.node("sender"), lab.node("receiver")
    stats: dict[str, Any] = {}
    planes = {"kernel": lambda: kernel_plane(lab),
              "user-packet": lambda: user_plane(lab, "packet", stats),
              "user-raw": lambda: user_plane(lab, "raw", stats)}
    with planes[plane]():
        time.sleep(warmup)
        tx0, rx0, t0 = (link_packets(sender, "eth0", "tx"),
                        link_packets(receiver, "eth0", "rx"), time.monotonic())
        time.sleep(window)
        tx1, rx1, t1 = (link_packets(sender, "eth0", "tx"),
                        link_packets(receiver, "eth0", "rx"), time.monotonic())
    elapsed = t1 - t0
    figures = {"offered_pps": (tx1 - tx0) / elapsed, "forwarded_pps": (rx1 - rx0) / elapsed}
    if stats:  # the user plane's own view over its whole run (warm-up included)
        up = stats["up0"]
        figures["user_read"] = up["packets_in"]
        figures["user_socket_drops"] = up["socket_drops"]
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--window", type=float, default=3.0, help="seconds counted")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds before counting")
    parser.add_argument("--senders", type=int, default=2, help="sender processes")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    parser.add_argument("--serve", nargs=3, metavar=("SEND_WITH", "UP", "DN"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        return serve(args.serve[0], int(args.serve[1]), int(args.serve[2]))

    results: dict[str, dict[str, float]] = {}
    with Lab.from_file(TOPOLOGY) as lab:
        senders = [lab.node("sender").spawn([sys.executable, "-c", SENDER],
                                            stdout=subprocess.DEVNULL)
                   for _ in range(args.senders)]
        try:
            for plane in ("kernel", "user-packet", "user-raw"):
                results[plane] = measure(lab, plane, args.window, args.warmup)
        finally:
            for proc in senders:
                proc.terminate()
            for proc in senders:
                proc.wait(10)
    kernel = results["kernel"]["forwarded_pps"]
    for figures in results.values():
        figures["ratio_to_kernel"] = figures["forwarded_pps"] / kernel if kernel else 0.0
    if args.json:
        print(json.dumps({"window_s": args.window, "senders": args.senders,
                          "planes": results}))
    else:
        print(f"forwarding (198.51.100.2, 239.1.1.1) up0 -> dn0 in r1, 64-byte payloads, "
              f"{args.senders} senders, {args.window:.1f} s window")
        print(f"{'PLANE':<12} {'OFFERED_PPS':>12} {'FORWARDED_PPS':>14} {'RATIO':>6}")
        for plane, f in results.items():
            extra = (f"  (read {f['user_read']:.0f}, socket queue drops "
                     f"{f['user_socket_drops']:.0f} over its whole run)"
                     if "user_read" in f else "")
            print(f"{plane:<12} {f['offered_pps']:>12.0f} {f['forwarded_pps']:>14.0f} "
                  f"{f['ratio_to_kernel']:>6.2f}{extra}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
