"""Helpers for the querier lab tests: a running ``mrouter querier``, host joins, a capture."""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from helpers import IP_ADD_SOURCE_MEMBERSHIP

from mrouter.lab.lab import Node

REPO = Path(__file__).resolve().parents[2]


class LineReader:
    """Reads a process's stdout lines in a thread; get() waits for a matching one."""

    def __init__(self, proc: subprocess.Popen[str], parse: Callable[[str], Any]) -> None:
        self.proc = proc
        self.lines: queue.Queue[Any] = queue.Queue()
        self.seen: list[Any] = []
        self._parse = parse
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            item = self._parse(line)
            if item is not None:
                self.lines.put(item)

    def get(self, match: Callable[[Any], bool], timeout: float) -> Any | None:
        """The next item (from those not yet consumed) that matches, or None."""
        end = time.monotonic() + timeout
        for item in self.seen:
            if match(item):
                self.seen.remove(item)
                return item
        while (left := end - time.monotonic()) > 0:
            try:
                item = self.lines.get(timeout=left)
            except queue.Empty:
                return None
            if match(item):
                return item
            self.seen.append(item)
        return None

    def drain(self, seconds: float) -> list[Any]:
        """Everything that arrives within ``seconds`` (plus what was already seen)."""
        time.sleep(seconds)
        items, self.seen = self.seen, []
        while True:
            try:
                items.append(self.lines.get_nowait())
            except queue.Empty:
                return items


class Querier:
    """``mrouter querier --json --show-queries`` running on a node."""

    def __init__(self, node: Node, iface: str, *options: str) -> None:
        self.proc = node.spawn(
            [sys.executable, "-m", "mrouter", "querier", "--iface", iface, "--json",
             "--show-queries", *options],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
        )
        self.events = LineReader(self.proc, _json_line)
        if self.events.get(lambda e: e["event"] == "querier", 10.0) is None:
            raise AssertionError(f"querier did not start: {self.stop_output()}")

    def membership(self, group: str, timeout: float) -> dict[str, Any] | None:
        return self.events.get(
            lambda e: e["event"] == "membership" and e["group"] == group, timeout)

    def groups(self, timeout: float = 5.0) -> dict[str, Any]:
        self.proc.send_signal(signal.SIGUSR1)
        event = self.events.get(lambda e: e["event"] == "groups", timeout)
        assert event is not None, "no group table after SIGUSR1"
        return event["snapshot"]  # type: ignore[no-any-return]

    def stop_output(self) -> str:
        self.proc.terminate()
        try:
            _, err = self.proc.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return err


def _json_line(line: str) -> dict[str, Any] | None:
    line = line.strip()
    return json.loads(line) if line.startswith("{") else None


class Capture:
    """tcpdump on a node's interface: kernel timestamps of IGMP packets."""

    _LINE = re.compile(r"^(\d+\.\d+\.\d+\.\d+) > (\d+\.\d+\.\d+\.\d+): igmp (.*)$")

    def __init__(self, node: Node, iface: str) -> None:
        # -v prints the IP header on a first line (with the time) and the IGMP message,
        # group records included, on a second, indented one.
        self._stamp = 0.0
        self.proc = node.spawn(["tcpdump", "-i", iface, "-n", "-tt", "-l", "-v", "igmp"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert self.proc.stderr is not None
        # tcpdump says "listening on ..." on stderr once the capture runs.
        self.proc.stderr.readline()
        self.packets = LineReader(self.proc, self._parse)

    def _parse(self, line: str) -> tuple[float, str, str, str] | None:
        if not line[:1].isspace():
            self._stamp = float(line.split()[0])
            return None
        m = self._LINE.match(line.strip())
        if m is None:
            return None
        return (self._stamp, m.group(1), m.group(2), m.group(3))

    def wait(self, src: str, what: str, timeout: float) -> float | None:
        """Kernel time of the next packet from ``src`` whose text contains ``what``."""
        pkt = self.packets.get(lambda p: p[1] == src and what in p[3], timeout)
        return None if pkt is None else float(pkt[0])


class HostMember:
    """A multicast receiver socket on a host (kernel IGMP does the reports)."""

    def __init__(self, node: Node, iface_address: IPv4Address) -> None:
        with node.enter():
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.address = iface_address

    def join(self, group: str) -> None:
        mreq = IPv4Address(group).packed + self.address.packed
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)

    def join_source(self, group: str, source: str) -> None:
        mreq = IPv4Address(group).packed + self.address.packed + IPv4Address(source).packed
        self.sock.setsockopt(socket.IPPROTO_IP, IP_ADD_SOURCE_MEMBERSHIP, mreq)

    def leave(self, group: str) -> None:
        mreq = IPv4Address(group).packed + self.address.packed
        self.sock.setsockopt(socket.IPPROTO_IP, socket.IP_DROP_MEMBERSHIP, mreq)

    def close(self) -> None:
        self.sock.close()


def host_groups(node: Node, prefix: str = "239.") -> set[str]:
    """Groups the node's kernel is a member of (from /proc/net/igmp in its namespace)."""
    text = node.run(["cat", "/proc/net/igmp"], check=True).stdout
    groups: set[str] = set()
    for line in text.splitlines()[1:]:
        if line.startswith("\t"):
            word = line.split()[0]
            group = str(IPv4Address(struct.pack("=I", int(word, 16))))
            if group.startswith(prefix):
                groups.add(group)
    return groups


def engine_groups(snapshot: dict[str, Any]) -> dict[str, tuple[str, list[str]]]:
    return {g["group"]: (g["forwarding"]["filter_mode"], g["forwarding"]["sources"])
            for g in snapshot["groups"] if g["group"].startswith("239.")}


def set_igmp_version(nodes: Sequence[Node], version: int) -> None:
    for node in nodes:
        node.sysctl("net.ipv4.conf.all.force_igmp_version", str(version))
        node.sysctl("net.ipv4.conf.eth0.force_igmp_version", str(version))
