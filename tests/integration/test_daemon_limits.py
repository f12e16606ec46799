"""The daemon under the limits of issue 11: requests that are deep, huge or never read,
running out of file descriptors, and more than ten interfaces.

Every daemon runs in a lab node; the control clients are made in the test's own
namespace (the control socket is a Unix socket in tmp_path).
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from helpers import LAN, groups, member, start, wait_for

from mrouter.errors import ControlError
from mrouter.linux.constants import MAXVIFS

pytestmark = pytest.mark.netns

WIDE = MAXVIFS


def wide_topology(n: int) -> str:
    """r1 with ``n`` point-to-point links dn0..dn{n-1} to one host h (eth0..), each a
    /29 of 192.0.2.0/24."""
    parts = ['description = "r1 with many links to h"', "[nodes.r1]", 'kind = "router"',
             "[nodes.h]", 'kind = "host"']
    for i in range(n):
        parts += ["[[links]]", "endpoints = [",
                  f'  {{ node = "r1", iface = "dn{i}", address = "192.0.2.{8 * i + 1}/29" }},',
                  f'  {{ node = "h", iface = "eth{i}", address = "192.0.2.{8 * i + 2}/29" }},',
                  "]"]
    return "\n".join(parts) + "\n"


def wide_config(n: int) -> str:
    return 'mode = "router"\n' + "".join(f"[interfaces.dn{i}]\nigmp_version = 3\n"
                                         for i in range(n))


@contextlib.contextmanager
def join_on(lab: Any, node: str, iface: str, group: str) -> Iterator[None]:
    """The node's kernel joins ``group`` on ``iface`` (and sends the IGMPv3 report)."""
    with lab.node(node).enter():
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        index = socket.if_nametoindex(iface)
    with sock:
        mreqn = IPv4Address(group).packed + bytes(4) + index.to_bytes(4, "little")
        sock.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreqn)
        yield


def test_32_interfaces_start_and_a_join_on_the_last_is_learnt(
        lab_factory: Callable[..., Any], tmp_path: Path) -> None:
    topology = tmp_path / "wide.toml"
    topology.write_text(wide_topology(WIDE))
    lab = lab_factory(topology)
    assert lab.node("r1").sysctl("net.ipv4.igmp_max_memberships") == "20"  # the default
    daemon = start(lab, tmp_path, wide_config(WIDE))
    assert len(daemon("show", what="interfaces")) == WIDE
    last = f"dn{WIDE - 1}"
    with join_on(lab, "h", f"eth{WIDE - 1}", "239.5.5.32"):
        wait_for(lambda: (last, "239.5.5.32") in groups(daemon))
    daemon.proc.terminate()
    daemon.proc.wait(10)


def test_a_membership_limit_error_names_the_sysctl(lab_factory: Callable[..., Any],
                                                  tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    lab.node("r1").sysctl("net.ipv4.igmp_max_memberships", 1)
    with pytest.raises(AssertionError) as failed:
        start(lab, tmp_path, LAN)
    log = failed.value.args[0]
    assert "net.ipv4.igmp_max_memberships (now 1) is reached" in log
    assert "sysctl -w net.ipv4.igmp_max_memberships=" in log
    assert "Traceback" not in log


def raw_request(path: Path, line: bytes) -> dict[str, Any]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(str(path))
        sock.sendall(line + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    reply: dict[str, Any] = json.loads(data)
    return reply


def test_deep_and_huge_requests_do_not_stop_the_daemon(lab_factory: Callable[..., Any],
                                                      tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    daemon = start(lab, tmp_path, LAN)
    assert raw_request(daemon.sock, b"[" * 1000 + b"]" * 1000)["ok"] is False
    assert raw_request(daemon.sock, b'{"command": "show", "what": ' + b"9" * 4301
                       + b"}")["ok"] is False
    assert daemon.proc.poll() is None
    assert daemon("show", what="interfaces")


def test_running_out_of_descriptors_does_not_stop_the_daemon(
        lab_factory: Callable[..., Any], tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    daemon = start(lab, tmp_path, LAN)
    in_use = len(os.listdir(f"/proc/{daemon.proc.pid}/fd"))
    resource.prlimit(daemon.proc.pid, resource.RLIMIT_NOFILE, (in_use + 8, in_use + 8))
    idle = []
    try:
        for _ in range(40):
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(daemon.sock))
            idle.append(sock)
        time.sleep(0.5)
        assert daemon.proc.poll() is None
    finally:
        for sock in idle:
            sock.close()
    wait_for(lambda: _answers(daemon))
    assert daemon.proc.poll() is None


def _answers(daemon: Any) -> bool:
    with contextlib.suppress(ControlError):
        daemon("ping")
        return True
    return False


def test_clients_that_do_not_read_do_not_hold_up_igmp(lab_factory: Callable[..., Any],
                                                     tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    statics = "".join(f'[[memberships]]\niface = "dn0"\ngroup = "239.9.{n // 250}.{n % 250}"\n'
                      for n in range(4000))  # show groups: a reply of about 1 MB
    daemon = start(lab, tmp_path, LAN + statics)
    slow = []
    try:
        for _ in range(5):  # each asks for the big reply and never reads it
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(daemon.sock))
            sock.sendall(b'{"command": "show", "what": "groups"}\n')
            slow.append(sock)
        time.sleep(0.2)
        with member(lab, "h1", "239.1.2.3"):
            # a loop held for the send timeout of each slow client would learn it after
            # 10 s; an unblocked one at once
            wait_for(lambda: ("dn0", "239.1.2.3") in _igmp_groups(daemon), timeout=4.0)
    finally:
        for sock in slow:
            sock.close()
    assert daemon.proc.poll() is None


def _igmp_groups(daemon: Any) -> set[tuple[str, str]]:
    return {(g["iface"], g["group"]) for g in daemon("show", what="groups")
            if not g["static"]}


def test_mrouter_show_works_while_other_clients_churn(lab_factory: Callable[..., Any],
                                                     tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    daemon = start(lab, tmp_path, LAN)
    stop = threading.Event()

    def churn() -> None:  # connect and close at once, as fast as possible
        while not stop.is_set():
            with contextlib.suppress(OSError), \
                    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(0.05)
                sock.connect(str(daemon.sock))

    churners = [threading.Thread(target=churn) for _ in range(4)]
    for thread in churners:
        thread.start()
    try:
        shown = [daemon.cli("show", "interfaces") for _ in range(10)]
    finally:
        stop.set()
        for thread in churners:
            thread.join()
    assert [s.stderr for s in shown if s.returncode != 0] == []
