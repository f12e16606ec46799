"""`mrouter show interfaces --json` counts what each interface dropped, by reason: the
engine's reasons (here a report from outside the subnet) and the daemon's own (an IGMP
packet that does not decode)."""

from __future__ import annotations

import json
from collections.abc import Callable
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import pytest
from helpers import LAN, start, wait_for

from mrouter.igmp.codec import encode_packet
from mrouter.igmp.messages import V2Report
from mrouter.sockets.igmp_socket import IgmpSocket

pytestmark = pytest.mark.netns


def dropped(daemon: Any, iface: str) -> dict[str, int]:
    shown = daemon.cli("show", "interfaces", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = {r["name"]: r for r in map(json.loads, shown.stdout.splitlines())}
    result: dict[str, int] = rows[iface]["dropped"]
    return result


def test_show_interfaces_counts_drops_by_reason(lab_factory: Callable[..., Any],
                                                tmp_path: Path) -> None:
    lab = lab_factory("lan.toml")
    daemon = start(lab, tmp_path, LAN)
    assert dropped(daemon, "dn0") == {}
    h1 = lab.node("h1")
    index = h1.ifindex("eth0")
    group = IPv4Address("239.7.7.7")
    with h1.enter():
        sock = IgmpSocket()
    with sock:
        foreign = encode_packet(V2Report(group), IPv4Address("203.0.113.9"), group)
        sock.send(foreign, index)
        good = bytearray(encode_packet(V2Report(group), h1.address("eth0"), group))
        good[-6] ^= 0xFF  # the IGMP checksum no longer matches
        sock.send(bytes(good), index)
        wait_for(lambda: dropped(daemon, "dn0") == {"foreign-source": 1, "undecodable": 1})
    assert dropped(daemon, "up0") == {}
