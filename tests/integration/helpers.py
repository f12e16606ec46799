"""Helpers shared by the integration tests: the daemon starter, traffic senders and sniffers.

Import them as ``from helpers import ...`` (pytest puts this folder on the path). Every
packet goes out inside a lab node's namespace: the helpers take the lab and a node name.
The daemon runs in a node as a user would start it; senders and sniffers are sockets made
inside the nodes from the test's thread. A sniffer is an AF_PACKET socket: it sees what a
router puts on the wire without joining the group (a join would itself create membership).
"""

from __future__ import annotations

import select
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from mrouter.router.control import request, wait_answering

SOURCE = "198.51.100.2"
PORT = 5000
ETH_P_IP = 0x0800

BASIC = """\
mode = "router"
[interfaces.up0]
[interfaces.dn0]
[[routes]]
source = "198.51.100.2"
group = "239.1.1.1"
from = "up0"
to = ["dn0"]
[[routes]]
group = "239.3.0.0/16"
from = "up0"
to = ["dn0"]
"""

LAN = """\
mode = "router"
[interfaces.up0]
[interfaces.dn0]
igmp_version = 3
last_member_query_interval = 0.2
"""


class Daemon:
    def __init__(self, proc: subprocess.Popen[str], sock: Path, log: Path,
                 config: Path) -> None:
        self.proc, self.sock, self.log, self.config = proc, sock, log, config

    def __call__(self, command: str, **args: Any) -> Any:
        return request(self.sock, command, **args)

    def cli(self, *argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "mrouter", *argv, "--socket",
                               str(self.sock)], capture_output=True, text=True, timeout=30)


def start(lab: Any, tmp_path: Path, config: str, *extra: str, node: str = "r1") -> Daemon:
    """`mrouter -v run` in ``node`` with this config (and ``extra`` run options), once it
    answers; its config, control socket and log are tmp_path/NODE.toml, .sock and .log."""
    path = tmp_path / f"{node}.toml"
    path.write_text(config)
    sock, log = tmp_path / f"{node}.sock", tmp_path / f"{node}.log"
    with log.open("w") as err:
        proc = lab.node(node).spawn([sys.executable, "-m", "mrouter", "-v", "run", "--config",
                                     str(path), "--socket", str(sock), *extra], stderr=err)
    if not wait_answering(sock, lambda: proc.poll() is None):
        raise AssertionError(f"{node}'s daemon did not start:\n{log.read_text()}")
    return Daemon(proc, sock, log, path)


def send(lab: Any, group: str, tag: str, count: int = 5,
         source: str | None = None) -> list[bytes]:
    """``count`` datagrams to ``group`` from the sender node (from ``source``, one of its
    addresses, if given)."""
    with lab.node("sender").enter():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    payloads = [f"{tag} {n}".encode() for n in range(count)]
    with sock:
        if source is not None:
            sock.bind((source, 0))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 8)
        for p in payloads:
            sock.sendto(p, (group, PORT))
            time.sleep(0.01)
    return payloads


@contextmanager
def sniffer(lab: Any, node: str) -> Iterator[Callable[..., list[bytes]]]:
    """UDP payloads to ``group`` seen on the node's eth0, without joining anything."""
    with lab.node(node).enter():
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        sock.bind(("eth0", ETH_P_IP))

    def seen(group: str, wait: float = 1.0) -> list[bytes]:
        out = []
        while select.select([sock], [], [], wait)[0]:
            packet = sock.recv(65535)
            wait = 0.3
            ihl = (packet[0] & 0x0F) * 4
            if packet[9] == socket.IPPROTO_UDP and IPv4Address(packet[16:20]) == \
                    IPv4Address(group):
                out.append(packet[ihl + 8:])
        return out

    with sock:
        yield seen


@contextmanager
def member(lab: Any, node: str, group: str) -> Iterator[socket.socket]:
    """A receiver that joined ``group`` on eth0 (the host's kernel sends the reports)."""
    address = lab.node(node).address("eth0")
    with lab.node(node).enter():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((group, PORT))
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                        IPv4Address(group).packed + address.packed)
        yield sock


def received(sock: socket.socket, wait: float = 1.0) -> list[bytes]:
    out = []
    while select.select([sock], [], [], wait)[0]:
        out.append(sock.recv(65535))
        wait = 0.3
    return out


def wait_for(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


def groups(daemon: Daemon) -> set[tuple[str, str]]:
    return {(g["iface"], g["group"]) for g in daemon("show", what="groups")}


def entry(daemon: Daemon, group: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [e for e in daemon("show", what="routes")["entries"]
                                   if e["group"] == group]
    assert len(found) == 1, found
    return found[0]
